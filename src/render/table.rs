//! The default output: one aligned row per message, the sender's view.
//!
//! ```text
//! COMM     PID    TID    PEER   TYPE  STREAM METHOD              MESSAGE
//! dockerd  14768  14770  14455  REQ   1      /pkg.Service/Method Request{name:"moby"}
//! ```
//! Without process metadata COMM is `-`, TID is `-`, and the source and
//! destination endpoints stand in the PID and PEER columns.
//!
//! Column widths come from the first [`HOLD_ROWS`] rows, which are held back
//! until then (or until the input ends), so that the heading and the rows
//! line up. A later, wider value widens its column from that row on.

use std::io::{self, Write};

use crate::decode::protobuf;
use crate::decode::record::grpc_status_name;
use crate::decode::{Kind, Message, Record};

/// Column headings, in order.
const COLUMNS: [&str; 8] = ["COMM", "PID", "TID", "PEER", "TYPE", "STREAM", "METHOD", "MESSAGE"];
/// Narrowest widths of the aligned columns.
const MIN_WIDTHS: [usize; 7] = [8, 6, 6, 6, 4, 6, 20];
/// Widths of a live table (`watch`), which cannot wait for rows to size its
/// columns: a full comm, pids up to 7 digits, methods as long as
/// `/containerd.services.containers.v1.Containers/Delete`.
const LIVE_WIDTHS: [usize; 7] = [15, 7, 7, 7, 4, 6, 52];
/// Widest a column grows. A longer value (docker's API paths carry 64-hex
/// container ids) overflows its own row rather than pushing MESSAGE to the
/// right on every row.
const MAX_WIDTHS: [usize; 7] = [16, 21, 8, 21, 4, 8, 64];
/// Rows held back to size the columns before the heading is printed.
pub const HOLD_ROWS: usize = 64;
/// Width of an IPv4 endpoint at its widest (`255.255.255.255:65535`): PID
/// and PEER hold endpoints when a capture has no process metadata.
const ENDPOINT_WIDTH: usize = 21;

/// A row waiting for the widths: its cells and its `--headers` lines.
type Held = ([String; 8], Vec<String>);

/// Writes the table.
pub struct TableRenderer<W: Write> {
    out: W,
    /// Cut rows to this many characters (`None` with `--full`).
    width: Option<usize>,
    widths: [usize; 7],
    header_done: bool,
    headers: bool,
    held: Vec<Held>,
}

impl<W: Write> TableRenderer<W> {
    /// `width`: the terminal width rows are cut to, `None` for `--full`.
    /// `headers`: print header fields under each row (`--headers`).
    pub fn new(out: W, width: Option<usize>, headers: bool) -> Self {
        TableRenderer {
            out,
            width,
            widths: MIN_WIDTHS,
            header_done: false,
            headers,
            held: Vec::new(),
        }
    }

    /// A table for rows as they happen: the heading is written at once, with
    /// fixed widths, and no row is held back.
    pub fn live(out: W, width: Option<usize>, headers: bool) -> io::Result<Self> {
        let mut t = TableRenderer::new(out, width, headers);
        t.widths = LIVE_WIDTHS;
        t.header_done = true;
        t.write_row(&COLUMNS.map(str::to_string), &[])?;
        t.out.flush()?;
        Ok(t)
    }

    /// Writes one record; END rows of calls that ended well are not shown.
    /// The first [`HOLD_ROWS`] rows are written once the columns are sized.
    pub fn render(&mut self, r: &Record) -> io::Result<()> {
        let Some(cells) = row(r) else { return Ok(()) };
        let extra = match self.headers {
            true => r.headers.iter().flatten().map(|(k, v)| format!("    {k}: {v}")).collect(),
            false => Vec::new(),
        };
        if !self.header_done {
            if r.meta.is_none() {
                self.widths[1] = self.widths[1].max(ENDPOINT_WIDTH);
                self.widths[3] = self.widths[3].max(ENDPOINT_WIDTH);
            }
            self.grow(&cells);
            self.held.push((cells, extra));
            if self.held.len() >= HOLD_ROWS {
                self.release()?;
            }
            return Ok(());
        }
        self.grow(&cells);
        self.write_row(&cells, &extra)
    }

    /// Prints the heading and the rows held so far.
    fn release(&mut self) -> io::Result<()> {
        if self.header_done || self.held.is_empty() {
            return Ok(());
        }
        self.header_done = true;
        self.write_row(&COLUMNS.map(str::to_string), &[])?;
        for (cells, extra) in std::mem::take(&mut self.held) {
            self.write_row(&cells, &extra)?;
        }
        Ok(())
    }

    fn grow(&mut self, cells: &[String; 8]) {
        for ((w, max), cell) in self.widths.iter_mut().zip(MAX_WIDTHS).zip(cells) {
            *w = (*w).max(cell.chars().count().min(max));
        }
    }

    fn write_row(&mut self, cells: &[String; 8], extra: &[String]) -> io::Result<()> {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if let Some(w) = self.widths.get(i) {
                let n = cell.chars().count();
                line.extend(std::iter::repeat_n(' ', w.saturating_sub(n) + 1));
            }
        }
        self.write_line(line.trim_end())?;
        for l in extra {
            self.write_line(l)?;
        }
        Ok(())
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

    /// Writes the rows held back (the input ended) and flushes.
    pub fn flush(&mut self) -> io::Result<()> {
        self.release()?;
        self.out.flush()
    }

    /// The end of all input: writes what is held, and the heading even
    /// when no row came, so that an empty result still shows its columns.
    pub fn finish(&mut self) -> io::Result<()> {
        self.release()?;
        if !self.header_done {
            self.header_done = true;
            self.write_row(&COLUMNS.map(str::to_string), &[])?;
        }
        self.out.flush()
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.release()?;
        Ok(self.out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::record::Ends;
    use crate::decode::Proto;
    use crate::reassembly::ConnId;

    fn rec(src: &str, dst: &str, method: &str) -> Record {
        let ends = Ends { conn: ConnId(0), a: src.parse().unwrap(), b: dst.parse().unwrap() };
        Record {
            method: Some(method.into()),
            message: Message::Text("m".into()),
            ..ends.record(0, Proto::Grpc, Kind::Req, 1, 0, None)
        }
    }

    /// Start column of each heading in the first line, and of each cell in
    /// the others: all lines must agree.
    fn starts(line: &str) -> Vec<usize> {
        let mut v = Vec::new();
        let mut prev = ' ';
        for (i, ch) in line.chars().enumerate() {
            if ch != ' ' && prev == ' ' {
                v.push(i);
            }
            prev = ch;
        }
        v
    }

    #[test]
    fn heading_and_rows_line_up_without_metadata() {
        let mut t = TableRenderer::new(Vec::new(), None, false);
        t.render(&rec("[::1]:51164", "[::1]:50051", "/a.B/C")).unwrap();
        t.render(&rec("[::1]:50051", "[::1]:51164", "/greet.GreetService/GreetManyTimes")).unwrap();
        t.render(&rec("192.168.122.3:56238", "172.217.4.78:443", "/x")).unwrap();
        let text = String::from_utf8(t.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let head = starts(lines[0]);
        assert_eq!(head.len(), 8);
        for l in &lines[1..] {
            assert_eq!(starts(l), head, "\n{text}");
        }
    }

    #[test]
    fn finish_writes_the_heading_without_rows() {
        let mut t = TableRenderer::new(Vec::new(), None, false);
        t.flush().unwrap();
        t.finish().unwrap();
        let out = String::from_utf8(t.into_inner().unwrap()).unwrap();
        assert_eq!(out.lines().collect::<Vec<_>>().len(), 1, "{out}");
        assert!(out.starts_with("COMM     PID    TID    PEER   TYPE STREAM METHOD"), "{out}");
    }

    #[test]
    fn live_table_writes_heading_and_rows_at_once() {
        let mut t = TableRenderer::live(Vec::new(), None, false).unwrap();
        assert!(String::from_utf8_lossy(&t.out).starts_with("COMM "));
        t.render(&rec("[::1]:1", "[::1]:2", "/a.B/C")).unwrap();
        let text = String::from_utf8(t.out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(starts(lines[0])[1], LIVE_WIDTHS[0] + 1);
    }

    #[test]
    fn later_wider_rows_widen_from_then_on() {
        let mut t = TableRenderer::new(Vec::new(), None, false);
        for _ in 0..HOLD_ROWS {
            t.render(&rec("[::1]:1", "[::1]:2", "/a.B/C")).unwrap();
        }
        let long = "/".to_string() + &"m".repeat(40);
        t.render(&rec("[::1]:1", "[::1]:2", &long)).unwrap();
        t.render(&rec("[::1]:1", "[::1]:2", "/a.B/C")).unwrap();
        let text = String::from_utf8(t.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(starts(lines[1]), starts(lines[0]));
        let n = lines.len();
        assert_eq!(starts(lines[n - 1]), starts(lines[n - 2]), "\n{text}");
    }
}
