//! Real daemons on private paths for the end-to-end tests: containerd (the
//! Debian package), dockerd against it, a busybox image from a local tar,
//! and `dockersnoop watch`/`decode` as children.
//!
//! Everything started here is stopped by a `Drop` guard whatever the test's
//! outcome: dockerd, the shims it left, containerd, and any mount under the
//! private directory. These tests need root and the daemons; they fail,
//! loudly, when either is missing.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Give up waiting for a daemon after this long (a hang guard, not a
/// measurement).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Panics with a clear message unless `program` is on PATH.
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is missing: install {package} (scripts/setup --test); this test does not skip"
    );
}

/// The binary under test.
pub fn dockersnoop() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dockersnoop"));
    // If the test process dies, so does the child.
    // SAFETY: prctl is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// containerd with its sockets, state and log under a private directory,
/// killed on drop whatever happens to the test.
pub struct Containerd(Child);

impl Containerd {
    /// Starts `binary` (containerd or a copy of it) on `dir/c.sock`,
    /// optionally with GODEBUG=http2debug=2, and waits until it listens.
    pub fn start(binary: &Path, dir: &Path, http2debug: bool) -> Containerd {
        let sock = dir.join("c.sock");
        let config = dir.join("config.toml");
        let log_path = dir.join("containerd.log");
        // No CRI, no snapshotters that probe the host, no tracing.
        std::fs::write(
            &config,
            format!(
                "version = 2\n\
                 root = \"{root}\"\n\
                 state = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
                 \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
                 \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\", \
                 \"io.containerd.tracing.processor.v1.otlp\", \"io.containerd.internal.v1.tracing\"]\n\
                 [grpc]\n  address = \"{sock}\"\n\
                 [ttrpc]\n  address = \"{sock}.ttrpc\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = sock.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg("--config").arg(&config).stdout(Stdio::null()).stderr(log);
        if http2debug {
            cmd.env("GODEBUG", "http2debug=2");
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("starting {} (installed by scripts/setup --test): {e}", binary.display())
        });
        let mut c = Containerd(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while UnixStream::connect(&sock).is_err() {
            if let Some(st) = c.0.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("containerd exited ({st}) before listening: {log}");
            }
            assert!(Instant::now() < deadline, "containerd did not listen on {}", sock.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private directory with the daemons started in it, torn down on drop.
pub struct Scene {
    pub dir: tempfile::TempDir,
    containerd: Option<Containerd>,
    dockerd: Option<Child>,
}

impl Scene {
    pub fn new(prefix: &str) -> Scene {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
        Scene { dir, containerd: None, dockerd: None }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// containerd's gRPC socket.
    pub fn containerd_sock(&self) -> PathBuf {
        self.path().join("c.sock")
    }

    pub fn docker_sock(&self) -> PathBuf {
        self.path().join("docker.sock")
    }

    /// containerd's stderr: its log, with every HTTP/2 frame and header it
    /// read when started with `http2debug`.
    pub fn containerd_log(&self) -> String {
        std::fs::read_to_string(self.path().join("containerd.log")).unwrap_or_default()
    }

    /// Starts containerd on private paths, optionally with
    /// GODEBUG=http2debug=2, and waits until it listens.
    pub fn start_containerd(&mut self, http2debug: bool) -> u32 {
        require_program("containerd", "containerd");
        let c = Containerd::start(Path::new("containerd"), self.path(), http2debug);
        let pid = c.pid();
        self.containerd = Some(c);
        pid
    }

    /// Starts dockerd against our containerd and waits until its API
    /// answers; returns its pid.
    pub fn start_dockerd(&mut self) -> u32 {
        require_program("dockerd", "docker.io");
        require_program("docker", "docker.io");
        let dir = self.path().to_path_buf();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .unwrap();
        let child = Command::new("dockerd")
            .arg(format!("--containerd={}", self.containerd_sock().display()))
            .arg("--host")
            .arg(format!("unix://{}", self.docker_sock().display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver=vfs"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dockerd (installed by scripts/setup --test)");
        let pid = child.id();
        self.dockerd = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = self.dockerd.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
                panic!("dockerd exited ({st}) before answering: {log}");
            }
            if self.docker(&["version"]).status.success() {
                return pid;
            }
            assert!(Instant::now() < deadline, "dockerd did not answer on its socket");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops dockerd (SIGTERM, as systemd does) and waits for it.
    pub fn stop_dockerd(&mut self) {
        if let Some(mut c) = self.dockerd.take() {
            // SAFETY: kill on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + START_TIMEOUT;
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.wait();
        }
    }

    /// Runs the docker CLI against our dockerd.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.docker_sock().display()))
            .args(args)
            .output()
            .expect("running docker (installed by scripts/setup --test)")
    }

    /// Imports a one-binary busybox image built from /bin/busybox
    /// (busybox-static) as `image`.
    pub fn import_busybox(&self, image: &str) {
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.is_file(), "/bin/busybox is missing: install busybox-static");
        let root = self.path().join("image");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = self.path().join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("running tar");
        assert!(st.success(), "tar failed");
        let out = self.docker(&["import", tar.to_str().unwrap(), image]);
        assert!(out.status.success(), "docker import: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Kills the shims started for containers of this scene.
    fn kill_shims(&self) {
        let sock = self.containerd_sock();
        let sock = sock.to_string_lossy();
        let Ok(procs) = std::fs::read_dir("/proc") else { return };
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else { continue };
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("containerd-shim") && cmdline.contains(sock.as_ref()) {
                // SAFETY: kill on a pid we just read; a shim of our containerd.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Unmounts everything under the private directory, deepest first.
    fn unmount_all(&self) {
        let dir = self.path().to_string_lossy().into_owned();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(dir.as_str()))
            .collect();
        points.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in points {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: a valid C string; MNT_DETACH only detaches.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.stop_dockerd();
        self.kill_shims();
        drop(self.containerd.take());
        self.unmount_all();
    }
}

/// A running `dockersnoop watch`, its stdout going to a file.
pub struct Watch {
    child: Option<Child>,
    pub stdout: PathBuf,
}

impl Watch {
    /// Starts `watch` with `args` (which include `-w FILE`) and waits until
    /// the probes are attached (the file gets its headers right after).
    pub fn start(args: &[&str], written: &Path, stdout: &Path) -> Watch {
        let out = std::fs::File::create(stdout).unwrap();
        let child = dockersnoop()
            .arg("watch")
            .args(args)
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning dockersnoop watch");
        let mut w = Watch { child: Some(child), stdout: stdout.to_path_buf() };
        let deadline = Instant::now() + START_TIMEOUT;
        while std::fs::metadata(written).map_or(0, |m| m.len()) == 0 {
            if let Some(st) = w.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockersnoop watch exited ({st}) before attaching: {}", w.stop_stderr());
            }
            assert!(Instant::now() < deadline, "dockersnoop watch did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        w
    }

    /// What watch printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until watch has printed `n` lines (a hang guard only).
    pub fn wait_lines(&self, n: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        while self.output().lines().count() < n {
            assert!(
                Instant::now() < deadline,
                "watch printed only this, {n} lines expected:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// Ctrl-C; returns stdout and stderr, panics unless it exited 0.
    pub fn stop(mut self) -> (String, String) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let st = child.wait().unwrap();
        assert!(st.success(), "dockersnoop watch exited with {st}: {err}");
        (self.output(), err)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `dockersnoop decode ARGS`: stdout and stderr; panics unless it exited 0.
pub fn decode(args: &[&str]) -> (String, String) {
    let out = dockersnoop().arg("decode").args(args).output().expect("running dockersnoop decode");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dockersnoop decode {args:?} failed: {stderr}");
    (stdout, stderr)
}
