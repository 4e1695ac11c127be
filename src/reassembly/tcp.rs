//! TCP reassembly: packets in, ordered byte streams per connection and
//! direction out, as [`StreamEvent`]s.
//!
//! Each direction of a connection ("half") tracks the sequence number of the
//! next byte it expects and the stream offset of that byte. A segment that
//! continues the stream is handed on as a slice of its packet, without a
//! copy; a segment from further ahead is copied into a per-half buffer until
//! the hole in front of it is filled. Bytes already delivered (a
//! retransmission, or the same packet captured twice on loopback) are
//! dropped; a segment that overlaps delivered bytes contributes only its new
//! part. Sequence numbers are compared modulo 2^32 (RFC 9293, section
//! 3.4), so streams that wrap around are followed without special cases.
//!
//! A hole becomes a [`StreamEvent::Gap`] once we are sure its bytes will not
//! arrive:
//! - the peer acknowledged bytes at or beyond its end (the peer received
//!   them, the capture missed them, no one will send them again);
//! - the buffered bytes behind it exceed [`ReassemblyConfig::max_buffered`];
//! - the connection ends (RST, or [`Reassembler::finish`] at end of input).
//!
//! A snapped packet's missing tail is a gap straight away.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, trace};

use super::link::{self, Skip, TcpSegment};
use super::{ConnId, Dir, StreamEvent};
use crate::chunk::ProcMeta;
use crate::pcapng::Packet;

/// Bookkeeping bytes charged per buffered segment on top of its data, so
/// that a flood of tiny out-of-order segments is bounded too.
const SEGMENT_OVERHEAD: usize = 64;

/// How far (in bytes) a SYN may precede the data already seen on a
/// handshake-less connection and still be taken for that connection's own
/// SYN, captured late, rather than the start of a new connection.
const LATE_SYN_WINDOW: i64 = 64 * 1024;

/// Limits of the reassembler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Out-of-order bytes buffered per direction before the hole in front
    /// of them is declared a gap.
    pub max_buffered: usize,
    /// How long, in capture time, a closed connection is remembered, so that
    /// late duplicates and retransmissions of its last segments are dropped
    /// instead of opening a new connection.
    pub closed_linger_ns: u64,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig { max_buffered: 4 << 20, closed_linger_ns: 60_000_000_000 }
    }
}

/// Counters about what the reassembler saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Packets pushed.
    pub packets: u64,
    /// Packets holding a TCP segment.
    pub tcp_segments: u64,
    /// Packets of a link type we do not parse.
    pub skipped_link_type: u64,
    /// The same by link type (LINKTYPE_ value).
    pub skipped_link_types: BTreeMap<u32, u64>,
    /// Packets that are not IPv4 or IPv6.
    pub skipped_non_ip: u64,
    /// IP packets that are not TCP.
    pub skipped_non_tcp: u64,
    /// IP fragments (IP reassembly is not done).
    pub skipped_fragments: u64,
    /// Packets whose headers do not parse.
    pub malformed: u64,
    /// Connections opened.
    pub connections: u64,
    /// Of those, connections whose handshake was not captured.
    pub mid_stream: u64,
    /// Segments that carried nothing new (retransmissions, packets captured
    /// twice, repeated SYNs).
    pub duplicate_segments: u64,
    /// Segments partly made of bytes already delivered or buffered.
    pub overlapping_segments: u64,
    /// Segments buffered because bytes before them were missing.
    pub out_of_order_segments: u64,
    /// Gaps reported, and their total length.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Segments cut by the snap length.
    pub truncated_segments: u64,
    /// Segments of no known connection that cannot open one (bare ACK, FIN
    /// or RST).
    pub without_connection: u64,
    /// Segments of a connection already closed.
    pub after_close: u64,
    /// Most out-of-order bytes (with overhead) buffered at once, all
    /// connections together.
    pub peak_buffered: u64,
}

/// Reassembles the TCP connections of one capture.
pub struct Reassembler {
    config: ReassemblyConfig,
    conns: HashMap<Key, Conn>,
    /// Closed connections in order of closing, to forget them after the
    /// linger time.
    closed: VecDeque<(u64, Key, ConnId)>,
    next_id: u64,
    /// Latest timestamp seen, for the events of [`Reassembler::finish`].
    last_ts: u64,
    /// Out-of-order bytes buffered now, all connections together.
    buffered: usize,
    stats: ReassemblyStats,
}

/// A connection's endpoints, the lower address first.
type Key = (SocketAddr, SocketAddr);

fn key_of(x: SocketAddr, y: SocketAddr) -> Key {
    if x <= y {
        (x, y)
    } else {
        (y, x)
    }
}

struct Conn {
    id: ConnId,
    /// Endpoint A (see [`Dir`]).
    a: SocketAddr,
    /// Index 0: bytes sent by A (AtoB); index 1: sent by B.
    halves: [Half; 2],
    closed: bool,
}

/// One direction of a connection.
#[derive(Default)]
struct Half {
    /// Whether the sequence number of this direction's stream is known.
    started: bool,
    /// Sequence number of the next byte to deliver.
    next_seq: u32,
    /// Stream offset of that byte (bytes delivered plus gaps).
    offset: u64,
    /// Initial sequence number, when the SYN was seen.
    isn: Option<u32>,
    /// Segments waiting for a hole before them, by stream offset.
    pending: BTreeMap<u64, Segment>,
    /// Cost of `pending`: data plus [`SEGMENT_OVERHEAD`] per segment.
    pending_bytes: usize,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    /// Highest acknowledgment number the peer sent for this direction.
    acked: Option<u32>,
}

/// A buffered out-of-order segment.
struct Segment {
    data: Vec<u8>,
    /// Bytes after `data` that the packet announced but did not capture.
    missing: u64,
    ts_ns: u64,
    meta: Option<Arc<ProcMeta>>,
}

impl Segment {
    fn len(&self) -> u64 {
        self.data.len() as u64 + self.missing
    }

    fn cost(&self) -> usize {
        self.data.len() + SEGMENT_OVERHEAD
    }
}

/// Where a half sends its events, and what it counts.
struct Out<'s, 'f> {
    conn: ConnId,
    dir: Dir,
    sink: &'s mut (dyn FnMut(StreamEvent<'_>) + 'f),
    stats: &'s mut ReassemblyStats,
    max_buffered: usize,
    /// Change in buffered bytes, applied to the reassembler's total.
    buffered_delta: isize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new()
    }
}

impl Reassembler {
    /// A reassembler with the default [`ReassemblyConfig`].
    pub fn new() -> Reassembler {
        Reassembler::with_config(ReassemblyConfig::default())
    }

    /// A reassembler with the given buffer cap and linger time.
    pub fn with_config(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            conns: HashMap::new(),
            closed: VecDeque::new(),
            next_id: 0,
            last_ts: 0,
            buffered: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Parses link layer → IPv4/IPv6 → TCP and emits the events this packet
    /// causes (possibly for bytes buffered earlier too). Packets that are
    /// not TCP are counted and otherwise ignored.
    pub fn push(&mut self, pkt: &Packet, sink: &mut dyn FnMut(StreamEvent<'_>)) {
        self.stats.packets += 1;
        self.last_ts = self.last_ts.max(pkt.ts_ns);
        let seg = match link::tcp_segment(pkt.link, &pkt.data, pkt.orig_len) {
            Ok(seg) => seg,
            Err(skip) => {
                self.count_skip(skip, pkt);
                return;
            }
        };
        self.stats.tcp_segments += 1;
        if seg.missing > 0 {
            self.stats.truncated_segments += 1;
        }
        self.expire(pkt.ts_ns);

        let key = key_of(seg.src, seg.dst);
        if !self.connection_for(key, &seg, pkt.ts_ns, sink) {
            return;
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let id = conn.id;
        let mut delta = 0;
        let closed = segment(conn, &seg, pkt, &self.config, &mut self.stats, sink, &mut delta);
        self.apply_buffered(delta);
        if closed {
            self.closed.push_back((pkt.ts_ns, key, id));
        }
    }

    /// End of input: reports the holes still open as gaps, delivers what was
    /// buffered behind them, and closes every open connection (in the order
    /// they were opened).
    pub fn finish(&mut self, sink: &mut dyn FnMut(StreamEvent<'_>)) {
        let mut open: Vec<Key> =
            self.conns.iter().filter(|(_, c)| !c.closed).map(|(k, _)| *k).collect();
        open.sort_by_key(|k| self.conns.get(k).map(|c| c.id));
        let ts = self.last_ts;
        for key in open {
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            let mut delta = 0;
            close(conn, ts, &self.config, &mut self.stats, sink, &mut delta);
            self.apply_buffered(delta);
        }
        self.conns.clear();
        self.closed.clear();
    }

    fn count_skip(&mut self, skip: Skip, pkt: &Packet) {
        trace!("offset {}: packet skipped: {skip:?}", pkt.offset);
        if skip == Skip::LinkType {
            *self.stats.skipped_link_types.entry(pkt.link.0).or_default() += 1;
        }
        let counter = match skip {
            Skip::LinkType => &mut self.stats.skipped_link_type,
            Skip::NotIp => &mut self.stats.skipped_non_ip,
            Skip::NotTcp => &mut self.stats.skipped_non_tcp,
            Skip::Fragment => &mut self.stats.skipped_fragments,
            Skip::Malformed => &mut self.stats.malformed,
        };
        *counter += 1;
    }

    fn apply_buffered(&mut self, delta: isize) {
        self.buffered = self.buffered.saturating_add_signed(delta);
        self.stats.peak_buffered = self.stats.peak_buffered.max(self.buffered as u64);
    }

    /// Forgets connections closed longer ago than the linger time.
    fn expire(&mut self, now: u64) {
        while let Some(&(closed_at, key, id)) = self.closed.front() {
            if now.saturating_sub(closed_at) < self.config.closed_linger_ns {
                break;
            }
            self.closed.pop_front();
            if self.conns.get(&key).is_some_and(|c| c.closed && c.id == id) {
                self.conns.remove(&key);
            }
        }
    }

    /// Finds or opens the connection `seg` belongs to; false when the
    /// segment is to be ignored.
    fn connection_for(
        &mut self,
        key: Key,
        seg: &TcpSegment<'_>,
        ts: u64,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) -> bool {
        let bare_syn = seg.syn && seg.ack.is_none() && !seg.rst;
        match self.conns.get_mut(&key) {
            Some(conn) if conn.closed && !bare_syn => {
                self.stats.after_close += 1;
                return false;
            }
            // The 4-tuple is reused by a new connection.
            Some(conn) if conn.closed => {}
            Some(conn) => {
                if !bare_syn || !starts_new_connection(conn, seg) {
                    return true;
                }
                debug!("conn {}: new SYN on its 4-tuple, closing it", conn.id.0);
                let mut delta = 0;
                close(conn, ts, &self.config, &mut self.stats, sink, &mut delta);
                self.apply_buffered(delta);
            }
            None => {}
        }

        // Open a new connection.
        let with_data = !seg.payload.is_empty() || seg.missing > 0;
        let (a, b, mid_stream) = if seg.syn && !seg.rst {
            // A SYN-ACK without its SYN still names the client.
            if seg.ack.is_some() {
                (seg.dst, seg.src, false)
            } else {
                (seg.src, seg.dst, false)
            }
        } else if with_data && !seg.rst {
            (seg.src, seg.dst, true)
        } else {
            self.stats.without_connection += 1;
            return false;
        };
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.stats.connections += 1;
        if mid_stream {
            self.stats.mid_stream += 1;
        }
        debug!("conn {}: {a} -> {b}{}", id.0, if mid_stream { " (mid-stream)" } else { "" });
        let conn = Conn { id, a, halves: Default::default(), closed: false };
        self.conns.insert(key, conn);
        sink(StreamEvent::Open { conn: id, ts_ns: ts, a, b, mid_stream });
        true
    }
}

/// Whether a SYN (without ACK) on an open connection starts a new one.
fn starts_new_connection(conn: &mut Conn, seg: &TcpSegment<'_>) -> bool {
    let half = &mut conn.halves[if seg.src == conn.a { 0 } else { 1 }];
    match half.isn {
        // The same SYN again: a retransmission or a second capture.
        Some(isn) => isn != seg.seq,
        None if half.started => {
            // A handshake-less connection whose SYN shows up just before the
            // data seen (captures merged from several interfaces are not
            // always in order): the same connection.
            let rel = half.offset_of(seg.seq.wrapping_add(1));
            if (-LATE_SYN_WINDOW..=0).contains(&rel) {
                half.isn = Some(seg.seq);
                false
            } else {
                true
            }
        }
        None => false,
    }
}

/// Applies one segment to its connection; true if it closed it.
fn segment(
    conn: &mut Conn,
    seg: &TcpSegment<'_>,
    pkt: &Packet,
    config: &ReassemblyConfig,
    stats: &mut ReassemblyStats,
    sink: &mut dyn FnMut(StreamEvent<'_>),
    delta: &mut isize,
) -> bool {
    let ts = pkt.ts_ns;
    let (dir, idx) = if seg.src == conn.a { (Dir::AtoB, 0) } else { (Dir::BtoA, 1) };
    let [a, b] = &mut conn.halves;
    let (half, other) = if idx == 0 { (a, b) } else { (b, a) };
    let mut out = Out {
        conn: conn.id,
        dir,
        sink,
        stats,
        max_buffered: config.max_buffered,
        buffered_delta: 0,
    };

    // 1. This direction's bytes.
    let len = seg.payload.len() as u64 + seg.missing as u64;
    if !half.started && (seg.syn || seg.fin || len > 0) {
        half.start(if seg.syn { seg.seq.wrapping_add(1) } else { seg.seq });
    }
    if seg.syn {
        match half.isn {
            Some(isn) if isn == seg.seq && len == 0 => out.stats.duplicate_segments += 1,
            Some(_) => {}
            None => half.isn = Some(seg.seq),
        }
    }
    if half.started {
        let data_seq = if seg.syn { seg.seq.wrapping_add(1) } else { seg.seq };
        let off = half.offset_of(data_seq);
        half.data(off, seg.payload, seg.missing as u64, ts, pkt.meta.as_ref(), &mut out);
        if seg.fin && half.fin.is_none() {
            let fin = off + len as i64;
            if fin >= half.offset as i64 {
                half.fin = Some(fin as u64);
            }
        }
    }

    // 2. The acknowledgment of the other direction.
    if let Some(ack) = seg.ack {
        if !other.started && !seg.rst {
            // The peer's first byte we may see: a handshake-less connection
            // (or a lost SYN-ACK) still gets offsets that hold when the
            // peer's segments arrive out of order.
            other.start(ack);
        }
        out.dir = dir.reverse();
        other.on_ack(ack, ts, &mut out);
        out.dir = dir;
    }
    *delta += out.buffered_delta;

    // 3. The end of the connection.
    if seg.rst || (half.finished() && other.finished()) {
        debug!("conn {}: {}", conn.id.0, if seg.rst { "reset" } else { "closed" });
        close(conn, ts, config, out.stats, out.sink, delta);
        return true;
    }
    false
}

/// Reports what is left of both directions and closes the connection.
fn close(
    conn: &mut Conn,
    ts: u64,
    config: &ReassemblyConfig,
    stats: &mut ReassemblyStats,
    sink: &mut dyn FnMut(StreamEvent<'_>),
    delta: &mut isize,
) {
    let mut out = Out {
        conn: conn.id,
        dir: Dir::AtoB,
        sink,
        stats,
        max_buffered: config.max_buffered,
        buffered_delta: 0,
    };
    for (half, dir) in conn.halves.iter_mut().zip([Dir::AtoB, Dir::BtoA]) {
        out.dir = dir;
        half.flush(ts, &mut out);
    }
    *delta += out.buffered_delta;
    (out.sink)(StreamEvent::Close { conn: conn.id, ts_ns: ts });
    conn.closed = true;
}

impl Half {
    fn start(&mut self, seq: u32) {
        self.started = true;
        self.next_seq = seq;
    }

    /// Stream offset of sequence number `seq`: bytes within 2^31 behind the
    /// next expected one are in the past, the others ahead.
    fn offset_of(&self, seq: u32) -> i64 {
        self.offset as i64 + seq.wrapping_sub(self.next_seq) as i32 as i64
    }

    fn finished(&self) -> bool {
        self.fin.is_some_and(|fin| self.offset >= fin)
    }

    fn advance(&mut self, n: u64) {
        self.offset += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// Takes `payload` (followed by `missing` uncaptured bytes) found at
    /// stream offset `off`.
    fn data(
        &mut self,
        off: i64,
        payload: &[u8],
        missing: u64,
        ts: u64,
        meta: Option<&Arc<ProcMeta>>,
        out: &mut Out<'_, '_>,
    ) {
        let len = payload.len() as u64 + missing;
        if len == 0 {
            return;
        }
        let end = off + len as i64;
        if end <= self.offset as i64 {
            out.stats.duplicate_segments += 1;
            return;
        }
        if off > self.offset as i64 {
            let off = off as u64;
            if self.acked_offset().is_some_and(|acked| acked >= off as i64) {
                // The peer has all bytes before this segment; the capture
                // missed some and they will not be sent again.
                self.release_until(off, ts, out);
            } else {
                self.buffer(off, payload, missing, ts, meta, out);
                while self.pending_bytes > out.max_buffered {
                    let Some(&first) = self.pending.keys().next() else {
                        break;
                    };
                    debug!("conn {}: {:?} buffer full, giving up on a hole", out.conn.0, out.dir);
                    self.release_until(first, ts, out);
                }
                return;
            }
        }
        // `off` is now at or before the next expected byte.
        let skip = (self.offset as i64 - off) as u64;
        if skip > 0 {
            out.stats.overlapping_segments += 1;
        }
        self.deliver(skip, payload, missing, ts, meta, out);
        self.drain(out);
    }

    /// Delivers a segment from `skip` bytes into it, which must be the next
    /// expected byte.
    fn deliver(
        &mut self,
        skip: u64,
        payload: &[u8],
        missing: u64,
        ts: u64,
        meta: Option<&Arc<ProcMeta>>,
        out: &mut Out<'_, '_>,
    ) {
        if let Some(data) = payload.get(skip as usize..).filter(|d| !d.is_empty()) {
            (out.sink)(StreamEvent::Data { conn: out.conn, dir: out.dir, ts_ns: ts, data, meta });
            self.advance(data.len() as u64);
        }
        let end = payload.len() as u64 + missing;
        let from = skip.max(payload.len() as u64);
        if end > from {
            self.gap(end - from, ts, out);
        }
    }

    /// Delivers buffered segments that now continue the stream.
    fn drain(&mut self, out: &mut Out<'_, '_>) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.offset {
                break;
            }
            let (key, seg) = entry.remove_entry();
            self.pending_bytes -= seg.cost();
            out.buffered_delta -= seg.cost() as isize;
            if key + seg.len() <= self.offset {
                continue;
            }
            self.deliver(
                self.offset - key,
                &seg.data,
                seg.missing,
                seg.ts_ns,
                seg.meta.as_ref(),
                out,
            );
        }
    }

    /// Copies an out-of-order segment into the buffer, keeping the bytes
    /// buffered first where segments overlap.
    fn buffer(
        &mut self,
        mut off: u64,
        mut payload: &[u8],
        mut missing: u64,
        ts: u64,
        meta: Option<&Arc<ProcMeta>>,
        out: &mut Out<'_, '_>,
    ) {
        let end = off + payload.len() as u64 + missing;
        if let Some((&k, prev)) = self.pending.range(..=off).next_back() {
            let prev_end = k + prev.len();
            if prev_end >= end {
                out.stats.duplicate_segments += 1;
                return;
            }
            if prev_end > off {
                let cut = prev_end - off;
                let from_payload = cut.min(payload.len() as u64);
                payload = payload.get(from_payload as usize..).unwrap_or_default();
                missing -= cut - from_payload;
                off = prev_end;
                out.stats.overlapping_segments += 1;
            }
        }
        // Drop the later segments this one covers entirely.
        while let Some((&k, next)) = self.pending.range(off..end).next() {
            if k + next.len() > end {
                if k == off {
                    // Starts where this one does and goes further.
                    out.stats.duplicate_segments += 1;
                    return;
                }
                break;
            }
            if let Some(seg) = self.pending.remove(&k) {
                self.pending_bytes -= seg.cost();
                out.buffered_delta -= seg.cost() as isize;
            }
        }
        let seg = Segment { data: payload.to_vec(), missing, ts_ns: ts, meta: meta.cloned() };
        out.stats.out_of_order_segments += 1;
        self.pending_bytes += seg.cost();
        out.buffered_delta += seg.cost() as isize;
        self.pending.insert(off, seg);
    }

    /// Declares every hole before stream offset `target` lost, delivering
    /// the buffered segments between them.
    fn release_until(&mut self, target: u64, ts: u64, out: &mut Out<'_, '_>) {
        loop {
            self.drain(out);
            if self.offset >= target {
                return;
            }
            let next = self.pending.keys().next().copied().filter(|&k| k < target);
            self.gap(next.unwrap_or(target) - self.offset, ts, out);
        }
    }

    fn gap(&mut self, len: u64, ts: u64, out: &mut Out<'_, '_>) {
        debug!("conn {}: {:?} gap of {len} bytes at {}", out.conn.0, out.dir, self.offset);
        out.stats.gaps += 1;
        out.stats.gap_bytes += len;
        (out.sink)(StreamEvent::Gap { conn: out.conn, dir: out.dir, ts_ns: ts, len });
        self.advance(len);
    }

    /// Stream offset of the peer's highest acknowledgment.
    fn acked_offset(&self) -> Option<i64> {
        self.acked.map(|ack| self.offset_of(ack))
    }

    /// Takes an acknowledgment from the peer: holes it covers entirely (up to
    /// a buffered segment or the FIN) were received by the peer but not
    /// captured, so they are gaps now.
    fn on_ack(&mut self, ack: u32, ts: u64, out: &mut Out<'_, '_>) {
        if !self.started {
            return;
        }
        match self.acked {
            Some(prev) if ack.wrapping_sub(prev) as i32 <= 0 => {}
            _ => self.acked = Some(ack),
        }
        let Some(acked) = self.acked_offset().filter(|&a| a > self.offset as i64) else {
            return;
        };
        let acked = acked as u64;
        let mut target = self.pending.range(..=acked).next_back().map(|(&k, _)| k);
        if let Some(fin) = self.fin.filter(|&f| f <= acked) {
            target = target.max(Some(fin));
        }
        if let Some(target) = target.filter(|&t| t > self.offset) {
            self.release_until(target, ts, out);
        }
    }

    /// At the end of the connection: every hole is a gap, up to the last
    /// byte known to exist (buffered, before the FIN, or acknowledged).
    fn flush(&mut self, ts: u64, out: &mut Out<'_, '_>) {
        let last_buffered = self.pending.last_key_value().map(|(&k, s)| k + s.len());
        let announced = match self.fin {
            Some(fin) => Some(fin),
            None => self.acked_offset().filter(|&a| a > 0).map(|a| a as u64),
        };
        let target = last_buffered.max(announced);
        if let Some(target) = target.filter(|&t| t > self.offset && self.started) {
            self.release_until(target, ts, out);
        }
        self.drain(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapng::LinkType;
    use etherparse::PacketBuilder;

    /// Owned copy of an event, for assertions.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Open(u64, bool),
        Data(u64, Dir, Vec<u8>),
        Gap(u64, Dir, u64),
        Close(u64),
    }

    fn own(e: StreamEvent<'_>) -> Ev {
        match e {
            StreamEvent::Open { conn, mid_stream, .. } => Ev::Open(conn.0, mid_stream),
            StreamEvent::Data { conn, dir, data, .. } => Ev::Data(conn.0, dir, data.to_vec()),
            StreamEvent::Gap { conn, dir, len, .. } => Ev::Gap(conn.0, dir, len),
            StreamEvent::Close { conn, .. } => Ev::Close(conn.0),
        }
    }

    /// A raw IPv4 packet from client (port 1000) or server (port 80).
    fn pkt(from_client: bool, seq: u32, flags: &str, ack: Option<u32>, payload: &[u8]) -> Packet {
        let (sp, dp) = if from_client { (1000, 80) } else { (80, 1000) };
        let (si, di) = if from_client {
            ([10, 0, 0, 1], [10, 0, 0, 2])
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1])
        };
        let mut b = PacketBuilder::ipv4(si, di, 64).tcp(sp, dp, seq, 65535);
        if let Some(a) = ack {
            b = b.ack(a);
        }
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'R' => b.rst(),
                _ => b,
            };
        }
        let mut data = Vec::new();
        b.write(&mut data, payload).unwrap();
        Packet {
            ts_ns: 0,
            link: LinkType::RAW,
            orig_len: data.len() as u32,
            data,
            meta: None,
            offset: 0,
        }
    }

    fn run(pkts: &[Packet]) -> (Vec<Ev>, ReassemblyStats) {
        let mut r = Reassembler::new();
        let mut evs = Vec::new();
        for p in pkts {
            r.push(p, &mut |e| evs.push(own(e)));
        }
        r.finish(&mut |e| evs.push(own(e)));
        (evs, r.stats().clone())
    }

    /// All data of one direction, with gaps as `<gap N>`.
    fn stream(evs: &[Ev], dir: Dir) -> String {
        let mut s = String::new();
        for e in evs {
            match e {
                Ev::Data(_, d, b) if *d == dir => s.push_str(&String::from_utf8_lossy(b)),
                Ev::Gap(_, d, n) if *d == dir => s.push_str(&format!("<gap {n}>")),
                _ => {}
            }
        }
        s
    }

    #[test]
    fn reassembler_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Reassembler>();
    }

    #[test]
    fn handshake_data_and_fin() {
        let (evs, stats) = run(&[
            pkt(true, 100, "S", None, b""),
            pkt(false, 500, "S", Some(101), b""),
            pkt(true, 101, "", Some(501), b"hello "),
            pkt(true, 107, "", Some(501), b"world"),
            pkt(false, 501, "", Some(112), b"ok"),
            pkt(true, 112, "F", Some(503), b""),
            pkt(false, 503, "F", Some(113), b""),
        ]);
        assert_eq!(evs[0], Ev::Open(0, false));
        assert_eq!(stream(&evs, Dir::AtoB), "hello world");
        assert_eq!(stream(&evs, Dir::BtoA), "ok");
        assert_eq!(evs.last(), Some(&Ev::Close(0)));
        assert_eq!(evs.iter().filter(|e| matches!(e, Ev::Close(_))).count(), 1);
        assert_eq!(stats.gaps, 0);
    }

    #[test]
    fn out_of_order_is_reordered_and_copied_only_then() {
        let (evs, stats) = run(&[
            pkt(true, 100, "S", None, b""),
            pkt(true, 107, "", None, b"world"),
            pkt(true, 101, "", None, b"hello "),
        ]);
        assert_eq!(stream(&evs, Dir::AtoB), "hello world");
        assert_eq!(stats.out_of_order_segments, 1);
    }

    #[test]
    fn hole_acknowledged_by_peer_is_a_gap_at_once() {
        let mut r = Reassembler::new();
        let mut evs = Vec::new();
        for p in [
            pkt(true, 100, "S", None, b""),
            pkt(true, 101, "", None, b"aaaa"),
            // 105..110 never captured
            pkt(true, 110, "", None, b"cccc"),
            pkt(false, 500, "", Some(114), b""),
        ] {
            r.push(&p, &mut |e| evs.push(own(e)));
        }
        assert_eq!(stream(&evs, Dir::AtoB), "aaaa<gap 5>cccc");
    }

    #[test]
    fn fin_closes_after_both_sides() {
        let (evs, _) = run(&[
            pkt(true, 1, "", None, b"x"),
            pkt(true, 2, "F", None, b""),
            pkt(false, 9, "F", Some(3), b""),
        ]);
        assert_eq!(evs, [Ev::Open(0, true), Ev::Data(0, Dir::AtoB, b"x".to_vec()), Ev::Close(0)]);
    }
}
