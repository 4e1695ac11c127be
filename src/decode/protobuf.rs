//! Protobuf message bodies: schema decoding with prost-reflect, a schema-less
//! decode like `protoc --decode_raw`, and the two renderings (a compact one-line
//! form for the table, the protobuf JSON mapping for JSON lines).
//!
//! `google.protobuf.Any` is expanded by hand rather than through prost-reflect's
//! serializer: containerd writes type URLs without a '/' (e.g.
//! `containerd.events.TaskExit`), which that serializer rejects for the whole
//! message.

use std::fmt::Write as _;

use base64::Engine as _;
use prost_reflect::{DynamicMessage, Kind as FieldKind, MapKey, ReflectMessage, Value};
use serde_json::{json, Map as JsonMap, Value as Json};

/// Nesting depth at which the raw decoder stops guessing nested messages.
const MAX_RAW_DEPTH: usize = 32;

/// Bytes fields longer than this are summarized by length in the compact form.
const MAX_INLINE_BYTES: usize = 64;

/// One field of a message decoded without a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct RawField {
    pub number: u32,
    pub value: RawValue,
}

/// A field value decoded without a schema; length-delimited values are guessed
/// to be a string (printable UTF-8), else a nested message, else bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum RawValue {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    String(String),
    Bytes(Vec<u8>),
    Message(Vec<RawField>),
    Group(Vec<RawField>),
}

/// Decodes a message without a schema; `None` when it is not valid protobuf.
pub fn decode_raw(buf: &[u8]) -> Option<Vec<RawField>> {
    let mut pos = 0;
    let fields = raw_fields(buf, &mut pos, 0, None)?;
    (pos == buf.len()).then_some(fields)
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn raw_fields(
    buf: &[u8],
    pos: &mut usize,
    depth: usize,
    group: Option<u32>,
) -> Option<Vec<RawField>> {
    if depth > MAX_RAW_DEPTH {
        return None;
    }
    let mut out = Vec::new();
    while *pos < buf.len() {
        let key = varint(buf, pos)?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0 && *n < 1 << 29)?;
        let value = match key & 7 {
            0 => RawValue::Varint(varint(buf, pos)?),
            1 => {
                let b = buf.get(*pos..*pos + 8)?;
                *pos += 8;
                RawValue::Fixed64(u64::from_le_bytes(b.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(varint(buf, pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let b = buf.get(*pos..end)?;
                *pos = end;
                guess_bytes(b, depth)
            }
            3 => RawValue::Group(raw_fields(buf, pos, depth + 1, Some(number))?),
            4 => {
                return (group == Some(number)).then_some(out);
            }
            5 => {
                let b = buf.get(*pos..*pos + 4)?;
                *pos += 4;
                RawValue::Fixed32(u32::from_le_bytes(b.try_into().ok()?))
            }
            _ => return None,
        };
        out.push(RawField { number, value });
    }
    // A group must be closed by its end tag.
    group.is_none().then_some(out)
}

fn guess_bytes(b: &[u8], depth: usize) -> RawValue {
    if let Ok(s) = std::str::from_utf8(b) {
        if is_printable(s) {
            return RawValue::String(s.to_string());
        }
    }
    if !b.is_empty() {
        let mut p = 0;
        if let Some(fields) = raw_fields(b, &mut p, depth + 1, None) {
            if p == b.len() {
                return RawValue::Message(fields);
            }
        }
    }
    RawValue::Bytes(b.to_vec())
}

fn is_printable(s: &str) -> bool {
    s.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// Decodes with the schema; `None` if the bytes do not fit the type.
pub fn decode_typed(desc: &prost_reflect::MessageDescriptor, buf: &[u8]) -> Option<DynamicMessage> {
    DynamicMessage::decode(desc.clone(), buf).ok()
}

// ----- compact one-line rendering -----

/// `TypeName{field:value, nested:{...}}` for a schema-decoded message.
pub fn compact(msg: &DynamicMessage) -> String {
    let mut s = String::new();
    s.push_str(msg.descriptor().name());
    compact_body(msg, &mut s);
    s
}

fn compact_body(msg: &DynamicMessage, s: &mut String) {
    if let Some(inner) = expand_any(msg) {
        s.push('{');
        match inner {
            Ok(m) => {
                s.push_str(m.descriptor().name());
                compact_body(&m, s);
            }
            Err(url) => {
                let _ = write!(s, "{url:?}");
            }
        }
        s.push('}');
        return;
    }
    s.push('{');
    let mut first = true;
    for (field, value) in msg.fields() {
        if !first {
            s.push_str(", ");
        }
        first = false;
        s.push_str(field.name());
        s.push(':');
        compact_value(&field.kind(), value, s);
    }
    for f in msg.unknown_fields() {
        if !first {
            s.push_str(", ");
        }
        first = false;
        let _ = write!(s, "{}:?", f.number());
    }
    s.push('}');
}

fn compact_value(kind: &FieldKind, v: &Value, s: &mut String) {
    match v {
        Value::Bool(b) => {
            let _ = write!(s, "{b}");
        }
        Value::I32(n) => {
            let _ = write!(s, "{n}");
        }
        Value::I64(n) => {
            let _ = write!(s, "{n}");
        }
        Value::U32(n) => {
            let _ = write!(s, "{n}");
        }
        Value::U64(n) => {
            let _ = write!(s, "{n}");
        }
        Value::F32(n) => {
            let _ = write!(s, "{n}");
        }
        Value::F64(n) => {
            let _ = write!(s, "{n}");
        }
        Value::String(t) => {
            let _ = write!(s, "{t:?}");
        }
        Value::Bytes(b) => compact_bytes(b, s),
        Value::EnumNumber(n) => match kind {
            FieldKind::Enum(e) => match e.get_value(*n) {
                Some(ev) => s.push_str(ev.name()),
                None => {
                    let _ = write!(s, "{n}");
                }
            },
            _ => {
                let _ = write!(s, "{n}");
            }
        },
        Value::Message(m) => compact_body(m, s),
        Value::List(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                compact_value(kind, item, s);
            }
            s.push(']');
        }
        Value::Map(map) => {
            let vkind = match kind {
                FieldKind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            s.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                compact_key(k, s);
                s.push(':');
                compact_value(&vkind, v, s);
            }
            s.push('}');
        }
    }
}

fn compact_key(k: &MapKey, s: &mut String) {
    let _ = match k {
        MapKey::Bool(b) => write!(s, "{b}"),
        MapKey::I32(n) => write!(s, "{n}"),
        MapKey::I64(n) => write!(s, "{n}"),
        MapKey::U32(n) => write!(s, "{n}"),
        MapKey::U64(n) => write!(s, "{n}"),
        MapKey::String(t) => write!(s, "{t:?}"),
    };
}

fn compact_bytes(b: &[u8], s: &mut String) {
    match std::str::from_utf8(b) {
        Ok(t) if is_printable(t) && b.len() <= MAX_INLINE_BYTES => {
            let _ = write!(s, "b{t:?}");
        }
        _ => {
            let _ = write!(s, "<{} bytes>", b.len());
        }
    }
}

/// `{1:"Clement", 2:{3:5}}` for a raw-decoded message.
pub fn compact_raw(fields: &[RawField]) -> String {
    let mut s = String::new();
    compact_raw_into(fields, &mut s);
    s
}

fn compact_raw_into(fields: &[RawField], s: &mut String) {
    s.push('{');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}:", f.number);
        match &f.value {
            RawValue::Varint(n) | RawValue::Fixed64(n) => {
                let _ = write!(s, "{n}");
            }
            RawValue::Fixed32(n) => {
                let _ = write!(s, "{n}");
            }
            RawValue::String(t) => {
                let _ = write!(s, "{t:?}");
            }
            RawValue::Bytes(b) => compact_bytes(b, s),
            RawValue::Message(m) | RawValue::Group(m) => compact_raw_into(m, s),
        }
    }
    s.push('}');
}

// ----- JSON -----

/// The protobuf JSON mapping of a message, with `Any` expanded whatever its
/// type URL looks like.
pub fn to_json(msg: &DynamicMessage) -> Json {
    if let Some(inner) = expand_any(msg) {
        let url = any_url(msg);
        return match inner {
            Ok(m) => {
                let body = to_json(&m);
                let mut obj = JsonMap::new();
                obj.insert("@type".into(), Json::String(url));
                match body {
                    Json::Object(fields) if !is_wkt(&m) => obj.extend(fields),
                    other => {
                        obj.insert("value".into(), other);
                    }
                }
                Json::Object(obj)
            }
            Err(url) => {
                let value = msg.get_field_by_number(2).and_then(|v| match v.as_ref() {
                    Value::Bytes(b) => Some(b64(b)),
                    _ => None,
                });
                json!({"@type": url, "value": value})
            }
        };
    }
    if is_wkt(msg) {
        // Well-known types other than Any have special mappings (Timestamp,
        // Duration, Struct, wrappers) and hold no Any: prost-reflect knows them.
        if let Ok(v) = serde_json::to_value(msg) {
            return v;
        }
    }
    let mut obj = JsonMap::new();
    for (field, value) in msg.fields() {
        obj.insert(field.json_name().to_string(), json_value(&field.kind(), value));
    }
    Json::Object(obj)
}

fn is_wkt(msg: &DynamicMessage) -> bool {
    msg.descriptor().full_name().starts_with("google.protobuf.")
}

fn json_value(kind: &FieldKind, v: &Value) -> Json {
    match v {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => json!(n),
        Value::U32(n) => json!(n),
        // 64-bit integers are strings in the protobuf JSON mapping.
        Value::I64(n) => Json::String(n.to_string()),
        Value::U64(n) => Json::String(n.to_string()),
        Value::F32(n) => float(*n as f64),
        Value::F64(n) => float(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(b64(b)),
        Value::EnumNumber(n) => match kind {
            FieldKind::Enum(e) => match e.get_value(*n) {
                Some(ev) => Json::String(ev.name().to_string()),
                None => json!(n),
            },
            _ => json!(n),
        },
        Value::Message(m) => to_json(m),
        Value::List(items) => Json::Array(items.iter().map(|i| json_value(kind, i)).collect()),
        Value::Map(map) => {
            let vkind = match kind {
                FieldKind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            let mut obj = JsonMap::new();
            for (k, v) in map {
                let key = match k {
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                    MapKey::String(s) => s.clone(),
                };
                obj.insert(key, json_value(&vkind, v));
            }
            Json::Object(obj)
        }
    }
}

fn float(f: f64) -> Json {
    if f.is_nan() {
        Json::String("NaN".into())
    } else if f.is_infinite() {
        Json::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        json!(f)
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Raw decode under `"@raw"`: field numbers as keys, repeated numbers as arrays.
pub fn raw_to_json(fields: &[RawField]) -> Json {
    json!({ "@raw": raw_object(fields) })
}

fn raw_object(fields: &[RawField]) -> Json {
    let mut obj = JsonMap::new();
    for f in fields {
        let v = match &f.value {
            RawValue::Varint(n) | RawValue::Fixed64(n) => json!(n),
            RawValue::Fixed32(n) => json!(n),
            RawValue::String(s) => Json::String(s.clone()),
            RawValue::Bytes(b) => Json::String(b64(b)),
            RawValue::Message(m) | RawValue::Group(m) => raw_object(m),
        };
        let key = f.number.to_string();
        match obj.get_mut(&key) {
            Some(Json::Array(list)) => list.push(v),
            Some(prev) => {
                let first = prev.take();
                *prev = Json::Array(vec![first, v]);
            }
            None => {
                obj.insert(key, v);
            }
        }
    }
    Json::Object(obj)
}

// ----- Any -----

fn any_url(msg: &DynamicMessage) -> String {
    match msg.get_field_by_number(1).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// For a `google.protobuf.Any`: the embedded message when the pool knows its
/// type (`Ok`), or the type URL (`Err`). `None` for any other message.
fn expand_any(msg: &DynamicMessage) -> Option<Result<DynamicMessage, String>> {
    if msg.descriptor().full_name() != "google.protobuf.Any" {
        return None;
    }
    let url = any_url(msg);
    // "type.googleapis.com/pkg.Type", or containerd's bare "pkg.Type".
    let name = url.rsplit('/').next().unwrap_or(&url);
    let pool = msg.descriptor().parent_pool().clone();
    let Some(desc) = pool.get_message_by_name(name) else {
        return Some(Err(url));
    };
    let bytes = match msg.get_field_by_number(2).as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    Some(DynamicMessage::decode(desc, bytes).map_err(|_| url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_string_nested_and_numbers() {
        // {1:"Clement", 2:{3:150}, 4: fixed32 1}
        let buf = [
            0x0a, 7, b'C', b'l', b'e', b'm', b'e', b'n', b't', 0x12, 3, 0x18, 0x96, 0x01, 0x25, 1,
            0, 0, 0,
        ];
        let f = decode_raw(&buf).unwrap();
        assert_eq!(compact_raw(&f), r#"{1:"Clement", 2:{3:150}, 4:1}"#);
        let j = raw_to_json(&f);
        assert_eq!(j["@raw"]["1"], "Clement");
        assert_eq!(j["@raw"]["2"]["3"], 150);
    }

    #[test]
    fn raw_rejects_garbage_and_keeps_binary_as_bytes() {
        assert!(decode_raw(&[0x0a, 5, 1]).is_none());
        assert!(decode_raw(&[0x07]).is_none());
        let f = decode_raw(&[0x0a, 2, 0xff, 0x00]).unwrap();
        assert_eq!(f[0].value, RawValue::Bytes(vec![0xff, 0]));
        let j = raw_to_json(&decode_raw(&[0x08, 1, 0x08, 2]).unwrap());
        assert_eq!(j["@raw"]["1"], json!([1, 2]));
    }

    #[test]
    fn raw_groups() {
        // field 1 start group, field 2 varint 5, field 1 end group
        let f = decode_raw(&[0x0b, 0x10, 5, 0x0c]).unwrap();
        assert_eq!(
            f[0].value,
            RawValue::Group(vec![RawField { number: 2, value: RawValue::Varint(5) }])
        );
        assert!(decode_raw(&[0x0b, 0x10, 5]).is_none());
    }
}
