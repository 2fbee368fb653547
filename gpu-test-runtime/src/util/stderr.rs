//! The one way gpu-test writes to stderr.

use std::io::Write;

/// Writes straight to the process's stderr, past libtest's output capture, in one write so that
/// lines from parallel tests do not interleave.
pub(crate) fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}
