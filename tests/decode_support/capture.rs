//! Synthetic captures for the decode tests and the benchmark generator
//! (examples/gen_capture.rs): HTTP/2 frame bytes (HPACK by httlib-hpack's
//! encoder), carried by TCP conversations (etherparse) written as pcapng
//! (pcap-file), optionally with our process metadata option on every packet
//! block.
#![allow(dead_code)]

use std::borrow::Cow;
use std::io::Write;
use std::net::Ipv4Addr;
use std::time::Duration;

use dockersnoop::chunk::{ProcMeta, PEN};
use etherparse::PacketBuilder;
use pcap_file::pcapng::blocks::custom::{CustomBinaryOption, CustomBlock};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use pcap_file::DataLink;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest TCP payload per segment.
const MSS: usize = 16 * 1024;
/// Capture start: 2023-11-14T22:13:20Z.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;

/// An HTTP/2 frame.
pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    v.push(ty);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(4, 0, 0, &p)
}

/// A gRPC length-prefixed message.
pub fn grpc_msg(compressed: bool, body: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::from(compressed)];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Protobuf `{1: s}`.
pub fn pb_string(s: &str) -> Vec<u8> {
    let mut v = vec![0x0a];
    let mut n = s.len();
    while n >= 0x80 {
        v.push((n as u8) | 0x80);
        n >>= 7;
    }
    v.push(n as u8);
    v.extend_from_slice(s.as_bytes());
    v
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

/// One HPACK encoder per direction, as a real peer has.
#[derive(Default)]
pub struct Hpack(httlib_hpack::Encoder<'static>);

impl Hpack {
    /// Encodes with indexing and Huffman, as grpc-go does.
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        let f = 0x1 | 0x2 | 0x4 | 0x10;
        for (n, v) in fields {
            self.0.encode((n.as_bytes().to_vec(), v.as_bytes().to_vec(), f), &mut out).unwrap();
        }
        out
    }
}

/// HEADERS (END_HEADERS) opening a gRPC call.
pub fn grpc_request(h: &mut Hpack, stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    fields.extend_from_slice(extra);
    frame(1, 0x4, stream, &h.block(&fields))
}

/// Response HEADERS of a gRPC call.
pub fn grpc_response(h: &mut Hpack, stream: u32, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![(":status", "200"), ("content-type", "application/grpc")];
    fields.extend_from_slice(extra);
    frame(1, 0x4, stream, &h.block(&fields))
}

/// Trailers (END_STREAM) with a grpc-status.
pub fn grpc_trailers(h: &mut Hpack, stream: u32, status: u32, message: &str) -> Vec<u8> {
    let s = status.to_string();
    frame(1, 0x5, stream, &h.block(&[("grpc-status", &s), ("grpc-message", message)]))
}

/// A pcapng file (Ethernet, nanosecond timestamps) being written to `W`.
pub struct Capture<W: Write> {
    w: PcapNgWriter<W>,
    /// Time of the next packet.
    pub ts_ns: u64,
    meta_buf: Vec<u8>,
}

impl Capture<Vec<u8>> {
    pub fn new() -> Self {
        Capture::to(Vec::new())
    }
}

impl<W: Write> Capture<W> {
    pub fn to(w: W) -> Self {
        let mut w = PcapNgWriter::new(w).expect("write SHB");
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO)],
        };
        w.write_block(&idb.into_block()).expect("write IDB");
        Capture { w, ts_ns: T0_NS, meta_buf: Vec::new() }
    }

    /// One packet block, 10 µs after the previous one.
    pub fn packet(&mut self, data: &[u8], meta: Option<&ProcMeta>) {
        let mut options = Vec::new();
        if let Some(m) = meta {
            self.meta_buf.clear();
            m.encode(&mut self.meta_buf);
            options.push(EnhancedPacketOption::Common(CommonOption::CustomBinaryCopiable(
                CustomBinaryOption { pen: PEN, value: Cow::Borrowed(&self.meta_buf) },
            )));
        }
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(self.ts_ns),
            original_len: data.len() as u32,
            data: Cow::Borrowed(data),
            options,
        };
        self.w.write_block(&epb.into_block()).expect("write EPB");
        self.ts_ns += 10_000;
    }

    pub fn into_inner(self) -> W {
        self.w.into_inner()
    }

    /// A custom block (copyable) with this PEN and payload.
    pub fn custom(&mut self, pen: u32, payload: &[u8]) {
        let b = CustomBlock::<true> { pen, payload: Cow::Borrowed(payload) };
        self.w.write_block(&b.into_block()).expect("write custom block");
    }

    pub fn get_ref(&self) -> &W {
        self.w.get_ref()
    }
}

impl Capture<Vec<u8>> {
    /// Bytes written so far: the offset of the next block.
    pub fn offset(&self) -> u64 {
        self.w.get_ref().len() as u64
    }
}

/// One TCP connection between a client and a server on 10.0.0.0/8.
pub struct Tcp {
    pub client: (Ipv4Addr, u16),
    pub server: (Ipv4Addr, u16),
    cseq: u32,
    sseq: u32,
    pub client_meta: Option<ProcMeta>,
    pub server_meta: Option<ProcMeta>,
    buf: Vec<u8>,
}

impl Tcp {
    pub fn new(client_port: u16, server_port: u16) -> Tcp {
        Tcp {
            client: (Ipv4Addr::new(10, 0, 0, 1), client_port),
            server: (Ipv4Addr::new(10, 0, 0, 2), server_port),
            cseq: 1000,
            sseq: 5000,
            client_meta: None,
            server_meta: None,
            buf: Vec::new(),
        }
    }

    /// `client:port` as the decoder prints it.
    pub fn client_addr(&self) -> String {
        format!("{}:{}", self.client.0, self.client.1)
    }

    pub fn server_addr(&self) -> String {
        format!("{}:{}", self.server.0, self.server.1)
    }

    fn segment<W: Write>(
        &mut self,
        cap: &mut Capture<W>,
        from_client: bool,
        flags: &str,
        payload: &[u8],
    ) {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sseq, self.cseq)
        };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0.octets(), dst.0.octets(), 64)
            .tcp(src.1, dst.1, seq, 65535);
        if !flags.contains('S') || !from_client {
            b = b.ack(ack);
        }
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'P' => b.psh(),
                _ => b,
            };
        }
        self.buf.clear();
        b.write(&mut self.buf, payload).expect("build packet");
        let meta = if from_client { self.client_meta.as_ref() } else { self.server_meta.as_ref() };
        cap.packet(&self.buf, meta);
        let len = payload.len() as u32 + u32::from(flags.contains('S') || flags.contains('F'));
        if from_client {
            self.cseq = self.cseq.wrapping_add(len);
        } else {
            self.sseq = self.sseq.wrapping_add(len);
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn open<W: Write>(&mut self, cap: &mut Capture<W>) {
        self.segment(cap, true, "S", &[]);
        self.segment(cap, false, "S", &[]);
        self.segment(cap, true, "", &[]);
    }

    /// Bytes from one side, in segments of at most 16 KiB, each acknowledging
    /// everything the peer sent.
    pub fn send<W: Write>(&mut self, cap: &mut Capture<W>, from_client: bool, data: &[u8]) {
        for chunk in data.chunks(MSS) {
            self.segment(cap, from_client, "P", chunk);
        }
    }

    /// Bytes the sender sent but the capture missed.
    pub fn lose(&mut self, from_client: bool, len: u32) {
        if from_client {
            self.cseq = self.cseq.wrapping_add(len);
        } else {
            self.sseq = self.sseq.wrapping_add(len);
        }
    }

    /// FIN from both sides, then the last ACK.
    pub fn close<W: Write>(&mut self, cap: &mut Capture<W>) {
        self.segment(cap, true, "F", &[]);
        self.segment(cap, false, "F", &[]);
        self.segment(cap, true, "", &[]);
    }
}
