//! `dockersnoop schema extract` and `dockersnoop schema list`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorSet;

use super::capture::{self, Kind};
use super::{build_set, extract_from_file, filter_packages, MergeNote, MergeReport, SchemaError};
use crate::cli::{SchemaCommand, SchemaExtractArgs, SchemaListArgs};

pub fn run(command: &SchemaCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchemaCommand::Extract(args) => extract(args),
        SchemaCommand::List(args) => list(args),
    }
}

/// Scans every binary, merges what they hold and writes one set. A binary
/// that cannot be read or holds nothing is reported and the others still
/// count; the exit status says something was missing.
fn extract(args: &SchemaExtractArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    let mut failed = false;
    for path in &args.binaries {
        match extract_from_file(path) {
            Ok(found) => {
                eprintln!("{}: {}", path.display(), plural(found.len(), "descriptor"));
                files.extend(found);
            }
            Err(e) => {
                eprintln!("dockersnoop: {e}");
                failed = true;
            }
        }
    }
    if files.is_empty() {
        anyhow::bail!("no descriptors in any binary given, nothing written");
    }
    let (mut set, report) = build_set(files)?;
    print_report(&report);
    if !args.packages.is_empty() {
        set = filter_packages(&set, &args.packages);
        if set.file.is_empty() {
            anyhow::bail!("no file of package {} found, nothing written", args.packages.join(", "));
        }
    }
    let bytes = set.encode_to_vec();
    if args.output.as_os_str() == "-" {
        io::stdout().lock().write_all(&bytes)?;
    } else {
        fs::write(&args.output, &bytes).with_context(|| format!("{}", args.output.display()))?;
    }
    let services: usize = set.file.iter().map(|f| f.service.len()).sum();
    eprintln!(
        "wrote {}, {}, {} bytes to {}",
        plural(set.file.len(), "file"),
        plural(services, "service"),
        bytes.len(),
        args.output.display()
    );
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `1 file`, `2 files`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Tells the user what was renamed, merged and dropped; the many imports of
/// option files (gogo.proto) nobody registered are summed up.
fn print_report(report: &MergeReport) {
    let mut dropped_imports: BTreeMap<&str, usize> = BTreeMap::new();
    for note in &report.notes {
        match note {
            MergeNote::ImportDropped { import, .. } => {
                log::debug!("{note}");
                *dropped_imports.entry(import).or_default() += 1;
            }
            MergeNote::Conflict { .. } => log::info!("{note}"),
            _ => eprintln!("{note}"),
        }
    }
    let dropped_any = !dropped_imports.is_empty();
    for (import, n) in dropped_imports {
        eprintln!("dropped import {import} from {}: no file has that name", plural(n, "file"));
    }
    if dropped_any {
        eprintln!("(types those files use are imported from the files defining them)");
    }
    if report.duplicates > 0 {
        eprintln!("{} identical copies dropped", report.duplicates);
    }
}

/// Prints every method of every service the source knows, sorted.
fn list(args: &SchemaListArgs) -> anyhow::Result<ExitCode> {
    let pool = match &args.file {
        None => super::builtin(),
        Some(path) => load_any(path)?,
    };
    let mut rows = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let stream = |yes: bool| if yes { "stream " } else { "" };
            rows.push([
                format!("/{}/{}", service.full_name(), method.name()),
                format!("{}{}", stream(method.is_client_streaming()), method.input().full_name()),
                format!("{}{}", stream(method.is_server_streaming()), method.output().full_name()),
            ]);
        }
    }
    rows.sort();
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    let (w0, w1) = (width(0).max(6), width(1).max(7));
    let mut out = io::stdout().lock();
    writeln!(out, "{:w0$}  {:w1$}  RESPONSE", "METHOD", "REQUEST")?;
    for [m, req, resp] in &rows {
        writeln!(out, "{m:w0$}  {req:w1$}  {resp}")?;
    }
    if rows.is_empty() {
        eprintln!("no services ({} files of messages only)", pool.files().len());
    }
    Ok(ExitCode::SUCCESS)
}

/// A pool from a protoset, a capture's embedded sets or a binary.
fn load_any(path: &Path) -> anyhow::Result<DescriptorPool> {
    let mut head = Vec::new();
    capture::open(path)?
        .take(16)
        .read_to_end(&mut head)
        .with_context(|| format!("{}", path.display()))?;
    match capture::sniff(&head) {
        Kind::Pcapng => {
            let sets = capture::embedded_sets(path)?;
            if sets.is_empty() {
                anyhow::bail!("{}: the capture holds no embedded schema", path.display());
            }
            // The capture's own sets only, no built-in fallback: show what it carries.
            let mut pool = DescriptorPool::new();
            for set in sets {
                let set = FileDescriptorSet::decode(set.as_slice())
                    .map_err(|e| SchemaError::BadSet(e).in_file(path))?;
                super::layer(&mut pool, set.file, super::Source::Embedded)?;
            }
            Ok(pool)
        }
        Kind::Pcap => anyhow::bail!(
            "{}: a pcap file holds no schema (only pcapng captures written by record do)",
            path.display()
        ),
        Kind::Binary => binary_pool(path),
        Kind::Other => {
            let mut bytes = Vec::new();
            capture::open(path)?
                .read_to_end(&mut bytes)
                .with_context(|| format!("{}", path.display()))?;
            match DescriptorPool::decode(bytes.as_slice()) {
                Ok(pool) if pool.files().len() > 0 => Ok(pool),
                Ok(_) => anyhow::bail!("{}: empty descriptor set", path.display()),
                // Not a set: maybe a binary in a format we do not sniff.
                Err(set_err) => binary_pool(path).map_err(|_| {
                    anyhow::anyhow!(
                        "{}: not a protoset ({set_err}), a pcapng capture \
                         or a binary with descriptors",
                        path.display()
                    )
                }),
            }
        }
    }
}

fn binary_pool(path: &Path) -> anyhow::Result<DescriptorPool> {
    let (set, report) = build_set(extract_from_file(path)?).map_err(|e| e.in_file(path))?;
    for note in &report.notes {
        log::debug!("{note}");
    }
    DescriptorPool::from_file_descriptor_set(set)
        .with_context(|| format!("{}: merged descriptors do not load", path.display()))
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(0, "file"), "0 files");
        assert_eq!(plural(2, "service"), "2 services");
    }
}
