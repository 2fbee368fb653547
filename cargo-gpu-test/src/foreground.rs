//! Running the test runner in the foreground, as the C library's `system()` runs a command.
//!
//! While the runner runs, an interrupt from the terminal (Ctrl-C, Ctrl-\\), which reaches the
//! runner as well, is left to the runner: nextest then stops its tests and prints its summary,
//! and `cargo gpu-test run` outlives it to list the skips and to return the runner's status,
//! rather than dying first and giving the prompt back under nextest's output. A termination sent
//! to `cargo gpu-test` alone (`kill`, a CI job's timeout, a closed terminal) is passed on to the
//! runner, which is not left behind (nextest stops its tests; cargo test passes no signal on to
//! its test binary). A signal this process was started ignoring (`nohup`, a background job of a
//! script) stays ignored, and the runner starts with the dispositions this process had.
//!
//! Once the skips are listed, [`finish`] ends this process by the termination it got, or by the
//! Ctrl-C that ended the runner, as a caller of `system()` does: a shell loop around
//! `cargo gpu-test run` then stops at Ctrl-C, and whoever sent the termination sees it done.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

/// The runner's process id while it runs, for [`pass_on`]; 0 before it starts and after it ends.
static RUNNER: AtomicI32 = AtomicI32::new(0);

/// A termination that came before the runner's process id was known, to pass on once it is.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// The signal to end by in [`finish`]: the termination this process got while the runner ran,
/// else the Ctrl-C (`SIGINT`) that ended the runner; 0 if none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Signals the terminal sends the whole foreground process group: the runner gets them itself.
const LEFT_TO_RUNNER: [libc::c_int; 2] = [libc::SIGINT, libc::SIGQUIT];

/// Signals meant for this process, which the runner must get too.
const PASSED_ON: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGHUP];

extern "C" fn pass_on(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
    let runner = RUNNER.load(Ordering::SeqCst);
    if runner > 0 {
        // SAFETY: kill is async-signal-safe; `runner` is our child, not yet reaped: `run` sets
        // it back to 0 before it reaps the child, so the id cannot be another process's.
        unsafe { libc::kill(runner, signal) };
    } else {
        PENDING.store(signal, Ordering::SeqCst);
    }
}

/// The disposition of `signal` now, or `None` where it cannot be read.
fn disposition(signal: libc::c_int) -> Option<libc::sigaction> {
    // SAFETY: a zeroed sigaction is a valid value for the kernel to fill in.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `current`.
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
    (read == 0).then_some(current)
}

/// Sets `signal` to `handler` (`SIG_IGN` or a handler), restarting interrupted system calls.
fn set(signal: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction with an empty mask and a valid handler is a valid action.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// Waits until the child `pid` has ended, leaving it to be reaped: until then its id cannot be
/// given to another process.
fn wait_without_reaping(pid: u32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid value for the kernel to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our child; WNOWAIT leaves it unreaped.
        let waited = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if waited == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Runs `command` to its end in the foreground, as the module says, and returns its status.
pub(crate) fn run(command: &mut Command) -> io::Result<ExitStatus> {
    let before: Vec<(libc::c_int, libc::sigaction)> = LEFT_TO_RUNNER
        .iter()
        .chain(&PASSED_ON)
        .filter_map(|&signal| disposition(signal).map(|action| (signal, action)))
        .collect();
    let ignored = |signal: libc::c_int| {
        before
            .iter()
            .any(|(s, action)| *s == signal && action.sa_sigaction == libc::SIG_IGN)
    };
    for signal in LEFT_TO_RUNNER {
        set(signal, libc::SIG_IGN);
    }
    for signal in PASSED_ON.into_iter().filter(|&s| !ignored(s)) {
        set(
            signal,
            pass_on as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    let restore = before.clone();
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls may be
    // made: sigaction is one, and `restore` was made before the fork. A handler would not
    // survive the exec anyway; what this restores is what was ignored or not.
    unsafe {
        command.pre_exec(move || {
            for (signal, action) in &restore {
                libc::sigaction(*signal, action, std::ptr::null_mut());
            }
            Ok(())
        });
    }
    let status = command.spawn().and_then(|mut child| {
        // A child id always fits: pid_t is an i32.
        RUNNER.store(child.id() as i32, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            // SAFETY: the child is running or a zombie: its id is not reused before the wait.
            unsafe { libc::kill(child.id() as i32, pending) };
        }
        wait_without_reaping(child.id());
        RUNNER.store(0, Ordering::SeqCst);
        child.wait()
    });
    for (signal, action) in &before {
        // SAFETY: each action was read from the kernel above.
        unsafe { libc::sigaction(*signal, action, std::ptr::null_mut()) };
    }
    let interrupt = status
        .as_ref()
        .ok()
        .and_then(std::os::unix::process::ExitStatusExt::signal)
        .filter(|signal| *signal == libc::SIGINT && !ignored(*signal));
    if let Some(interrupt) = interrupt {
        // A termination received comes first.
        let _ = RECEIVED.compare_exchange(0, interrupt, Ordering::SeqCst, Ordering::SeqCst);
    }
    status
}

/// Ends this process by the termination it got while the runner ran, else by the Ctrl-C that
/// ended the runner, if either; returns otherwise. Called once everything is said. (A runner
/// ended by Ctrl-\\ gives status 131 instead: raising `SIGQUIT` would dump this process's core.)
pub(crate) fn finish() {
    let signal = RECEIVED.load(Ordering::SeqCst);
    if signal == 0 {
        return;
    }
    set(signal, libc::SIG_DFL);
    // SAFETY: raise has no preconditions; with the default disposition it ends the process.
    unsafe { libc::raise(signal) };
}
