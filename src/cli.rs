//! What the user typed: clap definitions for every subcommand.
//!
//! Each subcommand's module turns its `*Args` into the checked configuration
//! it works from; nothing here does any work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Show what docker, containerd and their helpers say to each other over Unix sockets.
#[derive(Parser, Debug)]
#[command(name = "dockersnoop", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v: decisions, -vv: per-frame detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Capture Unix-socket traffic with eBPF into a pcapng file Wireshark opens as TCP.
    Record(RecordArgs),
    /// Decode pcap/pcapng captures: gRPC over HTTP/2, ttrpc and HTTP/1.1, with protobuf schemas.
    Decode(DecodeArgs),
    /// Record and decode at once: one row per message as it is sent.
    Watch(WatchArgs),
    /// Extract protobuf schemas from Go binaries, and list what a schema source holds.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// Write the .proto descriptors embedded in Go binaries as a FileDescriptorSet
    /// (the format of protoc --include_imports --descriptor_set_out and grpcurl -protoset).
    Extract(SchemaExtractArgs),
    /// List the gRPC services and methods, with request and response types, in a
    /// protoset, a capture written by `record`, or a binary.
    List(SchemaListArgs),
}

#[derive(Args, Debug, Clone)]
pub struct SchemaExtractArgs {
    /// Go binaries to scan (e.g. /usr/bin/containerd /usr/sbin/dockerd).
    #[arg(value_name = "BINARY", required = true)]
    pub binaries: Vec<PathBuf>,

    /// Output file (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    /// Keep only files of this package or packages below it (`containerd.services`
    /// keeps `containerd.services.tasks.v1`), and what they import. Repeatable.
    #[arg(long = "package", value_name = "PACKAGE")]
    pub packages: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct SchemaListArgs {
    /// A protoset, a pcapng capture written by `record`, or a binary.
    /// Without one, the built-in schemas are listed.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// How the kernel side hooks the send path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Probe {
    /// The best backend that loads: fentry, then kprobe, then tracepoint.
    Auto,
    /// syscalls:sys_{enter,exit}_* tracepoints.
    Tracepoint,
    /// fentry/fexit on the Unix socket send functions.
    Fentry,
    /// kprobe/kretprobe on the Unix socket send functions.
    Kprobe,
}

/// Which Unix sockets, processes and how much to record.
#[derive(Args, Debug, Clone)]
pub struct SelectArgs {
    /// Socket to capture: exact path, glob (`/run/containerd/s/*`), abstract
    /// name (`@name`) or `any`. Repeatable. Default: containerd's gRPC and
    /// ttrpc sockets, the shim sockets and docker's API socket.
    #[arg(long = "socket", value_name = "PATTERN")]
    pub sockets: Vec<String>,

    /// Only capture chunks sent by this process. Repeatable.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Only capture chunks sent by processes with this name. Repeatable.
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,

    /// Stop after this many chunks.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Kernel probe backend.
    #[arg(long, value_enum, default_value_t = Probe::Auto)]
    pub probe: Probe,

    /// Size of the BPF ring buffer (e.g. 64M, 256M; a power of two).
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub ring_size: String,
}

#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// Output file (`-` for stdout; a name ending in `.zst` is zstd-compressed).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Rotate to a new file when the current one reaches this many megabytes
    /// (1,000,000 bytes), as tcpdump -C does.
    #[arg(short = 'C', value_name = "MBYTES")]
    pub file_size: Option<u64>,

    /// With -C, keep at most this many files, reusing names in a ring, as tcpdump -W does.
    #[arg(short = 'W', value_name = "FILES")]
    pub file_count: Option<u32>,

    /// No status line; only errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Output format of decoded messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One aligned row per message.
    Table,
    /// One JSON object per line.
    Json,
}

/// A protocol `--protocol` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// gRPC calls over HTTP/2.
    Grpc,
    /// HTTP/2 streams that are not gRPC.
    Http2,
    /// containerd's ttrpc (containerd and its shims).
    Ttrpc,
    /// HTTP/1.x (the docker CLI and dockerd).
    Http1,
}

/// Where message schemas come from, beyond what is built in.
#[derive(Args, Debug, Clone, Default)]
pub struct SchemaArgs {
    /// A FileDescriptorSet (protoc --descriptor_set_out, grpcurl -protoset). Repeatable.
    #[arg(long = "protoset", value_name = "FILE")]
    pub protosets: Vec<PathBuf>,

    /// A .proto file, compiled at start-up. Repeatable. A value made only of
    /// protocol names (`grpc,ttrpc`) is always read as `--protocol`; to load
    /// a schema file named like a protocol, write a path (`./ttrpc`).
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,

    /// Directory to resolve imports of --proto files from. Repeatable.
    #[arg(short = 'I', long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
}

/// How decoded messages are shown and which calls are kept: the output
/// flags `decode` and `watch` share.
#[derive(Args, Debug, Clone)]
pub struct ShowArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Do not cut table rows to the terminal width.
    #[arg(long)]
    pub full: bool,

    /// Also show the header fields of each HEADERS block.
    #[arg(long)]
    pub headers: bool,

    /// Only show calls whose METHOD matches this regex (gRPC or ttrpc path, HTTP/2
    /// :path, HTTP/1 `POST /v1.43/containers/create`).
    #[arg(long = "method", value_name = "REGEX")]
    pub method: Option<String>,

    /// Only show these protocols, e.g. `--protocol ttrpc,http1`.
    // Not `--proto`: that flag names .proto schema files.
    #[arg(long = "protocol", value_name = "LIST", value_enum, value_delimiter = ',')]
    pub protocols: Vec<ProtocolArg>,

    /// Largest message kept in memory for decoding (e.g. 64M); larger ones
    /// are reported by size only.
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub max_message: String,
}

/// How decoded messages are shown and which are kept.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    #[command(flatten)]
    pub show: ShowArgs,

    /// Only show messages sent by this pid (or to it, as the peer).
    #[arg(long = "pid", value_name = "PID")]
    pub pid: Option<u32>,

    /// Only show messages sent by processes with this name.
    #[arg(long = "comm", value_name = "NAME")]
    pub comm: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Capture files: pcap or pcapng, optionally zstd- or gzip-compressed.
    /// `-` reads standard input. A pipe or FIFO is read once, so the schemas
    /// `record` embedded in it are not used: give them with --protoset.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub schema: SchemaArgs,
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    #[command(flatten)]
    pub show: ShowArgs,

    /// Also save the capture to this file, as `record -o` would
    /// (a name ending in `.zst` is zstd-compressed).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub schema: SchemaArgs,
}

impl WatchArgs {
    /// The decode output options these stand for; `--pid` and `--comm`
    /// already chose what is recorded.
    pub fn output(&self) -> OutputArgs {
        OutputArgs { show: self.show.clone(), pid: None, comm: None }
    }
}

impl SchemaArgs {
    /// Takes the `--proto` values that are protocol lists out of the schema
    /// files. `--proto` names .proto files, and users also write it for the
    /// protocol filter (`--proto grpc,ttrpc`, the spelling of `--protocol`
    /// in issue 6): a value that reads as a comma list of protocol names is
    /// a protocol list, whatever files the current directory holds.
    pub fn take_protocol_lists(&mut self) -> Vec<ProtocolArg> {
        let mut protocols = Vec::new();
        self.protos.retain(|p| {
            let Some(text) = p.to_str() else { return true };
            let parsed: Option<Vec<ProtocolArg>> =
                text.split(',').map(|name| ProtocolArg::from_str(name.trim(), true).ok()).collect();
            match parsed {
                Some(list) if !list.is_empty() => {
                    protocols.extend(list);
                    false
                }
                _ => true,
            }
        });
        protocols
    }
}

/// Parses a size such as `64M`, `256K`, `1G` or `4096` into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s, 1),
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let mult = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => return Err(format!("invalid size {s:?}: unknown unit {:?}", &s[i..])),
            };
            (&s[..i], mult)
        }
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("256k"), Ok(256 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn proto_takes_protocol_lists_whatever_files_exist() {
        let mut schema = SchemaArgs {
            protos: vec!["grpc,ttrpc".into(), "HTTP1".into(), "/no/such/file.proto".into()],
            ..SchemaArgs::default()
        };
        let taken = schema.take_protocol_lists();
        assert_eq!(taken, [ProtocolArg::Grpc, ProtocolArg::Ttrpc, ProtocolArg::Http1]);
        assert_eq!(schema.protos, [PathBuf::from("/no/such/file.proto")]);

        // A protocol name stays a protocol even when a file of that name
        // exists (the current directory must not change the meaning); a
        // path to it is a schema file.
        let dir = tempfile::tempdir().unwrap();
        let grpc = dir.path().join("grpc");
        std::fs::write(&grpc, "syntax = \"proto3\";").unwrap();
        let mut schema = SchemaArgs {
            protos: vec![grpc.clone(), "./grpc".into(), "grpc".into()],
            ..SchemaArgs::default()
        };
        assert_eq!(schema.take_protocol_lists(), [ProtocolArg::Grpc]);
        assert_eq!(schema.protos, [grpc, PathBuf::from("./grpc")]);
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
