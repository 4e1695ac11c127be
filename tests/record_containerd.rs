//! A real peer: containerd (the Debian package) on a private socket, `ctr
//! version` run while recording. The capture must hold the HTTP/2 preface
//! and the Version call, tshark must decode the HEADERS with that :path and
//! find nothing malformed, and packets must carry ctr's and containerd's pids.

mod record_common;

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use record_common::{read_capture, require_root, tshark, Recorder};

const METHOD: &str = "/containerd.services.version.v1.Version/Version";
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// containerd, killed whatever happens to the test.
struct Containerd(Child);

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_containerd(dir: &Path) -> Containerd {
    let sock = dir.join("c.sock");
    let config = dir.join("config.toml");
    // Only what `ctr version` needs: no CRI, no snapshotters that probe
    // the host, no tracing.
    std::fs::write(
        &config,
        format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\", \
             \"io.containerd.tracing.processor.v1.otlp\", \"io.containerd.internal.v1.tracing\"]\n\
             [grpc]\n  address = \"{sock}\"\n\
             [ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = sock.display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
    let child = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .arg("--address")
        .arg(&sock)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting containerd (installed by scripts/setup --test)");
    let mut c = Containerd(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(&sock).is_err() {
        if let Some(st) = c.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
            panic!("containerd exited ({st}) before listening: {log}");
        }
        assert!(
            Instant::now() < deadline,
            "containerd did not listen on {} in 60 s",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c
}

#[test]
fn ctr_version_against_a_private_containerd() {
    require_root();
    let dir = tempfile::Builder::new().prefix("dockersnoop-ctrd-").tempdir().unwrap();
    let containerd = start_containerd(dir.path());
    let sock = dir.path().join("c.sock");
    let out = dir.path().join("ctr.pcapng");
    let rec = Recorder::start(&out, &["--socket", sock.to_str().unwrap()]);

    let ctr = Command::new("ctr")
        .arg("--address")
        .arg(&sock)
        .arg("version")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ctr");
    let ctr_pid = ctr.id();
    let ctr_out = ctr.wait_with_output().unwrap();
    assert!(ctr_out.status.success(), "ctr version: {}", String::from_utf8_lossy(&ctr_out.stderr));
    rec.stop();

    // Our own view: the preface from ctr, both pids on packets.
    let pkts = read_capture(&out);
    let containerd_pid = containerd.0.id();
    let from =
        |pid: u32| pkts.iter().filter(|p| p.meta.as_ref().is_some_and(|m| m.pid == pid)).count();
    assert!(from(ctr_pid) > 0, "no packet from ctr (pid {ctr_pid})");
    assert!(from(containerd_pid) > 0, "no packet from containerd (pid {containerd_pid})");
    let preface = pkts.iter().find(|p| p.payload.starts_with(PREFACE)).expect("HTTP/2 preface");
    let m = preface.meta.as_ref().unwrap();
    assert_eq!((m.pid, m.comm.as_str()), (ctr_pid, "ctr"));
    assert_eq!(m.peer_pid, Some(containerd_pid));
    assert_eq!(m.path, sock.to_str().unwrap());

    // Wireshark's view: HTTP/2 on port 80 without any Decode As.
    let file = out.to_str().unwrap();
    let (ok, values, err) =
        tshark(&["-r", file, "-Y", "http2.header", "-T", "fields", "-e", "http2.header.value"]);
    assert!(ok, "tshark: {err}");
    assert!(values.contains(METHOD), "no {METHOD} in the HEADERS tshark decoded:\n{values}");
    let (ok, magic, err) =
        tshark(&["-r", file, "-Y", "http2.magic", "-T", "fields", "-e", "frame.number"]);
    assert!(ok && !magic.trim().is_empty(), "tshark found no HTTP/2 preface: {err}");
    let (ok, malformed, err) =
        tshark(&["-r", file, "-Y", "_ws.malformed || _ws.expert.severity == error"]);
    assert!(ok, "tshark: {err}");
    assert!(malformed.trim().is_empty(), "tshark reports malformed packets:\n{malformed}");
}
