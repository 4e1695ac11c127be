//! Reading pcap and pcapng files (plain, zstd or gzip) into [`Packet`]s.
//!
//! The pcap-file crate does the framing and keeps the pcapng state (byte
//! order, interfaces, timestamp resolution and offset per interface, several
//! sections). This module adds what `decode` needs on top: one stream of
//! packets whatever the format, our process metadata from the packet blocks,
//! the payloads of our custom blocks, and errors that name the file and the
//! byte offset of the block or record that failed.
//!
//! Memory stays bounded: blocks are read one at a time through a fixed read
//! buffer of [`READ_BUFFER`] bytes, which is also the largest block we accept.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, trace};
use pcap_file::pcap::PcapTsResolution;
use pcap_file::pcap::{PcapReadError, PcapReader};
use pcap_file::pcapng::blocks::block_common::{
    block_name, CUSTOM_BLOCK_COPIABLE, CUSTOM_BLOCK_NON_COPIABLE, ENHANCED_PACKET_BLOCK,
    INTERFACE_DESCRIPTION_BLOCK, PACKET_BLOCK, SECTION_HEADER_BLOCK, SIMPLE_PACKET_BLOCK,
};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::packet::PacketOption;
use pcap_file::pcapng::{Block, PcapNgReadError, PcapNgReader, PcapNgState, RawBlock};
use pcap_file::Endianness;

use super::compress::{self, Compression, EofTracker};
use super::{LinkType, Packet};
use crate::chunk::{ProcMeta, META_MAGIC, PEN};

/// Size of the read buffer, and so the largest block or record we can read.
pub const READ_BUFFER: usize = 8 * 1024 * 1024;

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap, either byte order, micro- or nanosecond timestamps.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// Counters about what the reader saw, for `-v` summaries and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Packets returned by [`CaptureReader::next_packet`].
    pub packets: u64,
    /// pcapng sections (1 for a typical file, 0 for pcap).
    pub sections: u64,
    /// pcapng interface description blocks.
    pub interfaces: u64,
    /// Blocks that carry nothing we use (name resolution, interface
    /// statistics, journal entries, other vendors' custom blocks, unknown
    /// types), by block type.
    pub skipped_blocks: BTreeMap<u32, u64>,
    /// Custom blocks with our PEN, kept in [`CaptureReader::custom_blocks`].
    pub custom_blocks: u64,
    /// Packets that carried our process metadata.
    pub with_meta: u64,
    /// Metadata options with our PEN and magic that could not be decoded.
    pub bad_meta: u64,
    /// Packet blocks whose options or lengths the crate rejected but whose
    /// packet could still be read (their options are then ignored).
    pub repaired_packets: u64,
}

/// What went wrong, without the file and offset (see [`ReadError`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    #[error("read failed: {0}")]
    Io(#[source] io::Error),
    #[error("file is empty")]
    Empty,
    #[error("not a pcap or pcapng file (starts with {0})")]
    NotACapture(String),
    #[error("truncated: the file ends inside this {0}")]
    Truncated(&'static str),
    #[error("{0} is larger than the {limit} MiB read buffer", limit = READ_BUFFER >> 20)]
    TooLarge(&'static str),
    #[error("{what} length {len} is larger than the {limit} MiB limit", limit = READ_BUFFER >> 20)]
    LengthTooLarge { what: &'static str, len: u64 },
    #[error("malformed {what}: {detail}")]
    Malformed { what: String, detail: String },
    #[error("packet refers to interface {id} but its section describes {count}")]
    UnknownInterface { id: u32, count: usize },
}

/// A capture file could not be read further.
///
/// Displays as one line: `{file}: offset {offset}: {what}`, where `offset`
/// is the byte offset, in the decompressed file, of the block or record that
/// failed; errors about the file itself rather than its data (it cannot be
/// opened) show no offset. Every packet before that block has been returned.
#[derive(Debug)]
pub struct ReadError {
    pub file: String,
    pub offset: u64,
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ReadErrorKind::Open(_) => write!(f, "{}: {}", self.file, self.kind),
            _ => write!(f, "{}: offset {}: {}", self.file, self.offset, self.kind),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// Reads packets from a pcap or pcapng file, one at a time.
pub struct CaptureReader {
    name: String,
    format: Format,
    compression: Compression,
    inner: Inner,
    /// Set once the (decompressed) source has returned end of file.
    eof: Arc<AtomicBool>,
    ctx: Context,
    /// An error or the end was reached; further calls return `Ok(None)`.
    done: bool,
    /// The path of a regular file, which can be read again to tell a
    /// length field beyond the limit from a truncated file.
    path: Option<PathBuf>,
}

/// The format-specific reader.
enum Inner {
    Pcap {
        reader: PcapReader<EofTracker>,
        link: LinkType,
        nanos: bool,
        /// Offset of the next record (the crate does not count for pcap).
        offset: u64,
    },
    PcapNg {
        reader: PcapNgReader<EofTracker>,
    },
}

/// What the reader accumulates beside the packets.
#[derive(Default)]
struct Context {
    stats: ReadStats,
    custom: Vec<Vec<u8>>,
    /// The last metadata payload decoded and its result, so that a run of
    /// packets from one sender shares one allocation.
    last_meta: Option<(Vec<u8>, Arc<ProcMeta>)>,
    /// Timestamp of the previous packet, given to simple packet blocks,
    /// which have none.
    last_ts: u64,
}

/// A failure inside the reader, before the file name is attached.
type Failure = (u64, ReadErrorKind);

impl CaptureReader {
    /// Opens a pcap or pcapng file, plain, zstd (.zst or magic 28 b5 2f fd)
    /// or gzip (.gz or magic 1f 8b). The magic decides; the name is not
    /// consulted.
    pub fn open(path: &Path) -> Result<CaptureReader, ReadError> {
        let name = path.display().to_string();
        let open_error =
            |e| ReadError { file: name.clone(), offset: 0, kind: ReadErrorKind::Open(e) };
        let file = File::open(path).map_err(open_error)?;
        // A directory opens but fails the first read: say so as `cannot open`.
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(open_error(io::Error::from_raw_os_error(libc::EISDIR)));
        }
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let mut reader = CaptureReader::from_reader(&name, Box::new(file)).map_err(|mut e| {
            // Only the section header block can fail here with a length.
            if regular && matches!(e.kind, ReadErrorKind::Truncated("block")) {
                if let Some(kind) = length_too_large(path, e.offset, Format::PcapNg, None) {
                    e.kind = kind;
                }
            }
            e
        })?;
        if regular {
            reader.path = Some(path.to_owned());
        }
        Ok(reader)
    }

    /// Same as [`CaptureReader::open`] from any reader (stdin, tests);
    /// `name` is used in errors.
    pub fn from_reader(name: &str, r: Box<dyn Read + Send>) -> Result<CaptureReader, ReadError> {
        let fail = |kind| ReadError { file: name.to_string(), offset: 0, kind };
        let d = compress::decompress(r).map_err(|e| fail(ReadErrorKind::Io(e)))?;
        let (tracked, eof) = EofTracker::new(d.reader);
        let (format, inner) = match d.head[..] {
            [] => return Err(fail(ReadErrorKind::Empty)),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let reader = PcapNgReader::with_capacity(tracked, READ_BUFFER)
                    .map_err(|e| fail(pcapng_error(e, &eof)))?;
                (Format::PcapNg, Inner::PcapNg { reader })
            }
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1] => {
                let reader = PcapReader::with_capacity(tracked, READ_BUFFER)
                    .map_err(|e| fail(pcap_error(e, &eof)))?;
                let header = reader.header();
                let link = LinkType(header.datalink.into());
                let nanos = header.ts_resolution == PcapTsResolution::NanoSecond;
                (Format::Pcap, Inner::Pcap { reader, link, nanos, offset: 24 })
            }
            ref head => {
                let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
                return Err(fail(ReadErrorKind::NotACapture(hex.join(" "))));
            }
        };
        debug!("{name}: {format:?}, compression {:?}", d.compression);
        let mut ctx = Context::default();
        if format == Format::PcapNg {
            ctx.stats.sections = 1;
        }
        Ok(CaptureReader {
            name: name.to_string(),
            format,
            compression: d.compression,
            inner,
            eof,
            ctx,
            done: false,
            path: None,
        })
    }

    /// The next packet; `Ok(None)` at a clean end of file.
    ///
    /// After an error the reader is finished: later calls return `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let result = match &mut self.inner {
            Inner::Pcap { reader, link, nanos, offset } => {
                next_pcap(reader, *link, *nanos, offset, &self.eof)
            }
            Inner::PcapNg { reader } => next_pcapng(reader, &mut self.ctx, &self.eof),
        };
        match result {
            Ok(Some(pkt)) => {
                self.ctx.stats.packets += 1;
                self.ctx.last_ts = pkt.ts_ns;
                Ok(Some(pkt))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err((offset, mut kind)) => {
                self.done = true;
                if let (ReadErrorKind::Truncated(_), Some(path)) = (&kind, &self.path) {
                    let endianness = match &self.inner {
                        Inner::Pcap { reader, .. } => reader.header().endianness,
                        Inner::PcapNg { reader } => reader.section().endianness,
                    };
                    if let Some(k) = length_too_large(path, offset, self.format, Some(endianness)) {
                        kind = k;
                    }
                }
                Err(ReadError { file: self.name.clone(), offset, kind })
            }
        }
    }

    /// Counters about what was read so far.
    pub fn stats(&self) -> &ReadStats {
        &self.ctx.stats
    }

    /// Payloads (after the PEN) of the pcapng custom blocks with our PEN
    /// ([`crate::chunk::PEN`]) read so far, in file order.
    pub fn custom_blocks(&self) -> &[Vec<u8>] {
        &self.ctx.custom
    }

    /// The container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The compression the file was stored with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Iterator for CaptureReader {
    type Item = Result<Packet, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet().transpose()
    }
}

/// Reads one pcap record.
///
/// Records go through the crate's raw parser and are checked here, more
/// leniently than the crate would: an original length below the captured
/// length is raised to it, and an out-of-range fraction of a second is
/// carried into the seconds, as Wireshark does.
fn next_pcap(
    reader: &mut PcapReader<EofTracker>,
    link: LinkType,
    nanos: bool,
    offset: &mut u64,
    eof: &AtomicBool,
) -> Result<Option<Packet>, Failure> {
    let at = *offset;
    let raw = match reader.next_raw_packet() {
        None => return Ok(None),
        Some(Ok(raw)) => raw,
        Some(Err(e)) => return Err((at, pcap_error(e, eof))),
    };
    let frac_ns = if nanos { raw.ts_frac as u64 } else { raw.ts_frac as u64 * 1000 };
    let ts_ns = (raw.ts_sec as u64) * 1_000_000_000 + frac_ns;
    *offset += 16 + raw.incl_len as u64;
    trace!("pcap record at {at}: {} bytes", raw.incl_len);
    Ok(Some(Packet {
        ts_ns,
        link,
        data: raw.data.to_vec(),
        orig_len: raw.orig_len.max(raw.incl_len),
        meta: None,
        offset: at,
    }))
}

/// Reads pcapng blocks until the next packet.
fn next_pcapng(
    reader: &mut PcapNgReader<EofTracker>,
    ctx: &mut Context,
    eof: &AtomicBool,
) -> Result<Option<Packet>, Failure> {
    loop {
        let offset = reader.bytes_parsed();
        let (raw, state) = match reader.next_raw_block() {
            None => return Ok(None),
            Some(Ok(block)) => block,
            Some(Err(e)) => return Err((offset, pcapng_error(e, eof))),
        };
        trace!("pcapng block {:#x} at {offset}, {} bytes", raw.type_, raw.initial_len);
        match raw.type_ {
            ENHANCED_PACKET_BLOCK | PACKET_BLOCK | SIMPLE_PACKET_BLOCK => {
                return packet_block(raw, state, offset, ctx).map(Some);
            }
            // The reader has already applied these to its state.
            SECTION_HEADER_BLOCK => ctx.stats.sections += 1,
            INTERFACE_DESCRIPTION_BLOCK => ctx.stats.interfaces += 1,
            CUSTOM_BLOCK_COPIABLE | CUSTOM_BLOCK_NON_COPIABLE => {
                custom_block(raw, state, offset, ctx)?;
            }
            other => *ctx.stats.skipped_blocks.entry(other).or_default() += 1,
        }
    }
}

/// Keeps the payload of a custom block if it carries our PEN.
fn custom_block(
    raw: RawBlock<'_>,
    state: &PcapNgState,
    offset: u64,
    ctx: &mut Context,
) -> Result<(), Failure> {
    let type_ = raw.type_;
    let (pen, payload) = match raw.try_into_block(state) {
        Ok(Block::CustomCopiable(b)) => (b.pen, b.payload),
        Ok(Block::CustomNonCopiable(b)) => (b.pen, b.payload),
        Ok(_) => unreachable_block(type_, offset)?,
        Err(e) => return Err((offset, malformed(type_, &e))),
    };
    if pen == PEN {
        ctx.stats.custom_blocks += 1;
        ctx.custom.push(payload.into_owned());
    } else {
        *ctx.stats.skipped_blocks.entry(type_).or_default() += 1;
    }
    Ok(())
}

/// Turns an enhanced, simple or obsolete packet block into a [`Packet`].
fn packet_block(
    raw: RawBlock<'_>,
    state: &PcapNgState,
    offset: u64,
    ctx: &mut Context,
) -> Result<Packet, Failure> {
    let type_ = raw.type_;
    let block = match raw.clone().try_into_block(state) {
        Ok(block) => block,
        Err(e) => return repair(&raw, state, offset, ctx, &e),
    };
    let (interface, ts, orig_len, data, meta) = match &block {
        Block::EnhancedPacket(b) => {
            let meta = b.options.iter().find_map(|o| match o {
                EnhancedPacketOption::Common(c) => our_option(c),
                _ => None,
            });
            (b.interface_id, Some(b.timestamp), b.original_len, &b.data, meta)
        }
        Block::Packet(b) => {
            let meta = b.options.iter().find_map(|o| match o {
                PacketOption::Common(c) => our_option(c),
                _ => None,
            });
            (b.interface_id as u32, Some(b.timestamp), b.original_len, &b.data, meta)
        }
        // A simple packet block belongs to the first interface and has no
        // timestamp (pcapng spec, section 4.4).
        Block::SimplePacket(b) => (0, None, b.original_len, &b.data, None),
        _ => return unreachable_block(type_, offset),
    };
    let link = interface_link(state, interface).map_err(|k| (offset, k))?;
    let meta = meta.and_then(|m| ctx.meta(m, offset));
    Ok(Packet {
        ts_ns: ts.map_or(ctx.last_ts, duration_ns),
        link,
        data: data.to_vec(),
        orig_len: orig_len.max(data.len() as u32),
        meta,
        offset,
    })
}

/// Reads a packet block that the crate rejected, if its framing is sound.
///
/// The crate refuses a whole block for an option it cannot parse (a comment
/// that is not UTF-8, a flags option of the wrong size) or for an original
/// length below the captured length. Such a packet is still good data: read
/// the fixed fields here and ignore the options. A reference to an unknown
/// interface or a captured length beyond the block stays an error.
fn repair(
    raw: &RawBlock<'_>,
    state: &PcapNgState,
    offset: u64,
    ctx: &mut Context,
    err: &pcap_file::pcapng::BlockConversionError,
) -> Result<Packet, Failure> {
    let body = &raw.body[..];
    let big = state.endianness() == Endianness::Big;
    let u32_at = |at: usize| {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let fixed = match raw.type_ {
        ENHANCED_PACKET_BLOCK => u32_at(0).map(|id| (id, 20)),
        // The obsolete packet block has a 16-bit interface id then a 16-bit
        // drop count.
        PACKET_BLOCK => u32_at(0).map(|w| (if big { w >> 16 } else { w & 0xffff }, 20)),
        _ => None,
    };
    let give_up = || (offset, malformed(raw.type_, err));
    let (interface, data_at) = fixed.ok_or_else(give_up)?;
    let link = interface_link(state, interface).map_err(|k| (offset, k))?;
    let (ts_high, ts_low) = (u32_at(4).ok_or_else(give_up)?, u32_at(8).ok_or_else(give_up)?);
    let captured = u32_at(12).ok_or_else(give_up)?;
    let orig_len = u32_at(16).ok_or_else(give_up)?;
    let data = body.get(data_at..data_at + captured as usize).ok_or_else(give_up)?;
    let ts = state.decode_timestamp(interface, ts_high, ts_low).map_err(|_| give_up())?;
    ctx.stats.repaired_packets += 1;
    debug!("offset {offset}: packet kept, options ignored: {}", error_chain(err));
    Ok(Packet {
        ts_ns: duration_ns(ts),
        link,
        data: data.to_vec(),
        orig_len: orig_len.max(captured),
        meta: None,
        offset,
    })
}

impl Context {
    /// Decodes a metadata payload, sharing the result with the previous
    /// packet when the bytes are the same.
    fn meta(&mut self, payload: &[u8], offset: u64) -> Option<Arc<ProcMeta>> {
        if let Some((last, meta)) = &self.last_meta {
            if last[..] == *payload {
                self.stats.with_meta += 1;
                return Some(meta.clone());
            }
        }
        match ProcMeta::decode(payload) {
            Ok(meta) => {
                let meta = Arc::new(meta);
                self.last_meta = Some((payload.to_vec(), meta.clone()));
                self.stats.with_meta += 1;
                Some(meta)
            }
            Err(e) => {
                self.stats.bad_meta += 1;
                debug!("offset {offset}: process metadata ignored: {e}");
                None
            }
        }
    }
}

/// The payload of a custom option that holds our process metadata.
fn our_option<'b>(opt: &'b CommonOption<'_>) -> Option<&'b [u8]> {
    let (pen, value): (u32, &[u8]) = match opt {
        CommonOption::CustomBinaryCopiable(o) => (o.pen, &o.value),
        CommonOption::CustomBinaryNonCopiable(o) => (o.pen, &o.value),
        CommonOption::CustomUtf8Copiable(o) => (o.pen, o.value.as_bytes()),
        CommonOption::CustomUtf8NonCopiable(o) => (o.pen, o.value.as_bytes()),
        _ => return None,
    };
    // Our PEN may carry other payloads one day; the magic tells them apart.
    (pen == PEN && value.starts_with(META_MAGIC)).then_some(value)
}

/// Link type of interface `id` of the current section.
fn interface_link(state: &PcapNgState, id: u32) -> Result<LinkType, ReadErrorKind> {
    let interfaces = state.interfaces();
    match interfaces.get(id as usize) {
        Some(i) => Ok(LinkType(i.linktype.into())),
        None => Err(ReadErrorKind::UnknownInterface { id, count: interfaces.len() }),
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The crate converted a packet or custom block into another kind of block.
fn unreachable_block<T>(type_: u32, offset: u64) -> Result<T, Failure> {
    Err((
        offset,
        ReadErrorKind::Malformed {
            what: block_name(type_).to_lowercase(),
            detail: "decoded as another block type".into(),
        },
    ))
}

fn malformed(type_: u32, err: &pcap_file::pcapng::BlockConversionError) -> ReadErrorKind {
    ReadErrorKind::Malformed { what: block_name(type_).to_lowercase(), detail: error_chain(err) }
}

/// Maps an error of the crate's pcapng reader.
fn pcapng_error(e: PcapNgReadError, eof: &AtomicBool) -> ReadErrorKind {
    use pcap_file::pcapng::StateUpdateError;
    match e {
        PcapNgReadError::Io(e) => io_error(e, eof, "block"),
        PcapNgReadError::InvalidFormat(e) => {
            ReadErrorKind::Malformed { what: "block".into(), detail: lower(&e.to_string()) }
        }
        PcapNgReadError::BlockConversion(e)
        | PcapNgReadError::StateUpdate(StateUpdateError::BlockConversion(e)) => {
            malformed(e.type_, &e)
        }
    }
}

/// Maps an error of the crate's pcap reader.
fn pcap_error(e: PcapReadError, eof: &AtomicBool) -> ReadErrorKind {
    match e {
        PcapReadError::Io(e) => io_error(e, eof, "record"),
        PcapReadError::Validation(e) => {
            ReadErrorKind::Malformed { what: "pcap header".into(), detail: lower(&e.to_string()) }
        }
    }
}

/// When the record or block at `offset` of the file at `path` declares a
/// length beyond [`READ_BUFFER`], the error that says so. The crate reports
/// such a length in a short file as a bare end of file, like a truncation,
/// so the length field is read again from the file (decompressed as
/// needed); this runs once, on the error path. `endianness` is the
/// section's, unknown for a section header block, which tells its own.
fn length_too_large(
    path: &Path,
    offset: u64,
    format: Format,
    endianness: Option<Endianness>,
) -> Option<ReadErrorKind> {
    let file = File::open(path).ok()?;
    let mut r = compress::decompress(Box::new(file)).ok()?.reader;
    let skipped = io::copy(&mut (&mut r).take(offset), &mut io::sink()).ok()?;
    let mut head = [0u8; 12];
    if skipped != offset || r.read_exact(&mut head).is_err() {
        return None;
    }
    let word = |at: usize, e: Endianness| -> Option<u64> {
        let b: [u8; 4] = head.get(at..at + 4)?.try_into().ok()?;
        Some(match e {
            Endianness::Big => u32::from_be_bytes(b),
            Endianness::Little => u32::from_le_bytes(b),
        } as u64)
    };
    let (what, len) = match format {
        // The captured length, after the two timestamp words; the record
        // header comes on top of it.
        Format::Pcap => ("record", word(8, endianness?)?),
        Format::PcapNg => {
            let e = match (&head[..4], &head[8..]) {
                ([0x0a, 0x0d, 0x0d, 0x0a], [0x1a, 0x2b, 0x3c, 0x4d]) => Endianness::Big,
                ([0x0a, 0x0d, 0x0d, 0x0a], [0x4d, 0x3c, 0x2b, 0x1a]) => Endianness::Little,
                ([0x0a, 0x0d, 0x0d, 0x0a], _) => return None,
                _ => endianness?,
            };
            ("block", word(4, e)?)
        }
    };
    (len + 16 > READ_BUFFER as u64).then_some(ReadErrorKind::LengthTooLarge { what, len })
}

/// Tells a truncated file from a block too large for the read buffer: the
/// crate reports both as a bare `UnexpectedEof`.
fn io_error(e: io::Error, eof: &AtomicBool, unit: &'static str) -> ReadErrorKind {
    if e.kind() != io::ErrorKind::UnexpectedEof {
        return ReadErrorKind::Io(e);
    }
    if e.get_ref().is_none() && !eof.load(Ordering::Relaxed) {
        ReadErrorKind::TooLarge(unit)
    } else {
        ReadErrorKind::Truncated(unit)
    }
}

/// The messages of an error's sources, joined by ": " (the top-level
/// message of a block conversion error only repeats the block name).
fn error_chain(err: &pcap_file::pcapng::BlockConversionError) -> String {
    let mut parts = Vec::new();
    let mut cur = err.source();
    while let Some(e) = cur {
        parts.push(lower(&e.to_string()));
        cur = e.source();
    }
    if parts.is_empty() {
        parts.push(lower(&err.to_string()));
    }
    parts.join(": ")
}

/// The crate's messages start with a capital; ours do not.
fn lower(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn open(bytes: Vec<u8>) -> Result<CaptureReader, ReadError> {
        CaptureReader::from_reader("mem", Box::new(Cursor::new(bytes)))
    }

    #[test]
    fn empty_and_foreign_files_are_refused_at_offset_0() {
        let err = open(Vec::new()).err().unwrap();
        assert_eq!(err.to_string(), "mem: offset 0: file is empty");
        let err = open(b"GET / HTTP/1.1\r\n".to_vec()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "mem: offset 0: not a pcap or pcapng file (starts with 47 45 54 20)"
        );
    }

    #[test]
    fn reader_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<CaptureReader>();
        send::<ReadError>();
    }

    #[test]
    fn pcap_header_alone_is_an_empty_capture() {
        // Little-endian, microseconds, snaplen 65535, Ethernet.
        let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        h.extend([0; 8]);
        h.extend(65535u32.to_le_bytes());
        h.extend(1u32.to_le_bytes());
        let mut r = open(h).unwrap();
        assert_eq!(r.format(), Format::Pcap);
        assert!(r.next_packet().unwrap().is_none());
    }

    #[test]
    fn truncated_pcap_header_names_offset_0() {
        let err = open(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).err().unwrap();
        assert_eq!(err.offset, 0);
        assert!(matches!(err.kind, ReadErrorKind::Truncated(_)), "{err}");
    }

    #[test]
    fn lower_only_touches_the_first_letter() {
        assert_eq!(lower("Invalid UTF-8 format"), "invalid UTF-8 format");
        assert_eq!(lower(""), "");
    }
}
