//! Running a GPU test under the default libtest harness, which has no run-time skip: an unmet
//! test passes and says so on stderr (which libtest does not capture), or fails in strict mode.
//!
//! libtest has no hook at the end of a run, so the skip summary, the GitHub annotations and the
//! report entries not yet written (the skips and strict-mode failures since the last body, and any
//! whose write failed) come from an `atexit` handler.

use std::sync::{Arc, Once};

use super::registry::{TestDef, device_trial};
use super::{Session, Verdict, conclude, run_test, session};
use crate::decide::Decision;
use crate::decide::skip::SkipReason;
use crate::report::{console, github};
use crate::run::faults;
use crate::util::os::exit_now;

/// Runs one test: decides from the probe, then runs the body, skips, or fails.
pub fn run_under_libtest(def: &'static TestDef) {
    if let Err(message) = def.start() {
        fail(message);
    }
    let session = match session(Some(def)) {
        Ok(session) => session,
        Err(message) => fail(message.to_string()),
    };
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        super::register_exit_hook(finish);
    });
    if def.each_device && !session.decider.probe().devices.is_empty() {
        return run_on_each_device(session, def);
    }
    let decision = session.decider.decide(&def.requirements, None);
    if let Decision::Skip(reason) = &decision {
        say_skipped(session, |out| def.push_name(out), reason);
    }
    match run_test(session, def, None, decision) {
        Verdict::Passed | Verdict::Skipped(_) => {}
        Verdict::Failed(message) => fail(message),
        Verdict::Panicked(message) => std::panic::resume_unwind(Box::new(message)),
    }
}

/// Says that the test `push_name` names is skipped for `reason`, where this harness lets it be seen: its skip line on
/// stderr, and under nextest the job summary (a passing test's stderr is shown no one there).
fn say_skipped(session: &Session, push_name: impl Fn(&mut String), reason: &Arc<SkipReason>) {
    console::skip_line(&push_name, reason);
    github::step_summary_of_test(session.settings, &session.suite, &push_name, reason);
}

/// Fails the running test with gpu-test's `message` (an unmet requirement in strict mode, a
/// timeout, a CUDA error): written where libtest shows a failed test's output, then unwound
/// without the panic hook, which would add a backtrace into gpu-test (`RUST_BACKTRACE=1`) for
/// what is not a panic of the test's code.
fn fail(message: String) -> ! {
    // Through libtest's capture, where it captures; once a test was given up on, past std's lock
    // on stderr, which its thread may hold (`eprintln!` takes it without a capture: --nocapture,
    // and nextest).
    if crate::util::stderr::is_past_the_lock() {
        crate::util::stderr::write_stderr(&format!("{message}\n"));
    } else {
        eprintln!("{message}");
    }
    std::panic::resume_unwind(Box::new(message))
}

/// An `each_device` test under libtest, which has one test to show for it: the body runs once
/// per qualifying device, each run named `<test>::cuda<N>` in the output and the report, and the
/// test fails after the last device if any run failed.
fn run_on_each_device(session: &Session, def: &'static TestDef) {
    let mut failures = Vec::new();
    for run in session.decider.each_device() {
        let trial = device_trial(&def.name(), run.ordinal(session.decider.probe()));
        let decision = session.decider.decide_device_run(&def.requirements, run, None);
        if let Decision::Skip(reason) = &decision {
            say_skipped(session, |out| out.push_str(&trial), reason);
        }
        match run_test(session, def, Some(&trial), decision) {
            Verdict::Passed | Verdict::Skipped(_) => {}
            Verdict::Failed(message) => failures.push(message),
            Verdict::Panicked(message) => failures.push(format!("gpu-test: {trial} panicked: {message}")),
        }
    }
    if !failures.is_empty() {
        fail(failures.join("\n"));
    }
}

/// Runs as the process exits: the skip lines still buffered, then the summary, annotations and
/// report for the tests that ran.
extern "C" fn finish() {
    // A child a body forked exits with the hook too: the run is not its to conclude.
    if !super::in_hooked_process() {
        return;
    }
    let _ = std::panic::catch_unwind(|| {
        console::flush_skip_lines();
        let Ok(session) = session(None) else {
            return;
        };
        let by_a_test = super::exit_by_a_test(false);
        if let Err(message) = conclude(session) {
            console::line(&message);
            by_a_test.iter().for_each(|message| console::line(message));
            // libtest has already chosen the exit status; a lost report must still fail the run.
            exit_now(101);
        }
        if let Some(message) = by_a_test {
            console::line(&message);
            exit_now(101);
        }
        // A test abandoned past its timeout failed, so libtest's status is 101; its thread may be
        // inside the driver, whose own exit handlers (run after this one) would wait for it.
        if faults::any_abandoned() {
            exit_now(101);
        }
    });
}
