//! Byte-exact capture: random data over Unix stream sockets with every
//! syscall the recorder hooks (write, writev, sendto, sendmsg, sendmmsg), in
//! sizes from 1 byte to 4 MiB, from several threads in both directions. The
//! stream reassembled from the pcapng must equal what was sent, and every
//! packet must name the sending pid and tid.

mod record_common;
mod rng;

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;

use record_common::{read_capture, reassemble, require_root, Recorder};
use rng::Rng;

const SIZES_UP: &[usize] = &[1, 2, 100, 4095, 32512, 32513, 65536, 100_003, 1 << 20, 4 << 20];
const SIZES_DOWN: &[usize] = &[1, 4096, 100_003, 4 << 20];

#[derive(Clone, Copy, Debug)]
enum Call {
    Write,
    Writev,
    Sendto,
    Sendmsg,
    Sendmmsg,
}

const CALLS: [Call; 5] = [Call::Write, Call::Writev, Call::Sendto, Call::Sendmsg, Call::Sendmmsg];

fn check(ret: isize, what: &str) -> usize {
    assert!(ret >= 0, "{what}: {}", std::io::Error::last_os_error());
    ret as usize
}

fn iov(b: &[u8]) -> libc::iovec {
    libc::iovec { iov_base: b.as_ptr() as *mut _, iov_len: b.len() }
}

/// Splits `b` in three (the middle one may be empty).
fn thirds(b: &[u8]) -> [&[u8]; 3] {
    let (a, rest) = b.split_at(b.len() / 3);
    let (m, c) = rest.split_at(rest.len() / 4);
    [a, m, c]
}

/// Sends all of `buf` with `call` (finishing a partial send with write).
fn send_all(fd: i32, call: Call, buf: &[u8]) {
    // SAFETY (all blocks below): the pointers and lengths describe live
    // buffers owned by this function for the duration of each call.
    let sent = match call {
        Call::Write => unsafe { check(libc::write(fd, buf.as_ptr().cast(), buf.len()), "write") },
        Call::Sendto => unsafe {
            check(
                libc::sendto(fd, buf.as_ptr().cast(), buf.len(), 0, std::ptr::null(), 0),
                "sendto",
            )
        },
        Call::Writev => {
            let v: Vec<libc::iovec> = thirds(buf).iter().map(|p| iov(p)).collect();
            unsafe { check(libc::writev(fd, v.as_ptr(), v.len() as i32), "writev") }
        }
        Call::Sendmsg => {
            let mut v: Vec<libc::iovec> = thirds(buf).iter().map(|p| iov(p)).collect();
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_iov = v.as_mut_ptr();
            m.msg_iovlen = v.len();
            unsafe { check(libc::sendmsg(fd, &m, 0), "sendmsg") }
        }
        Call::Sendmmsg => {
            // Two messages of two iovecs each (the halves split again).
            let (h1, h2) = buf.split_at(buf.len() / 2);
            let mut iovs: Vec<[libc::iovec; 2]> = [h1, h2]
                .iter()
                .map(|h| {
                    let (a, b) = h.split_at(h.len() / 3);
                    [iov(a), iov(b)]
                })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = iovs
                .iter_mut()
                .map(|v| {
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_iov = v.as_mut_ptr();
                    m.msg_hdr.msg_iovlen = 2;
                    m
                })
                .collect();
            let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), 2, 0) };
            let n = check(n as isize, "sendmmsg");
            msgs[..n].iter().map(|m| m.msg_len as usize).sum()
        }
    };
    let mut off = sent;
    while off < buf.len() {
        let rest = &buf[off..];
        // SAFETY: as above.
        off += unsafe { check(libc::write(fd, rest.as_ptr().cast(), rest.len()), "write") };
    }
}

/// What one thread sent on one socket.
struct Sent {
    ino: u64,
    tid: u32,
    bytes: Vec<u8>,
}

fn inode(fd: i32) -> u64 {
    // SAFETY: fstat into a zeroed stat of a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    st.st_ino
}

/// Sends every size with every call on `s` from a new thread.
fn sender(s: UnixStream, sizes: &'static [usize], seed: u64) -> thread::JoinHandle<Sent> {
    thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let fd = s.as_raw_fd();
        let mut all = Vec::new();
        for (ci, call) in CALLS.iter().enumerate() {
            for (si, &n) in sizes.iter().enumerate() {
                let buf = Rng::new((seed ^ ((ci as u64) << 32) ^ si as u64) | 1).bytes(n);
                send_all(fd, *call, &buf);
                all.extend_from_slice(&buf);
            }
        }
        // The drain on the other end holds a clone of its socket: only a
        // shutdown tells it that this direction is done.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        Sent { ino: inode(fd), tid, bytes: all }
    })
}

fn drain(mut s: UnixStream) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut n = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return n,
                Ok(k) => n += k,
                Err(e) => panic!("reading: {e}"),
            }
        }
    })
}

#[test]
fn every_syscall_and_size_is_captured_byte_exact() {
    require_root();
    let dir = tempfile::Builder::new().prefix("dockersnoop-bytes-").tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let out = dir.path().join("out.pcapng");
    let listener = UnixListener::bind(&sock).unwrap();
    let rec = Recorder::start(&out, &["--socket", sock.to_str().unwrap(), "--ring-size", "256M"]);

    const CONNS: u64 = 2;
    let mut senders = Vec::new();
    let mut drains = Vec::new();
    for i in 0..CONNS {
        let client = UnixStream::connect(&sock).unwrap();
        let (server, _) = listener.accept().unwrap();
        drains.push(drain(server.try_clone().unwrap()));
        drains.push(drain(client.try_clone().unwrap()));
        senders.push(sender(client, SIZES_UP, 0x1000 + i));
        senders.push(sender(server, SIZES_DOWN, 0x2000 + i));
    }
    let sent: Vec<Sent> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    // Every sender dropped its socket: the drains see EOF.
    let received: usize = drains.into_iter().map(|h| h.join().unwrap()).sum();
    let total: usize = sent.iter().map(|s| s.bytes.len()).sum();
    assert_eq!(received, total, "the test's own sockets lost data");

    let summary = rec.stop();
    assert!(summary.contains(" 0 dropped"), "recorder reported drops: {summary}");

    let pkts = read_capture(&out);
    let streams = reassemble(&pkts);
    let by_ino: HashMap<u64, &Sent> = sent.iter().map(|s| (s.ino, s)).collect();
    let pid = std::process::id();
    let mut matched = 0;
    for ((src, dst), stream) in &streams {
        let meta = stream.packets[0].meta.as_ref().expect("metadata option on every packet");
        let Some(want) = by_ino.get(&meta.sock_ino) else {
            panic!("{src} → {dst}: socket inode {} is not one of ours", meta.sock_ino)
        };
        assert_eq!(stream.bytes.len(), want.bytes.len(), "{src} → {dst}: length");
        if let Some(at) = stream.bytes.iter().zip(&want.bytes).position(|(a, b)| a != b) {
            panic!("{src} → {dst}: bytes differ from offset {at}");
        }
        for p in &stream.packets {
            let m = p.meta.as_ref().expect("metadata option on every packet");
            assert_eq!((m.pid, m.tid), (pid, want.tid), "{src} → {dst}: pid/tid in metadata");
            assert_eq!(p.pid_tid, Some((pid, want.tid)), "{src} → {dst}: option 8");
            assert_eq!(m.sock_ino, want.ino);
            assert_eq!(m.path, sock.to_str().unwrap());
            assert_eq!(p.comment.as_deref(), Some(m.comment().as_str()));
        }
        matched += 1;
    }
    assert_eq!(matched, sent.len(), "every sending socket has one captured stream");
}
