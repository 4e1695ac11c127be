//! `dockersnoop decode` on a synthetic capture of the three protocols of a
//! `docker run` (issue 6): the docker CLI's HTTP/1.1 to dockerd, dockerd's
//! gRPC to containerd, containerd's ttrpc to a shim and the shim's event
//! forwarded back, all interleaved in one file.

mod reassembly_support;
mod wire_support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use wire_support::*;

/// Writes the session; returns the file's path inside `dir`.
fn docker_run_capture(dir: &Path) -> std::path::PathBuf {
    let mut cap = Capture::new();
    let cli = proc("docker", 100, 200);
    let dockerd = proc("dockerd", 200, 100);
    let dockerd_c = proc("dockerd", 200, 300);
    let containerd = proc("containerd", 300, 200);
    let containerd_s = proc("containerd", 300, 400);
    let shim = proc("containerd-shim", 400, 300);

    // 1. The CLI asks dockerd to create a container, with registry credentials.
    let mut api = cap.connect(1, cli.clone(), dockerd.clone());
    let body = br#"{"Image":"alpine","Cmd":["true"]}"#;
    let head = format!(
        "POST /v1.43/containers/create HTTP/1.1\r\nHost: api.moby.localhost\r\n\
         X-Registry-Auth: eyJwYXNzd29yZCI6Imh1bnRlcjIifQ==\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    cap.send(&mut api, true, head.as_bytes());
    cap.send(&mut api, true, body);

    // 2. dockerd asks containerd over gRPC.
    let mut grpc = cap.connect(2, dockerd_c.clone(), containerd.clone());
    let mut c = PREFACE.to_vec();
    c.extend(h2_frame(4, 0, 0, &[]));
    c.extend(h2_frame(
        1,
        4,
        1,
        &hpack_literals(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/containerd.services.namespaces.v1.Namespaces/Get"),
            (":authority", "localhost"),
            ("content-type", "application/grpc"),
        ]),
    ));
    c.extend(h2_frame(0, 1, 1, &grpc_message(&pb_bytes(1, b"moby"))));
    cap.send(&mut grpc, true, &c);
    let mut s = h2_frame(4, 0, 0, &[]);
    s.extend(h2_frame(
        1,
        4,
        1,
        &hpack_literals(&[(":status", "200"), ("content-type", "application/grpc")]),
    ));
    let ns = pb_bytes(1, &pb_bytes(1, b"moby"));
    s.extend(h2_frame(0, 0, 1, &grpc_message(&ns)));
    s.extend(h2_frame(1, 5, 1, &hpack_literals(&[("grpc-status", "0")])));
    cap.send(&mut grpc, false, &s);

    // 3. dockerd answers the CLI; the CLI starts the container.
    cap.send(
        &mut api,
        false,
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n\
          {\"Id\":\"4f2a\",\"Warnings\":[]}",
    );
    cap.send(&mut api, true, b"POST /v1.43/containers/4f2a/start HTTP/1.1\r\nHost: d\r\n\r\n");

    // 4. containerd starts the task in the shim over ttrpc; a Delete fails.
    let mut task = cap.connect(3, containerd_s.clone(), shim.clone());
    let start = ttrpc_request("containerd.task.v2.Task", "Start", &pb_bytes(1, b"4f2a"));
    cap.send(&mut task, true, &ttrpc_message(1, 1, &start));
    let del = ttrpc_request("containerd.task.v2.Task", "Delete", &pb_bytes(1, b"gone"));
    cap.send(&mut task, true, &ttrpc_message(3, 1, &del));
    cap.send(&mut task, false, &ttrpc_message(1, 2, &ttrpc_response(0, "", &pb_varint(1, 4242))));
    cap.send(
        &mut task,
        false,
        &ttrpc_message(3, 2, &ttrpc_response(5, "task gone: not found", &[])),
    );

    // 5. The shim forwards the TaskStart event to containerd.
    let mut events = cap.connect(4, shim.clone(), containerd.clone());
    let start_event = [pb_bytes(1, b"4f2a"), pb_varint(2, 4242)].concat();
    let any = [pb_bytes(1, b"containerd.events.TaskStart"), pb_bytes(2, &start_event)].concat();
    let envelope = [pb_bytes(2, b"moby"), pb_bytes(3, b"/tasks/start"), pb_bytes(4, &any)].concat();
    let fwd = ttrpc_request(
        "containerd.services.events.ttrpc.v1.Events",
        "Forward",
        &pb_bytes(1, &envelope),
    );
    cap.send(&mut events, true, &ttrpc_message(1, 1, &fwd));
    cap.send(&mut events, false, &ttrpc_message(1, 2, &ttrpc_response(0, "", &[])));

    // 6. dockerd answers the start.
    cap.send(&mut api, false, b"HTTP/1.1 204 No Content\r\n\r\n");
    for t in [&mut api, &mut grpc, &mut task, &mut events] {
        cap.close(t);
    }
    let path = dir.join("docker-run.pcapng");
    std::fs::write(&path, cap.bytes()).expect("write capture");
    path
}

fn decode(path: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .arg("decode")
        .arg(path)
        .args(args)
        .output()
        .expect("run dockersnoop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dockersnoop decode failed: {stderr}");
    assert!(!stderr.contains("warning"), "unexpected warnings: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json_rows(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn one_timeline_across_http1_grpc_and_ttrpc() {
    let dir = tempfile::tempdir().unwrap();
    let path = docker_run_capture(dir.path());
    let table = decode(&path, &["--full"]);
    println!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    let want = [
        ("docker ", "REQ", "POST /v1.43/containers/create", r#"{"Cmd":["true"],"Image":"alpine"}"#),
        (
            "dockerd ",
            "REQ",
            "/containerd.services.namespaces.v1.Namespaces/Get",
            r#"GetNamespaceRequest{name:"moby"}"#,
        ),
        (
            "containerd ",
            "RESP",
            "/containerd.services.namespaces.v1.Namespaces/Get",
            "GetNamespaceResponse{namespace:{name:\"moby\"}}",
        ),
        (
            "dockerd ",
            "RESP",
            "POST /v1.43/containers/create",
            r#"201 Created {"Id":"4f2a","Warnings":[]}"#,
        ),
        ("docker ", "REQ", "POST /v1.43/containers/4f2a/start", ""),
        ("containerd ", "REQ", "/containerd.task.v2.Task/Start", r#"StartRequest{id:"4f2a"}"#),
        ("containerd ", "REQ", "/containerd.task.v2.Task/Delete", r#"DeleteRequest{id:"gone"}"#),
        ("containerd-shim ", "RESP", "/containerd.task.v2.Task/Start", "StartResponse{pid:4242}"),
        (
            "containerd-shim ",
            "ERR",
            "/containerd.task.v2.Task/Delete",
            "NOT_FOUND: task gone: not found",
        ),
        (
            "containerd-shim ",
            "REQ",
            "/containerd.services.events.ttrpc.v1.Events/Forward",
            r#"event:{TaskStart{container_id:"4f2a", pid:4242}}"#,
        ),
        ("containerd ", "RESP", "/containerd.services.events.ttrpc.v1.Events/Forward", "Empty{}"),
        ("dockerd ", "RESP", "POST /v1.43/containers/4f2a/start", "204 No Content"),
    ];
    assert!(lines[0].starts_with("COMM"), "{table}");
    assert_eq!(lines.len(), want.len() + 1, "{table}");
    for (line, (comm, ty, method, message)) in lines[1..].iter().zip(want) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(line.starts_with(comm), "{line}");
        assert_eq!(cells[4], ty, "{line}");
        assert!(line.contains(&format!(" {method} ")) || line.ends_with(method), "{line}");
        assert!(line.contains(message), "{line} lacks {message}");
    }
    assert!(!table.contains("aHVudGVy") && !table.contains("eyJwYXNz"), "{table}");
}

#[test]
fn json_rows_name_their_protocol_and_protocol_selects() {
    let dir = tempfile::tempdir().unwrap();
    let path = docker_run_capture(dir.path());
    let all = json_rows(&decode(&path, &["--format", "json", "--headers"]));
    let protos: Vec<&str> = all.iter().map(|r| r["proto"].as_str().unwrap()).collect();
    for p in ["http1", "grpc", "ttrpc"] {
        assert!(protos.contains(&p), "{protos:?}");
    }
    // Capture order across connections: timestamps never go back.
    let ts: Vec<&str> = all.iter().map(|r| r["ts"].as_str().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    let create = all.iter().find(|r| r["type"] == "REQ" && r["proto"] == "http1").unwrap();
    let auth = create["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "X-Registry-Auth")
        .expect("the header, redacted");
    assert_eq!(auth[1], "<redacted 32 bytes>");
    assert_eq!(create["message"]["Image"], "alpine");
    let ends: Vec<&Value> = all.iter().filter(|r| r["type"] == "END").collect();
    assert!(ends.iter().all(|r| r["duration_us"].is_u64()), "{ends:?}");
    let err = all.iter().find(|r| r["type"] == "END" && r["grpc_status"] == 5).expect("ERR end");
    assert_eq!(err["proto"], "ttrpc");
    assert_eq!(err["grpc_message"], "task gone: not found");
    let fwd = all
        .iter()
        .find(|r| r["method"] == "/containerd.services.events.ttrpc.v1.Events/Forward")
        .unwrap();
    assert_eq!(fwd["message"]["envelope"]["event"]["@type"], "containerd.events.TaskStart");

    let only = json_rows(&decode(&path, &["--format", "json", "--protocol", "ttrpc,http1"]));
    assert!(!only.is_empty());
    assert!(only.iter().all(|r| r["proto"] == "ttrpc" || r["proto"] == "http1"), "{only:?}");
    assert_eq!(only.len(), all.iter().filter(|r| r["proto"] != "grpc").count());
    let grpc = json_rows(&decode(&path, &["--format", "json", "--protocol=grpc"]));
    assert_eq!(grpc.len(), 3, "{grpc:?}");
}

#[test]
fn unknown_protocol_name_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(["decode", "x.pcapng", "--protocol", "grpc,smtp"])
        .output()
        .expect("run dockersnoop");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("smtp") && err.contains("ttrpc"), "{err}");
}
