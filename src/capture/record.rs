//! `dockersnoop record`.

use std::process::ExitCode;

use crate::cli::RecordArgs;

/// Runs `dockersnoop record`.
pub fn run(_args: &RecordArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("record: not built yet")
}
