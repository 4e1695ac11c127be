//! A minimal stderr logger for the `log` facade.
//!
//! Log lines are for the person debugging dockersnoop itself; user-facing
//! errors go through `main`, which sets the exit status.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        eprintln!("dockersnoop: {level}: {}", record.args());
    }

    fn flush(&self) {}
}

/// Installs the logger: notes and warnings by default, decisions with `-v`,
/// per-frame detail with `-vv`.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    // A second init (in tests) is harmless: keep the first logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
