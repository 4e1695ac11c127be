//! Writing chunks as synthetic TCP in pcapng.
//!
//! The recorder (src/capture) decides which synthetic TCP segment each chunk
//! becomes; this module turns segments into raw IPv4 packets (LINKTYPE_RAW,
//! checksums by etherparse) inside pcapng blocks that carry the sender's
//! metadata, and owns the output files: stdout, plain, zstd, and tcpdump-style
//! rotation with `-C`/`-W`.
//!
//! Block layout of every file: a section header, one interface per socket
//! path, name-resolution blocks as synthetic addresses appear, enhanced packet
//! blocks, and interface statistics at the end.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcapng::blocks::custom::{CustomBinaryOption, CustomBlock};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::name_resolution::{Ipv4Record, NameResolutionBlock, Record};
use pcap_file::pcapng::blocks::opt_common::{CommonOption, UnknownOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriteError, PcapNgWriter};
use pcap_file::DataLink;

use crate::chunk::{ProcMeta, PEN};
use crate::pcapng::{LinkType, Packet};

/// Largest TCP payload in one synthetic IPv4 packet (65535 minus the two
/// 20-byte headers).
pub const MAX_SEGMENT: usize = 65535 - 40;

/// epb_processid_threadid (pcapng option 8 of an enhanced packet block).
const EPB_PID_TID: u16 = 8;

/// Sees every packet the writer writes, as the reader would return it from
/// the file (`offset` is 0): `watch` decodes these live.
pub type PacketObserver = Box<dyn FnMut(&Packet)>;

/// Why writing a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    // The cause is part of the message, and so not also a `source` (which
    // `{:#}` would print a second time).
    #[error("{path}: {err}")]
    Open { path: PathBuf, err: io::Error },
    #[error("{path}: {err}")]
    Write { path: String, err: PcapNgWriteError },
    #[error("{path}: {err}")]
    Io { path: String, err: io::Error },
    #[error("building a synthetic packet: {0}")]
    Build(String),
}

/// TCP flag bits, as in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);

    pub fn has(self, f: TcpFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | o.0)
    }
}

/// One synthetic TCP segment.
#[derive(Clone, Debug)]
pub struct Segment<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    /// Acknowledgement number; sent with the ACK flag.
    pub ack: u32,
    pub flags: TcpFlags,
    pub payload: &'a [u8],
}

impl Segment<'_> {
    /// Appends the segment as a raw IPv4 packet with correct checksums.
    pub fn build(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        let mut b = PacketBuilder::ipv4(self.src.ip().octets(), self.dst.ip().octets(), 64).tcp(
            self.src.port(),
            self.dst.port(),
            self.seq,
            65535,
        );
        if self.flags.has(TcpFlags::SYN) {
            b = b.syn();
        }
        if self.flags.has(TcpFlags::FIN) {
            b = b.fin();
        }
        if self.flags.has(TcpFlags::PSH) {
            b = b.psh();
        }
        if self.flags.has(TcpFlags::ACK) {
            b = b.ack(self.ack);
        }
        b.write(out, self.payload).map_err(|e| WriteError::Build(e.to_string()))
    }
}

/// Direction of a packet relative to the interface (the socket path's
/// server end): client → server is inbound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    /// The epb_flags value (bits 0–1).
    fn epb_flags(self) -> u32 {
        match self {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        }
    }
}

/// What the section header says about where the file was written.
#[derive(Clone, Debug, Default)]
pub struct SectionInfo {
    pub os: String,
    pub hardware: String,
    pub application: String,
}

/// Per-interface statistics for the closing interface statistics blocks.
#[derive(Clone, Debug, Default)]
pub struct IfaceStats {
    /// Packets written on this interface.
    pub received: u64,
    /// Packets known lost (sequence gaps) on this interface.
    pub dropped: u64,
}

/// Where the blocks go: stdout, a plain file or a zstd stream.
pub enum Sink {
    Stdout(BufWriter<Stdout>),
    File(BufWriter<File>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    /// Creates `path` with mode 0600; a name ending in `.zst` is compressed.
    pub fn create(path: &Path) -> Result<Sink, WriteError> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|err| WriteError::Open { path: path.into(), err })?;
        let buf = BufWriter::with_capacity(256 << 10, file);
        if path.extension().is_some_and(|e| e == "zst") {
            let enc = zstd::Encoder::new(buf, 3)
                .map_err(|err| WriteError::Open { path: path.into(), err })?;
            return Ok(Sink::Zstd(enc));
        }
        Ok(Sink::File(buf))
    }

    /// Ends the output: the zstd frame is closed, buffers flushed.
    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush(),
            Sink::File(mut w) => w.flush(),
            Sink::Zstd(enc) => enc.finish()?.flush(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::File(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    /// For zstd, ends the current block so that everything written so far
    /// decompresses even if the file is cut here; the frame goes on.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::File(w) => w.flush(),
            Sink::Zstd(w) => {
                w.flush()?;
                w.get_mut().flush()
            }
        }
    }
}

/// Counts the bytes handed to the sink, for `-C`.
struct Counted {
    sink: Sink,
    bytes: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.sink.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

/// Output target and rotation, as the user gave them.
#[derive(Clone, Debug)]
pub struct OutputSpec {
    /// `None` for stdout.
    pub path: Option<PathBuf>,
    /// Rotate after this many bytes (before compression).
    pub rotate_bytes: Option<u64>,
    /// Keep at most this many files, reusing names in a ring.
    pub max_files: Option<u32>,
}

impl OutputSpec {
    /// Name of the `n`th file (from 0), numbered as tcpdump does: with `-W`
    /// every name has a number padded to the width of the largest; with only
    /// `-C` the first file has none. The number goes before a `.zst` suffix
    /// so that rotated files stay compressed.
    pub fn file_name(&self, n: u64) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        if self.rotate_bytes.is_none() {
            return Some(path.clone());
        }
        let num = match self.max_files {
            Some(w) => {
                let width = (w.saturating_sub(1)).to_string().len();
                format!("{:0width$}", n % u64::from(w.max(1)))
            }
            None if n == 0 => return Some(path.clone()),
            None => n.to_string(),
        };
        let s = path.to_string_lossy();
        let name = match s.strip_suffix(".zst") {
            Some(stem) => format!("{stem}{num}.zst"),
            None => format!("{s}{num}"),
        };
        Some(PathBuf::from(name))
    }
}

/// A pcapng capture being written, possibly across rotated files.
///
/// Interfaces and names are remembered so that every new file starts with
/// the same interface list and the names seen so far.
pub struct CaptureWriter {
    spec: OutputSpec,
    info: SectionInfo,
    file_no: u64,
    current_name: String,
    out: PcapNgWriter<Counted>,
    interfaces: Vec<String>,
    names: Vec<(Ipv4Addr, String)>,
    stats: Vec<IfaceStats>,
    start_ns: u64,
    meta_buf: Vec<u8>,
    /// Payload of the latest schema block, repeated in every rotated file.
    schema: Option<Vec<u8>>,
    observer: Option<PacketObserver>,
}

impl CaptureWriter {
    /// Opens the first output file (or stdout) and writes its section header.
    pub fn create(spec: OutputSpec, info: SectionInfo, start_ns: u64) -> Result<Self, WriteError> {
        let (sink, name) = open_sink(&spec, 0)?;
        let out = start_section(sink, &info, &name)?;
        Ok(CaptureWriter {
            spec,
            info,
            file_no: 0,
            current_name: name,
            out,
            interfaces: Vec::new(),
            names: Vec::new(),
            stats: Vec::new(),
            start_ns,
            meta_buf: Vec::new(),
            schema: None,
            observer: None,
        })
    }

    /// Hands every packet written from now on to `observer` as well.
    pub fn observe(&mut self, observer: PacketObserver) {
        self.observer = Some(observer);
    }

    /// Name of the file being written (`-` for stdout).
    pub fn current_name(&self) -> &str {
        &self.current_name
    }

    /// Adds an interface for a socket path and returns its id.
    pub fn add_interface(&mut self, path: &str) -> Result<u32, WriteError> {
        let id = self.interfaces.len() as u32;
        let name = format!("unix:{path}");
        write_interface(&mut self.out, &name, &self.current_name)?;
        self.interfaces.push(name);
        self.stats.push(IfaceStats::default());
        Ok(id)
    }

    /// Names synthetic addresses in a name resolution block.
    pub fn add_names(&mut self, names: &[(Ipv4Addr, String)]) -> Result<(), WriteError> {
        if names.is_empty() {
            return Ok(());
        }
        write_names(&mut self.out, names, &self.current_name)?;
        self.names.extend_from_slice(names);
        Ok(())
    }

    /// Counts packets lost on an interface (shown in its statistics block).
    pub fn count_drops(&mut self, iface: u32, n: u64) {
        if let Some(s) = self.stats.get_mut(iface as usize) {
            s.dropped += n;
        }
    }

    /// Writes a copyable custom block with our PEN holding `payload` (the
    /// schema set, see `crate::schema::encode_embedded`) and repeats it at
    /// the start of every later file of a rotation, so that each file is
    /// decodable on its own. A later call supersedes the earlier payload.
    pub fn write_schema_block(&mut self, payload: Vec<u8>) -> Result<(), WriteError> {
        write_custom(&mut self.out, &payload, &self.current_name)?;
        self.schema = Some(payload);
        Ok(())
    }

    /// Writes one segment as an enhanced packet block carrying `meta`.
    pub fn write_segment(
        &mut self,
        iface: u32,
        ts_ns: u64,
        seg: &Segment<'_>,
        dir: Direction,
        meta: Option<&ProcMeta>,
    ) -> Result<(), WriteError> {
        let mut data = Vec::with_capacity(40 + seg.payload.len());
        seg.build(&mut data)?;
        let mut options = vec![EnhancedPacketOption::Flags(dir.epb_flags())];
        let mut pid_tid = [0u8; 8];
        self.meta_buf.clear();
        if let Some(meta) = meta {
            meta.encode(&mut self.meta_buf);
            pid_tid[..4].copy_from_slice(&meta.pid.to_le_bytes());
            pid_tid[4..].copy_from_slice(&meta.tid.to_le_bytes());
            options.extend([
                // The option value is in the section's byte order, which
                // start_section sets to little-endian.
                EnhancedPacketOption::Common(CommonOption::Unknown(UnknownOption::new(
                    EPB_PID_TID,
                    &pid_tid,
                ))),
                EnhancedPacketOption::Common(CommonOption::Comment(Cow::Owned(meta.comment()))),
                EnhancedPacketOption::Common(CommonOption::CustomBinaryCopiable(
                    CustomBinaryOption { pen: PEN, value: Cow::Borrowed(&self.meta_buf) },
                )),
            ]);
        }
        let block = EnhancedPacketBlock {
            interface_id: iface,
            timestamp: Duration::from_nanos(ts_ns),
            original_len: data.len() as u32,
            data: Cow::Borrowed(&data),
            options,
        };
        write_block(&mut self.out, block, &self.current_name)?;
        if let Some(s) = self.stats.get_mut(iface as usize) {
            s.received += 1;
        }
        if let Some(observe) = self.observer.as_mut() {
            observe(&Packet {
                ts_ns,
                link: LinkType::RAW,
                orig_len: data.len() as u32,
                data,
                meta: meta.map(|m| Arc::new(m.clone())),
                offset: 0,
            });
        }
        Ok(())
    }

    /// Rotates to the next file when `-C` says the current one is full.
    /// Returns true when it did.
    pub fn rotate_if_full(&mut self, now_ns: u64) -> Result<bool, WriteError> {
        let Some(limit) = self.spec.rotate_bytes else {
            return Ok(false);
        };
        if self.out.get_ref().bytes < limit {
            return Ok(false);
        }
        self.write_statistics(now_ns, None)?;
        let (sink, name) = open_sink(&self.spec, self.file_no + 1)?;
        let new = start_section(sink, &self.info, &name)?;
        let old = std::mem::replace(&mut self.out, new);
        let old_name = std::mem::replace(&mut self.current_name, name);
        old.into_inner().sink.finish().map_err(|err| WriteError::Io { path: old_name, err })?;
        self.file_no += 1;
        for name in &self.interfaces {
            write_interface(&mut self.out, name, &self.current_name)?;
        }
        if !self.names.is_empty() {
            write_names(&mut self.out, &self.names, &self.current_name)?;
        }
        if let Some(p) = &self.schema {
            write_custom(&mut self.out, p, &self.current_name)?;
        }
        log::debug!("rotated to {}", self.current_name);
        Ok(true)
    }

    /// Pushes buffered blocks to the file (and ends a zstd block).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.out
            .get_mut()
            .flush()
            .map_err(|err| WriteError::Io { path: self.current_name.clone(), err })
    }

    /// Writes the statistics blocks and closes the output.
    pub fn finish(mut self, end_ns: u64, comment: Option<String>) -> Result<(), WriteError> {
        self.write_statistics(end_ns, comment)?;
        let name = self.current_name.clone();
        self.out.into_inner().sink.finish().map_err(|err| WriteError::Io { path: name, err })
    }

    fn write_statistics(&mut self, end_ns: u64, comment: Option<String>) -> Result<(), WriteError> {
        for (id, s) in self.stats.iter().enumerate() {
            let mut options = vec![
                InterfaceStatisticsOption::IsbStartTime(Duration::from_nanos(self.start_ns)),
                InterfaceStatisticsOption::IsbEndTime(Duration::from_nanos(end_ns)),
                InterfaceStatisticsOption::IsbIfRecv(s.received),
                InterfaceStatisticsOption::IsbIfDrop(s.dropped),
            ];
            if let Some(c) = &comment {
                options.push(InterfaceStatisticsOption::Common(CommonOption::Comment(c.into())));
            }
            let block = InterfaceStatisticsBlock {
                interface_id: id as u32,
                timestamp: Duration::from_nanos(end_ns),
                options,
            };
            write_block(&mut self.out, block, &self.current_name)?;
        }
        Ok(())
    }
}

fn open_sink(spec: &OutputSpec, n: u64) -> Result<(Sink, String), WriteError> {
    match spec.file_name(n) {
        None => Ok((Sink::Stdout(BufWriter::with_capacity(256 << 10, io::stdout())), "-".into())),
        Some(p) => Ok((Sink::create(&p)?, p.display().to_string())),
    }
}

fn start_section(
    sink: Sink,
    info: &SectionInfo,
    name: &str,
) -> Result<PcapNgWriter<Counted>, WriteError> {
    let shb = SectionHeaderBlock {
        // pcap-file defaults to big-endian; the pid/tid option (code 8) is
        // written little-endian, so the section must say so.
        endianness: pcap_file::Endianness::Little,
        options: vec![
            SectionHeaderOption::Hardware(info.hardware.clone().into()),
            SectionHeaderOption::OS(info.os.clone().into()),
            SectionHeaderOption::UserApplication(info.application.clone().into()),
        ],
        ..Default::default()
    };
    PcapNgWriter::with_section_header(Counted { sink, bytes: 0 }, shb)
        .map_err(|err| WriteError::Write { path: name.into(), err })
}

fn write_interface(
    out: &mut PcapNgWriter<Counted>,
    if_name: &str,
    file: &str,
) -> Result<(), WriteError> {
    let idb = InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 0,
        options: vec![
            InterfaceDescriptionOption::IfName(if_name.to_string().into()),
            InterfaceDescriptionOption::IfDescription(
                "Unix socket traffic as synthetic TCP/IPv4 (dockersnoop)".into(),
            ),
            InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO),
        ],
    };
    write_block(out, idb, file)
}

fn write_names(
    out: &mut PcapNgWriter<Counted>,
    names: &[(Ipv4Addr, String)],
    file: &str,
) -> Result<(), WriteError> {
    let records = names
        .iter()
        .map(|(ip, n)| Record::Ipv4(Ipv4Record { ip_addr: *ip, names: vec![n.clone().into()] }))
        .collect();
    write_block(out, NameResolutionBlock { records, options: vec![] }, file)
}

fn write_custom(
    out: &mut PcapNgWriter<Counted>,
    payload: &[u8],
    file: &str,
) -> Result<(), WriteError> {
    let block: CustomBlock<'_, true> = CustomBlock { pen: PEN, payload: Cow::Borrowed(payload) };
    write_block(out, block, file)
}

fn write_block<'a, B: PcapNgBlock<'a>>(
    out: &mut PcapNgWriter<Counted>,
    block: B,
    file: &str,
) -> Result<(), WriteError> {
    out.write_pcapng_block(block)
        .map(|_| ())
        .map_err(|err| WriteError::Write { path: file.into(), err })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ACK segment from a client port to port 80, the first after the handshake.
    fn segment(payload: &[u8]) -> Segment<'_> {
        Segment {
            src: "10.1.0.1:1025".parse().unwrap(),
            dst: "10.0.0.1:80".parse().unwrap(),
            seq: 1,
            ack: 1,
            flags: TcpFlags::ACK,
            payload,
        }
    }

    #[test]
    fn rotated_names_follow_tcpdump() {
        let spec = |c: Option<u64>, w: Option<u32>, p: &str| OutputSpec {
            path: Some(p.into()),
            rotate_bytes: c,
            max_files: w,
        };
        let s = spec(None, None, "a.pcapng");
        assert_eq!(s.file_name(3).unwrap(), PathBuf::from("a.pcapng"));
        let s = spec(Some(1), None, "a.pcapng");
        assert_eq!(s.file_name(0).unwrap(), PathBuf::from("a.pcapng"));
        assert_eq!(s.file_name(2).unwrap(), PathBuf::from("a.pcapng2"));
        let s = spec(Some(1), Some(12), "a.pcapng.zst");
        assert_eq!(s.file_name(0).unwrap(), PathBuf::from("a.pcapng00.zst"));
        assert_eq!(s.file_name(13).unwrap(), PathBuf::from("a.pcapng01.zst"));
        let s = OutputSpec { path: None, rotate_bytes: None, max_files: None };
        assert!(s.file_name(0).is_none());
    }

    #[test]
    fn segment_has_valid_checksums() {
        let seg = Segment {
            seq: 7,
            ack: 9,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            ..segment(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        };
        let mut buf = Vec::new();
        seg.build(&mut buf).unwrap();
        let p = etherparse::SlicedPacket::from_ip(&buf).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else { panic!("not ipv4") };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else { panic!("not tcp") };
        assert_eq!(tcp.sequence_number(), 7);
        assert_eq!(tcp.acknowledgment_number(), 9);
        assert!(tcp.psh() && tcp.ack() && !tcp.syn());
        assert_eq!(tcp.payload(), seg.payload);
        let want = tcp.to_header().calc_checksum_ipv4(&ip.header().to_header(), tcp.payload());
        assert_eq!(tcp.checksum(), want.unwrap());
        assert_eq!(ip.header().to_header().calc_header_checksum(), ip.header().header_checksum());
    }

    #[test]
    fn file_round_trips_through_pcap_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcapng");
        let spec = OutputSpec { path: Some(path.clone()), rotate_bytes: None, max_files: None };
        let info = SectionInfo { application: "dockersnoop test".into(), ..Default::default() };
        let mut w = CaptureWriter::create(spec, info, 1_000).unwrap();
        let iface = w.add_interface("/run/x.sock").unwrap();
        w.add_names(&[(Ipv4Addr::new(10, 0, 0, 1), "x.sock".into())]).unwrap();
        let meta = ProcMeta { pid: 5, tid: 6, comm: "c".into(), ..Default::default() };
        let seg = segment(b"hello");
        w.write_segment(iface, 1_000_000_123, &seg, Direction::Inbound, Some(&meta)).unwrap();
        w.finish(2_000_000_000, None).unwrap();

        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let f = File::open(&path).unwrap();
        let mut r = pcap_file::pcapng::PcapNgReader::new(f).unwrap();
        let mut epbs = 0;
        while let Some(b) = r.next_block() {
            if let (pcap_file::pcapng::Block::EnhancedPacket(e), _) = b.unwrap() {
                epbs += 1;
                assert_eq!(e.timestamp, Duration::from_nanos(1_000_000_123));
                let custom = e.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Common(CommonOption::CustomBinaryCopiable(c)) => {
                        Some(c.clone())
                    }
                    _ => None,
                });
                let custom = custom.expect("custom option");
                assert_eq!(custom.pen, PEN);
                assert_eq!(ProcMeta::decode(&custom.value).unwrap(), meta);
            }
        }
        assert_eq!(epbs, 1);
    }

    #[test]
    fn schema_block_is_read_back_and_repeated_after_rotation() {
        use prost::Message;
        use prost_types::{FileDescriptorProto, FileDescriptorSet};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.pcapng");
        let spec = OutputSpec { path: Some(path.clone()), rotate_bytes: Some(1), max_files: None };
        let mut w = CaptureWriter::create(spec, SectionInfo::default(), 0).unwrap();
        let iface = w.add_interface("/run/x.sock").unwrap();
        let set = |name: &str| FileDescriptorSet {
            file: vec![FileDescriptorProto { name: Some(name.into()), ..Default::default() }],
        };
        w.write_schema_block(crate::schema::encode_embedded(&set("a.proto")).unwrap()).unwrap();
        w.write_schema_block(crate::schema::encode_embedded(&set("b.proto")).unwrap()).unwrap();
        let meta = ProcMeta { pid: 5, tid: 6, comm: "c".into(), ..Default::default() };
        let seg = segment(b"x");
        w.write_segment(iface, 1, &seg, Direction::Outbound, Some(&meta)).unwrap();
        assert!(w.rotate_if_full(2).unwrap());
        w.finish(3, None).unwrap();

        // A little-endian section (byte-order magic after type and length).
        let head = std::fs::read(&path).unwrap();
        assert_eq!(head[8..12], 0x1a2b3c4du32.to_le_bytes());
        let first = crate::schema::capture::embedded_sets(&path).unwrap();
        assert_eq!(first, vec![set("a.proto").encode_to_vec(), set("b.proto").encode_to_vec()]);
        // The rotated file starts with the latest set only.
        let second = crate::schema::capture::embedded_sets(&dir.path().join("s.pcapng1")).unwrap();
        assert_eq!(second, vec![set("b.proto").encode_to_vec()]);
    }
}
