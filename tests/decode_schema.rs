//! Schemas end to end: a synthetic capture decoded with the built-in
//! containerd set, and with user schemas from --proto and --protoset.

mod decode_support;

use std::io::Write;
use std::path::Path;

use decode_support::*;
use dockersnoop::chunk::ProcMeta;
use prost::Message;

const GET: &str = "/containerd.services.namespaces.v1.Namespaces/Get";

fn meta(comm: &str, pid: u32, tid: u32, peer: u32) -> ProcMeta {
    ProcMeta { pid, tid, peer_pid: Some(peer), comm: comm.into(), ..Default::default() }
}

/// One call of `path` with protobuf bodies `req` and `resp`, sent by dockerd
/// to containerd.
fn call(path: &str, req: &[u8], resp: &[u8]) -> Vec<u8> {
    call_with_block(path, req, resp, None)
}

/// Same, with a custom block of ours (PEN, payload) between the request and
/// the response, where a recorder extracting schemas in the background puts it.
fn call_with_block(path: &str, req: &[u8], resp: &[u8], block: Option<&[u8]>) -> Vec<u8> {
    let mut cap = Capture::new();
    let mut tcp = Tcp::new(40000, 50051);
    tcp.client_meta = Some(meta("dockerd", 14768, 14770, 14455));
    tcp.server_meta = Some(meta("containerd", 14455, 14460, 14768));
    tcp.open(&mut cap);
    let (mut hc, mut hs) = (Hpack::default(), Hpack::default());
    let mut w = PREFACE.to_vec();
    w.extend(settings(&[]));
    w.extend(grpc_request(&mut hc, 1, path, &[]));
    w.extend(frame(0, 0x1, 1, &grpc_msg(false, req)));
    tcp.send(&mut cap, true, &w);
    if let Some(payload) = block {
        cap.custom(dockersnoop::chunk::PEN, payload);
    }
    let mut w = settings(&[]);
    w.extend(grpc_response(&mut hs, 1, &[]));
    w.extend(frame(0, 0, 1, &grpc_msg(false, resp)));
    w.extend(grpc_trailers(&mut hs, 1, 0, ""));
    tcp.send(&mut cap, false, &w);
    tcp.close(&mut cap);
    cap.into_inner()
}

/// GetNamespaceResponse{namespace: Namespace{name: "moby", labels: {"a": "b"}}}.
fn namespace_response() -> Vec<u8> {
    let label = [&[0x0a, 1, b'a', 0x12, 1, b'b'][..]].concat();
    let mut ns = pb_string("moby");
    ns.push(0x12);
    ns.push(label.len() as u8);
    ns.extend(label);
    let mut v = vec![0x0a, ns.len() as u8];
    v.extend(ns);
    v
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn builtin_containerd_schema() {
    let dir = tempdir();
    let f = write(dir.path(), "ns.pcapng", &call(GET, &pb_string("moby"), &namespace_response()));
    let (json, out) = decode_json(&[p(&f)]);
    assert_eq!(out.stderr, "");
    assert_eq!(kinds(&json), ["REQ:1", "RESP:1", "END:1"]);
    assert_eq!(json[0]["message_type"], "containerd.services.namespaces.v1.GetNamespaceRequest");
    assert_eq!(json[0]["message"], serde_json::json!({"name": "moby"}));
    assert_eq!(json[1]["message_type"], "containerd.services.namespaces.v1.GetNamespaceResponse");
    assert_eq!(
        json[1]["message"],
        serde_json::json!({"namespace": {"name": "moby", "labels": {"a": "b"}}})
    );
    assert_eq!(json[0]["comm"], "dockerd");

    // The issue's example line, column for column.
    let out = run(&["decode", "--full", p(&f)], &[]);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "dockerd",
            "14768",
            "14770",
            "14455",
            "REQ",
            "1",
            GET,
            r#"GetNamespaceRequest{name:"moby"}"#
        ]
    );
    let head = lines[0];
    let at = |l: &str, w: &str| l.find(w).unwrap();
    assert_eq!(at(head, "METHOD"), at(lines[1], GET));
    assert_eq!(at(head, "MESSAGE"), at(lines[1], "GetNamespaceRequest{"));
    assert!(lines[2].contains("GetNamespaceResponse{namespace:"), "{}", lines[2]);
}

const USER_PROTO: &str = r#"
syntax = "proto3";
package acme.v1;
message Ping { string text = 1; int32 count = 2; }
message Pong { repeated string echoes = 1; }
service Echo { rpc Ping(Ping) returns (Pong); }
"#;

#[test]
fn user_schemas_from_proto_and_protoset() {
    let dir = tempdir();
    let proto_dir = dir.path().join("protos");
    std::fs::create_dir(&proto_dir).unwrap();
    let proto = proto_dir.join("echo.proto");
    std::fs::File::create(&proto).unwrap().write_all(USER_PROTO.as_bytes()).unwrap();
    let set = protox::compile([&proto], [&proto_dir]).unwrap();
    let protoset = write(dir.path(), "echo.protoset", &set.encode_to_vec());

    let mut req = pb_string("hi");
    req.extend([0x10, 3]);
    let mut resp = pb_string("hi");
    resp.extend(pb_string("hi"));
    let f = write(dir.path(), "echo.pcapng", &call("/acme.v1.Echo/Ping", &req, &resp));

    // Without the schema: a raw decode.
    let (raw, _) = decode_json(&[p(&f)]);
    assert!(raw[0]["message_type"].is_null());
    assert_eq!(raw[0]["message"]["@raw"]["2"], 3);

    let with_proto = ["--proto", p(&proto), "--import-path", p(&proto_dir), p(&f)];
    let with_set = ["--protoset", p(&protoset), p(&f)];
    for args in [&with_proto[..], &with_set[..]] {
        let (json, out) = decode_json(args);
        assert_eq!(out.stderr, "", "{args:?}");
        assert_eq!(json[0]["message_type"], "acme.v1.Ping", "{args:?}");
        assert_eq!(json[0]["message"], serde_json::json!({"text": "hi", "count": 3}));
        assert_eq!(json[1]["message_type"], "acme.v1.Pong");
        assert_eq!(json[1]["message"], serde_json::json!({"echoes": ["hi", "hi"]}));
        let mut table = vec!["decode", "--full"];
        table.extend_from_slice(args);
        let out = run(&table, &[]);
        assert!(out.lines()[1].ends_with(r#"Ping{text:"hi", count:3}"#), "{}", out.stdout);
    }
}

#[test]
fn schema_embedded_in_the_capture() {
    let dir = tempdir();
    let proto_dir = dir.path().join("protos");
    std::fs::create_dir(&proto_dir).unwrap();
    let proto = proto_dir.join("echo.proto");
    std::fs::write(&proto, USER_PROTO).unwrap();
    let set = protox::compile([&proto], [&proto_dir]).unwrap();
    let payload = dockersnoop::schema::encode_embedded(&set).unwrap();
    let mut req = pb_string("hi");
    req.extend([0x10, 3]);
    let bytes = call_with_block("/acme.v1.Echo/Ping", &req, &pb_string("hi"), Some(&payload));
    let f = write(dir.path(), "embedded.pcapng", &bytes);
    // The block comes after the request in the file; the request is still typed.
    let (json, out) = decode_json(&[p(&f)]);
    assert_eq!(out.stderr, "");
    assert_eq!(json[0]["message_type"], "acme.v1.Ping");
    assert_eq!(json[0]["message"], serde_json::json!({"text": "hi", "count": 3}));
    assert_eq!(json[1]["message"], serde_json::json!({"echoes": ["hi"]}));
    // `schema list` reads the same block through the same reader, also zstd-compressed.
    let zst = write(dir.path(), "embedded.pcapng.zst", &zstd::encode_all(&bytes[..], 3).unwrap());
    for file in [&f, &zst] {
        let out = run(&["schema", "list", p(file)], &[]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert!(out.stdout.contains("/acme.v1.Echo/Ping"), "{}", out.stdout);
        assert!(out.stdout.contains("acme.v1.Pong"), "{}", out.stdout);
    }
}

#[test]
fn schema_errors_name_the_schema_file_before_any_capture() {
    let dir = tempdir();
    let cap = write(dir.path(), "c.pcapng", &call(GET, b"", b""));
    let bad = write(
        dir.path(),
        "bad.proto",
        b"syntax = \"proto3\";\npackage x;\nmessage A { int32 a = 1\n}\n",
    );
    let out = run(&["decode", "--proto", p(&bad), p(&cap)], &[]);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr.trim_end(),
        format!("dockersnoop: {}:4:1: expected ';' or '[', but found '}}'", bad.display())
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // The same from a missing import, named where it is imported.
    let imp = write(dir.path(), "imp.proto", b"syntax = \"proto3\";\nimport \"no/dep.proto\";\n");
    let out = run(&["decode", "--proto", p(&imp), p(&cap)], &[]);
    assert_eq!(
        out.stderr.trim_end(),
        format!("dockersnoop: {}:2:1: import 'no/dep.proto' not found", imp.display())
    );
}
