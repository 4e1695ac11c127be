//! `dockersnoop watch`: record and decode at once.
//!
//! The recorder's writer hands every packet it writes to the same
//! reassembler, decoder and renderers `decode` uses, so a row appears as
//! soon as its message is complete, and the rows are the ones `decode`
//! prints for the file `-w` saves.

use std::cell::RefCell;
use std::io::{self, IsTerminal};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::bail;

use crate::capture::record;
use crate::cli::{Format, RecordArgs, WatchArgs};
use crate::decode::cmd::{filter, options, row_width, warn_summary};
use crate::decode::{Decoder, Record};
use crate::pcapng::writer::PacketObserver;
use crate::pcapng::Packet;
use crate::reassembly::tcp::Reassembler;
use crate::render::{Filter, JsonRenderer, TableRenderer};

/// Where the packets go when `-w` is not given.
const NO_FILE: &str = "/dev/null";

/// Runs `dockersnoop watch`.
pub fn run(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    if args.write.as_ref().is_some_and(|w| w.as_os_str() == "-") {
        bail!("-w: the decoded rows already go to stdout; give a file name");
    }
    // A signal while the schemas load ends the watch cleanly too.
    record::install_signal_handlers();
    let mut args = args.clone();
    let protocols = args.schema.take_protocol_lists();
    args.show.protocols.extend(protocols);
    let args = &args;
    let out_args = args.output();
    let opts = options(&out_args)?;
    let filter = filter(&out_args)?;
    let pool = crate::schema::pool(&args.schema, &[])?;
    // Before the table heading: without privileges or a file to write there
    // is nothing to watch (the recorder creates the file again).
    record::check_privileges()?;
    if let Some(w) = &args.write {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(w)
            .map_err(|e| anyhow::anyhow!("{}: {e}", w.display()))?;
    }
    // Stdout is line-buffered: every row reaches the terminal or the pipe
    // as it is written.
    let stdout = io::stdout();
    let width = if args.show.full { None } else { row_width(stdout.is_terminal()) };
    let sink = match args.show.format {
        Format::Table => Live::Table(TableRenderer::live(stdout, width, args.show.headers)?),
        Format::Json => Live::Json(JsonRenderer::new(stdout, args.show.headers)),
    };
    let state = Rc::new(RefCell::new(Watch {
        reassembler: Reassembler::new(),
        decoder: Decoder::new(pool, opts),
        filter,
        sink,
        rows: 0,
        error: None,
    }));
    let observer: PacketObserver = {
        let state = Rc::clone(&state);
        Box::new(move |pkt| state.borrow_mut().on_packet(pkt))
    };
    let rec = RecordArgs {
        output: args.write.clone().unwrap_or_else(|| PathBuf::from(NO_FILE)),
        select: args.select.clone(),
        file_size: None,
        file_count: None,
        quiet: true,
    };
    let recorded = record::record(&rec, Some(observer));

    // Whatever stopped the recording, show what was still open.
    let mut st = state.borrow_mut();
    st.finish();
    if let Some(e) = st.error.take() {
        return Err(e.into());
    }
    let code = recorded?;
    let name = args.write.as_deref().unwrap_or(Path::new("live capture"));
    let s = st.decoder.summary();
    eprintln!(
        "{} record(s) decoded from {} connection(s) ({} HTTP/2)",
        st.rows, s.connections, s.http2_connections
    );
    warn_summary(name, &s);
    Ok(code)
}

/// The decoding side of `watch`, fed by the recorder.
struct Watch {
    reassembler: Reassembler,
    decoder: Decoder,
    filter: Filter,
    sink: Live,
    rows: u64,
    /// The first output error; recording stops when it happens.
    error: Option<io::Error>,
}

impl Watch {
    fn on_packet(&mut self, pkt: &Packet) {
        let Watch { reassembler, decoder, filter, sink, rows, error } = self;
        let mut emit = |r: Record| emit(r, filter, sink, rows, error);
        reassembler.push(pkt, &mut |ev| decoder.on_event(ev, &mut emit));
    }

    /// Ends open streams and calls, as `decode` does at the end of a file.
    fn finish(&mut self) {
        let Watch { reassembler, decoder, filter, sink, rows, error } = self;
        let mut emit = |r: Record| emit(r, filter, sink, rows, error);
        reassembler.finish(&mut |ev| decoder.on_event(ev, &mut emit));
        decoder.finish(&mut emit);
        if let Err(e) = sink.flush() {
            error.get_or_insert(e);
        }
    }
}

/// Renders one record if it passes the filter; an output error (a closed
/// pipe) is kept and ends the recording.
fn emit(
    r: Record,
    filter: &Filter,
    sink: &mut Live,
    rows: &mut u64,
    error: &mut Option<io::Error>,
) {
    if error.is_some() || !filter.matches(&r) {
        return;
    }
    match sink.render(&r) {
        Ok(()) => *rows += 1,
        Err(e) => {
            *error = Some(e);
            record::request_stop();
        }
    }
}

/// The chosen renderer, writing straight to stdout.
enum Live {
    Table(TableRenderer<io::Stdout>),
    Json(JsonRenderer<io::Stdout>),
}

impl Live {
    fn render(&mut self, r: &Record) -> io::Result<()> {
        match self {
            Live::Table(t) => t.render(r),
            Live::Json(j) => j.render(r),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Live::Table(t) => t.flush(),
            Live::Json(j) => j.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dash_for_the_capture_is_refused() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["dockersnoop", "watch", "-w", "-"]).unwrap();
        let crate::cli::Command::Watch(args) = cli.command else { panic!("not watch") };
        let err = run(&args).unwrap_err().to_string();
        assert!(err.contains("-w"), "{err}");
    }
}
