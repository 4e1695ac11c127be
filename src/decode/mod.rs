//! Protocol decoders: HTTP/2, HPACK, gRPC and protobuf over reassembled streams.

use std::process::ExitCode;

use crate::cli::DecodeArgs;

/// Runs `dockersnoop decode`.
pub fn run(_args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("decode: not built yet")
}
