//! Shared by the recorder tests: run `dockersnoop record` as a child, stop it
//! like a user would, and read the capture back with pcap-file.
//!
//! These tests need root and a kernel that loads our eBPF programs; they
//! fail, loudly, when either is missing.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dockersnoop::chunk::{ProcMeta, PEN};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::{Block, PcapNgReader};

/// Panics with a clear message unless we are root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test loads eBPF programs and must run as root (CI runs it with sudo); \
         it does not skip"
    );
}

/// A running `dockersnoop record`, killed if the test fails.
pub struct Recorder {
    child: Option<Child>,
    pub out: PathBuf,
}

impl Recorder {
    /// Starts recording into `out` and waits until the probes are attached
    /// (the file gets its headers right after).
    pub fn start(out: &Path, extra: &[&str]) -> Recorder {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dockersnoop"));
        cmd.arg("record").arg("-o").arg(out).arg("-q").args(extra);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        // If the test process dies, so does the recorder.
        // SAFETY: prctl is async-signal-safe and touches no memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawning dockersnoop record");
        let mut r = Recorder { child: Some(child), out: out.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(out).map_or(0, |m| m.len()) == 0 {
            if let Some(st) = r.child.as_mut().unwrap().try_wait().unwrap() {
                let err = r.stderr();
                panic!("dockersnoop record exited ({st}) before attaching: {err}");
            }
            assert!(Instant::now() < deadline, "dockersnoop record did not start within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.as_mut().unwrap().stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `sig`, waits, and returns stderr; panics unless it exited 0.
    pub fn stop_with(mut self, sig: i32) -> String {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
        let mut child = self.child.take().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let st = child.wait().unwrap();
        assert!(st.success(), "dockersnoop record exited with {st}: {err}");
        err
    }

    pub fn stop(self) -> String {
        self.stop_with(libc::SIGINT)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One packet of a capture, as the tests look at it.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub payload: Vec<u8>,
    pub meta: Option<ProcMeta>,
    /// epb_processid_threadid (option 8).
    pub pid_tid: Option<(u32, u32)>,
    pub comment: Option<String>,
}

/// Reads every enhanced packet block of a pcapng file.
pub fn read_capture(path: &Path) -> Vec<Pkt> {
    let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapNgReader::new(f).expect("pcapng section header");
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        let (block, _) = b.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let Block::EnhancedPacket(e) = block else {
            continue;
        };
        let p = etherparse::SlicedPacket::from_ip(&e.data).expect("raw IPv4 packet");
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else { panic!("not IPv4") };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else { panic!("not TCP") };
        let h = ip.header();
        let mut pkt = Pkt {
            src: SocketAddrV4::new(Ipv4Addr::from(h.source()), tcp.source_port()),
            dst: SocketAddrV4::new(Ipv4Addr::from(h.destination()), tcp.destination_port()),
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            fin: tcp.fin(),
            payload: tcp.payload().to_vec(),
            meta: None,
            pid_tid: None,
            comment: None,
        };
        for o in &e.options {
            match o {
                EnhancedPacketOption::Common(CommonOption::CustomBinaryCopiable(c))
                    if c.pen == PEN =>
                {
                    pkt.meta = Some(ProcMeta::decode(&c.value).expect("our metadata option"));
                }
                EnhancedPacketOption::Common(CommonOption::Unknown(u)) if u.code == 8 => {
                    let v = &u.value;
                    pkt.pid_tid = Some((
                        u32::from_le_bytes(v[0..4].try_into().unwrap()),
                        u32::from_le_bytes(v[4..8].try_into().unwrap()),
                    ));
                }
                EnhancedPacketOption::Common(CommonOption::Comment(c)) => {
                    pkt.comment = Some(c.to_string());
                }
                _ => {}
            }
        }
        out.push(pkt);
    }
    out
}

/// One direction of a synthetic TCP connection, reassembled by sequence number.
#[derive(Debug, Default)]
pub struct Stream {
    pub bytes: Vec<u8>,
    pub packets: Vec<Pkt>,
}

/// Reassembles every direction by sequence number, asserting that data
/// starts right after the SYN and has neither gaps nor overlaps.
pub fn reassemble(pkts: &[Pkt]) -> HashMap<(SocketAddrV4, SocketAddrV4), Stream> {
    let mut isn: HashMap<(SocketAddrV4, SocketAddrV4), u32> = HashMap::new();
    let mut by_dir: HashMap<(SocketAddrV4, SocketAddrV4), Vec<Pkt>> = HashMap::new();
    for p in pkts {
        let key = (p.src, p.dst);
        if p.syn {
            assert!(isn.insert(key, p.seq).is_none(), "two SYNs for {key:?}");
        } else if !p.payload.is_empty() {
            by_dir.entry(key).or_default().push(p.clone());
        }
    }
    let mut out = HashMap::new();
    for (key, mut list) in by_dir {
        let first = isn.get(&key).unwrap_or_else(|| panic!("no SYN for {key:?}")).wrapping_add(1);
        list.sort_by_key(|p| p.seq.wrapping_sub(first));
        let mut s = Stream::default();
        let mut next = first;
        for p in list {
            assert_eq!(
                p.seq.wrapping_sub(first),
                next.wrapping_sub(first),
                "{key:?}: segment at relative seq {} but {} bytes so far (gap or overlap)",
                p.seq.wrapping_sub(first),
                next.wrapping_sub(first)
            );
            next = next.wrapping_add(p.payload.len() as u32);
            s.bytes.extend_from_slice(&p.payload);
            s.packets.push(p);
        }
        out.insert(key, s);
    }
    out
}

/// Runs tshark and returns its stdout; panics if it cannot run.
pub fn tshark(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("running tshark (installed by scripts/setup --test)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
