//! Helpers shared by the reader and reassembly tests: where the third-party
//! captures live, writers for small synthetic captures, and a reader +
//! reassembler run that keeps every event in an owned form.
#![allow(dead_code)]

use std::borrow::Cow;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dockersnoop::chunk::{ProcMeta, PEN};
use dockersnoop::pcapng::reader::{CaptureReader, ReadError, ReadStats};
use dockersnoop::pcapng::{LinkType, Packet};
use dockersnoop::reassembly::tcp::{Reassembler, ReassemblyStats};
use dockersnoop::reassembly::{Dir, StreamEvent};
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::custom::{CustomBinaryOption, CustomBlock};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::section_header::SectionHeaderBlock;
use pcap_file::pcapng::{Block, PcapNgBlock, PcapNgWriter};
use pcap_file::{DataLink, Endianness};

/// A file under ../shared/testdata, which must exist.
pub fn testdata(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata").join(rel);
    assert!(
        p.exists(),
        "test data {} is missing: these tests need the shared testdata folder next to the \
         crate (../shared/testdata), as .ci/run provides",
        p.display()
    );
    p
}

/// An owned [`StreamEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Open { conn: u64, a: SocketAddr, b: SocketAddr, mid_stream: bool },
    Data { conn: u64, dir: Dir, ts_ns: u64, data: Vec<u8>, meta: Option<ProcMeta> },
    Gap { conn: u64, dir: Dir, len: u64 },
    Close { conn: u64 },
}

impl Ev {
    pub fn from_event(e: StreamEvent<'_>) -> Ev {
        match e {
            StreamEvent::Open { conn, a, b, mid_stream, .. } => {
                Ev::Open { conn: conn.0, a, b, mid_stream }
            }
            StreamEvent::Data { conn, dir, ts_ns, data, meta } => Ev::Data {
                conn: conn.0,
                dir,
                ts_ns,
                data: data.to_vec(),
                meta: meta.map(|m| (**m).clone()),
            },
            StreamEvent::Gap { conn, dir, len, .. } => Ev::Gap { conn: conn.0, dir, len },
            StreamEvent::Close { conn, .. } => Ev::Close { conn: conn.0 },
        }
    }
}

/// Everything a reader + reassembler run produced.
pub struct Run {
    pub packets: Vec<Packet>,
    pub events: Vec<Ev>,
    pub read: ReadStats,
    pub tcp: ReassemblyStats,
    pub error: Option<ReadError>,
    pub custom: Vec<Vec<u8>>,
}

impl Run {
    /// Connection ids in order of opening.
    pub fn conns(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Open { conn, .. } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    /// The Open event of a connection.
    pub fn open(&self, conn: u64) -> (SocketAddr, SocketAddr, bool) {
        self.events
            .iter()
            .find_map(|e| match e {
                Ev::Open { conn: c, a, b, mid_stream } if *c == conn => Some((*a, *b, *mid_stream)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no Open for conn {conn}"))
    }

    /// The bytes of one direction, gaps left out.
    pub fn bytes(&self, conn: u64, dir: Dir) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            if let Ev::Data { conn: c, dir: d, data, .. } = e {
                if *c == conn && *d == dir {
                    out.extend_from_slice(data);
                }
            }
        }
        out
    }

    /// One direction as text, each gap shown as `<gap N>`.
    pub fn text(&self, conn: u64, dir: Dir) -> String {
        let mut out = String::new();
        for e in &self.events {
            match e {
                Ev::Data { conn: c, dir: d, data, .. } if *c == conn && *d == dir => {
                    out.push_str(&String::from_utf8_lossy(data))
                }
                Ev::Gap { conn: c, dir: d, len } if *c == conn && *d == dir => {
                    out.push_str(&format!("<gap {len}>"))
                }
                _ => {}
            }
        }
        out
    }

    pub fn gaps(&self) -> Vec<(u64, Dir, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Gap { conn, dir, len } => Some((*conn, *dir, *len)),
                _ => None,
            })
            .collect()
    }

    pub fn closes(&self, conn: u64) -> usize {
        self.events.iter().filter(|e| matches!(e, Ev::Close { conn: c } if *c == conn)).count()
    }
}

/// Reads everything from `reader` and reassembles it.
pub fn run_reader(mut reader: CaptureReader, reassembler: Reassembler) -> Run {
    let mut r = reassembler;
    let mut packets = Vec::new();
    let mut events = Vec::new();
    let error = loop {
        match reader.next_packet() {
            Ok(Some(p)) => {
                r.push(&p, &mut |e| events.push(Ev::from_event(e)));
                packets.push(p);
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    r.finish(&mut |e| events.push(Ev::from_event(e)));
    Run {
        packets,
        events,
        read: reader.stats().clone(),
        tcp: r.stats().clone(),
        error,
        custom: reader.custom_blocks().to_vec(),
    }
}

pub fn run_file(path: &Path) -> Run {
    let reader = CaptureReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    run_reader(reader, Reassembler::new())
}

pub fn run_bytes(bytes: Vec<u8>) -> Run {
    let reader = CaptureReader::from_reader("mem", Box::new(Cursor::new(bytes)))
        .unwrap_or_else(|e| panic!("{e}"));
    run_reader(reader, Reassembler::new())
}

/// Pushes already-built packets through a reassembler.
pub fn reassemble(packets: &[Packet]) -> Run {
    reassemble_with(packets, Reassembler::new())
}

pub fn reassemble_with(packets: &[Packet], mut r: Reassembler) -> Run {
    let mut events = Vec::new();
    for p in packets {
        r.push(p, &mut |e| events.push(Ev::from_event(e)));
    }
    r.finish(&mut |e| events.push(Ev::from_event(e)));
    Run {
        packets: packets.to_vec(),
        events,
        read: ReadStats::default(),
        tcp: r.stats().clone(),
        error: None,
        custom: Vec::new(),
    }
}

/// A TCP segment of a test connection between a client and a server.
#[derive(Clone, Debug)]
pub struct Seg {
    pub from_client: bool,
    pub seq: u32,
    pub ack: Option<u32>,
    pub flags: &'static str,
    pub payload: Vec<u8>,
}

/// A segment from the client (`c`) or the server (`s`).
pub fn c(seq: u32, flags: &'static str, ack: Option<u32>, payload: &[u8]) -> Seg {
    Seg { from_client: true, seq, ack, flags, payload: payload.to_vec() }
}

pub fn s(seq: u32, flags: &'static str, ack: Option<u32>, payload: &[u8]) -> Seg {
    Seg { from_client: false, seq, ack, flags, payload: payload.to_vec() }
}

pub const CLIENT4: ([u8; 4], u16) = ([192, 168, 7, 1], 40000);
pub const SERVER4: ([u8; 4], u16) = ([192, 168, 7, 2], 8080);
pub const CLIENT6: ([u8; 16], u16) = ([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 40000);
pub const SERVER6: ([u8; 16], u16) = ([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 8080);

/// The raw IP packet (IPv4 or IPv6) of a segment.
pub fn ip_packet(seg: &Seg, v6: bool) -> Vec<u8> {
    let (sp, dp) = if seg.from_client { (CLIENT4.1, SERVER4.1) } else { (SERVER4.1, CLIENT4.1) };
    let b = if v6 {
        let (si, di) =
            if seg.from_client { (CLIENT6.0, SERVER6.0) } else { (SERVER6.0, CLIENT6.0) };
        PacketBuilder::ipv6(si, di, 64).tcp(sp, dp, seg.seq, 65535)
    } else {
        let (si, di) =
            if seg.from_client { (CLIENT4.0, SERVER4.0) } else { (SERVER4.0, CLIENT4.0) };
        PacketBuilder::ipv4(si, di, 64).tcp(sp, dp, seg.seq, 65535)
    };
    let mut b = match seg.ack {
        Some(a) => b.ack(a),
        None => b,
    };
    for f in seg.flags.chars() {
        b = match f {
            'S' => b.syn(),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            other => panic!("unknown flag {other}"),
        };
    }
    let mut out = Vec::new();
    b.write(&mut out, &seg.payload).expect("build packet");
    out
}

/// Wraps an IP packet in the link-layer header of `link`. `vlan` adds an
/// 802.1Q tag (Ethernet only).
pub fn frame(link: LinkType, ip: &[u8], vlan: bool) -> Vec<u8> {
    let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
    let ether_type: u16 = if v6 { 0x86dd } else { 0x0800 };
    let mut f = Vec::new();
    match link {
        LinkType::ETHERNET => {
            f.extend([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            if vlan {
                f.extend(0x8100u16.to_be_bytes());
                f.extend(42u16.to_be_bytes());
            }
            f.extend(ether_type.to_be_bytes());
        }
        LinkType::LINUX_SLL => {
            // packet type, ARPHRD, address length, 8 address bytes, protocol
            f.extend(0u16.to_be_bytes());
            f.extend(1u16.to_be_bytes());
            f.extend(6u16.to_be_bytes());
            f.extend([2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend(ether_type.to_be_bytes());
        }
        LinkType::LINUX_SLL2 => {
            // protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes
            f.extend(ether_type.to_be_bytes());
            f.extend(0u16.to_be_bytes());
            f.extend(3u32.to_be_bytes());
            f.extend(1u16.to_be_bytes());
            f.push(4);
            f.push(6);
            f.extend([2, 0, 0, 0, 0, 1, 0, 0]);
        }
        LinkType::NULL => f.extend((if v6 { 30u32 } else { 2 }).to_le_bytes()),
        LinkType::LOOP => f.extend((if v6 { 24u32 } else { 2 }).to_be_bytes()),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => {}
        other => panic!("no framing for {other:?}"),
    }
    f.extend_from_slice(ip);
    f
}

/// Packets (1 ms apart) for a list of segments on one link type.
pub fn packets(segs: &[Seg], link: LinkType, v6: bool) -> Vec<Packet> {
    segs.iter()
        .enumerate()
        .map(|(i, seg)| {
            let data = frame(link, &ip_packet(seg, v6), false);
            Packet {
                ts_ns: 1_700_000_000_000_000_000 + i as u64 * 1_000_000,
                link,
                orig_len: data.len() as u32,
                data,
                meta: None,
                offset: 0,
            }
        })
        .collect()
}

/// A pcapng file under construction.
pub struct NgFile {
    w: PcapNgWriter<Vec<u8>>,
}

impl NgFile {
    pub fn new(endianness: Endianness) -> NgFile {
        NgFile { w: PcapNgWriter::with_endianness(Vec::new(), endianness).expect("write SHB") }
    }

    /// Starts a new section (a new SHB); interfaces must be declared again.
    pub fn section(&mut self, endianness: Endianness) {
        let shb = SectionHeaderBlock { endianness, ..Default::default() };
        self.w.write_block(&shb.into_block()).expect("write SHB");
    }

    /// Declares an interface; returns nothing, ids count from 0 per section.
    pub fn interface(
        &mut self,
        link: LinkType,
        tsresol: Option<InterfaceTsResolution>,
        tsoffset: i64,
    ) {
        let mut options = Vec::new();
        if let Some(r) = tsresol {
            options.push(InterfaceDescriptionOption::IfTsResol(r));
        }
        if tsoffset != 0 {
            options.push(InterfaceDescriptionOption::IfTsOffset(tsoffset));
        }
        let idb =
            InterfaceDescriptionBlock { linktype: DataLink::from(link.0), snaplen: 0, options };
        self.w.write_block(&idb.into_block()).expect("write IDB");
    }

    /// Writes an enhanced packet block, with our metadata option if given.
    pub fn epb(&mut self, interface: u32, ts: Duration, data: &[u8], meta: Option<&ProcMeta>) {
        let mut options = Vec::new();
        if let Some(m) = meta {
            options
                .push(EnhancedPacketOption::Common(CommonOption::Comment(Cow::Owned(m.comment()))));
            let mut value = Vec::new();
            m.encode(&mut value);
            options.push(EnhancedPacketOption::Common(CommonOption::CustomBinaryCopiable(
                CustomBinaryOption { pen: PEN, value: Cow::Owned(value) },
            )));
        }
        let epb = EnhancedPacketBlock {
            interface_id: interface,
            timestamp: ts,
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options,
        };
        self.w.write_block(&epb.into_block()).expect("write EPB");
    }

    pub fn block(&mut self, block: Block<'_>) {
        self.w.write_block(&block).expect("write block");
    }

    pub fn custom(&mut self, pen: u32, payload: &[u8]) {
        let b = CustomBlock::<true> { pen, payload: Cow::Borrowed(payload) };
        self.w.write_block(&b.into_block()).expect("write custom block");
    }

    /// Appends bytes as they are (hand-made blocks).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.w.get_mut().extend_from_slice(bytes);
    }

    /// Current length of the file: the offset of the next block.
    pub fn len(&self) -> u64 {
        self.w.get_ref().len() as u64
    }

    pub fn bytes(self) -> Vec<u8> {
        self.w.into_inner()
    }
}

/// A pcapng file with one interface of `link` holding these segments.
pub fn pcapng_of(segs: &[Seg], link: LinkType, v6: bool) -> Vec<u8> {
    let mut f = NgFile::new(Endianness::Little);
    f.interface(link, Some(InterfaceTsResolution::NANO), 0);
    for (i, seg) in segs.iter().enumerate() {
        let data = frame(link, &ip_packet(seg, v6), false);
        f.epb(0, Duration::from_millis(1_700_000_000_000 + i as u64), &data, None);
    }
    f.bytes()
}

/// A pcap file of the given frames.
pub fn pcap_of(
    link: LinkType,
    nanos: bool,
    endianness: Endianness,
    frames: &[(Duration, Vec<u8>)],
) -> Vec<u8> {
    use pcap_file::pcap::PcapTsResolution;
    let header = PcapHeader {
        datalink: DataLink::from(link.0),
        ts_resolution: if nanos {
            PcapTsResolution::NanoSecond
        } else {
            PcapTsResolution::MicroSecond
        },
        endianness,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("write pcap header");
    for (ts, data) in frames {
        let p = PcapPacket::new(*ts, data.len() as u32, &data[..]).expect("packet");
        w.write_packet(&p).expect("write packet");
    }
    w.into_inner()
}
