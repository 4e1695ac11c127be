//! `dockersnoop decode --format json` on the third-party captures in
//! ../shared/testdata/captures, asserting the facts of its README. Every line
//! of output is parsed as JSON.

mod decode_support;

use std::path::PathBuf;

use decode_support::{decode_json, kinds, rows, run};
use serde_json::Value;

/// A capture under ../shared/testdata/captures, which must exist.
fn capture(rel: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/captures");
    assert!(
        root.is_dir(),
        "{} is missing: these tests need the shared test data next to the crate \
         (see ../shared/testdata/README.md)",
        root.display()
    );
    let p = root.join(rel);
    assert!(p.is_file(), "{} is missing from the shared test data", p.display());
    p.to_str().expect("UTF-8 path").to_string()
}

/// The decoded protobuf field 1 of a raw-decoded message.
fn field1(j: &Value) -> &str {
    j["message"]["@raw"]["1"].as_str().unwrap_or_else(|| panic!("no raw field 1 in {j}"))
}

/// Header `name` of a row decoded with --headers.
fn header<'a>(j: &'a Value, name: &str) -> Option<&'a str> {
    j["headers"].as_array()?.iter().find(|h| h[0] == name).and_then(|h| h[1].as_str())
}

fn one_grpc_call(file: &str, method: &str) -> Vec<Value> {
    let (json, out) = decode_json(&[&capture(file)]);
    assert_eq!(out.stderr, "", "no warnings expected");
    for j in &json {
        assert_eq!(j["method"], method, "{j}");
        assert_eq!(j["proto"], "grpc");
        assert_eq!(j["stream"], 1);
        assert!(j["message_type"].is_null(), "no schema knows greet.proto");
    }
    let ends = rows(&json, "END");
    assert_eq!(ends.len(), 1, "exactly one call: {:?}", kinds(&json));
    assert_eq!(ends[0]["grpc_status"], 0);
    assert_eq!(json.last(), Some(ends[0]), "END comes last");
    json
}

#[test]
fn unary() {
    let json = one_grpc_call("packt-grpc-go/Unary.pcapng", "/greet.GreetService/Greet");
    assert_eq!(kinds(&json), ["REQ:1", "RESP:1", "END:1"]);
    assert_eq!(field1(&json[0]), "Clement");
    assert_eq!(field1(&json[1]), "Hello Clement");
    assert_ne!(json[0]["src"], "[::1]:50051", "the client sends the request");
    assert_eq!(json[0]["dst"], "[::1]:50051");
    assert_eq!(json[0]["size"], 9, "0a 07 Clement");
    // The unrelated 127.0.0.1:3220 flow yields nothing.
    assert!(json.iter().all(|j| !j.to_string().contains("3220")));
    // The request carried an authorization header.
    let (json, _) =
        decode_json(&["--headers", &capture("packt-grpc-go/Unary.pcapng"), "--method", "Greet$"]);
    let req = rows(&json, "REQ");
    assert!(header(req[0], "authorization").is_some(), "{}", req[0]);
}

#[test]
fn server_streaming() {
    let file = "packt-grpc-go/Server_Streaming.pcapng";
    let json = one_grpc_call(file, "/greet.GreetService/GreetManyTimes");
    let req = rows(&json, "REQ");
    assert_eq!(req.len(), 1);
    assert_eq!(field1(req[0]), "Clement");
    let resp: Vec<&str> = rows(&json, "RESP").into_iter().map(field1).collect();
    let want: Vec<String> = (0..10).map(|i| format!("Hello Clement, number {i}")).collect();
    assert_eq!(resp, want);
}

#[test]
fn client_streaming() {
    let json =
        one_grpc_call("packt-grpc-go/Client_Streaming.pcapng", "/greet.GreetService/LongGreet");
    let req: Vec<&str> = rows(&json, "REQ").into_iter().map(field1).collect();
    assert_eq!(req, ["Clement", "Marie", "Test"]);
    let resp = rows(&json, "RESP");
    assert_eq!(resp.len(), 1);
    assert_eq!(kinds(&json), ["REQ:1", "REQ:1", "REQ:1", "RESP:1", "END:1"]);
}

#[test]
fn bidi_streaming() {
    let file = "packt-grpc-go/Bidi_Streaming.pcapng";
    let json = one_grpc_call(file, "/greet.GreetService/GreetEveryone");
    let req: Vec<&str> = rows(&json, "REQ").into_iter().map(field1).collect();
    assert_eq!(req, ["Clement", "Marie", "Test"]);
    let resp: Vec<&str> = rows(&json, "RESP").into_iter().map(field1).collect();
    assert_eq!(resp, ["Hello Clement!", "Hello Marie!", "Hello Test!"]);
    // In capture order: each answer follows its request.
    let k = kinds(&json);
    assert_eq!(k, ["REQ:1", "RESP:1", "REQ:1", "RESP:1", "REQ:1", "RESP:1", "END:1"]);
}

#[test]
fn http2_keywords() {
    let (json, out) =
        decode_json(&["--headers", &capture("suricata-verify/http2-keywords__input.pcap")]);
    assert_eq!(out.stderr, "");
    let req = rows(&json, "REQ");
    let streams: Vec<u64> = req.iter().map(|j| j["stream"].as_u64().unwrap()).collect();
    assert_eq!(streams, [1, 3, 5, 7, 9, 11]);
    assert!(req.iter().all(|j| j["message"].as_str().unwrap().starts_with("GET /")));
    assert!(req.iter().all(|j| j["proto"] == "http2"));
    assert_eq!(req[0]["method"], "/doc/manual/html/index.html");
    assert_eq!(header(req[0], ":authority"), Some("localhost:3000"));
    // Stream 3's block starts with two table size updates; it still decodes.
    assert_eq!(header(req[1], ":authority"), Some("localhost:3000"));
    let resp1: Vec<&Value> = rows(&json, "RESP").into_iter().filter(|j| j["stream"] == 1).collect();
    assert_eq!(resp1.len(), 1);
    assert_eq!(resp1[0]["size"], 22617);
    assert_eq!(header(resp1[0], ":status"), Some("200"));
    assert!(resp1[0]["message"].as_str().unwrap().starts_with("200 "));
    assert_eq!(rows(&json, "END").len(), 6);
}

#[test]
fn http2_keywords2_h2c_upgrade() {
    let (json, _) = decode_json(&[&capture("suricata-verify/http2-keywords2__input.pcap")]);
    let find = |ty: &str, s: u64| -> Vec<&Value> {
        json.iter().filter(|j| j["type"] == ty && j["stream"] == s).collect()
    };
    assert_eq!(find("REQ", 1)[0]["method"], "/robots.txt");
    assert!(find("RESP", 1)[0]["message"].as_str().unwrap().starts_with("200 "));
    assert_eq!(find("REQ", 3)[0]["method"], "/humans.txt");
    assert!(find("RESP", 3)[0]["message"].as_str().unwrap().starts_with("404 "));
    assert_eq!(kinds(&json).len(), 6, "{:?}", kinds(&json));
}

#[test]
fn http2_continuation() {
    let file = capture("suricata-verify/http2-continuation__input.pcap");
    let (json, _) = decode_json(&["--headers", &file]);
    // The request (packets 14-19) comes before the response (packet 25).
    assert_eq!(kinds(&json), ["REQ:1", "RESP:1", "END:1", "RST:1"]);
    let req = &json[0];
    assert_eq!(req["message"], "GET /tata");
    let headers = req["headers"].as_array().unwrap();
    assert_eq!(headers.len(), 7);
    assert_eq!(headers[6][0], "namename".repeat(5));
    assert_eq!(headers[6][1], "value".repeat(20));
    assert!(json[0]["ts"].as_str() < json[1]["ts"].as_str());
    assert_eq!(json[1]["size"], 13);
    assert!(json[1]["message"].as_str().unwrap().starts_with("200 "));
    // One END; the server's RST_STREAM(NO_ERROR) keeps the method.
    assert_eq!(json[3]["message"], "NO_ERROR");
    assert_eq!(json[3]["method"], "/tata");
    assert_eq!(json[3]["src"], "127.0.0.1:8080");

    // The table: the request row first, heading and rows aligned.
    let out = run(&["decode", "--full", &file], &[]);
    assert_eq!(out.status, 0);
    let lines = out.lines();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[1].contains(" REQ ") && lines[2].contains(" RESP "), "{}", out.stdout);
    let col = |l: &str, w: &str| l.find(w).unwrap();
    let stream_col = col(lines[0], "STREAM");
    let method_col = col(lines[0], "METHOD");
    for l in &lines[1..] {
        assert_eq!(&l[stream_col..stream_col + 2], "1 ", "{}", out.stdout);
        assert_eq!(&l[method_col..method_col + 5], "/tata", "{}", out.stdout);
    }
}

#[test]
fn http2_long_frame() {
    let file = capture("suricata-verify/http2-long-frame__input.pcap");
    let (json, _) = decode_json(&[&file]);
    let req3: Vec<&Value> = rows(&json, "REQ").into_iter().filter(|j| j["stream"] == 3).collect();
    assert_eq!(req3.len(), 1);
    assert_eq!(req3[0]["method"], "/malware/payload.exe");
    let resp1: Vec<&Value> = rows(&json, "RESP").into_iter().filter(|j| j["stream"] == 1).collect();
    assert_eq!(resp1[0]["size"], 70000);
    // The table flags the frame above SETTINGS_MAX_FRAME_SIZE.
    let out = run(&["decode", "--full", &file], &[]);
    let flagged: Vec<&str> =
        out.lines().into_iter().filter(|l| l.contains("oversized-frame")).collect();
    assert_eq!(flagged.len(), 1, "{}", out.stdout);
    assert!(flagged[0].contains("70000 bytes") && flagged[0].contains(" RESP "));
}

#[test]
fn dns_over_http2_cancel() {
    let (json, _) = decode_json(&[&capture("suricata-verify/dns-over-http2__dns_over_https.pcap")]);
    let req = rows(&json, "REQ");
    assert_eq!(req.len(), 4);
    assert!(req.iter().all(|j| j["message"].as_str().unwrap().starts_with("GET /dns-query?dns=")));
    let rst = rows(&json, "RST");
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0]["stream"], 7);
    assert_eq!(rst[0]["message"], "CANCEL");
    assert_eq!(rst[0]["src"], req[0]["src"], "the client cancelled");
    assert!(rst[0]["method"].as_str().unwrap().starts_with("/dns-query?dns="));
    // One END per call, nothing for the cancelled stream afterwards.
    assert_eq!(rows(&json, "END").len(), 4);
    let after: Vec<String> = kinds(&json).into_iter().skip_while(|k| k != "RST:7").collect();
    assert_eq!(after, ["RST:7", "END:7"]);
}

#[test]
fn deflate_cases_end_with_goaway() {
    for (file, goaway) in [
        ("suricata-verify/http2-deflate__http2_deflate.pcap", false),
        ("suricata-verify/http2-deflate-case__input.pcap", true),
    ] {
        let path = capture(file);
        let (json, _) = decode_json(&[&path]);
        assert_eq!(rows(&json, "REQ").len(), 1, "{file}");
        let resp = rows(&json, "RESP");
        assert!(resp[0]["message"].as_str().unwrap().starts_with("200 "), "{file}");
        assert_eq!(rows(&json, "END").len(), 1, "{file}");
        let out = run(&["decode", "-vv", "--format", "json", &path], &[]);
        assert_eq!(
            out.stderr.contains(": GOAWAY last stream 1 NO_ERROR"),
            goaway,
            "{file}: {}",
            out.stderr
        );
    }
}

#[test]
fn single_stream_captures() {
    let cases = [
        ("suricata-verify/bug-5929-02__http2_multiple_headers.pcap", "/watchdog/watchdog.exe"),
        ("suricata-verify/http2-authority-mismatch__authority_and_host_2.pcap", "/"),
        ("suricata-verify/http2-userinfo-authority__http2_userinfo_in_authority_1.pcap", "/"),
    ];
    for (file, path) in cases {
        let (json, _) = decode_json(&["--headers", &capture(file)]);
        let req = rows(&json, "REQ");
        assert_eq!(req.len(), 1, "{file}");
        assert_eq!(req[0]["method"], path);
        assert_eq!(rows(&json, "RESP").len(), 1, "{file}");
        let authority = header(req[0], ":authority").unwrap();
        if file.contains("mismatch") {
            assert_eq!((authority, header(req[0], "host")), ("example.com", Some("foo.com")));
        }
        if file.contains("userinfo") {
            assert_eq!(authority, "username:password@secdsm.org");
        }
        if file.contains("5929") {
            assert_eq!(header(req[0], "uuid"), Some("ff82941f-1353-49cf-a489-42af89954fbc"));
        }
    }
}

#[test]
fn bugfixes_four_streams() {
    let (json, _) = decode_json(&[&capture("suricata-verify/http2-bugfixes__input.pcap")]);
    let streams: Vec<u64> =
        rows(&json, "REQ").iter().map(|j| j["stream"].as_u64().unwrap()).collect();
    assert_eq!(streams, [1, 3, 5, 7]);
    assert_eq!(rows(&json, "RESP").len(), 4);
}

#[test]
fn ptcpdump_http1_once_despite_duplicates() {
    // Every packet of this capture appears twice (loopback out and in): the
    // request and the 404 must each come out once, with the 469-byte body.
    let out = run(&["decode", "--format", "json", &capture("ptcpdump/tcp.pcapng")], &[]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let json = out.json();
    let reqs = rows(&json, "REQ");
    assert_eq!(reqs.len(), 1, "{}", out.stdout);
    assert_eq!(reqs[0]["method"], "GET /notfound");
    assert_eq!(reqs[0]["proto"], "http1");
    let resps = rows(&json, "RESP");
    assert_eq!(resps.len(), 1, "{}", out.stdout);
    assert_eq!(resps[0]["http_status"], 404);
    assert_eq!(resps[0]["size"], 469);
    assert_eq!(rows(&json, "END").len(), 1);
    assert_eq!(out.stderr, "", "no warnings for a clean HTTP/1 capture");
}
