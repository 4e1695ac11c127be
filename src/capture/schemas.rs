//! Embedding the protobuf schemas of the processes seen while recording.
//!
//! For every process that sends on a captured socket (and the peer it
//! talks to), the ring-buffer consumer opens `/proc/PID/exe` once — an open
//! and a readlink, nothing more — and hands the open file to a worker
//! thread. The worker reads each distinct binary once (keyed by device and
//! inode), extracts its descriptors and merges them with those found so far
//! ([`Collector`]). Whenever the merged set grows, the worker hands back a
//! new schema block, which the consumer writes at its next wake-up: the file
//! then holds a series of blocks, each the whole merged set so far, and the
//! decoder layers them all (the later ones only add).
//!
//! When recording stops, [`SchemaEmbedder::finish`] waits for the binaries
//! still queued, so that a short recording still carries its schemas; a
//! second Ctrl-C skips the wait, and the file then holds what was done.
//!
//! A binary that cannot be opened or holds no descriptors is logged once
//! and never stops the capture.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::bpf::Event;
use crate::pcapng::writer::{CaptureWriter, WriteError};
use crate::schema::{encode_embedded, extract_from_binary, BinaryId, Collector, SchemaError};

/// Longest [`SchemaEmbedder::finish`] waits for the worker, whatever happens.
const FINISH_LIMIT: Duration = Duration::from_secs(120);

/// A binary to read: the open `/proc/PID/exe`, which stays readable after
/// the process exits.
struct Job {
    pid: u32,
    path: PathBuf,
    exe: File,
}

/// The consumer's end: which pids were looked at, the queue to the worker,
/// and the blocks it hands back.
pub struct SchemaEmbedder {
    seen_pids: HashSet<u32>,
    jobs: Option<Sender<Job>>,
    blocks: Receiver<Vec<u8>>,
    /// Jobs queued or being worked on.
    pending: Arc<AtomicUsize>,
    worker: Option<JoinHandle<()>>,
    written: usize,
}

impl SchemaEmbedder {
    /// Starts the worker thread.
    pub fn start() -> std::io::Result<SchemaEmbedder> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (block_tx, blocks) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = Arc::clone(&pending);
        let worker = std::thread::Builder::new()
            .name("schemas".into())
            .spawn(move || work(job_rx, block_tx, left))?;
        Ok(SchemaEmbedder {
            seen_pids: HashSet::new(),
            jobs: Some(jobs),
            blocks,
            pending,
            worker: Some(worker),
            written: 0,
        })
    }

    /// Notes the sender and the peer of a ring record (cheap after the
    /// first sight of a pid).
    pub fn saw(&mut self, ev: &Event<'_>) {
        self.saw_pid(ev.pid);
        self.saw_pid(ev.peer_pid);
    }

    fn saw_pid(&mut self, pid: u32) {
        if pid == 0 || !self.seen_pids.insert(pid) {
            return;
        }
        let link = PathBuf::from(format!("/proc/{pid}/exe"));
        let exe = match File::open(&link) {
            Ok(f) => f,
            Err(e) => {
                // Gone already, or a kernel thread.
                log::debug!("schemas: pid {pid}: {}: {e}", link.display());
                return;
            }
        };
        let path = std::fs::read_link(&link).unwrap_or(link);
        let Some(jobs) = &self.jobs else { return };
        self.pending.fetch_add(1, Ordering::SeqCst);
        if jobs.send(Job { pid, path, exe }).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            log::debug!("schemas: worker gone, pid {pid} not read");
        }
    }

    /// Writes the newest merged set the worker finished, if any.
    pub fn write_ready(&mut self, writer: &mut CaptureWriter) -> Result<(), WriteError> {
        // Only the last matters: each block holds everything found so far.
        if let Some(block) = self.blocks.try_iter().last() {
            log::debug!("schemas: writing a schema block of {} bytes", block.len());
            writer.write_schema_block(block)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Stops taking binaries, waits for the queued ones (until `skip` says
    /// otherwise, e.g. a second Ctrl-C) and writes the final set.
    pub fn finish(
        &mut self,
        writer: &mut CaptureWriter,
        skip: impl Fn() -> bool,
    ) -> Result<(), WriteError> {
        self.jobs = None;
        let left = self.pending.load(Ordering::SeqCst);
        if left > 0 {
            log::info!("reading protobuf schemas of {left} more binaries (Ctrl-C again to skip)");
        }
        let deadline = Instant::now() + FINISH_LIMIT;
        let mut skipped = false;
        while self.worker.as_ref().is_some_and(|w| !w.is_finished()) {
            if skip() || Instant::now() >= deadline {
                skipped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if skipped {
            // The thread is left to die with the process.
            log::warn!(
                "schema extraction cut short: {} binaries not embedded",
                self.pending.load(Ordering::SeqCst)
            );
        } else if let Some(w) = self.worker.take() {
            if w.join().is_err() {
                log::warn!("schema extraction failed; the capture is kept without it");
            }
        }
        self.write_ready(writer)?;
        log::debug!("schemas: {} schema blocks written", self.written);
        Ok(())
    }
}

/// The worker: reads each distinct binary once and hands back the merged
/// set whenever it grows.
fn work(jobs: Receiver<Job>, blocks: Sender<Vec<u8>>, pending: Arc<AtomicUsize>) {
    lower_priority();
    let mut collector = Collector::new();
    let mut last_set: Vec<u8> = Vec::new();
    for job in jobs {
        if let Some(block) = one(&mut collector, &mut last_set, job) {
            // The consumer may be gone (an error stopped the recording).
            let _ = blocks.send(block);
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Handles one job; returns a new block when the merged set grew.
fn one(collector: &mut Collector, last_set: &mut Vec<u8>, job: Job) -> Option<Vec<u8>> {
    use prost::Message;
    let Job { pid, path, mut exe } = job;
    let name = path.display();
    let id = match exe.metadata() {
        Ok(m) => BinaryId { dev: m.dev(), ino: m.ino() },
        Err(e) => {
            log::debug!("schemas: {name} (pid {pid}): {e}");
            return None;
        }
    };
    if !collector.first_sight(id) {
        return None;
    }
    let mut bytes = Vec::new();
    if let Err(e) = exe.read_to_end(&mut bytes) {
        log::info!("schemas: cannot read {name} (pid {pid}): {e}");
        return None;
    }
    let files = match extract_from_binary(&bytes) {
        Ok(f) => f,
        Err(SchemaError::NoDescriptors) => {
            log::debug!("schemas: {name} (pid {pid}) holds no protobuf descriptors");
            return None;
        }
        Err(e) => {
            log::info!("schemas: {name} (pid {pid}): {e}");
            return None;
        }
    };
    drop(bytes);
    log::debug!("schemas: {name} (pid {pid}): {} descriptors", files.len());
    collector.add(files);
    let (set, report) = match collector.set() {
        Ok(s) => s,
        Err(e) => {
            log::info!("schemas: merging the descriptors of {name}: {e}");
            return None;
        }
    };
    log::debug!(
        "schemas: merged set after {name}: {} duplicates dropped, {} renames or merges",
        report.duplicates,
        report.notes.len()
    );
    for note in &report.notes {
        log::trace!("schemas: {note}");
    }
    let encoded = set.encode_to_vec();
    if encoded == *last_set {
        return None;
    }
    *last_set = encoded;
    match encode_embedded(&set) {
        Ok(block) => {
            log::info!("schemas: embedding {} files (after {name})", set.file.len());
            Some(block)
        }
        Err(e) => {
            log::info!("schemas: compressing the merged set: {e}");
            None
        }
    }
}

/// Extraction competes with the ring consumer for 2 CPUs at worst: let the
/// consumer win.
fn lower_priority() {
    // SAFETY: setpriority on the calling thread (tid from gettid) has no
    // memory effects; failure only leaves the priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapng::writer::{OutputSpec, SectionInfo};
    use crate::schema::extract::tests::{gzip, sample};
    use prost_types::FileDescriptorSet;

    /// A fake "binary": a gzip-compressed FileDescriptorProto between junk
    /// bytes, as gogo-built Go programs hold them.
    fn binary_with(dir: &std::path::Path, name: &str) -> PathBuf {
        use prost::Message;
        let fd = sample(&format!("{name}.proto"), name, "Msg");
        let mut bytes = vec![0u8; 64];
        bytes.extend(gzip(&fd.encode_to_vec()));
        bytes.extend([0u8; 64]);
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn job(path: &std::path::Path) -> Job {
        Job { pid: 1, path: path.into(), exe: File::open(path).unwrap() }
    }

    #[test]
    fn grows_once_per_binary_and_skips_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = binary_with(dir.path(), "alpha");
        let b = binary_with(dir.path(), "beta");
        let none = dir.path().join("none");
        std::fs::write(&none, b"no descriptors here").unwrap();
        let (mut c, mut last) = (Collector::new(), Vec::new());
        let first = one(&mut c, &mut last, job(&a)).expect("a block for the first binary");
        assert!(one(&mut c, &mut last, job(&a)).is_none(), "same binary read twice");
        assert!(one(&mut c, &mut last, job(&none)).is_none());
        let second = one(&mut c, &mut last, job(&b)).expect("a grown set");
        let files = |block: &[u8]| {
            use prost::Message;
            let set = crate::schema::decode_embedded(block).unwrap();
            let mut names: Vec<String> = FileDescriptorSet::decode(set.as_slice())
                .unwrap()
                .file
                .into_iter()
                .map(|f| f.name().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(files(&first), ["alpha.proto"]);
        assert_eq!(files(&second), ["alpha.proto", "beta.proto"]);
    }

    #[test]
    fn embedder_writes_the_merged_set_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let a = binary_with(dir.path(), "alpha");
        let out = dir.path().join("o.pcapng");
        let spec = OutputSpec { path: Some(out.clone()), rotate_bytes: None, max_files: None };
        let mut w = CaptureWriter::create(spec, SectionInfo::default(), 0).unwrap();
        let mut e = SchemaEmbedder::start().unwrap();
        // No such process: logged and ignored. The fake binary goes in as
        // a job, as if a process ran it.
        e.saw_pid(u32::MAX);
        assert_eq!(e.pending.load(Ordering::SeqCst), 0);
        e.pending.fetch_add(1, Ordering::SeqCst);
        e.jobs.as_ref().unwrap().send(job(&a)).unwrap();
        e.finish(&mut w, || false).unwrap();
        w.finish(1, None).unwrap();
        let sets = crate::schema::capture::embedded_sets(&out).unwrap();
        assert_eq!(sets.len(), 1, "one block for one binary");
        use prost::Message;
        let set = FileDescriptorSet::decode(sets[0].as_slice()).unwrap();
        assert_eq!(set.file[0].name(), "alpha.proto");
    }
}
