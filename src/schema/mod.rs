//! Protobuf schemas: where the message types used to decode gRPC come from.
//!
//! Go programs carry the descriptors of every `.proto` file they were built
//! with ([`extract`]); [`merge`] turns those of several binaries into one
//! `FileDescriptorSet`. Decoding then looks types up in a [`pool`] layered
//! from, in order: what the user gave (`--protoset`, `--proto`), the set the
//! recorder embedded in the capture, and the [`builtin`] set made from
//! Debian's containerd 1.6 (see `protos/README.md`). The first source that
//! knows a type wins.

pub mod capture;
pub mod cmd;
pub mod extract;
pub mod merge;

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Context;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

pub use extract::extract_from_binary;
pub use merge::{build_set, filter_packages, MergeNote, MergeReport};

use crate::cli::SchemaArgs;

/// The built-in descriptor set (regenerate with `scripts/gen-protos`).
static BUILTIN_BYTES: &[u8] = include_bytes!("../../protos/containerd-1.6.protoset");

/// First bytes of the payload of our schema custom block (after the PEN).
///
/// ```text
/// "DSS1" | zstd frame holding a FileDescriptorSet
/// ```
/// Written in a pcapng custom block of type 0x00000BAD (copyable: the schema
/// stays true whatever an editor does to the packets).
pub const SCHEMA_MAGIC: &[u8; 4] = b"DSS1";

/// pcapng block type of a copyable custom block.
pub const CUSTOM_BLOCK_COPYABLE: u32 = 0x0000_0BAD;

/// Largest FileDescriptorSet we inflate from a capture.
const MAX_EMBEDDED: u64 = 256 << 20;

/// Why schemas could not be read or built.
///
/// Causes are part of each message (no `source()` chain), so that anyhow's
/// `{:#}` does not print them twice.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "no protobuf descriptors found (neither gzip-compressed nor raw FileDescriptorProtos)"
    )]
    NoDescriptors,
    #[error("no descriptor could be loaded: every file referred to types defined nowhere")]
    NothingLoadable,
    #[error("{}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("{}: {error}", path.display())]
    In { path: PathBuf, error: Box<SchemaError> },
    #[error("not a FileDescriptorSet: {0}")]
    BadSet(prost::DecodeError),
    #[error("{file}: {error}")]
    Load { file: String, error: prost_reflect::DescriptorError },
    #[error("schema block does not start with the DSS1 magic")]
    BadMagic,
    #[error("schema block: {0}")]
    BadBlock(io::Error),
    #[error("{} at offset {offset}: {what}", path.display())]
    Capture { path: PathBuf, offset: u64, what: String },
}

impl SchemaError {
    fn in_file(self, path: &Path) -> SchemaError {
        SchemaError::In { path: path.to_owned(), error: Box::new(self) }
    }
}

/// Reads a binary and extracts its descriptors; errors name the file.
pub fn extract_from_file(path: &Path) -> Result<Vec<FileDescriptorProto>, SchemaError> {
    let bytes = fs::read(path).map_err(|error| SchemaError::Read { path: path.into(), error })?;
    extract_from_binary(&bytes).map_err(|e| e.in_file(path))
}

/// Identity of an executable file, so that a binary run by many processes
/// is read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BinaryId {
    pub dev: u64,
    pub ino: u64,
}

/// The identity of the executable process `pid` runs (`/proc/PID/exe`).
pub fn exe_id(pid: u32) -> Result<BinaryId, SchemaError> {
    use std::os::unix::fs::MetadataExt;
    let path = PathBuf::from(format!("/proc/{pid}/exe"));
    let meta = fs::metadata(&path).map_err(|error| SchemaError::Read { path, error })?;
    Ok(BinaryId { dev: meta.dev(), ino: meta.ino() })
}

/// For the recorder: the descriptors of the executable of process `pid`,
/// read through `/proc/PID/exe` (which works across mount namespaces and
/// after the file was replaced on disk). Meant for a background thread: it
/// reads the whole binary (tens of MB for containerd and dockerd).
pub fn extract_from_pid(pid: u32) -> Result<Vec<FileDescriptorProto>, SchemaError> {
    extract_from_file(Path::new(&format!("/proc/{pid}/exe")))
}

/// Collects descriptors from processes' binaries, once per distinct binary,
/// and merges them into the set the recorder embeds.
#[derive(Debug, Default)]
pub struct Collector {
    seen: HashSet<BinaryId>,
    files: Vec<FileDescriptorProto>,
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Whether `id` is new; marks it seen. Call before reading the binary.
    pub fn first_sight(&mut self, id: BinaryId) -> bool {
        self.seen.insert(id)
    }

    /// Adds the descriptors of one binary.
    pub fn add(&mut self, files: Vec<FileDescriptorProto>) {
        self.files.extend(files);
    }

    /// Whether any descriptor was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The merged set of everything added so far.
    pub fn set(&self) -> Result<(FileDescriptorSet, MergeReport), SchemaError> {
        build_set(self.files.clone())
    }
}

/// The payload of our schema custom block (after the PEN): [`SCHEMA_MAGIC`]
/// and the zstd-compressed set.
pub fn encode_embedded(set: &FileDescriptorSet) -> io::Result<Vec<u8>> {
    let mut out = SCHEMA_MAGIC.to_vec();
    out.extend(zstd::bulk::compress(&set.encode_to_vec(), 9)?);
    Ok(out)
}

/// The FileDescriptorSet bytes in a payload written by [`encode_embedded`].
pub fn decode_embedded(payload: &[u8]) -> Result<Vec<u8>, SchemaError> {
    let packed = payload.strip_prefix(SCHEMA_MAGIC).ok_or(SchemaError::BadMagic)?;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(packed)
        .map_err(SchemaError::BadBlock)?
        // The block's padding follows the frame.
        .single_frame()
        .take(MAX_EMBEDDED)
        .read_to_end(&mut out)
        .map_err(SchemaError::BadBlock)?;
    Ok(out)
}

/// The built-in set, decoded once.
static BUILTIN_SET: LazyLock<FileDescriptorSet> = LazyLock::new(|| {
    FileDescriptorSet::decode(BUILTIN_BYTES)
        .expect("protos/containerd-1.6.protoset is not a FileDescriptorSet")
});

static BUILTIN_POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::from_file_descriptor_set(BUILTIN_SET.clone())
        .expect("protos/containerd-1.6.protoset does not load")
});

/// The built-in default: containerd 1.6's services, events and shim task
/// API, the CRI runtime API v1 and v1alpha2, google.rpc.Status.
pub fn builtin() -> DescriptorPool {
    BUILTIN_POOL.clone()
}

/// The raw bytes of the built-in set (for `schema list` and tests).
pub fn builtin_bytes() -> &'static [u8] {
    BUILTIN_BYTES
}

/// The method a gRPC path (`/containerd.services.namespaces.v1.Namespaces/Get`)
/// names, if `pool` knows it.
pub fn find_method(pool: &DescriptorPool, path: &str) -> Option<prost_reflect::MethodDescriptor> {
    let (service, method) = path.strip_prefix('/').unwrap_or(path).rsplit_once('/')?;
    pool.get_service_by_name(service)?.methods().find(|m| m.name() == method)
}

/// How strictly [`layer`] treats files that do not load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Given by the user: a file that does not load is an error.
    User,
    /// Embedded in a capture: warn and go on.
    Embedded,
    /// Ours: tested, so only logged.
    Builtin,
}

/// The pool for decoding: the user's sources first (`--protoset` files, then
/// `--proto` files compiled with protox), then the sets embedded in the
/// capture (each the bytes of a FileDescriptorSet), then the built-in set.
/// The first source that knows a type wins.
pub fn pool(args: &SchemaArgs, embedded: &[Vec<u8>]) -> anyhow::Result<DescriptorPool> {
    Ok(pool_from(&UserSchemas::load(args)?, embedded)?)
}

/// The user's schema sources (`--protoset`, `--proto`), read and checked
/// once, so that their errors name them before any capture is read.
#[derive(Clone, Debug, Default)]
pub struct UserSchemas(Vec<FileDescriptorProto>);

impl UserSchemas {
    /// Reads and compiles the sources `args` names; an error names the
    /// schema file (and line:column for a .proto source).
    pub fn load(args: &SchemaArgs) -> anyhow::Result<UserSchemas> {
        let user = UserSchemas(user_files(args)?);
        // Layered alone, the user's files meet the same checks as later.
        if !user.0.is_empty() {
            layer(&mut DescriptorPool::new(), user.0.clone(), Source::User)?;
        }
        Ok(user)
    }
}

/// [`pool`] from sources already loaded.
pub fn pool_from(user: &UserSchemas, embedded: &[Vec<u8>]) -> Result<DescriptorPool, SchemaError> {
    let mut pool = DescriptorPool::new();
    let user = user.0.clone();
    if !user.is_empty() {
        layer(&mut pool, user, Source::User)?;
    }
    for (i, bytes) in embedded.iter().enumerate() {
        match FileDescriptorSet::decode(bytes.as_slice()) {
            Ok(set) => {
                layer(&mut pool, set.file, Source::Embedded)?;
            }
            Err(e) => log::warn!("schema embedded in the capture (set {i}) ignored: {e}"),
        }
    }
    layer(&mut pool, BUILTIN_SET.file.clone(), Source::Builtin)?;
    Ok(pool)
}

/// The files of `--protoset` and `--proto` arguments, in that order.
fn user_files(args: &SchemaArgs) -> anyhow::Result<Vec<FileDescriptorProto>> {
    let mut files = Vec::new();
    for path in &args.protosets {
        let bytes = fs::read(path).with_context(|| format!("{}", path.display()))?;
        let set = FileDescriptorSet::decode(bytes.as_slice())
            .map_err(|e| SchemaError::BadSet(e).in_file(path))?;
        log::debug!("{}: {} files", path.display(), set.file.len());
        files.extend(set.file);
    }
    if !args.protos.is_empty() {
        // Without -I, each file's own directory is searched, so that
        // `--proto some/dir/x.proto` works as it does with protoc -I some/dir.
        let mut includes = args.import_paths.clone();
        if includes.is_empty() {
            for p in &args.protos {
                let dir =
                    p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !includes.iter().any(|i| i == dir) {
                    includes.push(dir.to_owned());
                }
            }
        }
        let mut compiler = protox::Compiler::new(&includes).context("--import-path")?;
        compiler.include_imports(true);
        for p in &args.protos {
            compiler
                .open_file(p)
                .map_err(|e| anyhow::anyhow!("{}", protox_error(p, &includes, &e)))?;
        }
        files.extend(compiler.file_descriptor_set().file);
    }
    Ok(files)
}

/// A protox error as one line: `FILE:LINE:COLUMN: what` when it points
/// into a source, else `FILE: what`, FILE being the file at fault (maybe an
/// import of `given`).
fn protox_error(given: &Path, includes: &[std::path::PathBuf], e: &protox::Error) -> String {
    use miette::Diagnostic;
    let where_ = match e.file() {
        Some(f) if !given.ends_with(f) => f.to_owned(),
        _ => given.display().to_string(),
    };
    let span = e.labels().and_then(|mut labels| labels.next()).map(|l| l.offset());
    let source = e.file().and_then(|f| resolve_source(given, includes, f));
    let source = source.and_then(|p| fs::read_to_string(p).ok());
    match (span, source) {
        (Some(offset), Some(text)) => {
            let (line, column) = line_column(&text, offset);
            format!("{where_}:{line}:{column}: {e}")
        }
        _ => format!("{where_}: {e}"),
    }
}

/// The path of `name`, as protox names files: `given` if it ends so, else
/// the first include directory holding it, as protox searched them.
fn resolve_source(
    given: &Path,
    includes: &[std::path::PathBuf],
    name: &str,
) -> Option<std::path::PathBuf> {
    if given.ends_with(name) {
        return Some(given.to_owned());
    }
    includes.iter().map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Adds `files` to `pool` below what it already holds: a file whose name is
/// known is skipped, and top-level definitions whose full name is known are
/// removed from the file, which instead imports (publicly, so its importers
/// see them too) the file that defined them first.
fn layer(
    pool: &mut DescriptorPool,
    files: Vec<FileDescriptorProto>,
    source: Source,
) -> Result<usize, SchemaError> {
    let mut added = 0;
    for mut file in deps_first(files) {
        if pool.get_file_by_name(file.name()).is_some() {
            log::debug!("{source:?} schema: {} already known, skipped", file.name());
            continue;
        }
        let shadowed = shadow_known(pool, &mut file);
        if !shadowed.is_empty() {
            log::debug!(
                "{source:?} schema: {}: {} definitions already known from {}",
                file.name(),
                shadowed.len(),
                shadowed.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        let name = file.name().to_owned();
        match pool.add_file_descriptor_proto(file) {
            Ok(()) => added += 1,
            Err(source_err) => match source {
                Source::User => return Err(SchemaError::Load { file: name, error: source_err }),
                Source::Embedded => {
                    log::warn!("schema embedded in the capture: {name}: {source_err}")
                }
                Source::Builtin => log::debug!("built-in schema: {name}: {source_err}"),
            },
        }
    }
    Ok(added)
}

/// Removes from `file` the top-level definitions `pool` already has, and
/// makes it import publicly the files that have them. Returns those files.
fn shadow_known(pool: &DescriptorPool, file: &mut FileDescriptorProto) -> HashSet<String> {
    let package = file.package().to_owned();
    let full = |name: &str| {
        if package.is_empty() {
            name.to_owned()
        } else {
            format!("{package}.{name}")
        }
    };
    let mut from: HashSet<String> = HashSet::new();
    let mut known = |name: &str| -> bool {
        let n = full(name);
        let owner = pool
            .get_message_by_name(&n)
            .map(|m| m.parent_file())
            .or_else(|| pool.get_enum_by_name(&n).map(|e| e.parent_file()))
            .or_else(|| pool.get_service_by_name(&n).map(|s| s.parent_file()))
            .or_else(|| pool.get_extension_by_name(&n).map(|e| e.parent_file()));
        match owner {
            Some(f) => {
                from.insert(f.name().to_owned());
                true
            }
            None => false,
        }
    };
    file.message_type.retain(|m| !known(m.name()));
    file.enum_type.retain(|e| !known(e.name()));
    file.service.retain(|s| !known(s.name()));
    file.extension.retain(|e| !known(e.name()));
    for f in &from {
        if !file.dependency.contains(f) {
            file.dependency.push(f.clone());
        }
        let i = file.dependency.iter().position(|d| d == f).unwrap_or_default() as i32;
        if !file.public_dependency.contains(&i) {
            file.public_dependency.push(i);
        }
    }
    from
}

/// `files` with each after the files of the list it imports (first of a
/// name wins; the order is otherwise kept).
fn deps_first(files: Vec<FileDescriptorProto>) -> Vec<FileDescriptorProto> {
    let mut seen = HashSet::new();
    let files: Vec<FileDescriptorProto> =
        files.into_iter().filter(|f| seen.insert(f.name().to_owned())).collect();
    let index: std::collections::HashMap<&str, usize> =
        files.iter().enumerate().map(|(i, f)| (f.name(), i)).collect();
    let mut state = vec![0u8; files.len()];
    let mut order = Vec::with_capacity(files.len());
    fn visit(
        i: usize,
        files: &[FileDescriptorProto],
        index: &std::collections::HashMap<&str, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for d in &files[i].dependency {
            if let Some(&j) = index.get(d.as_str()) {
                visit(j, files, index, state, order);
            }
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..files.len() {
        visit(i, &files, &index, &mut state, &mut order);
    }
    let mut slots: Vec<Option<FileDescriptorProto>> = files.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::extract::tests::sample;
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "ab\ncd\né}";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (2, 2));
        // Columns count characters: é is two bytes.
        assert_eq!(line_column(text, text.len() - 1), (3, 2));
        assert_eq!(line_column(text, 999), (3, 3));
    }

    #[test]
    fn builtin_resolves_containerd_methods_and_events() {
        let pool = builtin();
        let get = find_method(&pool, "/containerd.services.namespaces.v1.Namespaces/Get").unwrap();
        assert_eq!(
            get.input().full_name(),
            "containerd.services.namespaces.v1.GetNamespaceRequest"
        );
        assert!(pool.get_message_by_name("containerd.events.TaskExit").is_some());
        assert!(pool.get_message_by_name("google.rpc.Status").is_some());
        assert!(pool.get_service_by_name("containerd.task.v2.Task").is_some());
        assert!(pool.get_service_by_name("runtime.v1.RuntimeService").is_some());
        assert!(pool.get_service_by_name("runtime.v1alpha2.RuntimeService").is_some());
    }

    #[test]
    fn pool_without_user_sources_is_the_builtin() {
        let pool = pool(&SchemaArgs::default(), &[]).unwrap();
        assert_eq!(pool.files().len(), builtin().files().len());
    }

    #[test]
    fn user_definitions_win_over_builtin() {
        // A user file redefining containerd's GetNamespaceRequest with other fields.
        let mut user =
            sample("mine.proto", "containerd.services.namespaces.v1", "GetNamespaceRequest");
        user.service.clear();
        user.message_type[0].field[0].name = Some("mine".into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.protoset");
        fs::write(&path, FileDescriptorSet { file: vec![user] }.encode_to_vec()).unwrap();
        let args = SchemaArgs { protosets: vec![path], ..Default::default() };
        let pool = pool(&args, &[]).unwrap();
        let msg = pool
            .get_message_by_name("containerd.services.namespaces.v1.GetNamespaceRequest")
            .unwrap();
        assert_eq!(msg.parent_file().name(), "mine.proto");
        assert!(msg.get_field_by_name("mine").is_some());
        // The rest of the built-in file is still there and uses the user's type.
        let get = pool
            .get_service_by_name("containerd.services.namespaces.v1.Namespaces")
            .and_then(|s| s.methods().find(|m| m.name() == "Get"))
            .unwrap();
        assert_eq!(get.input().parent_file().name(), "mine.proto");
    }

    #[test]
    fn embedded_set_comes_before_builtin() {
        let mine = sample("x.proto", "containerd.events", "TaskExit");
        let payload = encode_embedded(&FileDescriptorSet { file: vec![mine] }).unwrap();
        let bytes = decode_embedded(&payload).unwrap();
        let pool = pool(&SchemaArgs::default(), &[bytes, b"\xff garbage".to_vec()]).unwrap();
        let exit = pool.get_message_by_name("containerd.events.TaskExit").unwrap();
        assert_eq!(exit.parent_file().name(), "x.proto");
        assert!(pool.get_message_by_name("containerd.events.TaskOOM").is_some());
    }

    #[test]
    fn collector_reads_each_binary_once() {
        // This test binary embeds the built-in set (include_bytes!), whose
        // files are raw FileDescriptorProtos: it describes itself.
        let pid = std::process::id();
        let mut collector = Collector::new();
        let id = exe_id(pid).unwrap();
        assert!(collector.first_sight(id));
        assert!(!collector.first_sight(exe_id(pid).unwrap()));
        collector.add(extract_from_pid(pid).unwrap());
        let (set, _) = collector.set().unwrap();
        assert!(set.file.iter().any(|f| f.package() == "containerd.services.tasks.v1"));
        let err = exe_id(u32::MAX).unwrap_err().to_string();
        assert!(err.starts_with(&format!("/proc/{}/exe: ", u32::MAX)), "{err}");
    }

    #[test]
    fn bad_embedded_payloads_are_errors() {
        assert!(matches!(decode_embedded(b"XXXX"), Err(SchemaError::BadMagic)));
        assert!(matches!(decode_embedded(b"DSS1not zstd"), Err(SchemaError::BadBlock(_))));
    }

    #[test]
    fn bad_user_protoset_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.protoset");
        fs::write(&path, b"\x0a\xff\xff\xff").unwrap();
        let args = SchemaArgs { protosets: vec![path.clone()], ..Default::default() };
        let err = pool(&args, &[]).unwrap_err().to_string();
        assert!(err.contains("bad.protoset") && err.contains("not a FileDescriptorSet"), "{err}");
    }

    #[test]
    fn proto_sources_compile_with_protox() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("greet.proto"),
            "syntax = \"proto3\";\npackage greet;\nmessage Hello { string name = 1; }\n\
             service Greeter { rpc Greet(Hello) returns (Hello); }\n",
        )
        .unwrap();
        let args =
            SchemaArgs { protos: vec![dir.path().join("greet.proto")], ..Default::default() };
        let pool = pool(&args, &[]).unwrap();
        assert!(pool.get_service_by_name("greet.Greeter").is_some());
        assert!(pool.get_service_by_name("containerd.services.tasks.v1.Tasks").is_some());
    }
}
