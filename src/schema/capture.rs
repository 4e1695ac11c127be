//! Finding the schema blocks the recorder embeds in a pcapng capture.
//!
//! Only the block framing is read here (type, length, the section's byte
//! order): enough for `schema list` to show what a capture carries without
//! going through the packet reader.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::{decode_embedded, SchemaError, SCHEMA_MAGIC};
use crate::chunk::PEN;

/// Block type of a pcapng Section Header Block (the same in either byte order).
const SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Custom block types: copyable, and not to be copied.
const CUSTOM_TYPES: [u32; 2] = [0x0000_0BAD, 0x4000_0BAD];
/// Largest block we read into memory.
const MAX_BLOCK: u32 = 256 << 20;

/// What a file starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pcapng,
    /// A classic pcap file: it has no place for blocks of ours.
    Pcap,
    /// An ELF, Mach-O or PE executable.
    Binary,
    /// Anything else (a FileDescriptorSet has no magic).
    Other,
}

/// Guesses what `head` (the first bytes of a file, decompressed) is.
pub fn sniff(head: &[u8]) -> Kind {
    const PCAP: [[u8; 4]; 4] = [
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x4d, 0x3c, 0xb2, 0xa1],
    ];
    let magic: Option<[u8; 4]> = head.get(..4).and_then(|m| m.try_into().ok());
    match magic {
        Some(SHB) => Kind::Pcapng,
        Some(m) if PCAP.contains(&m) => Kind::Pcap,
        Some([0x7f, b'E', b'L', b'F'])
        | Some([0xcf, 0xfa, 0xed, 0xfe])
        | Some([0xca, 0xfe, 0xba, 0xbe])
        | Some([b'M', b'Z', _, _]) => Kind::Binary,
        _ => Kind::Other,
    }
}

/// Opens `path`, transparently decompressing zstd and gzip.
pub fn open(path: &Path) -> Result<Box<dyn Read>, SchemaError> {
    let err = |error| SchemaError::Read { path: path.into(), error };
    let mut file = File::open(path).map_err(err)?;
    let mut magic = [0u8; 4];
    let n = read_full(&mut file, &mut magic).map_err(err)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(file);
    Ok(match magic {
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(head).map_err(err)?),
        [0x1f, 0x8b, ..] => Box::new(MultiGzDecoder::new(head)),
        _ => Box::new(BufReader::new(head)),
    })
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The FileDescriptorSets (as bytes) embedded in the pcapng capture at `path`.
pub fn embedded_sets(path: &Path) -> Result<Vec<Vec<u8>>, SchemaError> {
    embedded_sets_from(open(path)?, path)
}

/// Walks the blocks of a pcapng stream and decodes our schema blocks.
pub fn embedded_sets_from(mut r: impl Read, path: &Path) -> Result<Vec<Vec<u8>>, SchemaError> {
    let bad = |offset: u64, what: String| SchemaError::Capture { path: path.into(), offset, what };
    let mut sets = Vec::new();
    let mut offset = 0u64;
    let mut big_endian = false;
    loop {
        let mut head = [0u8; 8];
        let n = read_full(&mut r, &mut head).map_err(|e| bad(offset, e.to_string()))?;
        if n == 0 {
            return Ok(sets);
        }
        if n < head.len() {
            return Err(bad(offset, "block header is truncated".into()));
        }
        if head[..4] == SHB {
            let mut bom = [0u8; 4];
            read_full(&mut r, &mut bom).map_err(|e| bad(offset, e.to_string()))?;
            big_endian = match bom {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => return Err(bad(offset, "section header has no byte-order magic".into())),
            };
        } else if offset == 0 {
            return Err(bad(0, "not a pcapng file".into()));
        }
        let word = |b: [u8; 4]| {
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let block_type = word([head[0], head[1], head[2], head[3]]);
        let total = word([head[4], head[5], head[6], head[7]]);
        if !(12..=MAX_BLOCK).contains(&total) || total % 4 != 0 {
            return Err(bad(offset, format!("block length {total} is invalid")));
        }
        let already = if head[..4] == SHB { 12 } else { 8 };
        let mut body = vec![0u8; total as usize - already];
        let got = read_full(&mut r, &mut body).map_err(|e| bad(offset, e.to_string()))?;
        if got < body.len() {
            return Err(bad(offset, "block is truncated".into()));
        }
        if CUSTOM_TYPES.contains(&block_type) {
            // Body: PEN, payload (padded), trailing total length.
            let pen = body.get(..4).map(|b| word([b[0], b[1], b[2], b[3]]));
            let payload = body.get(4..body.len() - 4).unwrap_or_default();
            if pen == Some(PEN) && payload.starts_with(SCHEMA_MAGIC) {
                let set = decode_embedded(payload).map_err(|e| bad(offset, e.to_string()))?;
                log::debug!(
                    "{}: schema block at offset {offset}: {} bytes",
                    path.display(),
                    set.len()
                );
                sets.push(set);
            }
        }
        offset += u64::from(total);
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::super::encode_embedded;
    use super::super::extract::tests::sample;
    use super::*;

    /// A little-endian pcapng: SHB, our schema block, another custom block.
    fn capture(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let shb_body =
            [&0x1a2b3c4du32.to_le_bytes()[..], &[1, 0, 0, 0], &(-1i64).to_le_bytes()].concat();
        let block = |out: &mut Vec<u8>, t: u32, body: &[u8]| {
            let pad = (4 - body.len() % 4) % 4;
            let total = (12 + body.len() + pad) as u32;
            out.extend(t.to_le_bytes());
            out.extend(total.to_le_bytes());
            out.extend(body);
            out.extend(vec![0; pad]);
            out.extend(total.to_le_bytes());
        };
        block(&mut out, 0x0a0d0d0a, &shb_body);
        block(&mut out, 0x0bad, &[&PEN.to_le_bytes()[..], payload].concat());
        block(&mut out, 0x0bad, &[&1234u32.to_le_bytes()[..], b"other"].concat());
        out
    }

    #[test]
    fn finds_schema_blocks() {
        let set = FileDescriptorSet { file: vec![sample("a.proto", "a", "A")] };
        let bytes = capture(&encode_embedded(&set).unwrap());
        let sets = embedded_sets_from(bytes.as_slice(), Path::new("x.pcapng")).unwrap();
        assert_eq!(sets, vec![set.encode_to_vec()]);
    }

    #[test]
    fn truncated_capture_names_offset() {
        let set = FileDescriptorSet { file: vec![sample("a.proto", "a", "A")] };
        let bytes = capture(&encode_embedded(&set).unwrap());
        let err = embedded_sets_from(&bytes[..bytes.len() - 5], Path::new("x.pcapng")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.pcapng at offset ") && text.ends_with("truncated"), "{text}");
    }

    #[test]
    fn sniffs_kinds() {
        assert_eq!(sniff(b"\x0a\x0d\x0d\x0a...."), Kind::Pcapng);
        assert_eq!(sniff(b"\xd4\xc3\xb2\xa1"), Kind::Pcap);
        assert_eq!(sniff(b"\x7fELF\x02"), Kind::Binary);
        assert_eq!(sniff(b"\x0a\x10"), Kind::Other);
    }
}
