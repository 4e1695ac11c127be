//! HTTP/2 frame layout (RFC 9113 §4 and §6): headers, payload views and the
//! plausibility test used to find frame boundaries without context.
//!
//! ```text
//! +-----------------------------------------------+
//! |                 Length (24)                   |
//! +---------------+---------------+---------------+
//! |   Type (8)    |   Flags (8)   |
//! +-+-------------+---------------+-------------------------------+
//! |R|                 Stream Identifier (31)                      |
//! +=+=============================================================+
//! |                   Frame Payload (0...)                      ...
//! +---------------------------------------------------------------+
//! ```

use std::fmt;

/// Length of the frame header.
pub const HEADER_LEN: usize = 9;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Default SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

/// A frame type; unknown types survive as their number.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameType(pub u8);

impl FrameType {
    pub const DATA: FrameType = FrameType(0);
    pub const HEADERS: FrameType = FrameType(1);
    pub const PRIORITY: FrameType = FrameType(2);
    pub const RST_STREAM: FrameType = FrameType(3);
    pub const SETTINGS: FrameType = FrameType(4);
    pub const PUSH_PROMISE: FrameType = FrameType(5);
    pub const PING: FrameType = FrameType(6);
    pub const GOAWAY: FrameType = FrameType(7);
    pub const WINDOW_UPDATE: FrameType = FrameType(8);
    pub const CONTINUATION: FrameType = FrameType(9);

    fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 10] = [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ];
        NAMES.get(self.0 as usize).copied()
    }
}

impl fmt::Debug for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "type {}", self.0),
        }
    }
}

/// Frame flags.
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// An HTTP/2 error code (RST_STREAM, GOAWAY); unknown codes print as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: ErrorCode = ErrorCode(0);
    pub const CANCEL: ErrorCode = ErrorCode(8);

    /// The RFC 9113 §7 name, or the number.
    pub fn name(self) -> String {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        match NAMES.get(self.0 as usize) {
            Some(n) => (*n).to_string(),
            None => format!("0x{:x}", self.0),
        }
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub ty: FrameType,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    /// Reads the 9-byte header at the start of `buf`, if there are 9 bytes.
    pub fn load(buf: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            ty: FrameType(h[3]),
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    /// Writes the header (used by tests and tools).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_be_bytes()[1..]);
        out.push(self.ty.0);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether these 9 bytes could be a frame header a real peer sent: a known
    /// type, only flags defined for it, a length that fits the type, and a
    /// stream id of the right kind. Used to join mid-stream and after gaps.
    pub fn is_plausible(&self, max_len: u32) -> bool {
        let s0 = self.stream == 0;
        let (allowed_flags, len_ok, stream_ok) = match self.ty {
            FrameType::DATA => (0x09, true, !s0),
            FrameType::HEADERS => (0x2d, self.len > 0, !s0),
            FrameType::PRIORITY => (0, self.len == 5, !s0),
            FrameType::RST_STREAM => (0, self.len == 4, !s0),
            FrameType::SETTINGS => (0x01, self.len.is_multiple_of(6), s0),
            FrameType::PUSH_PROMISE => (0x0c, self.len >= 4, !s0),
            FrameType::PING => (0x01, self.len == 8, s0),
            FrameType::GOAWAY => (0, self.len >= 8, s0),
            FrameType::WINDOW_UPDATE => (0, self.len == 4, true),
            FrameType::CONTINUATION => (0x04, true, !s0),
            _ => return false,
        };
        self.flags & !allowed_flags == 0 && len_ok && stream_ok && self.len <= max_len
    }
}

/// Why a frame payload is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{0:?} frame padding longer than its payload")]
    BadPadding(FrameType),
    #[error("{ty:?} frame of {len} bytes is too short")]
    TooShort { ty: FrameType, len: u32 },
}

/// Strips padding (DATA, HEADERS, PUSH_PROMISE) from a payload.
pub fn unpad<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<&'a [u8], FrameError> {
    if !h.has(flags::PADDED) {
        return Ok(payload);
    }
    let (&pad, rest) = payload.split_first().ok_or(FrameError::BadPadding(h.ty))?;
    let keep = rest.len().checked_sub(pad as usize).ok_or(FrameError::BadPadding(h.ty))?;
    Ok(&rest[..keep])
}

/// Priority fields of a HEADERS frame or a PRIORITY frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub depends_on: u32,
    pub weight: u8,
}

impl Priority {
    fn load(b: &[u8]) -> Option<Priority> {
        let dep = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
        Some(Priority {
            exclusive: dep & 0x8000_0000 != 0,
            depends_on: dep & 0x7fff_ffff,
            weight: *b.get(4)?,
        })
    }
}

/// The header block fragment of a HEADERS frame, after padding and priority.
pub fn headers_fragment<'a>(
    h: &FrameHeader,
    payload: &'a [u8],
) -> Result<(Option<Priority>, &'a [u8]), FrameError> {
    let body = unpad(h, payload)?;
    if !h.has(flags::PRIORITY) {
        return Ok((None, body));
    }
    let short = FrameError::TooShort { ty: h.ty, len: h.len };
    let prio = Priority::load(body).ok_or(short.clone())?;
    Ok((Some(prio), body.get(5..).ok_or(short)?))
}

/// Promised stream id and header block fragment of a PUSH_PROMISE frame.
pub fn push_promise<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<(u32, &'a [u8]), FrameError> {
    let body = unpad(h, payload)?;
    let short = FrameError::TooShort { ty: h.ty, len: h.len };
    let id = u32::from_be_bytes(body.get(..4).ok_or(short.clone())?.try_into().map_err(|_| short)?);
    Ok((id & 0x7fff_ffff, &body[4..]))
}

/// The payload of a PRIORITY frame.
pub fn priority(h: &FrameHeader, payload: &[u8]) -> Result<Priority, FrameError> {
    Priority::load(payload).ok_or(FrameError::TooShort { ty: h.ty, len: h.len })
}

/// Reads a 4-byte big-endian value (RST_STREAM code, WINDOW_UPDATE increment).
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The (id, value) pairs of a SETTINGS payload.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|c| (u16::from_be_bytes([c[0], c[1]]), u32_at(c, 2).unwrap_or(0)))
}

/// SETTINGS identifiers we act on.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 1;
    pub const MAX_FRAME_SIZE: u16 = 5;
}

/// Finds the first offset in `buf` where a plausible frame header starts and
/// is followed, when its payload is in `buf`, by another plausible header or
/// by the exact end of `buf`. `None` means no boundary yet: keep more bytes.
pub fn find_boundary(buf: &[u8], max_len: u32) -> Option<usize> {
    let last = buf.len().checked_sub(HEADER_LEN)?;
    (0..=last).find(|&at| {
        let Some(h) = FrameHeader::load(&buf[at..]) else {
            return false;
        };
        if !h.is_plausible(max_len) {
            return false;
        }
        let next = at + HEADER_LEN + h.len as usize;
        match buf.get(next..) {
            Some([]) => true,
            Some(rest) => match FrameHeader::load(rest) {
                Some(h2) => h2.is_plausible(max_len),
                // Fewer than 9 bytes after it: undecided, wait for more.
                None => false,
            },
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        FrameHeader { len: payload.len() as u32, ty: FrameType(ty), flags, stream }.encode(&mut v);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_round_trip() {
        let v = frame(1, 0x25, 7, b"abc");
        let h = FrameHeader::load(&v).unwrap();
        assert_eq!((h.len, h.ty, h.flags, h.stream), (3, FrameType::HEADERS, 0x25, 7));
    }

    #[test]
    fn padding_and_priority() {
        let h = FrameHeader { len: 0, ty: FrameType::HEADERS, flags: 0x28, stream: 1 };
        let payload = [2, 0x80, 0, 0, 3, 15, b'x', b'y', 0, 0];
        let (p, frag) = headers_fragment(&h, &payload).unwrap();
        assert_eq!(p, Some(Priority { exclusive: true, depends_on: 3, weight: 15 }));
        assert_eq!(frag, b"xy");
        assert!(unpad(&h, &[5, 1]).is_err());
    }

    #[test]
    fn boundary_skips_garbage() {
        let mut buf = vec![0xde, 0xad, 0xbe];
        buf.extend(frame(4, 0, 0, &[0, 1, 0, 0, 0x10, 0]));
        buf.extend(frame(6, 1, 0, &[0; 8]));
        assert_eq!(find_boundary(&buf, 1 << 14), Some(3));
        assert_eq!(find_boundary(&buf[..5], 1 << 14), None);
    }
}
