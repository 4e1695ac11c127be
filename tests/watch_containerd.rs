//! `dockersnoop watch` against a private containerd while `ctr` talks to
//! it: the rows it prints live are the rows `decode` prints for the file it
//! saved with `-w`, in JSON and as a table, and the table heading comes
//! first.

mod daemons;
mod record_common;

use std::process::Command;

use daemons::{decode, Scene, Watch};
use record_common::require_root;

/// Runs two ctr commands (three gRPC calls) against the scene's containerd.
fn ctr_calls(scene: &Scene) {
    for args in [&["version"][..], &["namespaces", "ls"][..]] {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(scene.containerd_sock())
            .args(args)
            .output()
            .expect("running ctr (installed with containerd)");
        assert!(out.status.success(), "ctr {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn watch_rows_equal_decode_of_the_saved_file() {
    require_root();
    let mut scene = Scene::new("dockersnoop-watch-");
    scene.start_containerd(false);
    let sock = scene.containerd_sock();
    let sock = sock.to_str().unwrap();

    // JSON lines: byte for byte the same.
    let file = scene.path().join("w.pcapng");
    let w = Watch::start(
        &["--format", "json", "--socket", sock, "-w", file.to_str().unwrap()],
        &file,
        &scene.path().join("watch.json"),
    );
    ctr_calls(&scene);
    // Three requests, three responses and their ends, before the capture
    // ends: the rows come while recording, not at the end.
    w.wait_lines(9);
    let (live, err) = w.stop();
    assert!(err.contains("record(s) decoded"), "no summary on stderr: {err}");
    let (saved, _) = decode(&["--format", "json", file.to_str().unwrap()]);
    assert!(live.contains("/containerd.services.version.v1.Version/Version"), "{live}");
    assert_eq!(live, saved, "watch's JSON differs from decode of the file it saved");

    // The table: heading first, then the same cells as decode's (widths
    // differ: watch cannot size columns from rows it has not seen).
    let file = scene.path().join("t.pcapng");
    let w = Watch::start(
        &["--full", "--socket", sock, "-w", file.to_str().unwrap()],
        &file,
        &scene.path().join("watch.txt"),
    );
    w.wait_lines(1);
    assert!(w.output().starts_with("COMM "), "heading not first: {}", w.output());
    ctr_calls(&scene);
    w.wait_lines(1 + 6);
    let (live, _) = w.stop();
    let (saved, _) = decode(&["--full", file.to_str().unwrap()]);
    let cells = |t: &str| -> Vec<Vec<String>> {
        t.lines().map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
    };
    assert_eq!(cells(&live), cells(&saved), "watch:\n{live}\ndecode:\n{saved}");
}
