//! Running a GPU test under the default libtest harness, which has no run-time skip: an unmet
//! test passes and says so on stderr (which libtest does not capture), or fails in strict mode.
//!
//! libtest has no hook at the end of a run, so the report, the skip summary and the GitHub
//! annotations are written by an `atexit` handler from the entries the tests recorded.

use std::ffi::c_int;
use std::io::Write;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use crate::body::{self, BodyFailure};
use crate::outcomes::Outcomes;
use crate::private::TestDef;
use crate::probe::probe;
use crate::report::{self, Cause, Entry, Outcome, suite_name};
use crate::settings::{Settings, settings};
use crate::skip::SkipReason;

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
    let ordinals = match probe.decide(&def.requirements) {
        Ok(ordinals) => ordinals,
        Err(reason) if settings.strict => {
            let name = def.name();
            record(settings, |o| {
                o.ran(Entry::unmet(&suite_name(), &name, Outcome::Failed, &reason))
            });
            panic!("gpu-test: {name} cannot run, and GPU_TEST_STRICT=1 makes that a failure: {reason}")
        }
        Err(reason) => {
            skipped(settings, def, &reason);
            return;
        }
    };
    let name = def.name();
    let execution = body::execute(def, probe, &ordinals, settings);
    let name_for_timings = name.clone();
    let entry = Entry {
        suite: suite_name(),
        name: name.clone(),
        outcome: if execution.outcome.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        cause: execution
            .outcome
            .as_ref()
            .err()
            .map_or(Cause::None, |f| Cause::Failure(f.describe())),
        duration: execution.duration,
        devices: execution.devices,
        timings: execution
            .timings
            .iter()
            .map(|t| t.to_json(&name_for_timings))
            .collect(),
    };
    record(settings, |o| o.ran(entry));
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

/// What this process recorded: the skip lines not yet written, and the outcomes. One lock for
/// both, since a skip updates both.
static STATE: Mutex<State> = Mutex::new(State {
    lines: None,
    outcomes: None,
});

struct State {
    /// The `gpu-test: skipped ...` lines, written in batches: one write per skipped test would be
    /// most of what a skip costs. A batch goes out when it reaches 32 KiB, 50 ms after it started
    /// (a thread started with the batch sees to that, however long the next test runs), and at
    /// exit.
    lines: Option<Batch>,
    outcomes: Option<Outcomes>,
}

const BATCH_AGE: Duration = Duration::from_millis(50);
const BATCH_SIZE: usize = 32 * 1024;

struct Batch {
    text: String,
    /// The last reason written, and `: <reason>; hint: <hint>\n` for it: consecutive tests
    /// usually share their reason.
    reason: Option<(Arc<SkipReason>, String)>,
}

fn state() -> std::sync::MutexGuard<'static, State> {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: `finish` is a plain extern "C" function that never unwinds.
        unsafe { atexit(finish) };
    });
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    fn outcomes(&mut self, settings: &Settings) -> &mut Outcomes {
        self.outcomes
            .get_or_insert_with(|| Outcomes::new(settings.report.is_some()))
    }

    /// Appends `gpu-test: skipped <name>: <reason>; hint: <hint>` for `def`.
    fn write_skip_line(&mut self, def: &TestDef, reason: &Arc<SkipReason>) {
        let batch = self.lines.get_or_insert_with(|| {
            let flusher = std::thread::Builder::new().name("gpu-test-skip-lines".to_string());
            // Without the thread the lines still go out, with the next batch or at exit.
            let _ = flusher.spawn(|| {
                std::thread::sleep(BATCH_AGE);
                flush_skip_lines();
            });
            Batch {
                text: String::with_capacity(BATCH_SIZE),
                reason: None,
            }
        });
        if !batch
            .reason
            .as_ref()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, reason))
        {
            let tail = format!(": {}; hint: {}\n", reason.reason, reason.hint);
            batch.reason = Some((reason.clone(), tail));
        }
        batch.text.push_str("gpu-test: skipped ");
        def.push_name(&mut batch.text);
        if let Some((_, tail)) = &batch.reason {
            batch.text.push_str(tail);
        }
        if batch.text.len() >= BATCH_SIZE {
            write_stderr(&batch.text);
            batch.text.clear();
        }
    }
}

fn skipped(settings: &Settings, def: &TestDef, reason: &Arc<SkipReason>) {
    let mut state = state();
    state.write_skip_line(def, reason);
    state
        .outcomes(settings)
        .skipped(reason, || (suite_name(), def.name()));
}

fn record(settings: &Settings, update: impl FnOnce(&mut Outcomes)) {
    update(state().outcomes(settings));
}

fn flush_skip_lines() {
    if let Some(batch) = STATE.lock().unwrap_or_else(|p| p.into_inner()).lines.take()
        && !batch.text.is_empty()
    {
        write_stderr(&batch.text);
    }
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> c_int;
}

/// Runs as the process exits: the skip lines still buffered, then the summary, annotations and
/// report for the tests that ran.
extern "C" fn finish() {
    let _ = std::panic::catch_unwind(|| {
        flush_skip_lines();
        let Some(outcomes) = STATE.lock().unwrap_or_else(|p| p.into_inner()).outcomes.take() else {
            return;
        };
        let Ok(settings) = session() else {
            return;
        };
        if let Err(message) = outcomes.conclude(settings, probe()) {
            write_stderr(&format!("{message}\n"));
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
