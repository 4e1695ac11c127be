//! Stopping mid-capture: SIGINT, SIGTERM and SIGHUP leave a file that tshark
//! reads to the end; a zstd capture killed outright still reads up to the cut.

mod record_common;
mod rng;

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use record_common::{read_capture, require_root, tshark, Recorder};
use rng::Rng;

/// Keeps a client writing to a server until `stop` is set.
fn traffic(sock: &Path, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let listener = UnixListener::bind(sock).unwrap();
    let sock = sock.to_path_buf();
    thread::spawn(move || {
        let mut c = UnixStream::connect(&sock).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let reader = thread::spawn(move || std::io::copy(&mut s, &mut std::io::sink()).unwrap());
        let mut n = 0u64;
        // Incompressible, so that a zstd file grows as fast as a plain one.
        let noise = Rng::new(0x9e37_79b9_7f4a_7c15).bytes(1 << 20);
        while !stop.load(Ordering::Relaxed) {
            let at = (n as usize * 3000) % (noise.len() - 3000);
            c.write_all(&noise[at..at + 3000]).unwrap();
            n += 1;
            // A steady trickle keeps the files small enough for tshark.
            thread::sleep(Duration::from_micros(200));
        }
        drop(c);
        reader.join().unwrap();
        n
    })
}

/// Records until some packets are in, then sends `sig`.
fn record_and_signal(name: &str, sig: i32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix("dockersnoop-stop-").tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let out = dir.path().join(name);
    let stop = Arc::new(AtomicBool::new(false));
    // The recorder must see the socket's path: bind before it starts.
    let t = traffic(&sock, stop.clone());
    let rec = Recorder::start(&out, &["--socket", sock.to_str().unwrap()]);
    // Wait until the file holds more than its headers, then interrupt
    // while the writer is still busy.
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 16 << 10 {
        thread::sleep(Duration::from_millis(20));
    }
    let err = rec.stop_with(sig);
    stop.store(true, Ordering::Relaxed);
    assert!(t.join().unwrap() > 0);
    assert!(err.contains("chunks,"), "no summary line: {err}");
    (dir, out)
}

fn assert_reads_to_the_end(file: &Path) {
    let (ok, stdout, stderr) =
        tshark(&["-r", file.to_str().unwrap(), "-T", "fields", "-e", "frame.number"]);
    assert!(ok, "tshark failed on {}: {stderr}", file.display());
    assert!(!stderr.contains("cut short") && !stderr.contains("appears to be damaged"), "{stderr}");
    let frames = stdout.lines().count();
    assert!(frames > 3, "only {frames} frames in {}", file.display());
}

#[test]
fn sigint_mid_capture_leaves_a_complete_file() {
    require_root();
    let (_dir, out) = record_and_signal("int.pcapng", libc::SIGINT);
    assert_reads_to_the_end(&out);
    // Our own reader too: every packet block parses, and the file ends with
    // interface statistics counting them.
    let pkts = read_capture(&out);
    assert!(pkts.iter().all(|p| p.meta.is_some()));
    let f = std::fs::File::open(&out).unwrap();
    let mut r = pcap_file::pcapng::PcapNgReader::new(f).unwrap();
    let mut last = None;
    while let Some(b) = r.next_block() {
        last = Some(b.unwrap().0.into_owned());
    }
    let Some(pcap_file::pcapng::Block::InterfaceStatistics(isb)) = last else {
        panic!("the last block is not interface statistics: {last:?}")
    };
    use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption as O;
    let recv = isb.options.iter().find_map(|o| match o {
        O::IsbIfRecv(n) => Some(*n),
        _ => None,
    });
    assert_eq!(recv, Some(pkts.len() as u64), "isb_ifrecv counts every packet");
    assert!(isb.options.iter().any(|o| matches!(o, O::IsbIfDrop(0))), "no drops expected");
}

#[test]
fn sigterm_and_sighup_stop_cleanly_too() {
    require_root();
    for (name, sig) in [("term.pcapng", libc::SIGTERM), ("hup.pcapng", libc::SIGHUP)] {
        let (_dir, out) = record_and_signal(name, sig);
        assert_reads_to_the_end(&out);
    }
}

#[test]
fn zstd_capture_reads_after_sigint_and_up_to_a_cut() {
    require_root();
    let (_dir, out) = record_and_signal("int.pcapng.zst", libc::SIGINT);
    assert_reads_to_the_end(&out);

    // Cut the compressed file in the middle: tshark still reads the start.
    let bytes = std::fs::read(&out).unwrap();
    let cut = out.with_file_name("cut.pcapng.zst");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (_, stdout, stderr) =
        tshark(&["-r", cut.to_str().unwrap(), "-T", "fields", "-e", "frame.number"]);
    let frames = stdout.lines().count();
    assert!(frames > 3, "a cut zstd capture gave {frames} frames: {stderr}");
}
