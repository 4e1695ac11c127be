//! Reassembly of the third-party captures: the byte streams equal what
//! `tshark -z follow,tcp,raw` shows, and the facts of
//! ../shared/testdata/README.md hold.

mod reassembly_support;

use dockersnoop::reassembly::Dir;
use reassembly_support::{run_file, testdata, Run};

/// Reassembled bytes per direction from tshark 4.0 `follow,tcp,raw`, for
/// the connection carrying the traffic of interest: (file, client port,
/// client→server bytes, server→client bytes).
const FOLLOW: &[(&str, u16, usize, usize)] = &[
    ("packt-grpc-go/Bidi_Streaming.pcapng", 51164, 359, 323),
    ("packt-grpc-go/Client_Streaming.pcapng", 51118, 296, 260),
    ("packt-grpc-go/Server_Streaming.pcapng", 50876, 199, 517),
    ("packt-grpc-go/Unary.pcapng", 65094, 203, 156),
    ("ptcpdump/tcp.pcapng", 58694, 86, 655),
    ("suricata-verify/bug-5929-02__http2_multiple_headers.pcap", 50078, 175, 704),
    ("suricata-verify/dns-over-http2__dns_over_https.pcap", 49792, 852, 2562),
    ("suricata-verify/http2-authority-mismatch__authority_and_host_2.pcap", 52770, 128, 295),
    ("suricata-verify/http2-bugfixes__input.pcap", 56238, 2905, 1902),
    ("suricata-verify/http2-continuation__input.pcap", 50321, 226, 154),
    ("suricata-verify/http2-deflate-case__input.pcap", 64417, 296, 257),
    ("suricata-verify/http2-deflate__http2_deflate.pcap", 61321, 270, 241),
    ("suricata-verify/http2-keywords2__input.pcap", 58038, 300, 473),
    ("suricata-verify/http2-keywords__input.pcap", 56508, 670, 412_269),
    ("suricata-verify/http2-long-frame__input.pcap", 54321, 210, 70_073),
    (
        "suricata-verify/http2-userinfo-authority__http2_userinfo_in_authority_1.pcap",
        43326,
        141,
        282,
    ),
];

fn capture(file: &str) -> Run {
    let run = run_file(&testdata(&format!("captures/{file}")));
    assert!(run.error.is_none(), "{file}: {}", run.error.unwrap());
    run
}

/// The connection whose client uses `port`, and the direction client→server.
fn conn_of(run: &Run, port: u16) -> (u64, Dir) {
    for conn in run.conns() {
        let (a, b, _) = run.open(conn);
        if a.port() == port {
            return (conn, Dir::AtoB);
        }
        if b.port() == port {
            return (conn, Dir::BtoA);
        }
    }
    panic!("no connection with port {port}");
}

#[test]
fn streams_equal_tshark_follow() {
    for &(file, port, up, down) in FOLLOW {
        let run = capture(file);
        let (conn, to_server) = conn_of(&run, port);
        assert_eq!(run.bytes(conn, to_server).len(), up, "{file}: client to server");
        assert_eq!(run.bytes(conn, to_server.reverse()).len(), down, "{file}: server to client");
        assert!(run.gaps().is_empty(), "{file}: gaps {:?}", run.gaps());
        assert_eq!(run.closes(conn), 1, "{file}: one Close");
    }
}

#[test]
fn grpc_go_streams_start_with_the_preface() {
    for file in ["Unary", "Server_Streaming", "Client_Streaming", "Bidi_Streaming"] {
        let run = capture(&format!("packt-grpc-go/{file}.pcapng"));
        let (conn, up) = conn_of(&run, run.open(run.conns()[0]).0.port());
        let (a, b, mid_stream) = run.open(conn);
        if file != "Unary" {
            assert!(!mid_stream, "{file}: handshake captured");
            assert_eq!(up, Dir::AtoB);
            assert_eq!(b.port(), 50051, "{file}: A is the client");
            assert!(a.ip().is_loopback() && a.is_ipv6());
            assert!(run.bytes(conn, up).starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "{file}");
        }
    }
    let run = capture("packt-grpc-go/Unary.pcapng");
    let (conn, up) = conn_of(&run, 65094);
    let request = run.bytes(conn, up);
    assert!(request.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    assert!(request.windows(7).any(|w| w == b"Clement"));
    let response = run.bytes(conn, up.reverse());
    assert!(response.windows(13).any(|w| w == b"Hello Clement"));
}

#[test]
fn unrelated_flow_in_unary_is_just_another_connection() {
    let run = capture("packt-grpc-go/Unary.pcapng");
    // tshark: 127.0.0.1:3220 <-> 127.0.0.1:64449 carries 52,088 bytes one way.
    let (conn, _) = conn_of(&run, 64449);
    let total = run.bytes(conn, Dir::AtoB).len() + run.bytes(conn, Dir::BtoA).len();
    assert_eq!(total, 52_088);
    assert_eq!(run.tcp.malformed, 0);
    assert!(run.gaps().is_empty());
}

#[test]
fn ptcpdump_duplicates_are_dropped() {
    let run = capture("ptcpdump/tcp.pcapng");
    assert_eq!(run.conns().len(), 1, "one connection despite every packet twice");
    let (conn, up) = conn_of(&run, 58694);
    let (_, _, mid_stream) = run.open(conn);
    assert!(!mid_stream);
    assert_eq!(up, Dir::AtoB, "curl sent the SYN");

    let request = String::from_utf8(run.bytes(conn, up)).unwrap();
    assert!(request.starts_with("GET /notfound HTTP/1.1\r\n"), "{request}");
    assert_eq!(request.matches("GET ").count(), 1);

    let response = String::from_utf8(run.bytes(conn, up.reverse())).unwrap();
    assert_eq!(response.matches("HTTP/1.0 404").count(), 1, "{response}");
    let (head, body) = response.split_once("\r\n\r\n").expect("header end");
    assert!(head.starts_with("HTTP/1.0 404"));
    assert_eq!(body.len(), 469);
    // Of the 12 second copies, the SYN, the SYN-ACK and the three data
    // segments count as duplicates; bare ACKs and the FIN carry no bytes, and
    // the last three copies arrive after both FINs closed the connection.
    assert_eq!(run.tcp.duplicate_segments, 5, "{:?}", run.tcp);
    assert_eq!(run.tcp.after_close, 3, "{:?}", run.tcp);
    assert_eq!(run.tcp.out_of_order_segments, 0);
}

#[test]
fn keywords2_has_no_handshake() {
    let run = capture("suricata-verify/http2-keywords2__input.pcap");
    let conn = run.conns()[0];
    let (_, _, mid_stream) = run.open(conn);
    assert!(mid_stream);
    let (conn, up) = conn_of(&run, 58038);
    let request = String::from_utf8_lossy(&run.bytes(conn, up)).into_owned();
    assert!(request.starts_with("GET /robots.txt HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("Upgrade: h2c"));
}

#[test]
fn long_frame_survives_reassembly() {
    let run = capture("suricata-verify/http2-long-frame__input.pcap");
    let (conn, up) = conn_of(&run, 54321);
    let down = run.bytes(conn, up.reverse());
    // Find the 70,000-byte DATA frame header: length 0x011170, type 0.
    let at = down.windows(4).position(|w| w == [0x01, 0x11, 0x70, 0x00]).expect("frame header");
    assert!(down.len() >= at + 9 + 70_000);
}
