//! A real peer: containerd (the Debian package) on a private socket, `ctr
//! version` run while recording. The capture must hold the HTTP/2 preface
//! and the Version call, tshark must decode the HEADERS with that :path and
//! find nothing malformed, and packets must carry ctr's and containerd's pids.

mod daemons;
mod record_common;

use std::path::Path;
use std::process::{Command, Stdio};

use daemons::Containerd;
use record_common::{read_capture, require_root, tshark, Recorder};

const METHOD: &str = "/containerd.services.version.v1.Version/Version";
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[test]
fn ctr_version_against_a_private_containerd() {
    require_root();
    let dir = tempfile::Builder::new().prefix("dockersnoop-ctrd-").tempdir().unwrap();
    let containerd = Containerd::start(Path::new("containerd"), dir.path(), false);
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
    let containerd_pid = containerd.pid();
    let from =
        |pid: u32| pkts.iter().filter(|p| p.meta.as_ref().is_some_and(|m| m.pid == pid)).count();
    assert!(from(ctr_pid) > 0, "no packet from ctr (pid {ctr_pid})");
    assert!(from(containerd_pid) > 0, "no packet from containerd (pid {containerd_pid})");
    // Every packet that names a sender names its own: the client side is
    // ctr, the server side (port 80) containerd, handshake and FIN included.
    for (i, p) in pkts.iter().enumerate() {
        let want = if p.src.port() == 80 { containerd_pid } else { ctr_pid };
        if let Some(m) = &p.meta {
            assert_eq!(m.pid, want, "packet {} ({} → {}): metadata {m}", i + 1, p.src, p.dst);
            assert_eq!(p.pid_tid.map(|(pid, _)| pid), Some(want), "packet {}: option 8", i + 1);
            let c = p.comment.as_deref().unwrap_or_default();
            assert!(c.contains(&format!(" pid={want} ")), "packet {}: comment {c:?}", i + 1);
        } else {
            assert!(p.payload.is_empty(), "packet {} carries data but no metadata", i + 1);
            assert!(p.pid_tid.is_none() && p.comment.is_none(), "packet {}: half metadata", i + 1);
        }
    }
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
