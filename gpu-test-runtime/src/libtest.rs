//! Running a GPU test under the default libtest harness, which has no run-time skip: an unmet
//! test passes and says so on stderr (which libtest does not capture), or fails in strict mode.
//!
//! libtest has no hook at the end of a run, so the report, the skip summary and the GitHub
//! annotations are written by an `atexit` handler from the entries the tests recorded.

use std::ffi::c_int;
use std::io::Write;
use std::sync::{Mutex, Once, OnceLock};

use crate::body::{self, BodyFailure};
use crate::ci;
use crate::private::TestDef;
use crate::probe::probe;
use crate::report::{self, Entry, Outcome, SuiteInfo, suite_name};
use crate::settings::{Settings, settings};

/// Runs one test: decides from the probe, then runs the body, skips, or fails.
#[track_caller]
pub fn run_under_libtest(def: &'static TestDef) {
    if let Err(message) = def.start() {
        panic!("{message}");
    }
    let settings = match session() {
        Ok(settings) => settings,
        Err(message) => panic!("{message}"),
    };
    let probe = probe();
    let name = def.name();
    let ordinals = match def.requirements.check(probe) {
        Ok(ordinals) => ordinals,
        Err(reason) if settings.strict => {
            record(Entry::unmet(&suite_name(), &name, Outcome::Failed, &reason));
            panic!("gpu-test: {name} cannot run, and GPU_TEST_STRICT=1 makes that a failure: {reason}")
        }
        Err(reason) => {
            record(Entry::unmet(&suite_name(), &name, Outcome::Skipped, &reason));
            write_stderr(&format!("gpu-test: skipped {name}: {reason}\n"));
            return;
        }
    };
    let execution = body::execute(def, probe, &ordinals, settings);
    let name_for_timings = name.clone();
    record(Entry {
        suite: suite_name(),
        name: name.clone(),
        outcome: if execution.outcome.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        reason: execution.outcome.as_ref().err().map(BodyFailure::describe),
        kind: None,
        hint: None,
        duration: execution.duration,
        devices: execution.devices,
        timings: execution
            .timings
            .iter()
            .map(|t| t.to_json(&name_for_timings))
            .collect(),
    });
    match execution.outcome {
        Ok(()) => {}
        // The panic hook has already printed the message; keep the original payload.
        Err(BodyFailure::Panicked(payload)) => std::panic::resume_unwind(payload),
        Err(BodyFailure::Setup(message)) => panic!("gpu-test: {name}: {message}"),
        Err(failure) => panic!("gpu-test: {name} {}", failure.describe()),
    }
}

/// The settings, checked once per process: invalid variables or an unwritable report make every
/// GPU test fail with the same message.
fn session() -> Result<&'static Settings, &'static str> {
    static SESSION: OnceLock<Result<&'static Settings, String>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let settings = settings().map_err(|errors| {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                format!("gpu-test: {}", errors.join("; "))
            })?;
            if let Some(target) = &settings.report {
                report::check_writable(target).map_err(|error| format!("gpu-test: {error}"))?;
            }
            warn_unknown_variables(settings);
            Ok(settings)
        })
        .as_ref()
        .map(|settings| *settings)
        .map_err(String::as_str)
}

static ENTRIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn record(entry: Entry) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: `finish` is a plain extern "C" function that never unwinds.
        unsafe { atexit(finish) };
    });
    ENTRIES.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> c_int;
}

/// Runs as the process exits: summary, annotations and report for the tests that ran.
extern "C" fn finish() {
    let _ = std::panic::catch_unwind(|| {
        let entries = std::mem::take(&mut *ENTRIES.lock().unwrap_or_else(|p| p.into_inner()));
        let Ok(settings) = session() else {
            return;
        };
        ci::print_skip_summary(&entries);
        ci::annotate(settings, &entries);
        if let Some(target) = &settings.report
            && let Err(error) =
                report::record(settings, target, SuiteInfo::new(&suite_name(), probe()), entries)
        {
            write_stderr(&format!(
                "gpu-test: could not write the report GPU_TEST_REPORT={}: {error}\n",
                target.path.display()
            ));
        }
    });
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
