//! Helpers of the decode tests: synthetic captures (capture.rs, shared with
//! the benchmark generator) and running the real binary.
#![allow(dead_code)]

mod capture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)]
pub use capture::*;

/// A temporary directory holding test files.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// What one run of the binary printed.
pub struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Every stdout line parsed as JSON; fails the test on a line that is not.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `dockersnoop ARGS` with `env` set.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dockersnoop"));
    cmd.args(args).env_remove("COLUMNS").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o: Output = cmd.output().expect("run dockersnoop");
    Out {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(o.stderr).expect("UTF-8 stderr"),
    }
}

/// Runs `dockersnoop ARGS` with `input` on its standard input.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Out {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dockersnoop"))
        .args(args)
        .env_remove("COLUMNS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dockersnoop");
    let mut stdin = child.stdin.take().expect("stdin of the child");
    let input = input.to_vec();
    // A thread writes, so that a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || {
        // The child may stop reading early (on an error): not our failure.
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().expect("wait for dockersnoop");
    writer.join().expect("stdin writer");
    Out {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(o.stderr).expect("UTF-8 stderr"),
    }
}

/// `dockersnoop decode --format json ARGS...`, which must succeed.
pub fn decode_json(args: &[&str]) -> (Vec<serde_json::Value>, Out) {
    let mut a = vec!["decode", "--format", "json"];
    a.extend_from_slice(args);
    let out = run(&a, &[]);
    assert_eq!(out.status, 0, "dockersnoop {a:?} failed: {}", out.stderr);
    (out.json(), out)
}

/// The rows of one type, e.g. `rows(&json, "REQ")`.
pub fn rows<'a>(json: &'a [serde_json::Value], ty: &str) -> Vec<&'a serde_json::Value> {
    json.iter().filter(|j| j["type"] == ty).collect()
}

/// `TYPE:stream` for each row, the order of the output.
pub fn kinds(json: &[serde_json::Value]) -> Vec<String> {
    json.iter().map(|j| format!("{}:{}", j["type"].as_str().unwrap_or("?"), j["stream"])).collect()
}
