//! Transparent decompression of capture files, recognised by their magic
//! bytes rather than by their name, so that `capture.pcapng.zst`, a renamed
//! file and a compressed stream on stdin all work the same way.

use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// First bytes of a zstd frame (RFC 8878, section 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// First bytes of a gzip member (RFC 1952, section 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How the bytes of a capture file were stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
    Gzip,
}

impl Compression {
    /// Recognises the compression from the first bytes of a file.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// The source of a capture with its compression removed, and the first
/// (up to four) decompressed bytes, which tell pcap from pcapng.
pub struct Decompressed {
    pub reader: Box<dyn Read + Send>,
    pub head: Vec<u8>,
    pub compression: Compression,
}

/// Detects and removes zstd or gzip compression.
///
/// Concatenated gzip members and zstd frames are read as one stream, as
/// `zcat` and `zstdcat` do.
pub fn decompress(r: Box<dyn Read + Send>) -> io::Result<Decompressed> {
    let (head, r) = peek(r, 4)?;
    let compression = Compression::detect(&head);
    let inner: Box<dyn Read + Send> = match compression {
        Compression::None => return Ok(Decompressed { reader: r, head, compression }),
        Compression::Zstd => Box::new(Labeled("zstd", zstd::stream::read::Decoder::new(r)?)),
        Compression::Gzip => Box::new(Labeled("gzip", flate2::read::MultiGzDecoder::new(r))),
    };
    let (head, reader) = peek(inner, 4)?;
    Ok(Decompressed { reader, head, compression })
}

/// Reads up to `n` bytes from the start of `r` and returns them together
/// with a reader that yields the whole stream again, those bytes included.
fn peek(mut r: Box<dyn Read + Send>, n: usize) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = vec![0; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    let again = Box::new(Cursor::new(head.clone()).chain(r));
    Ok((head, again))
}

/// A decompressor whose errors name the format ("zstd: incomplete frame").
struct Labeled<R>(&'static str, R);

impl<R: Read> Read for Labeled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1.read(buf).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.0)))
    }
}

/// A reader that remembers whether its source reached the end.
///
/// The pcap-file crate reports both "the file ends inside this block" and
/// "this block does not fit in my buffer" as `UnexpectedEof`; whether the
/// source was exhausted tells the two apart.
pub struct EofTracker {
    inner: Box<dyn Read + Send>,
    eof: Arc<AtomicBool>,
}

impl EofTracker {
    /// Wraps `inner`; the returned flag becomes true once a read returns 0.
    pub fn new(inner: Box<dyn Read + Send>) -> (EofTracker, Arc<AtomicBool>) {
        let eof = Arc::new(AtomicBool::new(false));
        (EofTracker { inner, eof: eof.clone() }, eof)
    }
}

impl Read for EofTracker {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(mut r: Box<dyn Read + Send>) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn plain_bytes_pass_through_unchanged() {
        let data = b"\x0a\x0d\x0d\x0arest of the file".to_vec();
        let d = decompress(Box::new(Cursor::new(data.clone()))).unwrap();
        assert_eq!(d.compression, Compression::None);
        assert_eq!(d.head, b"\x0a\x0d\x0d\x0a");
        assert_eq!(read_all(d.reader), data);
    }

    #[test]
    fn short_input_keeps_what_there_is() {
        let d = decompress(Box::new(Cursor::new(vec![0xd4, 0xc3]))).unwrap();
        assert_eq!(d.head, [0xd4, 0xc3]);
        assert_eq!(read_all(d.reader), [0xd4, 0xc3]);
    }

    #[test]
    fn zstd_and_gzip_are_recognised_by_magic() {
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();

        let z = zstd::encode_all(&data[..], 3).unwrap();
        let d = decompress(Box::new(Cursor::new(z))).unwrap();
        assert_eq!(d.compression, Compression::Zstd);
        assert_eq!(d.head, data[..4]);
        assert_eq!(read_all(d.reader), data);

        // Two gzip members back to back read as one stream.
        let mut gz = Vec::new();
        for half in data.chunks(data.len() / 2) {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(half).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let d = decompress(Box::new(Cursor::new(gz))).unwrap();
        assert_eq!(d.compression, Compression::Gzip);
        assert_eq!(read_all(d.reader), data);
    }

    #[test]
    fn decompression_errors_name_the_format() {
        let mut z = zstd::encode_all(&[7u8; 1000][..], 3).unwrap();
        z.truncate(z.len() - 4);
        // So small that the very first read fails.
        let err = decompress(Box::new(Cursor::new(z))).err().unwrap();
        assert_eq!(err.to_string(), "zstd: incomplete frame");
    }

    #[test]
    fn tracker_notices_the_end() {
        let (mut t, eof) = EofTracker::new(Box::new(Cursor::new(vec![1, 2, 3])));
        let mut buf = [0; 8];
        assert_eq!(t.read(&mut buf).unwrap(), 3);
        assert!(!eof.load(Ordering::Relaxed));
        assert_eq!(t.read(&mut buf).unwrap(), 0);
        assert!(eof.load(Ordering::Relaxed));
    }
}
