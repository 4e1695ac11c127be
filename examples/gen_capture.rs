//! Writes a large synthetic capture for scripts/bench-decode: gRPC calls of
//! the containerd API (unary Namespaces/Get and List, server-streaming
//! Content/Read) over many interleaved TCP connections, with our process
//! metadata on every packet block.
//!
//! `cargo run --release --example gen_capture -- FILE [MEGABYTES]`

#[path = "../tests/decode_support/capture.rs"]
mod support;

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use dockersnoop::chunk::ProcMeta;
use support::*;

/// Connections open at once; the calls go round-robin over them.
const CONNS: usize = 64;
/// Calls per connection before it closes and a new one opens.
const CALLS_PER_CONN: u32 = 2000;

struct Conn {
    tcp: Tcp,
    hc: Hpack,
    hs: Hpack,
    next_stream: u32,
}

impl Conn {
    fn new<W: std::io::Write>(cap: &mut Capture<W>, port: u16, pid: u32) -> Conn {
        let mut tcp = Tcp::new(port, 50051);
        tcp.client_meta = Some(ProcMeta {
            pid,
            tid: pid + 1,
            peer_pid: Some(1000),
            comm: "dockerd".into(),
            ..Default::default()
        });
        tcp.server_meta = Some(ProcMeta {
            pid: 1000,
            tid: 1001,
            peer_pid: Some(pid),
            comm: "containerd".into(),
            ..Default::default()
        });
        tcp.open(cap);
        let mut w = PREFACE.to_vec();
        w.extend(settings(&[(4, 4 << 20)]));
        tcp.send(cap, true, &w);
        tcp.send(cap, false, &settings(&[(5, 1 << 20)]));
        Conn { tcp, hc: Hpack::default(), hs: Hpack::default(), next_stream: 1 }
    }
}

/// Field `n` as a length-delimited protobuf field.
fn bytes_field(n: u8, b: &[u8]) -> Vec<u8> {
    let mut v = vec![(n << 3) | 2];
    let mut len = b.len();
    while len >= 0x80 {
        v.push((len as u8) | 0x80);
        len >>= 7;
    }
    v.push(len as u8);
    v.extend_from_slice(b);
    v
}

fn varint_field(n: u8, mut x: u64) -> Vec<u8> {
    let mut v = vec![n << 3];
    while x >= 0x80 {
        v.push((x as u8) | 0x80);
        x >>= 7;
    }
    v.push(x as u8);
    v
}

fn namespace(name: &str) -> Vec<u8> {
    let label = [bytes_field(1, b"containerd.io/defaults"), bytes_field(2, b"true")].concat();
    [bytes_field(1, name.as_bytes()), bytes_field(2, &label)].concat()
}

fn call<W: std::io::Write>(cap: &mut Capture<W>, c: &mut Conn, i: u64) {
    let sid = c.next_stream;
    c.next_stream += 2;
    let (path, req, resps): (&str, Vec<u8>, Vec<Vec<u8>>) = match i % 20 {
        0..=11 => (
            "/containerd.services.namespaces.v1.Namespaces/Get",
            bytes_field(1, b"moby"),
            vec![bytes_field(1, &namespace("moby"))],
        ),
        12..=16 => {
            let all: Vec<u8> =
                (0..10).flat_map(|k| bytes_field(1, &namespace(&format!("ns-{k}")))).collect();
            ("/containerd.services.namespaces.v1.Namespaces/List", Vec::new(), vec![all])
        }
        _ => {
            let digest = format!("sha256:{:064x}", i);
            let req = [bytes_field(1, digest.as_bytes()), varint_field(3, 8 * 4096)].concat();
            let chunk = vec![(i % 251) as u8; 4096];
            let resps = (0..8u64)
                .map(|k| [varint_field(1, k * 4096), bytes_field(2, &chunk)].concat())
                .collect();
            ("/containerd.services.content.v1.Content/Read", req, resps)
        }
    };
    let mut w = grpc_request(&mut c.hc, sid, path, &[("grpc-timeout", "10S")]);
    w.extend(frame(0, 0x1, sid, &grpc_msg(false, &req)));
    c.tcp.send(cap, true, &w);
    let mut w = grpc_response(&mut c.hs, sid, &[]);
    for r in &resps {
        w.extend(frame(0, 0, sid, &grpc_msg(false, r)));
    }
    w.extend(grpc_trailers(&mut c.hs, sid, 0, ""));
    c.tcp.send(cap, false, &w);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: gen_capture FILE [MEGABYTES]");
        return ExitCode::FAILURE;
    };
    let mb: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let file = match File::create(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gen_capture: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cap = Capture::to(CountingWriter(BufWriter::with_capacity(1 << 20, file), 0));
    let mut port = 10000u16;
    let mut conns: Vec<(Conn, u32)> = Vec::new();
    for k in 0..CONNS {
        port += 1;
        conns.push((Conn::new(&mut cap, port, 2000 + k as u32), 0));
    }
    let mut i = 0u64;
    let mut calls = 0u64;
    while cap_len(&mut cap) < mb << 20 {
        let k = (i as usize) % CONNS;
        let (c, n) = &mut conns[k];
        call(&mut cap, c, i);
        calls += 1;
        *n += 1;
        if *n == CALLS_PER_CONN {
            c.tcp.close(&mut cap);
            port = if port == u16::MAX { 10000 } else { port + 1 };
            conns[k] = (Conn::new(&mut cap, port, 2000 + k as u32), 0);
        }
        i += 1;
    }
    for (c, _) in &mut conns {
        c.tcp.close(&mut cap);
    }
    let w = cap.into_inner();
    let total = w.1;
    if let Err(e) = w.0.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()) {
        eprintln!("gen_capture: {path}: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("gen_capture: {path}: {} MB, {calls} calls", total >> 20);
    ExitCode::SUCCESS
}

/// A writer that counts the bytes written.
struct CountingWriter<W>(W, u64);

impl<W: std::io::Write> std::io::Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn cap_len(cap: &mut Capture<CountingWriter<BufWriter<File>>>) -> u64 {
    cap.get_ref().1
}
