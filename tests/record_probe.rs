//! Probe backends on a kernel that allows only the syscall tracepoints
//! (fentry refused with EPERM, kprobes not compiled in), as here: `auto`
//! falls back and says why, the explicit backends fail with one clear line,
//! and the kprobe programs still pass the verifier (they are loaded, not
//! attached), which also checks the code fentry shares with them.

mod record_common;

use std::process::Command;

use dockersnoop::capture::bpf::{check_loads, Backend};
use record_common::require_root;

fn record(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.pcapng");
    let o = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(args)
        .arg("-o")
        .arg(&out)
        .args(["--duration", "0.2", "--socket", "@dockersnoop-probe-test"])
        .output()
        .expect("running dockersnoop");
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// What this kernel allows, so that a run elsewhere fails with a reason
/// instead of a confusing assertion.
fn require_tracepoint_only_kernel() {
    let fentry = check_loads(Backend::Fentry);
    assert!(
        fentry.is_err(),
        "this test expects a kernel that refuses fentry programs (as the CI machine does); \
         this one loads them"
    );
    assert!(
        !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists(),
        "this test expects a kernel without kprobes (as the CI machine has); this one has them"
    );
}

#[test]
fn auto_falls_back_to_tracepoints_and_says_why() {
    require_root();
    require_tracepoint_only_kernel();
    let (ok, err) = record(&["-v", "record", "--probe", "auto"]);
    assert!(ok, "record --probe auto failed:\n{err}");
    let line = err
        .lines()
        .find(|l| l.contains("probe auto:"))
        .unwrap_or_else(|| panic!("no 'probe auto:' line in:\n{err}"));
    assert!(line.contains("info"), "{line}");
    assert!(line.contains("using syscall tracepoints"), "{line}");
    assert!(line.contains("fentry: refused by the kernel: Operation not permitted"), "{line}");
    assert!(line.contains("kprobe: this kernel has no kprobes"), "{line}");
}

#[test]
fn explicit_backends_fail_with_one_line() {
    require_root();
    require_tracepoint_only_kernel();
    for (probe, want) in [
        ("fentry", "--probe fentry: the kernel refused its programs: Operation not permitted"),
        ("kprobe", "--probe kprobe: this kernel has no kprobes"),
    ] {
        let (ok, err) = record(&["record", "--probe", probe]);
        assert!(!ok, "--probe {probe} succeeded on a kernel that refuses it");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "--probe {probe}: want one line, got:\n{err}");
        assert!(lines[0].contains(want), "--probe {probe}: {err}");
        assert!(!err.contains("panicked") && !err.contains("libbpf:"), "{err}");
    }
}

#[test]
fn kprobe_programs_pass_the_verifier_and_tracepoints_load_alone() {
    require_root();
    check_loads(Backend::Kprobe).expect("the kprobe programs should load (not attach) here");
    check_loads(Backend::Tracepoint).expect("the tracepoint programs alone should load");
}
