//! The decoder on synthetic event streams: each test builds HTTP/2 bytes with a
//! small frame builder (HPACK via httlib-hpack's encoder), feeds them as
//! `StreamEvent`s and checks the records, mostly through parsed JSON.

mod rng;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use dockersnoop::chunk::ProcMeta;
use dockersnoop::decode::{DecodeOptions, Decoder, Record, Summary};
use dockersnoop::reassembly::{ConnId, Dir, StreamEvent};
use dockersnoop::render::{json::to_json, table, Filter, JsonRenderer, TableRenderer};
use rng::Rng;
use serde_json::Value;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(ty);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn grpc_msg(flag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Protobuf `{1: s}`.
fn pb_string(s: &str) -> Vec<u8> {
    let mut v = vec![0x0a, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// One HPACK encoder per direction, as a real peer has.
struct Enc(httlib_hpack::Encoder<'static>);

impl Enc {
    fn new() -> Enc {
        Enc(httlib_hpack::Encoder::default())
    }
    /// Encodes with indexing and Huffman, as grpc-go does.
    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        let f = 0x1 | 0x2 | 0x4 | 0x10;
        for (n, v) in fields {
            self.0.encode((n.as_bytes().to_vec(), v.as_bytes().to_vec(), f), &mut out).unwrap();
        }
        out
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn meta(comm: &str, pid: u32) -> Arc<ProcMeta> {
    Arc::new(ProcMeta {
        pid,
        tid: pid + 1,
        peer_pid: Some(pid + 100),
        comm: comm.into(),
        ..Default::default()
    })
}

/// Feeds events to a decoder and collects the records.
struct Run {
    dec: Decoder,
    recs: Vec<Record>,
    ts: u64,
    client_meta: Option<Arc<ProcMeta>>,
    server_meta: Option<Arc<ProcMeta>>,
}

impl Run {
    fn new(pool: prost_reflect::DescriptorPool, opts: DecodeOptions, mid_stream: bool) -> Run {
        let mut r = Run {
            dec: Decoder::new(pool, opts),
            recs: Vec::new(),
            ts: 1_700_000_000_000_000_000,
            client_meta: None,
            server_meta: None,
        };
        let ev = StreamEvent::Open {
            conn: ConnId(0),
            ts_ns: r.ts,
            a: addr("127.0.0.1:40000"),
            b: addr("127.0.0.1:50051"),
            mid_stream,
        };
        r.dec.on_event(ev, &mut |x| r.recs.push(x));
        r
    }
    fn plain() -> Run {
        Run::new(prost_reflect::DescriptorPool::new(), DecodeOptions::default(), false)
    }
    fn send(&mut self, dir: Dir, data: &[u8]) {
        self.ts += 1_000_000;
        let meta =
            if dir == Dir::AtoB { self.client_meta.clone() } else { self.server_meta.clone() };
        let recs = &mut self.recs;
        self.dec.on_event(
            StreamEvent::Data { conn: ConnId(0), dir, ts_ns: self.ts, data, meta: meta.as_ref() },
            &mut |x| recs.push(x),
        );
    }
    fn gap(&mut self, dir: Dir, len: u64) {
        let recs = &mut self.recs;
        self.dec
            .on_event(StreamEvent::Gap { conn: ConnId(0), dir, ts_ns: self.ts, len }, &mut |x| {
                recs.push(x)
            });
    }
    fn finish(mut self) -> (Vec<Value>, Vec<Record>, Summary) {
        let recs = &mut self.recs;
        self.dec.finish(&mut |x| recs.push(x));
        // Through the real renderer, then parsed back.
        let mut r = JsonRenderer::new(Vec::new(), false);
        for rec in &self.recs {
            r.render(rec).unwrap();
        }
        let text = String::from_utf8(r.into_inner()).unwrap();
        let json = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (json, self.recs, self.dec.summary())
    }
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(4, 0, 0, &p)
}

fn types(json: &[Value]) -> Vec<String> {
    json.iter().map(|j| format!("{}:{}", j["type"].as_str().unwrap(), j["stream"])).collect()
}

const SCHEMA: &str = r#"
syntax = "proto3";
package greet;
import "google/protobuf/any.proto";
message GreetRequest { string name = 1; }
message GreetResponse { string result = 1; }
message Envelope { string topic = 1; google.protobuf.Any event = 2; }
message TaskExit { string container_id = 1; uint32 exit_status = 2; }
service GreetService {
  rpc Greet(GreetRequest) returns (GreetResponse);
  rpc GreetMany(GreetRequest) returns (stream GreetResponse);
  rpc Publish(Envelope) returns (Envelope);
}
"#;

fn schema() -> prost_reflect::DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greet.proto");
    std::fs::File::create(&path).unwrap().write_all(SCHEMA.as_bytes()).unwrap();
    let set = protox::compile([&path], [dir.path()]).unwrap();
    prost_reflect::DescriptorPool::from_file_descriptor_set(set).unwrap()
}

/// Client preface + SETTINGS and request headers for a gRPC call.
fn grpc_request(c: &mut Enc, stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "x"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    fields.extend_from_slice(extra);
    frame(1, 0x4, stream, &c.block(&fields))
}

fn unary(run: &mut Run, path: &str, req: &[u8], resp: &[u8]) {
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(settings(&[]));
    wire.extend(grpc_request(&mut c, 1, path, &[]));
    wire.extend(frame(0, 0x1, 1, &grpc_msg(0, req)));
    run.send(Dir::AtoB, &wire);
    let mut wire = settings(&[]);
    wire.extend(frame(
        1,
        0x4,
        1,
        &s.block(&[(":status", "200"), ("content-type", "application/grpc")]),
    ));
    wire.extend(frame(0, 0, 1, &grpc_msg(0, resp)));
    wire.extend(frame(1, 0x5, 1, &s.block(&[("grpc-status", "0"), ("grpc-message", "")])));
    run.send(Dir::BtoA, &wire);
}

#[test]
fn unary_with_schema_json_and_table() {
    let mut run = Run::new(schema(), DecodeOptions::default(), false);
    run.client_meta = Some(meta("dockerd", 100));
    run.server_meta = Some(meta("containerd", 200));
    unary(
        &mut run,
        "/greet.GreetService/Greet",
        &pb_string("Clement"),
        &pb_string("Hello Clement"),
    );
    let (json, recs, summary) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "END:1"]);
    let keys: Vec<&str> = json[2].as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "ts",
        "conn",
        "proto",
        "comm",
        "pid",
        "tid",
        "peer_pid",
        "src",
        "dst",
        "type",
        "stream",
        "method",
        "message_type",
        "message",
        "size",
        "grpc_status",
        "grpc_message",
        "duration_us",
    ];
    let mut got = keys.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(json[0].as_object().unwrap().len(), 15, "non-END rows have no END keys");
    assert_eq!(json[0]["proto"], "grpc");
    assert_eq!(json[0]["comm"], "dockerd");
    assert_eq!(json[0]["pid"], 100);
    assert_eq!(json[0]["src"], "127.0.0.1:40000");
    assert_eq!(json[0]["message_type"], "greet.GreetRequest");
    assert_eq!(json[0]["message"]["name"], "Clement");
    assert_eq!(json[0]["size"], 9);
    assert_eq!(json[1]["comm"], "containerd");
    assert_eq!(json[1]["message_type"], "greet.GreetResponse");
    assert_eq!(json[1]["message"]["result"], "Hello Clement");
    assert_eq!(json[2]["grpc_status"], 0);
    assert_eq!(json[2]["duration_us"], 1000);
    assert!(json[0]["ts"].as_str().unwrap().starts_with("2023-11-14T22:13:20.001000000"));
    assert_eq!(summary.http2_connections, 1);
    assert_eq!(summary.joined_mid_stream, 0);

    let mut t = TableRenderer::new(Vec::new(), None, false);
    for r in &recs {
        t.render(r).unwrap();
    }
    let text = String::from_utf8(t.into_inner().unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("COMM") && lines[0].ends_with("MESSAGE"));
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cols[..7],
        ["dockerd", "100", "101", "200", "REQ", "1", "/greet.GreetService/Greet"]
    );
    assert!(lines[1].ends_with(r#"GreetRequest{name:"Clement"}"#), "{}", lines[1]);
    assert!(lines[2].ends_with(r#"GreetResponse{result:"Hello Clement"}"#));

    // Cut to the terminal width.
    let mut t = TableRenderer::new(Vec::new(), Some(40), false);
    t.render(&recs[0]).unwrap();
    let text = String::from_utf8(t.into_inner().unwrap()).unwrap();
    assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
}

#[test]
fn raw_decode_without_schema_and_endpoints_in_table() {
    let mut run = Run::plain();
    unary(&mut run, "/greet.GreetService/Greet", &pb_string("Clement"), &pb_string("Hello"));
    let (json, recs, _) = run.finish();
    assert_eq!(json[0]["message"]["@raw"]["1"], "Clement");
    assert!(json[0]["message_type"].is_null());
    assert!(json[0]["comm"].is_null() && json[0]["pid"].is_null() && json[0]["peer_pid"].is_null());
    let cells = table::row(&recs[0]).unwrap();
    assert_eq!(cells[0], "-");
    assert_eq!(cells[1], "127.0.0.1:40000");
    assert_eq!(cells[3], "127.0.0.1:50051");
    assert_eq!(cells[7], r#"{1:"Clement"}"#);
}

#[test]
fn server_streaming_gzip_split_and_joined_messages() {
    let mut run = Run::new(schema(), DecodeOptions::default(), false);
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(settings(&[]));
    wire.extend(grpc_request(
        &mut c,
        1,
        "/greet.GreetService/GreetMany",
        &[("grpc-accept-encoding", "gzip")],
    ));
    wire.extend(frame(0, 0x1, 1, &grpc_msg(0, &pb_string("Clement"))));
    run.send(Dir::AtoB, &wire);
    run.send(
        Dir::BtoA,
        &frame(
            1,
            0x4,
            1,
            &s.block(&[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-encoding", "gzip"),
            ]),
        ),
    );
    let mut body = Vec::new();
    for i in 0..4 {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&pb_string(&format!("Hello Clement, number {i}"))).unwrap();
        body.extend(grpc_msg(1, &g.finish().unwrap()));
    }
    // Messages 0 and 1 in one frame plus half of 2; the rest in 3-byte frames.
    let cut = body.len() / 2 + 7;
    run.send(Dir::BtoA, &frame(0, 0, 1, &body[..cut]));
    for chunk in body[cut..].chunks(3) {
        run.send(Dir::BtoA, &frame(0, 0, 1, chunk));
    }
    run.send(Dir::BtoA, &frame(1, 0x5, 1, &s.block(&[("grpc-status", "0")])));
    let (json, _, _) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "RESP:1", "RESP:1", "RESP:1", "END:1"]);
    for i in 0..4 {
        assert_eq!(json[1 + i]["message"]["result"], format!("Hello Clement, number {i}"));
    }
}

#[test]
fn deflate_request_and_client_streaming() {
    let mut run = Run::new(schema(), DecodeOptions::default(), false);
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(grpc_request(
        &mut c,
        1,
        "/greet.GreetService/Greet",
        &[("grpc-encoding", "deflate")],
    ));
    for name in ["Clement", "Marie", "Test"] {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&pb_string(name)).unwrap();
        wire.extend(frame(0, 0, 1, &grpc_msg(1, &z.finish().unwrap())));
    }
    wire.extend(frame(0, 0x1, 1, &[]));
    run.send(Dir::AtoB, &wire);
    let mut wire =
        frame(1, 0x4, 1, &s.block(&[(":status", "200"), ("content-type", "application/grpc")]));
    wire.extend(frame(0, 0, 1, &grpc_msg(0, &pb_string("Hello all"))));
    wire.extend(frame(1, 0x5, 1, &s.block(&[("grpc-status", "0")])));
    run.send(Dir::BtoA, &wire);
    let (json, _, _) = run.finish();
    let names: Vec<&str> = json
        .iter()
        .filter(|j| j["type"] == "REQ")
        .map(|j| j["message"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Clement", "Marie", "Test"]);
}

#[test]
fn trailers_only_error_is_an_err_row() {
    let mut run = Run::plain();
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(grpc_request(&mut c, 1, "/containerd.services.containers.v1.Containers/Get", &[]));
    wire.extend(frame(0, 0x1, 1, &grpc_msg(0, &pb_string("abc"))));
    run.send(Dir::AtoB, &wire);
    let block = s.block(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "5"),
        ("grpc-message", "container%20%22abc%22: not found"),
    ]);
    run.send(Dir::BtoA, &frame(1, 0x5, 1, &block));
    let (json, recs, _) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "END:1"]);
    assert_eq!(json[1]["grpc_status"], 5);
    assert_eq!(json[1]["grpc_message"], "container \"abc\": not found");
    let cells = table::row(&recs[1]).unwrap();
    assert_eq!(cells[4], "ERR");
    assert_eq!(cells[7], "NOT_FOUND: container \\\"abc\\\": not found".replace("\\\"", "\""));
}

#[test]
fn continuation_padding_priority_and_oversized_frames() {
    let mut run = Run::plain();
    let mut c = Enc::new();
    let long_name = "namename".repeat(5);
    let long_value = "valuevalue".repeat(10);
    let block = c.block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/tata"),
        (":authority", "x"),
        (&long_name, &long_value),
    ]);
    let (a, rest) = block.split_at(5);
    let (b, d) = rest.split_at(rest.len() / 2);
    // HEADERS with PADDED|PRIORITY, then two CONTINUATIONs.
    let mut first = vec![3u8, 0x80, 0, 0, 0, 16];
    first.extend_from_slice(a);
    first.extend_from_slice(&[0, 0, 0]);
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(1, 0x08 | 0x20 | 0x1, 1, &first));
    wire.extend(frame(9, 0, 1, b));
    wire.extend(frame(9, 0x4, 1, d));
    run.send(Dir::AtoB, &wire);
    let mut s = Enc::new();
    let mut wire = frame(
        1,
        0x4,
        1,
        &s.block(&[(":status", "200"), ("content-type", "application/octet-stream")]),
    );
    // A padded DATA frame of 70,000 bytes, above the default 16,384.
    let mut data = vec![10u8];
    data.extend(vec![b'x'; 70_000]);
    data.extend(vec![0u8; 10]);
    wire.extend(frame(0, 0x8 | 0x1, 1, &data));
    // Delivered in odd pieces to exercise partial-frame buffering.
    for chunk in wire.chunks(4097) {
        run.send(Dir::BtoA, chunk);
    }
    let (json, recs, summary) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "END:1"]);
    assert_eq!(json[0]["proto"], "http2");
    assert_eq!(json[0]["message"], "GET /tata");
    assert_eq!(json[0]["method"], "/tata");
    assert_eq!(json[1]["message"], "200 application/octet-stream 70000 bytes");
    assert_eq!(json[1]["size"], 70_000);
    assert!(recs[1].flags.names().contains(&"oversized-frame"));
    assert_eq!(summary.oversized_frames, 1);
    assert_eq!(summary.hpack_errors, 0);
}

#[test]
fn headers_option_keeps_continuation_fields() {
    let mut run = Run::new(
        prost_reflect::DescriptorPool::new(),
        DecodeOptions { headers: true, ..Default::default() },
        false,
    );
    let mut c = Enc::new();
    let block = c.block(&[(":method", "GET"), (":path", "/h"), ("x-custom", "v1")]);
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(1, 0x1, 1, &block[..2]));
    wire.extend(frame(9, 0x4, 1, &block[2..]));
    run.send(Dir::AtoB, &wire);
    let (_, recs, _) = run.finish();
    let h = recs[0].headers.as_ref().unwrap();
    assert!(h.contains(&("x-custom".to_string(), "v1".to_string())), "{h:?}");
    let j = to_json(&recs[0], true);
    assert_eq!(j["headers"][2], serde_json::json!(["x-custom", "v1"]));
}

#[test]
fn mid_stream_join_shows_placeholders() {
    let mut run = Run::new(prost_reflect::DescriptorPool::new(), DecodeOptions::default(), true);
    let (mut c, mut s) = (Enc::new(), Enc::new());
    // What happened before the capture: the first call filled both tables.
    let _ = grpc_request(&mut c, 1, "/greet.GreetService/Greet", &[("x-trace", "t1")]);
    let _ = s.block(&[(":status", "200"), ("content-type", "application/grpc")]);
    // Captured: a bit of a frame, then the second call, reusing those entries.
    let mut wire = vec![0x6f, 0x72, 0x6c];
    wire.extend(grpc_request(&mut c, 3, "/greet.GreetService/Greet", &[("x-trace", "t2")]));
    wire.extend(frame(0, 0x1, 3, &grpc_msg(0, &pb_string("Marie"))));
    run.send(Dir::AtoB, &wire);
    let mut wire =
        frame(1, 0x4, 3, &s.block(&[(":status", "200"), ("content-type", "application/grpc")]));
    wire.extend(frame(0, 0, 3, &grpc_msg(0, &pb_string("Hello Marie"))));
    wire.extend(frame(1, 0x5, 3, &s.block(&[("grpc-status", "0")])));
    run.send(Dir::BtoA, &wire);
    let (json, recs, summary) = run.finish();
    assert_eq!(types(&json), ["REQ:3", "RESP:3", "END:3"]);
    assert_eq!(json[0]["message"]["@raw"]["1"], "Marie");
    assert_eq!(json[1]["message"]["@raw"]["1"], "Hello Marie");
    assert_eq!(json[2]["grpc_status"], 0);
    // The request's :path was a whole dynamic entry never seen: no method.
    assert!(json[0]["method"].is_null(), "{}", json[0]["method"]);
    assert!(recs[0].flags.names().contains(&"unknown-headers"));
    assert!(summary.unknown_header_fields >= 4, "{summary:?}");
    assert_eq!(summary.joined_mid_stream, 1);
    assert_eq!(summary.resync_skipped_bytes, 3);
}

#[test]
fn gap_resyncs_at_next_frame_and_invents_nothing() {
    let mut run = Run::plain();
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(grpc_request(&mut c, 1, "/greet.GreetService/GreetMany", &[]));
    wire.extend(frame(0, 0x1, 1, &grpc_msg(0, &pb_string("Clement"))));
    run.send(Dir::AtoB, &wire);
    run.send(
        Dir::BtoA,
        &frame(1, 0x4, 1, &s.block(&[(":status", "200"), ("content-type", "application/grpc")])),
    );
    let m0 = frame(0, 0, 1, &grpc_msg(0, &pb_string("number 0")));
    let m1 = frame(0, 0, 1, &grpc_msg(0, &pb_string("number 1")));
    let m2 = frame(0, 0, 1, &grpc_msg(0, &pb_string("number 2")));
    let m3 = frame(0, 0, 1, &grpc_msg(0, &pb_string("number 3")));
    run.send(Dir::BtoA, &m0);
    // Half of m1 arrives, the rest and the start of m2 are lost.
    run.send(Dir::BtoA, &m1[..10]);
    run.gap(Dir::BtoA, 20);
    let mut after = m2[12..].to_vec();
    after.extend(&m3);
    after.extend(frame(1, 0x5, 1, &s.block(&[("grpc-status", "0")])));
    run.send(Dir::BtoA, &after);
    let (json, recs, summary) = run.finish();
    let resp: Vec<&str> = json
        .iter()
        .filter(|j| j["type"] == "RESP")
        .map(|j| j["message"]["@raw"]["1"].as_str().unwrap())
        .collect();
    assert_eq!(resp, ["number 0", "number 3"]);
    assert_eq!(summary.gaps, 1);
    assert!(recs.iter().any(|r| r.flags.names().contains(&"gap")));
    // The trailers block was encoded against a table the decoder had to forget;
    // grpc-status is a new literal so the END row still has it.
    assert_eq!(json.last().unwrap()["type"], "END");
}

#[test]
fn h2c_upgrade_follows_into_http2() {
    let mut run = Run::new(prost_reflect::DescriptorPool::new(), DecodeOptions::default(), true);
    let req = b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let mut wire = req.to_vec();
    wire.extend(PREFACE);
    wire.extend(settings(&[]));
    run.send(Dir::AtoB, &wire);
    let mut s = Enc::new();
    let mut wire =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    wire.extend(settings(&[]));
    wire.extend(frame(1, 0x4, 1, &s.block(&[(":status", "200"), ("content-type", "text/plain")])));
    wire.extend(frame(0, 0x1, 1, b"User-agent: *\n"));
    run.send(Dir::BtoA, &wire);
    let mut c = Enc::new();
    run.send(
        Dir::AtoB,
        &frame(
            1,
            0x5,
            3,
            &c.block(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/humans.txt"),
                (":authority", "x"),
            ]),
        ),
    );
    run.send(Dir::BtoA, &frame(1, 0x5, 3, &s.block(&[(":status", "404")])));
    let (json, _, summary) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "END:1", "REQ:3", "RESP:3", "END:3"]);
    assert_eq!(json[0]["message"], "GET /robots.txt");
    assert_eq!(json[1]["message"], "200 text/plain 14 bytes");
    assert_eq!(json[3]["message"], "GET /humans.txt");
    assert_eq!(json[4]["message"], "404 0 bytes");
    assert_eq!(summary.joined_mid_stream, 0);
}

#[test]
fn rst_stream_and_goaway() {
    let mut run = Run::plain();
    let mut c = Enc::new();
    let mut wire = PREFACE.to_vec();
    wire.extend(grpc_request(&mut c, 1, "/a.B/C", &[]));
    wire.extend(grpc_request(&mut c, 3, "/a.B/D", &[]));
    wire.extend(grpc_request(&mut c, 5, "/a.B/E", &[]));
    wire.extend(frame(3, 0, 1, &8u32.to_be_bytes()));
    run.send(Dir::AtoB, &wire);
    let mut goaway = 3u32.to_be_bytes().to_vec();
    goaway.extend(0u32.to_be_bytes());
    run.send(Dir::BtoA, &frame(7, 0, 0, &goaway));
    let (json, recs, summary) = run.finish();
    assert_eq!(types(&json), ["RST:1", "END:1", "END:5", "END:3"]);
    assert_eq!(json[0]["message"], "CANCEL");
    assert_eq!(json[0]["src"], "127.0.0.1:40000");
    assert!(recs[2].flags.names().contains(&"goaway"));
    assert!(recs[3].flags.names().contains(&"incomplete"));
    // Calls cut by the end of input end at the last time seen on the connection.
    assert_eq!(recs[3].ts_ns, recs[2].ts_ns);
    assert_eq!(summary.goaways, 1);
    assert_eq!(summary.resets, 1);
    assert_eq!(table::row(&recs[0]).unwrap()[4], "RST");
    assert!(table::row(&recs[1]).is_none(), "END rows without error are hidden in the table");
}

#[test]
fn any_with_containerd_style_type_url_is_expanded() {
    let pool = schema();
    let exit = prost_reflect::DynamicMessage::decode(
        pool.get_message_by_name("greet.TaskExit").unwrap(),
        &[0x0a, 3, b'c', b'1', b'2', 0x10, 137, 1][..],
    )
    .unwrap();
    let mut inner = Vec::new();
    prost::Message::encode(&exit, &mut inner).unwrap();
    // Any{type_url:"greet.TaskExit", value:...} inside Envelope{topic, event}.
    let mut any = vec![0x0a, 14];
    any.extend(b"greet.TaskExit");
    any.push(0x12);
    any.push(inner.len() as u8);
    any.extend(&inner);
    let mut env = vec![0x0a, 5];
    env.extend(b"/exit");
    env.push(0x12);
    env.push(any.len() as u8);
    env.extend(&any);
    let mut run = Run::new(pool, DecodeOptions::default(), false);
    unary(&mut run, "/greet.GreetService/Publish", &env, &env);
    let (json, recs, _) = run.finish();
    let ev = &json[0]["message"]["event"];
    assert_eq!(ev["@type"], "greet.TaskExit");
    assert_eq!(ev["containerId"], "c12");
    assert_eq!(ev["exitStatus"], 137);
    let cells = table::row(&recs[0]).unwrap();
    assert_eq!(
        cells[7],
        r#"Envelope{topic:"/exit", event:{TaskExit{container_id:"c12", exit_status:137}}}"#
    );
}

#[test]
fn message_cap_reports_size_only() {
    let opts = DecodeOptions { max_message: 16, ..Default::default() };
    let mut run = Run::new(prost_reflect::DescriptorPool::new(), opts, false);
    unary(&mut run, "/a.B/C", &pb_string("short"), &pb_string(&"x".repeat(100)));
    let (json, recs, summary) = run.finish();
    assert_eq!(json[0]["message"]["@raw"]["1"], "short");
    assert_eq!(json[1]["size"], 102);
    assert!(recs[1].flags.names().contains(&"too-large"));
    assert_eq!(summary.too_large_messages, 1);
}

#[test]
fn server_settings_before_preface_and_non_http2_ignored() {
    let mut run = Run::plain();
    run.send(Dir::BtoA, &settings(&[(5, 32_768)]));
    let mut c = Enc::new();
    let mut wire = PREFACE.to_vec();
    wire.extend(grpc_request(&mut c, 1, "/a.B/C", &[]));
    wire.extend(frame(0, 0x1, 1, &grpc_msg(0, &pb_string("x"))));
    run.send(Dir::AtoB, &wire);
    let (json, _, summary) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "END:1"]);
    assert_eq!(summary.http2_connections, 1);

    let mut run = Run::plain();
    run.send(Dir::AtoB, b"\x00\x01binary protocol that is not http/2 at all");
    run.send(Dir::BtoA, b"reply");
    let (json, _, summary) = run.finish();
    assert!(json.is_empty());
    assert_eq!(summary.other_connections, 1);
}

#[test]
fn filters() {
    let mut run = Run::new(schema(), DecodeOptions::default(), false);
    run.client_meta = Some(meta("dockerd", 100));
    run.server_meta = Some(meta("containerd", 200));
    unary(&mut run, "/greet.GreetService/Greet", &pb_string("a"), &pb_string("b"));
    let (_, recs, _) = run.finish();
    let f = Filter { method: Some(regex::Regex::new("Greet$").unwrap()), ..Default::default() };
    assert_eq!(recs.iter().filter(|r| f.matches(r)).count(), 3);
    let f = Filter { method: Some(regex::Regex::new("^/other").unwrap()), ..Default::default() };
    assert_eq!(recs.iter().filter(|r| f.matches(r)).count(), 0);
    let f = Filter { comm: Some("dockerd".into()), ..Default::default() };
    assert_eq!(recs.iter().filter(|r| f.matches(r)).count(), 1);
    // --pid matches the sender or its peer: 300 is containerd's peer.
    let f = Filter { pid: Some(300), ..Default::default() };
    assert_eq!(recs.iter().filter(|r| f.matches(r)).count(), 2);
}

#[test]
fn settings_header_table_size_bounds_size_updates() {
    let mut run = Run::plain();
    let mut c = Enc::new();
    let mut wire = PREFACE.to_vec();
    // The client lets the server's encoder use an 8 KiB table.
    wire.extend(settings(&[(1, 8192)]));
    wire.extend(frame(1, 0x5, 1, &c.block(&[(":method", "GET"), (":path", "/a")])));
    wire.extend(frame(1, 0x5, 3, &c.block(&[(":method", "GET"), (":path", "/b")])));
    run.send(Dir::AtoB, &wire);
    let mut s = Enc::new();
    let mut block = Vec::new();
    s.0.update_max_dynamic_size(8192, &mut block).unwrap();
    block.extend(s.block(&[(":status", "200"), ("x-big", &"v".repeat(5000))]));
    let mut wire = frame(1, 0x5, 1, &block);
    // The 5 KiB entry only fits the 8 KiB table: index 62 must still resolve.
    wire.extend(frame(1, 0x5, 3, &s.block(&[(":status", "200"), ("x-big", &"v".repeat(5000))])));
    run.send(Dir::BtoA, &wire);
    let (json, _, summary) = run.finish();
    assert_eq!(summary.hpack_errors, 0, "{summary:?}");
    assert_eq!(types(&json), ["REQ:1", "REQ:3", "RESP:1", "END:1", "RESP:3", "END:3"]);

    // Without that SETTINGS, the same update is a decoding error.
    let mut run = Run::plain();
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(1, 0x5, 1, &Enc::new().block(&[(":method", "GET"), (":path", "/a")])));
    run.send(Dir::AtoB, &wire);
    run.send(Dir::BtoA, &frame(1, 0x5, 1, &block));
    let (_, _, summary) = run.finish();
    assert_eq!(summary.hpack_errors, 1);
}

#[test]
fn push_promise_is_decoded_and_keeps_hpack_in_step() {
    let mut run = Run::plain();
    let mut c = Enc::new();
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(1, 0x5, 1, &c.block(&[(":method", "GET"), (":path", "/index.html")])));
    run.send(Dir::AtoB, &wire);
    let mut s = Enc::new();
    // PUSH_PROMISE (padded) for stream 2, then the pushed response.
    let mut pp = vec![2u8, 0, 0, 0, 2];
    pp.extend(s.block(&[(":method", "GET"), (":path", "/style.css"), (":authority", "x")]));
    pp.extend([0, 0]);
    let mut wire = frame(5, 0x4 | 0x8, 1, &pp);
    wire.extend(frame(1, 0x4, 1, &s.block(&[(":status", "200"), ("content-type", "text/html")])));
    wire.extend(frame(0, 0x1, 1, b"<html>"));
    wire.extend(frame(1, 0x4, 2, &s.block(&[(":status", "200"), ("content-type", "text/css")])));
    wire.extend(frame(0, 0x1, 2, b"body{}"));
    run.send(Dir::BtoA, &wire);
    let (json, _, summary) = run.finish();
    assert_eq!(summary.hpack_errors, 0);
    let rows: Vec<String> =
        json.iter().map(|j| format!("{} {} {}", j["type"], j["stream"], j["message"])).collect();
    assert_eq!(
        rows,
        [
            r#""REQ" 1 "GET /index.html""#,
            r#""RESP" 1 "200 text/html 6 bytes""#,
            r#""END" 1 null"#,
            r#""RESP" 2 "200 text/css 6 bytes""#,
            r#""END" 2 null"#,
        ]
    );
    assert_eq!(json[3]["method"], "/style.css");
}

#[test]
fn connect_prelude_is_followed_into_http2() {
    let mut run = Run::plain();
    let mut wire = b"CONNECT backend:443 HTTP/1.1\r\nHost: backend:443\r\n\r\n".to_vec();
    wire.extend(PREFACE);
    wire.extend(grpc_request(&mut Enc::new(), 1, "/a.B/C", &[]));
    wire.extend(frame(0, 0x1, 1, &grpc_msg(0, &pb_string("hi"))));
    run.send(Dir::AtoB, &wire);
    let mut wire = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    wire.extend(settings(&[]));
    let mut s = Enc::new();
    wire.extend(frame(
        1,
        0x4,
        1,
        &s.block(&[(":status", "200"), ("content-type", "application/grpc")]),
    ));
    wire.extend(frame(0, 0, 1, &grpc_msg(0, &pb_string("ho"))));
    wire.extend(frame(1, 0x5, 1, &s.block(&[("grpc-status", "0")])));
    run.send(Dir::BtoA, &wire);
    let (json, _, _) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "END:1"]);
    assert_eq!(json[1]["message"]["@raw"]["1"], "ho");
}

#[test]
fn placeholders_are_visible_in_headers() {
    let opts = DecodeOptions { headers: true, ..Default::default() };
    let mut run = Run::new(prost_reflect::DescriptorPool::new(), opts, true);
    let mut c = Enc::new();
    let _ = c.block(&[("x-seen-before", "yes")]);
    // Indexed 62 (the entry above), then a fresh literal.
    let mut block = vec![0xbe];
    block.extend(c.block(&[(":method", "GET"), (":path", "/p")]));
    run.send(Dir::AtoB, &frame(1, 0x5, 1, &block));
    let (_, recs, summary) = run.finish();
    let h = recs[0].headers.as_ref().unwrap();
    assert_eq!(h[0], ("<unknown #62>".to_string(), "<unknown #62>".to_string()));
    assert_eq!(h[2], (":path".to_string(), "/p".to_string()));
    assert_eq!(summary.unknown_header_fields, 1);
    assert_eq!(summary.joined_mid_stream, 1);
}

/// A busy session in both directions: streaming, compression, CONTINUATION,
/// padding, RST, GOAWAY.
fn session() -> (Vec<u8>, Vec<u8>) {
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut up = PREFACE.to_vec();
    up.extend(settings(&[(1, 8192), (5, 32768)]));
    let mut down = settings(&[(4, 65535)]);
    for id in (1..40).step_by(2) {
        let headers =
            grpc_request(&mut c, id, &format!("/svc.S/M{}", id % 5), &[("grpc-encoding", "gzip")]);
        let block = &headers[9..];
        let (a, b) = block.split_at(block.len() / 2);
        up.extend(frame(1, 0x8, id, &[&[1u8][..], a, &[0]].concat()));
        up.extend(frame(9, 0x4, id, b));
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&pb_string(&format!("request {id}"))).unwrap();
        up.extend(frame(0, 0x1, id, &grpc_msg(1, &g.finish().unwrap())));
        down.extend(frame(
            1,
            0x4,
            id,
            &s.block(&[(":status", "200"), ("content-type", "application/grpc")]),
        ));
        for k in 0..3 {
            down.extend(frame(0, 0, id, &grpc_msg(0, &pb_string(&format!("resp {id}.{k}")))));
        }
        if id % 7 == 0 {
            down.extend(frame(3, 0, id, &2u32.to_be_bytes()));
        } else {
            down.extend(frame(
                1,
                0x5,
                id,
                &s.block(&[("grpc-status", &(id % 3).to_string()), ("grpc-message", "x%20y")]),
            ));
        }
    }
    down.extend(frame(7, 0, 0, &[0, 0, 0, 39, 0, 0, 0, 0]));
    (up, down)
}

#[test]
fn intact_session_decodes_completely() {
    let (up, down) = session();
    let mut run = Run::plain();
    run.send(Dir::AtoB, &up);
    run.send(Dir::BtoA, &down);
    let (json, _, summary) = run.finish();
    assert_eq!(
        summary.hpack_errors + summary.frame_errors + summary.undecodable_messages,
        0,
        "{summary:?}"
    );
    assert_eq!(json.iter().filter(|j| j["type"] == "REQ").count(), 20);
    assert_eq!(json.iter().filter(|j| j["type"] == "RESP").count(), 60);
    assert_eq!(
        json.iter().filter(|j| j["type"] == "END").count(),
        20,
        "every call gets one END row"
    );
    assert_eq!(json.iter().filter(|j| j["type"] == "RST").count(), 3);
    assert_eq!(json[0]["message"]["@raw"]["1"], "request 1");
}

#[test]
fn mutated_sessions_chunks_and_gaps_never_panic() {
    let (up, down) = session();
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    let mut records = 0usize;
    for round in 0..300 {
        let mid = round % 3 == 0;
        let mut run = Run::new(
            prost_reflect::DescriptorPool::new(),
            DecodeOptions { max_message: 64, headers: true },
            mid,
        );
        let mut streams = [up.clone(), down.clone()];
        for s in &mut streams {
            for _ in 0..rng.below(20) {
                let at = rng.below(s.len());
                s[at] = rng.next() as u8;
            }
            if mid {
                let cut = rng.below(200);
                s.drain(..cut.min(s.len()));
            }
        }
        let mut pos = [0usize; 2];
        while pos[0] < streams[0].len() || pos[1] < streams[1].len() {
            let d = rng.below(2);
            let dir = if d == 0 { Dir::AtoB } else { Dir::BtoA };
            let len = 1 + rng.below(3000);
            let end = (pos[d] + len).min(streams[d].len());
            if rng.below(40) == 0 {
                run.gap(dir, (end - pos[d]) as u64);
            } else {
                let chunk = streams[d][pos[d]..end].to_vec();
                run.send(dir, &chunk);
            }
            pos[d] = end;
        }
        let (json, recs, _) = run.finish();
        assert_eq!(json.len(), recs.len());
        for r in &recs {
            let _ = table::row(r);
        }
        records += recs.len();
    }
    assert!(records > 1000, "mutated sessions should still decode mostly, got {records} records");
}

#[test]
fn bidi_streaming_interleaves_in_capture_order() {
    let mut run = Run::plain();
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(grpc_request(&mut c, 1, "/greet.GreetService/GreetEveryone", &[]));
    run.send(Dir::AtoB, &wire);
    run.send(
        Dir::BtoA,
        &frame(1, 0x4, 1, &s.block(&[(":status", "200"), ("content-type", "application/grpc")])),
    );
    for name in ["Clement", "Marie", "Test"] {
        run.send(Dir::AtoB, &frame(0, 0, 1, &grpc_msg(0, &pb_string(name))));
        run.send(Dir::BtoA, &frame(0, 0, 1, &grpc_msg(0, &pb_string(&format!("Hello {name}!")))));
    }
    run.send(Dir::AtoB, &frame(0, 0x1, 1, &[]));
    run.send(Dir::BtoA, &frame(1, 0x5, 1, &s.block(&[("grpc-status", "0")])));
    let (json, _, _) = run.finish();
    let rows: Vec<String> = json
        .iter()
        .map(|j| {
            format!(
                "{} {}",
                j["type"].as_str().unwrap(),
                j["message"]["@raw"]["1"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "REQ Clement",
            "RESP Hello Clement!",
            "REQ Marie",
            "RESP Hello Marie!",
            "REQ Test",
            "RESP Hello Test!",
            "END -"
        ]
    );
}

/// Regression: a plain request whose HEADERS lacks END_STREAM (completed by
/// CONTINUATION) printed its row only when the call ended, after the response.
#[test]
fn plain_request_row_comes_before_its_response() {
    let mut run = Run::plain();
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let block = c.block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/tata"),
        (":authority", "localhost"),
        ("x-long", &"v".repeat(100)),
    ]);
    let (first, rest) = block.split_at(10);
    let mut wire = PREFACE.to_vec();
    wire.extend(settings(&[]));
    wire.extend(frame(1, 0, 1, first)); // HEADERS, neither END_STREAM nor END_HEADERS
    wire.extend(frame(9, 0x4, 1, rest)); // CONTINUATION, END_HEADERS
    run.send(Dir::AtoB, &wire);
    let mut wire = settings(&[]);
    wire.extend(frame(1, 0x4, 1, &s.block(&[(":status", "200")])));
    wire.extend(frame(0, 0x1, 1, b"hello"));
    run.send(Dir::BtoA, &wire);
    // The server resets the stream after its complete response.
    run.send(Dir::BtoA, &frame(3, 0, 1, &0u32.to_be_bytes()));
    let (json, recs, _) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "END:1", "RST:1"]);
    assert_eq!(json[0]["message"], "GET /tata");
    assert!(recs[0].ts_ns < recs[1].ts_ns, "the request row has its own time");
    // One END per call; the late RST keeps the call's method.
    assert_eq!(json[3]["method"], "/tata");
    assert_eq!(json[3]["message"], "NO_ERROR");
}

/// A plain POST with a body is reported when its body ends, before the answer.
#[test]
fn plain_post_row_when_its_body_ends() {
    let mut run = Run::plain();
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    let head = c.block(&[(":method", "POST"), (":path", "/up"), (":scheme", "http")]);
    wire.extend(frame(1, 0x4, 1, &head));
    wire.extend(frame(0, 0, 1, b"abc"));
    wire.extend(frame(0, 0x1, 1, b"def"));
    run.send(Dir::AtoB, &wire);
    run.send(Dir::BtoA, &frame(1, 0x5, 1, &s.block(&[(":status", "204")])));
    let (json, _, _) = run.finish();
    assert_eq!(types(&json), ["REQ:1", "RESP:1", "END:1"]);
    assert_eq!(json[0]["size"], 6);
}

/// Frames for a stream the client cancelled do not open a second call.
#[test]
fn response_after_client_cancel_is_not_a_new_call() {
    let mut run = Run::plain();
    let (mut c, mut s) = (Enc::new(), Enc::new());
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(1, 0x5, 7, &c.block(&[(":method", "GET"), (":path", "/q")])));
    wire.extend(frame(3, 0, 7, &8u32.to_be_bytes()));
    run.send(Dir::AtoB, &wire);
    let mut wire = frame(1, 0x4, 7, &s.block(&[(":status", "200")]));
    wire.extend(frame(0, 0x1, 7, b"late"));
    run.send(Dir::BtoA, &wire);
    let (json, _, summary) = run.finish();
    assert_eq!(types(&json), ["REQ:7", "RST:7", "END:7"]);
    assert_eq!(json[1]["message"], "CANCEL");
    assert_eq!(json[1]["method"], "/q");
    assert_eq!(summary.hpack_errors, 0);
}
