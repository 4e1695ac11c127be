//! `dockersnoop decode`: reader → reassembler → decoder → renderer, one file
//! after another.

use std::cell::RefCell;
use std::io::{self, BufWriter, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use prost_reflect::DescriptorPool;

use super::{DecodeOptions, Decoder, Record, Summary};
use crate::cli::{parse_size, DecodeArgs, Format, OutputArgs};
use crate::pcapng::reader::{CaptureReader, ReadError};
use crate::reassembly::tcp::{Reassembler, ReassemblyStats};
use crate::render::{Filter, JsonRenderer, TableRenderer};
use crate::schema::UserSchemas;

/// Runs `dockersnoop decode`.
pub fn run(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let mut args = args.clone();
    let protocols = args.schema.take_protocol_lists();
    args.output.show.protocols.extend(protocols);
    let args = &args;
    let opts = options(&args.output)?;
    let filter = filter(&args.output)?;
    let stdout = io::stdout();
    let width = if args.output.show.full { None } else { row_width(stdout.is_terminal()) };
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut sink = match args.output.show.format {
        Format::Table => Sink::Table(TableRenderer::new(out, width, args.output.show.headers)),
        Format::Json => Sink::Json(JsonRenderer::new(out, args.output.show.headers)),
    };

    // Schema errors name the schema file, before any capture is read.
    let user = crate::schema::UserSchemas::load(&args.schema)?;
    let mut failed = false;
    for path in &args.files {
        let input = Input::of(path);
        let pool = match input {
            Input::File => pool_for(&user, path)?,
            Input::Stream | Input::Stdin => {
                // A pipe can be read only once: no pass for embedded schemas.
                log::debug!(
                    "{}: not a regular file, read once: schemas embedded in it are not used",
                    input.name(path).display()
                );
                crate::schema::pool_from(&user, &[])?
            }
        };
        let mut decoder = Decoder::new(pool, opts.clone());
        let mut stats = ReassemblyStats::default();
        let outcome = decode_file(path, input, &mut decoder, &filter, &mut sink, &mut stats);
        sink.flush()?;
        warn_skipped(input.name(path), &stats);
        warn_summary(input.name(path), &decoder.summary());
        match outcome {
            Ok(()) => {}
            Err(FileError::Read(e)) => {
                eprintln!("dockersnoop: {e}");
                failed = true;
            }
            Err(FileError::Output(e)) => return Err(e.into()),
        }
    }
    if let Sink::Table(t) = &mut sink {
        t.finish()?;
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Says which packets held no TCP for us, when that may explain missing
/// rows: always for link types we do not parse, and for the rest (UDP,
/// ARP, fragments) when no packet at all was TCP.
fn warn_skipped(path: &Path, s: &ReassemblyStats) {
    let name = path.display();
    if s.skipped_link_type > 0 {
        let types = match s.skipped_link_types.len() {
            1 => s.skipped_link_types.keys().map(|ty| format!("link type {ty}")).collect(),
            _ => {
                let each: Vec<String> =
                    s.skipped_link_types.iter().map(|(ty, n)| format!("{ty} ({n})")).collect();
                format!("link types {}", each.join(", "))
            }
        };
        eprintln!(
            "dockersnoop: warning: {name}: {} packet(s) skipped: {types} not supported",
            s.skipped_link_type
        );
    }
    let other = s.skipped_non_ip + s.skipped_non_tcp + s.skipped_fragments + s.malformed;
    if s.tcp_segments == 0 && other > 0 {
        eprintln!(
            "dockersnoop: warning: {name}: no TCP in {other} packet(s): {} not IP, {} not TCP, \
             {} IP fragment(s), {} malformed",
            s.skipped_non_ip, s.skipped_non_tcp, s.skipped_fragments, s.malformed
        );
    }
}

/// The decoder's options from the output flags.
pub(crate) fn options(o: &OutputArgs) -> anyhow::Result<DecodeOptions> {
    Ok(DecodeOptions {
        max_message: parse_size(&o.show.max_message)
            .map_err(|e| anyhow::anyhow!("--max-message: {e}"))?
            .try_into()
            .unwrap_or(usize::MAX),
        headers: o.show.headers,
    })
}

/// What a FILE argument names, which decides how often it can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// A regular file: read twice, once for embedded schemas.
    File,
    /// A pipe, FIFO or character device (`<(cmd)`, `/dev/stdin`): read once.
    Stream,
    /// `-`: standard input, read once.
    Stdin,
}

impl Input {
    fn of(path: &Path) -> Input {
        if path.as_os_str() == "-" {
            return Input::Stdin;
        }
        // A missing or unreadable file is reported when it is opened.
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => Input::Stream,
            _ => Input::File,
        }
    }

    /// The name used in messages.
    fn name(self, path: &Path) -> &Path {
        match self {
            Input::Stdin => Path::new("stdin"),
            _ => path,
        }
    }

    fn open(self, path: &Path) -> Result<CaptureReader, ReadError> {
        match self {
            Input::Stdin => CaptureReader::from_reader("stdin", Box::new(io::stdin())),
            _ => CaptureReader::open(path),
        }
    }
}

/// Why one file stopped early.
enum FileError {
    /// The capture is corrupt or truncated: everything before was decoded.
    Read(ReadError),
    /// Writing the output failed (a closed pipe, a full disk): stop everything.
    Output(io::Error),
}

/// Decodes one capture into `sink`. On a read error, everything decoded up to
/// that point is still flushed: open calls end as incomplete.
fn decode_file(
    path: &Path,
    input: Input,
    decoder: &mut Decoder,
    filter: &Filter,
    sink: &mut Sink,
    stats: &mut ReassemblyStats,
) -> Result<(), FileError> {
    let mut reader = input.open(path).map_err(FileError::Read)?;
    let path = input.name(path);
    let mut reassembler = Reassembler::new();
    // The first output error, kept until the loop notices it.
    let out_err: RefCell<Option<io::Error>> = RefCell::new(None);
    let mut emit = |r: Record| {
        if out_err.borrow().is_none() && filter.matches(&r) {
            if let Err(e) = sink.render(&r) {
                *out_err.borrow_mut() = Some(e);
            }
        }
    };

    let read_result = loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => {
                reassembler.push(&pkt, &mut |ev| decoder.on_event(ev, &mut emit));
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
        if out_err.borrow().is_some() {
            break Ok(());
        }
    };
    reassembler.finish(&mut |ev| decoder.on_event(ev, &mut emit));
    decoder.finish(&mut emit);
    log::debug!("{}: {:?}", path.display(), reader.stats());
    log::debug!("{}: {:?}", path.display(), reassembler.stats());
    *stats = reassembler.stats().clone();
    if let Some(e) = out_err.into_inner() {
        return Err(FileError::Output(e));
    }
    read_result.map_err(FileError::Read)
}

/// The schemas for one file: the user's, then the ones embedded in the
/// capture, then the built-in set.
fn pool_for(user: &UserSchemas, path: &Path) -> anyhow::Result<DescriptorPool> {
    let embedded = match crate::schema::capture::embedded_sets(path) {
        // The recorder writes a new block each time its merged set grows, so
        // the last block is the most complete: let it win.
        Ok(sets) => sets.into_iter().rev().collect(),
        Err(e) => {
            // The packet pass reports a corrupt file with its offset; here
            // it only means fewer schemas.
            log::debug!("no embedded schema: {e}");
            Vec::new()
        }
    };
    crate::schema::pool_from(user, &embedded)
        .with_context(|| format!("{}: loading schemas", path.display()))
}

/// The end-of-file warnings: what the user should know to trust the rows.
pub(crate) fn warn_summary(path: &Path, s: &Summary) {
    let name = path.display();
    let unknown = s.unknown_header_fields;
    if s.joined_mid_stream > 0 {
        eprintln!(
            "dockersnoop: warning: {name}: {} connection(s) joined mid-stream; \
             {unknown} header field(s) referred to compression-table entries sent before the \
             capture started (shown as <unknown #N>)",
            s.joined_mid_stream
        );
    }
    if s.gaps > 0 {
        let mut line = format!(
            "dockersnoop: warning: {name}: {} gap(s) in the capture; decoding resumed \
             at the next frame boundary ({} bytes skipped)",
            s.gaps, s.resync_skipped_bytes
        );
        if s.joined_mid_stream == 0 && unknown > 0 {
            line.push_str(&format!(
                "; {unknown} header field(s) referred to compression-table entries \
                 that may have been lost (shown as <unknown #N>)"
            ));
        }
        eprintln!("{line}");
    } else if s.joined_mid_stream == 0 && unknown > 0 {
        eprintln!(
            "dockersnoop: warning: {name}: {unknown} header field(s) referred to \
             compression-table entries never seen (shown as <unknown #N>)"
        );
    }
    if s.hpack_errors + s.frame_errors + s.undecodable_messages > 0 {
        eprintln!(
            "dockersnoop: warning: {name}: {} malformed header block(s), {} malformed \
             frame(s), {} message(s) that could not be decoded",
            s.hpack_errors, s.frame_errors, s.undecodable_messages
        );
    }
    if s.http2_connections + s.ttrpc_connections + s.http1_connections == 0 && s.connections > 0 {
        eprintln!(
            "dockersnoop: warning: {name}: none of its {} TCP connection(s) carried HTTP/2, \
             ttrpc or HTTP/1",
            s.connections
        );
    }
}

pub(crate) fn filter(o: &OutputArgs) -> anyhow::Result<Filter> {
    let method = match &o.show.method {
        Some(re) => Some(regex::Regex::new(re).map_err(|e| {
            // The regex crate draws a caret diagram over several lines; keep
            // the error to one line, its last, which names the fault.
            let text = e.to_string();
            let why = text.lines().last().unwrap_or_default().trim_start_matches("error: ");
            anyhow::anyhow!("--method {re:?}: invalid regex: {why}")
        })?),
        None => None,
    };
    let protocols = o.show.protocols.iter().map(|p| crate::render::proto_of(*p)).collect();
    Ok(Filter { method, pid: o.pid, comm: o.comm.clone(), protocols })
}

/// What table rows are cut to: `COLUMNS` when set (also when stdout is not
/// a terminal, as `ps` does), else the terminal's width; uncut into a pipe.
pub(crate) fn row_width(terminal: bool) -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok());
    match columns {
        Some(cols) if cols > 0 => Some(cols),
        _ if terminal => Some(terminal_width()),
        _ => None,
    }
}

/// The width of the terminal on stdout, or 160 when it cannot be told.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass and
    // reads nothing else; fd 1 is ours for the life of the process.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        160
    }
}

/// The chosen renderer.
enum Sink<'a> {
    Table(TableRenderer<BufWriter<io::StdoutLock<'a>>>),
    Json(JsonRenderer<BufWriter<io::StdoutLock<'a>>>),
}

impl Sink<'_> {
    fn render(&mut self, r: &Record) -> io::Result<()> {
        match self {
            Sink::Table(t) => t.render(r),
            Sink::Json(j) => j.render(r),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Table(t) => t.flush(),
            Sink::Json(j) => j.flush(),
        }
    }
}
