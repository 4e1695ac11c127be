//! The scenario dockersnoop exists for: a real `docker run` talking to a
//! real containerd, recorded and decoded.
//!
//! containerd runs with GODEBUG=http2debug=2, so its log is an independent
//! record of every HTTP/2 HEADERS frame it read: our decode must show the
//! same `:path` on the same stream ids, and nothing it did not read. A
//! second recording starts after dockerd is connected and must still decode,
//! with placeholders for the header table entries it missed and a warning
//! that says so.
//!
//! Needs root, containerd, runc, docker.io and busybox-static; fails, loudly,
//! when any is missing. `DOCKERSNOOP_SAMPLE_OUT=FILE` keeps the first
//! capture (how testdata/docker-run.pcapng.zst was made).

mod daemons;
mod record_common;

use std::collections::BTreeMap;

use daemons::{decode, require_program, Scene};
use record_common::{require_root, Recorder};
use serde_json::Value;

const IMAGE: &str = "dockersnoop-busybox:test";

const CONTAINERS: &str = "/containerd.services.containers.v1.Containers/";
const TASKS: &str = "/containerd.services.tasks.v1.Tasks/";
const SUBSCRIBE: &str = "/containerd.services.events.v1.Events/Subscribe";

/// The response type each call of a container's life must be decoded with.
const RESPONSE_TYPES: [(&str, &str); 5] = [
    ("Containers/Create", "containerd.services.containers.v1.CreateContainerResponse"),
    ("Tasks/Create", "containerd.services.tasks.v1.CreateTaskResponse"),
    ("Tasks/Start", "containerd.services.tasks.v1.StartResponse"),
    ("Tasks/Delete", "containerd.services.tasks.v1.DeleteResponse"),
    ("Containers/Delete", "google.protobuf.Empty"),
];

/// The sockets a docker run goes through.
fn sockets(scene: &Scene) -> Vec<String> {
    let c = scene.containerd_sock().to_string_lossy().into_owned();
    let d = scene.docker_sock().to_string_lossy().into_owned();
    let mut v = Vec::new();
    for s in [c.clone(), format!("{c}.ttrpc"), "/run/containerd/s/*".into(), d] {
        v.push("--socket".to_string());
        v.push(s);
    }
    v
}

fn docker_run(scene: &Scene) {
    let out = scene.docker(&["run", "--rm", "--network", "none", IMAGE, "echo", "hello"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "hello",
        "docker run: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Every (stream id, :path) of the HEADERS frames containerd read, from its
/// http2debug log, counted. Go logs a frame as
/// `http2: Framer 0x…: read HEADERS flags=… stream=N len=…` and then each
/// field it decoded as `http2: decoded hpack field header field ":path" = "…"`.
fn logged_paths(log: &str) -> BTreeMap<(u64, String), usize> {
    let mut out = BTreeMap::new();
    let mut stream = None;
    for line in log.lines() {
        if let Some(rest) = line.split_once(": read HEADERS ").map(|(_, r)| r) {
            stream = rest
                .split(' ')
                .find_map(|w| w.strip_prefix("stream="))
                .and_then(|n| n.parse::<u64>().ok());
            continue;
        }
        if let Some((_, v)) = line.split_once("decoded hpack field header field \":path\" = ") {
            let path = v.trim().trim_matches('"').to_string();
            let s = stream.expect("a :path logged before any HEADERS frame");
            *out.entry((s, path)).or_insert(0) += 1;
        }
    }
    out
}

/// Every (stream id, method) of the gRPC calls we decoded to `server_pid`,
/// counted once per call.
fn decoded_paths(records: &[Value], server_pid: u64) -> BTreeMap<(u64, String), usize> {
    let mut calls = BTreeMap::new();
    for r in records {
        let to_server = r["peer_pid"].as_u64() == Some(server_pid);
        let from_server = r["pid"].as_u64() == Some(server_pid);
        let grpc = field(r, "proto") == "grpc";
        if !grpc || !(to_server || from_server) || field(r, "method").is_empty() {
            continue;
        }
        let key = (field(r, "conn").to_string(), r["stream"].as_u64().unwrap());
        calls.insert(key, field(r, "method").to_string());
    }
    let mut out = BTreeMap::new();
    for ((_, stream), method) in calls {
        *out.entry((stream, method)).or_insert(0) += 1;
    }
    out
}

/// Index of the first record after `from` that matches.
fn find(records: &[Value], from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    records
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, r)| pred(r))
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no {what} after record {from}"))
}

fn request(records: &[Value], from: usize, method: &str) -> usize {
    find(records, from, &format!("REQ {method}"), |r| {
        field(r, "type") == "REQ" && field(r, "method") == method
    })
}

fn envelope(records: &[Value], from: usize, topic: &str) -> usize {
    let i = find(records, from, &format!("{topic} envelope"), |r| {
        field(r, "method") == SUBSCRIBE && r["message"]["topic"] == topic
    });
    let event = &records[i]["message"]["event"];
    assert!(
        event.get("@type").is_some() && event.get("value").is_none(),
        "the {topic} event is not decoded: {event}"
    );
    i
}

/// The calls of a container's life, in causal order, each response with
/// its own type. `events`: the events stream was opened while recording,
/// so its envelopes can be told by method and type.
fn check_container_life(records: &[Value], events: bool) {
    check_one_timeline(records);
    let create = request(records, 0, &format!("{CONTAINERS}Create"));
    let task_create = request(records, create, &format!("{TASKS}Create"));
    let start = request(records, task_create, &format!("{TASKS}Start"));
    let delete = if events {
        let started = envelope(records, start, "/tasks/start");
        let exited = envelope(records, started, "/tasks/exit");
        let delete = request(records, exited, &format!("{TASKS}Delete"));
        envelope(records, delete, "/tasks/delete");
        delete
    } else {
        request(records, start, &format!("{TASKS}Delete"))
    };
    request(records, delete, &format!("{CONTAINERS}Delete"));

    for (method, ty) in RESPONSE_TYPES {
        let resp = records
            .iter()
            .find(|r| field(r, "type") == "RESP" && field(r, "method").ends_with(method))
            .unwrap_or_else(|| panic!("no response to {method}"));
        assert_eq!(field(resp, "message_type"), ty, "response to {method}: {resp}");
    }
    let with_method = |r: &&Value| !field(r, "method").is_empty();
    let protobuf = |r: &&Value| matches!(field(r, "proto"), "grpc" | "ttrpc");
    let responses = records.iter().filter(|r| field(r, "type") == "RESP");
    for r in responses.filter(protobuf).filter(with_method) {
        assert!(!field(r, "message_type").is_empty(), "response decoded without a type: {r}");
    }
}

/// The three protocols of a docker run in one time-ordered output (issue 6):
/// the CLI's HTTP/1.1 to dockerd, dockerd's gRPC to containerd, containerd's
/// ttrpc to the shim, each decoded with its schema, causes before effects.
fn check_one_timeline(records: &[Value]) {
    let ts: Vec<&str> = records.iter().map(|r| field(r, "ts")).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "rows are not in time order");

    let http1 = |suffix: &'static str| {
        move |r: &Value| {
            field(r, "proto") == "http1"
                && field(r, "type") == "REQ"
                && field(r, "method").starts_with("POST /v1.")
                && field(r, "method").split('?').next().unwrap_or("").ends_with(suffix)
        }
    };
    let ttrpc = |method: &'static str| {
        move |r: &Value| {
            field(r, "proto") == "ttrpc"
                && field(r, "type") == "REQ"
                && field(r, "method") == format!("/containerd.task.v2.Task/{method}")
        }
    };
    let cli_create =
        find(records, 0, "the CLI's POST /containers/create", http1("/containers/create"));
    // dockerd creates the containerd container when the CLI starts it.
    let cli_start = find(records, cli_create, "the CLI's POST …/start", http1("/start"));
    let grpc_create = request(records, cli_start, &format!("{CONTAINERS}Create"));
    let shim_create = find(records, grpc_create, "ttrpc Task/Create", ttrpc("Create"));
    let shim_start = find(records, shim_create, "ttrpc Task/Start", ttrpc("Start"));
    find(records, shim_start, "ttrpc Task/Delete", ttrpc("Delete"));
    find(records, 0, "the CLI's POST …/wait", http1("/wait"));
    for i in [shim_create, shim_start] {
        let ty = field(&records[i], "message_type");
        assert!(ty.starts_with("containerd.task.v2."), "ttrpc request not typed: {}", records[i]);
    }
    assert!(
        records.iter().any(|r| field(r, "proto") == "http1"
            && r["message"]["stream"] == "stdout"
            && r["message"]["text"] == "hello\n"),
        "the container's stdout does not appear in the attach stream"
    );
}

#[test]
fn docker_run_recorded_from_the_start_and_mid_stream() {
    require_root();
    for (p, pkg) in [("runc", "runc"), ("ctr", "containerd"), ("tar", "tar")] {
        require_program(p, pkg);
    }
    let mut scene = Scene::new("dockersnoop-e2e-");
    let containerd_pid = u64::from(scene.start_containerd(true));

    // The image is imported by a first dockerd, so that the recording does
    // not hold the image upload on docker's socket.
    scene.start_dockerd();
    scene.import_busybox(IMAGE);
    scene.stop_dockerd();

    // 1. Recording starts before dockerd connects.
    let log_start = scene.containerd_log().len();
    let out = scene.path().join("run.pcapng");
    let args: Vec<String> = sockets(&scene);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rec = Recorder::start(&out, &args);
    scene.start_dockerd();
    docker_run(&scene);
    scene.stop_dockerd();
    rec.stop();
    if let Some(keep) = std::env::var_os("DOCKERSNOOP_SAMPLE_OUT") {
        std::fs::copy(&out, keep).unwrap();
    }

    let (json, stderr) = decode(&["--format", "json", out.to_str().unwrap()]);
    assert!(!stderr.contains("mid-stream"), "a fresh recording joined mid-stream: {stderr}");
    let records = json_lines(&json);
    check_container_life(&records, true);

    let log = scene.containerd_log();
    let logged = logged_paths(log.get(log_start..).unwrap_or(""));
    assert!(!logged.is_empty(), "containerd logged no HEADERS: is GODEBUG=http2debug=2 honoured?");
    let decoded = decoded_paths(&records, containerd_pid);
    assert_eq!(
        decoded, logged,
        "(stream, :path) we decoded (left) differ from what containerd logged (right)"
    );

    // 2. Recording starts after dockerd is connected: its connections are
    // joined mid-stream.
    scene.start_dockerd();
    let out = scene.path().join("mid.pcapng");
    let rec = Recorder::start(&out, &args);
    docker_run(&scene);
    scene.stop_dockerd();
    rec.stop();
    let (table, stderr) = decode(&["--full", "--headers", out.to_str().unwrap()]);
    let (json, _) = decode(&["--format", "json", out.to_str().unwrap()]);
    let records = json_lines(&json);
    // The events stream was opened before: its envelopes come without a
    // method, so only the calls are checked.
    check_container_life(&records, false);
    assert!(table.contains("<unknown #"), "no placeholder for a missed header entry:\n{table}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("joined mid-stream"))
        .unwrap_or_else(|| panic!("no mid-stream warning: {stderr}"));
    let joined: u64 = warning
        .split("warning: ")
        .nth(1)
        .and_then(|rest| rest.split(": ").nth(1))
        .and_then(|n| n.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {warning}"));
    assert!(joined >= 1, "{warning}");
}
