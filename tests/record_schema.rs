//! The recorder embeds the schemas of the binaries that talked, and the
//! capture decodes through them once the binary is gone.
//!
//! containerd (the Debian package) is copied to a temporary path and run
//! from there on a private socket; `ctr version`, `ctr namespaces ls` and a
//! gRPC health check (hand-written HTTP/2, below) run while recording. The
//! built-in schemas know containerd's services but not `grpc.health.v1`,
//! which only the containerd binary carries: the health check decodes with
//! its message types only through the embedded set. That is checked three
//! ways: `schema list` on the capture, `decode` after the copied binary was
//! deleted (identical to the decode made while it existed), and `decode` of
//! the same capture with the schema blocks cut out (no health types).

mod daemons;
mod record_common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daemons::Containerd;
use record_common::{require_root, Recorder};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEALTH: &str = "/grpc.health.v1.Health/Check";
const VERSION: &str = "/containerd.services.version.v1.Version/Version";

fn ctr(sock: &Path, args: &[&str]) {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(sock)
        .args(args)
        .output()
        .expect("running ctr (installed with containerd)");
    assert!(out.status.success(), "ctr {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
}

/// HPACK "literal header field without indexing, new name", no Huffman.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    assert!(name.len() < 127 && value.len() < 127);
    out.push(0);
    out.push(name.len() as u8);
    out.extend(name.as_bytes());
    out.push(value.len() as u8);
    out.extend(value.as_bytes());
}

/// Calls grpc.health.v1.Health/Check with an empty request over HTTP/2 and
/// returns the gRPC message of the response.
fn health_check(sock: &Path) -> Vec<u8> {
    let mut s = UnixStream::connect(sock).expect("connecting to containerd");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = PREFACE.to_vec();
    frame(&mut out, 4, 0, 0, &[]); // SETTINGS
    let mut block = Vec::new();
    for (n, v) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", HEALTH),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        literal(&mut block, n, v);
    }
    frame(&mut out, 1, 0x4, 1, &block); // HEADERS, END_HEADERS
    frame(&mut out, 0, 0x1, 1, &[0, 0, 0, 0, 0]); // DATA, END_STREAM: empty request
    s.write_all(&out).unwrap();
    let mut data = Vec::new();
    loop {
        let mut hdr = [0u8; 9];
        s.read_exact(&mut hdr).expect("reading a frame from containerd");
        let len = u32::from_be_bytes([0, hdr[0], hdr[1], hdr[2]]) as usize;
        let (kind, flags) = (hdr[3], hdr[4]);
        let stream = u32::from_be_bytes(hdr[5..9].try_into().unwrap()) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        match (kind, stream) {
            (4, 0) if flags & 1 == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, 4, 1, 0, &[]);
                s.write_all(&ack).unwrap();
            }
            (0, 1) => data.extend(payload),
            (1, 1) if flags & 1 != 0 => break, // trailers
            (7, _) => panic!("containerd sent GOAWAY: {payload:?}"),
            _ => {}
        }
    }
    let (prefix, msg) = data.split_at_checked(5).expect("a gRPC message in the response");
    assert_eq!(prefix[0], 0, "compressed gRPC response");
    msg.to_vec()
}

fn dockersnoop(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop")).args(args).output().unwrap();
    assert!(out.status.success(), "dockersnoop {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON rows of `dockersnoop decode`.
fn decode(file: &Path) -> Vec<serde_json::Value> {
    dockersnoop(&["decode", "--format", "json", file.to_str().unwrap()])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A copy of a little-endian pcapng file without our custom blocks.
fn without_schema_blocks(src: &Path, dst: &Path) -> usize {
    let bytes = std::fs::read(src).unwrap();
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    let mut cut = 0;
    while !rest.is_empty() {
        let kind = u32::from_le_bytes(rest[..4].try_into().unwrap());
        let len = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
        let (block, tail) = rest.split_at_checked(len).expect("a block past the end of the file");
        let pen = block.get(8..12).map(|p| u32::from_le_bytes(p.try_into().unwrap()));
        if kind == 0x0bad && pen == Some(dockersnoop::chunk::PEN) {
            cut += 1;
        } else {
            out.extend(block);
        }
        rest = tail;
    }
    std::fs::write(dst, out).unwrap();
    cut
}

fn rows<'a>(rows: &'a [serde_json::Value], method: &str, kind: &str) -> Vec<&'a serde_json::Value> {
    rows.iter().filter(|r| r["method"] == method && r["type"] == kind).collect()
}

#[test]
fn capture_decodes_through_the_embedded_schemas_once_the_binary_is_gone() {
    require_root();
    let dir = tempfile::Builder::new().prefix("dockersnoop-schema-").tempdir().unwrap();
    let installed = PathBuf::from("/usr/bin/containerd");
    assert!(installed.exists(), "containerd is not installed (scripts/setup --test installs it)");
    let binary = dir.path().join("containerd-under-test");
    std::fs::copy(&installed, &binary).unwrap();
    let containerd = Containerd::start(&binary, dir.path(), false);
    let sock = dir.path().join("c.sock");
    let out = dir.path().join("schema.pcapng");

    let rec = Recorder::start(&out, &["--socket", sock.to_str().unwrap()]);
    ctr(&sock, &["version"]);
    ctr(&sock, &["namespaces", "ls"]);
    // HealthCheckResponse{status: SERVING}.
    assert_eq!(health_check(&sock), [0x08, 0x01]);
    rec.stop();

    // The set is in the file.
    let listed = dockersnoop(&["schema", "list", out.to_str().unwrap()]);
    for m in [VERSION, HEALTH] {
        assert!(listed.contains(m), "{m} not in the capture's schemas:\n{listed}");
    }
    let with_binary = decode(&out);

    // Hide the binary: the capture alone must still say everything.
    drop(containerd);
    std::fs::remove_file(&binary).unwrap();
    assert!(!binary.exists());
    let without_binary = decode(&out);
    assert_eq!(with_binary, without_binary, "decode changed once the binary was gone");

    let version = rows(&without_binary, VERSION, "RESP");
    assert!(!version.is_empty(), "no Version response decoded: {without_binary:#?}");
    assert_eq!(version[0]["message_type"], "containerd.services.version.v1.VersionResponse");
    assert!(version[0]["message"]["version"].is_string(), "{:#}", version[0]);
    let req = rows(&without_binary, HEALTH, "REQ");
    let resp = rows(&without_binary, HEALTH, "RESP");
    assert_eq!((req.len(), resp.len()), (1, 1), "{without_binary:#?}");
    assert_eq!(req[0]["message_type"], "grpc.health.v1.HealthCheckRequest");
    assert_eq!(resp[0]["message_type"], "grpc.health.v1.HealthCheckResponse");
    assert_eq!(resp[0]["message"]["status"], "SERVING", "{:#}", resp[0]);

    // Control: without the schema blocks, only the built-in set is left,
    // and it does not know grpc.health.v1.
    let bare = dir.path().join("bare.pcapng");
    assert!(without_schema_blocks(&out, &bare) > 0, "no schema block to cut");
    let bare_rows = decode(&bare);
    let resp = rows(&bare_rows, HEALTH, "RESP");
    assert_eq!(resp.len(), 1, "{bare_rows:#?}");
    assert_ne!(resp[0]["message_type"], "grpc.health.v1.HealthCheckResponse", "{:#}", resp[0]);
    assert_ne!(resp[0]["message"]["status"], "SERVING", "{:#}", resp[0]);
}
