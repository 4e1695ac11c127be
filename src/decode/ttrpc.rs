//! containerd's ttrpc: the RPC protocol between containerd and its shims.
//!
//! Each message is a 10-byte header and a protobuf payload:
//!
//! ```text
//! +----------------+----------------+--------+--------+------------------+
//! | length (32 BE) | stream (32 BE) | type 8 | flags 8| payload (length) |
//! +----------------+----------------+--------+--------+------------------+
//!   type 1 = request, 2 = response, 3 = data
//!   data flags: 1 = remote closed, 2 = remote open, 4 = no data
//! ```
//!
//! A request carries the service, method, the call's payload, a timeout and
//! metadata; a response carries a `google.rpc.Status` and the result; data
//! messages carry the payloads of streaming calls. Clients number their
//! streams with odd, increasing ids. Payloads are decoded with the method's
//! input or output type from the schema pool, as for gRPC.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, trace};
use prost::Message as _;
use prost_reflect::MethodDescriptor;

use crate::chunk::ProcMeta;
use crate::decode::http2::conn::{method_descriptor, Ctx};
use crate::decode::record::{ix, At, Ends, Flags, Kind, Message, Proto, Record};
use crate::reassembly::{ConnId, Dir};

/// Length of the message header.
pub const HEADER_LEN: usize = 10;
/// ttrpc's default limit on a message's payload (4 MiB).
pub const MAX_MESSAGE: u32 = 4 << 20;

/// A ttrpc message type (newtype: unknown values keep their number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgType(pub u8);

impl MsgType {
    pub const REQUEST: MsgType = MsgType(1);
    pub const RESPONSE: MsgType = MsgType(2);
    pub const DATA: MsgType = MsgType(3);
}

/// Flags of data messages (and of requests that open a client stream).
pub mod flags {
    pub const REMOTE_CLOSED: u8 = 1;
    pub const REMOTE_OPEN: u8 = 2;
    pub const NO_DATA: u8 = 4;
}

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub stream: u32,
    pub ty: MsgType,
    pub flags: u8,
}

impl Header {
    /// Reads a header from the first 10 bytes; `None` when fewer are given.
    pub fn load(buf: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            len: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ty: MsgType(b[8]),
            flags: b[9],
        })
    }

    /// Writes the header (for tests and tools).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.stream.to_be_bytes());
        out.push(self.ty.0);
        out.push(self.flags);
    }

    /// Whether a header could have been written by a ttrpc peer: a known type,
    /// a stream id, known flags and a length within the protocol's limit.
    pub fn is_plausible(&self) -> bool {
        (1..=3).contains(&self.ty.0)
            && self.stream != 0
            && self.flags <= 7
            && self.len <= MAX_MESSAGE
    }
}

/// The payload of a request message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
    #[prost(message, repeated, tag = "5")]
    pub metadata: Vec<KeyValue>,
}

/// One metadata entry of a request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// The payload of a response message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// Whether `buf` starts like a ttrpc request: a plausible header for an odd
/// client stream and a payload opening with the service and method names.
/// `None` while too few bytes have arrived to tell.
pub fn looks_like_request(buf: &[u8]) -> Option<bool> {
    let h = Header::load(buf)?;
    if !h.is_plausible() || h.ty != MsgType::REQUEST || h.stream % 2 == 0 {
        return Some(false);
    }
    let payload = &buf[HEADER_LEN..];
    let end = (h.len as usize).min(payload.len());
    let mut pos = 0;
    for tag in [0x0a, 0x12] {
        match name_field(&payload[..end], &mut pos, tag) {
            Some(true) => {}
            Some(false) => return Some(false),
            // The names are cut: more bytes will tell, unless the payload ended.
            None if end < h.len as usize => return None,
            None => return Some(false),
        }
    }
    Some(true)
}

/// Reads one length-delimited field with this tag holding a non-empty name;
/// `None` when the bytes end first.
fn name_field(buf: &[u8], pos: &mut usize, tag: u8) -> Option<bool> {
    let t = *buf.get(*pos)?;
    if t != tag {
        return Some(false);
    }
    let len = *buf.get(*pos + 1)? as usize;
    if len == 0 || len >= 0x80 {
        // Names are short: a multi-byte length is not a service name.
        return Some(false);
    }
    let name = buf.get(*pos + 2..*pos + 2 + len)?;
    *pos += 2 + len;
    Some(name.iter().all(|b| b.is_ascii_graphic()))
}

/// Finds the first offset where a plausible ttrpc message starts, to pick up
/// a stream after a gap.
fn find_boundary(buf: &[u8]) -> Option<usize> {
    (0..buf.len().saturating_sub(HEADER_LEN - 1)).find(|&i| {
        let Some(h) = Header::load(&buf[i..]) else {
            return false;
        };
        if !h.is_plausible() {
            return false;
        }
        match h.ty {
            MsgType::REQUEST => looks_like_request(&buf[i..]) == Some(true),
            // A response or data payload starts with a field tag of its own.
            _ => h.len == 0 || buf.get(i + HEADER_LEN).is_none_or(|&b| b == 0x0a || b == 0x12),
        }
    })
}

/// What one direction waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A header and its payload.
    Message,
    /// The rest of a message above the cap, skipped: (header, bytes left).
    Skip(Header, u64),
    /// A plausible header, after a gap or malformed bytes.
    Boundary,
}

struct DirState {
    expect: Expect,
    buf: Vec<u8>,
}

/// One call (a ttrpc stream).
struct Call {
    method: String,
    desc: Option<MethodDescriptor>,
    started_ns: u64,
    flags: Flags,
    headers: Option<Vec<(String, String)>>,
}

/// The decoding state of one ttrpc connection.
pub struct Conn {
    ends: Ends,
    /// Index of the client's direction (the sender of requests).
    client: usize,
    dirs: [DirState; 2],
    calls: HashMap<u32, Call>,
}

impl Conn {
    /// `client` is the direction requests travel in.
    pub fn new(id: ConnId, a: SocketAddr, b: SocketAddr, client: Dir) -> Conn {
        let dir = || DirState { expect: Expect::Message, buf: Vec::new() };
        Conn {
            ends: Ends { conn: id, a, b },
            client: ix(client),
            dirs: [dir(), dir()],
            calls: HashMap::new(),
        }
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
        let d = ix(dir);
        let at = At { ts, meta: meta.cloned() };
        let mut buf = std::mem::take(&mut self.dirs[d].buf);
        buf.extend_from_slice(data);
        let mut pos = 0;
        // Steps that use no bytes only change state; a handful in a row
        // means a state machine bug, which must not hang the decoder.
        let mut idle = 0;
        while let Some(n) = self.step(d, &buf[pos..], &at, ctx, out) {
            pos += n;
            idle = if n == 0 { idle + 1 } else { 0 };
            if idle >= 8 {
                debug!("conn {}: ttrpc decoder made no progress; bytes dropped", self.ends.conn.0);
                pos = buf.len();
                break;
            }
        }
        buf.drain(..pos);
        self.dirs[d].buf = buf;
    }

    /// Bytes of one direction were lost: wait for the next plausible header.
    pub fn on_gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        ctx.summary.gaps += 1;
        debug!("conn {}: gap of {len} bytes in {dir:?}, resynchronising", self.ends.conn.0);
        let st = &mut self.dirs[ix(dir)];
        st.buf.clear();
        st.expect = Expect::Boundary;
        for c in self.calls.values_mut() {
            c.flags.insert(Flags::GAP);
        }
    }

    /// The connection ended: every open call ends, flagged incomplete.
    pub fn finish(&mut self, ts: u64, out: &mut dyn FnMut(Record)) {
        let mut ids: Vec<u32> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let at = At { ts, meta: None };
            self.end_call(id, &at, None, Flags::INCOMPLETE, out);
        }
    }

    /// Handles what `buf` starts with; returns how many bytes were used, or
    /// `None` when more bytes are needed.
    fn step(
        &mut self,
        d: usize,
        buf: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) -> Option<usize> {
        if buf.is_empty() {
            return None;
        }
        match self.dirs[d].expect {
            Expect::Message => {
                let h = Header::load(buf)?;
                if !h.is_plausible() {
                    debug!(
                        "conn {}: implausible ttrpc header {h:?}, resynchronising",
                        self.ends.conn.0
                    );
                    ctx.summary.frame_errors += 1;
                    self.dirs[d].expect = Expect::Boundary;
                    return Some(0);
                }
                if h.len as usize > ctx.opts.max_message {
                    self.dirs[d].expect = Expect::Skip(h, h.len as u64);
                    return Some(HEADER_LEN);
                }
                let payload = buf.get(HEADER_LEN..HEADER_LEN + h.len as usize)?;
                self.on_message(d, h, payload, at, ctx, out);
                Some(HEADER_LEN + h.len as usize)
            }
            Expect::Skip(h, left) => {
                let n = (left as usize).min(buf.len());
                let left = left - n as u64;
                if left > 0 {
                    self.dirs[d].expect = Expect::Skip(h, left);
                    return Some(n);
                }
                self.dirs[d].expect = Expect::Message;
                self.too_large(d, h, at, ctx, out);
                Some(n)
            }
            Expect::Boundary => match find_boundary(buf) {
                Some(p) => {
                    ctx.summary.resync_skipped_bytes += p as u64;
                    debug!("conn {}: ttrpc message boundary after {p} bytes", self.ends.conn.0);
                    self.dirs[d].expect = Expect::Message;
                    Some(p)
                }
                None => {
                    // Keep a possible header start; drop the rest.
                    let keep = (HEADER_LEN + 2 + 2 * 0x7f).min(buf.len());
                    let skip = buf.len() - keep;
                    ctx.summary.resync_skipped_bytes += skip as u64;
                    (skip > 0).then_some(skip)
                }
            },
        }
    }

    fn on_message(
        &mut self,
        d: usize,
        h: Header,
        payload: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        trace!(
            "conn {} ttrpc: type {} stream {} len {} flags {:#x}",
            self.ends.conn.0,
            h.ty.0,
            h.stream,
            h.len,
            h.flags
        );
        match h.ty {
            MsgType::REQUEST => match Request::decode(payload) {
                Ok(req) => self.on_request(d, h, req, at, ctx, out),
                Err(e) => self.malformed(h, &e, ctx),
            },
            MsgType::RESPONSE => match Response::decode(payload) {
                Ok(resp) => self.on_response(d, h, resp, at, ctx, out),
                Err(e) => self.malformed(h, &e, ctx),
            },
            _ => self.on_stream_data(d, h, payload, at, ctx, out),
        }
    }

    fn malformed(&self, h: Header, e: &prost::DecodeError, ctx: &mut Ctx<'_>) {
        debug!("conn {} stream {}: malformed ttrpc message: {e}", self.ends.conn.0, h.stream);
        ctx.summary.frame_errors += 1;
    }

    fn on_request(
        &mut self,
        d: usize,
        h: Header,
        req: Request,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        // Whoever sends requests is the client.
        self.client = d;
        let method = format!("/{}/{}", req.service, req.method);
        let mut headers = None;
        if ctx.opts.headers {
            let mut list: Vec<(String, String)> =
                req.metadata.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
            if req.timeout_nano > 0 {
                list.push(("timeout".into(), format!("{}ns", req.timeout_nano)));
            }
            headers = Some(list);
        }
        let call = Call {
            desc: method_descriptor(ctx.pool, &method),
            method,
            started_ns: at.ts,
            flags: Flags::default(),
            headers,
        };
        if let Some(old) = self.calls.insert(h.stream, call) {
            debug!(
                "conn {}: stream {} reused before {} ended",
                self.ends.conn.0, h.stream, old.method
            );
        }
        if h.flags & flags::NO_DATA != 0 {
            let rec = self.record(d, Kind::Req, h.stream, at);
            return out(rec);
        }
        self.report(d, Kind::Req, h.stream, &req.payload, at, ctx, out);
    }

    fn on_response(
        &mut self,
        d: usize,
        h: Header,
        resp: Response,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let status = resp.status.unwrap_or_default();
        if status.code == 0 || !resp.payload.is_empty() {
            self.report(d, Kind::Resp, h.stream, &resp.payload, at, ctx, out);
        }
        let code = u32::try_from(status.code).unwrap_or(u32::MAX);
        self.end_call(h.stream, at, Some((code, status.message)), Flags::default(), out);
    }

    fn on_stream_data(
        &mut self,
        d: usize,
        h: Header,
        payload: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        if h.ty != MsgType::DATA {
            return;
        }
        if h.flags & flags::NO_DATA != 0 {
            // Only closes a side: nothing to show.
            return;
        }
        let kind = if d == self.client { Kind::Req } else { Kind::Resp };
        self.report(d, kind, h.stream, payload, at, ctx, out);
    }

    /// A REQ or RESP row with the payload decoded by the method's type.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        d: usize,
        kind: Kind,
        sid: u32,
        payload: &[u8],
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let mut rec = self.record(d, kind, sid, at);
        let call = self.calls.get_mut(&sid);
        let desc = call.as_ref().and_then(|c| c.desc.as_ref()).map(|m| {
            if kind == Kind::Req {
                m.input()
            } else {
                m.output()
            }
        });
        if let Some(c) = call {
            rec.flags = std::mem::take(&mut c.flags);
            if kind == Kind::Req {
                rec.headers = c.headers.take();
            }
        }
        rec.size = Some(payload.len() as u64);
        rec.message_type = desc.as_ref().map(|m| m.full_name().to_string());
        rec.set_protobuf(desc.as_ref(), payload, ctx.summary);
        out(rec);
    }

    fn too_large(
        &mut self,
        d: usize,
        h: Header,
        at: &At,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        ctx.summary.too_large_messages += 1;
        let kind = if d == self.client { Kind::Req } else { Kind::Resp };
        let mut rec = self.record(d, kind, h.stream, at);
        rec.flags.insert(Flags::TOO_LARGE);
        rec.size = Some(h.len as u64);
        rec.message = Message::Text(format!("<{} bytes, above the message cap>", h.len));
        out(rec);
        if h.ty == MsgType::RESPONSE {
            // The status inside was not read.
            self.end_call(h.stream, at, None, Flags::default(), out);
        }
    }

    /// Ends a call with an END row (an ERR row in the table for a non-OK status).
    fn end_call(
        &mut self,
        sid: u32,
        at: &At,
        status: Option<(u32, String)>,
        mut flags: Flags,
        out: &mut dyn FnMut(Record),
    ) {
        let server = 1 - self.client;
        let mut rec = self.record(server, Kind::End, sid, at);
        let call = self.calls.remove(&sid);
        if let Some(c) = &call {
            flags.insert(c.flags);
            rec.duration_us = Some(at.ts.saturating_sub(c.started_ns) / 1000);
        }
        rec.flags = flags;
        if let Some((code, message)) = status {
            rec.grpc_status = Some(code);
            rec.grpc_message = (!message.is_empty()).then_some(message);
        }
        out(rec);
    }

    fn record(&self, d: usize, kind: Kind, sid: u32, at: &At) -> Record {
        let rec = self.ends.record(d, Proto::Ttrpc, kind, sid, at.ts, at.meta.clone());
        Record { method: self.calls.get(&sid).map(|c| c.method.clone()), ..rec }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::protobuf;
    use crate::decode::record::Summary;
    use crate::decode::DecodeOptions;

    fn msg(stream: u32, ty: MsgType, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        Header { len: payload.len() as u32, stream, ty, flags }.encode(&mut v);
        v.extend_from_slice(payload);
        v
    }

    fn request(stream: u32, service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
        let req = Request {
            service: service.into(),
            method: method.into(),
            payload: payload.to_vec(),
            timeout_nano: 2_000_000_000,
            metadata: vec![KeyValue { key: "containerd-namespace".into(), value: "moby".into() }],
        };
        msg(stream, MsgType::REQUEST, 0, &req.encode_to_vec())
    }

    fn response(stream: u32, code: i32, message: &str, payload: &[u8]) -> Vec<u8> {
        let status = Status { code, message: message.into(), details: vec![] };
        let resp = Response { status: Some(status), payload: payload.to_vec() };
        msg(stream, MsgType::RESPONSE, 0, &resp.encode_to_vec())
    }

    fn pool() -> prost_reflect::DescriptorPool {
        crate::schema::pool(&Default::default(), &[]).expect("built-in schemas")
    }

    /// Runs a connection on (direction, bytes) pieces, each cut into `step`-byte events.
    fn run(pieces: &[(Dir, Vec<u8>)], step: usize, headers: bool) -> (Vec<Record>, Summary) {
        let pool = pool();
        let opts = DecodeOptions { headers, ..Default::default() };
        let mut summary = Summary::default();
        let mut recs = Vec::new();
        let a = "127.0.0.1:1".parse().unwrap();
        let b = "127.0.0.1:2".parse().unwrap();
        let mut conn = Conn::new(ConnId(0), a, b, Dir::AtoB);
        let mut ts = 1_000_000;
        for (dir, bytes) in pieces {
            for chunk in bytes.chunks(step) {
                ts += 1000;
                let mut ctx = Ctx { pool: &pool, opts: &opts, summary: &mut summary };
                conn.on_data(*dir, ts, chunk, None, &mut ctx, &mut |r| recs.push(r));
            }
        }
        conn.finish(ts, &mut |r| recs.push(r));
        (recs, summary)
    }

    fn texts(recs: &[Record]) -> Vec<String> {
        recs.iter()
            .map(|r| {
                let m = match &r.message {
                    Message::Proto(m) => protobuf::compact(m),
                    Message::Raw(f) => protobuf::compact_raw(f),
                    Message::Text(t) => t.clone(),
                    Message::None | Message::Http(_) => String::new(),
                };
                format!(
                    "{} {} {} {} {:?} {}",
                    r.kind.as_str(),
                    r.stream,
                    r.method.as_deref().unwrap_or("-"),
                    m,
                    r.grpc_status,
                    r.flags.names().join(",")
                )
            })
            .collect()
    }

    /// `containerd.task.v2.StartRequest{id:"c1"}` and `StartResponse{pid:42}`.
    fn start_call() -> Vec<(Dir, Vec<u8>)> {
        let req = request(1, "containerd.task.v2.Task", "Start", b"\x0a\x02c1");
        let resp = response(1, 0, "", b"\x08\x2a");
        vec![(Dir::AtoB, req), (Dir::BtoA, resp)]
    }

    #[test]
    fn request_response_decoded_with_the_task_schema() {
        let (recs, summary) = run(&start_call(), usize::MAX, false);
        assert_eq!(
            texts(&recs),
            [
                "REQ 1 /containerd.task.v2.Task/Start StartRequest{id:\"c1\"} None ",
                "RESP 1 /containerd.task.v2.Task/Start StartResponse{pid:42} None ",
                "END 1 /containerd.task.v2.Task/Start  Some(0) ",
            ]
        );
        assert_eq!(recs[0].proto, Proto::Ttrpc);
        assert_eq!(recs[0].message_type.as_deref(), Some("containerd.task.v2.StartRequest"));
        assert_eq!(recs[0].src.port(), 1);
        assert_eq!(recs[1].src.port(), 2);
        assert_eq!(recs[2].duration_us, Some(1));
        assert_eq!(summary.frame_errors, 0);
    }

    #[test]
    fn split_at_every_byte() {
        let whole = run(&start_call(), usize::MAX, false).0;
        for step in 1..12 {
            assert_eq!(texts(&run(&start_call(), step, false).0), texts(&whole), "step {step}");
        }
    }

    #[test]
    fn error_status_ends_the_call_without_a_resp_row() {
        let req = request(3, "containerd.task.v2.Task", "Delete", b"\x0a\x02c1");
        let resp = response(3, 5, "container c1: not found", b"");
        let (recs, _) = run(&[(Dir::AtoB, req), (Dir::BtoA, resp)], 7, false);
        let t = texts(&recs);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(recs[1].kind, Kind::End);
        assert_eq!(recs[1].grpc_status, Some(5));
        assert_eq!(recs[1].grpc_message.as_deref(), Some("container c1: not found"));
        let row = crate::render::table::row(&recs[1]).expect("an ERR row");
        assert_eq!(row[4], "ERR");
        assert_eq!(row[7], "NOT_FOUND: container c1: not found");
    }

    #[test]
    fn metadata_and_timeout_as_headers() {
        let (recs, _) = run(&start_call(), usize::MAX, true);
        let h = recs[0].headers.clone().expect("headers");
        assert_eq!(
            h,
            [
                ("containerd-namespace".to_string(), "moby".to_string()),
                ("timeout".to_string(), "2000000000ns".to_string())
            ]
        );
    }

    #[test]
    fn streaming_data_messages() {
        // A client stream: the request opens it, data flows both ways, a
        // no-data message closes the client side, the response ends it.
        let mut open = request(5, "containerd.task.v2.Task", "Stats", b"");
        open[9] = flags::REMOTE_OPEN | flags::NO_DATA;
        let up = msg(5, MsgType::DATA, 0, b"\x0a\x02c1");
        let close = msg(5, MsgType::DATA, flags::REMOTE_CLOSED | flags::NO_DATA, b"");
        let down = msg(5, MsgType::DATA, 0, b"\x0a\x00");
        let end = response(5, 0, "", b"");
        let (recs, summary) = run(
            &[
                (Dir::AtoB, open),
                (Dir::AtoB, up),
                (Dir::AtoB, close),
                (Dir::BtoA, down),
                (Dir::BtoA, end),
            ],
            3,
            false,
        );
        let t = texts(&recs);
        assert_eq!(
            t,
            [
                "REQ 5 /containerd.task.v2.Task/Stats  None ",
                "REQ 5 /containerd.task.v2.Task/Stats StatsRequest{id:\"c1\"} None ",
                "RESP 5 /containerd.task.v2.Task/Stats StatsResponse{stats:{\"\"}} None ",
                "RESP 5 /containerd.task.v2.Task/Stats StatsResponse{} None ",
                "END 5 /containerd.task.v2.Task/Stats  Some(0) ",
            ]
        );
        assert_eq!(summary.frame_errors, 0);
    }

    #[test]
    fn unknown_method_is_decoded_raw() {
        let req = request(1, "example.Unknown", "Do", b"\x08\x07");
        let (recs, _) = run(&[(Dir::AtoB, req)], usize::MAX, false);
        let t = texts(&recs);
        assert_eq!(
            t,
            ["REQ 1 /example.Unknown/Do {1:7} None ", "END 1 /example.Unknown/Do  None incomplete"]
        );
    }

    #[test]
    fn gap_resynchronises_at_the_next_message() {
        let pool = pool();
        let opts = DecodeOptions::default();
        let mut summary = Summary::default();
        let mut recs = Vec::new();
        let a = "127.0.0.1:1".parse().unwrap();
        let mut conn = Conn::new(ConnId(0), a, a, Dir::AtoB);
        let first = request(1, "containerd.task.v2.Task", "Start", b"\x0a\x02c1");
        let second = request(3, "containerd.task.v2.Task", "Start", b"\x0a\x02c2");
        let mut ctx = Ctx { pool: &pool, opts: &opts, summary: &mut summary };
        conn.on_data(Dir::AtoB, 1, &first[..12], None, &mut ctx, &mut |r| recs.push(r));
        conn.on_gap(Dir::AtoB, 5, &mut ctx);
        let mut tail = first[17..].to_vec();
        tail.extend_from_slice(&second);
        conn.on_data(Dir::AtoB, 2, &tail, None, &mut ctx, &mut |r| recs.push(r));
        assert_eq!(
            texts(&recs),
            ["REQ 3 /containerd.task.v2.Task/Start StartRequest{id:\"c2\"} None "]
        );
        assert_eq!(summary.gaps, 1);
        assert_eq!(summary.resync_skipped_bytes, (first.len() - 17) as u64);
    }

    #[test]
    fn oversized_message_is_reported_by_size() {
        let pool = pool();
        let opts = DecodeOptions { max_message: 8, ..Default::default() };
        let mut summary = Summary::default();
        let mut recs = Vec::new();
        let a = "127.0.0.1:1".parse().unwrap();
        let mut conn = Conn::new(ConnId(0), a, a, Dir::AtoB);
        let big = request(1, "containerd.task.v2.Task", "Start", &[b'x'; 100]);
        let mut ctx = Ctx { pool: &pool, opts: &opts, summary: &mut summary };
        for c in big.chunks(9) {
            conn.on_data(Dir::AtoB, 1, c, None, &mut ctx, &mut |r| recs.push(r));
        }
        assert_eq!(recs.len(), 1);
        assert!(recs[0].flags.contains(Flags::TOO_LARGE));
        assert_eq!(recs[0].size, Some(big.len() as u64 - 10));
        assert_eq!(summary.too_large_messages, 1);
    }

    #[test]
    fn shim_event_forward_expands_the_any() {
        use prost_reflect::{DynamicMessage, Value};
        let pool = pool();
        let msg = |name: &str| {
            DynamicMessage::new(pool.get_message_by_name(name).expect("type in the built-in set"))
        };
        let mut exit = msg("containerd.events.TaskExit");
        exit.set_field_by_name("container_id", Value::String("c1".into()));
        exit.set_field_by_name("exit_status", Value::U32(137));
        let mut any = msg("google.protobuf.Any");
        // containerd writes type URLs without a '/'.
        any.set_field_by_name("type_url", Value::String("containerd.events.TaskExit".into()));
        any.set_field_by_name("value", Value::Bytes(exit.encode_to_vec().into()));
        let mut env = msg("containerd.services.events.ttrpc.v1.Envelope");
        env.set_field_by_name("topic", Value::String("/tasks/exit".into()));
        env.set_field_by_name("event", Value::Message(any));
        let mut fwd = msg("containerd.services.events.ttrpc.v1.ForwardRequest");
        fwd.set_field_by_name("envelope", Value::Message(env));
        let req = request(
            1,
            "containerd.services.events.ttrpc.v1.Events",
            "Forward",
            &fwd.encode_to_vec(),
        );
        let (recs, _) = run(&[(Dir::AtoB, req)], usize::MAX, false);
        let Message::Proto(m) = &recs[0].message else {
            panic!("not decoded: {:?}", recs[0].message);
        };
        let text = protobuf::compact(m);
        assert!(text.contains("TaskExit{container_id:\"c1\", exit_status:137}"), "{text}");
        let json = protobuf::to_json(m);
        assert_eq!(json["envelope"]["event"]["@type"], "containerd.events.TaskExit");
        assert_eq!(json["envelope"]["event"]["containerId"], "c1");
    }

    #[test]
    fn detection_of_requests() {
        let req = request(1, "containerd.task.v2.Task", "Start", b"");
        assert_eq!(looks_like_request(&req), Some(true));
        assert_eq!(looks_like_request(&req[..12]), None);
        assert_eq!(looks_like_request(&req[..5]), None);
        let even = request(2, "containerd.task.v2.Task", "Start", b"");
        assert_eq!(looks_like_request(&even), Some(false));
        assert_eq!(looks_like_request(b"\x00\x00\x00\x0c\x04\x00\x00\x00\x00\x00"), Some(false));
        assert_eq!(looks_like_request(b"GET / HTTP/1.1\r\n"), Some(false));
    }
}
