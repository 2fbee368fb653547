//! Running the registered tests under a test runner: gpu-test's own `main()` on libtest-mimic
//! (`mimic`), each test under the default libtest harness (`libtest`), and nextest's two phases
//! (`nextest`). What both runners share is here: the session set up once per process, and
//! [`run_test`], which carries out a decision and records its result.

pub(crate) mod libtest;
pub(crate) mod mimic;
pub(crate) mod nextest;
pub(crate) mod registry;

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::decide::skip::SkipReason;
use crate::decide::{Decider, Decision};
use crate::probe::{DeviceInfo, probe};
use crate::report::console;
use crate::report::github::Channel;
use crate::report::model::{DeviceRecord, Entry, Outcome};
use crate::report::outcomes::Outcomes;
use crate::report::{file, suite_name};
use crate::run::body::BodyFailure;
use crate::run::{Watch, execute};
use crate::settings::{Settings, settings};
use crate::util::files::ensure_private_dir;
use crate::util::format::into_panic_message;
use registry::TestDef;

/// What a test process knows once, before its first test.
#[derive(Debug)]
pub(crate) struct Session {
    /// The settings, all valid.
    pub settings: &'static Settings,
    /// The decision policy over this machine's probe.
    pub decider: Decider,
    /// The suite this binary's tests are reported under.
    pub suite: Arc<str>,
}

/// This process's session, set up on first call: the settings read and checked, the runtime
/// directory and the report checked usable, unknown variables warned about, and the machine
/// probed. `first` is a test of this binary, which names its suite. `Err` is the message every
/// GPU test fails with (each line starts with `gpu-test:`).
pub(crate) fn session(first: Option<&TestDef>) -> Result<&'static Session, &'static str> {
    static SESSION: OnceLock<Result<Session, String>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let settings = settings().map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(|error| format!("gpu-test: {error}")).collect();
                lines.join("\n")
            })?;
            // The runtime directory, and its report state when a report is wanted.
            let runtime = ensure_private_dir(&settings.runtime_dir).and_then(|()| match settings.report {
                Some(_) => file::check_state(settings),
                None => Ok(()),
            });
            runtime.map_err(|error| format!("gpu-test: {}", settings.unusable_runtime_dir(&error)))?;
            if let Some(target) = &settings.report {
                file::check_writable(target).map_err(|error| format!("gpu-test: {error}"))?;
            }
            console::warn_unknown_variables(settings);
            Ok(Session {
                settings,
                decider: Decider::new(probe(), settings.strict),
                suite: suite_name(settings, first.map(TestDef::suite)),
            })
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The outcomes this process recorded, concluded after its last test.
static OUTCOMES: Mutex<Option<Outcomes>> = Mutex::new(None);

/// Records into this process's outcomes.
fn record(session: &Session, update: impl FnOnce(&mut Outcomes)) {
    let mut outcomes = OUTCOMES.lock().unwrap_or_else(|p| p.into_inner());
    update(outcomes.get_or_insert_with(|| Outcomes::new(session.settings.report.is_some())));
}

/// A process can end inside a body (a crash, a signal, nextest's `terminate-after`) before it
/// concludes, where its outcomes would go into the report. So where a report is wanted, what the
/// process recorded goes in before each body runs, with that body's test as failed for want of
/// an outcome (naming its devices once they are known, or written earlier, without them, where
/// the test first calls the driver or waits for devices it has a choice of), and again once the body is done, with the
/// test's own entry in its place: a crash loses neither the test it happened in (named as the one
/// whose process ended) nor an earlier one of the process. Skips (and strict mode's failures of
/// unmet tests, but for the process's first, which goes in at once) wait for the next body or the
/// conclusion, except while another thread runs a body
/// ([`RUNNING_TESTS`], from before it waits for its devices), which could end the process first,
/// and under nextest's run phase, where every outcome goes in at once: a process there runs one
/// test. A suite of thousands of skips with no body running thus writes its report once, not once
/// per skip; one whose skips are decided while bodies run on other threads writes it for each.
fn write_recorded(session: &Session, starting: Option<Entry>) {
    if session.settings.report.is_none() {
        return;
    }
    // One batch at a time, from taking to putting back: batches of two threads written in the
    // other order, or put back so, would put a test's provisional entry over its own outcome.
    let _writing = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let (from, mut entries) = OUTCOMES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .map(Outcomes::take_unwritten)
        .unwrap_or_default();
    entries.extend(starting);
    if entries.is_empty() {
        return;
    }
    let recorded = file::record_if_wanted(session.settings, session.decider.probe(), &session.suite, entries);
    if let Err(message) = recorded {
        // The next write, or the conclusion, tries these again (a provisional entry need not be:
        // its test's own comes after it); the run's end fails with the first error all the same.
        record(session, |o| o.rewind(from));
        let mut first = WRITE_ERROR.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(message);
    }
}

/// The tests whose bodies this process's threads are running, by name, from before each one's
/// provisional entry is written until its body is done: while one is, an outcome recorded without
/// a body goes into the report at once, as the body's crash would lose it (and while none is, the
/// next body's provisional entry takes it in before that body can crash); and the process's exit
/// names them where one ends it.
static RUNNING_TESTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether a test of this process has failed without running its body (strict mode, or a test
/// nextest listed to run whose requirements are now unmet): see [`run_test`].
static FAILED_WITHOUT_A_BODY: AtomicBool = AtomicBool::new(false);

/// Whether a body is running ([`RUNNING_TESTS`]).
fn a_body_runs() -> bool {
    !RUNNING_TESTS.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
}

/// Counts a body as running ([`RUNNING_TESTS`]) until dropped.
struct BodyRunning(String);

impl BodyRunning {
    fn start(name: &str) -> BodyRunning {
        RUNNING_TESTS.lock().unwrap_or_else(|p| p.into_inner()).push(name.to_string());
        BodyRunning(name.to_string())
    }
}

impl Drop for BodyRunning {
    fn drop(&mut self) {
        let mut running = RUNNING_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = running.iter().position(|name| *name == self.0) {
            running.swap_remove(at);
        }
    }
}

/// Set as gpu-test's own harness ends the process: any `exit` before it is a test's doing.
static HARNESS_EXITING: AtomicBool = AtomicBool::new(false);

/// The process that registered gpu-test's exit hook: a child that a body forks inherits the
/// hook, and its exit is not this run's to conclude.
static HOOKED_PROCESS: AtomicU32 = AtomicU32::new(0);

/// Registers `hook` to run as this process exits ([`in_hooked_process`] tells it apart from a
/// forked child).
pub(crate) fn register_exit_hook(hook: extern "C" fn()) {
    HOOKED_PROCESS.store(std::process::id(), Ordering::SeqCst);
    if !crate::util::os::at_exit(hook) {
        console::line(
            "gpu-test: warning: could not register the exit handler (atexit failed): a test that ends the \
             process with exit would not be reported as failed",
        );
    }
}

/// Whether this is the process that registered the exit hook, not a child a body forked.
pub(crate) fn in_hooked_process() -> bool {
    HOOKED_PROCESS.load(Ordering::SeqCst) == std::process::id()
}

/// Called by gpu-test's harness as it ends the process itself.
pub(crate) fn harness_exiting() {
    HARNESS_EXITING.store(true, Ordering::SeqCst);
}

/// Where a test ends the process with `exit` (as `std::process::exit` calls it) before it is done,
/// with a status its runner would take for the test's own (0: a pass): what to say, for the
/// caller to end the process with 101 once the report is written (each test whose body was
/// running is in it as failed, its process having ended before gpu-test could record how it did).
/// `None` for the harness's own end: under libtest, whose end gpu-test does not see, an exit while
/// no body runs; under gpu-test's harness, one it makes itself.
pub(crate) fn exit_by_a_test(harness_exits_itself: bool) -> Option<String> {
    if !in_hooked_process() {
        return None;
    }
    let running = RUNNING_TESTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let by_a_test = match harness_exits_itself {
        true => !HARNESS_EXITING.load(Ordering::SeqCst),
        false => !running.is_empty(),
    };
    by_a_test.then(|| exit_message(&running))
}

fn exit_message(running: &[String]) -> String {
    let by = match running {
        [] => "between tests, from a thread a test left behind (one its body started, or a body stopped waiting \
               for past its timeout)"
            .to_string(),
        running => format!("while the body of {} runs", running.join(", ")),
    };
    format!(
        "gpu-test: the process is exiting {by} (std::process::exit, or libc's exit, called by a test or by code \
         it calls), before the run was done and with a status its runner would take for the tests': the \
         process ends with status 101"
    )
}

/// The exit hook of gpu-test's harness: where a test ends the process ([`exit_by_a_test`]), the
/// report is concluded and the process ends with 101.
pub(crate) extern "C" fn on_exit_by_a_test() {
    let _ = std::panic::catch_unwind(|| {
        let Some(message) = exit_by_a_test(true) else {
            return;
        };
        console::flush_skip_lines();
        if let Ok(session) = session(None)
            && let Err(error) = conclude(session)
        {
            console::line(&error);
        }
        console::line(&message);
        crate::util::os::exit_now(101);
    });
}

/// Held while this process writes the report, from [`write_recorded`] to the conclusion.
static WRITING: Mutex<()> = Mutex::new(());

/// Whether a skip goes into the report as it happens ([`write_recorded`]): under nextest's run
/// phase.
fn skips_at_once(settings: &Settings) -> bool {
    settings.nextest.phase.as_deref() == Some("run")
}

/// The first report that [`write_recorded`] could not write, for the process to fail with.
static WRITE_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Concludes what this process recorded: the skip summary, annotations and report.
fn conclude(session: &Session) -> Result<(), String> {
    let _writing = WRITING.lock().unwrap_or_else(|p| p.into_inner());
    let outcomes = OUTCOMES.lock().unwrap_or_else(|p| p.into_inner()).take();
    let annotations = if stdout_is_for_programs(std::env::args_os()) {
        Channel::Stderr
    } else {
        Channel::Stdout
    };
    let concluded = match outcomes {
        Some(outcomes) => outcomes.conclude(
            session.settings,
            session.decider.probe(),
            &session.suite,
            annotations,
        ),
        // No GPU test was run or skipped (a filter left them all out): the report is still this
        // run's, not the last one's. Under nextest the list phase has written it already.
        None if session.settings.nextest.phase.is_none() => {
            file::record_if_wanted(session.settings, session.decider.probe(), &session.suite, Vec::new())
        }
        None => Ok(()),
    };
    match WRITE_ERROR.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(error) => Err(error),
        None => concluded,
    }
}

/// Whether libtest (or libtest-mimic) writes a format for programs on stdout, JSON or JUnit
/// (`--format json`, `--format=junit`, ...), given this process's arguments, its program first.
fn stdout_is_for_programs(arguments: impl Iterator<Item = OsString>) -> bool {
    let arguments: Vec<OsString> = arguments.skip(1).take_while(|arg| arg != "--").collect();
    let for_programs = |format: &OsString| format == "json" || format == "junit";
    arguments.iter().any(|arg| {
        arg.to_str()
            .and_then(|arg| arg.strip_prefix("--format="))
            .is_some_and(|format| for_programs(&format.into()))
    }) || arguments
        .windows(2)
        .any(|pair| pair[0] == "--format" && for_programs(&pair[1]))
}

/// How a test ended, for its runner.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The body ran and succeeded.
    Passed,
    /// Its requirements are unmet.
    Skipped(Arc<SkipReason>),
    /// It failed: the message, starting with `gpu-test: <name>`.
    Failed(String),
    /// The body panicked: the payload's text (the payload itself dropped, see
    /// [`into_panic_message`]). The runner resumes the panic with it, whose message the hook
    /// already printed.
    Panicked(String),
}

/// `entry`, marked as one device's run of `def` when `def` is an `each_device` test.
fn per_device(def: &TestDef, mut entry: Entry) -> Entry {
    entry.each_device_of = def.each_device.then(|| def.name());
    entry
}

/// Carries out `decision` for `def`: runs the body and prints where it ran, or not, and records
/// the test's entry. `trial` names it when it is not the function's name (one device of an
/// `each_device` test).
pub(crate) fn run_test(session: &Session, def: &'static TestDef, trial: Option<&str>, decision: Decision) -> Verdict {
    let suite = &session.suite;
    let name_of = || trial.map(str::to_string).unwrap_or_else(|| def.name());
    // Whether what was recorded goes into the report now (see below).
    let (verdict, write_now) = match decision {
        Decision::Skip(reason) => {
            record(session, |o| {
                o.skipped(&reason, def.location(), || {
                    (suite.clone(), name_of(), def.each_device.then(|| def.name()))
                })
            });
            (Verdict::Skipped(reason), false)
        }
        Decision::Fail(message, reason) => {
            let name = name_of();
            let entry = per_device(def, Entry::unmet(suite, &name, Outcome::Failed, &reason).at(def.file, def.line));
            record(session, |o| o.ran(entry));
            // The process's first such failure goes in at once, with what was recorded before it:
            // a test that ends the process before the next write (a plain test that aborts) then
            // leaves a report of this run with a failure in it, not no report or an earlier run's.
            // Later ones wait, so that a suite failing in strict mode does not write its report
            // once per test.
            let first = !FAILED_WITHOUT_A_BODY.swap(true, Ordering::SeqCst);
            (Verdict::Failed(format!("gpu-test: {name} {message}")), first)
        }
        Decision::Run(ordinals) => {
            let name = name_of();
            // The test goes in as failed for want of an outcome before anything can end its
            // process: once its devices are known, naming them, and before that only where
            // something could end it sooner (a driver call, a wait for the devices).
            let started = |devices: &[DeviceInfo]| {
                let mut entry = per_device(def, Entry::started(suite, &name).at(def.file, def.line));
                entry.devices = devices.iter().map(DeviceRecord::of).collect();
                write_recorded(session, Some(entry));
            };
            if def.requirements.needs_toolkit() {
                console::nvrtc_outside_loader_path(session.decider.probe());
            }
            let running = BodyRunning::start(&name);
            let execution = execute(
                def.body_named(&name),
                session.decider.probe(),
                &ordinals,
                session.settings,
                &Watch {
                    before_leasing: &|| started(&[]),
                    waiting: &|waiting| console::waiting(&name, waiting),
                    devices: &started,
                },
            );
            drop(running);
            console::ran(&name, &execution);
            let entry = per_device(def, Entry::executed(suite, &name, &execution).at(def.file, def.line));
            record(session, |o| o.ran(entry));
            let verdict = match execution.outcome {
                Ok(()) => Verdict::Passed,
                Err(BodyFailure::Panicked(payload)) => Verdict::Panicked(into_panic_message(payload)),
                Err(failure) => Verdict::Failed(format!("gpu-test: {name} {}", failure.describe())),
            };
            (verdict, true)
        }
    };
    // A body's own outcome goes in at once, over its provisional one, and so does the process's
    // first failure without a body; a test decided without running waits for the next body or
    // the end, except while a body runs (recorded first, then
    // looked for: a body that starts after the look takes this entry in with its own provisional
    // one) and under nextest's run phase.
    if write_now || a_body_runs() || skips_at_once(session.settings) {
        write_recorded(session, None);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn for_programs(line: &str) -> bool {
        stdout_is_for_programs(line.split_whitespace().map(OsString::from))
    }

    #[test]
    fn json_and_junit_on_stdout_are_told_from_the_formats_people_read() {
        assert!(for_programs("gpu-abc --format json"));
        assert!(for_programs("gpu-abc -Z unstable-options --format=json --exact a"));
        assert!(for_programs("gpu-abc --format junit"));
        assert!(!for_programs("gpu-abc --format pretty"));
        assert!(!for_programs("gpu-abc --format=terse"));
        assert!(!for_programs("gpu-abc json"), "a filter named json");
        assert!(!for_programs("--format json"), "the program's own name");
        assert!(!for_programs("gpu-abc -- --format json"));
    }
}
