//! Renderers: decoded messages as a table or JSON lines, and the filters that
//! choose which records are shown.

pub mod json;
pub mod table;

pub use json::JsonRenderer;
pub use table::TableRenderer;

use crate::cli::ProtocolArg;
use crate::decode::{Proto, Record};

/// `--method REGEX`, `--pid PID`, `--comm NAME`, `--protocol LIST`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub method: Option<regex::Regex>,
    /// Matches the sender's pid or its peer's.
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// Protocols shown; empty shows all.
    pub protocols: Vec<Proto>,
}

/// The record protocol a `--protocol` value names.
pub fn proto_of(p: ProtocolArg) -> Proto {
    match p {
        ProtocolArg::Grpc => Proto::Grpc,
        ProtocolArg::Http2 => Proto::Http2,
        ProtocolArg::Ttrpc => Proto::Ttrpc,
        ProtocolArg::Http1 => Proto::Http1,
    }
}

impl Filter {
    /// Whether a record passes every filter that is set. Records without
    /// process metadata never match `--pid` or `--comm`.
    pub fn matches(&self, r: &Record) -> bool {
        if !self.protocols.is_empty() && !self.protocols.contains(&r.proto) {
            return false;
        }
        if let Some(re) = &self.method {
            if !r.method.as_deref().is_some_and(|m| re.is_match(m)) {
                return false;
            }
        }
        if let Some(pid) = self.pid {
            if !r.meta.as_ref().is_some_and(|m| m.pid == pid || m.peer_pid == Some(pid)) {
                return false;
            }
        }
        if let Some(comm) = &self.comm {
            let same = r.meta.as_ref().is_some_and(|m| &m.comm == comm);
            if !same {
                return false;
            }
        }
        true
    }
}
