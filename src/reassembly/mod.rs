//! Stream reassembly: packets in, ordered byte streams per connection and
//! direction out.
//!
//! The reassembler hands the protocol decoders [`StreamEvent`]s. A decoder
//! never sees a packet, a retransmission or a duplicate, only bytes in order,
//! and an explicit [`StreamEvent::Gap`] where bytes are missing.

pub mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::chunk::ProcMeta;

/// Identifies one connection within a file; numbered from 0 in order of first sight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Direction of a byte stream within a connection.
///
/// `AtoB` is from the endpoint that opened the connection (the SYN sender) to
/// the other; when the handshake was not captured, A is whichever endpoint
/// sent the first payload seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    AtoB,
    BtoA,
}

impl Dir {
    pub fn reverse(self) -> Dir {
        match self {
            Dir::AtoB => Dir::BtoA,
            Dir::BtoA => Dir::AtoB,
        }
    }
}

/// What the reassembler tells the decoders.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    /// A connection was seen for the first time.
    Open {
        conn: ConnId,
        ts_ns: u64,
        /// Endpoint A (see [`Dir`]).
        a: SocketAddr,
        /// Endpoint B.
        b: SocketAddr,
        /// True when the handshake was not captured: the decoders may be
        /// joining the byte streams in the middle.
        mid_stream: bool,
    },
    /// In-order bytes of one direction.
    Data {
        conn: ConnId,
        dir: Dir,
        ts_ns: u64,
        data: &'a [u8],
        /// Sender metadata of the packet these bytes came from.
        meta: Option<&'a Arc<ProcMeta>>,
    },
    /// `len` bytes of one direction were never captured; the next `Data` of
    /// that direction continues after them.
    Gap { conn: ConnId, dir: Dir, ts_ns: u64, len: u64 },
    /// The connection ended (FIN or RST from both sides, or end of file).
    Close { conn: ConnId, ts_ns: u64 },
}
