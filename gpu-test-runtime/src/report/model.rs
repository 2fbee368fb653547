//! The result model: what happened to each GPU test of a run, and what each test binary saw of
//! its machine. Report files are rendered from it when written (`file`), and processes of one run
//! share it through a state file in the same form.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::RunOwner;
use crate::decide::skip::SkipReason;
use crate::probe::Probe;
use crate::run::Execution;
use crate::run::timing::Timing;
use crate::util::format::format_bytes;

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The body ran and succeeded.
    Passed,
    /// The body failed, or a requirement was unmet and the policy made that a failure.
    Failed,
    /// A requirement was unmet.
    Skipped,
}

/// Why a test did not pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Cause {
    /// It passed.
    None,
    /// A requirement was unmet (skipped, or failed by policy); shared by every test with the
    /// same reason.
    Unmet(Arc<SkipReason>),
    /// The body failed.
    Failure(String),
}

/// One test's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The test binary (JUnit's test suite).
    pub suite: Arc<str>,
    /// The test's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was skipped or failed.
    pub cause: Cause,
    /// How long the body ran.
    pub duration: Duration,
    /// Devices the body ran on (`device 0 NVIDIA H100 (GPU-...)`).
    pub devices: Vec<String>,
    /// The regions the body timed.
    pub timings: Vec<Timing>,
}

impl Entry {
    /// A test that did not run because `reason` is unmet: skipped, or failed by policy.
    pub(crate) fn unmet(suite: &Arc<str>, name: &str, outcome: Outcome, reason: &Arc<SkipReason>) -> Entry {
        Entry {
            suite: suite.clone(),
            name: name.to_string(),
            outcome,
            cause: Cause::Unmet(reason.clone()),
            duration: Duration::ZERO,
            devices: Vec::new(),
            timings: Vec::new(),
        }
    }

    /// A test whose body was executed.
    pub(crate) fn executed(suite: &Arc<str>, name: &str, execution: &Execution) -> Entry {
        let (outcome, cause) = match &execution.outcome {
            Ok(()) => (Outcome::Passed, Cause::None),
            Err(failure) => (Outcome::Failed, Cause::Failure(failure.describe())),
        };
        Entry {
            suite: suite.clone(),
            name: name.to_string(),
            outcome,
            cause,
            duration: execution.duration,
            devices: execution.devices.clone(),
            timings: execution.timings.clone(),
        }
    }

    /// Why the test was skipped or failed.
    pub(crate) fn reason(&self) -> Option<&str> {
        match &self.cause {
            Cause::None => None,
            Cause::Unmet(reason) => Some(&reason.reason),
            Cause::Failure(message) => Some(message),
        }
    }

    /// The fix for an unmet requirement.
    pub(crate) fn hint(&self) -> Option<&str> {
        match &self.cause {
            Cause::Unmet(reason) => Some(&reason.hint),
            _ => None,
        }
    }

    /// The kind of unmet requirement (`no_driver`, ...).
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match &self.cause {
            Cause::Unmet(reason) => Some(reason.kind.as_str()),
            _ => None,
        }
    }

    /// `reason; hint: hint`, or the failure, or nothing.
    pub(crate) fn message(&self) -> String {
        match (self.reason(), self.hint()) {
            (Some(reason), Some(hint)) => format!("{reason}; hint: {hint}"),
            (Some(reason), None) => reason.to_string(),
            _ => String::new(),
        }
    }
}

/// What a test binary saw of the machine: reported once per suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SuiteInfo {
    /// The test binary.
    pub suite: String,
    /// The probe's one-line summary.
    pub probe: String,
    /// The driver release, when known.
    pub driver_release: Option<String>,
    /// The CUDA version the driver supports.
    pub cuda_version: Option<String>,
    /// `0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)` per device.
    pub devices: Vec<String>,
    /// The CUDA-related variables that are set (never the whole environment).
    pub environment: BTreeMap<String, String>,
}

impl SuiteInfo {
    /// Describes `probe` for the suite `suite`.
    pub(crate) fn new(suite: &str, probe: &Probe) -> SuiteInfo {
        SuiteInfo {
            suite: suite.to_string(),
            probe: probe.summary(),
            driver_release: probe.driver_release().map(str::to_string),
            cuda_version: probe.driver.cuda_version.map(|v| v.to_string()),
            devices: probe
                .devices
                .iter()
                .map(|d| {
                    format!(
                        "{} {} ({}, {})",
                        d.ordinal,
                        d.name,
                        d.compute_capability.sm(),
                        format_bytes(d.total_memory)
                    )
                })
                .collect(),
            environment: probe
                .environment
                .set_variables()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The whole report of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    /// The run the entries belong to.
    pub run: String,
    /// The process whose life is the run's (cargo or nextest), to tell a finished run from one
    /// still going.
    #[serde(default)]
    pub owner: Option<RunOwner>,
    /// One per test binary.
    pub suites: Vec<SuiteInfo>,
    /// One per test, sorted by suite and name.
    pub entries: Vec<Entry>,
}

impl Report {
    /// Adds a process's suite and entries; a test recorded again replaces its earlier entry.
    pub(crate) fn merge(&mut self, suite: SuiteInfo, entries: Vec<Entry>) {
        match self.suites.iter_mut().find(|s| s.suite == suite.suite) {
            Some(existing) => *existing = suite,
            None => self.suites.push(suite),
        }
        for entry in entries {
            match self
                .entries
                .iter_mut()
                .find(|e| e.suite == entry.suite && e.name == entry.name)
            {
                Some(existing) => *existing = entry,
                None => self.entries.push(entry),
            }
        }
        self.suites.sort_by(|a, b| a.suite.cmp(&b.suite));
        self.entries
            .sort_by(|a, b| (&a.suite, &a.name).cmp(&(&b.suite, &b.name)));
    }

    /// How many tests ended so.
    pub(crate) fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }
}
