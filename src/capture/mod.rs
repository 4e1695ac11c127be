//! Capture sources: the eBPF recorder that turns Unix-socket sends into chunks.

pub mod record;
