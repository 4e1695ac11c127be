//! One connection: recognising HTTP/2 (preface, early server SETTINGS, h2c
//! upgrade, CONNECT prelude, or frame heuristics when joined mid-stream),
//! framing each direction, HPACK per direction, and the streams.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, trace};

use super::frame::{self, flags, setting, ErrorCode, FrameHeader, FrameType, HEADER_LEN, PREFACE};
use crate::chunk::ProcMeta;
use crate::decode::grpc::{self, Assembler};
use crate::decode::hpack::{Field, HeaderDecoder, DEFAULT_TABLE_SIZE};
use crate::decode::record::{ix, At, Ends, Flags, Kind, Message, Proto, Record, Summary};
use crate::decode::DecodeOptions;
use crate::reassembly::{ConnId, Dir};

/// Bytes kept while classifying the start of a direction.
const MAX_DETECT: usize = 64 * 1024;
/// Bytes kept while searching for a frame boundary.
const MAX_RESYNC: usize = 1 << 20;
/// Largest header block kept across CONTINUATION frames.
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// Ended streams remembered per connection, so that frames arriving after
/// the end (a RST_STREAM after a complete response, a response racing the
/// client's cancel) neither open a new call nor lose the method.
const MAX_CLOSED: usize = 1024;

/// What the decoders share across connections.
pub struct Ctx<'a> {
    pub pool: &'a prost_reflect::DescriptorPool,
    pub opts: &'a DecodeOptions,
    pub summary: &'a mut Summary,
}

/// What one direction waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The first bytes: preface, HTTP/1 head, SETTINGS, or (mid-stream) anything.
    ExpectStart,
    /// The rest of an HTTP/1 head (h2c upgrade or CONNECT).
    ExpectHttp1Head,
    /// HTTP/2 frames.
    ExpectFrame,
    /// A plausible frame boundary, after a gap or when joined mid-stream.
    ExpectBoundary,
    /// Not HTTP/2: everything is dropped.
    Ignore,
}

/// Which stream a header block belongs to and what follows it.
#[derive(Clone, Copy)]
struct BlockInfo {
    stream: u32,
    end_stream: bool,
    /// Promised stream for PUSH_PROMISE.
    promised: Option<u32>,
}

/// A header block waiting for its CONTINUATION frames.
struct PendingBlock {
    info: BlockInfo,
    block: Vec<u8>,
}

struct DirState {
    mode: Mode,
    /// Partial frame, detection or resync bytes.
    buf: Vec<u8>,
    hpack: HeaderDecoder,
    /// SETTINGS_MAX_FRAME_SIZE the receiver of this direction advertised.
    max_frame: u32,
    pending: Option<PendingBlock>,
    /// Whether this direction started with a gap-free, recognised beginning.
    seen_start: bool,
    /// Set by a gap; the next boundary found counts as a resync.
    after_gap: bool,
}

impl DirState {
    fn new() -> DirState {
        DirState {
            mode: Mode::ExpectStart,
            buf: Vec::new(),
            hpack: HeaderDecoder::new(DEFAULT_TABLE_SIZE),
            max_frame: frame::DEFAULT_MAX_FRAME,
            pending: None,
            seen_start: false,
            after_gap: false,
        }
    }
}

/// Whether a stream carries gRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carries {
    Unknown,
    Grpc,
    Http,
}

/// One side (request or response) of a stream.
struct Side {
    messages: Assembler,
    encoding: Option<String>,
    content_type: Option<String>,
    /// `:method :path` or `:status`.
    head: Option<String>,
    body_bytes: u64,
    ended: bool,
    /// HTTP row already printed.
    reported: bool,
    /// Bytes were lost; waiting for a message start.
    lost: bool,
    flags: Flags,
    headers: Option<Vec<(String, String)>>,
    meta: Option<Arc<ProcMeta>>,
    last_ts: u64,
}

impl Side {
    fn new(cap: usize) -> Side {
        Side {
            messages: Assembler::new(cap),
            encoding: None,
            content_type: None,
            head: None,
            body_bytes: 0,
            ended: false,
            reported: false,
            lost: false,
            flags: Flags::default(),
            headers: None,
            meta: None,
            last_ts: 0,
        }
    }
}

struct Stream {
    started_ns: u64,
    carries: Carries,
    method: Option<String>,
    method_desc: Option<prost_reflect::MethodDescriptor>,
    req: Side,
    resp: Side,
    /// Response headers seen (so the next block is trailers).
    resp_started: bool,
}

impl Stream {
    fn new(ts: u64, cap: usize) -> Stream {
        Stream {
            started_ns: ts,
            carries: Carries::Unknown,
            method: None,
            method_desc: None,
            req: Side::new(cap),
            resp: Side::new(cap),
            resp_started: false,
        }
    }

    fn side(&mut self, from_client: bool) -> &mut Side {
        if from_client {
            &mut self.req
        } else {
            &mut self.resp
        }
    }
}

/// An HTTP/1 request that asked to switch to h2c, answered on stream 1.
struct Upgrade {
    method: String,
    path: String,
    ts: u64,
}

/// The decoding state of one connection.
pub struct Conn {
    ends: Ends,
    mid_stream: bool,
    dirs: [DirState; 2],
    client: Option<Dir>,
    streams: HashMap<u32, Stream>,
    /// Recently ended streams and their methods (at most [`MAX_CLOSED`]).
    closed: BTreeMap<u32, (Option<String>, Proto)>,
    upgrade: Option<Upgrade>,
    counted_http2: bool,
    counted_join: bool,
}

fn dir_of(i: usize) -> Dir {
    if i == 0 {
        Dir::AtoB
    } else {
        Dir::BtoA
    }
}

impl Conn {
    pub fn new(id: ConnId, a: SocketAddr, b: SocketAddr, mid_stream: bool) -> Conn {
        Conn {
            ends: Ends { conn: id, a, b },
            mid_stream,
            dirs: [DirState::new(), DirState::new()],
            client: None,
            streams: HashMap::new(),
            closed: BTreeMap::new(),
            upgrade: None,
            counted_http2: false,
            counted_join: false,
        }
    }

    /// Header fields that resolved to never-seen table entries, not yet
    /// added to the summary.
    pub fn unknown_fields(&self) -> u64 {
        self.dirs.iter().map(|d| d.hpack.unknown_fields).sum()
    }

    /// Whether any direction was recognised as HTTP/2.
    pub fn is_http2(&self) -> bool {
        self.counted_http2
    }

    /// In-order bytes of one direction.
    pub fn on_data(
        &mut self,
        dir: Dir,
        ts: u64,
        data: &[u8],
        meta: Option<&Arc<ProcMeta>>,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let at = At { ts, meta: meta.cloned() };
        self.feed(ix(dir), data, &at, ctx, out);
    }

    /// Bytes of one direction were lost.
    pub fn on_gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        ctx.summary.gaps += 1;
        let d = ix(dir);
        debug!("conn {}: gap of {len} bytes in {dir:?}, resynchronising", self.ends.conn.0);
        let st = &mut self.dirs[d];
        st.buf.clear();
        st.pending = None;
        st.after_gap = true;
        if st.mode != Mode::Ignore {
            st.mode = Mode::ExpectBoundary;
        }
        // A lost header block would shift every dynamic index: forget the table.
        st.hpack.reset_unknown();
        let from_client = self.is_client(d);
        for s in self.streams.values_mut() {
            let side = s.side(from_client);
            if side.messages.is_partial() {
                side.messages.drop_partial();
                side.lost = true;
            }
            side.flags.insert(Flags::GAP);
        }
    }

    /// The connection ended: every open call ends.
    pub fn finish(&mut self, ts: u64, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let at = At { ts, meta: None };
            self.end_call(id, &at, None, None, Flags::INCOMPLETE, ctx, out);
        }
        for st in &mut self.dirs {
            ctx.summary.unknown_header_fields += st.hpack.unknown_fields;
            st.hpack.unknown_fields = 0;
        }
    }

    fn is_client(&self, d: usize) -> bool {
        match self.client {
            Some(c) => ix(c) == d,
            None => d == 0,
        }
    }

    fn feed(
        &mut self,
        d: usize,
        data: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        if data.is_empty() {
            return;
        }
        match self.dirs[d].mode {
            Mode::ExpectFrame => self.feed_frames(d, data, at, ctx, out),
            Mode::Ignore => {}
            Mode::ExpectStart | Mode::ExpectHttp1Head | Mode::ExpectBoundary => {
                let mut buf = std::mem::take(&mut self.dirs[d].buf);
                buf.extend_from_slice(data);
                self.classify(d, buf, at, ctx, out);
            }
        }
    }

    /// Decides what the buffered start of a direction is.
    fn classify(
        &mut self,
        d: usize,
        buf: Vec<u8>,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        match self.dirs[d].mode {
            Mode::ExpectStart => self.classify_start(d, buf, at, ctx, out),
            Mode::ExpectHttp1Head => self.http1_head(d, buf, at, ctx, out),
            Mode::ExpectBoundary => self.resync(d, buf, at, ctx, out),
            _ => self.feed(d, &buf, at, ctx, out),
        }
    }

    fn classify_start(
        &mut self,
        d: usize,
        buf: Vec<u8>,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let n = buf.len().min(PREFACE.len());
        if buf[..n] == PREFACE[..n] {
            if n < PREFACE.len() {
                self.dirs[d].buf = buf;
                return;
            }
            debug!("conn {}: client preface from {:?}", self.ends.conn.0, dir_of(d));
            self.client = Some(dir_of(d));
            self.start_frames(d, true, ctx);
            return self.feed(d, &buf[PREFACE.len()..], at, ctx, out);
        }
        if looks_like_http1(&buf) {
            self.dirs[d].mode = Mode::ExpectHttp1Head;
            return self.http1_head(d, buf, at, ctx, out);
        }
        if let Some(h) = FrameHeader::load(&buf) {
            if h.ty == FrameType::SETTINGS
                && h.stream == 0
                && h.is_plausible(frame::DEFAULT_MAX_FRAME)
            {
                // Servers may send SETTINGS before the client preface arrives.
                debug!("conn {}: server SETTINGS first from {:?}", self.ends.conn.0, dir_of(d));
                if self.client.is_none() {
                    self.client = Some(dir_of(d).reverse());
                }
                self.start_frames(d, true, ctx);
                return self.feed(d, &buf, at, ctx, out);
            }
        } else if buf.len() < HEADER_LEN {
            self.dirs[d].buf = buf;
            return;
        }
        if self.dirs[1 - d].mode == Mode::ExpectFrame && self.dirs[1 - d].seen_start {
            // The peer started HTTP/2 properly: this side is HTTP/2 from its start.
            if FrameHeader::load(&buf).is_some_and(|h| h.is_plausible(u32::MAX)) {
                self.start_frames(d, true, ctx);
                return self.feed(d, &buf, at, ctx, out);
            }
        }
        if self.mid_stream || self.counted_http2 {
            self.dirs[d].mode = Mode::ExpectBoundary;
            return self.resync(d, buf, at, ctx, out);
        }
        debug!("conn {}: {:?} does not start like HTTP/2, ignored", self.ends.conn.0, dir_of(d));
        self.dirs[d].mode = Mode::Ignore;
    }

    fn start_frames(&mut self, d: usize, from_start: bool, ctx: &mut Ctx<'_>) {
        let st = &mut self.dirs[d];
        st.mode = Mode::ExpectFrame;
        if from_start {
            st.seen_start = true;
        } else if !st.seen_start && !st.after_gap {
            st.hpack = HeaderDecoder::joined(DEFAULT_TABLE_SIZE);
            if !self.counted_join {
                self.counted_join = true;
                ctx.summary.joined_mid_stream += 1;
            }
        }
        st.after_gap = false;
        if !self.counted_http2 {
            self.counted_http2 = true;
            ctx.summary.http2_connections += 1;
        }
    }

    fn http1_head(
        &mut self,
        d: usize,
        buf: Vec<u8>,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() > MAX_DETECT {
                self.dirs[d].mode = Mode::Ignore;
            } else {
                self.dirs[d].buf = buf;
            }
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let rest = &buf[end + 4..];
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default();
        let header = |name: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let mut parts = first.split(' ');
        let (w1, w2) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let next = if w1.starts_with("HTTP/1.") {
            // A response: 101 switches to h2c, 2xx after CONNECT opens the tunnel.
            match w2 {
                "101" => {
                    debug!("conn {}: h2c upgrade accepted", self.ends.conn.0);
                    self.client = Some(dir_of(d).reverse());
                    self.start_frames(d, true, ctx);
                    self.open_upgraded_stream(at, ctx, out);
                    Mode::ExpectFrame
                }
                s if s.starts_with('2') => Mode::ExpectStart,
                _ => Mode::Ignore,
            }
        } else if w1 == "CONNECT" {
            debug!("conn {}: CONNECT prelude", self.ends.conn.0);
            self.client = Some(dir_of(d));
            Mode::ExpectStart
        } else if header("upgrade")
            .is_some_and(|u| u.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c")))
        {
            self.client = Some(dir_of(d));
            self.upgrade =
                Some(Upgrade { method: w1.to_string(), path: w2.to_string(), ts: at.ts });
            Mode::ExpectStart
        } else {
            Mode::Ignore
        };
        self.dirs[d].mode = next;
        if next != Mode::Ignore {
            self.feed(d, rest, at, ctx, out);
        }
    }

    /// The h2c upgrade request becomes stream 1 (RFC 7540 §3.2).
    fn open_upgraded_stream(&mut self, at: &At, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let Some(up) = self.upgrade.take() else {
            return;
        };
        let mut s = Stream::new(up.ts, ctx.opts.max_message);
        s.carries = Carries::Http;
        s.method = Some(up.path.clone());
        s.req.head = Some(format!("{} {}", up.method, up.path));
        s.req.ended = true;
        self.streams.insert(1, s);
        let client = self.client.map(ix).unwrap_or(0);
        self.report_http_side(1, client, &At { ts: up.ts, meta: at.meta.clone() }, out);
    }

    fn resync(
        &mut self,
        d: usize,
        mut buf: Vec<u8>,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let max = self.dirs[d].max_frame.max(frame::DEFAULT_MAX_FRAME);
        match frame::find_boundary(&buf, max) {
            Some(p) => {
                ctx.summary.resync_skipped_bytes += p as u64;
                debug!(
                    "conn {}: frame boundary after {p} bytes in {:?}",
                    self.ends.conn.0,
                    dir_of(d)
                );
                self.start_frames(d, false, ctx);
                self.feed(d, &buf[p..], at, ctx, out);
            }
            None if buf.len() > MAX_RESYNC => {
                if !self.counted_http2 && !self.dirs[d].after_gap {
                    self.dirs[d].mode = Mode::Ignore;
                    return;
                }
                let drop = buf.len() - MAX_RESYNC / 2;
                ctx.summary.resync_skipped_bytes += drop as u64;
                buf.drain(..drop);
                self.dirs[d].buf = buf;
            }
            None => self.dirs[d].buf = buf,
        }
    }

    /// Frames from borrowed bytes; only a partial frame at the end is copied.
    fn feed_frames(
        &mut self,
        d: usize,
        mut data: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        if !self.dirs[d].buf.is_empty() {
            let mut buf = std::mem::take(&mut self.dirs[d].buf);
            if buf.len() < HEADER_LEN {
                let n = (HEADER_LEN - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..n]);
                data = &data[n..];
            }
            let Some(h) = FrameHeader::load(&buf) else {
                self.dirs[d].buf = buf;
                return;
            };
            let total = HEADER_LEN + h.len as usize;
            let n = (total - buf.len()).min(data.len());
            buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if buf.len() < total {
                self.dirs[d].buf = buf;
                return;
            }
            self.on_frame(d, h, &buf[HEADER_LEN..], at, ctx, out);
            if self.dirs[d].mode != Mode::ExpectFrame {
                return self.feed(d, data, at, ctx, out);
            }
        }
        while let Some(h) = FrameHeader::load(data) {
            let total = HEADER_LEN + h.len as usize;
            let Some(payload) = data.get(HEADER_LEN..total) else {
                break;
            };
            self.on_frame(d, h, payload, at, ctx, out);
            data = &data[total..];
            if self.dirs[d].mode != Mode::ExpectFrame {
                return self.feed(d, data, at, ctx, out);
            }
        }
        self.dirs[d].buf.extend_from_slice(data);
    }

    fn on_frame(
        &mut self,
        d: usize,
        h: FrameHeader,
        payload: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        trace!(
            "conn {} {:?}: {:?} stream {} len {} flags {:#x}",
            self.ends.conn.0,
            dir_of(d),
            h.ty,
            h.stream,
            h.len,
            h.flags
        );
        let oversized = h.len > self.dirs[d].max_frame;
        if oversized {
            ctx.summary.oversized_frames += 1;
            debug!(
                "conn {}: {:?} frame of {} bytes above SETTINGS_MAX_FRAME_SIZE {}",
                self.ends.conn.0, h.ty, h.len, self.dirs[d].max_frame
            );
        }
        if self.dirs[d].pending.is_some() && h.ty != FrameType::CONTINUATION {
            debug!("conn {}: header block interrupted by {:?}", self.ends.conn.0, h.ty);
            ctx.summary.frame_errors += 1;
            self.dirs[d].pending = None;
            self.dirs[d].hpack.reset_unknown();
        }
        let res = match h.ty {
            FrameType::DATA => frame::unpad(&h, payload).map(|body| {
                self.on_data_frame(
                    d,
                    h.stream,
                    body,
                    h.has(flags::END_STREAM),
                    oversized,
                    at,
                    ctx,
                    out,
                )
            }),
            FrameType::HEADERS => frame::headers_fragment(&h, payload).map(|(prio, frag)| {
                if let Some(p) = prio {
                    trace!("stream {} priority {:?}", h.stream, p);
                }
                let info = BlockInfo {
                    stream: h.stream,
                    end_stream: h.has(flags::END_STREAM),
                    promised: None,
                };
                self.header_fragment(d, info, frag, h.has(flags::END_HEADERS), at, ctx, out);
            }),
            FrameType::CONTINUATION => {
                match self.dirs[d].pending.take() {
                    Some(mut p)
                        if p.info.stream == h.stream
                            && p.block.len() + payload.len() <= MAX_HEADER_BLOCK =>
                    {
                        p.block.extend_from_slice(payload);
                        if h.has(flags::END_HEADERS) {
                            self.complete_block(d, p.info, &p.block, at, ctx, out);
                        } else {
                            self.dirs[d].pending = Some(p);
                        }
                    }
                    _ => {
                        // A CONTINUATION without its HEADERS (joined or after a gap).
                        ctx.summary.frame_errors += 1;
                    }
                }
                Ok(())
            }
            FrameType::PUSH_PROMISE => frame::push_promise(&h, payload).map(|(promised, frag)| {
                let info =
                    BlockInfo { stream: h.stream, end_stream: false, promised: Some(promised) };
                self.header_fragment(d, info, frag, h.has(flags::END_HEADERS), at, ctx, out);
            }),
            FrameType::PRIORITY => {
                frame::priority(&h, payload).map(|p| trace!("stream {} priority {:?}", h.stream, p))
            }
            FrameType::RST_STREAM => {
                let code = ErrorCode(frame::u32_at(payload, 0).unwrap_or(0));
                self.on_rst(d, h.stream, code, at, ctx, out);
                Ok(())
            }
            FrameType::SETTINGS => {
                if !h.has(flags::ACK) {
                    self.on_settings(d, payload);
                }
                Ok(())
            }
            FrameType::GOAWAY => {
                let last = frame::u32_at(payload, 0).unwrap_or(0) & 0x7fff_ffff;
                let code = ErrorCode(frame::u32_at(payload, 4).unwrap_or(0));
                self.on_goaway(last, code, at, ctx, out);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = res {
            debug!("conn {}: {e}", self.ends.conn.0);
            ctx.summary.frame_errors += 1;
        }
    }

    fn on_settings(&mut self, d: usize, payload: &[u8]) {
        // Settings sent by one side govern what the other side sends to it.
        let other = 1 - d;
        for (id, value) in frame::settings(payload) {
            match id {
                setting::HEADER_TABLE_SIZE => self.dirs[other].hpack.set_max_allowed(value),
                setting::MAX_FRAME_SIZE => self.dirs[other].max_frame = value,
                _ => {}
            }
        }
    }

    /// A HEADERS or PUSH_PROMISE fragment: decoded at once when it is the whole
    /// block (no copy), kept for its CONTINUATION frames otherwise.
    #[allow(clippy::too_many_arguments)]
    fn header_fragment(
        &mut self,
        d: usize,
        info: BlockInfo,
        frag: &[u8],
        end_headers: bool,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        if end_headers {
            return self.complete_block(d, info, frag, at, ctx, out);
        }
        self.dirs[d].pending = Some(PendingBlock { info, block: frag.to_vec() });
    }

    fn complete_block(
        &mut self,
        d: usize,
        info: BlockInfo,
        block: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let mut fields = Vec::new();
        let decoded = match self.dirs[d].hpack.decode(block, &mut fields) {
            Ok(()) => true,
            Err(e) => {
                debug!("conn {} stream {}: {e}", self.ends.conn.0, info.stream);
                ctx.summary.hpack_errors += 1;
                self.dirs[d].hpack.reset_unknown();
                false
            }
        };
        let unknown = fields.iter().any(|f| f.name.starts_with("<unknown #"));
        match info.promised {
            Some(promised) => self.on_push_promise(promised, &fields, at, ctx),
            None => self.on_headers(
                d,
                info.stream,
                fields,
                decoded,
                unknown,
                info.end_stream,
                at,
                ctx,
                out,
            ),
        }
    }

    fn on_push_promise(&mut self, promised: u32, fields: &[Field], at: &At, ctx: &mut Ctx<'_>) {
        let mut s = Stream::new(at.ts, ctx.opts.max_message);
        s.carries = Carries::Http;
        s.method = find(fields, ":path").map(str::to_string);
        s.req.head = Some(format!(
            "{} {}",
            find(fields, ":method").unwrap_or("GET"),
            find(fields, ":path").unwrap_or("")
        ));
        s.req.ended = true;
        s.req.reported = true;
        self.streams.insert(promised, s);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_headers(
        &mut self,
        d: usize,
        sid: u32,
        fields: Vec<Field>,
        decoded: bool,
        unknown: bool,
        end_stream: bool,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        // Roles: whoever sends request pseudo-headers is the client.
        if self.client.is_none() {
            if find(&fields, ":method").is_some() {
                self.client = Some(dir_of(d));
            } else if find(&fields, ":status").is_some() {
                self.client = Some(dir_of(d).reverse());
            }
        }
        if self.closed.contains_key(&sid) {
            debug!("conn {}: header block on ended stream {sid} ignored", self.ends.conn.0);
            return;
        }
        let from_client = self.is_client(d);
        let cap = ctx.opts.max_message;
        let keep_headers = ctx.opts.headers;
        let pool = ctx.pool;
        let s = self.streams.entry(sid).or_insert_with(|| Stream::new(at.ts, cap));
        let is_grpc_ct = find(&fields, "content-type").map(|c| c.starts_with("application/grpc"));
        if let Some(g) = is_grpc_ct {
            if s.carries == Carries::Unknown || g {
                s.carries = if g { Carries::Grpc } else { Carries::Http };
            }
        }
        let side = if from_client { &mut s.req } else { &mut s.resp };
        if !decoded {
            side.flags.insert(Flags::UNDECODABLE);
        }
        if unknown {
            side.flags.insert(Flags::UNKNOWN_HEADERS);
        }
        side.meta = at.meta.clone();
        side.last_ts = at.ts;
        if keep_headers {
            let list = fields.iter().map(|f| (f.name.clone(), f.value.clone()));
            side.headers.get_or_insert_with(Vec::new).extend(list);
        }
        let mut trailers = false;
        if from_client {
            if side.head.is_none() {
                let path = find(&fields, ":path").unwrap_or("");
                side.head = Some(format!("{} {}", find(&fields, ":method").unwrap_or("?"), path));
                side.encoding = find(&fields, "grpc-encoding").map(str::to_string);
                side.content_type = find(&fields, "content-type").map(str::to_string);
                if !path.is_empty() {
                    s.method = Some(path.to_string());
                    s.method_desc = method_descriptor(pool, path);
                }
                s.started_ns = at.ts;
            }
        } else if !s.resp_started && find(&fields, ":status").is_some() {
            s.resp_started = true;
            side.head = find(&fields, ":status").map(str::to_string);
            side.encoding = find(&fields, "grpc-encoding").map(str::to_string);
            side.content_type = find(&fields, "content-type").map(str::to_string);
            trailers = find(&fields, "grpc-status").is_some();
        } else {
            trailers = true;
        }
        if end_stream {
            side.ended = true;
        }
        let plain = s.carries != Carries::Grpc;
        // A plain request without END_STREAM: a bodiless method is complete
        // with its header block; any request is complete once answered.
        let bodiless = from_client
            && !end_stream
            && !side.reported
            && find(&fields, "content-length").is_none()
            && matches!(find(&fields, ":method"), Some("GET" | "HEAD" | "OPTIONS" | "DELETE"));
        let answered = !from_client && !s.req.reported;
        let status: Option<u32> = find(&fields, "grpc-status").and_then(|v| v.trim().parse().ok());
        if !from_client && trailers && s.carries == Carries::Unknown && status.is_some() {
            s.carries = Carries::Grpc;
        }
        if plain && bodiless {
            self.report_http_side(sid, d, at, out);
        } else if plain && answered {
            self.report_http_side(sid, 1 - d, at, out);
        }
        if !from_client && trailers {
            let message = find(&fields, "grpc-message").map(percent_decode);
            return self.end_call(sid, at, status, message, Flags::default(), ctx, out);
        }
        if end_stream {
            self.side_ended(sid, d, at, ctx, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_data_frame(
        &mut self,
        d: usize,
        sid: u32,
        body: &[u8],
        end_stream: bool,
        oversized: bool,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        if self.closed.contains_key(&sid) {
            trace!("conn {}: DATA on ended stream {sid} ignored", self.ends.conn.0);
            return;
        }
        let from_client = self.is_client(d);
        let cap = ctx.opts.max_message;
        let s = self.streams.entry(sid).or_insert_with(|| Stream::new(at.ts, cap));
        if s.carries == Carries::Unknown && !body.is_empty() {
            // Joined mid-stream: a plausible message prefix says gRPC.
            s.carries =
                if Assembler::looks_like_start(body) { Carries::Grpc } else { Carries::Http };
        }
        let carries = s.carries;
        let side = s.side(from_client);
        side.body_bytes += body.len() as u64;
        side.meta = at.meta.clone();
        side.last_ts = at.ts;
        if oversized {
            side.flags.insert(Flags::OVERSIZED_FRAME);
        }
        if end_stream {
            side.ended = true;
        }
        if carries == Carries::Grpc {
            if side.lost {
                if side.messages.is_partial() || !Assembler::looks_like_start(body) {
                    return;
                }
                side.lost = false;
            }
            let mut done = Vec::new();
            side.messages.feed(body, &mut done);
            for m in done {
                self.report_message(sid, d, m, at, ctx, out);
            }
        }
        if end_stream {
            self.side_ended(sid, d, at, ctx, out);
        }
    }

    /// A side sent END_STREAM: plain HTTP reports it; a gRPC request side just
    /// closes; a response side ending without trailers ends the call.
    fn side_ended(
        &mut self,
        sid: u32,
        d: usize,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let from_client = self.is_client(d);
        let Some(s) = self.streams.get(&sid) else {
            return;
        };
        if s.carries != Carries::Grpc {
            self.report_http_side(sid, d, at, out);
        }
        if !from_client {
            self.end_call(sid, at, None, None, Flags::default(), ctx, out);
        }
    }

    fn base_record(
        &self,
        d: usize,
        kind: Kind,
        sid: u32,
        ts: u64,
        meta: Option<Arc<ProcMeta>>,
    ) -> Record {
        let s = self.streams.get(&sid);
        let proto =
            if s.is_some_and(|s| s.carries == Carries::Grpc) { Proto::Grpc } else { Proto::Http2 };
        let rec = self.ends.record(d, proto, kind, sid, ts, meta);
        Record { method: s.and_then(|s| s.method.clone()), ..rec }
    }

    fn report_http_side(&mut self, sid: u32, d: usize, at: &At, out: &mut dyn FnMut(Record)) {
        let from_client = self.is_client(d);
        let mut rec =
            self.base_record(d, if from_client { Kind::Req } else { Kind::Resp }, sid, at.ts, None);
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        let side = s.side(from_client);
        if side.reported || (side.head.is_none() && side.body_bytes == 0) {
            return;
        }
        side.reported = true;
        if side.last_ts != 0 {
            // The row is the time of the side's last byte, even when it is
            // printed later (an unanswered request ended by the response).
            rec.ts_ns = side.last_ts;
        }
        let mut text = side.head.clone().unwrap_or_else(|| "-".into());
        if let Some(ct) = &side.content_type {
            text.push(' ');
            text.push_str(ct);
        }
        if side.body_bytes > 0 || !from_client {
            text.push_str(&format!(" {} bytes", side.body_bytes));
        }
        rec.meta = side.meta.clone().or(at.meta.clone());
        rec.message = Message::Text(text);
        rec.size = Some(side.body_bytes);
        rec.headers = side.headers.take();
        rec.flags = std::mem::take(&mut side.flags);
        out(rec);
    }

    fn report_message(
        &mut self,
        sid: u32,
        d: usize,
        m: grpc::Message,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let from_client = self.is_client(d);
        let mut rec = self.base_record(
            d,
            if from_client { Kind::Req } else { Kind::Resp },
            sid,
            at.ts,
            at.meta.clone(),
        );
        let Some(s) = self.streams.get_mut(&sid) else {
            return;
        };
        let desc =
            s.method_desc.as_ref().map(|md| if from_client { md.input() } else { md.output() });
        let side = s.side(from_client);
        rec.size = Some(m.len);
        rec.headers = side.headers.take();
        rec.flags = std::mem::take(&mut side.flags);
        rec.message_type = desc.as_ref().map(|d| d.full_name().to_string());
        let body = match m.body {
            None => {
                ctx.summary.too_large_messages += 1;
                rec.flags.insert(Flags::TOO_LARGE);
                rec.message = Message::Text(format!("<{} bytes, above the message cap>", m.len));
                return out(rec);
            }
            Some(b) if m.compressed => {
                match grpc::decompress(side.encoding.as_deref(), &b, ctx.opts.max_message) {
                    Ok(plain) => plain,
                    Err(e) => {
                        ctx.summary.undecodable_messages += 1;
                        rec.flags.insert(Flags::UNDECODABLE);
                        rec.message = Message::Text(format!("<{} bytes: {e}>", m.len));
                        return out(rec);
                    }
                }
            }
            Some(b) => b,
        };
        rec.set_protobuf(desc.as_ref(), &body, ctx.summary);
        out(rec);
    }

    fn on_rst(
        &mut self,
        d: usize,
        sid: u32,
        code: ErrorCode,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        ctx.summary.resets += 1;
        let mut rec = self.base_record(d, Kind::Rst, sid, at.ts, at.meta.clone());
        rec.message = Message::Text(code.name());
        if let Some((method, proto)) = self.closed.get(&sid) {
            // The call already ended (e.g. a server's RST_STREAM(NO_ERROR)
            // after a complete response): the reset is shown, the call does
            // not end twice.
            rec.method = method.clone();
            rec.proto = *proto;
            return out(rec);
        }
        self.streams.entry(sid).or_insert_with(|| Stream::new(at.ts, ctx.opts.max_message));
        out(rec);
        self.end_call(sid, at, None, None, Flags::default(), ctx, out);
    }

    fn on_goaway(
        &mut self,
        last: u32,
        code: ErrorCode,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        ctx.summary.goaways += 1;
        debug!("conn {}: GOAWAY last stream {last} {}", self.ends.conn.0, code.name());
        let mut gone: Vec<u32> = self.streams.keys().copied().filter(|&id| id > last).collect();
        gone.sort_unstable();
        for id in gone {
            self.end_call(id, at, None, None, Flags::GOAWAY, ctx, out);
        }
    }

    /// Ends a call: pending HTTP rows, then the END row; the stream is forgotten.
    #[allow(clippy::too_many_arguments)]
    fn end_call(
        &mut self,
        sid: u32,
        at: &At,
        status: Option<u32>,
        message: Option<String>,
        mut flags: Flags,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let Some(s) = self.streams.get(&sid) else {
            return;
        };
        let client = self.client.map(ix).unwrap_or(0);
        if s.carries != Carries::Grpc {
            self.report_http_side(sid, client, at, out);
            self.report_http_side(sid, 1 - client, at, out);
        }
        let server = 1 - client;
        let mut rec = self.base_record(server, Kind::End, sid, at.ts, None);
        let Some(mut s) = self.streams.remove(&sid) else {
            return;
        };
        self.closed.insert(sid, (s.method.clone(), rec.proto));
        if self.closed.len() > MAX_CLOSED {
            self.closed.pop_first();
        }
        if s.req.messages.is_partial() || s.resp.messages.is_partial() {
            flags.insert(Flags::INCOMPLETE);
        }
        flags.insert(s.resp.flags);
        flags.insert(s.req.flags);
        rec.meta = if status.is_some() { at.meta.clone() } else { s.resp.meta.clone() };
        rec.flags = flags;
        rec.grpc_status = status;
        rec.grpc_message = message;
        rec.duration_us = Some(at.ts.saturating_sub(s.started_ns) / 1000);
        rec.headers = s.resp.headers.take();
        let _ = ctx;
        out(rec);
    }
}

/// The value of the first field with this name.
fn find<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields.iter().find(|f| f.name == name).map(|f| f.value.as_str())
}

/// `/pkg.Service/Method` → the method's descriptor, when the pool has it.
pub fn method_descriptor(
    pool: &prost_reflect::DescriptorPool,
    path: &str,
) -> Option<prost_reflect::MethodDescriptor> {
    let (service, method) = path.strip_prefix('/')?.rsplit_once('/')?;
    pool.get_service_by_name(service)?.methods().find(|m| m.name() == method)
}

/// Whether bytes start like an HTTP/1 request or response line.
fn looks_like_http1(buf: &[u8]) -> bool {
    const STARTS: [&[u8]; 10] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"PATCH ",
        b"TRACE ",
        b"HTTP/1.",
    ];
    STARTS.iter().any(|s| buf.starts_with(s))
}

/// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("not%20found%3A x%2"), "not found: x%2");
    }

    #[test]
    fn http1_starts() {
        assert!(looks_like_http1(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http1(b"HTTP/1.1 101 Switching"));
        assert!(!looks_like_http1(b"PRI * HTTP/2.0"));
    }
}
