//! Making sure tracefs is there: the syscall tracepoints are attached by the
//! ids it lists, and a fresh machine may not have it mounted.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// Where tracefs lives on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where it lives through debugfs on older setups.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Why tracefs is not usable.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and mounting it at {TRACEFS} failed ({0}); \
         run `mount -t tracefs tracefs {TRACEFS}` as root"
    )]
    Mount(io::Error),
    #[error("{0}/events/syscalls/sys_enter_write is missing: this kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)")]
    NoSyscallEvents(String),
}

/// Returns the tracefs directory, mounting it at [`TRACEFS`] when neither it
/// nor the debugfs copy is there.
pub fn ensure() -> Result<&'static str, TracefsError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return check_syscalls(dir);
        }
    }
    mount_tracefs().map_err(TracefsError::Mount)?;
    log::info!("mounted tracefs at {TRACEFS}");
    check_syscalls(TRACEFS)
}

fn check_syscalls(dir: &'static str) -> Result<&'static str, TracefsError> {
    if Path::new(dir).join("events/syscalls/sys_enter_write").is_dir() {
        Ok(dir)
    } else {
        Err(TracefsError::NoSyscallEvents(dir.into()))
    }
}

fn mount_tracefs() -> io::Result<()> {
    let src = CString::new("tracefs").expect("no NUL");
    let target = CString::new(TRACEFS).expect("no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; a NULL data argument is allowed for tracefs.
    let rc =
        unsafe { libc::mount(src.as_ptr(), target.as_ptr(), src.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
