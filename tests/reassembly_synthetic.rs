//! Reassembly of small synthetic conversations, one case each: link types,
//! out-of-order segments, retransmissions, overlaps, duplicates, gaps,
//! sequence wraparound, mid-stream joins and connection reuse.

mod reassembly_support;

use std::sync::Arc;

use dockersnoop::chunk::{ProcMeta, SockType};
use dockersnoop::pcapng::LinkType;
use dockersnoop::reassembly::tcp::{Reassembler, ReassemblyConfig};
use dockersnoop::reassembly::{Dir, StreamEvent};
use etherparse::PacketBuilder;
use reassembly_support::{
    c, frame, ip_packet, packets, pcapng_of, reassemble, reassemble_with, run_bytes, s, Ev, Seg,
};

const ISN_C: u32 = 1000;
const ISN_S: u32 = 5000;

/// Handshake, a two-segment request, a response, and both FINs.
fn conversation() -> Vec<Seg> {
    vec![
        c(ISN_C, "S", None, b""),
        s(ISN_S, "S", Some(ISN_C + 1), b""),
        c(ISN_C + 1, "", Some(ISN_S + 1), b""),
        c(ISN_C + 1, "P", Some(ISN_S + 1), b"GET /a HTTP/1.1\r\n"),
        c(ISN_C + 18, "P", Some(ISN_S + 1), b"Host: x\r\n\r\n"),
        s(ISN_S + 1, "P", Some(ISN_C + 29), b"HTTP/1.1 200 OK\r\n\r\n"),
        c(ISN_C + 29, "F", Some(ISN_S + 20), b""),
        s(ISN_S + 20, "F", Some(ISN_C + 30), b""),
        c(ISN_C + 30, "", Some(ISN_S + 21), b""),
    ]
}

const REQUEST: &str = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const RESPONSE: &str = "HTTP/1.1 200 OK\r\n\r\n";

fn assert_conversation(run: &reassembly_support::Run, what: &str) {
    assert_eq!(run.conns(), [0], "{what}: one connection");
    let (a, b, mid_stream) = run.open(0);
    assert!(!mid_stream, "{what}");
    assert_eq!((a.port(), b.port()), (40000, 8080), "{what}: A is the client");
    assert_eq!(run.text(0, Dir::AtoB), REQUEST, "{what}");
    assert_eq!(run.text(0, Dir::BtoA), RESPONSE, "{what}");
    assert_eq!(run.closes(0), 1, "{what}");
    assert_eq!(run.events.last(), Some(&Ev::Close { conn: 0 }), "{what}");
}

#[test]
fn every_link_type_through_a_pcapng_file() {
    let cases = [
        (LinkType::ETHERNET, false),
        (LinkType::ETHERNET, true),
        (LinkType::LINUX_SLL, false),
        (LinkType::LINUX_SLL, true),
        (LinkType::LINUX_SLL2, false),
        (LinkType::LINUX_SLL2, true),
        (LinkType::NULL, false),
        (LinkType::NULL, true),
        (LinkType::LOOP, false),
        (LinkType::LOOP, true),
        (LinkType::RAW, false),
        (LinkType::RAW, true),
        (LinkType::IPV4, false),
        (LinkType::IPV6, true),
    ];
    for (link, v6) in cases {
        let run = run_bytes(pcapng_of(&conversation(), link, v6));
        assert!(run.error.is_none());
        assert_conversation(&run, &format!("{link:?} v6={v6}"));
        assert_eq!(run.open(0).0.is_ipv6(), v6);
    }
}

#[test]
fn vlan_tagged_ethernet() {
    let mut pkts = packets(&conversation(), LinkType::ETHERNET, false);
    for (p, seg) in pkts.iter_mut().zip(conversation()) {
        p.data = frame(LinkType::ETHERNET, &ip_packet(&seg, false), true);
        p.orig_len = p.data.len() as u32;
        assert_eq!(p.data[12..14], [0x81, 0x00]);
    }
    assert_conversation(&reassemble(&pkts), "vlan");
}

#[test]
fn out_of_order_segments_are_put_in_order() {
    let mut segs = conversation();
    segs.swap(3, 4); // second request segment first
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_conversation(&run, "out of order");
    assert_eq!(run.tcp.out_of_order_segments, 1);
    assert!(run.gaps().is_empty());
}

#[test]
fn full_retransmission_is_delivered_once() {
    let mut segs = conversation();
    segs.insert(5, segs[3].clone());
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_conversation(&run, "retransmission");
    assert_eq!(run.tcp.duplicate_segments, 1);
}

#[test]
fn every_packet_twice_is_delivered_once() {
    let segs: Vec<Seg> = conversation().into_iter().flat_map(|s| [s.clone(), s]).collect();
    let run = reassemble(&packets(&segs, LinkType::ETHERNET, true));
    assert_conversation(&run, "duplicates");
    // The SYN, SYN-ACK and three data segments; bare ACKs carry no bytes.
    // The server's FIN closes the connection (both sides done), so its copy
    // and both copies of the last ACK come after the close.
    assert_eq!(run.tcp.duplicate_segments, 5, "{:?}", run.tcp);
    assert_eq!(run.tcp.after_close, 3, "{:?}", run.tcp);
}

#[test]
fn partial_overlap_contributes_only_new_bytes() {
    let segs = [
        c(ISN_C, "S", None, b""),
        c(ISN_C + 1, "", None, b"0123456789"),
        // Retransmission with more data: 5..15.
        c(ISN_C + 6, "", None, b"56789abcde"),
        c(ISN_C + 16, "", None, b"fghij"),
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.text(0, Dir::AtoB), "0123456789abcdefghij");
    assert_eq!(run.tcp.overlapping_segments, 1);
}

#[test]
fn overlapping_out_of_order_segments_keep_first_bytes() {
    let segs = [
        c(ISN_C, "S", None, b""),
        // Hole at 1..3; then overlapping segments beyond it.
        c(ISN_C + 11, "", None, b"KLMNO"),                // 10..15
        c(ISN_C + 14, "", None, b"xxQRS"),                // 13..18, overlaps the previous
        c(ISN_C + 4, "", None, b"DEFGHIJ"),               // 3..10
        c(ISN_C + 6, "", None, b"yyyy"),                  // 5..9, inside buffered data
        c(ISN_C + 2, "", None, b"BCDEFGHIJKLMNOPQRSTUV"), // 1..22, covers all
        c(ISN_C + 1, "", None, b"A"),                     // fills the hole
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    // Bytes from the first segment covering each position win, except that
    // the big segment replaces the ones it covers completely.
    assert_eq!(run.text(0, Dir::AtoB), "ABCDEFGHIJKLMNOPQRSTUV");
    assert!(run.gaps().is_empty());
}

#[test]
fn hole_acknowledged_by_the_peer_becomes_one_gap() {
    let segs = [
        c(ISN_C, "S", None, b""),
        s(ISN_S, "S", Some(ISN_C + 1), b""),
        c(ISN_C + 1, "P", Some(ISN_S + 1), b"first "),
        // 7 bytes ("missing") never captured.
        c(ISN_C + 14, "P", Some(ISN_S + 1), b"after"),
        s(ISN_S + 1, "", Some(ISN_C + 19), b""),
        c(ISN_C + 19, "P", Some(ISN_S + 1), b" more"),
    ];
    let mut r = Reassembler::new();
    let mut events = Vec::new();
    for p in packets(&segs, LinkType::RAW, false) {
        r.push(&p, &mut |e| events.push(Ev::from_event(e)));
    }
    // Decided at the ACK, before the end of input.
    let data: Vec<&Ev> = events.iter().filter(|e| !matches!(e, Ev::Open { .. })).collect();
    assert!(matches!(data[0], Ev::Data { data, .. } if data == b"first "));
    assert_eq!(data[1], &Ev::Gap { conn: 0, dir: Dir::AtoB, len: 7 });
    assert!(matches!(data[2], Ev::Data { data, .. } if data == b"after"));
    assert!(matches!(data[3], Ev::Data { data, .. } if data == b" more"));
    assert_eq!(r.stats().gaps, 1);
    assert_eq!(r.stats().gap_bytes, 7);
}

#[test]
fn hole_behind_too_much_data_becomes_one_gap() {
    let mut segs = vec![c(ISN_C, "S", None, b""), c(ISN_C + 1, "", None, b"start|")];
    // Skip 100 bytes, then 10 segments of 100 bytes with no ACK from anyone.
    let mut seq = ISN_C + 1 + 6 + 100;
    for i in 0..10u8 {
        segs.push(c(seq, "", None, &[b'a' + i; 100]));
        seq += 100;
    }
    let config = ReassemblyConfig { max_buffered: 500, ..Default::default() };
    let run =
        reassemble_with(&packets(&segs, LinkType::RAW, false), Reassembler::with_config(config));
    assert_eq!(run.gaps(), [(0, Dir::AtoB, 100)]);
    let text = run.text(0, Dir::AtoB);
    let mut expected = "start|<gap 100>".to_string();
    for i in 0..10u8 {
        expected.push_str(&String::from_utf8(vec![b'a' + i; 100]).unwrap());
    }
    assert_eq!(text, expected);
    assert!(run.tcp.peak_buffered <= 500 + 100 + 64, "{:?}", run.tcp);
}

#[test]
fn hole_open_at_end_of_input_becomes_one_gap() {
    let segs = [
        c(ISN_C, "S", None, b""),
        c(ISN_C + 1, "", None, b"head"),
        c(ISN_C + 9, "", None, b"tail"),
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.text(0, Dir::AtoB), "head<gap 4>tail");
    assert_eq!(run.closes(0), 1);
}

#[test]
fn reset_reports_the_hole_and_closes() {
    let segs = [
        c(ISN_C, "S", None, b""),
        s(ISN_S, "S", Some(ISN_C + 1), b""),
        s(ISN_S + 1, "", None, b"ab"),
        s(ISN_S + 6, "", None, b"fg"),
        c(ISN_C + 1, "R", None, b""),
        // After the reset: ignored.
        s(ISN_S + 3, "", None, b"cde"),
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.text(0, Dir::BtoA), "ab<gap 3>fg");
    assert_eq!(run.closes(0), 1);
    assert_eq!(run.tcp.after_close, 1);
}

#[test]
fn sequence_numbers_wrap_around() {
    let isn = u32::MAX - 10;
    let segs = [
        c(isn, "S", None, b""),
        c(isn.wrapping_add(1), "", None, b"0123456789"),
        // This one straddles the wrap: seq u32::MAX - 0 .. 9.
        c(isn.wrapping_add(21), "", None, b"klmnopqrst"), // out of order
        c(isn.wrapping_add(11), "", None, b"abcdefghij"),
        c(isn.wrapping_add(31), "", None, b"uvwxyz"),
        c(isn.wrapping_add(11), "", None, b"abc"), // old retransmission
    ];
    assert!(isn.wrapping_add(21) < isn, "wraps");
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.text(0, Dir::AtoB), "0123456789abcdefghijklmnopqrstuvwxyz");
    assert_eq!(run.tcp.duplicate_segments, 1);
    assert!(run.gaps().is_empty());
}

#[test]
fn mid_stream_join_starts_at_first_segment_of_each_side() {
    let segs = [
        // Starts with a bare ACK from the server: opens nothing.
        s(ISN_S + 100, "", Some(ISN_C + 50), b""),
        c(ISN_C + 50, "P", Some(ISN_S + 100), b"request"),
        s(ISN_S + 100, "P", Some(ISN_C + 57), b"response"),
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    let (a, _, mid_stream) = run.open(0);
    assert!(mid_stream);
    assert_eq!(a.port(), 40000, "A sent the first payload");
    assert_eq!(run.text(0, Dir::AtoB), "request");
    assert_eq!(run.text(0, Dir::BtoA), "response");
    assert_eq!(run.tcp.without_connection, 1);
    assert_eq!(run.tcp.mid_stream, 1);
}

#[test]
fn syn_ack_without_syn_names_the_client() {
    let segs = [
        s(ISN_S, "S", Some(ISN_C + 1), b""),
        c(ISN_C + 1, "P", Some(ISN_S + 1), b"hi"),
        s(ISN_S + 1, "P", Some(ISN_C + 3), b"yo"),
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    let (a, _, mid_stream) = run.open(0);
    assert!(!mid_stream);
    assert_eq!(a.port(), 40000);
    assert_eq!((run.text(0, Dir::AtoB).as_str(), run.text(0, Dir::BtoA).as_str()), ("hi", "yo"));
}

#[test]
fn reused_four_tuple_is_a_new_connection() {
    let mut segs = conversation();
    let mut second = conversation();
    for seg in &mut second {
        seg.seq = seg.seq.wrapping_add(77_777);
        seg.ack = seg.ack.map(|a| a.wrapping_add(77_777));
    }
    second[3].payload = b"GET /b HTTP/1.1\r\n".to_vec();
    segs.extend(second);
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.conns(), [0, 1]);
    assert_eq!(run.text(0, Dir::AtoB), REQUEST);
    assert_eq!(run.text(1, Dir::AtoB), REQUEST.replace("/a", "/b"));
    assert_eq!((run.closes(0), run.closes(1)), (1, 1));
}

#[test]
fn new_syn_on_an_open_connection_closes_it() {
    let segs = [
        c(ISN_C, "S", None, b""),
        c(ISN_C + 1, "", None, b"old"),
        c(90_000, "S", None, b""),
        c(90_001, "", None, b"new"),
        // A repeated SYN of the new connection changes nothing.
        c(90_000, "S", None, b""),
    ];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.conns(), [0, 1]);
    assert_eq!(run.text(0, Dir::AtoB), "old");
    assert_eq!(run.text(1, Dir::AtoB), "new");
    let close0 = run.events.iter().position(|e| *e == Ev::Close { conn: 0 }).unwrap();
    let open1 = run.events.iter().position(|e| matches!(e, Ev::Open { conn: 1, .. })).unwrap();
    assert!(close0 < open1);
}

#[test]
fn syn_with_data_is_delivered() {
    let segs = [c(ISN_C, "S", None, b"fast open"), c(ISN_C + 10, "", None, b"!")];
    let run = reassemble(&packets(&segs, LinkType::RAW, false));
    assert_eq!(run.text(0, Dir::AtoB), "fast open!");
}

#[test]
fn snapped_packet_is_data_then_gap() {
    let mut pkts = packets(&conversation(), LinkType::ETHERNET, false);
    // Cut the first request segment by 5 bytes, as a snap length would.
    let p = &mut pkts[3];
    p.orig_len = p.data.len() as u32;
    p.data.truncate(p.data.len() - 5);
    let run = reassemble(&pkts);
    assert_eq!(run.text(0, Dir::AtoB), "GET /a HTTP/<gap 5>Host: x\r\n\r\n");
    assert_eq!(run.tcp.truncated_segments, 1);
}

#[test]
fn metadata_follows_the_bytes() {
    let meta = |pid| {
        Arc::new(ProcMeta {
            pid,
            tid: pid,
            peer_pid: None,
            comm: "x".into(),
            sock_ino: 1,
            peer_ino: 2,
            sock_type: SockType::STREAM,
            path: String::new(),
        })
    };
    let segs =
        [c(ISN_C, "S", None, b""), c(ISN_C + 4, "", None, b"def"), c(ISN_C + 1, "", None, b"abc")];
    let mut pkts = packets(&segs, LinkType::RAW, false);
    pkts[1].meta = Some(meta(2));
    pkts[2].meta = Some(meta(1));
    let run = reassemble(&pkts);
    let pids: Vec<(Vec<u8>, u32)> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Data { data, meta, .. } => Some((data.clone(), meta.as_ref().unwrap().pid)),
            _ => None,
        })
        .collect();
    assert_eq!(pids, [(b"abc".to_vec(), 1), (b"def".to_vec(), 2)]);
}

#[test]
fn in_order_data_is_not_copied() {
    let pkts = packets(&conversation(), LinkType::RAW, false);
    let mut r = Reassembler::new();
    let mut borrowed = 0;
    for p in &pkts {
        let range = p.data.as_ptr_range();
        r.push(p, &mut |e| {
            if let StreamEvent::Data { data, .. } = e {
                assert!(range.contains(&data.as_ptr()), "data not borrowed from its packet");
                borrowed += 1;
            }
        });
    }
    assert_eq!(borrowed, 3);
}

#[test]
fn non_tcp_traffic_is_counted_and_skipped() {
    let mut pkts = packets(&conversation(), LinkType::ETHERNET, false);
    let template = pkts[0].clone();
    let with = |link, data: Vec<u8>| {
        let mut p = template.clone();
        p.link = link;
        p.orig_len = data.len() as u32;
        p.data = data;
        p
    };
    let mut udp = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(53, 53).write(&mut udp, b"dns").unwrap();
    let mut arp = vec![0xff; 12];
    arp.extend([0x08, 0x06]);
    arp.extend([0; 28]);
    // An IPv4 fragment (offset 8) of a TCP datagram.
    let mut frag = ip_packet(&c(1, "", None, b"0123456789"), false);
    frag[6] = 0;
    frag[7] = 1;
    pkts.insert(1, with(LinkType::RAW, udp));
    pkts.insert(2, with(LinkType::ETHERNET, arp));
    pkts.insert(3, with(LinkType::RAW, frag));
    pkts.insert(4, with(LinkType(147), vec![1, 2, 3]));
    pkts.insert(5, with(LinkType::RAW, vec![0x45, 0, 0]));
    let run = reassemble(&pkts);
    assert_conversation(&run, "mixed traffic");
    let t = &run.tcp;
    assert_eq!(
        (
            t.skipped_non_tcp,
            t.skipped_non_ip,
            t.skipped_fragments,
            t.skipped_link_type,
            t.malformed
        ),
        (1, 1, 1, 1, 1),
        "{t:?}"
    );
    assert_eq!(t.tcp_segments, 9);
}

#[test]
fn finish_closes_open_connections_in_order() {
    let segs = [
        c(ISN_C, "S", None, b""),
        Seg { seq: 1, ..c(0, "S", None, b"") },
        c(ISN_C + 1, "", None, b"x"),
    ];
    let mut pkts = packets(&segs, LinkType::RAW, false);
    // Give the second SYN another client port, so it is another connection.
    pkts[1].data = {
        let mut ip = Vec::new();
        PacketBuilder::ipv4([192, 168, 7, 1], [192, 168, 7, 2], 64)
            .tcp(40001, 8080, 1, 65535)
            .syn()
            .write(&mut ip, b"")
            .unwrap();
        ip
    };
    pkts[1].orig_len = pkts[1].data.len() as u32;
    let run = reassemble(&pkts);
    let closes: Vec<&Ev> = run.events.iter().filter(|e| matches!(e, Ev::Close { .. })).collect();
    assert_eq!(closes, [&Ev::Close { conn: 0 }, &Ev::Close { conn: 1 }]);
}

#[test]
fn hole_before_an_acknowledged_fin_becomes_a_gap_then_close() {
    let segs = [
        c(ISN_C, "S", None, b""),
        s(ISN_S, "S", Some(ISN_C + 1), b""),
        c(ISN_C + 1, "P", Some(ISN_S + 1), b"abc"),
        // "defg" (4 bytes) missing; the FIN comes after it.
        c(ISN_C + 8, "F", Some(ISN_S + 1), b""),
        s(ISN_S + 1, "F", Some(ISN_C + 9), b""),
    ];
    let mut r = Reassembler::new();
    let mut events = Vec::new();
    for p in packets(&segs, LinkType::RAW, false) {
        r.push(&p, &mut |e| events.push(Ev::from_event(e)));
    }
    // All decided before the end of input.
    let tail: Vec<&Ev> = events.iter().skip(2).collect();
    assert_eq!(tail, [&Ev::Gap { conn: 0, dir: Dir::AtoB, len: 4 }, &Ev::Close { conn: 0 }]);
}

#[test]
fn closed_connection_is_forgotten_after_the_linger_time() {
    let mut segs = conversation();
    // A late retransmission of request data, well after the close.
    segs.push(c(ISN_C + 18, "P", Some(ISN_S + 21), b"Host: x\r\n\r\n"));
    let mut pkts = packets(&segs, LinkType::RAW, false);
    let config = ReassemblyConfig { closed_linger_ns: 5_000_000_000, ..Default::default() };

    // Within the linger time: ignored.
    let run = reassemble_with(&pkts, Reassembler::with_config(config.clone()));
    assert_eq!(run.conns(), [0]);
    assert_eq!(run.tcp.after_close, 2);

    // After it: a new, mid-stream connection.
    pkts.last_mut().unwrap().ts_ns += 10_000_000_000;
    let run = reassemble_with(&pkts, Reassembler::with_config(config));
    assert_eq!(run.conns(), [0, 1]);
    assert!(run.open(1).2, "mid-stream");
    assert_eq!(run.text(1, Dir::AtoB), "Host: x\r\n\r\n");
}
