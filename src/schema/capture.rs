//! Finding the schema blocks the recorder embeds in a pcapng capture.
//!
//! The capture goes through the project's one pcapng reader
//! ([`CaptureReader`]), which keeps the payloads of the custom blocks with
//! our PEN; the ones that start with [`SCHEMA_MAGIC`] are schema sets.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{decode_embedded, SchemaError, SCHEMA_MAGIC};
use crate::pcapng::compress;
use crate::pcapng::reader::{CaptureReader, Format, ReadError};

/// Block type of a pcapng Section Header Block (the same in either byte order).
const SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

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

/// Opens `path`, transparently decompressing zstd and gzip (the same
/// detection as the capture reader's).
pub fn open(path: &Path) -> Result<Box<dyn Read>, SchemaError> {
    let err = |error| SchemaError::Read { path: path.into(), error };
    let file = File::open(path).map_err(err)?;
    let d = compress::decompress(Box::new(file)).map_err(err)?;
    Ok(Box::new(BufReader::new(d.reader)))
}

/// The FileDescriptorSets (as bytes) embedded in the capture at `path`; a
/// pcap file has none.
pub fn embedded_sets(path: &Path) -> Result<Vec<Vec<u8>>, SchemaError> {
    let reader = CaptureReader::open(path).map_err(|e| capture_error(path, e))?;
    collect(reader, path)
}

/// Same as [`embedded_sets`] from any reader; `path` names it in errors.
pub fn embedded_sets_from(
    r: impl Read + Send + 'static,
    path: &Path,
) -> Result<Vec<Vec<u8>>, SchemaError> {
    let name = path.display().to_string();
    let reader =
        CaptureReader::from_reader(&name, Box::new(r)).map_err(|e| capture_error(path, e))?;
    collect(reader, path)
}

/// Reads the whole capture (schema blocks may come at any point, as the
/// recorder extracts them in the background) and decodes our schema blocks.
fn collect(mut reader: CaptureReader, path: &Path) -> Result<Vec<Vec<u8>>, SchemaError> {
    if reader.format() == Format::Pcap {
        return Ok(Vec::new());
    }
    while reader.next_packet().map_err(|e| capture_error(path, e))?.is_some() {}
    let mut sets = Vec::new();
    for payload in reader.custom_blocks().iter().filter(|p| p.starts_with(SCHEMA_MAGIC)) {
        let set = decode_embedded(payload).map_err(|e| e.in_file(path))?;
        log::debug!("{}: schema block of {} bytes", path.display(), set.len());
        sets.push(set);
    }
    Ok(sets)
}

fn capture_error(path: &Path, e: ReadError) -> SchemaError {
    SchemaError::Capture { path: path.into(), offset: e.offset, what: e.kind.to_string() }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::super::encode_embedded;
    use super::super::extract::tests::sample;
    use super::*;
    use crate::chunk::PEN;
    use std::io;

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
        let sets = embedded_sets_from(io::Cursor::new(bytes), Path::new("x.pcapng")).unwrap();
        assert_eq!(sets, vec![set.encode_to_vec()]);
    }

    #[test]
    fn truncated_capture_names_offset() {
        let set = FileDescriptorSet { file: vec![sample("a.proto", "a", "A")] };
        let bytes = capture(&encode_embedded(&set).unwrap());
        let cut = bytes[..bytes.len() - 5].to_vec();
        let err = embedded_sets_from(io::Cursor::new(cut), Path::new("x.pcapng")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.pcapng at offset ") && text.contains("truncated"), "{text}");
    }

    #[test]
    fn sniffs_kinds() {
        assert_eq!(sniff(b"\x0a\x0d\x0d\x0a...."), Kind::Pcapng);
        assert_eq!(sniff(b"\xd4\xc3\xb2\xa1"), Kind::Pcap);
        assert_eq!(sniff(b"\x7fELF\x02"), Kind::Binary);
        assert_eq!(sniff(b"\x0a\x10"), Kind::Other);
    }
}
