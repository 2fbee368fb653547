//! The operating-system calls std does not offer, as safe functions.
//!
//! This is the runtime's one place with `unsafe` outside `cuda/`: each call is a plain libc
//! function with no pointer that outlives it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The real user id of this process.
pub(crate) fn user_id() -> u32 {
    // SAFETY: getuid takes no arguments and cannot fail.
    unsafe { libc::getuid() }
}

/// This process's real group id: its user's primary group.
pub(crate) fn group_id() -> u32 {
    // SAFETY: getgid takes no arguments and cannot fail.
    unsafe { libc::getgid() }
}

/// `access(path, R_OK | W_OK)`: whether this process may open `path` for reading and writing,
/// asked without opening it (opening a GPU device file can wake the GPU and take seconds).
pub(crate) fn may_read_and_write(path: &Path) -> bool {
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string; access only reads it.
    unsafe { libc::access(path.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
}

/// Exchanges the files at two paths in one step (`renameat2` with `RENAME_EXCHANGE`: Linux 3.15
/// and later, and not every file system has it), neither path followed through a symbolic link.
pub(crate) fn exchange_files(a: &Path, b: &Path) -> std::io::Result<()> {
    let c_path = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))
    };
    let (a, b) = (c_path(a)?, c_path(b)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call, which only reads them.
    let result = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Registers `callback` to run when the process exits normally (`atexit`); `false` if the C
/// library could not register it.
pub(crate) fn at_exit(callback: extern "C" fn()) -> bool {
    // SAFETY: `callback` is a plain extern "C" function; the caller's contract (it never unwinds)
    // is part of its type's use here: every callback gpu-test registers catches panics itself.
    unsafe { libc::atexit(callback) == 0 }
}

/// Ends the process now with `code`, without running further exit handlers: the one way to set
/// the exit status from inside an `atexit` handler (calling `exit` there is undefined behaviour).
/// Standard output is flushed first (std keeps no buffer for standard error, and flushing it
/// would take its lock, which a thread left running may hold).
pub(crate) fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process; it takes no pointers.
    unsafe { libc::_exit(code) }
}

/// Writes what of `bytes` one `write` to file descriptor 2 takes, without std's lock on stderr.
pub(crate) fn write_to_stderr_descriptor(bytes: &[u8]) -> std::io::Result<usize> {
    // SAFETY: the pointer and length are those of `bytes`; a closed descriptor is an error.
    let written = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    usize::try_from(written).map_err(|_| std::io::Error::last_os_error())
}

/// Sends SIGKILL to the process group `group` (a child started in a group of its own).
pub(crate) fn kill_group(group: u32) {
    if let Ok(group) = libc::pid_t::try_from(group) {
        // SAFETY: kill takes no pointers; a negative id names the group.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// Whether the child process `pid` has ended, without reaping it: until it is reaped, its id
/// (its process group's too, for a child that leads one) names no other process or group.
pub(crate) fn child_has_ended(pid: u32) -> std::io::Result<bool> {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: all-zero bytes are a valid siginfo_t.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer; WNOWAIT leaves the child for `Child::wait` to reap.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if result == 0 {
            // SAFETY: waitid filled it in; with WNOHANG and nothing ended, si_pid stays 0.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Waits up to `limit_ms` for process `pid` (any process, not only a child) to end: `true` when
/// it did, or was already gone; the error where the kernel cannot tell (no `pidfd_open`).
#[cfg(test)]
pub(crate) fn wait_for_end_of(pid: u32, limit_ms: i32) -> std::io::Result<bool> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let opened = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let Ok(pidfd) = i32::try_from(opened) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidData));
    };
    if pidfd < 0 {
        let error = std::io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ESRCH) => Ok(true),
            _ => Err(error),
        };
    }
    let mut poll = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, limit_ms) };
    // SAFETY: the descriptor is this function's own.
    unsafe { libc::close(pidfd) };
    Ok(ready == 1)
}
