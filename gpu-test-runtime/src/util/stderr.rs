//! The one way gpu-test writes to stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether gpu-test writes past std's lock on stderr (see [`write_past_the_lock`]).
static PAST_THE_LOCK: AtomicBool = AtomicBool::new(false);

/// From now on, gpu-test writes to file descriptor 2 itself, not through std's lock on stderr:
/// a test's thread left running past its limit may hold that lock for good (a body that locked
/// stderr for lines of its own, then got stuck in the driver), and waiting for it would hang the
/// process that gave up on that thread. stderr has no buffer in std, so nothing is reordered.
pub(crate) fn write_past_the_lock() {
    PAST_THE_LOCK.store(true, Ordering::SeqCst);
}

/// Whether gpu-test writes past std's lock on stderr now (see [`write_past_the_lock`]).
pub(crate) fn is_past_the_lock() -> bool {
    PAST_THE_LOCK.load(Ordering::SeqCst)
}

/// Runs `write` with stderr: std's, locked, or file descriptor 2 itself once
/// [`write_past_the_lock`] was called.
pub(crate) fn with_stderr<R>(write: impl FnOnce(&mut dyn Write) -> R) -> R {
    if is_past_the_lock() {
        return write(&mut Descriptor2);
    }
    write(&mut std::io::stderr().lock())
}

/// Writes straight to the process's stderr, past libtest's output capture, in one write so that
/// lines from parallel tests do not interleave.
pub(crate) fn write_stderr(text: &str) {
    with_stderr(|stderr| {
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    });
}

/// File descriptor 2, written without a lock or a buffer.
struct Descriptor2;

impl Write for Descriptor2 {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        crate::util::os::write_to_stderr_descriptor(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
