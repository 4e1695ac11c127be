//! Protocol decoders: HTTP/2, HPACK, gRPC, ttrpc, HTTP/1 and protobuf over
//! reassembled streams.
//!
//! [`Decoder`] consumes the reassembler's [`StreamEvent`]s, tells each
//! connection's protocol from its first bytes ([`detect`]) and hands out one
//! [`Record`] per message, call end or reset, in capture order across
//! connections.

pub(crate) mod cmd;
pub mod detect;
pub mod grpc;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod protobuf;
pub mod record;
pub mod ttrpc;

use crate::reassembly::{ConnId, StreamEvent};
pub use cmd::run;
use detect::Wire;
use http2::conn::Ctx;
pub use record::{Flags, HttpBody, HttpMessage, Kind, Message, Proto, Record, Summary};
use std::collections::HashMap;

/// How the decoder works.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Largest message kept for decoding; larger ones are reported by size.
    pub max_message: usize,
    /// Attach header fields to records.
    pub headers: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { max_message: 64 << 20, headers: false }
    }
}

/// Decodes the connections of one input file.
pub struct Decoder {
    pool: prost_reflect::DescriptorPool,
    opts: DecodeOptions,
    conns: HashMap<ConnId, Tracked>,
    summary: Summary,
}

/// A connection being decoded.
struct Tracked {
    wire: Wire,
    /// Capture time of its latest bytes: where the end of input ends its
    /// open calls.
    last_ts: u64,
}

impl Decoder {
    /// A decoder using `pool` for message types; an empty pool means every
    /// message is decoded raw.
    pub fn new(pool: prost_reflect::DescriptorPool, opts: DecodeOptions) -> Decoder {
        Decoder { pool, opts, conns: HashMap::new(), summary: Summary::default() }
    }

    /// Handles one event of the reassembler.
    pub fn on_event(&mut self, ev: StreamEvent<'_>, out: &mut dyn FnMut(Record)) {
        let mut ctx = Ctx { pool: &self.pool, opts: &self.opts, summary: &mut self.summary };
        match ev {
            StreamEvent::Open { conn, a, b, mid_stream, .. } => {
                ctx.summary.connections += 1;
                let wire = Wire::new(conn, a, b, mid_stream);
                self.conns.insert(conn, Tracked { wire, last_ts: 0 });
            }
            StreamEvent::Data { conn, dir, ts_ns, data, meta } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.last_ts = c.last_ts.max(ts_ns);
                    c.wire.on_data(dir, ts_ns, data, meta, &mut ctx, out);
                }
            }
            StreamEvent::Gap { conn, dir, len, .. } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.wire.on_gap(dir, len, &mut ctx);
                }
            }
            StreamEvent::Close { conn, ts_ns } => {
                if let Some(Tracked { wire: mut c, .. }) = self.conns.remove(&conn) {
                    c.finish(ts_ns, &mut ctx, out);
                    if c.is_other() {
                        ctx.summary.other_connections += 1;
                    }
                }
            }
        }
    }

    /// End of input: every open call ends (END rows flagged incomplete).
    pub fn finish(&mut self, out: &mut dyn FnMut(Record)) {
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        let mut ctx = Ctx { pool: &self.pool, opts: &self.opts, summary: &mut self.summary };
        for id in ids {
            if let Some(Tracked { wire: mut c, last_ts }) = self.conns.remove(&id) {
                c.finish(last_ts, &mut ctx, out);
                if c.is_other() {
                    ctx.summary.other_connections += 1;
                }
            }
        }
    }

    /// Counts for the end-of-file warnings, including connections still open.
    pub fn summary(&self) -> Summary {
        let mut s = self.summary.clone();
        s.unknown_header_fields +=
            self.conns.values().map(|c| c.wire.unknown_fields()).sum::<u64>();
        s
    }
}
