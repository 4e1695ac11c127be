//! Chunks: the unit the capture side produces and every later stage consumes.
//!
//! A chunk is the bytes one thread sent on one Unix socket in one system call,
//! together with who sent them. The recorder turns each chunk into one or more
//! synthetic TCP segments in a pcapng file and stores the [`ProcMeta`] of the
//! sender in a custom option of every packet block, so that `decode` can show
//! COMM/PID/TID/PEER on any machine.

use std::fmt;

/// IANA Private Enterprise Number under which our pcapng custom options and
/// custom blocks are written.
///
/// 32473 is the number RFC 5612 reserves for documentation and examples. We
/// use it until the project registers a number of its own; readers must check
/// the magic at the start of the payload as well as the PEN.
pub const PEN: u32 = 32473;

/// First bytes of the payload of our process-metadata custom option.
pub const META_MAGIC: &[u8; 4] = b"DSM1";

/// Kind of Unix socket a chunk was sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SockType(pub u16);

impl SockType {
    pub const STREAM: SockType = SockType(1);
    pub const DGRAM: SockType = SockType(2);
    pub const SEQPACKET: SockType = SockType(5);

    /// The name used in comments and logs (`stream`, `dgram`, `seqpacket`),
    /// or the number for a type we do not know.
    pub fn name(self) -> String {
        match self {
            SockType::STREAM => "stream".into(),
            SockType::DGRAM => "dgram".into(),
            SockType::SEQPACKET => "seqpacket".into(),
            SockType(n) => n.to_string(),
        }
    }
}

/// Who sent a chunk, and on which socket.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProcMeta {
    /// Thread group id (what users call the pid) of the sender.
    pub pid: u32,
    /// Thread id of the sender.
    pub tid: u32,
    /// Pid of the process at the other end, when the kernel knew it.
    pub peer_pid: Option<u32>,
    /// The sender's `comm` (at most 15 bytes in the kernel; may be lossy UTF-8).
    pub comm: String,
    /// Inode number of the sending socket.
    pub sock_ino: u64,
    /// Inode number of the peer socket, 0 when unknown.
    pub peer_ino: u64,
    /// Socket type.
    pub sock_type: SockType,
    /// Path of whichever end is bound (`@name` for abstract sockets), may be empty.
    pub path: String,
}

/// Why a metadata payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("process metadata does not start with the DSM1 magic")]
    BadMagic,
    #[error("process metadata is truncated")]
    Truncated,
}

impl ProcMeta {
    /// Encodes the metadata as the payload of our custom option (after the PEN).
    ///
    /// ```text
    /// "DSM1" | pid u32 | tid u32 | peer_pid u32 (u32::MAX = unknown)
    ///        | sock_ino u64 | peer_ino u64 | sock_type u16
    ///        | comm_len u16 | comm | path_len u16 | path
    /// ```
    /// All integers little-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(META_MAGIC);
        out.extend_from_slice(&self.pid.to_le_bytes());
        out.extend_from_slice(&self.tid.to_le_bytes());
        out.extend_from_slice(&self.peer_pid.unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&self.sock_ino.to_le_bytes());
        out.extend_from_slice(&self.peer_ino.to_le_bytes());
        out.extend_from_slice(&self.sock_type.0.to_le_bytes());
        for s in [&self.comm, &self.path] {
            let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
    }

    /// Reads a payload written by [`ProcMeta::encode`]. Trailing bytes are
    /// ignored so that later versions can append fields.
    pub fn decode(buf: &[u8]) -> Result<ProcMeta, MetaError> {
        let rest = buf.strip_prefix(META_MAGIC).ok_or(MetaError::BadMagic)?;
        let mut r = Reader(rest);
        let pid = r.u32()?;
        let tid = r.u32()?;
        let peer_pid = Some(r.u32()?).filter(|&p| p != u32::MAX);
        let sock_ino = r.u64()?;
        let peer_ino = r.u64()?;
        let sock_type = SockType(r.u16()?);
        let comm = r.string()?;
        let path = r.string()?;
        Ok(ProcMeta { pid, tid, peer_pid, comm, sock_ino, peer_ino, sock_type, path })
    }

    /// The human-readable comment written beside the custom option.
    pub fn comment(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ProcMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "comm={} pid={} tid={} peer_pid=", self.comm, self.pid, self.tid)?;
        match self.peer_pid {
            Some(p) => write!(f, "{p}")?,
            None => f.write_str("-")?,
        }
        write!(f, " path={}", if self.path.is_empty() { "-" } else { &self.path })
    }
}

/// A bounds-checked little-endian reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MetaError> {
        let (head, tail) = self.0.split_at_checked(n).ok_or(MetaError::Truncated)?;
        self.0 = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, MetaError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, MetaError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, MetaError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn string(&mut self) -> Result<String, MetaError> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProcMeta {
        ProcMeta {
            pid: 14768,
            tid: 14770,
            peer_pid: Some(14455),
            comm: "dockerd".into(),
            sock_ino: 123456,
            peer_ino: 123457,
            sock_type: SockType::STREAM,
            path: "/run/containerd/containerd.sock".into(),
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        assert_eq!(ProcMeta::decode(&buf).unwrap(), sample());
        let unknown_peer = ProcMeta { peer_pid: None, ..sample() };
        buf.clear();
        unknown_peer.encode(&mut buf);
        assert_eq!(ProcMeta::decode(&buf).unwrap().peer_pid, None);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        for n in 0..buf.len() {
            assert!(ProcMeta::decode(&buf[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn comment_names_everything() {
        assert_eq!(
            sample().comment(),
            "comm=dockerd pid=14768 tid=14770 peer_pid=14455 path=/run/containerd/containerd.sock"
        );
    }
}
