//! Unix connections → synthetic TCP connections.
//!
//! Each Unix connection (the pair of socket inodes) becomes one TCP
//! connection over IPv4 with a 4-tuple unique within the capture:
//!
//! - the server end (the socket bound to the path: the listener's accepted
//!   socket) is `10.0.x.y:80`, one address per socket path, so Wireshark's
//!   HTTP dissector finds the HTTP/2 preface on its own;
//! - the client end is `10.1.x.y:port`, one address per client process and a
//!   fresh port per connection.
//!
//! A connection starts with a synthetic handshake when first seen. Sequence
//! numbers follow the kernel's per-socket stream offsets, so bytes the kernel
//! could not hand over (ring buffer full) leave a sequence gap. FIN is sent
//! when a process closes its fd (close(2) tracepoint) or, checked every few
//! seconds, when the process is gone.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

use crate::capture::bpf::{Event, EV_CLOSE, EV_DATA, F_CALL_START, F_PEER_BOUND, F_SENDER_BOUND};
use crate::capture::filter::SocketFilter;
use crate::chunk::{ProcMeta, SockType};
use crate::pcapng::writer::{CaptureWriter, Direction, Segment, TcpFlags, WriteError, MAX_SEGMENT};

/// Port of every synthetic server.
pub const SERVER_PORT: u16 = 80;
/// Client ports are handed out from here.
const FIRST_CLIENT_PORT: u16 = 1024;

/// Counts for the status line and the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Send calls captured (the first record of each).
    pub chunks: u64,
    /// Payload bytes written.
    pub bytes: u64,
    /// Sequence gaps seen (records the kernel could not hand over).
    pub gaps: u64,
    /// Bytes in those gaps.
    pub gap_bytes: u64,
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    /// Kernel stream offset of this direction's first byte we saw.
    base: Option<u64>,
    /// Bytes of this direction so far (relative to `base`).
    next: u64,
    fin: bool,
    /// Sender's metadata of the last packet, for a FIN.
    meta: Option<Arc<ProcMeta>>,
    pid: Option<u32>,
}

impl Half {
    /// Sequence space used: bytes plus the FIN.
    fn used(&self) -> u64 {
        self.next + u64::from(self.fin)
    }
}

#[derive(Debug)]
struct Conn {
    iface: u32,
    client: SocketAddrV4,
    server: SocketAddrV4,
    /// Kernel addresses of the server's and the client's sock.
    server_sock: u64,
    client_sock: u64,
    isn_client: u32,
    isn_server: u32,
    /// Client → server.
    up: Half,
    /// Server → client.
    down: Half,
}

impl Conn {
    fn seq(isn: u32, off: u64) -> u32 {
        isn.wrapping_add(1).wrapping_add(off as u32)
    }
}

/// The socket path's interface and server address.
#[derive(Clone, Debug)]
struct PathInfo {
    iface: u32,
    server_ip: Ipv4Addr,
}

/// Turns ring records into packets.
pub struct Tracker {
    filter: SocketFilter,
    conns: HashMap<u64, Conn>,
    /// Connection of each sock (both ends), by kernel address.
    by_sock: HashMap<u64, u64>,
    /// Inode last seen for each sock address, to notice reuse.
    sock_ino: HashMap<u64, u64>,
    next_conn: u64,
    paths: HashMap<String, PathInfo>,
    /// Client address per pid (and generation, after 64k ports).
    clients: HashMap<(u32, u32), Ipv4Addr>,
    ports: HashMap<u32, u32>,
    n_clients: u32,
    counters: Counters,
    /// Added to CLOCK_MONOTONIC to get nanoseconds since the epoch.
    mono_to_real: i64,
    /// Inodes of the Unix sockets that existed when recording started.
    existing: HashSet<u64>,
}

impl Tracker {
    pub fn new(filter: SocketFilter, mono_to_real: i64) -> Tracker {
        Tracker {
            filter,
            conns: HashMap::new(),
            by_sock: HashMap::new(),
            sock_ino: HashMap::new(),
            next_conn: 0,
            paths: HashMap::new(),
            clients: HashMap::new(),
            ports: HashMap::new(),
            n_clients: 0,
            counters: Counters::default(),
            mono_to_real,
            existing: HashSet::new(),
        }
    }

    /// Sockets that existed before recording (see [`unix_socket_inodes`]):
    /// their connections get no handshake, so that readers see them joined
    /// mid-stream rather than expecting a protocol's first bytes.
    pub fn set_existing(&mut self, inodes: HashSet<u64>) {
        self.existing = inodes;
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Handles one ring record. Returns false when the record was filtered out.
    pub fn handle(&mut self, ev: &Event<'_>, w: &mut CaptureWriter) -> Result<bool, WriteError> {
        if !self.filter.matches(ev.path) {
            return Ok(false);
        }
        log::trace!(
            "record kind={} sock={:#x} peer_sock={:#x} sys={} pid={} tid={} ino={} peer_ino={} \
             peer_pid={} flags={:#x} off={} len={} path={}",
            ev.kind,
            ev.sock,
            ev.peer_sock,
            ev.syscall,
            ev.pid,
            ev.tid,
            ev.sock_ino,
            ev.peer_ino,
            ev.peer_pid,
            ev.flags,
            ev.stream_off,
            ev.data.len(),
            String::from_utf8_lossy(ev.path)
        );
        let ts = (ev.ts_ns as i64).saturating_add(self.mono_to_real).max(0) as u64;
        match ev.kind {
            EV_DATA => self.data(ev, ts, w)?,
            EV_CLOSE => self.close(ev.sock, ts, w)?,
            k => log::debug!("ignoring ring record of unknown kind {k}"),
        }
        Ok(true)
    }

    fn meta(&mut self, ev: &Event<'_>) -> ProcMeta {
        ProcMeta {
            pid: ev.pid,
            tid: ev.tid,
            peer_pid: (ev.peer_pid != 0).then_some(ev.peer_pid),
            comm: String::from_utf8_lossy(ev.comm).into_owned(),
            sock_ino: ev.sock_ino,
            peer_ino: ev.peer_ino,
            sock_type: SockType(ev.sock_type),
            path: self.filter.display(ev.path),
        }
    }

    fn data(&mut self, ev: &Event<'_>, ts: u64, w: &mut CaptureWriter) -> Result<(), WriteError> {
        let meta = Arc::new(self.meta(ev));
        let key = match self.lookup(ev) {
            Some(k) => k,
            None => self.open(ev, &meta, ts, w)?,
        };
        let Some(conn) = self.conns.get_mut(&key) else {
            return Ok(());
        };
        let from_server = ev.sock == conn.server_sock;
        let (half, other, isn, other_isn) = if from_server {
            (&mut conn.down, &conn.up, conn.isn_server, conn.isn_client)
        } else {
            (&mut conn.up, &conn.down, conn.isn_client, conn.isn_server)
        };
        let base = *half.base.get_or_insert(ev.stream_off);
        let rel = ev.stream_off.wrapping_sub(base);
        if ev.stream_off < base || rel < half.next {
            // Two threads raced on one socket; keep the stream going.
            log::debug!("socket {}: offset {} behind {}", ev.sock_ino, rel, half.next);
        } else if rel > half.next {
            self.counters.gaps += 1;
            self.counters.gap_bytes += rel - half.next;
            w.count_drops(conn.iface, 1);
            half.next = rel;
        }
        half.pid = Some(ev.pid);
        half.meta = Some(meta.clone());
        let ack = Conn::seq(other_isn, other.used());
        let (src, dst, dir) = if from_server {
            (conn.server, conn.client, Direction::Outbound)
        } else {
            (conn.client, conn.server, Direction::Inbound)
        };
        for piece in ev.data.chunks(MAX_SEGMENT) {
            let seg = Segment {
                src,
                dst,
                seq: Conn::seq(isn, half.next),
                ack,
                flags: TcpFlags::PSH | TcpFlags::ACK,
                payload: piece,
            };
            w.write_segment(conn.iface, ts, &seg, dir, Some(&meta))?;
            half.next += piece.len() as u64;
        }
        if ev.flags & F_CALL_START != 0 {
            self.counters.chunks += 1;
        }
        self.counters.bytes += ev.data.len() as u64;
        Ok(())
    }

    /// The connection the sending sock belongs to. A sock address whose
    /// inode changed was freed and reused: its old connection is forgotten.
    fn lookup(&mut self, ev: &Event<'_>) -> Option<u64> {
        let key = *self.by_sock.get(&ev.sock)?;
        if !self.conns.contains_key(&key) {
            self.by_sock.remove(&ev.sock);
            return None;
        }
        match self.sock_ino.insert(ev.sock, ev.sock_ino) {
            Some(old) if old != 0 && ev.sock_ino != 0 && old != ev.sock_ino => {
                log::debug!("sock {:#x} reused (inode {old} → {})", ev.sock, ev.sock_ino);
                self.forget(key);
                None
            }
            _ => Some(key),
        }
    }

    fn forget(&mut self, key: u64) {
        if let Some(c) = self.conns.remove(&key) {
            for s in [c.server_sock, c.client_sock] {
                if self.by_sock.get(&s) == Some(&key) {
                    self.by_sock.remove(&s);
                    self.sock_ino.remove(&s);
                }
            }
        }
    }

    /// Creates the connection of `ev`, writes its handshake, returns its key.
    fn open(
        &mut self,
        ev: &Event<'_>,
        meta: &Arc<ProcMeta>,
        ts: u64,
        w: &mut CaptureWriter,
    ) -> Result<u64, WriteError> {
        // The bound end is the server; with both or neither bound (a
        // socketpair), the lower inode is.
        let sender_is_server = match (ev.flags & F_SENDER_BOUND != 0, ev.flags & F_PEER_BOUND != 0)
        {
            (true, false) => true,
            (false, true) => false,
            _ => ev.peer_ino == 0 || ev.sock_ino < ev.peer_ino,
        };
        let peer_pid = (ev.peer_pid != 0).then_some(ev.peer_pid);
        let (server_sock, client_sock, client_pid, server_pid) = if sender_is_server {
            (ev.sock, ev.peer_sock, peer_pid, Some(ev.pid))
        } else {
            (ev.peer_sock, ev.sock, Some(ev.pid), peer_pid)
        };
        let path = meta.path.clone();
        let info = self.path_info(&path, w)?;
        let client_name_pid = client_pid.unwrap_or(0);
        let n = self.ports.entry(client_name_pid).or_insert(0);
        let generation = *n / u32::from(u16::MAX - FIRST_CLIENT_PORT);
        let port = FIRST_CLIENT_PORT + (*n % u32::from(u16::MAX - FIRST_CLIENT_PORT)) as u16;
        *n += 1;
        let client_ip = match self.clients.get(&(client_name_pid, generation)) {
            Some(ip) => *ip,
            None => {
                self.n_clients += 1;
                let k = self.n_clients;
                let ip = Ipv4Addr::new(10, 1 + (k >> 16) as u8, (k >> 8) as u8, k as u8);
                self.clients.insert((client_name_pid, generation), ip);
                let comm = if sender_is_server { proc_comm(client_pid) } else { meta.comm.clone() };
                let name = match client_pid {
                    Some(p) => format!("{comm}.{p}"),
                    None => format!("client{k}"),
                };
                w.add_names(&[(ip, name)])?;
                ip
            }
        };
        let conn = Conn {
            iface: info.iface,
            client: SocketAddrV4::new(client_ip, port),
            server: SocketAddrV4::new(info.server_ip, SERVER_PORT),
            server_sock,
            client_sock,
            isn_client: 0x1000_0000u32.wrapping_add((client_sock >> 6) as u32),
            isn_server: 0x6000_0000u32.wrapping_add((server_sock >> 6) as u32),
            up: Half { pid: client_pid, ..Half::default() },
            down: Half { pid: server_pid, ..Half::default() },
        };
        log::debug!(
            "connection {}:{} ↔ {} for {} (inodes {} {})",
            conn.client.ip(),
            conn.client.port(),
            conn.server,
            path,
            ev.sock_ino,
            ev.peer_ino
        );
        let (c, s) = (conn.client, conn.server);
        let (ic, is) = (conn.isn_client, conn.isn_server);
        let steps = [
            (c, s, ic, 0, TcpFlags::SYN, Direction::Inbound),
            (s, c, is, ic.wrapping_add(1), TcpFlags::SYN | TcpFlags::ACK, Direction::Outbound),
            (c, s, ic.wrapping_add(1), is.wrapping_add(1), TcpFlags::ACK, Direction::Inbound),
        ];
        let joined =
            [ev.sock_ino, ev.peer_ino].iter().any(|i| *i != 0 && self.existing.contains(i));
        if joined {
            log::debug!("connection {c} ↔ {s} existed before recording: joined mid-stream");
        }
        for (src, dst, seq, ack, flags, dir) in steps {
            if joined {
                break;
            }
            let seg = Segment { src, dst, seq, ack, flags, payload: &[] };
            // The chunk's metadata describes its sender only; the other
            // end's packets carry none (its thread and name are unknown).
            let by_sender = (src == s) == sender_is_server;
            w.write_segment(conn.iface, ts, &seg, dir, by_sender.then_some(&**meta))?;
        }
        let key = self.next_conn;
        self.next_conn += 1;
        for s in [server_sock, client_sock] {
            // A peer already gone has no address: nothing to map.
            if s != 0 {
                if let Some(&old) = self.by_sock.get(&s) {
                    self.forget(old);
                }
                self.by_sock.insert(s, key);
            }
        }
        self.sock_ino.insert(ev.sock, ev.sock_ino);
        self.conns.insert(key, conn);
        Ok(key)
    }

    fn path_info(&mut self, path: &str, w: &mut CaptureWriter) -> Result<PathInfo, WriteError> {
        if let Some(p) = self.paths.get(path) {
            return Ok(p.clone());
        }
        let iface = w.add_interface(path)?;
        let k = self.paths.len() as u32 + 1;
        let server_ip = Ipv4Addr::new(10, 0, (k >> 8) as u8, k as u8);
        let name = match Path::new(path).file_name() {
            Some(n) if path.starts_with('/') => n.to_string_lossy().into_owned(),
            _ if path.is_empty() => "unnamed".into(),
            _ => path.to_string(),
        };
        w.add_names(&[(server_ip, name)])?;
        let info = PathInfo { iface, server_ip };
        self.paths.insert(path.to_string(), info.clone());
        Ok(info)
    }

    /// Sends FIN for the side whose sock is `sock`.
    fn close(&mut self, sock: u64, ts: u64, w: &mut CaptureWriter) -> Result<(), WriteError> {
        let Some(&key) = self.by_sock.get(&sock) else {
            return Ok(());
        };
        let Some(conn) = self.conns.get_mut(&key) else {
            return Ok(());
        };
        let from_server = sock == conn.server_sock;
        fin(conn, from_server, ts, w)?;
        if conn.up.fin && conn.down.fin {
            self.forget(key);
        }
        Ok(())
    }

    /// Sends FIN for every side whose process has exited without close(2)
    /// (exit closes fds without the syscall).
    pub fn reap(&mut self, now_ns: u64, w: &mut CaptureWriter) -> Result<(), WriteError> {
        let gone =
            |h: &Half| !h.fin && h.pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
        let mut done = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if gone(&conn.up) {
                fin(conn, false, now_ns, w)?;
            }
            if gone(&conn.down) {
                fin(conn, true, now_ns, w)?;
            }
            if conn.up.fin && conn.down.fin {
                done.push(*key);
            }
        }
        for k in done {
            self.forget(k);
        }
        Ok(())
    }
}

fn fin(
    conn: &mut Conn,
    from_server: bool,
    ts: u64,
    w: &mut CaptureWriter,
) -> Result<(), WriteError> {
    let (half, other, isn, other_isn, src, dst, dir) = if from_server {
        (
            &mut conn.down,
            &conn.up,
            conn.isn_server,
            conn.isn_client,
            conn.server,
            conn.client,
            Direction::Outbound,
        )
    } else {
        (
            &mut conn.up,
            &conn.down,
            conn.isn_client,
            conn.isn_server,
            conn.client,
            conn.server,
            Direction::Inbound,
        )
    };
    if half.fin {
        return Ok(());
    }
    // The side's own metadata, or none if it never sent anything: the other
    // side's would name the wrong sender.
    let meta = half.meta.clone();
    let seg = Segment {
        src,
        dst,
        seq: Conn::seq(isn, half.next),
        ack: Conn::seq(other_isn, other.used()),
        flags: TcpFlags::FIN | TcpFlags::ACK,
        payload: &[],
    };
    w.write_segment(conn.iface, ts, &seg, dir, meta.as_deref())?;
    half.fin = true;
    Ok(())
}

/// A process's name from /proc, or `pid` when it is gone.
/// Inodes of the Unix sockets of this network namespace now, from
/// /proc/net/unix (`Num RefCount Protocol Flags Type St Inode Path`).
/// Unreadable means none: every connection then looks new.
pub fn unix_socket_inodes() -> HashSet<u64> {
    let text = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    parse_unix_inodes(&text)
}

fn parse_unix_inodes(text: &str) -> HashSet<u64> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().nth(6)?.parse().ok()).collect()
}

fn proc_comm(pid: Option<u32>) -> String {
    pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|| "pid".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapng::writer::{OutputSpec, SectionInfo};
    use pcap_file::pcapng::{Block, PcapNgReader};

    const PATH: &[u8] = b"/nonexistent-dir/c.sock";

    /// A writer to `out` and a tracker that records the sockets at [`PATH`].
    fn writer_and_tracker(out: &Path) -> (CaptureWriter, Tracker) {
        let spec =
            OutputSpec { path: Some(out.to_path_buf()), rotate_bytes: None, max_files: None };
        let w = CaptureWriter::create(spec, SectionInfo::default(), 0).unwrap();
        let filter = SocketFilter::parse(&["/nonexistent-dir/c.sock".into()], 16).unwrap();
        (w, Tracker::new(filter, 0))
    }

    fn event<'a>(sock: u64, peer: u64, off: u64, flags: u8, data: &'a [u8]) -> Event<'a> {
        Event {
            ts_ns: 1_000 + off,
            sock,
            peer_sock: peer,
            sock_ino: sock + 100,
            peer_ino: peer + 100,
            stream_off: off,
            kind: EV_DATA,
            pid: sock as u32,
            tid: sock as u32 + 1,
            peer_pid: peer as u32,
            call_len: data.len() as u32,
            sock_type: 1,
            flags: flags | F_CALL_START,
            syscall: 1,
            comm: b"t",
            path: PATH,
            data,
        }
    }

    /// (src port, dst port, seq, flags byte, payload) of every packet.
    fn packets(path: &Path) -> Vec<(u16, u16, u32, bool, bool, Vec<u8>)> {
        let mut r = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut out = Vec::new();
        while let Some(b) = r.next_block() {
            if let (Block::EnhancedPacket(e), _) = b.unwrap() {
                let p = etherparse::SlicedPacket::from_ip(&e.data).unwrap();
                let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else { panic!() };
                out.push((
                    t.source_port(),
                    t.destination_port(),
                    t.sequence_number(),
                    t.syn(),
                    t.fin(),
                    t.payload().to_vec(),
                ));
            }
        }
        out
    }

    #[test]
    fn handshake_data_gap_and_fin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcapng");
        let (mut w, mut t) = writer_and_tracker(&out);

        // Client (sock 1, unbound) sends first; the server (sock 2) answers;
        // the client's next record comes after 5 lost bytes.
        assert!(t.handle(&event(1, 2, 0, F_PEER_BOUND, b"hello"), &mut w).unwrap());
        assert!(t.handle(&event(2, 1, 0, F_SENDER_BOUND, b"hi"), &mut w).unwrap());
        assert!(t.handle(&event(1, 2, 10, F_PEER_BOUND, b"again"), &mut w).unwrap());
        let mut close = event(2, 1, 0, F_SENDER_BOUND, b"");
        close.kind = EV_CLOSE;
        t.handle(&close, &mut w).unwrap();
        // Another path is filtered out in user space.
        let mut other = event(3, 4, 0, F_PEER_BOUND, b"x");
        other.path = b"/nonexistent-dir/c.sock.ttrpc";
        assert!(!t.handle(&other, &mut w).unwrap());
        w.finish(2_000, None).unwrap();

        let c = t.counters();
        assert_eq!((c.chunks, c.bytes, c.gaps, c.gap_bytes), (3, 12, 1, 5));
        let p = packets(&out);
        assert_eq!(p.len(), 7);
        let (cport, sport) = (p[0].0, p[0].1);
        assert_eq!(sport, SERVER_PORT);
        assert!(p[0].3 && p[1].3 && !p[2].3, "SYN, SYN-ACK, ACK");
        let (isn_c, isn_s) = (p[0].2, p[1].2);
        assert_eq!((p[3].0, p[3].2, &p[3].5[..]), (cport, isn_c + 1, &b"hello"[..]));
        assert_eq!((p[4].0, p[4].2, &p[4].5[..]), (sport, isn_s + 1, &b"hi"[..]));
        // The gap: "again" starts 10 bytes after the first byte.
        assert_eq!((p[5].2, &p[5].5[..]), (isn_c + 11, &b"again"[..]));
        assert!(p[6].4 && p[6].0 == sport && p[6].2 == isn_s + 3, "server FIN after its 2 bytes");
    }

    /// (src port, pid in the packet's comment) of every packet.
    fn senders(path: &Path) -> Vec<(u16, Option<u32>)> {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
        use pcap_file::pcapng::blocks::opt_common::CommonOption;
        let mut r = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut out = Vec::new();
        while let Some(b) = r.next_block() {
            if let (Block::EnhancedPacket(e), _) = b.unwrap() {
                let p = etherparse::SlicedPacket::from_ip(&e.data).unwrap();
                let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else { panic!() };
                let pid = e.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Common(CommonOption::Comment(c)) => {
                        let rest = c.split(" pid=").nth(1)?;
                        rest.split(' ').next()?.parse().ok()
                    }
                    _ => None,
                });
                out.push((t.source_port(), pid));
            }
        }
        out
    }

    #[test]
    fn every_packet_names_its_own_sender() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcapng");
        let (mut w, mut t) = writer_and_tracker(&out);
        // The server (sock 2, pid 2) speaks first: the client's SYN and ACK
        // are written on behalf of pid 1, which has not been seen yet.
        assert!(t.handle(&event(2, 1, 0, F_SENDER_BOUND, b"banner"), &mut w).unwrap());
        // The client closes without having sent anything.
        let mut close = event(1, 2, 0, F_PEER_BOUND, b"");
        close.kind = EV_CLOSE;
        t.handle(&close, &mut w).unwrap();
        w.finish(2_000, None).unwrap();
        let p = senders(&out);
        assert_eq!(p.len(), 5, "SYN, SYN-ACK, ACK, data, FIN: {p:?}");
        for (port, pid) in &p {
            let sender = if *port == SERVER_PORT { 2 } else { 1 };
            assert!(pid.is_none_or(|pid| pid == sender), "port {port} says pid {pid:?}: {p:?}");
        }
        assert_eq!(p[1], (SERVER_PORT, Some(2)), "the SYN-ACK is the sender's own");
        assert_eq!(p[3], (SERVER_PORT, Some(2)), "the data is the sender's own");
        assert_eq!((p[0].1, p[2].1, p[4].1), (None, None, None), "nothing known of the client");
    }

    #[test]
    fn sockets_from_before_the_recording_get_no_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.pcapng");
        let (mut w, mut t) = writer_and_tracker(&out);
        // Socket 1 has inode 101 (see `event`).
        t.set_existing(parse_unix_inodes(
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000000012345678: 00000003 00000000 00000000 0001 03 101 /x\n\
             00000000abcdef00: 00000002 00000000 00010000 0001 01 7\n",
        ));
        assert!(t.handle(&event(1, 2, 0, F_PEER_BOUND, b"hello"), &mut w).unwrap());
        w.finish(2_000, None).unwrap();
        let p = packets(&out);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(!p[0].3 && p[0].5 == b"hello", "data without a SYN before it");
    }
}
