//! The shipped sample capture, `testdata/ctr-session.pcapng`, decodes to the
//! golden text beside it.
//!
//! The capture was recorded on this project's CI kind of machine with
//! `dockersnoop record --socket …/c.sock` around a private containerd 1.6 while
//! `ctr` ran version, namespaces create/label/ls, containers ls, a failing
//! images rm and leases create. It is what `scripts/sample` decodes.

use std::path::Path;
use std::process::Command;

fn decode(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run dockersnoop");
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn sample_matches_golden_table() {
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ctr-session.decode.txt");
    let golden = std::fs::read_to_string(&golden_path).expect("read the golden file");
    let (out, err, code) = decode(&["decode", "--full", "testdata/ctr-session.pcapng"]);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(err, "", "no warnings expected on a capture recorded from the start");
    if out != golden {
        let first = out.lines().zip(golden.lines()).position(|(a, b)| a != b);
        panic!(
            "decode of testdata/ctr-session.pcapng differs from {} (first differing line: {:?})\n\
             --- got ---\n{out}\n--- golden ---\n{golden}",
            golden_path.display(),
            first.map(|i| i + 1)
        );
    }
}

#[test]
fn sample_json_rows_parse_and_carry_the_facts() {
    let (out, err, code) = decode(&["decode", "--format", "json", "testdata/ctr-session.pcapng"]);
    assert_eq!(code, 0, "stderr: {err}");
    let rows: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).expect("a JSON object per line")).collect();
    let calls = rows.iter().filter(|r| r["type"] == "END").count();
    let reqs: Vec<_> = rows.iter().filter(|r| r["type"] == "REQ").collect();
    assert_eq!(reqs.len(), calls, "every call gets exactly one END row");
    let version = reqs
        .iter()
        .find(|r| r["method"] == "/containerd.services.version.v1.Version/Version")
        .expect("the version call");
    assert_eq!(version["comm"], "ctr");
    assert!(version["peer_pid"].is_u64());
    let delete_end = rows
        .iter()
        .find(|r| {
            r["type"] == "END" && r["method"] == "/containerd.services.images.v1.Images/Delete"
        })
        .expect("the failing images rm");
    assert_eq!(delete_end["grpc_status"], 5, "NOT_FOUND");
    let create = rows
        .iter()
        .find(|r| {
            r["type"] == "REQ"
                && r["method"] == "/containerd.services.namespaces.v1.Namespaces/Create"
        })
        .expect("namespaces create");
    assert_eq!(create["message_type"], "containerd.services.namespaces.v1.CreateNamespaceRequest");
    assert_eq!(create["message"]["namespace"]["name"], "demo");
}
