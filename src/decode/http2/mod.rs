//! HTTP/2: frame layout ([`frame`]) and the per-connection state machine
//! ([`conn`]) that turns byte streams into header blocks, messages and rows.

pub mod conn;
pub mod frame;
