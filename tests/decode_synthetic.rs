//! `dockersnoop decode` end to end on small captures the tests write:
//! HTTP/2 over TCP in pcapng, with and without our process metadata.

mod decode_support;

use std::io::Write;
use std::path::Path;

use decode_support::*;
use dockersnoop::chunk::ProcMeta;

const GREET: &str = "/greet.GreetService/Greet";

fn meta(comm: &str, pid: u32, peer: u32) -> ProcMeta {
    ProcMeta { pid, tid: pid + 1, peer_pid: Some(peer), comm: comm.into(), ..Default::default() }
}

/// A unary call on stream `sid` of an open connection; the HPACK encoders
/// of both sides are the caller's, as they live as long as the connection.
#[allow(clippy::too_many_arguments)]
fn unary<W: Write>(
    cap: &mut Capture<W>,
    tcp: &mut Tcp,
    hc: &mut Hpack,
    hs: &mut Hpack,
    sid: u32,
    path: &str,
    req: &str,
    resp: &str,
) {
    let mut w = grpc_request(hc, sid, path, &[]);
    w.extend(frame(0, 0x1, sid, &grpc_msg(false, &pb_string(req))));
    tcp.send(cap, true, &w);
    let mut w = grpc_response(hs, sid, &[]);
    w.extend(frame(0, 0, sid, &grpc_msg(false, &pb_string(resp))));
    w.extend(grpc_trailers(hs, sid, 0, ""));
    tcp.send(cap, false, &w);
}

/// The start of a connection: handshake, preface, SETTINGS both ways.
fn start<W: Write>(cap: &mut Capture<W>, tcp: &mut Tcp) {
    tcp.open(cap);
    let mut w = PREFACE.to_vec();
    w.extend(settings(&[]));
    tcp.send(cap, true, &w);
    tcp.send(cap, false, &settings(&[]));
}

/// A capture of `n` unary calls "name i" → "hello i" on one connection.
fn calls(n: u32, client: Option<ProcMeta>, server: Option<ProcMeta>) -> Vec<u8> {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    tcp.client_meta = client;
    tcp.server_meta = server;
    start(&mut cap, &mut tcp);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    for i in 0..n {
        let (q, a) = (format!("name {i}"), format!("hello {i}"));
        unary(&mut cap, &mut tcp, &mut hc, &mut hs, 1 + 2 * i, GREET, &q, &a);
    }
    tcp.close(&mut cap);
    cap.into_inner()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn gzip_compressed_messages() {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    start(&mut cap, &mut tcp);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    let enc = [("grpc-encoding", "gzip")];
    let req = gzip(&pb_string("compressed request"));
    let mut w = grpc_request(&mut hc, 1, GREET, &enc);
    w.extend(frame(0, 0x1, 1, &grpc_msg(true, &req)));
    tcp.send(&mut cap, true, &w);
    let mut w = grpc_response(&mut hs, 1, &enc);
    // Two compressed messages in one DATA frame, then one split over two.
    let mut body = grpc_msg(true, &gzip(&pb_string("one")));
    body.extend(grpc_msg(true, &gzip(&pb_string("two"))));
    w.extend(frame(0, 0, 1, &body));
    let three = grpc_msg(true, &gzip(&pb_string("three")));
    w.extend(frame(0, 0, 1, &three[..7]));
    w.extend(frame(0, 0, 1, &three[7..]));
    w.extend(grpc_trailers(&mut hs, 1, 0, ""));
    tcp.send(&mut cap, false, &w);
    tcp.close(&mut cap);
    let dir = tempdir();
    let f = write(dir.path(), "gzip.pcapng", &cap.into_inner());
    let (json, out) = decode_json(&[p(&f)]);
    assert_eq!(out.stderr, "");
    assert_eq!(kinds(&json), ["REQ:1", "RESP:1", "RESP:1", "RESP:1", "END:1"]);
    assert_eq!(json[0]["message"]["@raw"]["1"], "compressed request");
    assert_eq!(json[0]["size"], req.len(), "size is the compressed length on the wire");
    let resp: Vec<&str> =
        rows(&json, "RESP").iter().map(|j| j["message"]["@raw"]["1"].as_str().unwrap()).collect();
    assert_eq!(resp, ["one", "two", "three"]);
}

#[test]
fn trailers_only_error() {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    start(&mut cap, &mut tcp);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    let mut w = grpc_request(&mut hc, 1, "/pkg.Svc/Missing", &[]);
    w.extend(frame(0, 0x1, 1, &grpc_msg(false, &pb_string("x"))));
    tcp.send(&mut cap, true, &w);
    // Trailers-only: one HEADERS with :status, grpc-status and END_STREAM.
    let block = hs.block(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "5"),
        ("grpc-message", "no such thing: %22x%22"),
    ]);
    tcp.send(&mut cap, false, &frame(1, 0x5, 1, &block));
    tcp.close(&mut cap);
    let dir = tempdir();
    let f = write(dir.path(), "err.pcapng", &cap.into_inner());
    let (json, _) = decode_json(&[p(&f)]);
    assert_eq!(kinds(&json), ["REQ:1", "END:1"]);
    assert_eq!(json[1]["grpc_status"], 5);
    assert_eq!(json[1]["grpc_message"], "no such thing: \"x\"");
    assert_eq!(json[1]["method"], "/pkg.Svc/Missing");
    let out = run(&["decode", "--full", p(&f)], &[]);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let err: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(err[4..7], ["ERR", "1", "/pkg.Svc/Missing"], "{}", lines[2]);
    assert!(lines[2].ends_with(r#"NOT_FOUND: no such thing: "x""#), "{}", lines[2]);
}

#[test]
fn capture_gap_warns_once_and_resumes() {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    start(&mut cap, &mut tcp);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    unary(&mut cap, &mut tcp, &mut hc, &mut hs, 1, GREET, "before", "ok 1");
    // The client's next request (a literal-only block, so no table entry is
    // lost) is missing from the capture; the server's ACK covers it.
    let mut lost = frame(1, 0x4, 3, &[0x10, 0x01, b'x', 0x01, b'y']);
    lost.extend(frame(0, 0x1, 3, &grpc_msg(false, &pb_string("lost"))));
    tcp.lose(true, lost.len() as u32);
    let mut w = grpc_response(&mut hs, 3, &[]);
    w.extend(frame(0, 0, 3, &grpc_msg(false, &pb_string("answer to lost"))));
    w.extend(grpc_trailers(&mut hs, 3, 0, ""));
    tcp.send(&mut cap, false, &w);
    unary(&mut cap, &mut tcp, &mut hc, &mut hs, 5, GREET, "after", "ok 5");
    tcp.close(&mut cap);
    let dir = tempdir();
    let f = write(dir.path(), "gap.pcapng", &cap.into_inner());
    let (json, out) = decode_json(&[p(&f)]);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains("1 gap(s) in the capture"), "{}", out.stderr);
    assert!(warnings[0].contains("may have been lost (shown as <unknown #N>)"), "{}", out.stderr);
    let reqs: Vec<&str> =
        rows(&json, "REQ").iter().map(|j| j["message"]["@raw"]["1"].as_str().unwrap()).collect();
    assert_eq!(reqs, ["before", "after"], "nothing invented from the missing bytes");
    let last: Vec<&serde_json::Value> = json.iter().filter(|j| j["stream"] == 5).collect();
    assert_eq!(last.len(), 3);
    assert_eq!(last[1]["message"]["@raw"]["1"], "ok 5");
}

#[test]
fn mid_stream_join_shows_placeholders() {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    // A first call fills both HPACK tables; the capture starts after it.
    let mut before = Capture::new();
    unary(&mut before, &mut tcp, &mut hc, &mut hs, 1, GREET, "unseen", "unseen");
    unary(&mut cap, &mut tcp, &mut hc, &mut hs, 3, GREET, "seen", "seen too");
    tcp.close(&mut cap);
    let dir = tempdir();
    let f = write(dir.path(), "join.pcapng", &cap.into_inner());
    let (json, out) = decode_json(&["--headers", p(&f)]);
    let req = rows(&json, "REQ");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0]["message"]["@raw"]["1"], "seen");
    assert_eq!(req[0]["stream"], 3);
    let method = req[0]["method"].as_str();
    let headers = req[0]["headers"].to_string();
    assert!(
        method.is_some_and(|m| m.starts_with("<unknown #")) || headers.contains("<unknown #"),
        "{}",
        req[0]
    );
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains("1 connection(s) joined mid-stream"), "{}", out.stderr);
    assert!(warnings[0].contains("(shown as <unknown #N>)"), "{}", out.stderr);
}

#[test]
fn process_metadata_fills_columns_and_filters() {
    let dir = tempdir();
    let bytes =
        calls(2, Some(meta("dockerd", 14768, 14455)), Some(meta("containerd", 14455, 14768)));
    let f = write(dir.path(), "meta.pcapng", &bytes);
    let (json, _) = decode_json(&[p(&f)]);
    assert_eq!(json[0]["comm"], "dockerd");
    assert_eq!(json[0]["pid"], 14768);
    assert_eq!(json[0]["tid"], 14769);
    assert_eq!(json[0]["peer_pid"], 14455);
    assert_eq!(json[1]["comm"], "containerd");
    assert_eq!(json[1]["pid"], 14455);
    assert_eq!(json[1]["peer_pid"], 14768);

    let out = run(&["decode", "--full", p(&f)], &[]);
    let lines = out.lines();
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head, ["COMM", "PID", "TID", "PEER", "TYPE", "STREAM", "METHOD", "MESSAGE"]);
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[..7], ["dockerd", "14768", "14769", "14455", "REQ", "1", GREET]);
    let cells: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(cells[..5], ["containerd", "14455", "14456", "14768", "RESP"]);
    // Every row's columns start where the heading's do.
    let starts = |l: &str| -> Vec<usize> {
        l.char_indices()
            .filter(|&(i, c)| c != ' ' && (i == 0 || l.as_bytes()[i - 1] == b' '))
            .map(|(i, _)| i)
            .take(7)
            .collect()
    };
    for l in &lines[1..] {
        assert_eq!(starts(l), starts(lines[0]), "{}", out.stdout);
    }

    // Filters.
    let only = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push(p(&f));
        decode_json(&a).0
    };
    let by_comm = only(&["--comm", "containerd"]);
    assert!(!by_comm.is_empty() && by_comm.iter().all(|j| j["comm"] == "containerd"));
    let by_pid = only(&["--pid", "14768"]);
    assert_eq!(by_pid.len(), json.len(), "the pid is sender or peer of every row");
    assert!(only(&["--pid", "1"]).is_empty());
    assert!(only(&["--method", "Other"]).is_empty());
    assert_eq!(only(&["--method", r"^/greet\..*/Greet$"]).len(), json.len());
    let out = run(&["decode", "--method", "(", p(&f)], &[]);
    assert_ne!(out.status, 0, "a bad regex is an error");
}

#[test]
fn rows_are_cut_to_columns_unless_full() {
    let dir = tempdir();
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    start(&mut cap, &mut tcp);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    let long = "x".repeat(300);
    unary(&mut cap, &mut tcp, &mut hc, &mut hs, 1, GREET, &long, "short");
    tcp.close(&mut cap);
    let f = write(dir.path(), "long.pcapng", &cap.into_inner());
    let cut = run(&["decode", p(&f)], &[("COLUMNS", "100")]);
    assert_eq!(cut.status, 0);
    assert!(cut.lines().iter().all(|l| l.chars().count() <= 100), "{}", cut.stdout);
    assert!(cut.lines()[1].ends_with('…'));
    let full = run(&["decode", "--full", p(&f)], &[("COLUMNS", "100")]);
    assert!(full.lines()[1].ends_with(&format!("{{1:\"{long}\"}}")), "{}", full.stdout);
    // Into a pipe without COLUMNS: nothing is cut.
    let piped = run(&["decode", p(&f)], &[]);
    assert_eq!(piped.stdout, full.stdout);
}

/// The offsets of the packet blocks of `calls(n)`'s capture, rebuilt the
/// same way.
fn capture_with_offsets(n: u32) -> (Vec<u8>, Vec<u64>) {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    let mut offsets = Vec::new();
    start(&mut cap, &mut tcp);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    for i in 0..n {
        offsets.push(cap.offset());
        let (q, a) = (format!("name {i}"), format!("hello {i}"));
        unary(&mut cap, &mut tcp, &mut hc, &mut hs, 1 + 2 * i, GREET, &q, &a);
    }
    offsets.push(cap.offset());
    tcp.close(&mut cap);
    (cap.into_inner(), offsets)
}

/// Decodes a damaged capture: rows before the damage, one error line, exit 1.
fn damaged(name: &str, bytes: &[u8], offset: u64, what: &str) {
    let dir = tempdir();
    let f = write(dir.path(), name, bytes);
    for format in ["json", "table"] {
        let out = run(&["decode", "--format", format, p(&f)], &[]);
        assert_eq!(out.status, 1, "{name}: {}", out.stderr);
        let err: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(err.len(), 1, "{name}: exactly one line: {}", out.stderr);
        let want = format!("dockersnoop: {}: offset {offset}: ", p(&f));
        assert!(err[0].starts_with(&want), "{name}: {} does not start with {want}", err[0]);
        assert!(err[0].contains(what), "{name}: {}", err[0]);
        if format == "json" {
            let json = out.json();
            let first: Vec<&serde_json::Value> = json.iter().filter(|j| j["stream"] == 1).collect();
            assert_eq!(
                kinds(&first.iter().map(|j| (*j).clone()).collect::<Vec<_>>()),
                ["REQ:1", "RESP:1", "END:1"]
            );
            assert_eq!(first[1]["message"]["@raw"]["1"], "hello 0");
        } else {
            assert!(out.stdout.contains(r#"{1:"hello 0"}"#), "{name}: {}", out.stdout);
        }
    }
}

#[test]
fn truncated_file_prints_rows_then_one_error() {
    let (bytes, offsets) = capture_with_offsets(2);
    // Cut inside the first packet block of the second call.
    let block = offsets[1];
    damaged("cut.pcapng", &bytes[..block as usize + 20], block, "truncated");
}

#[test]
fn corrupt_file_prints_rows_then_one_error() {
    let (mut bytes, offsets) = capture_with_offsets(2);
    // A block length that is not a multiple of 4 in the second call's first block.
    let block = offsets[1] as usize;
    bytes[block + 4..block + 8].copy_from_slice(&0x7777_7777u32.to_le_bytes());
    damaged("corrupt.pcapng", &bytes, block as u64, "");
}

#[test]
fn several_files_and_compressed_ones() {
    let dir = tempdir();
    let plain = calls(3, None, None);
    let a = write(dir.path(), "a.pcapng", &plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let b = write(dir.path(), "b.pcapng.gz", &gz.finish().unwrap());
    let c = write(dir.path(), "c.pcapng.zst", &zstd::encode_all(&plain[..], 3).unwrap());
    // zstd magic without the name: the content decides.
    let d = write(dir.path(), "d.bin", &zstd::encode_all(&plain[..], 1).unwrap());
    let (one, _) = decode_json(&[p(&a)]);
    assert_eq!(one.len(), 9);
    for f in [&b, &c, &d] {
        let (json, out) = decode_json(&[p(f)]);
        assert_eq!(json, one, "{}: {}", f.display(), out.stderr);
    }
    let (all, _) = decode_json(&[p(&a), p(&b), p(&c)]);
    assert_eq!(all.len(), 27);
    assert_eq!(all[..9], one[..]);
    assert_eq!(all[18..], one[..]);
    // A missing file in the list fails that file only.
    let out = run(&["decode", "--format", "json", p(&a), "/nonexistent.pcap", p(&b)], &[]);
    assert_eq!(out.status, 1);
    assert_eq!(out.json().len(), 18);
    assert!(out.stderr.contains("/nonexistent.pcap: cannot open"), "{}", out.stderr);
}

#[test]
fn stdin_and_pipes_are_read_once() {
    let dir = tempdir();
    let bytes = calls(3, Some(meta("client", 10, 20)), Some(meta("server", 20, 10)));
    let file = write(dir.path(), "c.pcapng", &bytes);
    let (want, _) = decode_json(&[p(&file)]);
    assert_eq!(rows(&want, "REQ").len(), 3);

    // `-` is standard input, a pipe.
    let out = run_with_stdin(&["decode", "--format", "json", "-"], &bytes);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.json(), want);
    // So is /dev/stdin (a pipe here, as in `cat c.pcapng | decode /dev/stdin`).
    let out = run_with_stdin(&["decode", "--format", "json", "/dev/stdin"], &bytes);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.json(), want);
    // Errors on stdin name it.
    let out = run_with_stdin(&["decode", "-"], b"");
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("dockersnoop: stdin: offset 0: file is empty"), "{}", out.stderr);

    // A FIFO is opened once: a second open would wait for a second writer
    // forever.
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo {} failed", fifo.display());
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(&fifo, &bytes).expect("write the FIFO"))
    };
    let (got, _) = decode_json(&[p(&fifo)]);
    writer.join().expect("FIFO writer");
    assert_eq!(got, want);
}

/// A classic pcap file of `link` type holding `records`.
fn pcap(link: u32, records: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    // Magic, version 2.4 (two u16), zone, sigfigs, snaplen, link type.
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, link] {
        out.extend(v.to_le_bytes());
    }
    for (i, r) in records.iter().enumerate() {
        for v in [i as u32, 0, r.len() as u32, r.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend_from_slice(r);
    }
    out
}

#[test]
fn skipped_packets_are_named_and_the_heading_always_printed() {
    let dir = tempdir();
    // 802.11 (LINKTYPE_IEEE802_11 = 105), which we do not parse.
    let wifi = write(dir.path(), "wifi.pcap", &pcap(105, &[&[0x80, 0, 0, 0], &[0x40, 0, 0, 0]]));
    let out = run(&["decode", p(&wifi)], &[]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.lines().len(), 1, "{}", out.stdout);
    assert!(out.stdout.starts_with("COMM "), "{}", out.stdout);
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "dockersnoop: warning: {}: 2 packet(s) skipped: link type 105 not supported",
            wifi.display()
        )
    );

    // Raw IP holding UDP only: no TCP at all is worth a word too.
    let mut udp = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
    udp.extend([0, 53, 0, 53, 0, 8, 0, 0]);
    let raw = write(dir.path(), "udp.pcap", &pcap(101, &[&udp]));
    let out = run(&["decode", p(&raw)], &[]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("udp.pcap: no TCP in 1 packet(s): 0 not IP, 1 not TCP"),
        "{}",
        out.stderr
    );

    // A filter matching nothing still shows the columns; JSON stays empty.
    let file = write(dir.path(), "c.pcapng", &calls(1, Some(meta("client", 10, 20)), None));
    let out = run(&["decode", "--pid", "999", p(&file)], &[]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.lines().len(), 1, "{}", out.stdout);
    assert!(out.stdout.starts_with("COMM "), "{}", out.stdout);
    let out = run(&["decode", "--format", "json", "--pid", "999", p(&file)], &[]);
    assert_eq!(out.stdout, "");
}

#[test]
fn a_huge_length_field_is_not_called_a_truncation() {
    let dir = tempdir();
    // A pcap record whose captured length is 0xfffffff0.
    let mut bytes = pcap(1, &[]);
    for v in [0u32, 0, 0xffff_fff0, 0xffff_fff0] {
        bytes.extend(v.to_le_bytes());
    }
    bytes.extend([0; 40]);
    let file = write(dir.path(), "huge.pcap", &bytes);
    let out = run(&["decode", p(&file)], &[]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains(&format!(
            "{}: offset 24: record length 4294967280 is larger than the 8 MiB limit",
            file.display()
        )),
        "{}",
        out.stderr
    );

    // A pcapng enhanced packet block of length 0x7ffffff0 after a call,
    // plain and gzip-compressed: the call is still decoded.
    let mut bytes = calls(1, Some(meta("client", 10, 20)), None);
    let at = bytes.len();
    for v in [6u32, 0x7fff_fff0, 0, 0, 0] {
        bytes.extend(v.to_le_bytes());
    }
    for (name, data) in [("huge.pcapng", bytes.clone()), ("huge.pcapng.gz", gzip(&bytes))] {
        let file = write(dir.path(), name, &data);
        let out = run(&["decode", "--format", "json", p(&file)], &[]);
        assert_eq!(out.status, 1);
        assert_eq!(rows(&out.json(), "REQ").len(), 1, "{name}");
        let want = format!(
            "{}: offset {at}: block length 2147483632 is larger than the 8 MiB limit",
            file.display()
        );
        assert!(out.stderr.contains(&want), "{name}: {}", out.stderr);
    }

    // A file cut inside a block is still a truncation.
    let cut = write(dir.path(), "cut.pcapng", bytes.get(..at - 10).unwrap());
    let out = run(&["decode", p(&cut)], &[]);
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("truncated: the file ends inside this block"), "{}", out.stderr);
}
