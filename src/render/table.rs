//! The default output: one aligned row per message, the sender's view.
//!
//! ```text
//! COMM     PID    TID    PEER   TYPE  STREAM METHOD              MESSAGE
//! dockerd  14768  14770  14455  REQ   1      /pkg.Service/Method Request{name:"moby"}
//! ```
//! Without process metadata COMM is `-`, TID is `-`, and the source and
//! destination endpoints stand in the PID and PEER columns.

use std::io::{self, Write};

use crate::decode::protobuf;
use crate::decode::record::grpc_status_name;
use crate::decode::{Kind, Message, Record};

/// Column headings, in order.
const COLUMNS: [&str; 8] = ["COMM", "PID", "TID", "PEER", "TYPE", "STREAM", "METHOD", "MESSAGE"];
/// Starting widths; a column grows when a value is wider (later rows shift).
const MIN_WIDTHS: [usize; 7] = [8, 6, 6, 6, 4, 6, 20];

/// Writes the table.
pub struct TableRenderer<W: Write> {
    out: W,
    /// Cut rows to this many characters (`None` with `--full`).
    width: Option<usize>,
    widths: [usize; 7],
    header_done: bool,
    headers: bool,
}

impl<W: Write> TableRenderer<W> {
    /// `width`: the terminal width rows are cut to, `None` for `--full`.
    /// `headers`: print header fields under each row (`--headers`).
    pub fn new(out: W, width: Option<usize>, headers: bool) -> Self {
        TableRenderer { out, width, widths: MIN_WIDTHS, header_done: false, headers }
    }

    /// Writes one record; END rows of calls that ended well are not shown.
    pub fn render(&mut self, r: &Record) -> io::Result<()> {
        let Some(cells) = row(r) else { return Ok(()) };
        if !self.header_done {
            self.header_done = true;
            let head = COLUMNS.map(str::to_string);
            self.write_row(&head)?;
        }
        self.write_row(&cells)?;
        if self.headers {
            for (k, v) in r.headers.iter().flatten() {
                let line = format!("    {k}: {v}");
                self.write_line(&line)?;
            }
        }
        Ok(())
    }

    fn write_row(&mut self, cells: &[String; 8]) -> io::Result<()> {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i < 7 {
                let n = cell.chars().count();
                self.widths[i] = self.widths[i].max(n);
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', self.widths[i] - n + 1));
            } else {
                line.push_str(cell);
            }
        }
        self.write_line(line.trim_end())
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self.width {
            Some(w) if line.chars().count() > w => {
                let cut: String = line.chars().take(w.saturating_sub(1)).collect();
                writeln!(self.out, "{cut}…")
            }
            _ => writeln!(self.out, "{line}"),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The cells of a record's row, or `None` for rows the table hides.
pub fn row(r: &Record) -> Option<[String; 8]> {
    let (ty, message) = match r.kind {
        Kind::End => match r.grpc_status {
            Some(code) if code != 0 => {
                let mut m = grpc_status_name(code);
                if let Some(text) = r.grpc_message.as_deref().filter(|t| !t.is_empty()) {
                    m.push_str(": ");
                    m.push_str(&escape(text));
                }
                ("ERR", m)
            }
            _ => return None,
        },
        k => (k.as_str(), message_text(r)),
    };
    let (comm, pid, tid, peer) = match r.meta.as_deref() {
        Some(m) => (
            m.comm.clone(),
            m.pid.to_string(),
            m.tid.to_string(),
            m.peer_pid.map_or_else(|| "-".to_string(), |p| p.to_string()),
        ),
        None => ("-".to_string(), r.src.to_string(), "-".to_string(), r.dst.to_string()),
    };
    let mut message = message;
    let flags = r.flags.names();
    if !flags.is_empty() {
        message.push_str(&format!(" [{}]", flags.join(",")));
    }
    Some([
        comm,
        pid,
        tid,
        peer,
        ty.to_string(),
        r.stream.to_string(),
        r.method.clone().unwrap_or_else(|| "-".into()),
        message,
    ])
}

/// The compact one-line MESSAGE cell.
pub fn message_text(r: &Record) -> String {
    match &r.message {
        Message::None => String::new(),
        Message::Proto(m) => protobuf::compact(m),
        Message::Raw(f) => protobuf::compact_raw(f),
        Message::Text(t) => escape(t),
        Message::Http(h) => escape(&h.text()),
    }
}

/// Control characters would break the one-line layout.
fn escape(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}
