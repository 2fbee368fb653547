//! nextest's two phases: it lists the tests (`--list`), then runs each in a process of its own.
//! What the list phase decided is recorded in the run's directory, so that a test listed to run
//! whose requirements are unmet in its own process fails rather than passes.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::decide::Decision;
use crate::report::state::run_dir;
use crate::settings::Settings;
use crate::util::files::{sanitize, write_atomically};

/// Which kind of invocation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `cargo test`, or the binary run by hand.
    Plain,
    /// nextest listing the tests.
    List,
    /// nextest running one test.
    Run,
}

impl Phase {
    /// The phase of this process; `listing` is whether libtest's `--list` was given.
    pub(crate) fn detect(settings: &Settings, listing: bool) -> Phase {
        match settings.nextest.phase.as_deref() {
            Some("list") if listing => Phase::List,
            Some("run") => Phase::Run,
            _ => Phase::Plain,
        }
    }
}

/// The file in the run directory where the list phase records, for this binary, which tests it
/// listed to run.
fn listed_file(settings: &Settings) -> Option<PathBuf> {
    let binary = settings.nextest.binary_id.as_ref()?;
    let dir = run_dir(settings).ok()?;
    Some(dir.join(format!("listed-{}", sanitize(binary))))
}

/// The list phase's decisions: test name to whether it was listed to run.
pub(crate) fn read_listed(settings: &Settings) -> Option<HashMap<String, bool>> {
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
    let Some(path) = listed_file(settings) else {
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
