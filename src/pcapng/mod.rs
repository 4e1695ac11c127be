//! pcap and pcapng files: the reader that feeds `decode`, and the writer the
//! recorder uses to turn chunks into synthetic TCP that Wireshark understands.

pub mod compress;
pub mod reader;
pub mod writer;

use std::sync::Arc;

use crate::chunk::ProcMeta;

/// Link-layer header type of an interface (the pcap LINKTYPE_ numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One packet read from a capture file, whatever its format.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Link type of the interface the packet was captured on.
    pub link: LinkType,
    /// The captured bytes, starting with the link-layer header.
    pub data: Vec<u8>,
    /// Original length on the wire (may exceed `data.len()` if snapped).
    pub orig_len: u32,
    /// Sender metadata from our custom option, when the file has it.
    pub meta: Option<Arc<ProcMeta>>,
    /// Byte offset of the packet's block or record in the (uncompressed) file.
    pub offset: u64,
}
