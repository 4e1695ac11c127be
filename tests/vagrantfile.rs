//! The Vagrantfile parses as Ruby (`ruby -c`), and provisions what the
//! README promises: the Ubuntu 24.04 box, docker and containerd, the
//! project's own setup script, and a build. Needs ruby (scripts/setup
//! --test installs it); fails, loudly, without it.

use std::path::Path;
use std::process::Command;

#[test]
fn vagrantfile_parses_and_provisions_the_promised_machine() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("Vagrantfile");
    let out = Command::new("ruby").arg("-c").arg(&file).output().unwrap_or_else(|e| {
        panic!(
            "cannot run ruby ({e}): install it with scripts/setup --test; this test does not skip"
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Syntax OK"),
        "ruby -c {}: {stdout}{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    for needed in [
        "bento/ubuntu-24.04",
        "docker.io",
        "containerd",
        "scripts/setup --test",
        "sh.rustup.rs",
        "cargo build --release",
    ] {
        assert!(text.contains(needed), "the Vagrantfile does not mention {needed:?}");
    }
}
