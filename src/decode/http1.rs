//! HTTP/1.x, as the docker CLI speaks it to dockerd over /run/docker.sock.
//!
//! Heads are parsed with httparse; bodies are framed by Content-Length or
//! chunked transfer coding (RFC 9112 §6–7), or run to the connection's end.
//! Requests may be pipelined: responses answer them in order (RFC 9112
//! §9.3.2). Interim 1xx responses (a `100 Continue` after `Expect:
//! 100-continue`) are rows of their own; HEAD requests and 204/304 responses
//! have no body.
//!
//! A connection is hijacked by `101 Switching Protocols` or, as docker's
//! attach and exec do, by a 2xx response of type
//! `application/vnd.docker.raw-stream` or `.multiplexed-stream` with no body
//! framing. Afterwards each direction is a raw stream; docker's multiplexed
//! frames are decoded into their stream:
//!
//! ```text
//! +----------+-----------+----------------+--------------+
//! | type (8) | 0 0 0     | length (32 BE) | bytes...     |
//! +----------+-----------+----------------+--------------+
//!   type 0 = stdin, 1 = stdout, 2 = stderr, 3 = systemerr
//! ```
//!
//! Registry credentials never reach a record: the values of `Authorization`,
//! `Proxy-Authorization` and `X-Registry-Auth`, and password-like members of
//! JSON bodies, are replaced by `<redacted N bytes>`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, trace};
use serde_json::Value;

use crate::chunk::ProcMeta;
use crate::decode::grpc;
use crate::decode::http2::conn::Ctx;
use crate::decode::record::{ix, Ends, Flags, HttpBody, HttpMessage, Kind, Message, Proto, Record};
use crate::reassembly::{ConnId, Dir};

/// Largest head (start line and header fields) kept while it arrives.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head.
const MAX_FIELDS: usize = 128;
/// Largest chunk-size line (with extensions) kept while it arrives.
const MAX_CHUNK_LINE: usize = 4096;
/// Client bytes held after an upgrade request until the response tells what they are.
const MAX_HELD: usize = 1 << 20;
/// Plain text bodies up to this size are shown as they are.
const MAX_INLINE_TEXT: usize = 1024;
/// Header fields whose values are credentials.
const SECRET_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "x-registry-auth"];
/// JSON members whose values are credentials (docker's AuthConfig).
const SECRET_MEMBERS: [&str; 4] = ["password", "auth", "identitytoken", "registrytoken"];

/// What one direction waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A start line and header fields.
    Head,
    /// The rest of a Content-Length body.
    Body { left: u64 },
    /// A chunk-size line.
    ChunkSize,
    /// The rest of a chunk.
    ChunkData { left: u64 },
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// The trailer section after the last chunk.
    Trailers,
    /// A response body delimited by the end of the connection.
    UntilClose,
    /// Client bytes after an upgrade request, held until the response says
    /// whether the connection was hijacked.
    AwaitUpgrade,
    /// A hijacked connection's raw bytes.
    Raw,
    /// The rest of a multiplexed frame above the cap: (stream type, bytes left).
    SkipFrame { stream: u8, left: u64 },
    /// A start line, after a gap or malformed bytes.
    StartLine,
}

/// A message whose head has been read.
struct Msg {
    seq: u32,
    line: Option<String>,
    status: Option<(u16, String)>,
    content_type: Option<String>,
    encoding: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    total: u64,
    too_large: bool,
    flags: Flags,
    /// A response streaming newline-delimited JSON (events, pull progress):
    /// each line is a row as soon as it is complete.
    json_lines: bool,
    /// Rows of this message already shown (its status went with the first).
    streamed: bool,
}

impl Msg {
    fn new(
        seq: u32,
        line: Option<String>,
        status: Option<(u16, String)>,
        headers: Vec<(String, String)>,
    ) -> Msg {
        Msg {
            seq,
            line,
            status,
            content_type: field(&headers, "content-type").map(str::to_string),
            encoding: field(&headers, "content-encoding").map(str::to_string),
            headers,
            body: Vec::new(),
            total: 0,
            too_large: false,
            flags: Flags::default(),
            json_lines: false,
            streamed: false,
        }
    }
}

struct DirState {
    expect: Expect,
    buf: Vec<u8>,
    msg: Option<Msg>,
    /// Time and sender of this direction's latest bytes.
    ts: u64,
    meta: Option<Arc<ProcMeta>>,
    /// Hijacked: the bytes are docker multiplexed frames.
    multiplexed: bool,
    /// Hijacked with a type that does not say: tell multiplexed frames from
    /// the first bytes (dockerd before API 1.42 sent frames as raw-stream).
    sniff: bool,
    /// Flags for the next row (a gap in a raw stream).
    pending_flags: Flags,
}

impl DirState {
    fn new() -> DirState {
        DirState {
            expect: Expect::Head,
            buf: Vec::new(),
            msg: None,
            ts: 0,
            meta: None,
            multiplexed: false,
            sniff: false,
            pending_flags: Flags::default(),
        }
    }
}

/// A request waiting for its final response.
#[derive(Clone, Debug)]
struct Exchange {
    seq: u32,
    /// `POST /v1.41/containers/create`.
    line: String,
    head_request: bool,
    upgrade: bool,
    started_ns: u64,
}

/// The decoding state of one HTTP/1 connection.
pub struct Conn {
    ends: Ends,
    /// Index of the client's direction.
    client: usize,
    dirs: [DirState; 2],
    /// Requests in order, waiting for their final responses.
    queue: VecDeque<Exchange>,
    /// Requests seen so far (numbers the STREAM column).
    seq: u32,
    /// The request that hijacked the connection; its END row comes at the close.
    hijacked: Option<Exchange>,
}

impl Conn {
    /// `client` is the direction requests travel in.
    pub fn new(id: ConnId, a: SocketAddr, b: SocketAddr, client: Dir) -> Conn {
        Conn {
            ends: Ends { conn: id, a, b },
            client: ix(client),
            dirs: [DirState::new(), DirState::new()],
            queue: VecDeque::new(),
            seq: 0,
            hijacked: None,
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
        let st = &mut self.dirs[d];
        st.ts = ts;
        st.meta = meta.cloned();
        st.buf.extend_from_slice(data);
        self.process(d, ctx, out);
    }

    /// Bytes of one direction were lost.
    pub fn on_gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        ctx.summary.gaps += 1;
        let d = ix(dir);
        let st = &mut self.dirs[d];
        debug!("conn {}: gap of {len} bytes in {dir:?} while {:?}", self.ends.conn.0, st.expect);
        match st.expect {
            // The body goes on after the hole; its bytes are not shown.
            Expect::Body { left } if len <= left && st.buf.is_empty() => {
                st.expect = Expect::Body { left: left - len };
                if let Some(m) = &mut st.msg {
                    m.flags.insert(Flags::GAP);
                    m.total += len;
                }
            }
            Expect::Raw if !st.multiplexed => {
                st.buf.clear();
                st.pending_flags.insert(Flags::GAP);
            }
            Expect::Raw | Expect::SkipFrame { .. } => {
                // Frame alignment is lost: show the rest as raw bytes.
                st.buf.clear();
                st.multiplexed = false;
                st.expect = Expect::Raw;
                st.pending_flags.insert(Flags::GAP);
            }
            _ => {
                st.buf.clear();
                if st.msg.take().is_some() {
                    ctx.summary.undecodable_messages += 1;
                }
                st.expect = Expect::StartLine;
            }
        }
    }

    /// The connection ended: a body running to the close ends, every request
    /// still waiting ends flagged incomplete.
    pub fn finish(&mut self, ts: u64, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let server = 1 - self.client;
        if self.dirs[server].expect == Expect::UntilClose && self.dirs[server].msg.is_some() {
            self.dirs[server].expect = Expect::Head;
            self.complete(server, ctx, out);
        }
        for d in [self.client, server] {
            if let Some(mut m) = self.dirs[d].msg.take() {
                m.flags.insert(Flags::INCOMPLETE);
                self.dirs[d].msg = Some(m);
                self.emit_message(d, ctx, out);
            }
        }
        if let Some(ex) = self.hijacked.take() {
            self.end_row(&ex, ts, Flags::default(), out);
        }
        while let Some(ex) = self.queue.pop_front() {
            self.end_row(&ex, ts, Flags::INCOMPLETE, out);
        }
    }

    /// Runs the buffered bytes of a direction through its state machine.
    fn process(&mut self, d: usize, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let mut buf = std::mem::take(&mut self.dirs[d].buf);
        let mut pos = 0;
        // Steps that use no bytes only change state; a handful in a row
        // means a state machine bug, which must not hang the decoder.
        let mut idle = 0;
        while pos < buf.len() && idle < 8 {
            match self.step(d, &buf[pos..], ctx, out) {
                Some(0) => idle += 1,
                Some(n) => {
                    pos += n;
                    idle = 0;
                }
                None => break,
            }
        }
        if idle >= 8 {
            debug!("conn {}: HTTP/1 decoder made no progress; bytes dropped", self.ends.conn.0);
            pos = buf.len();
        }
        buf.drain(..pos);
        // A step may have handed this direction bytes back (none today), so append.
        buf.append(&mut self.dirs[d].buf);
        self.dirs[d].buf = buf;
    }

    /// Handles what `buf` starts with; returns the bytes used, or `None`
    /// when more are needed.
    fn step(
        &mut self,
        d: usize,
        buf: &[u8],
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) -> Option<usize> {
        match self.dirs[d].expect {
            Expect::Head => self.head(d, buf, ctx, out),
            Expect::Body { left } => {
                let n = (left as usize).min(buf.len());
                self.collect(d, &buf[..n], ctx, out);
                let left = left - n as u64;
                self.dirs[d].expect = Expect::Body { left };
                if left == 0 {
                    self.dirs[d].expect = Expect::Head;
                    self.complete(d, ctx, out);
                }
                Some(n)
            }
            Expect::ChunkSize => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((n, 0))) => {
                    self.dirs[d].expect = Expect::Trailers;
                    Some(n)
                }
                Ok(httparse::Status::Complete((n, size))) => {
                    trace!("conn {}: chunk of {size} bytes", self.ends.conn.0);
                    self.dirs[d].expect = Expect::ChunkData { left: size };
                    Some(n)
                }
                Ok(httparse::Status::Partial) if buf.len() <= MAX_CHUNK_LINE => None,
                _ => self.malformed(d, "chunk size line", ctx),
            },
            Expect::ChunkData { left } => {
                let n = (left as usize).min(buf.len());
                self.collect(d, &buf[..n], ctx, out);
                let left = left - n as u64;
                self.dirs[d].expect =
                    if left == 0 { Expect::ChunkEnd } else { Expect::ChunkData { left } };
                Some(n)
            }
            Expect::ChunkEnd => match buf.get(..2) {
                None if buf == b"\r" => None,
                Some(b"\r\n") => {
                    self.dirs[d].expect = Expect::ChunkSize;
                    Some(2)
                }
                _ => self.malformed(d, "chunk without its CRLF", ctx),
            },
            Expect::Trailers => {
                let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
                match httparse::parse_headers(buf, &mut fields) {
                    Ok(httparse::Status::Complete((n, list))) => {
                        let list = redacted(list);
                        if let Some(m) = &mut self.dirs[d].msg {
                            m.headers.extend(list);
                        }
                        self.dirs[d].expect = Expect::Head;
                        self.complete(d, ctx, out);
                        Some(n)
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => None,
                    _ => self.malformed(d, "trailer section", ctx),
                }
            }
            Expect::UntilClose => {
                self.collect(d, buf, ctx, out);
                Some(buf.len())
            }
            Expect::AwaitUpgrade if buf.len() > MAX_HELD => {
                debug!(
                    "conn {}: no answer to the upgrade yet; client bytes are raw",
                    self.ends.conn.0
                );
                self.dirs[d].expect = Expect::Raw;
                Some(0)
            }
            Expect::AwaitUpgrade => None,
            Expect::Raw => self.raw(d, buf, ctx, out),
            Expect::SkipFrame { stream, left } => {
                let n = (left as usize).min(buf.len());
                let left = left - n as u64;
                self.dirs[d].expect = Expect::SkipFrame { stream, left };
                if left == 0 {
                    self.dirs[d].expect = Expect::Raw;
                }
                Some(n)
            }
            Expect::StartLine => self.find_start(d, buf, ctx),
        }
    }

    /// Bytes that do not fit the framing: look for the next start line.
    fn malformed(&mut self, d: usize, what: &str, ctx: &mut Ctx<'_>) -> Option<usize> {
        debug!("conn {}: malformed HTTP/1 {what}, looking for the next message", self.ends.conn.0);
        ctx.summary.frame_errors += 1;
        if self.dirs[d].msg.take().is_some() {
            ctx.summary.undecodable_messages += 1;
        }
        self.dirs[d].expect = Expect::StartLine;
        // Step past the byte that failed, or the same start line is found again.
        Some(1)
    }

    fn find_start(&mut self, d: usize, buf: &[u8], ctx: &mut Ctx<'_>) -> Option<usize> {
        let from_client = d == self.client;
        let starts = |i: usize| {
            let rest = &buf[i..];
            (i == 0 || buf[i - 1] == b'\n')
                && if from_client {
                    ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH "]
                        .iter()
                        .any(|m| rest.starts_with(m.as_bytes()))
                } else {
                    rest.starts_with(b"HTTP/1.")
                }
        };
        match (0..buf.len()).find(|&i| starts(i)) {
            Some(p) => {
                ctx.summary.resync_skipped_bytes += p as u64;
                self.dirs[d].expect = Expect::Head;
                Some(p)
            }
            None => {
                // Keep what could be the start of a start line.
                let skip = buf.len().saturating_sub(8);
                ctx.summary.resync_skipped_bytes += skip as u64;
                (skip > 0).then_some(skip)
            }
        }
    }

    /// Parses a request or response head.
    fn head(
        &mut self,
        d: usize,
        buf: &[u8],
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) -> Option<usize> {
        // Empty lines between messages are allowed (RFC 9112 §2.2).
        if let Some(n) = leading_crlf(buf) {
            return Some(n);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        if d == self.client {
            let mut req = httparse::Request::new(&mut fields);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let method = req.method.unwrap_or("?").to_string();
                    let path = req.path.unwrap_or("").to_string();
                    let list = redacted(req.headers);
                    self.on_request(d, method, path, list, ctx, out);
                    Some(n)
                }
                Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => None,
                Ok(_) => self.malformed(d, "request head longer than 64 KiB", ctx),
                Err(e) => self.malformed(d, &format!("request head: {e}"), ctx),
            }
        } else {
            let mut resp = httparse::Response::new(&mut fields);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = resp.code.unwrap_or(0);
                    let reason = resp.reason.unwrap_or("").to_string();
                    let list = redacted(resp.headers);
                    self.on_response(d, code, reason, list, ctx, out);
                    Some(n)
                }
                Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => None,
                Ok(_) => self.malformed(d, "response head longer than 64 KiB", ctx),
                Err(e) => self.malformed(d, &format!("response head: {e}"), ctx),
            }
        }
    }

    fn on_request(
        &mut self,
        d: usize,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        self.seq += 1;
        let line = format!("{method} {path}");
        debug!("conn {}: request {} {line}", self.ends.conn.0, self.seq);
        let upgrade = field(&headers, "upgrade").is_some();
        self.queue.push_back(Exchange {
            seq: self.seq,
            line: line.clone(),
            head_request: method == "HEAD",
            upgrade,
            started_ns: self.dirs[d].ts,
        });
        // Requests without framing fields have no body (RFC 9112 §6.3).
        let framing = framing(&headers).unwrap_or(Expect::Body { left: 0 });
        self.start_message(d, self.seq, Some(line), None, headers, framing, ctx, out);
    }

    fn on_response(
        &mut self,
        d: usize,
        code: u16,
        reason: String,
        headers: Vec<(String, String)>,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let ex = self.queue.front().cloned();
        let seq = ex.as_ref().map_or(0, |e| e.seq);
        let line = ex.as_ref().map(|e| e.line.clone());
        let status = Some((code, reason));
        let ct = field(&headers, "content-type").map(str::to_ascii_lowercase);
        let docker_stream = ct.as_deref().is_some_and(|c| {
            c.starts_with("application/vnd.docker.raw-stream")
                || c.starts_with("application/vnd.docker.multiplexed-stream")
        });
        let framing = framing(&headers);
        let hijack =
            code == 101 || ((200..300).contains(&code) && docker_stream && framing.is_none());
        if hijack {
            self.queue.pop_front();
            // Client bytes held for the answer were sent before it: shown first.
            self.hijack(d, ex, ct.as_deref(), ctx, out);
            self.dirs[d].msg = Some(Msg::new(seq, line, status, headers));
            return self.emit_message(d, ctx, out);
        }
        if (100..200).contains(&code) {
            // An interim response: the final one follows for the same request.
            return self.start_message(
                d,
                seq,
                line,
                status,
                headers,
                Expect::Body { left: 0 },
                ctx,
                out,
            );
        }
        let no_body = ex.as_ref().is_some_and(|e| e.head_request) || code == 204 || code == 304;
        let framing =
            if no_body { Expect::Body { left: 0 } } else { framing.unwrap_or(Expect::UntilClose) };
        // Docker streams JSON lines in chunked or close-delimited bodies.
        let json_lines = matches!(framing, Expect::ChunkSize | Expect::UntilClose)
            && ct.as_deref().is_some_and(|c| c.contains("json"))
            && field(&headers, "content-encoding").is_none_or(|e| e.trim() == "identity");
        self.start_message(d, seq, line, status, headers, framing, ctx, out);
        if let Some(m) = &mut self.dirs[d].msg {
            m.json_lines = json_lines;
        }
    }

    /// Begins a message whose head was read; one without a body ends here.
    #[allow(clippy::too_many_arguments)]
    fn start_message(
        &mut self,
        d: usize,
        seq: u32,
        line: Option<String>,
        status: Option<(u16, String)>,
        headers: Vec<(String, String)>,
        framing: Expect,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        self.dirs[d].msg = Some(Msg::new(seq, line, status, headers));
        self.dirs[d].expect = framing;
        if framing == (Expect::Body { left: 0 }) {
            self.dirs[d].expect = Expect::Head;
            self.complete(d, ctx, out);
        }
    }

    /// Keeps body bytes up to the cap; beyond it only counts them.
    fn collect(&mut self, d: usize, bytes: &[u8], ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let Some(m) = &mut self.dirs[d].msg else {
            return;
        };
        m.total += bytes.len() as u64;
        if m.too_large {
            return;
        }
        if m.body.len() + bytes.len() > ctx.opts.max_message {
            m.too_large = true;
            m.body = Vec::new();
            return;
        }
        m.body.extend_from_slice(bytes);
        if m.json_lines && bytes.contains(&b'\n') {
            self.json_lines(d, ctx, out);
        }
    }

    /// Shows each complete line of a streamed JSON body as a row of its own.
    fn json_lines(&mut self, d: usize, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        loop {
            let Some(m) = &mut self.dirs[d].msg else {
                return;
            };
            let Some(nl) = m.body.iter().position(|&b| b == b'\n') else {
                return;
            };
            let line: Vec<u8> = m.body.drain(..=nl).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(value) = json_values(&line) else {
                // Not JSON lines after all: the rest is shown at the end.
                m.json_lines = false;
                m.body.splice(0..0, line);
                return;
            };
            let status = if m.streamed { None } else { m.status.clone() };
            let headers = (!m.streamed && ctx.opts.headers).then(|| m.headers.clone());
            m.streamed = true;
            let (seq, method, flags) = (m.seq, m.line.clone(), std::mem::take(&mut m.flags));
            let mut rec = self.record(d, self.kind(d), seq, method);
            rec.flags = flags;
            rec.size = Some(line.len() as u64);
            rec.headers = headers;
            rec.message = Message::Http(HttpMessage { status, body: HttpBody::Json(value) });
            out(rec);
        }
    }

    /// A message ended: its row, and for a final response the call's END row.
    fn complete(&mut self, d: usize, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let is_final = d != self.client
            && self.dirs[d]
                .msg
                .as_ref()
                .is_some_and(|m| m.status.as_ref().is_some_and(|(c, _)| *c >= 200));
        let flags = self.dirs[d].msg.as_ref().map(|m| m.flags).unwrap_or_default();
        let seq = self.dirs[d].msg.as_ref().map_or(0, |m| m.seq);
        let upgrade_request =
            d == self.client && self.queue.iter().any(|e| e.seq == seq && e.upgrade);
        self.emit_message(d, ctx, out);
        if upgrade_request && self.dirs[d].expect == Expect::Head {
            // What the client sends next depends on the answer.
            self.dirs[d].expect = Expect::AwaitUpgrade;
        }
        if !is_final {
            return;
        }
        let Some(ex) = self.queue.pop_front() else {
            return;
        };
        let ts = self.dirs[d].ts;
        self.end_row(&ex, ts, flags, out);
        if ex.upgrade && self.dirs[self.client].expect == Expect::AwaitUpgrade {
            // The upgrade was refused: the client's held bytes are requests.
            self.dirs[self.client].expect = Expect::Head;
            self.process(self.client, ctx, out);
        }
    }

    /// The REQ or RESP row of the message read in direction `d`.
    fn emit_message(&mut self, d: usize, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let Some(mut m) = self.dirs[d].msg.take() else {
            return;
        };
        if m.streamed {
            // Only what followed the last complete line is left to show.
            if m.body.iter().all(u8::is_ascii_whitespace) && m.flags.is_empty() {
                return;
            }
            m.total = m.body.len() as u64;
            m.status = None;
        }
        let kind = if d == self.client { Kind::Req } else { Kind::Resp };
        let mut rec = self.record(d, kind, m.seq, m.line.clone());
        rec.flags = m.flags;
        rec.size = Some(m.total);
        if ctx.opts.headers && !m.streamed {
            rec.headers = Some(m.headers.clone());
        }
        let body = body(&m, &mut rec.flags, ctx);
        rec.message = Message::Http(HttpMessage { status: m.status, body });
        out(rec);
    }

    /// The connection becomes a raw stream in both directions.
    fn hijack(
        &mut self,
        d: usize,
        ex: Option<Exchange>,
        ct: Option<&str>,
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) {
        let multiplexed =
            ct.is_some_and(|c| c.starts_with("application/vnd.docker.multiplexed-stream"));
        debug!("conn {}: hijacked (multiplexed: {multiplexed})", self.ends.conn.0);
        self.hijacked = ex;
        self.dirs[d].expect = Expect::Raw;
        self.dirs[d].multiplexed = multiplexed;
        self.dirs[d].sniff = !multiplexed;
        let c = self.client;
        self.dirs[c].msg = None;
        self.dirs[c].expect = Expect::Raw;
        self.process(c, ctx, out);
    }

    /// Raw bytes of a hijacked connection: a row per multiplexed frame, or
    /// per piece as it arrived.
    fn raw(
        &mut self,
        d: usize,
        buf: &[u8],
        ctx: &mut Ctx<'_>,
        out: &mut dyn FnMut(Record),
    ) -> Option<usize> {
        let from_client = d == self.client;
        if self.dirs[d].sniff {
            let plain = buf[0] > 3 || buf.iter().skip(1).take(3).any(|&b| b != 0);
            if !plain && buf.len() < 8 {
                return None;
            }
            debug!("conn {}: hijacked stream multiplexed: {}", self.ends.conn.0, !plain);
            self.dirs[d].sniff = false;
            self.dirs[d].multiplexed = !plain;
            return Some(0);
        }
        if !self.dirs[d].multiplexed {
            let name = if from_client { "stdin" } else { "stdout" };
            self.stream_row(d, name, buf, buf.len() as u64, Flags::default(), out);
            return Some(buf.len());
        }
        let hdr = buf.get(..8)?;
        let (ty, len) = (hdr[0], u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]));
        if ty > 3 || hdr[1..4] != [0, 0, 0] {
            debug!(
                "conn {}: not a multiplexed frame header {hdr:02x?}; raw from here",
                self.ends.conn.0
            );
            ctx.summary.frame_errors += 1;
            self.dirs[d].multiplexed = false;
            return Some(0);
        }
        if len as usize > ctx.opts.max_message {
            ctx.summary.too_large_messages += 1;
            self.dirs[d].expect = Expect::SkipFrame { stream: ty, left: len as u64 };
            let text = format!("<{len} bytes, above the message cap>");
            let mut rec = self.record(d, self.kind(d), self.hijack_seq(), self.hijack_line());
            rec.flags = Flags::TOO_LARGE;
            rec.size = Some(len as u64);
            rec.message = Message::Http(HttpMessage {
                status: None,
                body: HttpBody::Stream { stream: stream_name(ty), text },
            });
            out(rec);
            return Some(8);
        }
        let data = buf.get(8..8 + len as usize)?;
        self.stream_row(d, stream_name(ty), data, len as u64, Flags::default(), out);
        Some(8 + len as usize)
    }

    fn stream_row(
        &mut self,
        d: usize,
        stream: &'static str,
        data: &[u8],
        size: u64,
        mut flags: Flags,
        out: &mut dyn FnMut(Record),
    ) {
        flags.insert(std::mem::take(&mut self.dirs[d].pending_flags));
        let mut rec = self.record(d, self.kind(d), self.hijack_seq(), self.hijack_line());
        rec.flags = flags;
        rec.size = Some(size);
        let text = String::from_utf8_lossy(data).into_owned();
        rec.message =
            Message::Http(HttpMessage { status: None, body: HttpBody::Stream { stream, text } });
        out(rec);
    }

    fn kind(&self, d: usize) -> Kind {
        if d == self.client {
            Kind::Req
        } else {
            Kind::Resp
        }
    }

    fn hijack_seq(&self) -> u32 {
        self.hijacked.as_ref().map_or(0, |e| e.seq)
    }

    fn hijack_line(&self) -> Option<String> {
        self.hijacked.as_ref().map(|e| e.line.clone())
    }

    fn end_row(&self, ex: &Exchange, ts: u64, flags: Flags, out: &mut dyn FnMut(Record)) {
        let server = 1 - self.client;
        let mut rec = self.record(server, Kind::End, ex.seq, Some(ex.line.clone()));
        rec.ts_ns = ts;
        rec.flags = flags;
        rec.duration_us = Some(ts.saturating_sub(ex.started_ns) / 1000);
        out(rec);
    }

    fn record(&self, d: usize, kind: Kind, seq: u32, line: Option<String>) -> Record {
        let st = &self.dirs[d];
        let rec = self.ends.record(d, Proto::Http1, kind, seq, st.ts, st.meta.clone());
        Record { method: line, ..rec }
    }
}

/// Docker's names of the multiplexed stream types.
fn stream_name(ty: u8) -> &'static str {
    match ty {
        0 => "stdin",
        1 => "stdout",
        2 => "stderr",
        _ => "systemerr",
    }
}

/// Length of empty lines at the start, if any and followed by more.
fn leading_crlf(buf: &[u8]) -> Option<usize> {
    let n = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    (n > 0).then_some(n)
}

/// The value of the first field with this name (case-insensitive).
fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// How a message's body is delimited, from its header fields (RFC 9112 §6.3);
/// `None` when neither Transfer-Encoding nor Content-Length says.
fn framing(headers: &[(String, String)]) -> Option<Expect> {
    if let Some(te) = field(headers, "transfer-encoding") {
        if te.rsplit(',').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked")) {
            return Some(Expect::ChunkSize);
        }
    }
    let len = field(headers, "content-length")?;
    match len.trim().parse::<u64>() {
        Ok(n) => Some(Expect::Body { left: n }),
        Err(_) => None,
    }
}

/// Header fields as text, credentials replaced.
fn redacted(list: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    list.iter()
        .map(|h| {
            let value = if SECRET_HEADERS.iter().any(|s| h.name.eq_ignore_ascii_case(s)) {
                redaction(h.value.len())
            } else {
                String::from_utf8_lossy(h.value).into_owned()
            };
            (h.name.to_string(), value)
        })
        .collect()
}

fn redaction(n: usize) -> String {
    format!("<redacted {n} bytes>")
}

/// What a body shows: JSON, short text, or its type and size.
fn body(m: &Msg, flags: &mut Flags, ctx: &mut Ctx<'_>) -> HttpBody {
    if m.total == 0 {
        return HttpBody::None;
    }
    let ct = m.content_type.as_deref().unwrap_or("").to_ascii_lowercase();
    let summary = |why: &str| {
        let ty = if ct.is_empty() { String::new() } else { format!("{ct} ") };
        HttpBody::Summary(format!("<{ty}{} bytes{why}>", m.total))
    };
    if m.too_large {
        ctx.summary.too_large_messages += 1;
        flags.insert(Flags::TOO_LARGE);
        return summary(", above the message cap");
    }
    if flags.contains(Flags::GAP) || flags.contains(Flags::INCOMPLETE) {
        return summary(", not all captured");
    }
    let plain;
    let bytes = match m.encoding.as_deref().map(str::trim) {
        None | Some("") | Some("identity") => &m.body[..],
        Some(enc) => match grpc::decompress(Some(enc), &m.body, ctx.opts.max_message) {
            Ok(p) => {
                plain = p;
                &plain[..]
            }
            Err(e) => {
                ctx.summary.undecodable_messages += 1;
                flags.insert(Flags::UNDECODABLE);
                return summary(&format!(": {e}"));
            }
        },
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if ct.contains("json") || matches!(first, Some(b'{') | Some(b'[')) {
        if let Some(v) = json_values(bytes) {
            return HttpBody::Json(v);
        }
        if ct.contains("json") {
            ctx.summary.undecodable_messages += 1;
            flags.insert(Flags::UNDECODABLE);
            return summary(", not valid JSON");
        }
    }
    // Short plain text (dockerd's `/_ping` answers "OK") is shown; markup is not.
    let texty = ct.is_empty() || ct.starts_with("text/plain");
    if texty && bytes.len() <= MAX_INLINE_TEXT {
        if let Ok(t) = std::str::from_utf8(bytes) {
            if t.chars().all(|c| !c.is_control() || c.is_ascii_whitespace()) {
                return HttpBody::Text(t.to_string());
            }
        }
    }
    summary("")
}

/// One JSON value, or several (newline-delimited JSON) as an array, with
/// credentials replaced; `None` if the bytes are not JSON.
fn json_values(bytes: &[u8]) -> Option<Value> {
    let mut values = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    for v in &mut values {
        redact_json(v);
    }
    match values.len() {
        0 => None,
        1 => values.pop(),
        _ => Some(Value::Array(values)),
    }
}

fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_MEMBERS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                    let n = match &*val {
                        Value::String(s) => s.len(),
                        other => other.to_string().len(),
                    };
                    *val = Value::String(redaction(n));
                } else {
                    redact_json(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::record::Summary;
    use crate::decode::DecodeOptions;

    const C: Dir = Dir::AtoB;
    const S: Dir = Dir::BtoA;

    struct Run {
        recs: Vec<Record>,
        summary: Summary,
    }

    impl Run {
        /// `KIND STREAM METHOD | MESSAGE [flags]` per record.
        fn rows(&self) -> Vec<String> {
            self.recs
                .iter()
                .map(|r| {
                    let m = match &r.message {
                        Message::Http(h) => h.text(),
                        Message::None => String::new(),
                        other => format!("{other:?}"),
                    };
                    let flags = r.flags.names().join(",");
                    let flags = if flags.is_empty() { flags } else { format!(" [{flags}]") };
                    let method = r.method.as_deref().unwrap_or("-");
                    format!("{} {} {method} | {m}{flags}", r.kind.as_str(), r.stream)
                })
                .collect()
        }
    }

    /// Feeds (direction, bytes) pieces cut into `step`-byte events, then ends the connection.
    fn run_with(pieces: &[(Dir, &[u8])], step: usize, opts: DecodeOptions) -> Run {
        let pool = prost_reflect::DescriptorPool::new();
        let mut summary = Summary::default();
        let mut recs = Vec::new();
        let a = "127.0.0.1:1".parse().unwrap();
        let b = "127.0.0.1:2".parse().unwrap();
        let mut conn = Conn::new(ConnId(0), a, b, C);
        let mut ts = 1_000_000;
        for (dir, bytes) in pieces {
            for chunk in bytes.chunks(step) {
                ts += 1000;
                let mut ctx = Ctx { pool: &pool, opts: &opts, summary: &mut summary };
                conn.on_data(*dir, ts, chunk, None, &mut ctx, &mut |r| recs.push(r));
            }
        }
        let mut ctx = Ctx { pool: &pool, opts: &opts, summary: &mut summary };
        conn.finish(ts, &mut ctx, &mut |r| recs.push(r));
        Run { recs, summary }
    }

    fn run(pieces: &[(Dir, &[u8])], step: usize) -> Run {
        run_with(pieces, step, DecodeOptions::default())
    }

    /// The same rows however the bytes are cut into events.
    fn rows_at_every_split(pieces: &[(Dir, &[u8])]) -> Vec<String> {
        let whole = run(pieces, usize::MAX).rows();
        for step in 1..24 {
            assert_eq!(run(pieces, step).rows(), whole, "events of {step} bytes");
        }
        whole
    }

    const CREATE_REQ: &[u8] = b"POST /v1.41/containers/create?name=web HTTP/1.1\r\n\
        Host: api.moby.localhost\r\nUser-Agent: Docker-Client/24.0.7 (linux)\r\n\
        Content-Length: 18\r\nContent-Type: application/json\r\n\r\n{\"Image\":\"alpine\"}";
    const CREATE_RESP: &[u8] = b"HTTP/1.1 201 Created\r\nApi-Version: 1.43\r\n\
        Content-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"Id\":\"4f2a\",\"Warnings\":[]}\n";

    #[test]
    fn request_and_response_with_json_bodies() {
        let rows = rows_at_every_split(&[(C, CREATE_REQ), (S, CREATE_RESP)]);
        assert_eq!(
            rows,
            [
                "REQ 1 POST /v1.41/containers/create?name=web | {\"Image\":\"alpine\"}",
                "RESP 1 POST /v1.41/containers/create?name=web | 201 Created {\"Id\":\"4f2a\",\"Warnings\":[]}",
                "END 1 POST /v1.41/containers/create?name=web | ",
            ]
        );
        let r = run(&[(C, CREATE_REQ), (S, CREATE_RESP)], usize::MAX);
        assert_eq!(r.recs[0].proto, Proto::Http1);
        assert_eq!(r.recs[0].size, Some(18));
        assert_eq!(r.recs[1].src.port(), 2);
        assert_eq!(r.recs[2].duration_us, Some(1));
        let json = crate::render::json::to_json(&r.recs[1], false);
        assert_eq!(json["proto"], "http1");
        assert_eq!(json["http_status"], 201);
        assert_eq!(json["message"]["Id"], "4f2a");
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let resp: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
            Transfer-Encoding: chunked\r\n\r\n\
            7;name=\"x\"\r\n{\"Statu\r\n9\r\nsCode\":0}\r\n0;last\r\nX-Checksum: 1\r\n\r\n";
        let req: &[u8] = b"POST /v1.41/containers/4f2a/wait HTTP/1.1\r\nHost: d\r\n\r\n";
        let rows = rows_at_every_split(&[(C, req), (S, resp)]);
        assert_eq!(rows[1], "RESP 1 POST /v1.41/containers/4f2a/wait | 200 OK {\"StatusCode\":0}");
        let opts = DecodeOptions { headers: true, ..Default::default() };
        let r = run_with(&[(C, req), (S, resp)], 5, opts);
        let h = r.recs[1].headers.clone().unwrap();
        assert!(h.contains(&("X-Checksum".to_string(), "1".to_string())), "{h:?}");
        assert_eq!(r.recs[1].size, Some(16));
    }

    #[test]
    fn pipelined_requests_pair_with_responses_in_order() {
        let reqs: &[u8] =
            b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\nHEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\n\
            GET /v1.41/version HTTP/1.1\r\nHost: d\r\n\r\n";
        let resps: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
            Content-Length: 2\r\n\r\nOK\
            HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n\
            {\"ApiVersion\":\"1\"}\n";
        let rows = rows_at_every_split(&[(C, reqs), (S, resps)]);
        assert_eq!(
            rows,
            [
                "REQ 1 GET /_ping | ",
                "REQ 2 HEAD /_ping | ",
                "REQ 3 GET /v1.41/version | ",
                "RESP 1 GET /_ping | 200 OK \"OK\"",
                "END 1 GET /_ping | ",
                "RESP 2 HEAD /_ping | 200 OK",
                "END 2 HEAD /_ping | ",
                "RESP 3 GET /v1.41/version | 200 OK {\"ApiVersion\":\"1\"}",
                "END 3 GET /v1.41/version | ",
            ]
        );
    }

    #[test]
    fn expect_100_continue_then_the_real_response() {
        let head: &[u8] = b"PUT /v1.41/containers/4f2a/archive?path=/tmp HTTP/1.1\r\nHost: d\r\n\
            Content-Type: application/x-tar\r\nContent-Length: 1024\r\nExpect: 100-continue\r\n\r\n";
        let body = [0u8; 1024];
        let cont: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        let done: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let rows = rows_at_every_split(&[(C, head), (S, cont), (C, &body), (S, done)]);
        let m = "PUT /v1.41/containers/4f2a/archive?path=/tmp";
        assert_eq!(
            rows,
            [
                format!("RESP 1 {m} | 100 Continue"),
                format!("REQ 1 {m} | <application/x-tar 1024 bytes>"),
                format!("RESP 1 {m} | 200 OK"),
                format!("END 1 {m} | "),
            ]
        );
    }

    #[test]
    fn no_body_after_204_and_304() {
        let reqs: &[u8] = b"POST /v1.41/containers/4f2a/start HTTP/1.1\r\nHost: d\r\n\r\n\
            POST /v1.41/containers/4f2a/stop HTTP/1.1\r\nHost: d\r\n\r\n";
        // A 204 or 304 has no body whatever its Content-Length says.
        let resps: &[u8] = b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n\
            HTTP/1.1 304 Not Modified\r\n\r\n";
        let rows = rows_at_every_split(&[(C, reqs), (S, resps)]);
        assert_eq!(rows[2], "RESP 1 POST /v1.41/containers/4f2a/start | 204 No Content");
        assert_eq!(rows[4], "RESP 2 POST /v1.41/containers/4f2a/stop | 304 Not Modified");
        assert_eq!(rows.len(), 6);
    }

    /// Docker's multiplexed frame.
    fn frame(ty: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn hijacked_attach_with_multiplexed_frames() {
        let req: &[u8] =
            b"POST /v1.41/containers/4f2a/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\n\
            Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: text/plain\r\n\r\n";
        let resp: &[u8] = b"HTTP/1.1 101 UPGRADED\r\n\
            Content-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\n\
            Upgrade: tcp\r\n\r\n";
        let mut out = frame(1, b"hello\n");
        out.extend(frame(2, b"oops\n"));
        out.extend(frame(1, b""));
        // The client's stdin may arrive before the answer: it waits for it.
        let stdin: &[u8] = b"ls\n";
        let rows = rows_at_every_split(&[(C, req), (C, stdin), (S, resp), (S, &out)]);
        let m = "POST /v1.41/containers/4f2a/attach?stderr=1&stdin=1&stdout=1&stream=1";
        // stdin held until the answer is shown before it: it was sent first.
        assert_eq!(
            rows,
            [
                format!("REQ 1 {m} | "),
                format!("REQ 1 {m} | stdin \"ls\\n\""),
                format!("RESP 1 {m} | 101 UPGRADED"),
                format!("RESP 1 {m} | stdout \"hello\\n\""),
                format!("RESP 1 {m} | stderr \"oops\\n\""),
                format!("RESP 1 {m} | stdout \"\""),
                format!("END 1 {m} | "),
            ]
        );
        let r = run(&[(C, req), (S, resp), (S, &out)], usize::MAX);
        let json = crate::render::json::to_json(&r.recs[2], false);
        assert_eq!(json["message"]["stream"], "stdout");
        assert_eq!(json["message"]["text"], "hello\n");
    }

    #[test]
    fn attach_answered_200_with_a_raw_stream() {
        let req: &[u8] =
            b"POST /v1.41/containers/4f2a/attach?stdout=1&stream=1 HTTP/1.1\r\nHost: d\r\n\r\n";
        let resp: &[u8] =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n";
        let r = run(&[(C, req), (S, resp), (S, b"\x1b[31mred\r\n"), (C, b"exit\r")], usize::MAX);
        let rows = r.rows();
        let m = "POST /v1.41/containers/4f2a/attach?stdout=1&stream=1";
        assert_eq!(
            rows,
            [
                format!("REQ 1 {m} | "),
                format!("RESP 1 {m} | 200 OK"),
                format!("RESP 1 {m} | stdout \"\\u{{1b}}[31mred\\r\\n\""),
                format!("REQ 1 {m} | stdin \"exit\\r\""),
                format!("END 1 {m} | "),
            ]
        );
    }

    #[test]
    fn raw_stream_carrying_multiplexed_frames_is_recognised() {
        // dockerd before API 1.42 answered attach without a TTY this way.
        let req: &[u8] = b"POST /v1.40/containers/4f2a/attach?stdout=1&stream=1 HTTP/1.1\r\n\
            Host: d\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";
        let resp: &[u8] = b"HTTP/1.1 101 UPGRADED\r\n\
            Content-Type: application/vnd.docker.raw-stream\r\nUpgrade: tcp\r\n\r\n";
        let out = [frame(2, b"warn\n"), frame(1, b"ok\n")].concat();
        let rows = rows_at_every_split(&[(C, req), (S, resp), (S, &out)]);
        let m = "POST /v1.40/containers/4f2a/attach?stdout=1&stream=1";
        assert_eq!(rows[2], format!("RESP 1 {m} | stderr \"warn\\n\""));
        assert_eq!(rows[3], format!("RESP 1 {m} | stdout \"ok\\n\""));
    }

    #[test]
    fn logs_stream_with_chunked_framing_is_not_hijacked() {
        let req: &[u8] = b"GET /v1.41/containers/4f2a/logs?stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n";
        let mut resp =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\
            Transfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        let f = frame(1, b"log line\n");
        resp.extend(format!("{:x}\r\n", f.len()).as_bytes());
        resp.extend(&f);
        resp.extend(b"\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let req2: &[u8] = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
        let rows = rows_at_every_split(&[(C, req), (C, req2), (S, &resp)]);
        assert_eq!(
            rows[2],
            "RESP 1 GET /v1.41/containers/4f2a/logs?stdout=1 | 200 OK \
             <application/vnd.docker.multiplexed-stream 17 bytes>"
        );
        assert_eq!(rows[4], "RESP 2 GET /_ping | 200 OK");
    }

    #[test]
    fn refused_upgrade_returns_to_requests() {
        let req: &[u8] = b"POST /v1.41/exec/9/start HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\n\
            Connection: Upgrade\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n\
            {\"Detach\":true}GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
        let resp: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
            Content-Length: 28\r\n\r\n{\"message\":\"No such exec 9\"}\
            HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let rows = rows_at_every_split(&[(C, req), (S, resp)]);
        assert_eq!(
            rows,
            [
                "REQ 1 POST /v1.41/exec/9/start | {\"Detach\":true}",
                "RESP 1 POST /v1.41/exec/9/start | 404 Not Found {\"message\":\"No such exec 9\"}",
                "END 1 POST /v1.41/exec/9/start | ",
                "REQ 2 GET /_ping | ",
                "RESP 2 GET /_ping | 200 OK",
                "END 2 GET /_ping | ",
            ]
        );
    }

    #[test]
    fn credentials_are_redacted_in_every_format() {
        let req: &[u8] = b"POST /v1.41/images/create?fromImage=alpine HTTP/1.1\r\nHost: d\r\n\
            X-Registry-Auth: eyJ1c2VybmFtZSI6ImEiLCJwYXNzd29yZCI6InMzY3IzdCJ9\r\n\
            Authorization: Bearer s3cr3t\r\nContent-Length: 0\r\n\r\n\
            POST /v1.41/auth HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\
            Content-Length: 59\r\n\r\n{\"username\":\"a\",\"password\":\"s3cr3t\",\"serveraddress\":\"r.io\"}";
        let opts = DecodeOptions { headers: true, ..Default::default() };
        let r = run_with(&[(C, req)], 7, opts);
        let h = r.recs[0].headers.clone().unwrap();
        assert!(h.contains(&("X-Registry-Auth".into(), "<redacted 48 bytes>".into())), "{h:?}");
        assert!(h.contains(&("Authorization".into(), "<redacted 13 bytes>".into())), "{h:?}");
        for rec in &r.recs {
            let json = crate::render::json::to_json(rec, true).to_string();
            assert!(!json.contains("s3cr3t") && !json.contains("eyJ1c2Vy"), "{json}");
            let mut table = crate::render::TableRenderer::new(Vec::new(), None, true);
            table.render(rec).unwrap();
            let text = String::from_utf8(table.into_inner().unwrap()).unwrap();
            assert!(!text.contains("s3cr3t") && !text.contains("eyJ1c2Vy"), "{text}");
        }
        let body = crate::render::json::to_json(&r.recs[1], false);
        assert_eq!(body["message"]["password"], "<redacted 6 bytes>");
        assert_eq!(body["message"]["username"], "a");
    }

    #[test]
    fn body_above_the_cap_is_counted_not_kept() {
        let opts = DecodeOptions { max_message: 8, ..Default::default() };
        let r = run_with(&[(C, CREATE_REQ), (S, CREATE_RESP)], 3, opts);
        assert!(r.recs[0].flags.contains(Flags::TOO_LARGE));
        assert_eq!(r.rows()[0], "REQ 1 POST /v1.41/containers/create?name=web | <application/json 18 bytes, above the message cap> [too-large]");
        assert_eq!(r.summary.too_large_messages, 2);
    }

    #[test]
    fn body_until_close_and_unfinished_calls() {
        let req: &[u8] = b"GET /v1.41/events HTTP/1.1\r\nHost: d\r\n\r\n";
        let resp: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n\
            {\"status\":\"start\"}\n{\"status\":\"die\"}\n";
        let rows = run(&[(C, req), (S, resp)], 9).rows();
        // Each line of a streamed JSON body is a row as soon as it is complete.
        assert_eq!(rows[1], "RESP 1 GET /v1.41/events | 200 OK {\"status\":\"start\"}");
        assert_eq!(rows[2], "RESP 1 GET /v1.41/events | {\"status\":\"die\"}");
        assert_eq!(rows.len(), 4, "{rows:?}");
        let rows = run(&[(C, CREATE_REQ)], 9).rows();
        assert_eq!(rows[1], "END 1 POST /v1.41/containers/create?name=web |  [incomplete]");
    }

    #[test]
    fn pull_progress_lines_are_rows_as_they_arrive() {
        let req: &[u8] =
            b"POST /v1.43/images/create?fromImage=alpine&tag=latest HTTP/1.1\r\nHost: d\r\n\r\n";
        let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
            Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        // Two lines in one chunk, then a line cut across two chunks.
        for chunk in ["{\"status\":\"Pulling\"}\n{\"id\":\"1\"}\n", "{\"status\":\"Do", "ne\"}\n"] {
            resp.extend(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
        }
        resp.extend(b"0\r\n\r\n");
        let resp = &resp[..];
        let rows = rows_at_every_split(&[(C, req), (S, resp)]);
        let m = "POST /v1.43/images/create?fromImage=alpine&tag=latest";
        assert_eq!(
            rows,
            [
                format!("REQ 1 {m} | "),
                format!("RESP 1 {m} | 200 OK {{\"status\":\"Pulling\"}}"),
                format!("RESP 1 {m} | {{\"id\":\"1\"}}"),
                format!("RESP 1 {m} | {{\"status\":\"Done\"}}"),
                format!("END 1 {m} | "),
            ]
        );
    }

    #[test]
    fn gap_inside_a_body_keeps_the_framing() {
        let pool = prost_reflect::DescriptorPool::new();
        let opts = DecodeOptions::default();
        let mut summary = Summary::default();
        let mut recs = Vec::new();
        let a = "127.0.0.1:1".parse().unwrap();
        let mut conn = Conn::new(ConnId(0), a, a, C);
        let mut ctx = Ctx { pool: &pool, opts: &opts, summary: &mut summary };
        let split = CREATE_REQ.len() - 10;
        conn.on_data(C, 1, &CREATE_REQ[..split], None, &mut ctx, &mut |r| recs.push(r));
        conn.on_gap(C, 4, &mut ctx);
        conn.on_data(C, 2, &CREATE_REQ[split + 4..], None, &mut ctx, &mut |r| recs.push(r));
        conn.on_data(S, 3, CREATE_RESP, None, &mut ctx, &mut |r| recs.push(r));
        let rows = Run { recs, summary: Summary::default() }.rows();
        assert_eq!(rows[0], "REQ 1 POST /v1.41/containers/create?name=web | <application/json 18 bytes, not all captured> [gap]");
        assert!(rows[1].starts_with("RESP 1"), "{rows:?}");
    }

    #[test]
    fn malformed_head_after_a_method_does_not_stall() {
        let bytes: &[u8] = b"GET \x01bad\r\n\r\nGET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
        let r = run(&[(C, bytes)], usize::MAX);
        assert_eq!(r.rows()[0], "REQ 1 GET /_ping | ");
        assert_eq!(r.summary.frame_errors, 1);
    }

    #[test]
    fn garbage_then_a_request_resynchronises() {
        let bytes: &[u8] = b"\x00\x01junk\r\nGET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
        let r = run(&[(C, bytes)], usize::MAX);
        assert_eq!(r.rows()[0], "REQ 1 GET /_ping | ");
        assert_eq!(r.summary.frame_errors, 1);
    }
}
