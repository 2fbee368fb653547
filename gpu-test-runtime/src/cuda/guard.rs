//! Calling a driver that may never answer, or may crash.
//!
//! [`guarded`] runs driver work on a thread of its own and waits for it at most a time limit: a
//! wedged GPU can block `cuInit` forever, and a test run must not hang with it. The work names
//! each call before making it ([`Calls::enter`]), so that a call past the limit is reported by
//! name, and so is a fatal signal inside it: while guarded work runs, a handler for SIGSEGV,
//! SIGBUS, SIGILL, SIGFPE and SIGABRT writes one line naming the call and the library (with
//! `write(2)` alone, which is async-signal-safe), then lets the signal take the process down.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::util::os::exit_now;

/// The signals a crashing driver raises.
const FATAL: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

/// The line the signal handler writes: a leaked `&'static [u8]`, replaced before each call.
static CRASH_LINE: AtomicPtr<&'static [u8]> = AtomicPtr::new(std::ptr::null_mut());

/// Serialises guarded work: the signal handler and its line are process-wide.
static GUARD: Mutex<()> = Mutex::new(());

/// The first call that did not return: once one has not, none is made again.
static HUNG: OnceLock<Hung> = OnceLock::new();

/// Numbers each guarded run, so that a worker left behind by an earlier one cannot replace the
/// crash line of the current one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The thread running the current guarded work; the crash line speaks only for it.
static WORKER: AtomicI32 = AtomicI32::new(0);

thread_local! {
    /// The calls of the guarded work running on this thread, if any.
    static WATCHED: RefCell<Option<Calls>> = const { RefCell::new(None) };
}

/// Records, when guarded work runs on this thread, that `call` is about to be made (every
/// checked driver call says so); elsewhere it costs a thread-local read.
pub(crate) fn entering(call: &'static str) {
    WATCHED.with(|watched| {
        if let Some(calls) = watched.borrow().as_ref() {
            let library = calls.library();
            calls.enter(call, &library);
        }
    });
}

/// The calls guarded work makes, as it makes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls {
    current: Arc<Mutex<Option<(&'static str, String)>>>,
    library: Arc<Mutex<String>>,
    generation: u64,
}

impl Calls {
    /// Names the library the next calls go to.
    pub(crate) fn set_library(&self, library: &str) {
        *self.library.lock().unwrap_or_else(|p| p.into_inner()) = library.to_string();
    }

    fn library(&self) -> String {
        self.library.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records that `call` of `library` is about to be made.
    pub(crate) fn enter(&self, call: &'static str, library: &str) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((call, library.to_string()));
        if self.generation != GENERATION.load(Ordering::SeqCst) {
            return;
        }
        CRASH_LINE.store(crash_line_for(call, library), Ordering::SeqCst);
    }

    /// The call being made, and its library, if any.
    fn current(&self) -> Option<(&'static str, String)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The crash line for `call` of `library`, made once per pair and kept for the process: the
/// signal handler may read it at any time, so it is never freed, and making one per call would
/// leak a line per driver call (a test waiting for free memory makes thousands).
fn crash_line_for(call: &'static str, library: &str) -> *mut &'static [u8] {
    // A pointer kept as an address, so that the list may be a static.
    static LINES: Mutex<Vec<(&'static str, String, usize)>> = Mutex::new(Vec::new());
    let mut lines = LINES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, _, line)) = lines.iter().find(|(c, l, _)| *c == call && l == library) {
        return *line as *mut &'static [u8];
    }
    let line = format!(
        "gpu-test: the CUDA driver crashed in {call} ({library}): check `nvidia-smi`, and the kernel log \
         for Xid errors (`sudo dmesg | grep -i xid`); the process is stopped by signal "
    );
    let line: &'static [u8] = Box::leak(line.into_bytes().into_boxed_slice());
    let pointer = Box::into_raw(Box::new(line));
    lines.push((call, library.to_string(), pointer as usize));
    pointer
}

/// A call that did not return within the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hung {
    /// The call, when one had been entered.
    pub(crate) call: Option<&'static str>,
    /// Its library.
    pub(crate) library: Option<String>,
    /// The limit it passed.
    pub(crate) limit: Duration,
}

/// Runs `work` on a thread of its own, with the crash line in place, and waits for it at most
/// `limit`. Past the limit the thread is left where it is, never joined: nothing may wait on a
/// driver that does not answer.
pub(crate) fn guarded<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce(&Calls) -> T + Send + 'static,
) -> Result<T, Hung> {
    let _serial = GUARD.lock().unwrap_or_else(|p| p.into_inner());
    // A driver that hung once is not called again: its call may still hold the driver's locks.
    if let Some(hung) = HUNG.get() {
        return Err(hung.clone());
    }
    let armed = Armed::new();
    let calls = armed.calls.clone();
    let (done, finished) = mpsc::channel();
    // Shared so that, when no thread can be started, the work can still be run here.
    let work = Arc::new(Mutex::new(Some(work)));
    let worker_work = work.clone();
    let worker_calls = calls.clone();
    let spawned = std::thread::Builder::new()
        .name("gpu-test-driver".to_string())
        .spawn(move || {
            mark_worker();
            WATCHED.with(|watched| *watched.borrow_mut() = Some(worker_calls.clone()));
            let work = worker_work.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(work) = work {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&worker_calls)));
                let _ = done.send(outcome);
            }
        });
    let result = match spawned {
        Ok(_) => finished.recv_timeout(limit).ok(),
        // Without a thread of its own (a process limit, say) the work runs here, without the
        // time limit, rather than being taken for a hang.
        Err(_) => {
            mark_worker();
            let work = work.lock().unwrap_or_else(|p| p.into_inner()).take();
            work.map(|work| Ok(work(&calls)))
        }
    };
    drop(armed);
    match result {
        Some(Ok(value)) => Ok(value),
        // A panic in the work is a bug of gpu-test's, not the driver's: it goes on as one.
        Some(Err(payload)) => std::panic::resume_unwind(payload),
        None => {
            let (call, library) = calls.current().unzip();
            let hung = Hung { call, library, limit };
            let _ = HUNG.set(hung.clone());
            Err(hung)
        }
    }
}

/// Runs `work` here, with the crash line in place for its calls but no time limit: for work
/// that does not call into a driver that may hang (loading the library), where a thread would
/// cost more than the work.
pub(crate) fn with_crash_line<T>(work: impl FnOnce(&Calls) -> T) -> T {
    let _serial = GUARD.lock().unwrap_or_else(|p| p.into_inner());
    let armed = Armed::new();
    mark_worker();
    work(&armed.calls)
}

/// The crash line's handlers, installed for one run of guarded work with a fresh [`Calls`], and
/// put back however the work ends, a panic included.
struct Armed {
    calls: Calls,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Armed {
    fn new() -> Armed {
        let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
        Armed {
            calls: Calls {
                generation,
                ..Calls::default()
            },
            previous: install_handlers(),
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        restore_handlers(&self.previous);
        WORKER.store(0, Ordering::SeqCst);
        CRASH_LINE.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

/// Makes the calling thread the one the crash line speaks for.
fn mark_worker() {
    // SAFETY: gettid has no arguments and cannot fail.
    WORKER.store(unsafe { libc::gettid() }, Ordering::SeqCst);
}

/// Ends the process with `code`: through the C library's `exit` normally, and past its exit
/// handlers when a driver call hung, since the driver's own handlers could wait forever on the
/// call that never returned.
pub(crate) fn exit(code: i32) -> ! {
    if driver_hung() {
        exit_now(code);
    }
    std::process::exit(code)
}

/// Records that a call into the driver made outside [`guarded`], under `limit` (a test's set-up,
/// on the test's own thread), did not return: later guarded calls are refused, as after a hang
/// of their own, since it may hold the driver's locks.
pub(crate) fn mark_hung(limit: Duration) {
    let _ = HUNG.set(Hung {
        call: None,
        library: None,
        limit,
    });
}

/// Whether a driver call did not return within its limit in this process.
pub(crate) fn driver_hung() -> bool {
    HUNG.get().is_some()
}

fn install_handlers() -> Vec<(libc::c_int, libc::sigaction)> {
    let mut previous = Vec::new();
    for signal in FATAL {
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler is an extern "C"
        // function that only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &action, &mut old) == 0 {
                previous.push((signal, old));
            }
        }
    }
    previous
}

fn restore_handlers(previous: &[(libc::c_int, libc::sigaction)]) {
    for (signal, old) in previous {
        // SAFETY: `old` is what sigaction returned for this signal.
        unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
    }
}

/// Writes the crash line and the signal, then raises the signal again with its default action
/// (SA_RESETHAND restored it), which ends the process as the crash would have.
extern "C" fn on_fatal_signal(signal: libc::c_int) {
    let line = CRASH_LINE.load(Ordering::SeqCst);
    // SAFETY: gettid is async-signal-safe. Another thread's crash is not the driver's to claim.
    let ours = unsafe { libc::gettid() } == WORKER.load(Ordering::SeqCst);
    if ours && !line.is_null() {
        // SAFETY: the pointer was made by Box::into_raw of a leaked slice and is never freed.
        let bytes: &[u8] = unsafe { *line };
        let mut buffer = [0u8; 10];
        let digits = decimal(signal.unsigned_abs(), &mut buffer);
        for part in [bytes, digits, signal_name(signal), b"\n"] {
            // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
            unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
        }
    }
    // SAFETY: raise is async-signal-safe; the disposition is the default again.
    unsafe { libc::raise(signal) };
}

fn signal_name(signal: libc::c_int) -> &'static [u8] {
    match signal {
        libc::SIGSEGV => b" (SIGSEGV)",
        libc::SIGBUS => b" (SIGBUS)",
        libc::SIGILL => b" (SIGILL)",
        libc::SIGFPE => b" (SIGFPE)",
        libc::SIGABRT => b" (SIGABRT)",
        _ => b"",
    }
}

/// The decimal digits of `value` in `buffer`, without allocating.
fn decimal(mut value: u32, buffer: &mut [u8; 10]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buffer[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_line_is_made_once_per_call_and_library() {
        let first = crash_line_for("cuMemGetInfo_v2", "libcuda.so.1");
        assert_eq!(crash_line_for("cuMemGetInfo_v2", "libcuda.so.1"), first);
        assert_ne!(crash_line_for("cuMemGetInfo_v2", "libcuda.so.580.65.06"), first);
        assert_ne!(crash_line_for("cuInit", "libcuda.so.1"), first);
        // SAFETY: the line lives for the process.
        let line = unsafe { *first };
        assert!(line.starts_with(b"gpu-test: the CUDA driver crashed in cuMemGetInfo_v2 (libcuda.so.1)"));
    }

    #[test]
    fn signals_are_written_without_allocating() {
        let mut buffer = [0u8; 10];
        assert_eq!(decimal(11, &mut buffer), b"11");
        assert_eq!(decimal(0, &mut buffer), b"0");
        assert_eq!(decimal(u32::MAX, &mut buffer), b"4294967295");
        assert_eq!(signal_name(libc::SIGSEGV), b" (SIGSEGV)");
    }

    #[test]
    fn work_past_the_limit_is_reported_by_its_call() {
        let hung = guarded(Duration::from_millis(20), |calls| {
            calls.enter("cuInit", "libcuda.so.1");
            loop {
                std::thread::park();
            }
        })
        .unwrap_err();
        assert_eq!(hung.call, Some("cuInit"));
        assert_eq!(hung.library.as_deref(), Some("libcuda.so.1"));
        // Once a call has not returned, no guarded work runs again in this process.
        let again = guarded(Duration::from_secs(60), |_| 7).unwrap_err();
        assert_eq!(again, hung);
    }
}
