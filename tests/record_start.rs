//! The first moments of `record` and `watch`: a signal before the probes are
//! attached still ends them cleanly with a valid file; bad options, a bad
//! output and missing sockets are reported at once, each in one line.

mod record_common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use record_common::{require_root, tshark};

fn dockersnoop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(args)
        .output()
        .expect("running dockersnoop")
}

/// Starts `args`, sends `sig` 10 ms later and returns how it exited and its
/// stderr.
fn signal_early(args: &[&str], sig: i32) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning dockersnoop");
    std::thread::sleep(Duration::from_millis(10));
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    // A hang guard, not a timing assertion: before the fix it ran forever.
    let deadline = Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running 60 s after signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (st, err)
}

fn assert_valid_capture(file: &Path) {
    assert!(file.exists(), "{} was not created", file.display());
    let (ok, _, stderr) = tshark(&["-r", file.to_str().unwrap()]);
    assert!(ok, "tshark cannot read {}: {stderr}", file.display());
}

#[test]
fn a_signal_right_after_start_stops_record_cleanly() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    for (name, sig) in [("int", libc::SIGINT), ("term", libc::SIGTERM), ("hup", libc::SIGHUP)] {
        let out = dir.path().join(format!("{name}.pcapng"));
        let args = ["record", "-o", out.to_str().unwrap(), "--socket", sock.to_str().unwrap()];
        let (st, err) = signal_early(&args, sig);
        assert!(st.success(), "record after an early signal {sig}: {st}: {err}");
        assert!(err.contains("0 chunks"), "no summary after signal {sig}: {err}");
        assert_valid_capture(&out);
    }
}

#[test]
fn a_signal_right_after_start_stops_watch_cleanly() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let out = dir.path().join("w.pcapng");
    let args = ["watch", "-w", out.to_str().unwrap(), "--socket", sock.to_str().unwrap()];
    let (st, err) = signal_early(&args, libc::SIGINT);
    assert!(st.success(), "watch after an early SIGINT: {st}: {err}");
    assert_valid_capture(&out);
}

#[test]
fn a_missing_socket_is_warned_about() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let sock = sock.to_str().unwrap();
    let out = dir.path().join("m.pcapng");
    let o = dockersnoop(&[
        "record",
        "-o",
        out.to_str().unwrap(),
        "--socket",
        sock,
        "--duration",
        "0.1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let want =
        format!("warning: --socket {sock}: no such socket (yet); recording it if it appears");
    assert!(err.contains(&want), "no warning for a missing socket: {err}");
}

#[test]
fn bad_counts_and_sizes_are_refused_in_one_line() {
    for (args, want) in [
        (&["-C", "0"][..], "-C 0:"),
        (&["-C", "1", "-W", "0"][..], "-W 0:"),
        (&["-c", "0"][..], "-c 0:"),
        (&["--ring-size", "3G"][..], "--ring-size 3G:"),
        (&["--socket", "@"][..], "\"@\""),
    ] {
        let mut all = vec!["record", "-o", "/nonexistent-dir/x.pcapng"];
        all.extend_from_slice(args);
        let o = dockersnoop(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} accepted: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_bad_output_fails_with_the_os_error_once() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for cmd in [["record", "-o"], ["watch", "-w"]] {
        let o = dockersnoop(&[cmd[0], cmd[1], d, "--socket", "/x.sock", "--duration", "5"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{cmd:?} into a directory: {err}");
        assert_eq!(err.matches("Is a directory").count(), 1, "{cmd:?}: {err}");
        // It fails on opening the file: nothing was recorded or printed.
        assert!(!err.contains("chunks"), "{cmd:?}: {err}");
        assert!(o.stdout.is_empty(), "{cmd:?} printed: {}", String::from_utf8_lossy(&o.stdout));
    }
}
