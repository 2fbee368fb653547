//! Running a GPU test under the default libtest harness, which has no run-time skip: an unmet
//! test passes and says so on stderr (which libtest does not capture), or fails in strict mode.

use std::io::Write;
use std::sync::{Arc, Once};

use crate::body::{self, BodyFailure};
use crate::gpu::Gpu;
use crate::private::TestDef;
use crate::probe::probe;
use crate::settings::{Settings, settings};

/// Runs one test: decides from the probe, then runs the body, skips, or fails.
#[track_caller]
pub fn run_under_libtest(def: &'static TestDef) {
    if let Err(message) = def.start() {
        panic!("{message}");
    }
    let settings = match settings() {
        Ok(settings) => settings,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("gpu-test: {}", errors.join("; "));
        }
    };
    warn_unknown_variables(settings);
    let probe = probe();
    let name = def.name();
    let ordinals = match def.requirements.check(probe) {
        Ok(ordinals) => ordinals,
        Err(reason) if settings.strict => {
            panic!("gpu-test: {name} cannot run, and GPU_TEST_STRICT=1 makes that a failure: {reason}")
        }
        Err(reason) => {
            write_stderr(&format!("gpu-test: skipped {name}: {reason}\n"));
            return;
        }
    };
    let needed = def.requirements.device_count() as usize;
    let gpu = match Gpu::open(probe, &ordinals[..needed]) {
        Ok(gpu) => Arc::new(gpu),
        Err(message) => panic!("gpu-test: {name}: {message}"),
    };
    match body::run(def, gpu) {
        Ok(()) => {}
        // The panic hook has already printed the message; keep the original payload.
        Err(BodyFailure::Panicked(payload)) => std::panic::resume_unwind(payload),
        Err(failure) => panic!("gpu-test: {name} {}", failure.describe()),
    }
}

/// Writes straight to the process's stderr, past libtest's output capture, in one write so that
/// lines from parallel tests do not interleave.
pub(crate) fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

pub(crate) fn warn_unknown_variables(settings: &Settings) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for unknown in &settings.unknown {
            write_stderr(&format!("gpu-test: warning: {unknown}\n"));
        }
    });
}
