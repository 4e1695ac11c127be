//! Synthetic captures of several connections at once, for the decoder's
//! end-to-end tests: each connection has its own endpoints and sequence
//! numbers, packets of all of them go into one pcapng in the order the test
//! sends them, with the sender's process metadata.
#![allow(dead_code)]

use std::time::Duration;

use dockersnoop::chunk::ProcMeta;
use dockersnoop::pcapng::LinkType;
use etherparse::PacketBuilder;
use pcap_file::pcapng::blocks::interface_description::InterfaceTsResolution;
use pcap_file::Endianness;

use crate::reassembly_support::NgFile;

/// Capture time of the first packet, ns since the epoch.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;

/// One TCP connection of a [`Capture`].
#[derive(Clone, Debug)]
pub struct Tcp {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    client_seq: u32,
    server_seq: u32,
    client_meta: ProcMeta,
    server_meta: ProcMeta,
}

/// A process as the recorder describes it.
pub fn proc(comm: &str, pid: u32, peer: u32) -> ProcMeta {
    ProcMeta { pid, tid: pid, peer_pid: Some(peer), comm: comm.into(), ..Default::default() }
}

/// Packets of many connections, in sending order, 1 ms apart.
pub struct Capture {
    file: NgFile,
    packets: u64,
}

impl Default for Capture {
    fn default() -> Self {
        Self::new()
    }
}

impl Capture {
    pub fn new() -> Capture {
        let mut file = NgFile::new(Endianness::Little);
        file.interface(LinkType::RAW, Some(InterfaceTsResolution::NANO), 0);
        Capture { file, packets: 0 }
    }

    /// Opens connection number `n` (its handshake is captured): client and
    /// server are 10.0.n.1 and 10.0.n.2.
    pub fn connect(&mut self, n: u8, client: ProcMeta, server: ProcMeta) -> Tcp {
        let mut t = Tcp {
            client: ([10, 0, n, 1], 40000 + n as u16),
            server: ([10, 0, n, 2], 9000 + n as u16),
            client_seq: 1000,
            server_seq: 5000,
            client_meta: client,
            server_meta: server,
        };
        self.segment(&t, true, "S", false, &[]);
        self.segment(&t, false, "S", true, &[]);
        t.client_seq += 1;
        t.server_seq += 1;
        self.segment(&t, true, "", true, &[]);
        t
    }

    /// Bytes from the client (`from_client`) or the server, in one segment.
    pub fn send(&mut self, t: &mut Tcp, from_client: bool, data: &[u8]) {
        self.segment(t, from_client, "P", true, data);
        if from_client {
            t.client_seq += data.len() as u32;
        } else {
            t.server_seq += data.len() as u32;
        }
    }

    /// Both sides close.
    pub fn close(&mut self, t: &mut Tcp) {
        self.segment(t, true, "F", true, &[]);
        t.client_seq += 1;
        self.segment(t, false, "F", true, &[]);
        t.server_seq += 1;
        self.segment(t, true, "", true, &[]);
    }

    pub fn bytes(self) -> Vec<u8> {
        self.file.bytes()
    }

    fn segment(&mut self, t: &Tcp, from_client: bool, flags: &str, ack: bool, data: &[u8]) {
        let (src, dst, seq, ackno) = if from_client {
            (t.client, t.server, t.client_seq, t.server_seq)
        } else {
            (t.server, t.client, t.server_seq, t.client_seq)
        };
        let mut b = PacketBuilder::ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 65535);
        if ack {
            b = b.ack(ackno);
        }
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'P' => b.psh(),
                other => panic!("unknown flag {other}"),
            };
        }
        let mut pkt = Vec::new();
        b.write(&mut pkt, data).expect("build packet");
        let meta = if from_client { &t.client_meta } else { &t.server_meta };
        let ts = Duration::from_nanos(T0_NS + self.packets * 1_000_000);
        self.packets += 1;
        self.file.epb(0, ts, &pkt, Some(meta));
    }
}

// ----- the protocols, as bytes -----

/// HTTP/2 client preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/2 frame.
pub fn h2_frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(ty);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An HPACK block of literal fields without indexing (RFC 7541 §6.2.2), no Huffman.
pub fn hpack_literals(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (n, val) in fields {
        assert!(n.len() < 127 && val.len() < 127, "short fields only");
        v.push(0);
        v.push(n.len() as u8);
        v.extend_from_slice(n.as_bytes());
        v.push(val.len() as u8);
        v.extend_from_slice(val.as_bytes());
    }
    v
}

/// A gRPC length-prefixed message.
pub fn grpc_message(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A ttrpc message: header and payload.
pub fn ttrpc_message(stream: u32, ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&stream.to_be_bytes());
    v.push(ty);
    v.push(0);
    v.extend_from_slice(payload);
    v
}

/// Protobuf: a length-delimited field.
pub fn pb_bytes(field: u32, data: &[u8]) -> Vec<u8> {
    let mut v = pb_varint_raw(((field as u64) << 3) | 2);
    v.extend(pb_varint_raw(data.len() as u64));
    v.extend_from_slice(data);
    v
}

/// Protobuf: a varint field.
pub fn pb_varint(field: u32, n: u64) -> Vec<u8> {
    let mut v = pb_varint_raw((field as u64) << 3);
    v.extend(pb_varint_raw(n));
    v
}

fn pb_varint_raw(mut n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            v.push(b);
            return v;
        }
        v.push(b | 0x80);
    }
}

/// A ttrpc request payload: service, method, the call's payload.
pub fn ttrpc_request(service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = pb_bytes(1, service.as_bytes());
    v.extend(pb_bytes(2, method.as_bytes()));
    v.extend(pb_bytes(3, payload));
    v
}

/// A ttrpc response payload: status (code, message) and the result.
pub fn ttrpc_response(code: u64, message: &str, payload: &[u8]) -> Vec<u8> {
    let mut status = Vec::new();
    if code != 0 {
        status.extend(pb_varint(1, code));
    }
    if !message.is_empty() {
        status.extend(pb_bytes(2, message.as_bytes()));
    }
    let mut v = pb_bytes(1, &status);
    if !payload.is_empty() {
        v.extend(pb_bytes(2, payload));
    }
    v
}
