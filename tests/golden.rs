//! The shipped sample (a real `docker run` recorded against containerd,
//! testdata/docker-run.pcapng.zst) decodes to exactly the golden table in
//! testdata/docker-run.decode.txt.
//!
//! After an intended change of the output, regenerate the golden file with
//! `dockersnoop decode --full testdata/docker-run.pcapng.zst > testdata/docker-run.decode.txt`
//! and review the diff.

use std::path::Path;
use std::process::Command;

#[test]
fn docker_run_sample_decodes_to_the_golden_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let capture = root.join("testdata/docker-run.pcapng.zst");
    let golden = root.join("testdata/docker-run.decode.txt");
    let expected =
        std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .arg("decode")
        .arg("--full")
        .arg(&capture)
        .env_remove("COLUMNS")
        .output()
        .expect("running dockersnoop decode");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "decode failed: {stderr}");
    assert!(!stderr.contains("warning"), "the sample decodes with warnings: {stderr}");
    let actual = String::from_utf8_lossy(&out.stdout);
    if actual == expected {
        return;
    }
    let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
    let at = a.iter().zip(&e).position(|(x, y)| x != y).unwrap_or(a.len().min(e.len()));
    panic!(
        "decode of {} differs from {} at line {} ({} lines vs {} expected):\n\
         - expected: {}\n\
         + actual:   {}",
        capture.display(),
        golden.display(),
        at + 1,
        a.len(),
        e.len(),
        e.get(at).unwrap_or(&"<end of file>"),
        a.get(at).unwrap_or(&"<end of output>"),
    );
}

/// The sample carries the schemas `record` extracted from the binaries that
/// talked, so it decodes with them on any machine.
#[test]
fn docker_run_sample_embeds_its_schemas() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(["schema", "list"])
        .arg(root.join("testdata/docker-run.pcapng.zst"))
        .output()
        .expect("running dockersnoop schema list");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for method in [
        "/containerd.services.tasks.v1.Tasks/Create",
        "/containerd.task.v2.Task/Create",
        "/containerd.services.events.ttrpc.v1.Events/Forward",
    ] {
        assert!(stdout.contains(method), "the embedded schemas lack {method}:\n{stdout}");
    }
}
