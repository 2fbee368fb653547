//! nextest's two phases: it lists the tests (`--list`), then runs each in a process of its own.
//! What the list phase decided is recorded in the run's directory, so that a test listed to run
//! whose requirements are unmet in its own process fails rather than passes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::decide::Decision;
use crate::report::state::{run_dir, run_owner};
use crate::settings::Settings;
use crate::util::files::{sanitize, stable_hash, write_atomically};
use crate::util::process::arguments;

/// Which kind of invocation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `cargo test`, or the binary run by hand.
    Plain,
    /// nextest listing the tests before it runs them (`cargo nextest run`).
    List,
    /// nextest listing the tests and running none (`cargo nextest list`): the report and the job
    /// summary are left as the last run wrote them.
    ListOnly,
    /// nextest running one test.
    Run,
}

impl Phase {
    /// The phase of this process; `listing` is whether libtest's `--list` was given.
    pub(crate) fn detect(settings: &Settings, listing: bool) -> Phase {
        match settings.nextest.phase.as_deref() {
            Some("list") if listing && owner_only_lists() => Phase::ListOnly,
            Some("list") if listing => Phase::List,
            Some("run") => Phase::Run,
            _ => Phase::Plain,
        }
    }
}

/// Whether the nextest that owns this run only lists tests: its subcommand is `list` or
/// `show-config`, or `run` (or `bench`) with `--no-run`, which lists every binary's tests and then
/// stops. Where it cannot be told (no owner found, its arguments unreadable), the list phase is
/// taken to come before a run, whose skips must reach the report.
fn owner_only_lists() -> bool {
    owner_arguments().is_some_and(only_lists)
}

/// Whether the nextest that owns this run runs the tests `#[ignore]`d in their source
/// (`--run-ignored all` or `only`): the list phase then counts those it skips, as nextest runs
/// them. Where it cannot be told, it is taken not to, as by default.
pub(crate) fn owner_runs_ignored() -> bool {
    owner_arguments().is_some_and(runs_ignored)
}

/// The arguments of the nextest that owns this run, its program first; read once per process
/// (the list phase asks twice: whether it only lists, and whether ignored tests run).
fn owner_arguments() -> Option<&'static [OsString]> {
    static ARGUMENTS: OnceLock<Option<Vec<OsString>>> = OnceLock::new();
    ARGUMENTS
        .get_or_init(|| run_owner().and_then(|owner| arguments(owner.pid)))
        .as_deref()
}

/// nextest's subcommand among `arguments` (its program first), and the words after it, up to the
/// test binaries' own arguments (after `--`).
fn subcommand(arguments: &[OsString]) -> (Option<&str>, Vec<&str>) {
    const SUBCOMMANDS: [&str; 13] = [
        "list", "run", "r", "ntr", "bench", "b", "archive", "show-config", "self", "debug", "replay", "store", "help",
    ];
    // nextest's global options that take a value, which may come before the subcommand: a
    // profile named `list` is not the subcommand.
    const WITH_VALUES: [&str; 7] = [
        "--color",
        "--user-config-file",
        "--manifest-path",
        "--config-file",
        "--tool-config-file",
        "--profile",
        "-P",
    ];
    let mut words = arguments
        .iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .filter_map(|arg| arg.to_str());
    while let Some(word) = words.next() {
        let short_flags_ending_in_p = word.starts_with('-') && !word.starts_with("--") && word.ends_with('P');
        if WITH_VALUES.contains(&word) || short_flags_ending_in_p {
            words.next();
        } else if SUBCOMMANDS.contains(&word) {
            return (Some(word), words.collect());
        }
    }
    (None, Vec::new())
}

/// Whether a subcommand runs tests.
fn runs(subcommand: Option<&str>) -> bool {
    matches!(subcommand, Some("run" | "r" | "ntr" | "bench" | "b"))
}

/// [`owner_only_lists`] for nextest's arguments, its program first.
fn only_lists(arguments: &[OsString]) -> bool {
    match subcommand(arguments) {
        (Some("list" | "show-config"), _) => true,
        (command, rest) => runs(command) && rest.contains(&"--no-run"),
    }
}

/// [`owner_runs_ignored`] for nextest's arguments, its program first.
fn runs_ignored(arguments: &[OsString]) -> bool {
    let (command, rest) = subcommand(arguments);
    // `ignored-only` is what nextest called `only` before 0.9.
    let ignored = |value: &str| matches!(value, "all" | "only" | "ignored-only");
    runs(command)
        && rest.iter().enumerate().any(|(i, word)| match word.strip_prefix("--run-ignored") {
            Some("") => rest.get(i + 1).is_some_and(|value| ignored(value)),
            Some(value) => value.strip_prefix('=').is_some_and(ignored),
            None => false,
        })
}

/// The file in the run directory where the list phase records, for this binary, which tests it
/// listed to run; `None` where nextest names no binary (one older than 0.9.138). Named by a hash
/// of the binary's id as well, since two ids can sanitise alike (`pkg::t`, `pkg__t`).
fn listed_file(settings: &Settings) -> Result<Option<PathBuf>, String> {
    let Some(binary) = settings.nextest.binary_id.as_ref() else {
        return Ok(None);
    };
    let dir = run_dir(settings)
        .map_err(|error| format!("gpu-test: the run's directory in {} cannot be used ({error})", settings.runtime_dir.display()))?;
    Ok(Some(dir.join(format!("listed-{}-{:016x}", sanitize(binary), stable_hash(binary)))))
}

/// The list phase's decisions: test name to whether it was listed to run; `None` where nextest
/// names no binary. The error says why they cannot be read where it does.
pub(crate) fn read_listed(settings: &Settings) -> Result<Option<HashMap<String, bool>>, String> {
    let Some(path) = listed_file(settings)? else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        format!(
            "gpu-test: what nextest's list phase decided for this binary cannot be read from {} ({error}): did \
             the runtime directory change between listing and running?",
            path.display()
        )
    })?;
    Ok(Some(
        text.lines()
            .filter_map(|line| {
                let (state, name) = line.split_once('\t')?;
                Some((name.to_string(), state == "run"))
            })
            .collect(),
    ))
}

/// Whether this list phase can hand its decisions on: nextest 0.9.138 and newer tell it which run
/// and binary it lists for; under an older one, the run phase would not find them, and the report
/// would lose the skipped tests. The error says how to update.
pub(crate) fn check_list_phase(settings: &Settings) -> Result<(), String> {
    if settings.nextest.run_id.is_some() && settings.nextest.binary_id.is_some() {
        return Ok(());
    }
    Err("gpu-test: this cargo-nextest does not tell its list phase which run and test binary it lists for \
         (NEXTEST_RUN_ID and NEXTEST_BINARY_ID, set from nextest 0.9.138 on), so what the list phase decides \
         could not reach the run phase or the report: update it with `cargo install cargo-nextest --locked`"
        .to_string())
}

/// Records what the list phase decided for each test, for the run phase.
pub(crate) fn write_listed(settings: &Settings, decisions: &[(String, Decision)]) -> Result<(), String> {
    let Some(path) = listed_file(settings)? else {
        return Ok(());
    };
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
    write_atomically(&path, lines.as_bytes(), 0o600).map_err(|error| {
        format!(
            "gpu-test: could not record the listed tests in {}: {error}",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_lists_on(line: &str) -> bool {
        let arguments: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        only_lists(&arguments)
    }

    #[test]
    fn nextest_only_lists_under_list_show_config_and_no_run() {
        assert!(only_lists_on("/home/u/.cargo/bin/cargo-nextest nextest list"));
        assert!(only_lists_on("cargo-nextest nextest --color never list --workspace"));
        assert!(only_lists_on("cargo-nextest nextest show-config test-groups"));
        assert!(only_lists_on("cargo-nextest nextest run --workspace --no-run"));
        assert!(only_lists_on("cargo-nextest nextest -P ci b --no-run"));
        assert!(!only_lists_on("cargo-nextest nextest run -E test(list)"));
        assert!(!only_lists_on("cargo-nextest nextest r list"), "a filter named list");
        assert!(!only_lists_on("cargo-nextest nextest run --archive-file a.tar.zst -- list"));
        assert!(!only_lists_on("cargo-nextest nextest run -- --no-run"), "a test's argument");
        assert!(!only_lists_on("cargo-nextest nextest bench"));
        assert!(!only_lists_on("cargo-nextest nextest -P list run"), "a profile named list");
        assert!(!only_lists_on("cargo-nextest nextest -vP list run"), "a profile named list");
        assert!(!only_lists_on("cargo-nextest nextest --profile list --manifest-path show-config r"));
        assert!(!only_lists_on("cargo-nextest nextest ntr list"), "a filter named list");
        assert!(!only_lists_on("cargo-nextest"), "no subcommand: taken as a run");
    }

    #[test]
    fn nextest_runs_ignored_tests_under_run_ignored_all_or_only() {
        let runs_ignored_on = |line: &str| {
            let arguments: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
            runs_ignored(&arguments)
        };
        assert!(runs_ignored_on("cargo-nextest nextest run --run-ignored all"));
        assert!(runs_ignored_on("cargo-nextest nextest -P ci r --workspace --run-ignored=only"));
        assert!(runs_ignored_on("cargo-nextest nextest ntr --run-ignored ignored-only"));
        assert!(!runs_ignored_on("cargo-nextest nextest run --run-ignored default"));
        assert!(!runs_ignored_on("cargo-nextest nextest run"));
        assert!(!runs_ignored_on("cargo-nextest nextest run --run-ignored"), "no value");
        assert!(!runs_ignored_on("cargo-nextest nextest list --run-ignored all"), "no run");
        assert!(!runs_ignored_on("cargo-nextest nextest run -- --run-ignored all"), "a test's argument");
    }
}
