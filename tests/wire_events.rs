//! The decoder's protocol detection and the ttrpc and HTTP/1 decoders behind
//! it, on synthetic event streams: every protocol is told from its first
//! bytes however they are cut, and mangled input never panics.

mod reassembly_support;
mod rng;
mod wire_support;

use std::net::SocketAddr;

use dockersnoop::decode::{DecodeOptions, Decoder, Proto, Record, Summary};
use dockersnoop::reassembly::{ConnId, Dir, StreamEvent};
use dockersnoop::render::table;
use rng::Rng;
use wire_support::*;

/// One connection's bytes: (direction, bytes) in order.
struct Session {
    conn: u64,
    pieces: Vec<(Dir, Vec<u8>)>,
}

fn ttrpc_session(conn: u64) -> Session {
    let start = ttrpc_request("containerd.task.v2.Task", "Start", &pb_bytes(1, b"c1"));
    let state = ttrpc_request("containerd.task.v2.Task", "State", &pb_bytes(1, b"c1"));
    Session {
        conn,
        pieces: vec![
            (Dir::AtoB, ttrpc_message(1, 1, &start)),
            (Dir::BtoA, ttrpc_message(1, 2, &ttrpc_response(0, "", &pb_varint(1, 7)))),
            (Dir::AtoB, ttrpc_message(3, 1, &state)),
            (Dir::BtoA, ttrpc_message(3, 2, &ttrpc_response(9, "not running", &[]))),
        ],
    }
}

fn http1_session(conn: u64) -> Session {
    Session {
        conn,
        pieces: vec![
            (Dir::AtoB, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n".to_vec()),
            (Dir::BtoA, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK".to_vec()),
            (Dir::AtoB, b"POST /v1.43/containers/c1/wait HTTP/1.1\r\nHost: d\r\n\r\n".to_vec()),
            (
                Dir::BtoA,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                  11\r\n{\"StatusCode\":0}\n\r\n0\r\n\r\n"
                    .to_vec(),
            ),
        ],
    }
}

fn http2_session(conn: u64) -> Session {
    let mut c = PREFACE.to_vec();
    c.extend(h2_frame(4, 0, 0, &[]));
    c.extend(h2_frame(
        1,
        5,
        1,
        &hpack_literals(&[(":method", "GET"), (":path", "/x"), (":scheme", "http")]),
    ));
    let s = h2_frame(1, 5, 1, &hpack_literals(&[(":status", "204")]));
    Session { conn, pieces: vec![(Dir::AtoB, c), (Dir::BtoA, s)] }
}

fn addr(conn: u64, end: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, conn as u8, end], 1000 + end as u16))
}

/// Interleaves the sessions piece by piece, each piece cut into events by
/// `cut`, and returns the records and the summary.
fn decode(
    sessions: &[Session],
    cut: &mut dyn FnMut(&[u8]) -> Vec<Vec<u8>>,
) -> (Vec<Record>, Summary) {
    let pool = dockersnoop::schema::pool(&Default::default(), &[]).expect("built-in schemas");
    let mut dec = Decoder::new(pool, DecodeOptions::default());
    let mut recs = Vec::new();
    let mut ts = 1_000_000_000;
    for s in sessions {
        let ev = StreamEvent::Open {
            conn: ConnId(s.conn),
            ts_ns: ts,
            a: addr(s.conn, 1),
            b: addr(s.conn, 2),
            mid_stream: false,
        };
        dec.on_event(ev, &mut |r| recs.push(r));
    }
    let longest = sessions.iter().map(|s| s.pieces.len()).max().unwrap_or(0);
    for i in 0..longest {
        for s in sessions {
            let Some((dir, bytes)) = s.pieces.get(i) else { continue };
            for chunk in cut(bytes) {
                ts += 1000;
                let ev = StreamEvent::Data {
                    conn: ConnId(s.conn),
                    dir: *dir,
                    ts_ns: ts,
                    data: &chunk,
                    meta: None,
                };
                dec.on_event(ev, &mut |r| recs.push(r));
            }
        }
    }
    for s in sessions {
        dec.on_event(StreamEvent::Close { conn: ConnId(s.conn), ts_ns: ts }, &mut |r| recs.push(r));
    }
    dec.finish(&mut |r| recs.push(r));
    let summary = dec.summary();
    (recs, summary)
}

fn rows(recs: &[Record]) -> Vec<String> {
    recs.iter()
        .filter_map(|r| {
            let cells = table::row(r)?;
            Some(format!(
                "{} {} {} {} {}",
                r.proto.as_str(),
                cells[4],
                cells[5],
                cells[6],
                cells[7]
            ))
        })
        .collect()
}

fn whole(b: &[u8]) -> Vec<Vec<u8>> {
    vec![b.to_vec()]
}

#[test]
fn each_connection_is_told_by_its_first_bytes() {
    let sessions = [ttrpc_session(0), http1_session(1), http2_session(2)];
    let (recs, summary) = decode(&sessions, &mut whole);
    let rows = rows(&recs);
    assert_eq!(
        rows,
        [
            "ttrpc REQ 1 /containerd.task.v2.Task/Start StartRequest{id:\"c1\"}",
            "http1 REQ 1 GET /_ping ",
            "http2 REQ 1 /x GET /x",
            "ttrpc RESP 1 /containerd.task.v2.Task/Start StartResponse{pid:7}",
            "http1 RESP 1 GET /_ping 200 OK \"OK\"",
            "http2 RESP 1 /x 204 0 bytes",
            "ttrpc REQ 3 /containerd.task.v2.Task/State StateRequest{id:\"c1\"}",
            "http1 REQ 2 POST /v1.43/containers/c1/wait ",
            "ttrpc ERR 3 /containerd.task.v2.Task/State FAILED_PRECONDITION: not running",
            "http1 RESP 2 POST /v1.43/containers/c1/wait 200 OK {\"StatusCode\":0}",
        ]
    );
    assert_eq!(summary.ttrpc_connections, 1);
    assert_eq!(summary.http1_connections, 1);
    assert_eq!(summary.http2_connections, 1);
    assert_eq!(summary.other_connections, 0);
    assert!(recs.iter().any(|r| r.proto == Proto::Ttrpc));
}

#[test]
fn same_records_however_the_bytes_are_cut() {
    let sessions = [ttrpc_session(0), http1_session(1), http2_session(2)];
    let want = rows(&decode(&sessions, &mut whole).0);
    for step in 1..16 {
        let got = rows(&decode(&sessions, &mut |b| b.chunks(step).map(<[u8]>::to_vec).collect()).0);
        assert_eq!(got, want, "events of {step} bytes");
    }
}

#[test]
fn other_protocols_are_counted_not_decoded() {
    let ssh = Session { conn: 0, pieces: vec![(Dir::AtoB, b"SSH-2.0-OpenSSH_9.6\r\n".to_vec())] };
    let short = Session { conn: 1, pieces: vec![(Dir::AtoB, b"\x00\x01".to_vec())] };
    let (recs, summary) = decode(&[ssh, short], &mut whole);
    assert!(recs.is_empty(), "{recs:?}");
    assert_eq!(summary.other_connections, 2);
    assert_eq!(summary.ttrpc_connections + summary.http1_connections, 0);
}

#[test]
fn mangled_sessions_never_panic() {
    let mut rng = Rng::new(0x5eed_0006);
    for round in 0..300 {
        let mut sessions = [ttrpc_session(0), http1_session(1), http2_session(2)];
        for s in &mut sessions {
            for (_, bytes) in &mut s.pieces {
                match rng.below(4) {
                    0 if !bytes.is_empty() => {
                        let i = rng.below(bytes.len());
                        bytes[i] = rng.next() as u8;
                    }
                    1 => bytes.truncate(rng.below(bytes.len() + 1)),
                    2 => {
                        let i = rng.below(bytes.len() + 1);
                        let junk: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
                        bytes.splice(i..i, junk);
                    }
                    _ => {}
                }
            }
        }
        let mut cut_rng = Rng::new(round + 1);
        let (recs, _) = decode(&sessions, &mut |b| {
            let mut out = Vec::new();
            let mut rest = b;
            while !rest.is_empty() {
                let n = 1 + cut_rng.below(rest.len());
                out.push(rest[..n].to_vec());
                rest = &rest[n..];
            }
            out
        });
        // Rendering every record must work too.
        for r in &recs {
            let _ = table::row(r);
            let _ = dockersnoop::render::json::to_json(r, true);
        }
    }
}
