//! Which protocol a connection speaks, told from its first bytes.
//!
//! A [`Wire`] holds the first events of a connection until one direction's
//! start says what it is, then hands them, in order, to the decoder of that
//! protocol:
//!
//! - the HTTP/2 client preface, a server's SETTINGS, an h2c upgrade or a
//!   CONNECT prelude: HTTP/2 (the HTTP/2 decoder recognises those itself);
//! - any other HTTP/1.x request line (or, joined mid-stream, a status line):
//!   HTTP/1;
//! - a ttrpc request header for an odd stream whose payload opens with the
//!   service and method names: ttrpc;
//! - anything else goes to the HTTP/2 decoder, which recognises HTTP/2 joined
//!   mid-stream by its frames and ignores the rest.

use std::net::SocketAddr;
use std::sync::Arc;

use log::debug;

use super::http2::conn::{Conn as Http2Conn, Ctx};
use super::http2::frame::PREFACE;
use super::{http1, ttrpc};
use crate::chunk::ProcMeta;
use crate::decode::record::ix;
use crate::decode::Record;
use crate::reassembly::{ConnId, Dir};

/// Bytes of one direction looked at before giving up on telling.
const MAX_DETECT: usize = 64 * 1024;

/// HTTP/1 request methods a start line may open with (RFC 9110 §9 and PATCH).
const METHODS: [&str; 9] =
    ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/// What the start of a direction says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Too few bytes to tell.
    NeedMore,
    /// HTTP/2, or not recognised at all (the HTTP/2 decoder ignores it).
    Http2,
    /// HTTP/1: `request` is true when the bytes were sent by the client.
    Http1 { request: bool },
    /// ttrpc: `request` as for HTTP/1.
    Ttrpc { request: bool },
}

/// Classifies the first bytes of a direction.
pub fn classify(buf: &[u8], mid_stream: bool) -> Verdict {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] == PREFACE[..n] {
        return if n < PREFACE.len() { Verdict::NeedMore } else { Verdict::Http2 };
    }
    match http1_start(buf) {
        Some(Http1Start::Partial) => return Verdict::NeedMore,
        Some(Http1Start::Request) => return http1_request(buf),
        Some(Http1Start::Response) => return Verdict::Http1 { request: false },
        None => {}
    }
    match ttrpc::looks_like_request(buf) {
        Some(true) => Verdict::Ttrpc { request: true },
        Some(false) if mid_stream && looks_like_ttrpc_response(buf) => {
            Verdict::Ttrpc { request: false }
        }
        Some(false) => Verdict::Http2,
        None if buf.len() > MAX_DETECT => Verdict::Http2,
        None => Verdict::NeedMore,
    }
}

/// Joined mid-stream, a whole ttrpc response at the start also tells.
fn looks_like_ttrpc_response(buf: &[u8]) -> bool {
    use prost::Message as _;
    let Some(h) = ttrpc::Header::load(buf) else {
        return false;
    };
    let end = ttrpc::HEADER_LEN + h.len as usize;
    h.is_plausible()
        && h.ty == ttrpc::MsgType::RESPONSE
        && h.stream % 2 == 1
        && buf.get(ttrpc::HEADER_LEN..end).is_some_and(|p| {
            !p.is_empty() && ttrpc::Response::decode(p).is_ok_and(|r| r.status.is_some())
        })
}

enum Http1Start {
    Partial,
    Request,
    Response,
}

/// Whether bytes open with an HTTP/1 request method or status line.
fn http1_start(buf: &[u8]) -> Option<Http1Start> {
    let mut partial = false;
    for m in METHODS.iter().map(|m| m.as_bytes()).chain([b"HTTP/1.".as_slice()]) {
        let want: Vec<u8> = if m.starts_with(b"HTTP") { m.to_vec() } else { [m, b" "].concat() };
        if buf.starts_with(&want) {
            return Some(if m.starts_with(b"HTTP") {
                Http1Start::Response
            } else {
                Http1Start::Request
            });
        }
        partial |= want.starts_with(buf);
    }
    partial.then_some(Http1Start::Partial)
}

/// An HTTP/1 request opens HTTP/1 unless it starts HTTP/2 (CONNECT, or an
/// `Upgrade: h2c`), which needs the whole head to tell.
fn http1_request(buf: &[u8]) -> Verdict {
    if buf.starts_with(b"CONNECT ") {
        return Verdict::Http2;
    }
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let h2c = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("upgrade")
                    && String::from_utf8_lossy(h.value)
                        .split(',')
                        .any(|p| p.trim().eq_ignore_ascii_case("h2c"))
            });
            if h2c {
                Verdict::Http2
            } else {
                Verdict::Http1 { request: true }
            }
        }
        Ok(httparse::Status::Partial) if buf.len() <= MAX_DETECT => Verdict::NeedMore,
        // A head too long or not quite HTTP: the HTTP/1 decoder reports it.
        _ => Verdict::Http1 { request: true },
    }
}

/// A held event.
enum Held {
    Data { dir: Dir, ts: u64, data: Vec<u8>, meta: Option<Arc<ProcMeta>> },
    Gap { dir: Dir, len: u64 },
}

/// A connection whose protocol is not known yet.
pub struct Pending {
    id: ConnId,
    a: SocketAddr,
    b: SocketAddr,
    mid_stream: bool,
    held: Vec<Held>,
    /// Bytes held per direction, and whether a gap came first.
    starts: [(Vec<u8>, bool); 2],
}

/// One connection, by protocol.
pub enum Wire {
    Pending(Pending),
    Http2(Box<Http2Conn>),
    Ttrpc(Box<ttrpc::Conn>),
    Http1(Box<http1::Conn>),
}

impl Wire {
    pub fn new(id: ConnId, a: SocketAddr, b: SocketAddr, mid_stream: bool) -> Wire {
        Wire::Pending(Pending {
            id,
            a,
            b,
            mid_stream,
            held: Vec::new(),
            starts: [(Vec::new(), false), (Vec::new(), false)],
        })
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
        match self {
            Wire::Http2(c) => c.on_data(dir, ts, data, meta, ctx, out),
            Wire::Ttrpc(c) => c.on_data(dir, ts, data, meta, ctx, out),
            Wire::Http1(c) => c.on_data(dir, ts, data, meta, ctx, out),
            Wire::Pending(p) => {
                p.held.push(Held::Data { dir, ts, data: data.to_vec(), meta: meta.cloned() });
                let (start, gapped) = &mut p.starts[ix(dir)];
                if start.len() <= MAX_DETECT {
                    start.extend_from_slice(data);
                }
                let gapped = *gapped;
                let verdict = if gapped {
                    Verdict::Http2
                } else {
                    classify(&p.starts[ix(dir)].0, p.mid_stream)
                };
                let total: usize = p.starts.iter().map(|s| s.0.len()).sum();
                match verdict {
                    Verdict::NeedMore if total <= 2 * MAX_DETECT => {}
                    Verdict::NeedMore => self.decide(Verdict::Http2, dir, ctx, out),
                    v => self.decide(v, dir, ctx, out),
                }
            }
        }
    }

    /// Bytes of one direction were lost.
    pub fn on_gap(&mut self, dir: Dir, len: u64, ctx: &mut Ctx<'_>) {
        match self {
            Wire::Http2(c) => c.on_gap(dir, len, ctx),
            Wire::Ttrpc(c) => c.on_gap(dir, len, ctx),
            Wire::Http1(c) => c.on_gap(dir, len, ctx),
            Wire::Pending(p) => {
                p.held.push(Held::Gap { dir, len });
                let start = &mut p.starts[ix(dir)];
                if start.0.is_empty() {
                    // The start of this direction is lost: it cannot tell.
                    start.1 = true;
                }
            }
        }
    }

    /// The connection ended (or the input did): every open call ends.
    pub fn finish(&mut self, ts: u64, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        if let Wire::Pending(p) = self {
            let first = p.held.iter().find_map(|h| match h {
                Held::Data { dir, .. } => Some(*dir),
                Held::Gap { .. } => None,
            });
            self.decide(Verdict::Http2, first.unwrap_or(Dir::AtoB), ctx, out);
        }
        match self {
            Wire::Http2(c) => c.finish(ts, ctx, out),
            Wire::Ttrpc(c) => c.finish(ts, out),
            Wire::Http1(c) => c.finish(ts, ctx, out),
            Wire::Pending(_) => {}
        }
    }

    /// HPACK fields that referred to never-seen entries, not yet counted.
    pub fn unknown_fields(&self) -> u64 {
        match self {
            Wire::Http2(c) => c.unknown_fields(),
            _ => 0,
        }
    }

    /// Whether the connection carried none of the protocols we decode.
    pub fn is_other(&self) -> bool {
        match self {
            Wire::Http2(c) => !c.is_http2(),
            Wire::Pending(_) => true,
            Wire::Ttrpc(_) | Wire::Http1(_) => false,
        }
    }

    /// Chooses the decoder and replays the held events into it.
    fn decide(&mut self, v: Verdict, dir: Dir, ctx: &mut Ctx<'_>, out: &mut dyn FnMut(Record)) {
        let Wire::Pending(p) = self else {
            return;
        };
        debug!("conn {}: {v:?} from the start of {dir:?}", p.id.0);
        let held = std::mem::take(&mut p.held);
        *self = match v {
            Verdict::Ttrpc { request } => {
                ctx.summary.ttrpc_connections += 1;
                let client = if request { dir } else { dir.reverse() };
                Wire::Ttrpc(Box::new(ttrpc::Conn::new(p.id, p.a, p.b, client)))
            }
            Verdict::Http1 { request } => {
                ctx.summary.http1_connections += 1;
                let client = if request { dir } else { dir.reverse() };
                Wire::Http1(Box::new(http1::Conn::new(p.id, p.a, p.b, client)))
            }
            Verdict::Http2 | Verdict::NeedMore => {
                Wire::Http2(Box::new(Http2Conn::new(p.id, p.a, p.b, p.mid_stream)))
            }
        };
        for h in held {
            match h {
                Held::Data { dir, ts, data, meta } => {
                    self.on_data(dir, ts, &data, meta.as_ref(), ctx, out)
                }
                Held::Gap { dir, len } => self.on_gap(dir, len, ctx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(classify(b"PRI * HT", false), Verdict::NeedMore);
        assert_eq!(classify(PREFACE, false), Verdict::Http2);
        assert_eq!(classify(b"PO", false), Verdict::NeedMore);
        assert_eq!(
            classify(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d", false),
            Verdict::NeedMore
        );
        assert_eq!(
            classify(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\n\r\n", false),
            Verdict::Http1 { request: true }
        );
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", false),
            Verdict::Http2
        );
        assert_eq!(classify(b"CONNECT x:1 HTTP/1.1\r\n", false), Verdict::Http2);
        assert_eq!(classify(b"HTTP/1.1 200 OK\r\n", true), Verdict::Http1 { request: false });
        // A server's SETTINGS frame is HTTP/2's business.
        assert_eq!(
            classify(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64", false),
            Verdict::Http2
        );
        assert_eq!(classify(b"\x00\x00", false), Verdict::NeedMore);
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.6\r\n", false), Verdict::Http2);
        // Joined mid-stream, a whole ttrpc response tells too (sent by the server).
        let mut resp = vec![0, 0, 0, 2, 0, 0, 0, 7, 2, 0];
        resp.extend([0x0a, 0x00]);
        assert_eq!(classify(&resp, true), Verdict::Ttrpc { request: false });
        assert_eq!(classify(&resp, false), Verdict::Http2);
    }
}
