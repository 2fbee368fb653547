//! `gpu_test_runtime::main()`: a libtest-compatible harness (for `harness = false` test targets)
//! in which an unmet GPU test is a real skip: ignored at list time, so `cargo nextest run` shows
//! it as SKIP, and `ignored (<reason>)` under `cargo test`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::body::{self, BodyFailure};
use crate::ci;
use crate::libtest::warn_unknown_variables;
use crate::outcomes::Outcomes;
use crate::private::{GPU_TESTS, TestDef};
use crate::probe::{Probe, probe};
use crate::report::{self, Cause, Entry, Outcome, suite_name};
use crate::run_state;
use crate::settings::{Settings, settings};
use crate::skip::SkipReason;

/// Runs every `#[gpu_test]` in this binary with libtest's command line (filters, `--exact`,
/// `--list`, `--ignored`, `--include-ignored`, `--test-threads`, `--format`, ...), then exits.
///
/// Use it as the `main` of a test target with `harness = false`:
///
/// ```toml
/// [[test]]
/// name = "gpu"
/// harness = false
/// ```
///
/// ```no_run
/// // tests/gpu.rs
/// use gpu_test_runtime::{gpu_test, Gpu};
///
/// #[gpu_test(devices = 2)]
/// fn all_reduce(gpu: &Gpu) { /* ... */ }
///
/// fn main() {
///     gpu_test_runtime::main()
/// }
/// ```
///
/// The machine is probed once, before the tests are listed. A test whose requirements are unmet
/// is marked ignored when listing (`--list`, and so for nextest) and, when run, is ignored with
/// its reason; it never runs on the CPU. With `GPU_TEST_STRICT=1` it runs and fails with the
/// reason instead. After the run, skipped tests are summarised on stderr by reason.
pub fn main() -> ! {
    let args = Arguments::from_args();
    let settings = match settings() {
        Ok(settings) => settings,
        Err(errors) => {
            for error in errors {
                eprintln!("gpu-test: {error}");
            }
            std::process::exit(101);
        }
    };
    if let Some(target) = &settings.report
        && let Err(error) = report::check_writable(target)
    {
        eprintln!("gpu-test: {error}");
        std::process::exit(101);
    }
    warn_unknown_variables(settings);
    let probe = probe();
    let phase = Phase::detect(&args);
    let suite = suite_name();
    let listed = match phase {
        Phase::NextestRun => read_listed(settings),
        _ => None,
    };

    let recorder = Arc::new(Recorder(Mutex::new(Outcomes::new(settings.report.is_some()))));
    // Each name is built once: sorting by `def.name()` would build it at every comparison.
    let mut defs: Vec<(String, &'static TestDef)> = GPU_TESTS.iter().map(|def| (def.name(), *def)).collect();
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut decisions = Vec::new();
    let mut trials = Vec::with_capacity(defs.len());
    for (name, def) in defs {
        if filtered_out(&args, &name) {
            // libtest-mimic drops it and counts it as filtered out; deciding would be wasted work.
            trials.push(Trial::test(name, || Ok(())).with_ignored_flag(def.ignored));
            continue;
        }
        let decision = decide(def, &name, probe, settings, listed.as_ref());
        let unmet_and_ignored = matches!(decision, Decision::Skip(_)) && (args.list || args.ignored);
        let flagged = def.ignored || unmet_and_ignored;
        if phase == Phase::NextestList {
            decisions.push((name.clone(), decision.clone()));
        }
        let trial = trial(def, name, decision, probe, settings, recorder.clone(), &suite);
        trials.push(trial.with_ignored_flag(flagged));
    }

    if args.list {
        if phase == Phase::NextestList {
            after_nextest_list(settings, probe, &suite, &decisions);
        }
        libtest_mimic::run(&args, trials).exit();
    }

    let conclusion = libtest_mimic::run(&args, trials);
    if let Err(message) = recorder.take().conclude(settings, probe) {
        eprintln!("{message}");
        std::process::exit(101);
    }
    conclusion.exit()
}

/// Which kind of invocation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `cargo test`, or the binary run by hand.
    Plain,
    /// nextest listing the tests.
    NextestList,
    /// nextest running one test.
    NextestRun,
}

impl Phase {
    fn detect(args: &Arguments) -> Phase {
        match std::env::var("NEXTEST_TEST_PHASE").as_deref() {
            Ok("list") if args.list => Phase::NextestList,
            Ok("run") => Phase::NextestRun,
            _ => Phase::Plain,
        }
    }
}

/// What to do with one test.
#[derive(Debug, Clone)]
enum Decision {
    /// Requirements met: run on these device ordinals.
    Run(Arc<Vec<usize>>),
    /// Requirements unmet: skip with the reason.
    Skip(Arc<SkipReason>),
    /// Requirements unmet and that is a failure: the message, and the reason.
    Fail(String, Arc<SkipReason>),
}

fn decide(
    def: &TestDef,
    name: &str,
    probe: &Probe,
    settings: &Settings,
    listed: Option<&HashMap<String, bool>>,
) -> Decision {
    match probe.decide(&def.requirements) {
        Ok(ordinals) => Decision::Run(ordinals),
        Err(reason) if settings.strict => Decision::Fail(
            format!("cannot run, and GPU_TEST_STRICT=1 makes that a failure: {reason}"),
            reason,
        ),
        Err(reason) if listed.and_then(|l| l.get(name)) == Some(&true) => Decision::Fail(
            format!(
                "nextest listed this test to run, but in this process its requirements are unmet: {reason} \
                 (did the environment change between listing and running?)"
            ),
            reason,
        ),
        Err(reason) => Decision::Skip(reason),
    }
}

fn trial(
    def: &'static TestDef,
    name: String,
    decision: Decision,
    probe: &'static Probe,
    settings: &'static Settings,
    recorder: Arc<Recorder>,
    suite: &Arc<str>,
) -> Trial {
    let suite = suite.clone();
    let test_name = name.clone();
    Trial::ignorable_test(name, move || match decision {
        Decision::Skip(reason) => {
            recorder.with(|o| o.skipped(&reason, || (suite.clone(), test_name.clone())));
            Ok(Completion::ignored_with(&reason.reason))
        }
        Decision::Fail(message, reason) => {
            recorder.with(|o| o.ran(Entry::unmet(&suite, &test_name, Outcome::Failed, &reason)));
            Err(Failed::from(format!("gpu-test: {test_name} {message}")))
        }
        Decision::Run(ordinals) => {
            let execution = body::execute(def, probe, &ordinals, settings);
            let failure = execution.outcome.as_ref().err().map(BodyFailure::describe);
            recorder.with(|o| {
                o.ran(Entry {
                    suite: suite.clone(),
                    name: test_name.clone(),
                    outcome: if failure.is_some() {
                        Outcome::Failed
                    } else {
                        Outcome::Passed
                    },
                    cause: failure.map_or(Cause::None, Cause::Failure),
                    duration: execution.duration,
                    devices: execution.devices,
                    timings: execution.timings.iter().map(|t| t.to_json(&test_name)).collect(),
                })
            });
            match execution.outcome {
                Ok(()) => Ok(Completion::Completed),
                Err(BodyFailure::Panicked(payload)) => std::panic::resume_unwind(payload),
                Err(failure) => Err(Failed::from(format!(
                    "gpu-test: {test_name} {}",
                    failure.describe()
                ))),
            }
        }
    })
}

/// Whether libtest's name filters (`FILTER`, `--exact`, `--skip`) drop `name`.
fn filtered_out(args: &Arguments, name: &str) -> bool {
    let matches = |pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    if let Some(filter) = &args.filter
        && !matches(filter)
    {
        return true;
    }
    args.skip.iter().any(|skip| matches(skip))
}

/// The file in the run directory where nextest's list phase records, for this binary, which
/// tests it listed to run.
fn listed_file(settings: &Settings) -> Option<std::path::PathBuf> {
    let binary = std::env::var("NEXTEST_BINARY_ID").ok()?;
    let dir = run_state::run_dir(settings).ok()?;
    Some(dir.join(format!("listed-{}", run_state::sanitize(&binary))))
}

/// The list phase's decisions: test name to whether it was listed to run.
fn read_listed(settings: &Settings) -> Option<HashMap<String, bool>> {
    let text = std::fs::read_to_string(listed_file(settings)?).ok()?;
    Some(
        text.lines()
            .filter_map(|line| {
                let (state, name) = line.split_once('\t')?;
                Some((name.to_string(), state == "run"))
            })
            .collect(),
    )
}

/// nextest runs skipped tests in no process at all, so the list phase is the one place their
/// reasons are known: it records them in the report, and what it decided for the run phase.
fn after_nextest_list(
    settings: &Settings,
    probe: &Probe,
    suite: &Arc<str>,
    decisions: &[(String, Decision)],
) {
    if let Some(path) = listed_file(settings) {
        let lines: String = decisions
            .iter()
            .map(|(name, decision)| {
                let state = if matches!(decision, Decision::Skip(_)) {
                    "skip"
                } else {
                    "run"
                };
                format!("{state}\t{name}\n")
            })
            .collect();
        if let Err(error) = run_state::write_atomically(&path, lines.as_bytes()) {
            eprintln!(
                "gpu-test: could not record the listed tests in {}: {error}",
                path.display()
            );
        }
    }
    let mut outcomes = Outcomes::new(settings.report.is_some());
    for (name, decision) in decisions {
        if let Decision::Skip(reason) = decision {
            outcomes.skipped(reason, || (suite.clone(), name.clone()));
        }
    }
    ci::step_summary(settings, &outcomes.skip_groups());
    if let Err(message) = report::record_if_wanted(settings, probe, outcomes.into_entries()) {
        eprintln!("{message}");
        std::process::exit(101);
    }
}

/// Outcomes recorded by tests running on libtest-mimic's threads.
#[derive(Debug)]
struct Recorder(Mutex<Outcomes>);

impl Recorder {
    fn with(&self, record: impl FnOnce(&mut Outcomes)) {
        record(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn take(&self) -> Outcomes {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
