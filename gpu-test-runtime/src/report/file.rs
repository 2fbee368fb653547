//! `GPU_TEST_REPORT`: a JUnit or JSON file describing every GPU test of a run.
//!
//! Processes of one run (the test binaries of `cargo test`, or nextest's list phase and one
//! process per test) each merge their entries into the run's [`Report`] in a state file under a
//! lock, then render the whole report in the format asked for and rename it into place: no entry
//! is lost and no reader sees a half-written file.

use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::console::timing_line;
use super::model::{DeviceRecord, Entry, Outcome, Report, SuiteInfo};
use super::state::{RunOwner, STALE_AFTER, run_id, run_owner};
use crate::probe::Probe;
use crate::run::timing::Timing;
use crate::settings::{ReportFormat, ReportTarget, Settings};
use crate::util::files::{
    create_private_dirs, open_existing, open_lock_file, remove_stale_states, stable_hash, update_locked_then, write_atomically,
};

/// The JSON report's layout.
#[derive(Serialize)]
struct JsonReport<'a> {
    gpu_test_version: &'static str,
    run: &'a str,
    /// When this file was written (UTC, RFC 3339): the date a ledger of many runs shows.
    written_at: String,
    /// The machine's host name, to tell runs on several machines apart.
    host: Option<String>,
    summary: JsonSummary,
    suites: &'a [SuiteInfo],
    // `tests` follows, each entry's text made once (`EntryTexts`).
}

#[derive(Serialize)]
struct JsonSummary {
    tests: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    suite: &'a str,
    name: &'a str,
    each_device_of: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<u32>,
    outcome: Outcome,
    reason: Option<&'a str>,
    kind: Option<&'static str>,
    hint: Option<&'a str>,
    duration_s: f64,
    devices: &'a [DeviceRecord],
    timings: Vec<JsonTiming<'a>>,
    /// nextest's attempt that ended so: more than 1 after `--retries`.
    attempt: u32,
    /// How the earlier attempts failed: a test that passed after them is flaky.
    earlier_failures: &'a [String],
}

/// A timed region in milliseconds, with the line the harness printed for it.
#[derive(Serialize)]
struct JsonTiming<'a> {
    label: &'a str,
    device: &'a str,
    count: usize,
    total_ms: f64,
    min_ms: f64,
    median_ms: f64,
    max_ms: f64,
    line: String,
}

impl<'a> JsonTiming<'a> {
    fn new(test: &str, timing: &'a Timing) -> JsonTiming<'a> {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        JsonTiming {
            label: &timing.label,
            device: &timing.device,
            count: timing.count,
            total_ms: ms(timing.total),
            min_ms: ms(timing.min),
            median_ms: ms(timing.median),
            max_ms: ms(timing.max),
            line: timing_line(test, timing),
        }
    }
}

/// The JSON report of `report`, each entry's part taken from (or made once into) `texts`.
fn render_json(report: &Report, texts: &mut EntryTexts) -> String {
    let json = JsonReport {
        gpu_test_version: env!("CARGO_PKG_VERSION"),
        run: &report.run,
        written_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        host: host_name(),
        summary: JsonSummary {
            tests: report.entries.len(),
            passed: report.count(Outcome::Passed),
            failed: report.count(Outcome::Failed),
            skipped: report.count(Outcome::Skipped),
        },
        suites: &report.suites,
    };
    let head = serde_json::to_string_pretty(&json).unwrap_or_default();
    // The object without its closing brace, then `tests` as its last field.
    let mut text = head.strip_suffix("\n}").unwrap_or(&head).to_string();
    if report.entries.is_empty() {
        text.push_str(",\n  \"tests\": []\n}\n");
        return text;
    }
    text.push_str(",\n  \"tests\": [\n");
    for (i, entry) in report.entries.iter().enumerate() {
        if i > 0 {
            text.push_str(",\n");
        }
        text.push_str(texts.json(entry));
    }
    text.push_str("\n  ]\n}\n");
    text
}

/// One entry of the JSON report, pretty, indented as an element of its `tests`.
fn json_entry(entry: &Entry) -> String {
    let json = JsonEntry {
        suite: &entry.suite,
        name: &entry.name,
        each_device_of: entry.each_device_of.as_deref(),
        file: entry.file.as_deref(),
        line: entry.line,
        outcome: entry.outcome,
        reason: entry.reason(),
        kind: entry.kind(),
        hint: entry.hint(),
        duration_s: entry.duration.as_secs_f64(),
        devices: &entry.devices,
        timings: entry
            .timings
            .iter()
            .map(|t| JsonTiming::new(&entry.name, t))
            .collect(),
        attempt: entry.attempt,
        earlier_failures: &entry.earlier_failures,
    };
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    let mut text = String::with_capacity(pretty.len() + 256);
    for (i, line) in pretty.lines().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str("    ");
        text.push_str(line);
    }
    text
}

/// The report state of `report` (what `serde_json::to_string(report)` writes), each entry's part
/// taken from (or made once into) `texts`.
fn state_text(report: &Report, texts: &mut EntryTexts) -> String {
    fn compact<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
    let mut text = format!(
        "{{\"run\":{},\"owner\":{},\"suites\":{},\"entries\":[",
        compact(&report.run),
        compact(&report.owner),
        compact(&report.suites)
    );
    for (i, entry) in report.entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(texts.state(entry));
    }
    text.push_str("]}");
    text
}

/// Each entry's texts, made once while the entry stays the same: a process writes the whole report
/// as each body starts and ends, and serialising every entry again for each write made what a
/// report costs grow with the square of the tests.
#[derive(Default)]
pub(crate) struct EntryTexts {
    by_test: std::collections::HashMap<String, Texts>,
}

/// One entry's texts, made as they are asked for.
struct Texts {
    entry: Entry,
    state: Option<String>,
    json: Option<String>,
    junit: Option<String>,
}

impl EntryTexts {
    /// The texts of `entry`, emptied where the entry changed since they were made.
    fn of(&mut self, entry: &Entry) -> &mut Texts {
        let key = format!("{}\u{0}{}", entry.suite, entry.name);
        let texts = self.by_test.entry(key).or_insert_with(|| Texts {
            entry: entry.clone(),
            state: None,
            json: None,
            junit: None,
        });
        if texts.entry != *entry {
            *texts = Texts {
                entry: entry.clone(),
                state: None,
                json: None,
                junit: None,
            };
        }
        texts
    }

    fn state(&mut self, entry: &Entry) -> &str {
        self.of(entry)
            .state
            .get_or_insert_with(|| serde_json::to_string(entry).unwrap_or_default())
    }

    fn json(&mut self, entry: &Entry) -> &str {
        self.of(entry).json.get_or_insert_with(|| json_entry(entry))
    }

    fn junit(&mut self, entry: &Entry) -> &str {
        self.of(entry).junit.get_or_insert_with(|| junit_testcase(entry))
    }
}

/// The host name the kernel reports, if it can be read.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

fn render_junit(report: &Report, texts: &mut EntryTexts) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_time: f64 = report.entries.iter().map(|e| e.duration.as_secs_f64()).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"gpu-test\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{total_time:.3}\">",
        report.entries.len(),
        report.count(Outcome::Failed),
        report.count(Outcome::Skipped)
    );
    for suite in &report.suites {
        let entries: Vec<&Entry> = report
            .entries
            .iter()
            .filter(|e| *e.suite == *suite.suite)
            .collect();
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
            property(&format!("gpu-test.device.{i}"), &device.summary());
        }
        for (name, value) in &suite.environment {
            property(name, value);
        }
        out.push_str("    </properties>\n");
        for entry in entries {
            out.push_str(texts.junit(entry));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// One entry of the JUnit report: its `<testcase>` element, indented as in its `<testsuite>`.
fn junit_testcase(entry: &Entry) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
        xml(&entry.name),
        xml(&entry.suite),
        entry.duration.as_secs_f64()
    );
    let message = entry.message();
    let mut details = String::new();
    if !entry.devices.is_empty() {
        let labels: Vec<String> = entry.devices.iter().map(DeviceRecord::label).collect();
        let _ = writeln!(details, "devices: {}", labels.join(", "));
    }
    for timing in &entry.timings {
        let _ = writeln!(details, "{}", timing_line(&entry.name, timing));
    }
    // Earlier attempts' failures, as Maven Surefire writes reruns: `flakyFailure` where the
    // test then passed, `rerunFailure` where it failed again.
    let rerun = if entry.outcome == Outcome::Passed {
        "flakyFailure"
    } else {
        "rerunFailure"
    };
    let reruns: String = entry
        .earlier_failures
        .iter()
        .map(|failure| format!("      <{rerun} message=\"{}\" type=\"failure\"/>\n", xml(failure)))
        .collect();
    match entry.outcome {
        Outcome::Passed if details.is_empty() && reruns.is_empty() => out.push_str("/>\n"),
        Outcome::Passed if details.is_empty() => {
            let _ = write!(out, ">\n{reruns}    </testcase>\n");
        }
        Outcome::Passed => {
            let _ = write!(
                out,
                ">\n{reruns}      <system-out>{}</system-out>\n    </testcase>\n",
                xml(&details)
            );
        }
        Outcome::Skipped => {
            let _ = write!(
                out,
                ">\n      <skipped message=\"{}\"/>\n{reruns}    </testcase>\n",
                xml(&message)
            );
        }
        Outcome::Failed => {
            let _ = write!(
                out,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n{reruns}    </testcase>\n",
                xml(&message),
                xml(entry.kind().unwrap_or("failure")),
                xml(&message)
            );
        }
    }
    out
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
            // As references: a parser turns a raw newline, tab or carriage return in an attribute
            // into a space.
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The report's path made absolute against the current directory, through its directory's
/// real path once that exists: processes started in different directories, or naming the
/// report through a symbolic link, then agree on one file and so on one state.
fn absolute(path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let real_dir = path.parent().and_then(|dir| std::fs::canonicalize(dir).ok());
    match (real_dir, path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path,
    }
}

/// How much of an existing file is read to tell whether it is a report: both formats say so in
/// their first lines.
const REPORT_MARK_WITHIN: u64 = 64 * 1024;

/// Whether `text` is a report gpu-test wrote (or nothing at all), which a new run may replace.
fn is_a_report(text: &str) -> bool {
    text.trim().is_empty()
        || text.contains("<testsuites name=\"gpu-test\"")
        || (text.trim_start().starts_with('{') && text.contains("\"gpu_test_version\""))
}

/// The start of what is at the report's path, if anything, read without following a link and
/// without waiting on a FIFO someone put there: only a regular file is read.
fn read_existing(path: &Path) -> Result<Option<String>, String> {
    let mut file = match open_existing(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err("is a symbolic link; gpu-test replaces only a report file of its own".to_string());
        }
        Err(error) => return Err(format!("cannot be read ({error})")),
    };
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !regular {
        return Err("is not a regular file".to_string());
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, REPORT_MARK_WITHIN), &mut bytes)
        .map_err(|error| format!("cannot be read ({error})"))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Checks, before any test runs, that the report can be written: its directory is created, a
/// file there that is not a gpu-test report is left alone with an error, and a temporary file
/// can be made beside it (and is removed again). Nothing is left at the report's path. The
/// error names the variable, the value and what would work.
pub(crate) fn check_writable(target: &ReportTarget) -> Result<(), String> {
    let path = absolute(&target.path);
    let invalid = |what: String| {
        format!(
            "GPU_TEST_REPORT=\"{}\" is not valid: {what}",
            target.path.display()
        )
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|error| {
        invalid(format!(
            "its directory {} cannot be created ({error}); give a path in a directory this user can create \
             and write",
            dir.display()
        ))
    })?;
    match read_existing(&path) {
        Ok(Some(text)) if !is_a_report(&text) => {
            return Err(invalid(format!(
                "{} exists and is not a gpu-test report, so it is not overwritten; remove it or give another path",
                path.display()
            )));
        }
        Ok(_) => {}
        Err(why) => return Err(invalid(format!("{} {why}", path.display()))),
    }
    let probe = dir.join(format!(".gpu-test-check.{}.tmp", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    created.map(drop).map_err(|error| {
        invalid(format!(
            "the report cannot be written in {} ({error}); give a path in a directory this user can write",
            dir.display()
        ))
    })
}

/// Checks, before any test runs, that the run's report state can be kept in the runtime
/// directory.
pub(crate) fn check_state(settings: &Settings) -> Result<(), String> {
    let reports = settings.runtime_dir.join("reports");
    create_private_dirs(&reports)
        .and_then(|()| open_lock_file(&reports.join("check.lock")).map(drop))
        .map_err(|error| format!("{} cannot be used ({error})", reports.display()))
}

/// Records this process's entries in the run's report when `GPU_TEST_REPORT` asks for one; the
/// error names the report that could not be written.
pub(crate) fn record_if_wanted(
    settings: &Settings,
    probe: &Probe,
    suite: &str,
    entries: Vec<Entry>,
) -> Result<(), String> {
    let Some(target) = &settings.report else {
        return Ok(());
    };
    record(settings, target, SuiteInfo::new(suite, probe), entries).map_err(|error| {
        format!(
            "gpu-test: could not write the report GPU_TEST_REPORT={}: {error}",
            target.path.display()
        )
    })
}

/// The report state this process wrote last, with its path and text. A process that writes the
/// report again (as each body starts and ends under `cargo test`) mostly reads back its own last
/// write, which it then need not parse; any other text at the path is parsed.
static LAST_WRITTEN: Mutex<Option<(PathBuf, String, Report)>> = Mutex::new(None);

/// The texts of the entries this process has written.
static ENTRY_TEXTS: Mutex<Option<EntryTexts>> = Mutex::new(None);

/// Merges `entries` (and `suite`) into the run's report and rewrites the report file. The
/// report of an earlier run is replaced; one of a run still going is not, and that is an error.
fn record(
    settings: &Settings,
    target: &ReportTarget,
    suite: SuiteInfo,
    mut entries: Vec<Entry>,
) -> Result<(), String> {
    let attempt = settings.nextest.attempt.unwrap_or(1);
    for entry in &mut entries {
        entry.attempt = attempt;
        entry.attempt_id.clone_from(&settings.nextest.attempt_id);
        entry.stress_iteration = settings.nextest.stress_iteration;
    }
    let nothing_to_record = entries.is_empty();
    let path = absolute(&target.path);
    let state = settings
        .runtime_dir
        .join("reports")
        .join(format!("{:016x}.json", stable_hash(&path.to_string_lossy())));
    let run = run_id(settings);
    let owner = run_owner();
    // A state untouched for a day is kept while its run goes on: this one, or another whose
    // cargo or nextest still runs.
    let still_going = |text: &str| {
        serde_json::from_str::<Report>(text)
            .is_ok_and(|state| state.run == run || state.owner.is_some_and(RunOwner::is_alive))
    };
    // Once per process: a process writes the report as each body starts and ends.
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| remove_stale_states(&settings.runtime_dir.join("reports"), STALE_AFTER, &still_going));

    let merged = |text: String| {
        // A state this run wrote but that cannot be read back holds entries of the run's other
        // processes: starting anew would drop them silently.
        let cached = LAST_WRITTEN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .filter(|(at, written, _)| *at == state && *written == text);
        let parsed = match cached {
            Some((_, _, report)) => Ok(report),
            None => serde_json::from_str::<Report>(&text),
        };
        if let Err(error) = &parsed {
            let run_of_state = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|value| value.get("run").and_then(|r| r.as_str()).map(str::to_string));
            if run_of_state.as_deref() == Some(run.as_str()) {
                return (
                    text,
                    Err(format!(
                        "this run's report state in {} cannot be read ({error}), and writing over it would lose \
                         the entries of this run's other processes; remove it and run again",
                        state.display()
                    )),
                );
            }
        }
        let mut report = match parsed {
            Ok(report) if report.run == run => report,
            Ok(report) if report.owner.is_some_and(|o| Some(o) != owner && o.is_alive()) => {
                // A run with nothing to record (its filters left out every GPU test) leaves the
                // other run's report alone.
                if nothing_to_record {
                    return (text, Ok(None));
                }
                let other = report.owner.map(|o| o.pid).unwrap_or_default();
                return (
                    text,
                    Err(format!(
                        "another test run (started by process {other}, which is still running) is writing the \
                         same report, and the two would lose each other's entries; give each run its own \
                         GPU_TEST_REPORT, or run them one after the other"
                    )),
                );
            }
            // An earlier run's report (or none, or one that cannot be read): this run starts anew.
            _ => Report {
                run: run.clone(),
                owner,
                ..Report::default()
            },
        };
        report.merge(suite, entries);
        let mut texts = ENTRY_TEXTS.lock().unwrap_or_else(|p| p.into_inner());
        let texts = texts.get_or_insert_with(EntryTexts::default);
        let rendered = match target.format {
            ReportFormat::Json => render_json(&report, texts),
            ReportFormat::Junit => render_junit(&report, texts),
        };
        let written = state_text(&report, texts);
        *LAST_WRITTEN.lock().unwrap_or_else(|p| p.into_inner()) = Some((state.clone(), written.clone(), report));
        (written, Ok(Some(rendered)))
    };
    // The report is written after the state and while its lock is held: a process that dies in
    // between leaves a state that has its entries, which the next rewrite puts in the report.
    let write_report = |rendered: Result<Option<String>, String>| match rendered? {
        Some(rendered) => write_atomically(&path, rendered.as_bytes(), 0o644).map_err(|error| error.to_string()),
        None => Ok(()),
    };
    let recorded = update_locked_then(&state, merged, write_report);
    match recorded {
        Ok(result) => result,
        Err(error) => Err(format!(
            "its state in {} cannot be kept ({error})",
            state.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use crate::decide::skip::{SkipKind, SkipReason};
    use crate::report::model::Cause;

    fn suite(name: &str) -> SuiteInfo {
        SuiteInfo {
            suite: name.to_string(),
            probe: "no CUDA driver, no devices".to_string(),
            driver_release: None,
            cuda_version: None,
            devices: Vec::new(),
            environment: [("CUDA_VISIBLE_DEVICES".to_string(), "0".to_string())].into(),
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
        let xml = render_junit(&report, &mut EntryTexts::default());
        assert!(
            xml.contains("<testsuites name=\"gpu-test\" tests=\"2\" failures=\"0\" skipped=\"2\""),
            "{xml}"
        );
        assert!(xml.contains(
            "<skipped message=\"needs 2 CUDA devices, found &lt;1&gt;; hint: add &quot;GPUs&quot; &amp; retry\"/>"
        ));
        assert!(xml.contains("<property name=\"CUDA_VISIBLE_DEVICES\" value=\"0\"/>"));
        // What XML 1.0 forbids is replaced; what a parser would turn into a space is a reference.
        assert_eq!(super::xml("a\u{1}b\u{ffff}c\u{fffe}"), "a\u{fffd}b\u{fffd}c\u{fffd}");
        assert_eq!(super::xml("x\ty\r\nz"), "x&#9;y&#13;&#10;z");
    }

    #[test]
    fn a_retry_keeps_the_failures_before_it() {
        let mut report = Report::default();
        let mut failed = skipped("a");
        failed.outcome = Outcome::Failed;
        failed.attempt_id = Some("run:gpu@a#1".to_string());
        report.merge(suite("gpu"), vec![failed.clone()]);
        // The same attempt again (the final entry over the one recorded as the body started):
        // nothing is kept.
        report.merge(suite("gpu"), vec![failed.clone()]);
        assert!(report.entries[0].earlier_failures.is_empty());
        let mut passed = skipped("a");
        passed.outcome = Outcome::Passed;
        passed.attempt = 2;
        passed.attempt_id = Some("run:gpu@a#2".to_string());
        report.merge(suite("gpu"), vec![passed]);
        assert_eq!(report.entries[0].outcome, Outcome::Passed);
        assert_eq!(report.entries[0].earlier_failures.len(), 1);
        assert!(report.entries[0].earlier_failures[0].starts_with("attempt 1: needs 2 CUDA devices"));
        // A stress run's iterations count attempts from 1 again: the attempt id tells them apart.
        let mut stressed = Report::default();
        let mut first = failed.clone();
        first.attempt_id = Some("run:gpu@a#s0-1".to_string());
        first.stress_iteration = Some(0);
        stressed.merge(suite("gpu"), vec![first]);
        let mut second = skipped("a");
        second.outcome = Outcome::Passed;
        second.attempt_id = Some("run:gpu@a#s1-1".to_string());
        second.stress_iteration = Some(1);
        stressed.merge(suite("gpu"), vec![second]);
        assert_eq!(
            stressed.entries[0].earlier_failures.len(),
            1,
            "{:?}",
            stressed.entries[0]
        );
        assert!(stressed.entries[0].earlier_failures[0].starts_with("stress iteration 0, attempt 1: "));
        let xml = render_junit(&report, &mut EntryTexts::default());
        assert!(
            xml.contains("<testcase name=\"a\" classname=\"gpu\" time=\"0.000\">\n      <flakyFailure message=\"attempt 1: needs 2"),
            "{xml}"
        );
    }

    /// Another process's write between two of this process's is read, not the state this
    /// process remembers writing.
    #[test]
    fn a_state_another_process_wrote_since_is_read_again() {
        let dir = crate::util::files::scratch_dir("report-state");
        let target = ReportTarget {
            path: dir.join("report.json"),
            format: ReportFormat::Json,
        };
        let settings = Settings {
            runtime_dir: dir.join("runtime"),
            report: Some(target.clone()),
            ..Settings::default()
        };
        record(&settings, &target, suite("gpu"), vec![skipped("a")]).unwrap();
        // Another process of the run adds `b` to the state, as `record` would.
        let states: Vec<PathBuf> = std::fs::read_dir(settings.runtime_dir.join("reports"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        assert_eq!(states.len(), 1, "{states:?}");
        let mut state: Report = serde_json::from_str(&std::fs::read_to_string(&states[0]).unwrap()).unwrap();
        state.merge(suite("other"), vec![skipped("b")]);
        std::fs::write(&states[0], serde_json::to_string(&state).unwrap()).unwrap();
        record(&settings, &target, suite("gpu"), vec![skipped("c")]).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&target.path).unwrap()).unwrap();
        let names: Vec<&str> = json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"], "{json:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Texts made once per entry are those serialising the whole report makes, and an entry
    /// that changed is made again.
    #[test]
    fn entry_texts_are_the_reports_own_and_follow_a_change() {
        let mut report = Report::default();
        report.merge(suite("gpu"), vec![skipped("a"), skipped("b")]);
        let mut texts = EntryTexts::default();
        assert_eq!(state_text(&report, &mut texts), serde_json::to_string(&report).unwrap());
        let before = render_junit(&report, &mut texts);
        assert!(before.contains("<testcase name=\"b\" classname=\"gpu\" time=\"0.000\">\n      <skipped"), "{before}");
        let cold = render_json(&report, &mut texts);
        // Each entry indented as an element of `tests`, as serde_json's pretty printer nests it.
        assert!(cold.contains("\n  \"tests\": [\n    {\n      \"suite\": \"gpu\",\n      \"name\": \"a\",\n"), "{cold}");
        let warm: serde_json::Value = serde_json::from_str(&render_json(&report, &mut texts)).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&cold).unwrap()["tests"], warm["tests"]);
        assert_eq!(warm["tests"][1]["name"], "b");
        let mut passed = skipped("b");
        passed.outcome = Outcome::Passed;
        // A line break in a text stays inside its string, whatever the indentation.
        let mut failed = skipped("c");
        failed.outcome = Outcome::Failed;
        failed.cause = Cause::Failure("first line\nsecond line".to_string());
        report.merge(suite("gpu"), vec![passed, failed]);
        assert_eq!(state_text(&report, &mut texts), serde_json::to_string(&report).unwrap());
        let json: serde_json::Value = serde_json::from_str(&render_json(&report, &mut texts)).unwrap();
        assert_eq!(json["tests"][1]["outcome"], "passed", "{json:#}");
        assert_eq!(json["tests"][2]["reason"], "first line\nsecond line", "{json:#}");
        assert_eq!(json["summary"]["passed"], 1);
        let xml = render_junit(&report, &mut texts);
        assert!(xml.contains("<testcase name=\"b\" classname=\"gpu\" time=\"0.000\"/>"), "{xml}");
        // No test: an empty list, still JSON.
        let empty: serde_json::Value =
            serde_json::from_str(&render_json(&Report::default(), &mut texts)).unwrap();
        assert_eq!(empty["tests"], serde_json::json!([]));
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
        let state = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&state).unwrap(), report);
        let json: serde_json::Value = serde_json::from_str(&render_json(&report, &mut EntryTexts::default())).unwrap();
        assert_eq!(json["summary"]["tests"], 2);
        assert_eq!(json["tests"][0]["outcome"], "passed");
        assert_eq!(json["tests"][1]["kind"], "too_few_devices");
    }
}
