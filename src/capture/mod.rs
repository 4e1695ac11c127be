//! Capture sources: the eBPF recorder that turns Unix-socket sends into chunks.
//!
//! `record` drives it: `tracefs` makes sure the tracepoints can be attached,
//! `filter` turns `--socket` into kernel prefixes, `bpf` loads the kernel side
//! and parses its records, `conn` turns them into synthetic TCP, and `status`
//! keeps the user informed; `schemas` embeds the protobuf descriptors of
//! the binaries seen talking.

pub mod bpf;
pub mod conn;
pub mod filter;
pub mod record;
pub mod schemas;
pub mod status;
pub mod tracefs;
