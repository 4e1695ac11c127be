//! The reader on small captures written by the tests: pcap variants, pcapng
//! block types, interfaces, sections, our metadata and custom blocks,
//! compression, and corrupt or truncated files.

mod reassembly_support;

use std::borrow::Cow;
use std::io::{Cursor, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use dockersnoop::chunk::{ProcMeta, SockType, PEN};
use dockersnoop::pcapng::compress::Compression;
use dockersnoop::pcapng::reader::{CaptureReader, Format, ReadErrorKind, READ_BUFFER};
use dockersnoop::pcapng::{LinkType, Packet};
use pcap_file::pcapng::blocks::custom::CustomBinaryOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceTsResolution;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsBlock;
use pcap_file::pcapng::blocks::name_resolution::{Ipv4Record, NameResolutionBlock, Record};
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::packet::{PacketBlock, PacketOption};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::blocks::systemd_journal_export::SystemdJournalExportBlock;
use pcap_file::pcapng::PcapNgBlock;
use pcap_file::Endianness;
use reassembly_support::{c, frame, ip_packet, pcap_of, run_bytes, NgFile};

fn reader(bytes: Vec<u8>) -> CaptureReader {
    CaptureReader::from_reader("mem", Box::new(Cursor::new(bytes)))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Reads all packets, and the error that ended the file if any.
fn read_all(bytes: Vec<u8>) -> (Vec<Packet>, Option<dockersnoop::pcapng::reader::ReadError>) {
    let mut r = reader(bytes);
    let mut pkts = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => pkts.push(p),
            Ok(None) => return (pkts, None),
            Err(e) => {
                // The reader is finished after an error.
                assert!(r.next_packet().unwrap().is_none());
                return (pkts, Some(e));
            }
        }
    }
}

fn frame_n(n: u32) -> Vec<u8> {
    frame(
        LinkType::ETHERNET,
        &ip_packet(&c(n, "", None, format!("packet {n}").as_bytes()), false),
        false,
    )
}

fn meta(pid: u32) -> ProcMeta {
    ProcMeta {
        pid,
        tid: pid + 1,
        peer_pid: Some(7),
        comm: "containerd".into(),
        sock_ino: 99,
        peer_ino: 100,
        sock_type: SockType::STREAM,
        path: "/run/containerd/containerd.sock".into(),
    }
}

#[test]
fn pcap_in_both_byte_orders_and_resolutions() {
    let ts = Duration::new(1_700_000_000, 123_456_789);
    let frames = vec![(ts, frame_n(1)), (ts + Duration::from_micros(5), frame_n(2))];
    for endianness in [Endianness::Little, Endianness::Big] {
        for nanos in [false, true] {
            let bytes = pcap_of(LinkType::ETHERNET, nanos, endianness, &frames);
            let mut r = reader(bytes);
            assert_eq!(r.format(), Format::Pcap);
            let a = r.next_packet().unwrap().unwrap();
            let b = r.next_packet().unwrap().unwrap();
            assert!(r.next_packet().unwrap().is_none());
            let expect_ns =
                if nanos { 1_700_000_000_123_456_789 } else { 1_700_000_000_123_456_000 };
            assert_eq!(a.ts_ns, expect_ns, "{endianness:?} nanos={nanos}");
            assert_eq!(b.ts_ns, expect_ns + 5_000);
            assert_eq!((a.link, &a.data, a.offset), (LinkType::ETHERNET, &frames[0].1, 24));
            assert_eq!(b.offset, 24 + 16 + frames[0].1.len() as u64);
            assert_eq!(r.stats().packets, 2);
        }
    }
}

#[test]
fn interfaces_keep_their_own_link_type_resolution_and_offset() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::ETHERNET, None, 0); // default: microseconds
    f.interface(LinkType::RAW, Some(InterfaceTsResolution::NANO), 0);
    f.interface(LinkType::NULL, Some(InterfaceTsResolution::MILLI), 100);
    f.interface(LinkType::LINUX_SLL2, Some(InterfaceTsResolution::new(true, 10).unwrap()), 0);
    let ts = Duration::new(1_600_000_000, 250_000_000);
    for id in 0..4 {
        f.epb(id, ts, &[id as u8; 20], None);
    }
    let pkts: Vec<Packet> = reader(f.bytes()).map(|p| p.unwrap()).collect();
    let got: Vec<(LinkType, u64)> = pkts.iter().map(|p| (p.link, p.ts_ns)).collect();
    assert_eq!(
        got,
        [
            (LinkType::ETHERNET, 1_600_000_000_250_000_000),
            (LinkType::RAW, 1_600_000_000_250_000_000),
            // if_tsoffset is added to what the writer stored (ts - offset).
            (LinkType::NULL, 1_600_000_000_250_000_000),
            // 2^-10 s ticks: 0.25 s is exactly 256 ticks.
            (LinkType::LINUX_SLL2, 1_600_000_000_250_000_000),
        ]
    );
    assert_eq!(pkts[2].data, [2; 20]);
}

#[test]
fn sections_reset_interfaces_and_may_change_byte_order() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::ETHERNET, None, 0);
    f.epb(0, Duration::from_secs(1), &frame_n(1), Some(&meta(1)));
    f.section(Endianness::Big);
    f.interface(LinkType::RAW, None, 0);
    f.interface(LinkType::NULL, None, 0);
    f.epb(1, Duration::from_secs(2), &[9; 8], Some(&meta(2)));
    f.epb(0, Duration::from_secs(3), &[8; 8], None);
    let mut r = reader(f.bytes());
    let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
    assert_eq!(
        pkts.iter().map(|p| p.link).collect::<Vec<_>>(),
        [LinkType::ETHERNET, LinkType::NULL, LinkType::RAW]
    );
    assert_eq!(pkts[1].ts_ns, 2_000_000_000);
    assert_eq!(pkts[1].meta.as_deref(), Some(&meta(2)), "big-endian section");
    assert_eq!((r.stats().sections, r.stats().interfaces), (2, 3));
}

#[test]
fn simple_and_obsolete_packet_blocks() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::RAW, Some(InterfaceTsResolution::NANO), 0);
    f.interface(LinkType::NULL, Some(InterfaceTsResolution::NANO), 0);
    f.epb(0, Duration::from_nanos(5_000), &[1; 10], None);
    f.block(SimplePacketBlock { original_len: 7, data: Cow::Borrowed(&[2; 7]) }.into_block());
    let mut value = Vec::new();
    meta(3).encode(&mut value);
    f.block(
        PacketBlock {
            interface_id: 1,
            drop_count: 0,
            timestamp: Duration::from_nanos(9_000),
            original_len: 100,
            data: Cow::Borrowed(&[3; 12]),
            options: vec![PacketOption::Common(CommonOption::CustomBinaryCopiable(
                CustomBinaryOption { pen: PEN, value: Cow::Owned(value) },
            ))],
        }
        .into_block(),
    );
    let pkts: Vec<Packet> = reader(f.bytes()).map(|p| p.unwrap()).collect();
    // The simple packet block: interface 0, no timestamp of its own.
    assert_eq!(
        (pkts[1].link, pkts[1].ts_ns, &pkts[1].data[..]),
        (LinkType::RAW, 5_000, &[2u8; 7][..])
    );
    assert_eq!((pkts[2].link, pkts[2].ts_ns, pkts[2].orig_len), (LinkType::NULL, 9_000, 100));
    assert_eq!(pkts[2].meta.as_deref(), Some(&meta(3)));
}

#[test]
fn blocks_we_do_not_use_are_skipped_and_counted() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::ETHERNET, None, 0);
    f.block(
        NameResolutionBlock {
            records: vec![Record::Ipv4(Ipv4Record {
                ip_addr: Ipv4Addr::new(10, 0, 0, 1),
                names: vec![Cow::Borrowed("host")],
            })],
            options: vec![],
        }
        .into_block(),
    );
    f.epb(0, Duration::from_secs(1), &frame_n(1), None);
    f.block(
        InterfaceStatisticsBlock {
            interface_id: 0,
            timestamp: Duration::from_secs(2),
            options: vec![],
        }
        .into_block(),
    );
    f.block(
        SystemdJournalExportBlock { journal_entry: Cow::Borrowed(b"MESSAGE=hi\n") }.into_block(),
    );
    f.custom(PEN + 1, b"someone else's");
    f.custom(PEN, b"descriptor set 1");
    // An unknown block type, written by hand (type 0x7777, 4-byte body).
    f.raw(&[0x77, 0x77, 0, 0, 16, 0, 0, 0, 1, 2, 3, 4, 16, 0, 0, 0]);
    f.custom(PEN, b"descriptor set 2");
    f.epb(0, Duration::from_secs(3), &frame_n(2), None);
    let mut r = reader(f.bytes());
    let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
    assert_eq!(pkts.len(), 2);
    assert_eq!(r.custom_blocks(), [b"descriptor set 1".to_vec(), b"descriptor set 2".to_vec()]);
    let skipped: Vec<(u32, u64)> = r.stats().skipped_blocks.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(skipped, [(4, 1), (5, 1), (9, 1), (0xbad, 1), (0x7777, 1)]);
    assert_eq!(r.stats().custom_blocks, 2);
}

#[test]
fn metadata_round_trips_and_is_shared_between_packets() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::ETHERNET, None, 0);
    for (i, pid) in [10, 10, 10, 11, 10].into_iter().enumerate() {
        f.epb(0, Duration::from_secs(i as u64), &frame_n(i as u32), Some(&meta(pid)));
    }
    f.epb(0, Duration::from_secs(9), &frame_n(9), None);
    let mut r = reader(f.bytes());
    let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
    let metas: Vec<&Arc<ProcMeta>> = pkts[..5].iter().map(|p| p.meta.as_ref().unwrap()).collect();
    assert_eq!(*metas[0].as_ref(), meta(10));
    assert_eq!(*metas[3].as_ref(), meta(11));
    assert!(Arc::ptr_eq(metas[0], metas[1]) && Arc::ptr_eq(metas[1], metas[2]));
    assert!(!Arc::ptr_eq(metas[2], metas[4]), "only consecutive packets share");
    assert_eq!(*metas[4].as_ref(), meta(10));
    assert!(pkts[5].meta.is_none());
    assert_eq!((r.stats().with_meta, r.stats().bad_meta), (5, 0));
}

#[test]
fn broken_or_foreign_metadata_is_ignored() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::ETHERNET, None, 0);
    let mut truncated = Vec::new();
    meta(1).encode(&mut truncated);
    truncated.truncate(20);
    let epb =
        |value: Vec<u8>, pen| pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_secs(1),
            original_len: 4,
            data: Cow::Owned(vec![0; 4]),
            options: vec![
                pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption::Common(
                    CommonOption::CustomBinaryCopiable(CustomBinaryOption {
                        pen,
                        value: Cow::Owned(value),
                    }),
                ),
            ],
        };
    f.block(epb(truncated, PEN).into_block());
    f.block(epb(b"DSM1 but another vendor".to_vec(), 4242).into_block());
    f.block(epb(b"DSM9 future payload".to_vec(), PEN).into_block());
    let mut r = reader(f.bytes());
    let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
    assert_eq!(pkts.len(), 3);
    assert!(pkts.iter().all(|p| p.meta.is_none()));
    assert_eq!((r.stats().with_meta, r.stats().bad_meta), (0, 1));
}

/// A small pcapng file with metadata, and its packets read plainly.
fn sample() -> (Vec<u8>, Vec<Packet>) {
    sample_of(50)
}

fn sample_of(n: u32) -> (Vec<u8>, Vec<Packet>) {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::ETHERNET, Some(InterfaceTsResolution::NANO), 0);
    for i in 0..n {
        f.epb(0, Duration::from_millis(i as u64), &frame_n(i), Some(&meta(i / 10)));
    }
    let bytes = f.bytes();
    let pkts = reader(bytes.clone()).map(|p| p.unwrap()).collect();
    (bytes, pkts)
}

fn same_packets(a: &[Packet], b: &[Packet]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (x.ts_ns, x.link, &x.data, x.orig_len, x.offset),
            (y.ts_ns, y.link, &y.data, y.orig_len, y.offset)
        );
        assert_eq!(x.meta, y.meta);
    }
}

#[test]
fn zstd_and_gzip_by_magic_and_by_file() {
    let (plain, expected) = sample();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();

    for (bytes, kind) in [(zst.clone(), Compression::Zstd), (gz.clone(), Compression::Gzip)] {
        let mut r = reader(bytes);
        assert_eq!((r.compression(), r.format()), (kind, Format::PcapNg));
        let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
        same_packets(&pkts, &expected);
    }

    // From files: the magic decides, not the name.
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("a.pcapng.zst", &zst), ("b.pcapng.gz", &gz), ("c.pcapng", &zst)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let r = CaptureReader::open(&path).unwrap();
        assert_eq!(r.name(), path.display().to_string());
        let pkts: Vec<Packet> = r.map(|p| p.unwrap()).collect();
        same_packets(&pkts, &expected);
    }
    let err = CaptureReader::open(&dir.path().join("missing.pcap")).err().unwrap();
    assert!(
        err.to_string()
            .ends_with("missing.pcap: cannot open: No such file or directory (os error 2)"),
        "{err}"
    );
    // A directory is not capture data either: no offset.
    let err = CaptureReader::open(dir.path()).err().unwrap();
    let want = format!("{}: cannot open: Is a directory (os error 21)", dir.path().display());
    assert_eq!(err.to_string(), want);
}

#[test]
fn truncation_anywhere_returns_every_packet_before_it() {
    let (bytes, expected) = sample_of(12);
    // Block boundaries: each packet's offset, and the end.
    let mut starts: Vec<u64> = expected.iter().map(|p| p.offset).collect();
    starts.push(bytes.len() as u64);
    for cut in (expected[0].offset as usize)..bytes.len() {
        let (pkts, err) = read_all(bytes[..cut].to_vec());
        // Packets whose block ends at or before the cut are all there.
        let complete = starts.windows(2).filter(|w| w[1] as usize <= cut).count();
        assert_eq!(pkts.len(), complete, "cut at {cut}");
        same_packets(&pkts, &expected[..complete]);
        let at_boundary = starts.contains(&(cut as u64));
        match err {
            None => assert!(at_boundary, "cut at {cut} inside a block went unnoticed"),
            Some(e) => {
                assert!(!at_boundary, "cut at {cut}: {e}");
                assert_eq!(e.offset, starts[complete], "cut at {cut}");
                assert!(matches!(e.kind, ReadErrorKind::Truncated("block")), "{e}");
                assert_eq!(
                    e.to_string(),
                    format!(
                        "mem: offset {}: truncated: the file ends inside this block",
                        starts[complete]
                    )
                );
            }
        }
    }
}

#[test]
fn truncated_pcap_names_the_record() {
    let frames: Vec<(Duration, Vec<u8>)> =
        (0..3).map(|i| (Duration::from_secs(i), frame_n(i as u32))).collect();
    let bytes = pcap_of(LinkType::ETHERNET, false, Endianness::Little, &frames);
    let third = 24 + 2 * 16 + (frames[0].1.len() + frames[1].1.len()) as u64;
    let (pkts, err) = read_all(bytes[..bytes.len() - 3].to_vec());
    assert_eq!(pkts.len(), 2);
    let err = err.unwrap();
    assert_eq!(
        err.to_string(),
        format!("mem: offset {third}: truncated: the file ends inside this record")
    );
}

#[test]
fn truncated_compressed_file_keeps_what_came_before() {
    // Large enough for several compressed blocks: a decompressor cannot
    // produce anything of a block it has not received whole.
    let (plain, expected) = sample_of(5000);
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    for bytes in [zst, gz] {
        let (pkts, err) = read_all(bytes[..bytes.len() * 2 / 3].to_vec());
        let err = err.expect("an error");
        assert!(!pkts.is_empty() && pkts.len() < expected.len());
        same_packets(&pkts, &expected[..pkts.len()]);
        assert_eq!(err.offset, expected[pkts.len()].offset, "{err}");
    }
}

/// A little-endian pcapng block of `type_` around `body` (padded).
fn raw_block(type_: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut b = Vec::new();
    b.extend(type_.to_le_bytes());
    b.extend(len.to_le_bytes());
    b.extend(body);
    b.extend(len.to_le_bytes());
    b
}

/// The fixed part of an enhanced packet block body plus data and options.
fn epb_body(interface: u32, captured: u32, orig: u32, data: &[u8], options: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [interface, 0, 1_000_000, captured, orig] {
        b.extend(v.to_le_bytes());
    }
    b.extend(data);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    b.extend(options);
    b
}

fn one_interface_then(block: &[u8]) -> (Vec<u8>, u64) {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::RAW, None, 0);
    f.epb(0, Duration::from_secs(1), &[1; 8], None);
    let at = f.len();
    f.raw(block);
    f.epb(0, Duration::from_secs(2), &[2; 8], None);
    (f.bytes(), at)
}

#[test]
fn unknown_interface_is_an_error_at_its_block() {
    let (bytes, at) = one_interface_then(&raw_block(6, &epb_body(3, 4, 4, &[0; 4], &[])));
    let (pkts, err) = read_all(bytes);
    assert_eq!(pkts.len(), 1);
    assert_eq!(
        err.unwrap().to_string(),
        format!("mem: offset {at}: packet refers to interface 3 but its section describes 1")
    );
}

#[test]
fn mismatched_block_lengths_are_an_error_at_the_block() {
    let mut block = raw_block(6, &epb_body(0, 4, 4, &[0; 4], &[]));
    let n = block.len();
    block[n - 4] = 0xee; // trailing length differs
    let (bytes, at) = one_interface_then(&block);
    let (pkts, err) = read_all(bytes);
    assert_eq!(pkts.len(), 1);
    let err = err.unwrap();
    assert_eq!(err.offset, at);
    assert!(
        err.to_string().starts_with(&format!(
            "mem: offset {at}: malformed block: block length fields don't match"
        )),
        "{err}"
    );
}

#[test]
fn packet_with_short_original_length_or_bad_option_is_kept() {
    // orig_len 2 < captured 4: the crate refuses, the packet is sound.
    let short = raw_block(6, &epb_body(0, 4, 2, &[7; 4], &[]));
    // A comment that is not UTF-8 (code 1, length 2), then end of options.
    let bad_comment =
        raw_block(6, &epb_body(0, 4, 4, &[8; 4], &[1, 0, 2, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0]));
    let mut both = short.clone();
    both.extend(&bad_comment);
    let (bytes, _) = one_interface_then(&both);
    let mut r = reader(bytes);
    let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
    assert_eq!(pkts.len(), 4);
    assert_eq!((&pkts[1].data[..], pkts[1].orig_len), (&[7u8; 4][..], 4));
    assert_eq!(&pkts[2].data[..], &[8u8; 4][..]);
    assert_eq!(pkts[2].ts_ns, 1_000_000 * 1000, "default microsecond resolution");
    assert_eq!(r.stats().repaired_packets, 2);
}

#[test]
fn captured_length_beyond_the_block_is_an_error() {
    let (bytes, at) = one_interface_then(&raw_block(6, &epb_body(0, 400, 400, &[0; 4], &[])));
    let (pkts, err) = read_all(bytes);
    assert_eq!(pkts.len(), 1);
    let err = err.unwrap();
    assert_eq!(err.offset, at);
    assert!(err.to_string().contains("malformed enhanced packet block"), "{err}");
}

#[test]
fn block_larger_than_the_read_buffer_says_so() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::RAW, None, 0);
    f.epb(0, Duration::from_secs(1), &[1; 8], None);
    let at = f.len();
    // Header of a 16 MiB block followed by more than a buffer's worth.
    let len = 16u32 << 20;
    f.raw(&6u32.to_le_bytes());
    f.raw(&len.to_le_bytes());
    f.raw(&vec![0; READ_BUFFER + 1024]);
    let (pkts, err) = read_all(f.bytes());
    assert_eq!(pkts.len(), 1);
    assert_eq!(
        err.unwrap().to_string(),
        format!("mem: offset {at}: block is larger than the 8 MiB read buffer")
    );
}

#[test]
fn corrupt_gzip_is_an_error_not_a_panic() {
    let (plain, _) = sample();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let mut gz = gz.finish().unwrap();
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let (_, err) = read_all(gz);
    assert!(err.is_some());
}

#[test]
fn reader_and_reassembler_round_trip_our_metadata() {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::RAW, None, 0);
    let segs = [c(1, "S", None, b""), c(2, "P", None, b"hello")];
    for (i, seg) in segs.iter().enumerate() {
        f.epb(0, Duration::from_secs(i as u64), &ip_packet(seg, false), Some(&meta(42)));
    }
    let run = run_bytes(f.bytes());
    let data_meta = run.events.iter().find_map(|e| match e {
        reassembly_support::Ev::Data { meta, .. } => Some(meta.clone()),
        _ => None,
    });
    assert_eq!(data_meta, Some(Some(meta(42))));
}

#[test]
fn metadata_in_a_utf8_custom_option_is_read_too() {
    use pcap_file::pcapng::blocks::custom::CustomUtf8Option;
    use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
    // Every byte of this encoding is ASCII, so it can travel in option 2988.
    let m = ProcMeta { peer_pid: Some(7), ..meta(5) };
    let mut value = Vec::new();
    m.encode(&mut value);
    let value = String::from_utf8(value).expect("ascii encoding");
    let mut f = NgFile::new(Endianness::Little);
    f.interface(LinkType::RAW, None, 0);
    f.block(
        EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_secs(1),
            original_len: 4,
            data: Cow::Owned(vec![0; 4]),
            options: vec![EnhancedPacketOption::Common(CommonOption::CustomUtf8Copiable(
                CustomUtf8Option { pen: PEN, value: Cow::Owned(value) },
            ))],
        }
        .into_block(),
    );
    let pkts: Vec<Packet> = reader(f.bytes()).map(|p| p.unwrap()).collect();
    assert_eq!(pkts[0].meta.as_deref(), Some(&m));
}
