//! Fuzz-style tests with a fixed seed: thousands of mutated and truncated
//! captures through the reader and the reassembler never panic and keep the
//! event stream well-formed; reordered, repeated and dropped packets never
//! make the reassembler invent a byte.

mod reassembly_support;
mod rng;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use dockersnoop::chunk::{ProcMeta, SockType, PEN};
use dockersnoop::pcapng::{LinkType, Packet};
use dockersnoop::reassembly::tcp::{Reassembler, ReassemblyConfig};
use dockersnoop::reassembly::Dir;
use pcap_file::pcapng::blocks::interface_description::InterfaceTsResolution;
use pcap_file::Endianness;
use reassembly_support::{
    c, frame, ip_packet, reassemble, reassemble_with, run_bytes, run_file, s, testdata, Ev, NgFile,
    Run,
};
use rng::Rng;

/// Checks the promises of the event stream: Open before anything else of
/// a connection, nothing after its Close, exactly one Close per connection
/// once the input is finished, and no empty Data or Gap.
fn check_events(run: &Run, what: &str) {
    let mut open = HashSet::new();
    let mut closed = HashSet::new();
    for e in &run.events {
        match e {
            Ev::Open { conn, .. } => {
                assert!(
                    open.insert(*conn) && !closed.contains(conn),
                    "{what}: second Open of {conn}"
                )
            }
            Ev::Data { conn, data, .. } => {
                assert!(
                    open.contains(conn) && !closed.contains(conn),
                    "{what}: Data outside {conn}"
                );
                assert!(!data.is_empty(), "{what}: empty Data");
            }
            Ev::Gap { conn, len, .. } => {
                assert!(
                    open.contains(conn) && !closed.contains(conn),
                    "{what}: Gap outside {conn}"
                );
                assert!(*len > 0, "{what}: empty Gap");
            }
            Ev::Close { conn } => {
                assert!(
                    open.contains(conn) && closed.insert(*conn),
                    "{what}: stray Close of {conn}"
                )
            }
        }
    }
    assert_eq!(open, closed, "{what}: every connection closed once");
}

/// A pcapng file exercising more of the reader: two interfaces, metadata,
/// comments, custom blocks.
fn rich_pcapng() -> Vec<u8> {
    let meta = ProcMeta {
        pid: 1,
        tid: 2,
        peer_pid: None,
        comm: "dockerd".into(),
        sock_ino: 3,
        peer_ino: 4,
        sock_type: SockType::STREAM,
        path: "/run/docker.sock".into(),
    };
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::RAW, Some(InterfaceTsResolution::NANO), 0);
    f.interface(LinkType::LINUX_SLL2, None, 10);
    f.custom(PEN, b"schema");
    let segs = [
        c(10, "S", None, b""),
        s(90, "S", Some(11), b""),
        c(11, "P", Some(91), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        s(91, "P", Some(35), &[0, 0, 0, 4, 0, 0, 0, 0, 0]),
        c(35, "F", Some(100), b""),
        s(100, "F", Some(36), b""),
    ];
    for (i, seg) in segs.iter().enumerate() {
        let link = if i % 2 == 0 { LinkType::RAW } else { LinkType::LINUX_SLL2 };
        let data = frame(link, &ip_packet(seg, false), false);
        f.epb(
            (i % 2) as u32,
            Duration::from_millis(1_700_000_000_000 + i as u64),
            &data,
            Some(&meta),
        );
    }
    f.bytes()
}

/// One random change to a capture file.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    if bytes.is_empty() {
        return;
    }
    let at = rng.below(bytes.len());
    match rng.below(6) {
        0 => bytes[at] ^= 1 << rng.below(8),
        1 => bytes[at] = rng.next() as u8,
        2 => {
            // A length or sequence field set to an extreme value.
            let v =
                [0u32, 1, 0xffff_ffff, 0x7fff_ffff, 0x8000_0000, rng.next() as u32][rng.below(6)];
            for (i, b) in v.to_le_bytes().into_iter().enumerate() {
                if let Some(x) = bytes.get_mut(at + i) {
                    *x = b;
                }
            }
        }
        3 => bytes.truncate(at),
        4 => {
            // Repeat a slice (a block captured twice, or a misframed copy).
            let len = rng.below(64).min(bytes.len() - at);
            let piece = bytes[at..at + len].to_vec();
            let to = rng.below(bytes.len());
            bytes.splice(to..to, piece);
        }
        _ => {
            let len = rng.below(64).min(bytes.len() - at);
            bytes.drain(at..at + len);
        }
    }
}

#[test]
fn mutated_captures_never_panic() {
    let mut inputs: Vec<(String, Vec<u8>)> = [
        "captures/ptcpdump/tcp.pcapng",
        "captures/packt-grpc-go/Server_Streaming.pcapng",
        "captures/suricata-verify/http2-continuation__input.pcap",
        "captures/suricata-verify/http2-keywords2__input.pcap",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(testdata(f)).unwrap()))
    .collect();
    inputs.push(("rich.pcapng".into(), rich_pcapng()));

    let mut rng = Rng::new(0x5eed_d0c5);
    let mut errors = 0;
    let mut runs = 0;
    for (name, original) in &inputs {
        for i in 0..800 {
            let mut bytes = original.clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut bytes, &mut rng);
            }
            let what = format!("{name} mutation {i}");
            let len = bytes.len() as u64;
            let run = match dockersnoop::pcapng::reader::CaptureReader::from_reader(
                &what,
                Box::new(std::io::Cursor::new(bytes)),
            ) {
                Ok(r) => reassembly_support::run_reader(r, Reassembler::new()),
                Err(e) => {
                    assert_eq!(e.offset, 0, "{e}");
                    continue;
                }
            };
            runs += 1;
            check_events(&run, &what);
            if let Some(e) = &run.error {
                errors += 1;
                assert!(e.offset <= len, "{what}: {e}");
                assert!(run.packets.iter().all(|p| p.offset < e.offset), "{what}: {e}");
                assert!(!e.to_string().contains('\n'), "{what}: one line: {e}");
            }
        }
    }
    // The mutations did reach the error paths, and not only them.
    assert!(errors > 500 && errors < runs, "{errors} errors in {runs} runs");
}

#[test]
fn mutated_compressed_captures_never_panic() {
    let plain = rich_pcapng();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let mut rng = Rng::new(77);
    for original in [zst, gz] {
        for _ in 0..300 {
            let mut bytes = original.clone();
            mutate(&mut bytes, &mut rng);
            if let Ok(r) = dockersnoop::pcapng::reader::CaptureReader::from_reader(
                "z",
                Box::new(std::io::Cursor::new(bytes)),
            ) {
                check_events(&reassembly_support::run_reader(r, Reassembler::new()), "compressed");
            }
        }
    }
}

/// The bytes of each direction, keyed by (sender, receiver), with their
/// stream offsets: Data chunks and the offset each starts at.
/// Data chunks of one direction (sender, receiver), with their offsets.
type Chunks = HashMap<(SocketAddr, SocketAddr), Vec<(u64, Vec<u8>)>>;

fn chunks(run: &Run) -> Chunks {
    let mut ends: HashMap<(u64, Dir), u64> = HashMap::new();
    let mut addrs: HashMap<u64, (SocketAddr, SocketAddr)> = HashMap::new();
    let mut out = Chunks::new();
    for e in &run.events {
        match e {
            Ev::Open { conn, a, b, .. } => {
                addrs.insert(*conn, (*a, *b));
            }
            Ev::Data { conn, dir, data, .. } => {
                let at = ends.entry((*conn, *dir)).or_default();
                let (a, b) = addrs[conn];
                let key = if *dir == Dir::AtoB { (a, b) } else { (b, a) };
                out.entry(key).or_default().push((*at, data.clone()));
                *at += data.len() as u64;
            }
            Ev::Gap { conn, dir, len } => *ends.entry((*conn, *dir)).or_default() += len,
            _ => {}
        }
    }
    out
}

fn whole(chunks: &[(u64, Vec<u8>)]) -> Vec<u8> {
    chunks.iter().flat_map(|(_, d)| d.clone()).collect()
}

#[test]
fn reordered_repeated_and_dropped_packets_never_invent_bytes() {
    // Captures with one connection whose handshake is in the file.
    let files = [
        "captures/ptcpdump/tcp.pcapng",
        "captures/packt-grpc-go/Bidi_Streaming.pcapng",
        "captures/suricata-verify/http2-long-frame__input.pcap",
        "captures/suricata-verify/dns-over-http2__dns_over_https.pcap",
    ];
    let mut rng = Rng::new(2024);
    let (mut with_gaps, mut reordered, mut whole_streams) = (0, 0, 0);
    for file in files {
        let clean = run_file(&testdata(file));
        let truth = chunks(&clean);
        let truth: HashMap<_, Vec<u8>> = truth.iter().map(|(k, v)| (*k, whole(v))).collect();
        for round in 0..150 {
            // Keep the SYN and SYN-ACK first so that stream offsets count
            // from the initial sequence numbers.
            let mut pkts: Vec<Packet> = clean.packets.clone();
            let mut mutated: Vec<Packet> = pkts.drain(..2).collect();
            let reorder = round % 3 != 2;
            let mut i = 0;
            while i < pkts.len() {
                match rng.below(10) {
                    0 if round % 3 != 0 => {} // dropped
                    1 => {
                        mutated.push(pkts[i].clone());
                        mutated.push(pkts[i].clone());
                    }
                    2 if reorder && i + 1 < pkts.len() => {
                        mutated.push(pkts[i + 1].clone());
                        mutated.push(pkts[i].clone());
                        i += 1;
                    }
                    _ => mutated.push(pkts[i].clone()),
                }
                i += 1;
            }
            // A small buffer cap too, half of the time.
            let r = if round % 2 == 0 {
                Reassembler::new()
            } else {
                Reassembler::with_config(ReassemblyConfig {
                    max_buffered: 3000,
                    ..Default::default()
                })
            };
            let run = reassemble_with(&mutated, r);
            let what = format!("{file} round {round}");
            check_events(&run, &what);
            for (key, list) in chunks(&run) {
                let original =
                    truth.get(&key).unwrap_or_else(|| panic!("{what}: unknown direction {key:?}"));
                for (at, data) in list {
                    let want = original.get(at as usize..at as usize + data.len());
                    assert!(
                        want == Some(&data[..]),
                        "{what}: {} bytes at {at} of {key:?} differ",
                        data.len()
                    );
                }
            }
            with_gaps += !run.gaps().is_empty() as u32;
            reordered += (run.tcp.out_of_order_segments > 0) as u32;
            if round % 3 == 0 && run.gaps().is_empty() {
                // Nothing dropped and no hole declared: the streams are whole.
                whole_streams += 1;
                for (key, list) in chunks(&run) {
                    assert!(whole(&list) == truth[&key], "{what}: {key:?} differs");
                }
            }
        }
    }
    // The cases were all exercised.
    assert!(
        with_gaps > 50 && reordered > 50 && whole_streams > 50,
        "{with_gaps} {reordered} {whole_streams}"
    );
}

#[test]
fn random_segments_never_panic() {
    // Arbitrary sequence numbers, flags and lengths on a few 4-tuples.
    let mut rng = Rng::new(99);
    for round in 0..300 {
        let mut segs = Vec::new();
        for _ in 0..40 {
            let flags = ["", "S", "F", "R", "P", "SF", ""][rng.below(7)];
            let seq = match rng.below(3) {
                0 => rng.next() as u32,
                1 => u32::MAX - rng.below(50) as u32,
                _ => rng.below(200) as u32,
            };
            let ack = (rng.below(2) == 0).then(|| rng.next() as u32 % 300);
            let len = rng.below(40);
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut seg = if rng.below(2) == 0 {
                c(seq, flags, ack, &payload)
            } else {
                s(seq, flags, ack, &payload)
            };
            seg.flags = flags;
            segs.push(seg);
        }
        let pkts = reassembly_support::packets(&segs, LinkType::RAW, round % 2 == 0);
        let config = ReassemblyConfig { max_buffered: 200, closed_linger_ns: 5_000_000 };
        let run = reassemble_with(&pkts, Reassembler::with_config(config));
        check_events(&run, &format!("round {round}"));
        let _ = reassemble(&pkts);
    }
}

#[test]
fn stdin_style_reader_runs_the_same() {
    let bytes = std::fs::read(testdata("captures/ptcpdump/tcp.pcapng")).unwrap();
    let a = run_bytes(bytes);
    let b = run_file(&testdata("captures/ptcpdump/tcp.pcapng"));
    assert_eq!(a.events, b.events);
}
