//! Finding the `.proto` descriptors a compiled program carries.
//!
//! Go programs built with protobuf keep every generated file's descriptor in
//! their data, in one of two encodings:
//!
//! - gogo/protobuf and golang/protobuf v1 register a gzip-compressed
//!   `FileDescriptorProto` (`proto.RegisterFile`): a gzip member starting
//!   `1f 8b 08`, whose CRC tells us exactly where it ends.
//! - google.golang.org/protobuf keeps the raw serialized `FileDescriptorProto`
//!   (`file_*_proto_rawDesc`). Nothing marks its end, so we find its start by
//!   the `name` field every such descriptor opens with (`0a <len> "….proto"`)
//!   and walk its fields while they look like a `FileDescriptorProto`'s.
//!
//! The whole file is scanned, not only `.rodata`/`.data`, so that any
//! container format (ELF, Mach-O, a core dump) works; every candidate must
//! decode and pass [`is_sane`] before it counts.

use std::collections::HashSet;
use std::io::Read;
use std::sync::LazyLock;

use flate2::read::GzDecoder;
use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto};
use regex::bytes::Regex;

use super::SchemaError;

/// Largest descriptor we accept, compressed or not; Kubernetes' core API, the
/// largest we know of, is about 70 kB.
const MAX_DESCRIPTOR: usize = 16 << 20;

/// Longest file name we look for in front of a raw descriptor.
const MAX_NAME: usize = 1024;

/// Start of a gzip member using deflate, the only method gzip defines.
static GZIP_MAGIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u)\x1f\x8b\x08").expect("gzip magic regex"));

/// The end of a `.proto` file name.
static PROTO_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u)\.proto").expect(".proto regex"));

/// How a descriptor was stored in the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// A gzip-compressed `FileDescriptorProto` (gogo, golang/protobuf v1).
    Gzip,
    /// A raw serialized `FileDescriptorProto` (google.golang.org/protobuf).
    Raw,
}

/// One descriptor found in a binary.
#[derive(Clone, Debug)]
pub struct Found {
    /// Byte offset of its first byte in the binary.
    pub offset: usize,
    pub encoding: Encoding,
    pub file: FileDescriptorProto,
}

/// Every distinct descriptor in `bytes`, in the order found (gzip ones first).
pub fn scan(bytes: &[u8]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let gzip = GZIP_MAGIC
        .find_iter(bytes)
        .filter_map(|m| gunzip_at(bytes, m.start()).map(|file| (m.start(), Encoding::Gzip, file)));
    let raw = raw_starts(bytes)
        .into_iter()
        .filter_map(|start| raw_at(bytes, start).map(|file| (start, Encoding::Raw, file)));
    for (offset, encoding, file) in gzip.chain(raw) {
        if seen.insert(file.encode_to_vec()) {
            log::trace!("{encoding:?} descriptor {} at offset {offset:#x}", file.name());
            found.push(Found { offset, encoding, file });
        }
    }
    found
}

/// The descriptors in `bytes`, or an error saying there are none.
pub fn extract_from_binary(bytes: &[u8]) -> Result<Vec<FileDescriptorProto>, SchemaError> {
    let found = scan(bytes);
    if found.is_empty() {
        return Err(SchemaError::NoDescriptors);
    }
    log::debug!(
        "found {} descriptors ({} gzip, {} raw)",
        found.len(),
        found.iter().filter(|f| f.encoding == Encoding::Gzip).count(),
        found.iter().filter(|f| f.encoding == Encoding::Raw).count()
    );
    Ok(found.into_iter().map(|f| f.file).collect())
}

/// Decompresses the gzip member starting at `offset` and reads it as a
/// descriptor. `None` for anything else: not gzip, a bad CRC, too large, not
/// a sane `FileDescriptorProto`.
fn gunzip_at(bytes: &[u8], offset: usize) -> Option<FileDescriptorProto> {
    let input = bytes.get(offset..)?;
    let mut out = Vec::new();
    let mut reader = GzDecoder::new(input).take(MAX_DESCRIPTOR as u64 + 1);
    if let Err(e) = reader.read_to_end(&mut out) {
        log::trace!("gzip candidate at {offset:#x}: {e}");
        return None;
    }
    if out.len() > MAX_DESCRIPTOR {
        log::debug!("gzip stream at {offset:#x} inflates beyond {MAX_DESCRIPTOR} bytes, skipped");
        return None;
    }
    match FileDescriptorProto::decode(out.as_slice()) {
        Ok(file) if is_sane(&file) => Some(file),
        Ok(_) => {
            log::debug!("gzip stream at {offset:#x} is not a plausible FileDescriptorProto");
            None
        }
        Err(e) => {
            log::debug!("gzip stream at {offset:#x} is not a FileDescriptorProto: {e}");
            None
        }
    }
}

/// Offsets of every `0a <varint len> <name ending in .proto>` in `bytes`: the
/// possible starts of raw descriptors.
fn raw_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    for m in PROTO_SUFFIX.find_iter(bytes) {
        let end = m.end();
        // Walk back over name characters; each length is a possible name.
        for len in 1..=MAX_NAME.min(end) {
            let first = end - len;
            if !bytes.get(first).is_some_and(|&c| is_name_byte(c)) {
                break;
            }
            if len < 7 {
                continue; // shorter than "a.proto"
            }
            if let Some(tag_at) = name_tag_before(bytes, first, len) {
                starts.push(tag_at);
            }
        }
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// If the bytes before `first` are the tag of field 1 and the varint `len`,
/// the offset of that tag.
fn name_tag_before(bytes: &[u8], first: usize, len: usize) -> Option<usize> {
    let mut varint = Vec::with_capacity(2);
    prost::encoding::encode_varint(len as u64, &mut varint);
    let tag_at = first.checked_sub(varint.len() + 1)?;
    let prefix = bytes.get(tag_at..first)?;
    (prefix.first() == Some(&0x0a) && prefix.get(1..) == Some(varint.as_slice())).then_some(tag_at)
}

/// Characters we accept in a `.proto` file name.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/' | b'+')
}

/// Why walking a raw descriptor's fields stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// The next bytes are not a `FileDescriptorProto` field in order: the
    /// descriptor ended.
    End,
    /// A field claims more bytes than the input holds.
    Truncated,
}

/// Walks the fields of a `FileDescriptorProto` serialized at `start`, and
/// returns the offset after each field, and why the walk stopped.
///
/// protoc and protoc-gen-go write fields in increasing number, so a field
/// number going down, a singular field repeating, or a wire type that field
/// cannot have marks the end. What follows a descriptor in the binary can
/// still pass for one more field; [`raw_at`] handles that.
fn walk_fields(bytes: &[u8], start: usize) -> (Vec<usize>, Stop) {
    let mut ends = Vec::new();
    let mut pos = start;
    let mut last = 0u64;
    loop {
        let Some((tag, after_tag)) = varint(bytes, pos) else {
            return (ends, if pos >= bytes.len() { Stop::End } else { Stop::Truncated });
        };
        let (field, wire) = (tag >> 3, tag & 7);
        let repeated = matches!(field, 3..=7 | 10 | 11);
        let wire_ok = match field {
            1..=9 | 12 | 13 => wire == 2,
            10 | 11 => wire == 0 || wire == 2,
            14 => wire == 0,
            _ => false,
        };
        if !wire_ok || field < last || (field == last && !repeated) {
            return (ends, Stop::End);
        }
        let next = if wire == 0 {
            varint(bytes, after_tag).map(|(_, n)| n)
        } else {
            match varint(bytes, after_tag) {
                Some((len, body)) if len <= MAX_DESCRIPTOR as u64 => {
                    let end = body + len as usize;
                    if end > bytes.len() {
                        return (ends, Stop::Truncated);
                    }
                    Some(end)
                }
                Some(_) => return (ends, Stop::End),
                None => None,
            }
        };
        let Some(next) = next else {
            return (ends, Stop::Truncated);
        };
        if next - start > MAX_DESCRIPTOR {
            return (ends, Stop::End);
        }
        ends.push(next);
        pos = next;
        last = field;
    }
}

/// Reads a protobuf varint at `pos`: its value and the offset after it.
fn varint(bytes: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *bytes.get(pos + i)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, pos + i + 1));
        }
    }
    None
}

/// The raw descriptor starting at `start`, if there is a sane one.
fn raw_at(bytes: &[u8], start: usize) -> Option<FileDescriptorProto> {
    let (ends, stop) = walk_fields(bytes, start);
    if stop == Stop::Truncated {
        log::debug!("raw descriptor at {start:#x} is truncated, skipped");
        return None;
    }
    // The last field may be bytes that only look like one: allow dropping
    // it, but no more, so a corrupt descriptor is not cut to a plausible
    // prefix.
    for &end in ends.iter().rev().take(2) {
        let body = bytes.get(start..end)?;
        if let Ok(file) = FileDescriptorProto::decode(body) {
            if is_sane(&file) && !is_bare_name(&file) {
                return Some(file);
            }
        }
    }
    log::debug!("bytes at {start:#x} start like a descriptor but do not decode as one");
    None
}

/// A descriptor holding nothing but its name: more likely a string that
/// happens to end in `.proto` than a file anyone generated code from.
fn is_bare_name(file: &FileDescriptorProto) -> bool {
    let bare = FileDescriptorProto { name: file.name.clone(), ..Default::default() };
    *file == bare
}

/// Whether a decoded descriptor looks like one protoc made, not like bytes
/// that happened to decode.
pub(crate) fn is_sane(file: &FileDescriptorProto) -> bool {
    let name = file.name();
    name.len() > ".proto".len()
        && name.len() <= MAX_NAME
        && name.ends_with(".proto")
        && name.bytes().all(is_name_byte)
        && (file.package().is_empty() || is_dotted(file.package()))
        && matches!(file.syntax(), "" | "proto2" | "proto3" | "editions")
        && file.dependency.iter().all(|d| d.ends_with(".proto") && d.bytes().all(is_name_byte))
        && file
            .public_dependency
            .iter()
            .chain(&file.weak_dependency)
            .all(|&i| usize::try_from(i).is_ok_and(|i| i < file.dependency.len()))
        && file.message_type.iter().all(message_is_sane)
        && file.enum_type.iter().all(enum_is_sane)
        && file.extension.iter().all(|f| is_ident(f.name()))
        && file.service.iter().all(|s| {
            is_ident(s.name())
                && s.method.iter().all(|m| {
                    is_ident(m.name())
                        && is_type_name(m.input_type())
                        && is_type_name(m.output_type())
                })
        })
}

fn message_is_sane(m: &DescriptorProto) -> bool {
    is_ident(m.name())
        && m.field.iter().all(|f| {
            is_ident(f.name())
                && (1..=536_870_911).contains(&f.number())
                && f.r#type.is_none_or(|t| (1..=18).contains(&t))
                && f.label.is_none_or(|l| (1..=3).contains(&l))
                && (f.type_name.is_none() || is_type_name(f.type_name()))
        })
        && m.nested_type.iter().all(message_is_sane)
        && m.enum_type.iter().all(enum_is_sane)
}

fn enum_is_sane(e: &EnumDescriptorProto) -> bool {
    is_ident(e.name()) && e.value.iter().all(|v| is_ident(v.name()))
}

/// A protobuf identifier: a letter or `_`, then letters, digits and `_`.
fn is_ident(s: &str) -> bool {
    let mut chars = s.bytes();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Identifiers joined by dots.
fn is_dotted(s: &str) -> bool {
    s.split('.').all(is_ident)
}

/// A type reference: dotted identifiers, fully qualified with a leading dot
/// or relative.
fn is_type_name(s: &str) -> bool {
    is_dotted(s.strip_prefix('.').unwrap_or(s))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use prost_types::{
        DescriptorProto, FieldDescriptorProto, MethodDescriptorProto, ServiceDescriptorProto,
    };

    use super::*;

    /// A small descriptor with a message and a service.
    pub(crate) fn sample(name: &str, package: &str, message: &str) -> FileDescriptorProto {
        FileDescriptorProto {
            name: Some(name.into()),
            package: Some(package.into()),
            message_type: vec![DescriptorProto {
                name: Some(message.into()),
                field: vec![FieldDescriptorProto {
                    name: Some("id".into()),
                    number: Some(1),
                    r#type: Some(9),
                    label: Some(1),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("Svc".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Call".into()),
                    input_type: Some(format!(".{package}.{message}")),
                    output_type: Some(format!(".{package}.{message}")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        }
    }

    /// A descriptor large and repetitive enough that deflate compresses it
    /// (a tiny one goes into a stored block, where its raw bytes stay visible).
    fn big_sample() -> FileDescriptorProto {
        let mut f = sample("big.proto", "p.big", "Big");
        for n in 2..40 {
            let mut field = f.message_type[0].field[0].clone();
            field.name = Some(format!("field_number_{n}"));
            field.number = Some(n);
            f.message_type[0].field.push(field);
        }
        f
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Deterministic junk (xorshift), with a few bytes that look like the
    /// starts of what we search for.
    pub(crate) fn junk(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for (i, chunk) in out.chunks_mut(97).enumerate() {
            match i % 3 {
                0 if chunk.len() > 3 => chunk[..3].copy_from_slice(&[0x1f, 0x8b, 0x08]),
                1 if chunk.len() > 9 => chunk[..9].copy_from_slice(b"\x0a\x07x.proto"),
                _ => {}
            }
        }
        out
    }

    fn names(files: &[FileDescriptorProto]) -> Vec<&str> {
        let mut n: Vec<&str> = files.iter().map(|f| f.name()).collect();
        n.sort();
        n
    }

    #[test]
    fn finds_both_encodings_in_junk() {
        let a = sample("a/one.proto", "pkg.one", "One");
        let b = sample("b/two.proto", "pkg.two", "Two");
        let mut bin = junk(5000, 1);
        bin.extend(gzip(&a.encode_to_vec()));
        bin.extend(junk(3000, 2));
        bin.extend(b.encode_to_vec());
        bin.extend(junk(3000, 3));
        let found = scan(&bin);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].encoding, Encoding::Gzip);
        assert_eq!(found[0].file, a);
        assert_eq!(found[1].encoding, Encoding::Raw);
        assert_eq!(found[1].file, b);
        assert_eq!(found[1].offset, 5000 + gzip(&a.encode_to_vec()).len() + 3000);
    }

    #[test]
    fn adjacent_raw_descriptors_are_separated() {
        // Go places string data back to back: two descriptors with nothing between.
        let a = sample("a.proto", "p", "A");
        let b = sample("b.proto", "p", "B");
        let mut bin = a.encode_to_vec();
        bin.extend(b.encode_to_vec());
        bin.extend(b"\x62\x06proto3 trailing");
        let files = extract_from_binary(&bin).unwrap();
        assert_eq!(names(&files), ["a.proto", "b.proto"]);
        assert!(files.contains(&a) && files.contains(&b));
    }

    #[test]
    fn long_names_use_two_byte_lengths() {
        let name = format!("{}/x.proto", "d".repeat(150));
        let a = sample(&name, "p", "A");
        let mut bin = junk(100, 4);
        bin.extend(a.encode_to_vec());
        bin.extend(junk(100, 5));
        assert_eq!(extract_from_binary(&bin).unwrap(), vec![a]);
    }

    #[test]
    fn duplicates_are_reported_once() {
        let a = sample("a.proto", "p", "A");
        let gz = gzip(&a.encode_to_vec());
        let mut bin = gz.clone();
        bin.extend(junk(64, 6));
        bin.extend(gz);
        bin.extend(junk(64, 7));
        bin.extend(a.encode_to_vec());
        assert_eq!(extract_from_binary(&bin).unwrap(), vec![a]);
    }

    #[test]
    fn truncated_descriptors_are_skipped() {
        let a = big_sample();
        let gz = gzip(&a.encode_to_vec());
        let raw = a.encode_to_vec();
        // A gzip member cut before its CRC, and a raw descriptor cut mid-field
        // at the end of the file.
        let mut bin = gz[..gz.len() - 6].to_vec();
        bin.extend(junk(64, 8));
        bin.extend(&raw[..raw.len() - 3]);
        let found = scan(&bin);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn corrupt_descriptors_are_skipped() {
        let a = sample("a.proto", "p", "A");
        let mut gz = gzip(&big_sample().encode_to_vec());
        let mid = gz.len() / 2;
        gz[mid] ^= 0x55; // the CRC no longer matches (or inflating fails)
        let mut raw = a.encode_to_vec();
        // Make the message's name an invalid identifier.
        let at = raw.windows(1).position(|w| w == b"A").unwrap();
        raw[at] = b'-';
        let mut bin = gz;
        bin.extend(junk(64, 9));
        bin.extend(raw);
        bin.extend(junk(64, 10));
        let found = scan(&bin);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn gzip_of_something_else_is_skipped() {
        let mut bin = gzip(b"just some text, not a descriptor");
        bin.extend(junk(200, 11));
        assert!(scan(&bin).is_empty());
    }

    #[test]
    fn no_descriptors_is_a_clear_error() {
        let err = extract_from_binary(&junk(100_000, 12)).unwrap_err();
        assert!(err.to_string().contains("no protobuf descriptors"), "{err}");
        assert!(extract_from_binary(&[]).is_err());
    }

    #[test]
    fn insane_names_are_rejected() {
        let mut f = sample("a.proto", "p", "A");
        assert!(is_sane(&f));
        f.package = Some("bad package".into());
        assert!(!is_sane(&f));
        let mut f = sample("a.proto", "p", "A");
        f.syntax = Some("proto9".into());
        assert!(!is_sane(&f));
        assert!(!is_sane(&sample("a.txt", "p", "A")));
        assert!(!is_sane(&sample("a.proto", "p", "1A")));
    }
}
