//! Schemas extracted from the Go binaries of Debian's containerd and docker.io
//! packages (installed by `scripts/setup --test`), checked with prost-reflect
//! and with an independent reader, Python's protobuf package.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorSet;

use dockersnoop::schema;

const CONTAINERD: &str = "/usr/bin/containerd";
const DOCKERD: &str = "/usr/sbin/dockerd";
/// Debian's interpreter, which has python3-protobuf (not a pyenv one).
const PYTHON: &str = "/usr/bin/python3";

/// Every containerd service the decoder needs.
const CONTAINERD_SERVICES: &[&str] = &[
    "containerd.services.containers.v1.Containers",
    "containerd.services.content.v1.Content",
    "containerd.services.diff.v1.Diff",
    "containerd.services.events.v1.Events",
    "containerd.services.images.v1.Images",
    "containerd.services.introspection.v1.Introspection",
    "containerd.services.leases.v1.Leases",
    "containerd.services.namespaces.v1.Namespaces",
    "containerd.services.snapshots.v1.Snapshots",
    "containerd.services.tasks.v1.Tasks",
    "containerd.services.version.v1.Version",
    "runtime.v1.RuntimeService",
    "runtime.v1alpha2.RuntimeService",
];

fn require(path: &str) -> &Path {
    let p = Path::new(path);
    assert!(
        p.exists(),
        "{path} is missing: install the Debian packages with `scripts/setup --test` \
         (containerd, docker.io, python3-protobuf)"
    );
    p
}

fn dockersnoop(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(args)
        .output()
        .expect("run dockersnoop");
    assert!(
        out.status.success(),
        "dockersnoop {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Lists `service/method` of every file in a protoset with Python's protobuf,
/// whose DescriptorPool resolves every import and type as it goes.
fn python_methods(protoset: &Path) -> Vec<String> {
    require(PYTHON);
    let script = r#"
import sys
from google.protobuf import descriptor_pb2, descriptor_pool
fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(sys.argv[1], 'rb').read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
for f in fds.file:
    for s in pool.FindFileByName(f.name).services_by_name.values():
        for m in s.methods:
            print(f"{s.full_name}/{m.name} {m.input_type.full_name}")
"#;
    let out =
        Command::new(PYTHON).args(["-c", script]).arg(protoset).output().expect("run python3");
    assert!(
        out.status.success(),
        "python3 could not load {}: {} (is python3-protobuf installed? scripts/setup --test)",
        protoset.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn containerd_and_dockerd_yield_every_service() {
    let mut files = schema::extract_from_file(require(CONTAINERD)).unwrap();
    files.extend(schema::extract_from_file(require(DOCKERD)).unwrap());
    let (set, report) = schema::build_set(files).unwrap();

    let pool = DescriptorPool::from_file_descriptor_set(set.clone()).unwrap();
    for service in CONTAINERD_SERVICES {
        assert!(pool.get_service_by_name(service).is_some(), "{service} missing");
    }
    // The two CRI api.proto files are both kept, under names from their packages.
    let renamed: Vec<_> = report.renamed().collect();
    assert!(renamed.contains(&("api.proto", "runtime/v1/api.proto")), "{renamed:?}");
    assert!(renamed.contains(&("api.proto", "runtime/v1alpha2/api.proto")), "{renamed:?}");
    // Variants of the well-known types are merged into one file each.
    let anys = set.file.iter().filter(|f| f.name() == "google/protobuf/any.proto").count();
    assert_eq!(anys, 1);
    assert!(pool.get_message_by_name("containerd.events.TaskExit").is_some());
}

#[test]
fn extracted_protoset_loads_in_python_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runtime.protoset");
    let out_s = out.to_str().unwrap();
    dockersnoop(&[
        "schema",
        "extract",
        require(CONTAINERD).to_str().unwrap(),
        DOCKERD,
        "-o",
        out_s,
    ]);

    let methods = python_methods(&out);
    for service in CONTAINERD_SERVICES {
        let prefix = format!("{service}/");
        assert!(methods.iter().any(|m| m.starts_with(&prefix)), "python sees no {service}");
    }
    assert!(methods.contains(
        &"containerd.services.namespaces.v1.Namespaces/Get \
          containerd.services.namespaces.v1.GetNamespaceRequest"
            .to_string()
    ));

    let list = dockersnoop(&["schema", "list", out_s]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("containerd.services.tasks.v1.Tasks/Create"), "{text}");
    assert!(text.contains("stream containerd.services.events.v1.Envelope"), "{text}");
}

#[test]
fn list_reads_binaries_directly() {
    let list = dockersnoop(&["schema", "list", require(CONTAINERD).to_str().unwrap()]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("/containerd.services.tasks.v1.Tasks/Create "), "{text}");
    assert!(text.contains("/runtime.v1alpha2.RuntimeService/RunPodSandbox "), "{text}");
}

#[test]
fn extract_from_a_binary_without_descriptors_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.protoset");
    let res = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(["schema", "extract", "/bin/sh", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("/bin/sh: no protobuf descriptors found"), "{err}");
    assert!(!out.exists());
}

#[test]
fn builtin_loads_in_python() {
    let builtin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protos/containerd-1.6.protoset");
    let methods = python_methods(&builtin);
    for needed in [
        "containerd.services.tasks.v1.Tasks/Create",
        "containerd.task.v2.Task/Create",
        "runtime.v1.RuntimeService/RunPodSandbox",
        "runtime.v1alpha2.RuntimeService/RunPodSandbox",
    ] {
        assert!(methods.iter().any(|m| m.starts_with(needed)), "python sees no {needed}");
    }
}

/// protos/ must be what our extractor makes of the installed containerd 1.6
/// binaries (as scripts/gen-protos does); if this fails after a package
/// update changed the API, run scripts/gen-protos.
#[test]
fn builtin_is_what_the_extractor_makes_of_containerd() {
    let bins = [
        "/usr/bin/containerd",
        "/usr/bin/containerd-shim",
        "/usr/bin/containerd-shim-runc-v1",
        "/usr/bin/containerd-shim-runc-v2",
        "/usr/bin/ctr",
    ];
    let mut files = Vec::new();
    for b in bins {
        files.extend(schema::extract_from_file(require(b)).unwrap());
    }
    let (set, _) = schema::build_set(files).unwrap();
    let packages: Vec<String> = [
        "containerd.services",
        "containerd.events",
        "containerd.task.v2",
        "containerd.runc.v1",
        "io.containerd.cgroups.v1",
        "io.containerd.cgroups.v2",
        "runtime.v1",
        "runtime.v1alpha2",
        "google.rpc",
    ]
    .map(String::from)
    .to_vec();
    let fresh = schema::filter_packages(&set, &packages);
    let builtin = FileDescriptorSet::decode(schema::builtin_bytes()).unwrap();
    let names =
        |s: &FileDescriptorSet| s.file.iter().map(|f| f.name().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(&fresh), names(&builtin), "run scripts/gen-protos");
    assert!(fresh == builtin, "protos/ differs from a fresh extraction: run scripts/gen-protos");
}

#[test]
fn list_reads_the_schema_embedded_in_a_capture() {
    let set = FileDescriptorSet::decode(schema::builtin_bytes()).unwrap();
    let payload = schema::encode_embedded(&set).unwrap();
    // Section header (little-endian), then our custom block.
    let mut pcapng = Vec::new();
    let mut block = |t: u32, body: &[u8]| {
        let pad = (4 - body.len() % 4) % 4;
        let total = (12 + body.len() + pad) as u32;
        pcapng.extend(t.to_le_bytes());
        pcapng.extend(total.to_le_bytes());
        pcapng.extend(body);
        pcapng.extend(vec![0; pad]);
        pcapng.extend(total.to_le_bytes());
    };
    let shb = [&0x1a2b3c4du32.to_le_bytes()[..], &[1, 0, 0, 0], &(-1i64).to_le_bytes()].concat();
    block(0x0a0d0d0a, &shb);
    block(
        schema::CUSTOM_BLOCK_COPYABLE,
        &[&dockersnoop::chunk::PEN.to_le_bytes()[..], &payload].concat(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pcapng");
    std::fs::write(&path, pcapng).unwrap();
    let list = dockersnoop(&["schema", "list", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("/containerd.services.tasks.v1.Tasks/Create "), "{text}");
}
