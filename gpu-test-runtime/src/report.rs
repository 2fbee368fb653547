//! `GPU_TEST_REPORT`: a JUnit or JSON file describing every GPU test of a run.
//!
//! Processes of one run (the test binaries of `cargo test`, or nextest's list phase and one
//! process per test) each merge their entries into a state file in the run's directory under a
//! lock, then render the whole report and rename it into place: no entry is lost and no reader
//! sees a half-written file.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::json::Json;
use crate::probe::Probe;
use crate::run_state::{self, stable_hash};
use crate::settings::{ReportFormat, ReportTarget, Settings};
use crate::skip::{SkipKind, SkipReason};

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The body ran and succeeded.
    Passed,
    /// The body failed, or (strict mode) a requirement was unmet.
    Failed,
    /// A requirement was unmet.
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        match text {
            "passed" => Some(Outcome::Passed),
            "failed" => Some(Outcome::Failed),
            "skipped" => Some(Outcome::Skipped),
            _ => None,
        }
    }
}

/// One test's line in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
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
    /// Timing lines, as the harness printed them.
    pub timings: Vec<Json>,
}

/// Why a test did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// It passed.
    None,
    /// A requirement was unmet (skipped, or failed in strict mode); shared by every test with
    /// the same reason.
    Unmet(Arc<SkipReason>),
    /// The body failed.
    Failure(String),
}

impl Entry {
    /// An entry for a test skipped (or, strict, failed) for `reason`.
    pub fn unmet(suite: &Arc<str>, name: &str, outcome: Outcome, reason: &Arc<SkipReason>) -> Entry {
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

    /// Why the test was skipped or failed.
    pub fn reason(&self) -> Option<&str> {
        match &self.cause {
            Cause::None => None,
            Cause::Unmet(reason) => Some(&reason.reason),
            Cause::Failure(message) => Some(message),
        }
    }

    /// The fix for an unmet requirement.
    pub fn hint(&self) -> Option<&str> {
        match &self.cause {
            Cause::Unmet(reason) => Some(&reason.hint),
            _ => None,
        }
    }

    /// The kind of unmet requirement (`no_driver`, ...).
    pub fn kind(&self) -> Option<&'static str> {
        match &self.cause {
            Cause::Unmet(reason) => Some(reason.kind.as_str()),
            _ => None,
        }
    }

    fn to_json(&self) -> Json {
        Json::object()
            .with("suite", &*self.suite)
            .with("name", self.name.as_str())
            .with("outcome", self.outcome.as_str())
            .with("reason", self.reason())
            .with("kind", self.kind())
            .with("hint", self.hint())
            .with("duration_s", self.duration.as_secs_f64())
            .with("devices", self.devices.clone())
            .with("timings", Json::Array(self.timings.clone()))
    }

    fn from_json(json: &Json) -> Option<Entry> {
        let text = |key: &str| json.get(key).and_then(Json::as_str).map(str::to_string);
        let kind = json.get("kind").and_then(Json::as_str).and_then(SkipKind::parse);
        let cause = match (kind, text("reason")) {
            (Some(kind), Some(reason)) => Cause::Unmet(Arc::new(SkipReason {
                kind,
                reason,
                hint: text("hint").unwrap_or_default(),
            })),
            (None, Some(message)) => Cause::Failure(message),
            (_, None) => Cause::None,
        };
        Some(Entry {
            suite: Arc::from(text("suite")?),
            name: text("name")?,
            outcome: Outcome::parse(json.get("outcome")?.as_str()?)?,
            cause,
            duration: Duration::from_secs_f64(
                json.get("duration_s")
                    .and_then(Json::as_f64)
                    .unwrap_or(0.0)
                    .max(0.0),
            ),
            devices: json
                .get("devices")
                .and_then(Json::as_array)
                .map(|d| d.iter().filter_map(Json::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            timings: json
                .get("timings")
                .and_then(Json::as_array)
                .map(<[Json]>::to_vec)
                .unwrap_or_default(),
        })
    }
}

/// What a test binary saw of the machine: reported once per suite.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteInfo {
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
    pub environment: Vec<(String, String)>,
}

impl SuiteInfo {
    /// Describes `probe` for the suite `suite`.
    pub fn new(suite: &str, probe: &Probe) -> SuiteInfo {
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
                        crate::skip::format_bytes(d.total_memory)
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

    fn to_json(&self) -> Json {
        let mut environment = Json::object();
        for (name, value) in &self.environment {
            environment = environment.with(name, value.as_str());
        }
        Json::object()
            .with("suite", self.suite.as_str())
            .with("probe", self.probe.as_str())
            .with("driver_release", self.driver_release.clone())
            .with("cuda_version", self.cuda_version.clone())
            .with("devices", self.devices.clone())
            .with("environment", environment)
    }

    fn from_json(json: &Json) -> Option<SuiteInfo> {
        let text = |key: &str| json.get(key).and_then(Json::as_str).map(str::to_string);
        let environment = match json.get("environment") {
            Some(Json::Object(fields)) => fields
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        Some(SuiteInfo {
            suite: text("suite")?,
            probe: text("probe").unwrap_or_default(),
            driver_release: text("driver_release"),
            cuda_version: text("cuda_version"),
            devices: json
                .get("devices")
                .and_then(Json::as_array)
                .map(|d| d.iter().filter_map(Json::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            environment,
        })
    }
}

/// The test binary's name without cargo's hash (`gpu` for `gpu-0f26593203894dfd`): the suite its
/// tests are reported under.
pub fn suite_name() -> Arc<str> {
    static NAME: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let exe = std::env::current_exe().ok();
        let stem = exe
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "gpu-tests".to_string());
        let name = match stem.rsplit_once('-') {
            Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
            _ => &stem,
        };
        Arc::from(name)
    })
    .clone()
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq)]
struct Report {
    run: String,
    suites: Vec<SuiteInfo>,
    entries: Vec<Entry>,
}

impl Report {
    fn parse(text: &str) -> Option<Report> {
        let json = Json::parse(text).ok()?;
        Some(Report {
            run: json.get("run")?.as_str()?.to_string(),
            suites: json
                .get("suites")?
                .as_array()?
                .iter()
                .filter_map(SuiteInfo::from_json)
                .collect(),
            entries: json
                .get("tests")?
                .as_array()?
                .iter()
                .filter_map(Entry::from_json)
                .collect(),
        })
    }

    fn merge(&mut self, suite: SuiteInfo, entries: Vec<Entry>) {
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

    fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }

    fn to_json(&self) -> Json {
        Json::object()
            .with("gpu_test_version", env!("CARGO_PKG_VERSION"))
            .with("run", self.run.as_str())
            .with(
                "summary",
                Json::object()
                    .with("tests", self.entries.len())
                    .with("passed", self.count(Outcome::Passed))
                    .with("failed", self.count(Outcome::Failed))
                    .with("skipped", self.count(Outcome::Skipped)),
            )
            .with(
                "suites",
                Json::Array(self.suites.iter().map(SuiteInfo::to_json).collect()),
            )
            .with(
                "tests",
                Json::Array(self.entries.iter().map(Entry::to_json).collect()),
            )
    }

    fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total_time: f64 = self.entries.iter().map(|e| e.duration.as_secs_f64()).sum();
        let _ = writeln!(
            out,
            "<testsuites name=\"gpu-test\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{total_time:.3}\">",
            self.entries.len(),
            self.count(Outcome::Failed),
            self.count(Outcome::Skipped)
        );
        for suite in &self.suites {
            let entries: Vec<&Entry> = self.entries.iter().filter(|e| *e.suite == *suite.suite).collect();
            let count = |o: Outcome| entries.iter().filter(|e| e.outcome == o).count();
            let time: f64 = entries.iter().map(|e| e.duration.as_secs_f64()).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{time:.3}\">",
                xml(&suite.suite),
                entries.len(),
                count(Outcome::Failed),
                count(Outcome::Skipped)
            );
            out.push_str("    <properties>\n");
            let mut property = |name: &str, value: &str| {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    xml(name),
                    xml(value)
                );
            };
            property("gpu-test.probe", &suite.probe);
            if let Some(release) = &suite.driver_release {
                property("gpu-test.driver_release", release);
            }
            if let Some(cuda) = &suite.cuda_version {
                property("gpu-test.cuda_version", cuda);
            }
            for (i, device) in suite.devices.iter().enumerate() {
                property(&format!("gpu-test.device.{i}"), device);
            }
            for (name, value) in &suite.environment {
                property(name, value);
            }
            out.push_str("    </properties>\n");
            for entry in entries {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    xml(&entry.name),
                    xml(&entry.suite),
                    entry.duration.as_secs_f64()
                );
                let message = match (entry.reason(), entry.hint()) {
                    (Some(reason), Some(hint)) => format!("{reason}; hint: {hint}"),
                    (Some(reason), None) => reason.to_string(),
                    _ => String::new(),
                };
                let mut details = String::new();
                if !entry.devices.is_empty() {
                    let _ = writeln!(details, "devices: {}", entry.devices.join(", "));
                }
                for timing in &entry.timings {
                    if let Some(line) = timing.get("line").and_then(Json::as_str) {
                        let _ = writeln!(details, "{line}");
                    }
                }
                match entry.outcome {
                    Outcome::Passed if details.is_empty() => out.push_str("/>\n"),
                    Outcome::Passed => {
                        let _ = write!(
                            out,
                            ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                            xml(&details)
                        );
                    }
                    Outcome::Skipped => {
                        let _ = write!(
                            out,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                            xml(&message)
                        );
                    }
                    Outcome::Failed => {
                        let _ = write!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                            xml(&message),
                            xml(entry.kind().unwrap_or("failure")),
                            xml(&message)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// Escapes text for XML attributes and content; characters XML 1.0 forbids become U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The report's path made absolute against the current directory.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Checks, before any test runs, that the report can be written: creates its directory and
/// opens the file. The error names the variable, the value and what would work.
pub fn check_writable(target: &ReportTarget) -> Result<(), String> {
    let path = absolute(&target.path);
    let result = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map(drop)
        });
    result.map_err(|error| {
        format!(
            "GPU_TEST_REPORT=\"{}\" is not valid: the report cannot be written at {} ({error}); give a path \
             in a directory this user can create and write",
            target.path.display(),
            path.display()
        )
    })
}

/// Records this process's entries in the run's report when `GPU_TEST_REPORT` asks for one; the
/// error names the report that could not be written.
pub fn record_if_wanted(settings: &Settings, probe: &Probe, entries: Vec<Entry>) -> Result<(), String> {
    let Some(target) = &settings.report else {
        return Ok(());
    };
    record(settings, target, SuiteInfo::new(&suite_name(), probe), entries).map_err(|error| {
        format!(
            "gpu-test: could not write the report GPU_TEST_REPORT={}: {error}",
            target.path.display()
        )
    })
}

/// Merges `entries` (and `suite`) into the run's report and rewrites the report file.
pub fn record(
    settings: &Settings,
    target: &ReportTarget,
    suite: SuiteInfo,
    entries: Vec<Entry>,
) -> io::Result<()> {
    let path = absolute(&target.path);
    let state = run_state::runtime_dir(settings)
        .join("reports")
        .join(format!("{:016x}.json", stable_hash(&path.to_string_lossy())));
    let run = run_state::run_id();

    run_state::update_locked(&state, |text| {
        let mut report = Report::parse(&text)
            .filter(|r| r.run == run)
            .unwrap_or_else(|| Report {
                run: run.clone(),
                ..Report::default()
            });
        report.merge(suite, entries);
        let rendered = match target.format {
            ReportFormat::Json => report.to_json().to_pretty(),
            ReportFormat::Junit => report.to_junit(),
        };
        // The report is written while the state's lock is held, so reports follow the state.
        let written = run_state::write_atomically(&path, rendered.as_bytes());
        (report.to_json().to_pretty(), written)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(name: &str) -> SuiteInfo {
        SuiteInfo {
            suite: name.to_string(),
            probe: "no CUDA driver, no devices".to_string(),
            driver_release: None,
            cuda_version: None,
            devices: Vec::new(),
            environment: vec![("CUDA_VISIBLE_DEVICES".to_string(), "0".to_string())],
        }
    }

    fn skipped(name: &str) -> Entry {
        let reason = SkipReason::new(
            SkipKind::TooFewDevices,
            "needs 2 CUDA devices, found <1>",
            "add \"GPUs\" & retry",
        );
        Entry::unmet(&Arc::from("gpu"), name, Outcome::Skipped, &Arc::new(reason))
    }

    #[test]
    fn junit_escapes_and_marks_skips() {
        let mut report = Report::default();
        report.merge(suite("gpu"), vec![skipped("a"), skipped("b")]);
        let xml = report.to_junit();
        assert!(
            xml.contains("<testsuites name=\"gpu-test\" tests=\"2\" failures=\"0\" skipped=\"2\""),
            "{xml}"
        );
        assert!(xml.contains(
            "<skipped message=\"needs 2 CUDA devices, found &lt;1&gt;; hint: add &quot;GPUs&quot; &amp; retry\"/>"
        ));
        assert!(xml.contains("<property name=\"CUDA_VISIBLE_DEVICES\" value=\"0\"/>"));
    }

    #[test]
    fn merging_replaces_by_suite_and_name() {
        let mut report = Report::default();
        report.merge(suite("gpu"), vec![skipped("a")]);
        let mut passed = skipped("a");
        passed.outcome = Outcome::Passed;
        report.merge(suite("gpu"), vec![passed, skipped("b")]);
        assert_eq!(report.entries.len(), 2);
        assert_eq!(report.entries[0].outcome, Outcome::Passed);
        let round_trip = Report::parse(&report.to_json().to_pretty()).unwrap();
        assert_eq!(round_trip, report);
    }
}
