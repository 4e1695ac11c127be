//! `--format json`: one object per record, one record per line.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Map, Value};

use crate::decode::protobuf;
use crate::decode::{Kind, Message, Record};

/// Writes JSON lines with exactly the documented keys.
pub struct JsonRenderer<W: Write> {
    out: W,
    headers: bool,
}

impl<W: Write> JsonRenderer<W> {
    /// `headers` adds a `headers` key (`--headers`).
    pub fn new(out: W, headers: bool) -> Self {
        JsonRenderer { out, headers }
    }

    pub fn render(&mut self, r: &Record) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &to_json(r, self.headers))?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// RFC 3339 with nanoseconds, UTC.
pub fn rfc3339(ts_ns: u64) -> String {
    let secs = (ts_ns / 1_000_000_000) as i64;
    let nanos = (ts_ns % 1_000_000_000) as u32;
    match DateTime::from_timestamp(secs, nanos) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        None => ts_ns.to_string(),
    }
}

/// The JSON object of one record.
pub fn to_json(r: &Record, with_headers: bool) -> Value {
    let meta = r.meta.as_deref();
    let mut o = Map::new();
    o.insert("ts".into(), json!(rfc3339(r.ts_ns)));
    o.insert("conn".into(), json!(r.conn.0.to_string()));
    o.insert("proto".into(), json!(r.proto.as_str()));
    o.insert("comm".into(), json!(meta.map(|m| m.comm.clone())));
    o.insert("pid".into(), json!(meta.map(|m| m.pid)));
    o.insert("tid".into(), json!(meta.map(|m| m.tid)));
    o.insert("peer_pid".into(), json!(meta.and_then(|m| m.peer_pid)));
    o.insert("src".into(), json!(r.src.to_string()));
    o.insert("dst".into(), json!(r.dst.to_string()));
    o.insert("type".into(), json!(r.kind.as_str()));
    o.insert("stream".into(), json!(r.stream));
    o.insert("method".into(), json!(r.method));
    o.insert("message_type".into(), json!(r.message_type));
    let message = match &r.message {
        Message::None => Value::Null,
        Message::Proto(m) => protobuf::to_json(m),
        Message::Raw(f) => protobuf::raw_to_json(f),
        Message::Text(t) => json!(t),
        Message::Http(h) => h.to_json(),
    };
    o.insert("message".into(), message);
    o.insert("size".into(), json!(r.size));
    if let Message::Http(h) = &r.message {
        o.insert("http_status".into(), json!(h.status.as_ref().map(|(code, _)| code)));
    }
    if r.kind == Kind::End {
        o.insert("grpc_status".into(), json!(r.grpc_status));
        o.insert("grpc_message".into(), json!(r.grpc_message));
        o.insert("duration_us".into(), json!(r.duration_us));
    }
    if with_headers {
        let h: Vec<Value> = r.headers.iter().flatten().map(|(k, v)| json!([k, v])).collect();
        o.insert("headers".into(), Value::Array(h));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    }
}
