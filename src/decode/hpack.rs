//! HPACK (RFC 7541) header block decoding for one direction of a connection.
//!
//! The table work and Huffman decoding are httlib-hpack's. It is fast (about 40×
//! loona-hpack on the hpack-test-case corpus) but trusts its input: a block cut
//! short panics inside it, and it accepts Huffman padding that is not a prefix of
//! EOS and table size updates after a field. So every block is first walked here
//! ([`check_block`]): the walk checks the framing of every representation
//! (integers, string lengths, update placement and bound) before httlib-hpack sees
//! it, and afterwards each Huffman string is re-encoded and compared with the wire
//! bytes, which rejects any padding other than the canonical EOS prefix.
//!
//! Captures joined mid-connection reference dynamic-table entries that were
//! inserted before the capture started. The decoder then starts with the table
//! filled with placeholder entries; a field that resolves to one is shown as
//! `<unknown #N>` (N = its index when the capture joined) and counted.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Default SETTINGS_HEADER_TABLE_SIZE (RFC 7540 §6.5.2).
pub const DEFAULT_TABLE_SIZE: u32 = 4096;

/// Largest integer a representation may carry; larger is treated as corrupt.
/// (httlib-hpack reads at most 5 octets into a u32 without overflow checks.)
const MAX_INT: u32 = 1 << 24;

/// First bytes of the name of a placeholder entry.
const PLACEHOLDER_TAG: &[u8; 2] = b"\0?";

/// Why a header block could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a representation at offset {0}")]
    Truncated(usize),
    #[error("integer too large at offset {0}")]
    IntegerTooLarge(usize),
    #[error("table size update after a header field at offset {0}")]
    MisplacedSizeUpdate(usize),
    #[error("table size update to {size} above the allowed {max}")]
    SizeUpdateTooLarge { size: u32, max: u32 },
    #[error("invalid table index {0}")]
    InvalidIndex(u32),
    #[error("invalid huffman string at offset {0}")]
    BadHuffman(usize),
    #[error("header block rejected: {0}")]
    Rejected(String),
}

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// The HPACK decoding context of one direction of one connection.
pub struct HeaderDecoder {
    inner: httlib_hpack::Decoder<'static>,
    /// SETTINGS_HEADER_TABLE_SIZE in force (the bound for size updates).
    max_allowed: u32,
    /// Whether the table holds placeholders for entries never seen.
    joined: bool,
    /// Fields that resolved to a placeholder, over the decoder's life.
    pub unknown_fields: u64,
    /// Panics caught inside httlib-hpack (should stay 0: the walk prevents them).
    pub caught_panics: u64,
    scratch: Vec<u8>,
    out: Vec<(Vec<u8>, Vec<u8>, u8)>,
    huffman: Vec<HuffString>,
}

/// A Huffman-coded string of the block, by field number and position.
struct HuffString {
    field: usize,
    is_name: bool,
    range: Range<usize>,
}

impl HeaderDecoder {
    /// A decoder for a connection whose start was captured.
    pub fn new(max_table_size: u32) -> HeaderDecoder {
        HeaderDecoder {
            inner: httlib_hpack::Decoder::with_dynamic_size(max_table_size),
            max_allowed: max_table_size,
            joined: false,
            unknown_fields: 0,
            caught_panics: 0,
            scratch: Vec::new(),
            out: Vec::new(),
            huffman: Vec::new(),
        }
    }

    /// A decoder for a connection joined in the middle: the dynamic table is
    /// filled with placeholders standing for the entries that were never seen.
    pub fn joined(max_table_size: u32) -> HeaderDecoder {
        let mut d = HeaderDecoder::new(max_table_size);
        d.fill_placeholders();
        d
    }

    /// Forgets the table (after a gap or a decoding error, its content is
    /// suspect) and starts over as if joined mid-stream.
    pub fn reset_unknown(&mut self) {
        let unknown = self.unknown_fields;
        let panics = self.caught_panics;
        *self = HeaderDecoder::joined(self.max_allowed);
        self.unknown_fields = unknown;
        self.caught_panics = panics;
    }

    /// Applies a SETTINGS_HEADER_TABLE_SIZE sent by the peer that decodes
    /// this direction.
    pub fn set_max_allowed(&mut self, size: u32) {
        self.max_allowed = size;
        self.inner.set_max_dynamic_size(size);
    }

    /// Whether the table holds placeholders.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Inserts placeholder entries of 35 bytes each (32 + a 3-byte name) until
    /// the table is full; entry k ends up at index 62 + k.
    fn fill_placeholders(&mut self) {
        let count = (self.max_allowed / 35).min(255) as u8;
        let mut block = Vec::with_capacity(count as usize * 6);
        for k in (0..count).rev() {
            // Literal with incremental indexing, new name, 3-byte name, empty value.
            block.extend_from_slice(&[0x40, 3, PLACEHOLDER_TAG[0], PLACEHOLDER_TAG[1], k, 0]);
        }
        let mut out = Vec::new();
        // The block is well formed by construction; an error would only leave
        // fewer placeholders.
        let _ = self.inner.decode(&mut block, &mut out);
        self.joined = true;
    }

    /// Decodes one complete header block into `fields` (appended).
    pub fn decode(&mut self, block: &[u8], fields: &mut Vec<Field>) -> Result<(), HpackError> {
        self.huffman.clear();
        check_block(block, self.max_allowed, &mut self.huffman)?;

        self.scratch.clear();
        self.scratch.extend_from_slice(block);
        self.out.clear();
        let inner = &mut self.inner;
        let (scratch, out) = (&mut self.scratch, &mut self.out);
        let res = catch_unwind(AssertUnwindSafe(|| inner.decode(scratch, out)));
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(match e {
                    httlib_hpack::DecoderError::InvalidIndex => HpackError::InvalidIndex(0),
                    other => HpackError::Rejected(format!("{other:?}").to_lowercase()),
                })
            }
            Err(_) => {
                self.caught_panics += 1;
                return Err(HpackError::Rejected("decoder panicked".into()));
            }
        }

        // Huffman strings must be the canonical encoding of what they decode to:
        // anything else has padding that is not the EOS prefix, or EOS inside.
        let mut enc = Vec::new();
        for h in &self.huffman {
            let Some((name, value, _)) = self.out.get(h.field) else {
                return Err(HpackError::BadHuffman(h.range.start));
            };
            let decoded = if h.is_name { name } else { value };
            enc.clear();
            let ok = httlib_huffman::encode(decoded, &mut enc).is_ok()
                && block.get(h.range.clone()) == Some(&enc[..]);
            if !ok {
                return Err(HpackError::BadHuffman(h.range.start));
            }
        }

        fields.reserve(self.out.len());
        for (name, value, _) in &self.out {
            if let Some(k) = placeholder(name) {
                self.unknown_fields += 1;
                let label = format!("<unknown #{}>", 62 + k as u32);
                let value = if value.is_empty() { label.clone() } else { lossy(value) };
                fields.push(Field { name: label, value });
            } else {
                fields.push(Field { name: lossy(name), value: lossy(value) });
            }
        }
        Ok(())
    }
}

/// The join-time slot of a placeholder name.
fn placeholder(name: &[u8]) -> Option<u8> {
    match name {
        [a, b, k] if [*a, *b] == *PLACEHOLDER_TAG => Some(*k),
        _ => None,
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads an HPACK integer with an `n`-bit prefix at `pos` (RFC 7541 §5.1).
///
/// ```text
///   0   1   2   3   4   5   6   7
/// +---+---+---+---+---+---+---+---+
/// | ? | ? | ? |  prefix (n bits)  |   prefix all ones: more octets follow,
/// +---+---+---+-------------------+   7 bits each, low-order first, MSB = more
/// ```
fn read_int(block: &[u8], pos: usize, n: u8) -> Result<(u32, usize), HpackError> {
    let first = *block.get(pos).ok_or(HpackError::Truncated(pos))?;
    let mask = (1u16 << n) as u32 - 1;
    let mut value = first as u32 & mask;
    let mut at = pos + 1;
    if value < mask {
        return Ok((value, at));
    }
    let mut shift = 0;
    loop {
        let b = *block.get(at).ok_or(HpackError::Truncated(at))?;
        at += 1;
        value += ((b & 0x7f) as u32) << shift;
        if value > MAX_INT || shift > 21 {
            return Err(HpackError::IntegerTooLarge(pos));
        }
        if b & 0x80 == 0 {
            return Ok((value, at));
        }
        shift += 7;
    }
}

/// Reads a string literal header at `pos`; returns its byte range and whether
/// it is Huffman-coded.
fn read_string(block: &[u8], pos: usize) -> Result<(Range<usize>, bool), HpackError> {
    let huffman = block.get(pos).ok_or(HpackError::Truncated(pos))? & 0x80 != 0;
    let (len, start) = read_int(block, pos, 7)?;
    let end = start + len as usize;
    if end > block.len() {
        return Err(HpackError::Truncated(block.len()));
    }
    Ok((start..end, huffman))
}

/// Walks the representations of a block without touching any table; fails on
/// anything httlib-hpack would panic on or wrongly accept. Records the
/// Huffman-coded strings for the canonical-encoding check.
fn check_block(block: &[u8], max_size: u32, huff: &mut Vec<HuffString>) -> Result<(), HpackError> {
    let mut pos = 0;
    let mut field = 0;
    while let Some(&b) = block.get(pos) {
        let start = pos;
        if b & 0x80 != 0 {
            // Indexed field (§6.1); index 0 is an error.
            let (idx, next) = read_int(block, pos, 7)?;
            if idx == 0 {
                return Err(HpackError::InvalidIndex(0));
            }
            pos = next;
            field += 1;
            continue;
        }
        if b & 0xe0 == 0x20 {
            // Dynamic table size update (§6.3): only before the first field.
            let (size, next) = read_int(block, pos, 5)?;
            if field > 0 {
                return Err(HpackError::MisplacedSizeUpdate(start));
            }
            if size > max_size {
                return Err(HpackError::SizeUpdateTooLarge { size, max: max_size });
            }
            pos = next;
            continue;
        }
        // Literal field (§6.2): 6-bit index with indexing, else 4-bit.
        let prefix = if b & 0x40 != 0 { 6 } else { 4 };
        let (idx, next) = read_int(block, pos, prefix)?;
        pos = next;
        if idx == 0 {
            let (range, h) = read_string(block, pos)?;
            pos = range.end;
            if h {
                huff.push(HuffString { field, is_name: true, range });
            }
        }
        let (range, h) = read_string(block, pos)?;
        pos = range.end;
        if h {
            huff.push(HuffString { field, is_name: false, range });
        }
        field += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        for wire in ["ff", "1f", "3f", "40", "41", "4003616263", "ff80"] {
            let mut d = HeaderDecoder::new(DEFAULT_TABLE_SIZE);
            let mut f = Vec::new();
            assert!(d.decode(&hex(wire), &mut f).is_err(), "{wire} accepted");
            assert_eq!(d.caught_panics, 0, "{wire} reached the inner decoder");
        }
    }

    #[test]
    fn rfc_c_4_1_huffman_request() {
        let mut d = HeaderDecoder::new(DEFAULT_TABLE_SIZE);
        let mut f = Vec::new();
        d.decode(&hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"), &mut f).unwrap();
        assert_eq!(f[3], Field { name: ":authority".into(), value: "www.example.com".into() });
    }

    #[test]
    fn joined_decoder_shows_placeholders_and_decodes_literals() {
        let mut d = HeaderDecoder::joined(DEFAULT_TABLE_SIZE);
        let mut f = Vec::new();
        // Indexed 63 (0xbf), then a literal without indexing whose name is
        // dynamic index 62 (4-bit prefix: 0x0f 0x2f), value "v".
        d.decode(&[0xbf, 0x0f, 0x2f, 0x01, b'v', 0x82], &mut f).unwrap();
        assert_eq!(f[0].name, "<unknown #63>");
        assert_eq!(f[0].value, "<unknown #63>");
        assert_eq!(f[1], Field { name: "<unknown #62>".into(), value: "v".into() });
        assert_eq!(f[2], Field { name: ":method".into(), value: "GET".into() });
        assert_eq!(d.unknown_fields, 2);
    }

    #[test]
    fn new_entries_shift_placeholders() {
        let mut d = HeaderDecoder::joined(DEFAULT_TABLE_SIZE);
        let mut f = Vec::new();
        // Literal with indexing "a: b", then index 62 (that entry) and 63 (old 62).
        d.decode(&[0x40, 1, b'a', 1, b'b', 0xbe, 0xbf], &mut f).unwrap();
        assert_eq!(f[1], Field { name: "a".into(), value: "b".into() });
        assert_eq!(f[2].name, "<unknown #62>");
    }
}
