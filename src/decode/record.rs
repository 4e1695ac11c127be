//! The output of the decoders: one [`Record`] per message, call end or reset.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::chunk::ProcMeta;
use crate::decode::protobuf::{self, RawField};
use crate::reassembly::{ConnId, Dir};

/// Which protocol a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Grpc,
    Http2,
    /// containerd's ttrpc (containerd ↔ shims).
    Ttrpc,
    /// HTTP/1.x (the docker CLI ↔ dockerd).
    Http1,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Grpc => "grpc",
            Proto::Http2 => "http2",
            Proto::Ttrpc => "ttrpc",
            Proto::Http1 => "http1",
        }
    }

    /// Every protocol, in the order `--protocol` lists them.
    pub const ALL: [Proto; 4] = [Proto::Grpc, Proto::Http2, Proto::Ttrpc, Proto::Http1];

    /// The protocol of a name as [`Proto::as_str`] writes it.
    pub fn from_name(name: &str) -> Option<Proto> {
        Proto::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// What a record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request message (gRPC) or a request (plain HTTP/2).
    Req,
    /// A response message or response.
    Resp,
    /// The end of a call: trailers, trailers-only response, or end of input.
    End,
    /// RST_STREAM.
    Rst,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Req => "REQ",
            Kind::Resp => "RESP",
            Kind::End => "END",
            Kind::Rst => "RST",
        }
    }
}

/// The content of a record.
#[derive(Clone, Debug)]
pub enum Message {
    /// Nothing to show (END rows).
    None,
    /// Decoded with the schema.
    Proto(prost_reflect::DynamicMessage),
    /// Decoded without a schema, like `protoc --decode_raw`.
    Raw(Vec<RawField>),
    /// A one-line text: HTTP summaries, RST error codes, reasons a body was
    /// not decoded.
    Text(String),
    /// An HTTP/1 message or a chunk of a hijacked stream.
    Http(HttpMessage),
}

/// What an HTTP/1 row shows: the status of a response and its body.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMessage {
    /// Status code and reason phrase of a response.
    pub status: Option<(u16, String)>,
    pub body: HttpBody,
}

/// The body of an HTTP/1 message as shown.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpBody {
    None,
    /// A JSON body (several values, as in newline-delimited JSON, become an array).
    Json(serde_json::Value),
    /// A short text body, shown as it is.
    Text(String),
    /// Any other body, by type and size: `<application/x-tar 10240 bytes>`.
    Summary(String),
    /// Bytes of a hijacked connection: `stdin`, `stdout`, `stderr`, ... and the text.
    Stream {
        stream: &'static str,
        text: String,
    },
}

impl HttpMessage {
    /// The one-line form: `201 Created {"Id":"4f2a"}`, `stdout "hello\n"`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if let Some((code, reason)) = &self.status {
            s.push_str(&code.to_string());
            if !reason.is_empty() {
                s.push(' ');
                s.push_str(reason);
            }
        }
        let body = match &self.body {
            HttpBody::None => return s,
            HttpBody::Json(v) => v.to_string(),
            HttpBody::Text(t) => format!("{t:?}"),
            HttpBody::Summary(t) => t.clone(),
            HttpBody::Stream { stream, text } => format!("{stream} {text:?}"),
        };
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&body);
        s
    }

    /// The JSON `message` value: the body itself (JSON bodies as JSON).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.body {
            HttpBody::None => Value::Null,
            HttpBody::Json(v) => v.clone(),
            HttpBody::Text(t) | HttpBody::Summary(t) => Value::String(t.clone()),
            HttpBody::Stream { stream, text } => {
                serde_json::json!({"stream": stream, "text": text})
            }
        }
    }
}

/// Conditions worth showing next to a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u32);

impl Flags {
    /// A frame of this message was larger than the advertised SETTINGS_MAX_FRAME_SIZE.
    pub const OVERSIZED_FRAME: Flags = Flags(1);
    /// The message was larger than the per-message cap: reported by size only.
    pub const TOO_LARGE: Flags = Flags(2);
    /// Bytes of this message or its stream were lost in a capture gap.
    pub const GAP: Flags = Flags(4);
    /// Header fields referenced table entries the capture never saw.
    pub const UNKNOWN_HEADERS: Flags = Flags(8);
    /// The call had not ended when the input did.
    pub const INCOMPLETE: Flags = Flags(16);
    /// The body could not be decoded (bad compression, schema mismatch).
    pub const UNDECODABLE: Flags = Flags(32);
    /// The connection went away (GOAWAY) before the call ended.
    pub const GOAWAY: Flags = Flags(64);

    const NAMES: [(Flags, &'static str); 7] = [
        (Flags::OVERSIZED_FRAME, "oversized-frame"),
        (Flags::TOO_LARGE, "too-large"),
        (Flags::GAP, "gap"),
        (Flags::UNKNOWN_HEADERS, "unknown-headers"),
        (Flags::INCOMPLETE, "incomplete"),
        (Flags::UNDECODABLE, "undecodable"),
        (Flags::GOAWAY, "goaway"),
    ];

    pub fn contains(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }

    pub fn insert(&mut self, f: Flags) {
        self.0 |= f.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the flags set, e.g. `["gap", "too-large"]`.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES.iter().filter(|(f, _)| self.contains(*f)).map(|(_, n)| *n).collect()
    }
}

/// One decoded message, call end or reset, from the sender's point of view.
#[derive(Clone, Debug)]
pub struct Record {
    /// Capture time of the last byte of the message, in ns since the epoch.
    pub ts_ns: u64,
    pub conn: ConnId,
    pub proto: Proto,
    /// The sending process, when the capture recorded it.
    pub meta: Option<Arc<ProcMeta>>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub kind: Kind,
    pub stream: u32,
    /// gRPC or ttrpc path, HTTP/2 `:path`, or HTTP/1 `METHOD target`.
    pub method: Option<String>,
    /// Full protobuf type name, when the schema knows the method.
    pub message_type: Option<String>,
    pub message: Message,
    /// Message bytes on the wire (gRPC: the length-prefixed payload, still
    /// compressed; HTTP: body bytes).
    pub size: Option<u64>,
    /// Set on END rows when the call ended with trailers.
    pub grpc_status: Option<u32>,
    pub grpc_message: Option<String>,
    /// Set on END rows: from the first request header block to the end.
    pub duration_us: Option<u64>,
    /// Header fields of the block that opened this row (with `--headers`).
    pub headers: Option<Vec<(String, String)>>,
    pub flags: Flags,
}

/// Index of a direction in the decoders' per-direction arrays (0: `a` to `b`).
pub(crate) fn ix(d: Dir) -> usize {
    match d {
        Dir::AtoB => 0,
        Dir::BtoA => 1,
    }
}

/// Time and sender of the bytes being decoded.
#[derive(Clone)]
pub(crate) struct At {
    pub ts: u64,
    pub meta: Option<Arc<ProcMeta>>,
}

/// A connection and its two ends, which every record of it names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ends {
    pub conn: ConnId,
    pub a: SocketAddr,
    pub b: SocketAddr,
}

impl Ends {
    /// Sender and receiver of direction index `d` (see [`ix`]).
    pub fn of(&self, d: usize) -> (SocketAddr, SocketAddr) {
        if d == 0 {
            (self.a, self.b)
        } else {
            (self.b, self.a)
        }
    }

    /// A row sent in direction index `d` that reports nothing yet: the
    /// decoder fills in the method, message and what else it knows.
    pub fn record(
        &self,
        d: usize,
        proto: Proto,
        kind: Kind,
        stream: u32,
        ts_ns: u64,
        meta: Option<Arc<ProcMeta>>,
    ) -> Record {
        let (src, dst) = self.of(d);
        Record {
            ts_ns,
            conn: self.conn,
            proto,
            meta,
            src,
            dst,
            kind,
            stream,
            method: None,
            message_type: None,
            message: Message::None,
            size: None,
            grpc_status: None,
            grpc_message: None,
            duration_us: None,
            headers: None,
            flags: Flags::default(),
        }
    }
}

impl Record {
    /// Shows a protobuf body: typed through `desc` when the schema knows the
    /// message, otherwise field by field like `protoc --decode_raw`. A body
    /// the schema's type does not fit is flagged and counted undecodable.
    pub(crate) fn set_protobuf(
        &mut self,
        desc: Option<&prost_reflect::MessageDescriptor>,
        body: &[u8],
        summary: &mut Summary,
    ) {
        if let Some(desc) = desc {
            if let Some(msg) = protobuf::decode_typed(desc, body) {
                self.message = Message::Proto(msg);
                return;
            }
            summary.undecodable_messages += 1;
            self.flags.insert(Flags::UNDECODABLE);
        }
        self.message = match protobuf::decode_raw(body) {
            Some(fields) => Message::Raw(fields),
            None => Message::Text(format!("<{} bytes, not protobuf>", body.len())),
        };
    }
}

/// Counts for the end-of-file warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub connections: u64,
    pub http2_connections: u64,
    /// Connections whose HTTP/2 start was not captured.
    pub joined_mid_stream: u64,
    /// Connections of no protocol we decode (ignored).
    pub other_connections: u64,
    /// Header fields that referenced never-seen table entries.
    pub unknown_header_fields: u64,
    /// Capture gaps reported by the reassembler.
    pub gaps: u64,
    /// Bytes skipped to find the next frame boundary after gaps or at joins.
    pub resync_skipped_bytes: u64,
    /// Frames larger than the advertised SETTINGS_MAX_FRAME_SIZE.
    pub oversized_frames: u64,
    /// Header blocks that failed to decode.
    pub hpack_errors: u64,
    /// Malformed frames (bad padding, short payloads).
    pub frame_errors: u64,
    /// Messages reported by size only because of the per-message cap.
    pub too_large_messages: u64,
    /// Messages whose body could not be decompressed or decoded.
    pub undecodable_messages: u64,
    pub goaways: u64,
    pub resets: u64,
    /// Connections recognised as ttrpc.
    pub ttrpc_connections: u64,
    /// Connections recognised as HTTP/1.
    pub http1_connections: u64,
}

/// gRPC status code names (grpc/doc/statuscodes.md).
pub fn grpc_status_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    match NAMES.get(code as usize) {
        Some(n) => (*n).to_string(),
        None => format!("STATUS_{code}"),
    }
}
