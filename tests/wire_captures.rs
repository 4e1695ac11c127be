//! HTTP/1 in a capture nobody on this project wrote: ptcpdump's `tcp.pcapng`
//! (curl asking Python's http.server for a missing page, HTTP/1.0 answer,
//! body delimited by Content-Length, then the close).

mod reassembly_support;

use std::process::Command;

use reassembly_support::testdata;
use serde_json::Value;

#[test]
fn ptcpdump_curl_request_and_404() {
    let path = testdata("captures/ptcpdump/tcp.pcapng");
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(["decode", "--format", "json", "--headers"])
        .arg(&path)
        .output()
        .expect("run dockersnoop");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r["proto"] == "http1" && r["method"] == "GET /notfound"));
    assert_eq!(rows[0]["type"], "REQ");
    assert_eq!(rows[0]["src"], "127.0.0.1:58694");
    assert!(rows[0]["headers"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(["User-Agent", "curl/7.81.0"])));
    assert_eq!(rows[1]["type"], "RESP");
    assert_eq!(rows[1]["http_status"], 404);
    assert_eq!(rows[1]["size"], 469);
    assert_eq!(rows[1]["message"], "<text/html;charset=utf-8 469 bytes>");
    assert_eq!(rows[2]["type"], "END");
    // 13:50:35.525536185 → 13:50:35.559522050
    assert_eq!(rows[2]["duration_us"], 33985);
}
