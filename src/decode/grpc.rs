//! gRPC message framing over HTTP/2 DATA (the length-prefixed message of the
//! gRPC over HTTP/2 protocol) and message decompression.
//!
//! ```text
//! +------------+---------------------------+------------------+
//! | flag (8)   | length (32, big-endian)   | message bytes... |
//! +------------+---------------------------+------------------+
//!   flag 1 = compressed with the stream's grpc-encoding
//! ```

use std::io::Read;

/// Length of the message prefix.
const PREFIX_LEN: usize = 5;

/// A complete message taken out of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub compressed: bool,
    /// Length on the wire (after the prefix).
    pub len: u64,
    /// The bytes, or `None` when the message was above the cap and skipped.
    pub body: Option<Vec<u8>>,
}

/// Reassembles length-prefixed messages from the DATA payloads of one side of
/// one stream. Memory is bounded by the cap: larger messages are counted, not kept.
#[derive(Debug)]
pub struct Assembler {
    cap: usize,
    prefix: [u8; PREFIX_LEN],
    have_prefix: usize,
    compressed: bool,
    want: u64,
    got: u64,
    body: Vec<u8>,
    skipping: bool,
}

impl Assembler {
    pub fn new(cap: usize) -> Assembler {
        Assembler {
            cap,
            prefix: [0; PREFIX_LEN],
            have_prefix: 0,
            compressed: false,
            want: 0,
            got: 0,
            body: Vec::new(),
            skipping: false,
        }
    }

    /// Whether a message has started and not ended.
    pub fn is_partial(&self) -> bool {
        self.have_prefix > 0
    }

    /// Forgets a partial message (its bytes were lost in a gap).
    pub fn drop_partial(&mut self) {
        self.have_prefix = 0;
        self.body = Vec::new();
        self.skipping = false;
    }

    /// Whether `data` plausibly starts with a message prefix (flag 0 or 1).
    /// Used to pick up a stream again after a gap.
    pub fn looks_like_start(data: &[u8]) -> bool {
        data.len() >= PREFIX_LEN && data[0] <= 1
    }

    /// Feeds DATA payload bytes; complete messages are appended to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Message>) {
        while !data.is_empty() {
            if self.have_prefix < PREFIX_LEN {
                let n = (PREFIX_LEN - self.have_prefix).min(data.len());
                self.prefix[self.have_prefix..self.have_prefix + n].copy_from_slice(&data[..n]);
                self.have_prefix += n;
                data = &data[n..];
                if self.have_prefix < PREFIX_LEN {
                    return;
                }
                self.start();
            } else {
                let n = ((self.want - self.got) as usize).min(data.len());
                if !self.skipping {
                    self.body.extend_from_slice(&data[..n]);
                }
                self.got += n as u64;
                data = &data[n..];
            }
            if self.have_prefix == PREFIX_LEN && self.got == self.want {
                out.push(self.take());
            }
        }
    }

    fn start(&mut self) {
        let p = self.prefix;
        self.compressed = p[0] & 1 != 0;
        self.want = u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as u64;
        self.got = 0;
        self.skipping = self.want > self.cap as u64;
        if !self.skipping {
            // Reserve what the prefix announces, but trust it only up to 1 MiB;
            // the rest grows as bytes really arrive.
            self.body = Vec::with_capacity(self.want.min(1 << 20) as usize);
        }
    }

    fn take(&mut self) -> Message {
        self.have_prefix = 0;
        let body = std::mem::take(&mut self.body);
        Message {
            compressed: self.compressed,
            len: self.want,
            body: (!self.skipping).then_some(body),
        }
    }
}

/// Why a compressed message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("unsupported grpc-encoding {0:?}")]
    Unsupported(String),
    #[error("compressed message flag without a grpc-encoding")]
    NoEncoding,
    #[error("{0} decompression failed: {1}")]
    Corrupt(&'static str, String),
    #[error("decompressed message larger than {0} bytes")]
    TooLarge(usize),
}

/// Decompresses a message with the stream's `grpc-encoding`, keeping at most
/// `cap` bytes.
pub fn decompress(
    encoding: Option<&str>,
    body: &[u8],
    cap: usize,
) -> Result<Vec<u8>, DecompressError> {
    let enc = encoding.ok_or(DecompressError::NoEncoding)?;
    let mut out = Vec::new();
    let limit = cap as u64 + 1;
    let (name, res) = match enc.trim().to_ascii_lowercase().as_str() {
        "gzip" => ("gzip", flate2::read::GzDecoder::new(body).take(limit).read_to_end(&mut out)),
        // gRPC's "deflate" is the zlib format (RFC 1950).
        "deflate" => {
            ("deflate", flate2::read::ZlibDecoder::new(body).take(limit).read_to_end(&mut out))
        }
        "identity" => return Ok(body.to_vec()),
        other => return Err(DecompressError::Unsupported(other.to_string())),
    };
    res.map_err(|e| DecompressError::Corrupt(name, e.to_string()))?;
    if out.len() > cap {
        return Err(DecompressError::TooLarge(cap));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn split_and_joined_messages() {
        let mut a = Assembler::new(1 << 20);
        let mut wire = framed(b"hello");
        wire.extend(framed(b""));
        wire.extend(framed(b"world"));
        let mut out = Vec::new();
        for chunk in wire.chunks(3) {
            a.feed(chunk, &mut out);
        }
        let bodies: Vec<_> = out.iter().map(|m| m.body.clone().unwrap()).collect();
        assert_eq!(bodies, vec![b"hello".to_vec(), vec![], b"world".to_vec()]);
        assert!(!a.is_partial());
    }

    #[test]
    fn over_cap_is_counted_not_kept() {
        let mut a = Assembler::new(4);
        let mut out = Vec::new();
        a.feed(&framed(b"too long"), &mut out);
        assert_eq!(out, vec![Message { compressed: false, len: 8, body: None }]);
    }

    #[test]
    fn gzip_and_deflate() {
        use flate2::write::{GzEncoder, ZlibEncoder};
        use std::io::Write;
        let mut g = GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(b"abc").unwrap();
        let gz = g.finish().unwrap();
        assert_eq!(decompress(Some("gzip"), &gz, 100).unwrap(), b"abc");
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"abc").unwrap();
        let zl = z.finish().unwrap();
        assert_eq!(decompress(Some("deflate"), &zl, 100).unwrap(), b"abc");
        assert!(decompress(Some("gzip"), b"junk", 100).is_err());
        assert!(matches!(decompress(Some("gzip"), &gz, 2), Err(DecompressError::TooLarge(2))));
        assert!(decompress(Some("snappy"), &gz, 100).is_err());
    }
}
