//! `gpu_test_runtime::main()`: a libtest-compatible harness (for `harness = false` test targets)
//! in which an unmet GPU test is a real skip: ignored at list time, so `cargo nextest run` shows
//! it as SKIP, and `ignored (<reason>)` under `cargo test`.

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use super::nextest::{self, Phase};
use super::registry::{GPU_TESTS, TestDef};
use super::{Session, Verdict, conclude, run_test, session};
use crate::cuda::guard::driver_hung;
use crate::decide::Decision;
use crate::report::console;
use crate::report::outcomes::Outcomes;
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
    let args = Arguments::from_args();
    let session = match session(GPU_TESTS.first().copied()) {
        Ok(session) => session,
        Err(message) => {
            console::line(message);
            std::process::exit(101);
        }
    };
    let settings = session.settings;
    let phase = Phase::detect(settings, args.list);
    let listed = match phase {
        Phase::Run => nextest::read_listed(settings),
        _ => None,
    };

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
        let listed_to_run = listed.as_ref().and_then(|l| l.get(&name)).copied();
        let decision = session.decider.decide(&def.requirements, listed_to_run);
        let unmet_and_ignored = matches!(decision, Decision::Skip(_)) && (args.list || args.ignored);
        let flagged = def.ignored || unmet_and_ignored;
        if phase == Phase::List {
            decisions.push((name.clone(), decision.clone()));
        }
        trials.push(trial(session, def, name, decision).with_ignored_flag(flagged));
    }

    if args.list {
        if phase == Phase::List {
            after_nextest_list(session, &decisions);
        }
        let conclusion = libtest_mimic::run(&args, trials);
        exit(conclusion.has_failed());
    }

    let conclusion = libtest_mimic::run(&args, trials);
    if let Err(message) = conclude(session) {
        console::line(&message);
        exit(true);
    }
    exit(conclusion.has_failed())
}

/// Ends the process: through the C library's exit normally, but past its exit handlers when the
/// driver hung, since a driver's own handlers may wait on the call that never returned.
fn exit(failed: bool) -> ! {
    let code = if failed { 101 } else { 0 };
    if driver_hung() {
        exit_now(code);
    }
    std::process::exit(code)
}

fn trial(session: &'static Session, def: &'static TestDef, name: String, decision: Decision) -> Trial {
    Trial::ignorable_test(name, move || match run_test(session, def, decision) {
        Verdict::Passed => Ok(Completion::Completed),
        Verdict::Skipped(reason) => Ok(Completion::ignored_with(&reason.reason)),
        Verdict::Failed(message) => Err(Failed::from(message)),
        Verdict::Panicked(payload) => std::panic::resume_unwind(payload),
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
fn after_nextest_list(session: &Session, decisions: &[(String, Decision)]) {
    let settings = session.settings;
    if let Err(message) = nextest::write_listed(settings, decisions) {
        console::line(&message);
    }
    let mut outcomes = Outcomes::new(settings.report.is_some());
    for (name, decision) in decisions {
        if let Decision::Skip(reason) = decision {
            outcomes.skipped(reason, || (session.suite.clone(), name.clone()));
        }
    }
    if let Err(message) = outcomes.conclude_listing(settings, session.decider.probe(), &session.suite) {
        console::line(&message);
        exit(true);
    }
}
