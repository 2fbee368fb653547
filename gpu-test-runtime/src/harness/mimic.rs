//! `gpu_test_runtime::main()`: a libtest-compatible harness (for `harness = false` test targets)
//! in which an unmet GPU test is a real skip: ignored at list time, so `cargo nextest run` shows
//! it as SKIP, and `ignored (<reason>)` under `cargo test`.

use std::sync::Arc;
use std::time::Instant;

use libtest_mimic::{Arguments, ColorSetting, Completion, Failed, FormatSetting, Trial};

use super::nextest::{self, Phase};
use super::registry::{TestDef, device_trial, registered, trial_ordinal};
use super::{Session, Verdict, conclude, run_test, session};
use crate::cuda::guard;
use crate::decide::Decision;
use crate::report::console;
use crate::report::libtest::{self, Format, NotRun};
use crate::report::outcomes::Outcomes;
use crate::run::faults;
use crate::util::os::exit_now;

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
    let mut args = arguments();
    if args.test_threads == Some(0) {
        // libtest-mimic would start no thread and wait for ever for the results; libtest refuses.
        console::line("error: argument for --test-threads must not be 0");
        std::process::exit(101);
    }
    let session = match session(registered().first().copied()) {
        Ok(session) => session,
        Err(message) => {
            console::line(message);
            std::process::exit(101);
        }
    };
    // A test that ends the process with `exit` must not read as a pass (the report is written
    // from the hook only then: this harness concludes before its own exit).
    super::register_exit_hook(super::on_exit_by_a_test);
    let settings = session.settings;
    let phase = Phase::detect(settings, args.list);
    let listed = match phase {
        // Without the list phase's file (a runtime directory that differs between the phases),
        // nextest's arguments still say that a test run without `--ignored` was listed to run.
        Phase::Run => nextest::read_listed(settings).unwrap_or_else(|message| {
            console::line(&format!("{message}; going by what nextest asked for"));
            None
        }),
        _ => None,
    };
    let run_without_ignored = phase == Phase::Run && !args.ignored && !args.include_ignored;
    // The trials nextest may ask for: those its list phase saw, and the one it asks for now.
    let asked: Vec<&String> = listed
        .iter()
        .flat_map(|l| l.keys())
        .chain(args.filter.as_ref().filter(|_| phase == Phase::Run && args.exact))
        .collect();

    // Each name is built once: sorting by `def.name()` would build it at every comparison.
    let mut defs: Vec<(String, &'static TestDef)> = registered().iter().map(|def| (def.name(), *def)).collect();
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    let started = Instant::now();
    let mut tests = Vec::with_capacity(defs.len());
    let listed_to_run = |name: &str| {
        listed
            .as_ref()
            .and_then(|l| l.get(name))
            .copied()
            .or(run_without_ignored.then_some(true))
    };
    let mut push = |name: String, def: &'static TestDef, decide: &dyn Fn(&str) -> Decision| {
        // A test filtered out is not decided: deciding would be wasted work.
        let decision = (!filtered_out(&args, &name)).then(|| decide(&name));
        let unmet_and_ignored = matches!(decision, Some(Decision::Skip(_))) && (args.list || args.ignored);
        tests.push(Listed {
            flagged: def.ignored || unmet_and_ignored,
            name,
            def,
            decision,
        });
    };
    let probe = session.decider.probe();
    let devices = &probe.devices;
    let device_runs = session.decider.each_device();
    for (name, def) in defs {
        if def.each_device && !devices.is_empty() {
            // One trial per device, named by its CUDA ordinal, deciding for that device alone.
            for &run in &device_runs {
                let decide = |trial: &str| {
                    session
                        .decider
                        .decide_device_run(&def.requirements, run, listed_to_run(trial))
                };
                push(device_trial(&name, run.ordinal(probe)), def, &decide);
            }
        }
        if def.each_device {
            // nextest's run phase asks for the trials its list phase saw: one whose device this
            // process does not see still exists, and fails saying so rather than matching nothing.
            let mut missing: Vec<(usize, String)> = asked
                .iter()
                .filter_map(|trial| Some((trial_ordinal(&name, trial)?, (*trial).clone())))
                .filter(|(ordinal, _)| !device_runs.iter().any(|run| run.ordinal(probe) == *ordinal))
                .collect();
            missing.sort();
            missing.dedup();
            for (ordinal, trial) in missing {
                let decide = |trial: &str| session.decider.decide_missing_device(ordinal, listed_to_run(trial));
                push(trial, def, &decide);
            }
            if !devices.is_empty() {
                // nextest's list phase saw no device, and listed the test under its own name:
                // that trial still exists here, and fails rather than matching nothing.
                if asked.iter().any(|trial| **trial == name) {
                    let decide =
                        |trial: &str| session.decider.decide_listed_without_devices(devices.len(), listed_to_run(trial));
                    push(name, def, &decide);
                }
                continue;
            }
        }
        let decide = |name: &str| session.decider.decide(&def.requirements, listed_to_run(name));
        push(name, def, &decide);
    }

    // nextest runs each test it listed by its exact name: a name this process has no trial for
    // would match nothing, and the process would pass without running anything.
    if phase == Phase::Run
        && args.exact
        && let Some(asked) = &args.filter
        && !tests.iter().any(|test| &test.name == asked)
    {
        console::line(&format!(
            "gpu-test: nextest asked this process to run {asked}, which this test binary does not have as a \
             test now, though its list phase did: the test fails rather than passing without running; run \
             the tests again"
        ));
        exit(true);
    }

    if args.list {
        if phase == Phase::List {
            after_nextest_list(session, &tests);
        }
        if args.logfile.is_none() && !args.bench {
            let shown = tests
                .iter()
                .filter(|t| t.decision.is_some() && (!args.ignored || t.flagged));
            let written = libtest::write_list(shown.map(|t| t.name.as_str()));
            exit(!written);
        }
        let conclusion = libtest_mimic::run(&args, trials(session, &args, tests));
        exit(conclusion.has_failed());
    }

    // One test to run (nextest runs each in a process of its own) needs no pool of threads.
    if args.test_threads.is_none() && tests.iter().filter(|t| t.decision.is_some()).count() <= 1 {
        args.test_threads = Some(1);
    }
    let failed = match answered_without_running(&args, session, &tests, started) {
        // Written, or not (a closed stdout fails the run, after the report has the skips).
        Some(written) => !written,
        None => libtest_mimic::run(&args, trials(session, &args, tests)).has_failed(),
    };
    if let Err(message) = conclude(session) {
        console::line(&message);
        exit(true);
    }
    exit(failed)
}

/// libtest's command line. The line nextest runs each test with (`--exact NAME --nocapture`, in
/// any order, perhaps with `--ignored` or `--include-ignored`) is read directly: parsing it with
/// clap, as libtest-mimic does, takes longer in a debug build than the rest of a met test's
/// set-up. Any other line goes to libtest-mimic's parser.
fn arguments() -> Arguments {
    // A word that is not UTF-8 is clap's to report.
    let given: Option<Vec<String>> = std::env::args_os()
        .skip(1)
        .map(|word| word.into_string().ok())
        .collect();
    given
        .and_then(|given| simple_arguments(&given))
        .unwrap_or_else(Arguments::from_args)
}

fn simple_arguments(given: &[String]) -> Option<Arguments> {
    let mut args = Arguments::default();
    for word in given {
        // Each flag once, as clap allows.
        let flag = match word.as_str() {
            "--exact" => &mut args.exact,
            "--nocapture" => &mut args.nocapture,
            "--ignored" => &mut args.ignored,
            "--include-ignored" => &mut args.include_ignored,
            flag if flag.starts_with('-') => return None,
            _ if args.filter.is_some() => return None,
            name => {
                args.filter = Some(name.to_string());
                continue;
            }
        };
        if *flag {
            return None;
        }
        *flag = true;
    }
    (args.exact && args.filter.is_some()).then_some(args)
}

/// A test of this binary, named, and decided unless filters leave it out.
struct Listed {
    name: String,
    def: &'static TestDef,
    decision: Option<Decision>,
    /// Ignored in libtest's sense: `#[ignore]`, or unmet while listing or running `--ignored`.
    flagged: bool,
}

/// libtest-mimic's trials for `tests`. An `#[ignore = "text"]` test that this run does not run
/// is ignored at run time with its text: libtest-mimic shows no text for a test it ignores itself.
fn trials(session: &'static Session, args: &Arguments, tests: Vec<Listed>) -> Vec<Trial> {
    let running_ignored = args.ignored || args.include_ignored;
    tests
        .into_iter()
        .map(|test| match (test.decision, test.def.ignore_reason) {
            (None, _) => Trial::test(test.name, || Ok(())).with_ignored_flag(test.flagged),
            (Some(_), Some(text)) if test.def.ignored && !running_ignored && !args.list => {
                Trial::ignorable_test(test.name, move || Ok(Completion::ignored_with(text)))
            }
            (Some(decision), _) => {
                trial(session, test.def, test.name, decision).with_ignored_flag(test.flagged)
            }
        })
        .collect()
}

/// Answers a run in which no test has to run (each is skipped or ignored) by writing libtest's
/// output directly (pretty, terse or JSON): whether stdout took it; `None` when some test must
/// run, or the output is one that libtest-mimic should write (a log file, colours).
fn answered_without_running(args: &Arguments, session: &Session, tests: &[Listed], started: Instant) -> Option<bool> {
    let format = match args.format {
        _ if args.quiet => Format::Terse,
        None | Some(FormatSetting::Pretty) => Format::Pretty,
        Some(FormatSetting::Terse) => Format::Terse,
        Some(FormatSetting::Json) => Format::Json,
    };
    // The choice libtest-mimic's own stream makes (a terminal, NO_COLOR, CLICOLOR_FORCE, ...).
    let colours = match args.color {
        Some(ColorSetting::Never) => false,
        Some(ColorSetting::Always) => true,
        _ => anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never,
    };
    if (colours && format != Format::Json) || args.logfile.is_some() || args.bench {
        return None;
    }
    let mut shown = Vec::with_capacity(tests.len());
    let mut filtered = 0;
    for test in tests {
        let Some(decision) = &test.decision else {
            filtered += 1;
            continue;
        };
        if args.ignored && !test.flagged {
            filtered += 1;
            continue;
        }
        let ignored = test.flagged && !args.ignored && !args.include_ignored;
        match decision {
            _ if ignored => shown.push((test, None)),
            Decision::Skip(reason) => shown.push((test, Some(reason))),
            Decision::Run(_) | Decision::Fail(..) => return None,
        }
    }
    let lines: Vec<(&str, NotRun<'_>)> = shown
        .iter()
        .map(|(test, reason)| match reason {
            Some(reason) => (test.name.as_str(), NotRun::Skipped(&reason.reason)),
            None => (test.name.as_str(), NotRun::Ignored(test.def.ignore_reason)),
        })
        .collect();
    for (test, reason) in &shown {
        if let Some(reason) = reason {
            run_test(session, test.def, Some(&test.name), Decision::Skip(Arc::clone(reason)));
        }
    }
    Some(libtest::write_run(&lines, format, filtered, started.elapsed()))
}

/// Ends the process, failed or not, as [`guard::exit`] does; without exit handlers when a test
/// was abandoned past its timeout (its thread may be inside the driver, whose teardown would wait
/// for it).
fn exit(failed: bool) -> ! {
    super::harness_exiting();
    let code = if failed { 101 } else { 0 };
    if faults::any_abandoned() {
        exit_now(code);
    }
    guard::exit(code)
}

fn trial(session: &'static Session, def: &'static TestDef, name: String, decision: Decision) -> Trial {
    Trial::ignorable_test(name.clone(), move || match run_test(session, def, Some(&name), decision) {
        Verdict::Passed => Ok(Completion::Completed),
        Verdict::Skipped(reason) => Ok(Completion::ignored_with(&reason.reason)),
        Verdict::Failed(message) => Err(Failed::from(message)),
        Verdict::Panicked(message) => std::panic::resume_unwind(Box::new(message)),
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

/// nextest runs skipped tests in no process at all, so the list phase is the one place their
/// reasons are known: it records them in the report, and what it decided for the run phase.
fn after_nextest_list(session: &Session, tests: &[Listed]) {
    let settings = session.settings;
    if let Err(message) = nextest::check_list_phase(settings) {
        console::line(&message);
        exit(true);
    }
    let decisions: Vec<(String, Decision)> = tests
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.decision.clone()?)))
        .collect();
    // Without them, a test listed to run whose requirements the run phase finds unmet would pass
    // there as ignored: the list fails instead.
    if let Err(message) = nextest::write_listed(settings, &decisions) {
        console::line(&message);
        exit(true);
    }
    let mut outcomes = Outcomes::new(settings.report.is_some());
    // A test `#[ignore]`d in its source is not a skipped GPU test, as under `cargo test`, unless
    // nextest runs ignored tests (`--run-ignored`): its process then skips it, and nextest shows
    // nothing of a process that passes, so its reason goes in the job summary from here.
    let runs_ignored = nextest::owner_runs_ignored();
    for test in tests.iter().filter(|test| !test.def.ignored || runs_ignored) {
        if let Some(Decision::Skip(reason)) = &test.decision {
            outcomes.skipped(reason, test.def.location(), || {
                let each_device_of = test.def.each_device.then(|| test.def.name());
                (session.suite.clone(), test.name.clone(), each_device_of)
            });
        }
    }
    if let Err(message) = outcomes.conclude_listing(settings, session.decider.probe(), &session.suite) {
        console::line(&message);
        exit(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_line_nextest_runs_a_test_with_is_read_without_clap() {
        let args = simple_arguments(&words("--exact tests::a --nocapture")).unwrap();
        assert_eq!(args.filter.as_deref(), Some("tests::a"));
        assert!(args.exact && args.nocapture && !args.ignored);
        let args = simple_arguments(&words("--nocapture --ignored --exact b")).unwrap();
        assert!(args.ignored && args.filter.as_deref() == Some("b"));
        // Anything else is clap's to read.
        for other in [
            "",
            "--list",
            "a",
            "--exact a b",
            "--exact a --test-threads 1",
            "--exact a -q",
        ] {
            assert!(simple_arguments(&words(other)).is_none(), "{other}");
        }
    }
}
