//! Compiles bpf/unixsnoop.bpf.c into a libbpf-rs skeleton in OUT_DIR, so the
//! recorder needs no compiler at run time.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/unixsnoop.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("unixsnoop.skel.rs");
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-Wall", "-Wno-unused-function", "-O2"])
        .build_and_generate(&out)
        .unwrap_or_else(|e| panic!("building the eBPF skeleton from {SRC} failed: {e:#}"));
    for f in ["bpf/unixsnoop.bpf.c", "bpf/unixsnoop.h", "bpf/kernel.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
