//! Loading the kernel side (bpf/unixsnoop.bpf.c) and reading its records.
//!
//! The BPF object is compiled by build.rs into a libbpf-rs skeleton; this
//! module fills its filter table, sizes the ring buffer, picks the probe
//! backend, attaches, and parses what comes out of the ring buffer.
//!
//! Backends: fentry/fexit or kprobe/kretprobe on unix_stream_sendmsg and
//! unix_dgram_sendmsg, or the syscall tracepoints; the object holds them
//! all and only the chosen one is loaded (autoload). `--probe auto` tries
//! them in that order and logs why the better ones were refused.

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

use crate::cli::Probe;

mod skel {
    #![allow(clippy::all, clippy::pedantic, non_camel_case_types, dead_code, unused_imports)]
    include!(concat!(env!("OUT_DIR"), "/unixsnoop.skel.rs"));
}

use skel::{OpenUnixsnoopSkel, UnixsnoopSkel, UnixsnoopSkelBuilder};

/// Limits of the kernel-side filter table (bpf/unixsnoop.h).
pub const MAX_PATTERNS: usize = 16;
pub const MAX_PIDS: usize = 16;
pub const MAX_COMMS: usize = 8;
const COMM_LEN: usize = 16;
const PATH_LEN: usize = 108;

/// Size of `struct event_hdr`, which starts every ring record.
pub const HDR_LEN: usize = 208;

// event_hdr.kind
pub const EV_DATA: u32 = 1;
pub const EV_CLOSE: u32 = 2;
// event_hdr.flags
pub const F_SENDER_BOUND: u8 = 1;
pub const F_PEER_BOUND: u8 = 2;
pub const F_CALL_START: u8 = 4;

// Indexes of the per-CPU `stats` counters.
const STAT_LOST_RECORDS: u32 = 0;
const STAT_LOST_BYTES: u32 = 1;
const STAT_CUT_BYTES: u32 = 2;

/// Why the kernel side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "loading eBPF programs failed: {0}; dockersnoop record needs root \
         (or CAP_BPF and CAP_PERFMON)"
    )]
    Permission(String),
    #[error("loading eBPF programs failed: {0}")]
    Load(String),
    #[error("--probe {backend}: {reason}; use --probe tracepoint (or auto)")]
    Backend { backend: &'static str, reason: String },
    #[error("--ring-size {0}: must be a power of two of at least 4096 and at most 1G")]
    RingSize(String),
    #[error("too many {what} filters: at most {max}")]
    TooMany { what: &'static str, max: usize },
}

/// What the kernel filters on.
#[derive(Clone, Debug, Default)]
pub struct KernelFilter {
    pub any: bool,
    /// Path prefixes and whether the whole path must match.
    pub patterns: Vec<(Vec<u8>, bool)>,
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
}

/// One record from the ring buffer.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub ts_ns: u64,
    /// Kernel addresses of the sending sock and its peer (0 when none).
    pub sock: u64,
    pub peer_sock: u64,
    pub sock_ino: u64,
    pub peer_ino: u64,
    pub stream_off: u64,
    pub kind: u32,
    pub pid: u32,
    pub tid: u32,
    pub peer_pid: u32,
    pub call_len: u32,
    pub sock_type: u16,
    pub flags: u8,
    pub syscall: u8,
    pub comm: &'a [u8],
    pub path: &'a [u8],
    pub data: &'a [u8],
}

/// Why a ring record could not be read (a version mismatch or a bug).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ring record of {len} bytes is malformed: {what}")]
pub struct EventError {
    len: usize,
    what: &'static str,
}

impl<'a> Event<'a> {
    /// Parses a record: the header (layout of `struct event_hdr`) and,
    /// for data records, `data_len` bytes after it.
    pub fn parse(rec: &'a [u8]) -> Result<Event<'a>, EventError> {
        let err = |what| EventError { len: rec.len(), what };
        let hdr = rec.get(..HDR_LEN).ok_or(err("shorter than its header"))?;
        let u64_at = |o: usize| u64::from_ne_bytes(hdr[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_ne_bytes(hdr[o..o + 4].try_into().expect("4 bytes"));
        let u16_at = |o: usize| u16::from_ne_bytes(hdr[o..o + 2].try_into().expect("2 bytes"));
        let data_len = u32_at(64) as usize;
        let path_len = (u16_at(74) as usize).min(PATH_LEN);
        let comm = &hdr[80..80 + COMM_LEN];
        let comm = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN)];
        let data = rec.get(HDR_LEN..HDR_LEN + data_len).ok_or(err("data cut short"))?;
        Ok(Event {
            ts_ns: u64_at(0),
            sock: u64_at(8),
            peer_sock: u64_at(16),
            sock_ino: u64_at(24),
            peer_ino: u64_at(32),
            stream_off: u64_at(40),
            kind: u32_at(48),
            pid: u32_at(52),
            tid: u32_at(56),
            peer_pid: u32_at(60),
            call_len: u32_at(68),
            sock_type: u16_at(72),
            flags: hdr[76],
            syscall: hdr[77],
            comm,
            path: &hdr[96..96 + path_len],
            data,
        })
    }
}

/// Kernel-side loss counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Records that did not fit in the ring buffer.
    pub lost_records: u64,
    /// Payload bytes in those records.
    pub lost_bytes: u64,
    /// Bytes of calls too large for the per-call copy limit.
    pub cut_bytes: u64,
}

/// The loaded and attached programs.
pub struct Loaded<'obj> {
    skel: UnixsnoopSkel<'obj>,
    /// Which backend is attached, for the log.
    pub backend: &'static str,
}

/// How the send path is hooked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Fentry,
    Kprobe,
    Tracepoint,
}

impl Backend {
    /// The `--probe` value.
    pub fn flag(self) -> &'static str {
        match self {
            Backend::Fentry => "fentry",
            Backend::Kprobe => "kprobe",
            Backend::Tracepoint => "tracepoint",
        }
    }

    /// What is attached, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Fentry => "fentry/fexit on unix_stream_sendmsg and unix_dgram_sendmsg",
            Backend::Kprobe => "kprobe/kretprobe on unix_stream_sendmsg and unix_dgram_sendmsg",
            Backend::Tracepoint => "syscall tracepoints",
        }
    }
}

/// Ring size of a trial load by `--probe auto` (the real one follows).
const TRIAL_RING: u64 = 4096;

/// Checks a ring buffer size of `size` bytes; the error shows `typed`, the
/// spelling the user gave (`3G`).
pub fn check_ring_size(size: u64, typed: &str) -> Result<(), BpfError> {
    if !size.is_power_of_two() || !(4096..=1 << 30).contains(&size) {
        return Err(BpfError::RingSize(typed.to_string()));
    }
    Ok(())
}

/// Opens, configures, loads and attaches the kernel side with the backend
/// `--probe` asks for; `auto` tries fentry, then kprobe, then the syscall
/// tracepoints, and logs (info) which it chose and why the others failed.
pub fn load<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    filter: &KernelFilter,
    ring_size: u64,
    probe: Probe,
) -> Result<Loaded<'obj>, BpfError> {
    check_ring_size(ring_size, &ring_size.to_string())?;
    check_limits(filter)?;
    route_libbpf_messages();
    let backend = match probe {
        Probe::Tracepoint => Backend::Tracepoint,
        Probe::Fentry => Backend::Fentry,
        Probe::Kprobe => Backend::Kprobe,
        Probe::Auto => choose(filter),
    };
    if backend == Backend::Kprobe {
        kprobes_available().map_err(|reason| BpfError::Backend { backend: "kprobe", reason })?;
    }
    load_backend(obj, filter, ring_size, backend).map_err(|e| match (backend, e) {
        (Backend::Fentry | Backend::Kprobe, BpfError::Permission(r) | BpfError::Load(r)) => {
            BpfError::Backend {
                backend: backend.flag(),
                reason: format!("the kernel refused its programs: {r}"),
            }
        }
        (_, e) => e,
    })
}

/// Loads the programs of `backend` (through the kernel's verifier) without
/// attaching them, then unloads them: whether this kernel accepts them.
pub fn check_loads(backend: Backend) -> Result<(), BpfError> {
    route_libbpf_messages();
    let mut obj = MaybeUninit::uninit();
    let mut open = UnixsnoopSkelBuilder::default().open(&mut obj).map_err(classify)?;
    select_programs(&mut open, backend);
    open.maps.events.set_max_entries(TRIAL_RING as u32).map_err(classify)?;
    open.load().map(drop).map_err(classify)
}

/// `--probe auto`: the first backend whose programs load and attach (in a
/// throw-away object with a small ring).
fn choose(filter: &KernelFilter) -> Backend {
    let mut refused = Vec::new();
    for b in [Backend::Fentry, Backend::Kprobe] {
        if b == Backend::Kprobe {
            if let Err(why) = kprobes_available() {
                refused.push(format!("kprobe: {why}"));
                continue;
            }
        }
        let mut trial = MaybeUninit::uninit();
        let res = load_backend(&mut trial, filter, TRIAL_RING, b).map(drop);
        match res {
            Ok(()) => {
                let why = if refused.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", refused.join("; "))
                };
                log::info!("probe auto: using {}{why}", b.describe());
                return b;
            }
            Err(e) => refused.push(format!("{}: {}", b.flag(), short_reason(&e))),
        }
    }
    log::info!("probe auto: using {} ({})", Backend::Tracepoint.describe(), refused.join("; "));
    Backend::Tracepoint
}

/// libbpf attaches kprobes through the kprobe PMU, or the older
/// kprobe_events file of tracefs; with neither, say so rather than ENOENT.
fn kprobes_available() -> Result<(), String> {
    let pmu = std::path::Path::new("/sys/bus/event_source/devices/kprobe");
    let legacy = ["/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"];
    if pmu.exists() || legacy.iter().any(|p| std::path::Path::new(p).exists()) {
        Ok(())
    } else {
        Err("this kernel has no kprobes (neither the kprobe PMU nor kprobe_events)".into())
    }
}

/// The cause of a load failure without our own framing.
fn short_reason(e: &BpfError) -> String {
    match e {
        BpfError::Permission(r) | BpfError::Load(r) => format!("refused by the kernel: {r}"),
        e => e.to_string(),
    }
}

/// libbpf prints its own diagnostics (program dumps, verifier logs) to
/// stderr; they go to our log at debug instead, so that a refused backend
/// is one line.
fn route_libbpf_messages() {
    fn print(level: libbpf_rs::PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            // libbpf starts its messages with "libbpf: ".
            libbpf_rs::PrintLevel::Warn => log::debug!("{msg}"),
            _ => log::trace!("{msg}"),
        }
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, print)));
}

/// Only the programs of `backend` are loaded; the close tracepoint serves
/// them all.
fn select_programs(open: &mut OpenUnixsnoopSkel<'_>, backend: Backend) {
    let tp = backend == Backend::Tracepoint;
    let fe = backend == Backend::Fentry;
    let kp = backend == Backend::Kprobe;
    let p = &mut open.progs;
    for (prog, on) in [
        (&mut p.enter_write, tp),
        (&mut p.exit_write, tp),
        (&mut p.enter_writev, tp),
        (&mut p.exit_writev, tp),
        (&mut p.enter_sendto, tp),
        (&mut p.exit_sendto, tp),
        (&mut p.enter_sendmsg, tp),
        (&mut p.exit_sendmsg, tp),
        (&mut p.enter_sendmmsg, tp),
        (&mut p.exit_sendmmsg, tp),
        (&mut p.fentry_stream, fe),
        (&mut p.fexit_stream, fe),
        (&mut p.fentry_dgram, fe),
        (&mut p.fexit_dgram, fe),
        (&mut p.kprobe_stream, kp),
        (&mut p.kretprobe_stream, kp),
        (&mut p.kprobe_dgram, kp),
        (&mut p.kretprobe_dgram, kp),
        (&mut p.enter_close, true),
    ] {
        prog.set_autoload(on);
    }
}

fn load_backend<'obj>(
    obj: &'obj mut MaybeUninit<OpenObject>,
    filter: &KernelFilter,
    ring_size: u64,
    backend: Backend,
) -> Result<Loaded<'obj>, BpfError> {
    let mut open = UnixsnoopSkelBuilder::default().open(obj).map_err(classify)?;
    select_programs(&mut open, backend);
    open.maps.events.set_max_entries(ring_size as u32).map_err(classify)?;
    let ro = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| BpfError::Load("the BPF object has no .rodata".into()))?;
    ro.self_pid = std::process::id();
    ro.match_any = filter.any;
    ro.n_patterns = filter.patterns.len() as u32;
    for (slot, (prefix, exact)) in ro.patterns.iter_mut().zip(&filter.patterns) {
        for (d, s) in slot.prefix.iter_mut().zip(prefix) {
            *d = *s as i8;
        }
        slot.len = prefix.len() as u32;
        slot.exact = u32::from(*exact);
    }
    ro.n_pids = filter.pids.len() as u32;
    for (d, s) in ro.pids.iter_mut().zip(&filter.pids) {
        *d = *s;
    }
    ro.n_comms = filter.comms.len() as u32;
    for (slot, name) in ro.comms.iter_mut().zip(&filter.comms) {
        // The kernel keeps 15 bytes and a NUL.
        for (d, s) in slot.iter_mut().zip(name.as_bytes().iter().take(COMM_LEN - 1)) {
            *d = *s as i8;
        }
    }

    let mut skel = open.load().map_err(classify)?;
    skel.attach().map_err(classify)?;
    log::debug!(
        "attached the eBPF programs ({}, ring buffer {} KiB)",
        backend.describe(),
        ring_size >> 10
    );
    Ok(Loaded { skel, backend: backend.describe() })
}

fn check_limits(f: &KernelFilter) -> Result<(), BpfError> {
    for (what, n, max) in [
        ("socket", f.patterns.len(), MAX_PATTERNS),
        ("--pid", f.pids.len(), MAX_PIDS),
        ("--comm", f.comms.len(), MAX_COMMS),
    ] {
        if n > max {
            return Err(BpfError::TooMany { what, max });
        }
    }
    Ok(())
}

/// Sorts libbpf errors into "not allowed" and everything else.
fn classify(e: libbpf_rs::Error) -> BpfError {
    let msg = e.to_string();
    if matches!(e.kind(), libbpf_rs::ErrorKind::PermissionDenied)
        || msg.contains("Operation not permitted")
        || msg.contains("EPERM")
    {
        BpfError::Permission(msg)
    } else {
        BpfError::Load(msg)
    }
}

impl<'obj> Loaded<'obj> {
    /// The ring buffer map, for a [`libbpf_rs::RingBufferBuilder`].
    pub fn events(&self) -> &dyn MapCore {
        &self.skel.maps.events
    }

    /// Sums the per-CPU loss counters.
    pub fn stats(&self) -> KernelStats {
        let read = |idx: u32| -> u64 {
            let vals = self.skel.maps.stats.lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY);
            match vals {
                Ok(Some(per_cpu)) => per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap())))
                    .sum(),
                Ok(None) => 0,
                Err(e) => {
                    log::debug!("reading kernel statistics: {e}");
                    0
                }
            }
        };
        KernelStats {
            lost_records: read(STAT_LOST_RECORDS),
            lost_bytes: read(STAT_LOST_BYTES),
            cut_bytes: read(STAT_CUT_BYTES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_the_c_struct() {
        assert_eq!(std::mem::size_of::<skel::types::event_hdr>(), HDR_LEN);
        let h = skel::types::event_hdr::default();
        let base = &h as *const _ as usize;
        assert_eq!(&h.peer_sock as *const _ as usize - base, 16);
        assert_eq!(&h.kind as *const _ as usize - base, 48);
        assert_eq!(&h.data_len as *const _ as usize - base, 64);
        assert_eq!(&h.path_len as *const _ as usize - base, 74);
        assert_eq!(&h.flags as *const _ as usize - base, 76);
        assert_eq!(&h.comm as *const _ as usize - base, 80);
        assert_eq!(&h.path as *const _ as usize - base, 96);
    }

    #[test]
    fn records_are_parsed_with_bounds() {
        let mut rec = vec![0u8; HDR_LEN + 3];
        rec[48..52].copy_from_slice(&EV_DATA.to_ne_bytes());
        rec[52..56].copy_from_slice(&42u32.to_ne_bytes());
        rec[64..68].copy_from_slice(&3u32.to_ne_bytes());
        rec[74..76].copy_from_slice(&4u16.to_ne_bytes());
        rec[80..84].copy_from_slice(b"ctr\0");
        rec[96..100].copy_from_slice(b"/a/b");
        rec[HDR_LEN..].copy_from_slice(b"xyz");
        let ev = Event::parse(&rec).unwrap();
        assert_eq!(
            (ev.kind, ev.pid, ev.comm, ev.path, ev.data),
            (1, 42, &b"ctr"[..], &b"/a/b"[..], &b"xyz"[..])
        );
        assert!(Event::parse(&rec[..HDR_LEN + 2]).is_err());
        assert!(Event::parse(&rec[..10]).is_err());
    }
}
