//! The result model: what happened to each GPU test of a run, and what each test binary saw of
//! its machine. Report files are rendered from it when written (`file`), and processes of one run
//! share it through a state file (`store`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decide::skip::SkipReason;
use crate::probe::{DeviceInfo, Probe};
use crate::run::Execution;
use crate::run::body::BodyFailure;
use crate::run::timing::Timing;
use crate::util::format::format_bytes;

/// Where a test is defined: `file!()` and `line!()` of the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    /// The source file, relative to the workspace root when cargo built it.
    pub file: &'static str,
    /// The line.
    pub line: u32,
}

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
    /// It outlived a time limit (its `timeout`, or the probe's before the body): why, in words.
    TimedOut(String),
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
    /// For one device's run of an `each_device` test, the test's own name: runs on different
    /// machines are named by different devices, and are one test.
    #[serde(default)]
    pub each_device_of: Option<String>,
    /// Where the test is defined (`file!()`), for annotations on its code.
    #[serde(default)]
    pub file: Option<String>,
    /// The line of the definition (`line!()`).
    #[serde(default)]
    pub line: Option<u32>,
    /// How long the body ran.
    pub duration: Duration,
    /// Devices the body ran on.
    pub devices: Vec<DeviceRecord>,
    /// The regions the body timed.
    pub timings: Vec<Timing>,
    /// nextest's attempt at the test (`NEXTEST_ATTEMPT`): 1, unless `--retries` ran it again.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// nextest's name for the attempt (`NEXTEST_ATTEMPT_ID`), unique in the run: a failure of
    /// another attempt is kept when this one replaces it.
    #[serde(default)]
    pub attempt_id: Option<String>,
    /// The iteration of nextest's `--stress-count` that recorded it (`NEXTEST_STRESS_CURRENT`).
    #[serde(default)]
    pub stress_iteration: Option<u32>,
    /// How earlier attempts of this run failed: a test that then passed is flaky.
    #[serde(default)]
    pub earlier_failures: Vec<String>,
    /// The first iteration of nextest's `--stress-count` in which the test failed (for good,
    /// not only before a retry passed): the stress run fails, whatever later iterations do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_iteration: Option<u32>,
    /// Whether it is failed for `failed_iteration` alone, its own iteration having ended
    /// otherwise: not a failure of its own for a later iteration's `earlier_failures`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed_for_an_earlier_iteration: bool,
}

fn first_attempt() -> u32 {
    1
}

/// A device as reports record it: enough to tell later which GPUs a test ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    /// The CUDA ordinal in the process that used it.
    pub ordinal: usize,
    /// The marketing name.
    pub name: String,
    /// `9.0` for sm_90.
    pub compute_capability: String,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// `GPU-...`, when the driver told.
    pub uuid: Option<String>,
}

impl DeviceRecord {
    /// Records `info`.
    pub(crate) fn of(info: &DeviceInfo) -> DeviceRecord {
        DeviceRecord {
            ordinal: info.ordinal,
            name: info.name.clone(),
            compute_capability: info.compute_capability.to_string(),
            memory_bytes: info.total_memory,
            uuid: info.uuid.clone(),
        }
    }

    /// `device 0 NVIDIA H100 (GPU-...)`: a device the body ran on, as printed after it.
    pub(crate) fn label(&self) -> String {
        match &self.uuid {
            Some(uuid) => format!("device {} {} ({uuid})", self.ordinal, self.name),
            None => format!("device {} {}", self.ordinal, self.name),
        }
    }

    /// `0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)`: a device a test binary saw.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} {} (sm_{}, {})",
            self.ordinal,
            self.name,
            self.compute_capability.replace('.', ""),
            format_bytes(self.memory_bytes)
        )
    }
}

impl Entry {
    /// An entry of `name` ending as `outcome` for `cause`, nothing else known yet.
    fn new(suite: &Arc<str>, name: &str, outcome: Outcome, cause: Cause) -> Entry {
        Entry {
            suite: suite.clone(),
            name: name.to_string(),
            outcome,
            cause,
            each_device_of: None,
            file: None,
            line: None,
            duration: Duration::ZERO,
            devices: Vec::new(),
            timings: Vec::new(),
            attempt: 1,
            attempt_id: None,
            stress_iteration: None,
            earlier_failures: Vec::new(),
            failed_iteration: None,
            failed_for_an_earlier_iteration: false,
        }
    }

    /// A test that did not run because `reason` is unmet: skipped, or failed by policy.
    pub(crate) fn unmet(suite: &Arc<str>, name: &str, outcome: Outcome, reason: &Arc<SkipReason>) -> Entry {
        Entry::new(suite, name, outcome, Cause::Unmet(reason.clone()))
    }

    /// A test on its way to its body (holding its devices, or waiting for them), as a failure
    /// that stands if its process ends before it records how the test did: a crash, a signal,
    /// nextest's `terminate-after`.
    pub(crate) fn started(suite: &Arc<str>, name: &str) -> Entry {
        let cause = Cause::Failure(
            "its process ended before gpu-test could record how the test did: the test, or one running beside \
             it in the same process, crashed or exited, or the process was killed (a signal, or nextest's \
             slow-timeout terminate-after)"
                .to_string(),
        );
        Entry::new(suite, name, Outcome::Failed, cause)
    }

    /// A test whose body was executed.
    pub(crate) fn executed(suite: &Arc<str>, name: &str, execution: &Execution) -> Entry {
        let (outcome, cause) = match &execution.outcome {
            Ok(()) => (Outcome::Passed, Cause::None),
            Err(failure @ BodyFailure::TimedOut { .. }) => (Outcome::Failed, Cause::TimedOut(failure.describe())),
            Err(failure) => (Outcome::Failed, Cause::Failure(failure.describe())),
        };
        Entry {
            duration: execution.duration,
            devices: execution.devices.iter().map(DeviceRecord::of).collect(),
            timings: execution.timings.clone(),
            ..Entry::new(suite, name, outcome, cause)
        }
    }

    /// Why the test was skipped or failed.
    pub(crate) fn reason(&self) -> Option<&str> {
        match &self.cause {
            Cause::None => None,
            Cause::Unmet(reason) => Some(&reason.reason),
            Cause::Failure(message) | Cause::TimedOut(message) => Some(message),
        }
    }

    /// The fix for an unmet requirement.
    pub(crate) fn hint(&self) -> Option<&str> {
        match &self.cause {
            Cause::Unmet(reason) => Some(&reason.hint),
            _ => None,
        }
    }

    /// The kind of unmet requirement (`no_driver`, ...), or `timed_out` for a test that outlived
    /// a time limit, so that a report's reader can tell a hang from a failure.
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match &self.cause {
            Cause::Unmet(reason) => Some(reason.kind.as_str()),
            Cause::TimedOut(_) => Some("timed_out"),
            _ => None,
        }
    }

    /// Places the entry at its definition.
    pub(crate) fn at(mut self, file: &str, line: u32) -> Entry {
        self.file = Some(file.to_string());
        self.line = Some(line);
        self
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
    /// The devices the binary saw.
    pub devices: Vec<DeviceRecord>,
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
            devices: probe.devices.iter().map(DeviceRecord::of).collect(),
            environment: probe
                .environment
                .set_variables()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// What orders a report's entries and tells them apart: suite, then name.
pub(crate) fn test_key(entry: &Entry) -> (&str, &str) {
    (&entry.suite, &entry.name)
}

impl Entry {
    /// This entry in the place of `existing`, its test's earlier entry in the run, keeping how
    /// earlier attempts failed (nextest's retries), so that a failure is never replaced by a
    /// later pass unseen.
    pub(crate) fn superseding(mut self, mut existing: Entry) -> Entry {
        let mut earlier = std::mem::take(&mut existing.earlier_failures);
        // The same attempt recorded again (its final entry over its provisional one) replaces
        // itself; another attempt's failure is kept. Attempts are told apart by nextest's attempt
        // id, else (a nextest that sets none) by their stress iterations and numbers.
        let another_attempt = match (&existing.attempt_id, &self.attempt_id) {
            (Some(earlier), Some(this)) => earlier != this,
            _ => (existing.stress_iteration, existing.attempt) != (self.stress_iteration, self.attempt),
        };
        if existing.outcome == Outcome::Failed && another_attempt && !existing.failed_for_an_earlier_iteration {
            let mut attempt = match existing.stress_iteration {
                Some(iteration) => format!("stress iteration {iteration}, attempt {}", existing.attempt),
                None => format!("attempt {}", existing.attempt),
            };
            // A retry may run on another GPU: where the failing attempt ran.
            if !existing.devices.is_empty() {
                let labels: Vec<String> = existing.devices.iter().map(DeviceRecord::label).collect();
                attempt.push_str(&format!(" on {}", labels.join(", ")));
            }
            earlier.push(format!("{attempt}: {}", existing.message()));
        }
        earlier.append(&mut self.earlier_failures);
        self.earlier_failures = earlier;
        // A stress run fails where one of its iterations failed: a later iteration that passes
        // (a retry within an iteration is another matter: flaky) does not make the test pass.
        let failed_before = existing.failed_iteration.or(existing
            .stress_iteration
            .filter(|&iteration| existing.outcome == Outcome::Failed && Some(iteration) != self.stress_iteration));
        if let Some(iteration) = failed_before
            && self.outcome != Outcome::Failed
        {
            self.outcome = Outcome::Failed;
            self.failed_for_an_earlier_iteration = true;
            self.cause = Cause::Failure(format!(
                "failed in stress iteration {iteration} (its failure is among the earlier ones), which fails the \
                 stress run, though a later iteration ended otherwise"
            ));
        }
        self.failed_iteration = self.failed_iteration.or(failed_before);
        self
    }
}
