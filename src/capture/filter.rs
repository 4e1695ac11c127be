//! Which Unix sockets to record: `--socket` patterns.
//!
//! A pattern is an exact path, a glob, an abstract name (`@name`) or `any`.
//! The kernel side can only compare prefixes, so each pattern becomes a
//! kernel prefix (exact when the pattern has no wildcard) and, for globs, a
//! regex that user space applies to what arrives.
//!
//! Paths are compared as the kernel stores them, which is the spelling the
//! server passed to bind(2). Since that may go through a symlink
//! (`/var/run/docker.sock`, with `/var/run` → `/run`), each pattern is sent
//! to the kernel both as typed and with its directories resolved.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use regex::Regex;

/// containerd's gRPC and ttrpc sockets, the shims' sockets and docker's API.
pub const DEFAULT_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock.ttrpc",
    "/run/containerd/s/*",
    "/run/docker.sock",
];

/// Longest path the kernel keeps (sizeof sun_path).
pub const PATH_MAX: usize = 108;

/// Why a `--socket` pattern was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("socket pattern {0:?}: not an absolute path, @name or any")]
    NotAbsolute(String),
    #[error("socket pattern {0:?}: longer than the {PATH_MAX} bytes a Unix socket path can have")]
    TooLong(String),
    #[error("socket pattern {0:?}: invalid glob: {1}")]
    BadGlob(String, String),
    #[error("socket pattern \"@\": an abstract name needs a name after the @")]
    EmptyAbstract,
    #[error("too many socket patterns (at most {0} after resolving symlinks)")]
    TooMany(usize),
}

/// A prefix the kernel compares paths against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPattern {
    /// Raw bytes as in sun_path (abstract names start with NUL).
    pub prefix: Vec<u8>,
    /// Whole path must equal `prefix`.
    pub exact: bool,
}

/// The parsed `--socket` set.
#[derive(Debug)]
pub struct SocketFilter {
    any: bool,
    kernel: Vec<KernelPattern>,
    /// Globs, anchored, applied in user space to the kernel's spelling.
    globs: Vec<Regex>,
    /// Display names per kernel spelling, with directories resolved.
    resolved: HashMap<Vec<u8>, String>,
}

impl SocketFilter {
    /// Parses the patterns; an empty list means [`DEFAULT_SOCKETS`].
    pub fn parse(args: &[String], max_kernel: usize) -> Result<SocketFilter, FilterError> {
        let defaults: Vec<String>;
        let args = if args.is_empty() {
            defaults = DEFAULT_SOCKETS.iter().map(|s| s.to_string()).collect();
            &defaults
        } else {
            args
        };
        let mut f = SocketFilter {
            any: false,
            kernel: Vec::new(),
            globs: Vec::new(),
            resolved: HashMap::new(),
        };
        for a in args {
            f.add(a)?;
        }
        if f.kernel.len() > max_kernel {
            return Err(FilterError::TooMany(max_kernel));
        }
        Ok(f)
    }

    fn add(&mut self, pat: &str) -> Result<(), FilterError> {
        if pat == "any" {
            self.any = true;
            return Ok(());
        }
        if let Some(name) = pat.strip_prefix('@') {
            if name.is_empty() {
                return Err(FilterError::EmptyAbstract);
            }
            let mut raw = vec![0u8];
            raw.extend_from_slice(name.as_bytes());
            return self.add_spelling(pat, &raw);
        }
        if !pat.starts_with('/') {
            return Err(FilterError::NotAbsolute(pat.into()));
        }
        self.add_spelling(pat, pat.as_bytes())?;
        for alt in spellings(Path::new(pat)) {
            self.add_spelling(pat, alt.as_os_str().as_encoded_bytes())?;
        }
        Ok(())
    }

    fn add_spelling(&mut self, pat: &str, raw: &[u8]) -> Result<(), FilterError> {
        if raw.len() > PATH_MAX {
            return Err(FilterError::TooLong(pat.into()));
        }
        let wild = raw.iter().position(|b| matches!(b, b'*' | b'?' | b'['));
        let kp = KernelPattern {
            prefix: raw[..wild.unwrap_or(raw.len())].to_vec(),
            exact: wild.is_none(),
        };
        if wild.is_some() {
            let text = String::from_utf8_lossy(raw).replace('\0', "@");
            let re =
                glob_regex(&text).map_err(|e| FilterError::BadGlob(pat.into(), e.to_string()))?;
            self.globs.push(re);
        }
        if !self.kernel.contains(&kp) {
            self.kernel.push(kp);
        }
        Ok(())
    }

    /// True when every socket matches.
    pub fn any(&self) -> bool {
        self.any
    }

    /// The prefixes for the kernel side.
    pub fn kernel_patterns(&self) -> &[KernelPattern] {
        &self.kernel
    }

    /// The final check on a path that passed the kernel's prefix test.
    pub fn matches(&self, raw: &[u8]) -> bool {
        if self.any {
            return true;
        }
        if self.kernel.iter().any(|k| k.exact && k.prefix == raw) {
            return true;
        }
        let text = display_raw(raw);
        self.globs.iter().any(|g| g.is_match(&text))
    }

    /// How a kernel path is shown: `@name` for abstract names, filesystem
    /// paths with their directories resolved (`/var/run/x` → `/run/x`).
    pub fn display(&mut self, raw: &[u8]) -> String {
        if let Some(s) = self.resolved.get(raw) {
            return s.clone();
        }
        let mut s = display_raw(raw);
        if s.starts_with('/') {
            if let Some(r) = resolve_dirs(Path::new(&s)) {
                s = r.display().to_string();
            }
        }
        self.resolved.insert(raw.to_vec(), s.clone());
        s
    }
}

/// Says at the start which sockets are not there (yet): a warning for each
/// exact `--socket` path that does not exist or is not a socket, or, for the
/// default set, one line of which exist. Recording goes on either way: a
/// socket made later is still recorded.
pub fn report_missing(args: &[String]) {
    let exists = |p: &str| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
    };
    let exact = |p: &&str| p.starts_with('/') && !p.contains(['*', '?', '[']);
    if args.is_empty() {
        let (there, missing): (Vec<&str>, Vec<&str>) =
            DEFAULT_SOCKETS.iter().copied().filter(exact).partition(|p| exists(p));
        log::info!(
            "default sockets: present: {}; missing: {}",
            if there.is_empty() { "none".to_string() } else { there.join(", ") },
            if missing.is_empty() { "none".to_string() } else { missing.join(", ") },
        );
        return;
    }
    for p in args.iter().map(String::as_str).filter(exact) {
        if !exists(p) {
            log::warn!("--socket {p}: no such socket (yet); recording it if it appears");
        }
    }
}

/// `@name` for abstract names (NUL bytes shown as `@`), lossy UTF-8 otherwise.
pub fn display_raw(raw: &[u8]) -> String {
    match raw.split_first() {
        None => String::new(),
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest).replace('\0', "@")),
        Some(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// Other spellings of `path` that a server may have bound: with its
/// directories resolved, and through `/var/run` when that is a link to `/run`.
fn spellings(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(r) = resolve_dirs(path).filter(|r| r != path) {
        out.push(r);
    }
    let var_run_is_run = std::fs::canonicalize("/var/run").is_ok_and(|p| p == Path::new("/run"));
    if var_run_is_run {
        let known: Vec<PathBuf> = std::iter::once(path.to_path_buf()).chain(out.clone()).collect();
        for p in known {
            if let Ok(rest) = p.strip_prefix("/run") {
                let alt = Path::new("/var/run").join(rest);
                if alt != path && !out.contains(&alt) {
                    out.push(alt);
                }
            }
        }
    }
    out
}

/// Resolves the symlinks in the directories of `path`, up to the first glob
/// component; the rest is kept as written. None when nothing resolves.
fn resolve_dirs(path: &Path) -> Option<PathBuf> {
    let comps: Vec<Component<'_>> = path.components().collect();
    let literal = comps
        .iter()
        .position(|c| c.as_os_str().as_encoded_bytes().iter().any(|b| b"*?[".contains(b)))
        .unwrap_or(comps.len());
    // Resolve the longest literal ancestor that exists.
    for cut in (1..=literal).rev() {
        let head: PathBuf = comps[..cut].iter().collect();
        // The socket itself is not a symlink to follow: resolve its directory.
        let target = if cut == comps.len() { head.parent()?.to_path_buf() } else { head.clone() };
        if let Ok(mut r) = std::fs::canonicalize(&target) {
            if cut == comps.len() {
                r.push(comps[cut - 1]);
            }
            for c in &comps[cut..] {
                r.push(c);
            }
            return Some(r);
        }
    }
    None
}

/// Turns a shell glob (`*`, `?`, `[...]`, `[!...]`) into an anchored regex;
/// wildcards do not cross `/`.
fn glob_regex(glob: &str) -> Result<Regex, regex::Error> {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(p: &[&str]) -> SocketFilter {
        let v: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        SocketFilter::parse(&v, 64).unwrap()
    }

    #[test]
    fn exact_paths_match_only_themselves() {
        let f = filter(&["/tmp/nonexistent-dir-x/c.sock"]);
        assert!(f.matches(b"/tmp/nonexistent-dir-x/c.sock"));
        // A prefix of a longer name is not a match.
        assert!(!f.matches(b"/tmp/nonexistent-dir-x/c.sock.ttrpc"));
        assert_eq!(
            f.kernel_patterns()[0],
            KernelPattern { prefix: b"/tmp/nonexistent-dir-x/c.sock".to_vec(), exact: true }
        );
    }

    #[test]
    fn globs_go_to_the_kernel_as_prefixes() {
        let f = filter(&["/nonexistent-root/s/*"]);
        assert_eq!(
            f.kernel_patterns(),
            &[KernelPattern { prefix: b"/nonexistent-root/s/".to_vec(), exact: false }]
        );
        assert!(f.matches(b"/nonexistent-root/s/abc123"));
        assert!(!f.matches(b"/nonexistent-root/s/a/b"));
        let f = filter(&["/x/[!a]?.sock"]);
        assert!(f.matches(b"/x/bc.sock"));
        assert!(!f.matches(b"/x/ac.sock"));
    }

    #[test]
    fn abstract_names() {
        let f = filter(&["@dockersnoop-test"]);
        assert_eq!(f.kernel_patterns()[0].prefix, b"\0dockersnoop-test");
        assert!(f.matches(b"\0dockersnoop-test"));
        assert_eq!(display_raw(b"\0a\0b"), "@a@b");
    }

    #[test]
    fn symlinked_directories_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let pat = link.join("d.sock").display().to_string();
        let mut f = filter(&[&pat]);
        let real_sock = std::fs::canonicalize(&real).unwrap().join("d.sock");
        let real_raw = real_sock.display().to_string();
        assert!(f.matches(real_raw.as_bytes()), "resolved spelling");
        assert!(f.matches(pat.as_bytes()), "spelling as typed");
        assert_eq!(f.display(pat.as_bytes()), real_raw);
    }

    #[test]
    fn defaults_and_errors() {
        let f = SocketFilter::parse(&[], 64).unwrap();
        assert!(f.matches(b"/run/containerd/containerd.sock"));
        assert!(f.matches(b"/run/containerd/s/0123abcd"));
        assert!(!f.matches(b"/run/user/1000/bus"));
        assert!(filter(&["any"]).matches(b"/anything"));
        let bad = SocketFilter::parse(&["relative.sock".into()], 64).unwrap_err();
        assert_eq!(bad, FilterError::NotAbsolute("relative.sock".into()));
        let long = format!("/{}", "x".repeat(200));
        assert!(matches!(SocketFilter::parse(&[long], 64), Err(FilterError::TooLong(_))));
        let empty = SocketFilter::parse(&["@".into()], 64).unwrap_err();
        assert_eq!(empty, FilterError::EmptyAbstract);
    }
}
