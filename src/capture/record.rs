//! `dockersnoop record`: load the kernel side, turn ring records into
//! synthetic TCP in pcapng, and stop cleanly on a signal, a count or a
//! duration (ring drained, statistics written, file closed valid).

use std::cell::RefCell;
use std::io::IsTerminal;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use libbpf_rs::RingBufferBuilder;
use log::LevelFilter;

use crate::capture::bpf::{self, Event, KernelFilter};
use crate::capture::conn::{self, Tracker};
use crate::capture::filter::{self, SocketFilter};
use crate::capture::schemas::SchemaEmbedder;
use crate::capture::status::{self, Progress, Status};
use crate::capture::tracefs;
use crate::cli::{parse_size, RecordArgs};
use crate::pcapng::writer::{CaptureWriter, OutputSpec, PacketObserver, SectionInfo, WriteError};

/// Set by SIGINT, SIGTERM and SIGHUP.
static STOP: AtomicBool = AtomicBool::new(false);

/// How often buffered blocks are pushed to the file (and a zstd block ended),
/// and how often exited processes get their FIN.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const REAP_EVERY: Duration = Duration::from_secs(2);
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// Everything the ring buffer callback changes.
struct State {
    tracker: Tracker,
    writer: CaptureWriter,
    error: Option<WriteError>,
    /// Stop after this many chunks (`-c`).
    limit: Option<u64>,
    bad_records: u64,
    schemas: SchemaEmbedder,
}

impl State {
    fn on_record(&mut self, rec: &[u8]) -> i32 {
        if self.error.is_some() || self.limit_reached() {
            return 0;
        }
        let ev = match Event::parse(rec) {
            Ok(ev) => ev,
            Err(e) => {
                self.bad_records += 1;
                log::debug!("{e}");
                return 0;
            }
        };
        self.schemas.saw(&ev);
        let res = self
            .tracker
            .handle(&ev, &mut self.writer)
            .and_then(|_| self.writer.rotate_if_full(real_now_ns()).map(|_| ()));
        if let Err(e) = res {
            self.error = Some(e);
            return -1;
        }
        0
    }

    fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|n| self.tracker.counters().chunks >= n)
    }
}

/// Runs `dockersnoop record`.
pub fn run(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    record(args, None)
}

/// Records as `dockersnoop record` does; `observer`, when given, also sees
/// every packet written (how `watch` decodes live what the file gets).
pub fn record(args: &RecordArgs, observer: Option<PacketObserver>) -> anyhow::Result<ExitCode> {
    // First of all: a signal from now on ends the recording cleanly.
    install_signal_handlers();
    // Quiet, or stderr going to a file: nothing but errors and the summary,
    // unless the user asked for more with -v.
    if (args.quiet || !std::io::stderr().is_terminal()) && log::max_level() == LevelFilter::Info {
        log::set_max_level(LevelFilter::Warn);
    }
    let sel = &args.select;
    let ring_size = parse_size(&sel.ring_size).map_err(|e| anyhow::anyhow!("--ring-size: {e}"))?;
    bpf::check_ring_size(ring_size, &sel.ring_size)?;
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && args.file_size.is_some() {
        bail!("-C: cannot rotate when writing to stdout");
    }
    if args.file_count.is_some() && args.file_size.is_none() {
        bail!("-W: only works together with -C");
    }
    if args.file_size == Some(0) {
        bail!("-C 0: the file size must be at least 1 (megabyte)");
    }
    if args.file_count == Some(0) {
        bail!("-W 0: the number of files must be at least 1");
    }
    if sel.count == Some(0) {
        bail!("-c 0: the packet count must be at least 1");
    }
    let filter = SocketFilter::parse(&sel.sockets, bpf::MAX_PATTERNS)?;
    let kfilter = KernelFilter {
        any: filter.any(),
        patterns: filter.kernel_patterns().iter().map(|p| (p.prefix.clone(), p.exact)).collect(),
        pids: sel.pids.clone(),
        comms: sel.comms.clone(),
    };
    check_privileges()?;
    filter::report_missing(&sel.sockets);

    // The output before the (slow) eBPF load: a bad -o fails at once.
    let start_ns = real_now_ns();
    let spec = OutputSpec {
        path: (!to_stdout).then(|| args.output.clone()),
        rotate_bytes: args.file_size.map(|m| m.saturating_mul(1_000_000)),
        max_files: args.file_count,
    };
    let mut writer = CaptureWriter::create(spec, section_info(), start_ns)?;
    tracefs::ensure()?;
    if STOP.load(Ordering::Relaxed) {
        // Stopped before anything could be captured: an empty, valid file.
        writer.finish(real_now_ns(), None)?;
        eprintln!("{}", status::summary(Progress { chunks: 0, bytes: 0, dropped: 0 }));
        return Ok(ExitCode::SUCCESS);
    }

    let mut obj = MaybeUninit::uninit();
    let loaded = bpf::load(&mut obj, &kfilter, ring_size, sel.probe)?;
    log::debug!("probe backend: {}", loaded.backend);

    if let Some(observer) = observer {
        writer.observe(observer);
    }
    let target = if to_stdout { "stdout".to_string() } else { writer.current_name().to_string() };
    // After the probes are attached: a socket made in between counts as
    // joined, which only makes decoding more careful.
    let mut tracker = Tracker::new(filter, mono_to_real_offset());
    tracker.set_existing(conn::unix_socket_inodes());
    // The headers reach the file now: a non-empty file says the probes are
    // attached (the file itself was created before loading them).
    writer.flush()?;
    let state = RefCell::new(State {
        tracker,
        writer,
        error: None,
        limit: sel.count,
        bad_records: 0,
        schemas: SchemaEmbedder::start().context("starting the schema reader")?,
    });

    let mut rb = RingBufferBuilder::new();
    rb.add(loaded.events(), |rec: &[u8]| state.borrow_mut().on_record(rec))
        .context("setting up the ring buffer")?;
    let ring = rb.build().context("setting up the ring buffer")?;

    let deadline = sel.duration.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut status = Status::new(args.quiet, &target);
    let (mut last_flush, mut last_reap, mut last_status) =
        (Instant::now(), Instant::now(), Instant::now());

    while !STOP.load(Ordering::Relaxed) {
        let rc = ring.poll_raw(Duration::from_millis(100));
        if rc < 0 && rc != -libc::EINTR {
            if let Some(e) = state.borrow_mut().error.take() {
                return Err(e.into());
            }
            bail!("reading the ring buffer: {}", std::io::Error::from_raw_os_error(-rc));
        }
        let now = Instant::now();
        let mut st = state.borrow_mut();
        if let Some(e) = st.error.take() {
            return Err(e.into());
        }
        if st.limit_reached() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        // A pipe (`-o - | wireshark -k -i -`) is flushed at every wake-up.
        if to_stdout || now.duration_since(last_flush) >= FLUSH_EVERY {
            st.writer.flush()?;
            last_flush = now;
        }
        {
            let State { schemas, writer, .. } = &mut *st;
            schemas.write_ready(writer)?;
        }
        if now.duration_since(last_reap) >= REAP_EVERY {
            let State { tracker, writer, .. } = &mut *st;
            tracker.reap(real_now_ns(), writer)?;
            last_reap = now;
        }
        if now.duration_since(last_status) >= STATUS_EVERY {
            status.update(progress(&st, loaded.stats()));
            last_status = now;
        }
    }

    // Drain what the kernel already handed over, then close the file valid.
    let rc = ring.consume_raw();
    if rc < 0 {
        log::warn!("draining the ring buffer: {}", std::io::Error::from_raw_os_error(-rc));
    }
    drop(ring);
    let mut st = state.into_inner();
    if let Some(e) = st.error {
        return Err(e.into());
    }
    // Schemas still being read: a second signal skips the wait.
    STOP.store(false, Ordering::Relaxed);
    st.schemas.finish(&mut st.writer, || STOP.load(Ordering::Relaxed))?;
    let kstats = loaded.stats();
    let p = progress(&st, kstats);
    status.finish();
    let comment = (kstats.lost_records + kstats.cut_bytes > 0).then(|| {
        format!(
            "kernel ring buffer full: {} records ({} bytes) not captured; {} bytes past the \
             per-call copy limit",
            kstats.lost_records, kstats.lost_bytes, kstats.cut_bytes
        )
    });
    if let Some(c) = &comment {
        log::warn!("{c}");
    }
    if st.bad_records > 0 {
        log::warn!("{} malformed ring records skipped", st.bad_records);
    }
    st.writer.finish(real_now_ns(), comment)?;
    eprintln!("{}", status::summary(p));
    Ok(ExitCode::SUCCESS)
}

fn progress(st: &State, k: bpf::KernelStats) -> Progress {
    let c = st.tracker.counters();
    Progress { chunks: c.chunks, bytes: c.bytes, dropped: k.lost_records }
}

/// Fails with one line when the process cannot load BPF programs:
/// root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN covers both).
pub fn check_privileges() -> anyhow::Result<()> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |c: u32| eff & (1 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    bail!("record: needs root (or CAP_BPF and CAP_PERFMON) to load eBPF programs; try sudo")
}

fn section_info() -> SectionInfo {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    let ok = unsafe { libc::uname(&mut u) } == 0;
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (os, hw) = if ok {
        (format!("{} {}", field(&u.sysname), field(&u.release)), field(&u.machine))
    } else {
        ("Linux".into(), std::env::consts::ARCH.into())
    };
    SectionInfo {
        os,
        hardware: hw,
        application: format!("dockersnoop {}", env!("CARGO_PKG_VERSION")),
    }
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec; the clocks used always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn real_now_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME).max(0) as u64
}

/// What to add to bpf_ktime_get_ns() (CLOCK_MONOTONIC) for wall-clock time.
fn mono_to_real_offset() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// Ends a running [`record`] as a signal would (e.g. when the live output
/// is gone).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT, SIGTERM and SIGHUP set [`STOP`]; without SA_RESTART, so the ring
/// buffer poll returns at once.
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the sigaction struct is fully initialised.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
