//! The status line while recording and the summary at the end.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the status line shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub chunks: u64,
    pub bytes: u64,
    pub dropped: u64,
}

/// A spinner on stderr, only when stderr is a terminal and not `-q`.
pub struct Status {
    bar: Option<ProgressBar>,
    last: Option<(Instant, u64)>,
}

impl Status {
    pub fn new(quiet: bool, target: &str) -> Status {
        if quiet || !std::io::stderr().is_terminal() {
            return Status { bar: None, last: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} recording to {prefix}: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(target.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Status { bar: Some(bar), last: None }
    }

    /// Shows the counters and the byte rate since the last update.
    pub fn update(&mut self, p: Progress) {
        let Some(bar) = &self.bar else { return };
        let now = Instant::now();
        let rate = match self.last {
            Some((t, b)) if now > t => {
                (p.bytes.saturating_sub(b)) as f64 / now.duration_since(t).as_secs_f64()
            }
            _ => 0.0,
        };
        self.last = Some((now, p.bytes));
        bar.set_message(format!(
            "{} chunks, {} captured, {} dropped, {}/s",
            p.chunks,
            HumanBytes(p.bytes),
            p.dropped,
            HumanBytes(rate as u64)
        ));
    }

    /// Clears the line; the caller prints the summary.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The last line of every recording.
pub fn summary(p: Progress) -> String {
    format!("{} chunks, {} bytes captured, {} dropped", p.chunks, p.bytes, p.dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_as_documented() {
        let p = Progress { chunks: 3, bytes: 1024, dropped: 1 };
        assert_eq!(summary(p), "3 chunks, 1024 bytes captured, 1 dropped");
    }
}
