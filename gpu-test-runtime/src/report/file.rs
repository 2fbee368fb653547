//! `GPU_TEST_REPORT`: a JUnit or JSON file describing every GPU test of a run.
//!
//! Processes of one run (the test binaries of `cargo test`, or nextest's list phase and one
//! process per test) each merge their entries into the run's [`State`], kept in a file under a
//! lock, then render the whole report in the format asked for and put it in place atomically: no
//! entry is lost and no reader sees a half-written file.

use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::console::timing_line;
use super::model::{DeviceRecord, Entry, Outcome, SuiteInfo};
use super::state::{RunOwner, STALE_AFTER, run_id, run_owner};
use super::store::{State, Unreadable, whose};
use crate::probe::Probe;
use crate::run::timing::Timing;
use crate::settings::{ReportFormat, ReportTarget, Settings};
use crate::util::process::process_start_time;
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
    // `tests` follows: each entry's text as the run's state keeps it.
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
    /// The first iteration of a stress run in which the test failed, which fails it.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_iteration: Option<u32>,
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

/// The JSON report, from its entries' texts as `state` keeps them, written into `text` (emptied
/// first).
fn write_json(state: &State, text: &mut String) {
    let json = JsonReport {
        gpu_test_version: env!("CARGO_PKG_VERSION"),
        run: &state.run,
        written_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        host: host_name(),
        summary: JsonSummary {
            tests: state.records.len(),
            passed: state.count(Outcome::Passed),
            failed: state.count(Outcome::Failed),
            skipped: state.count(Outcome::Skipped),
        },
        suites: &state.suites,
    };
    let head = serde_json::to_string_pretty(&json).unwrap_or_default();
    // The object without its closing brace, then `tests` as its last field.
    text.clear();
    text.push_str(head.strip_suffix("\n}").unwrap_or(&head));
    if state.records.is_empty() {
        text.push_str(",\n  \"tests\": []\n}\n");
        return;
    }
    text.push_str(",\n  \"tests\": [\n");
    let parts: Vec<&str> = state.records.iter().map(|record| record.text()).collect();
    push_joined(text, &parts, ",\n");
    text.push_str("\n  ]\n}\n");
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
        failed_iteration: entry.failed_iteration,
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

/// Appends `parts` to `text` with `separator` between them, making room once.
fn push_joined(text: &mut String, parts: &[&str], separator: &str) {
    text.reserve(parts.iter().map(|part| part.len() + separator.len()).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push_str(separator);
        }
        text.push_str(part);
    }
}

/// The host name the kernel reports, if it can be read; read once, for every write of a process.
fn host_name() -> Option<String> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        Some(name.trim().to_string()).filter(|n| !n.is_empty())
    })
    .clone()
}

/// The JUnit report, from its entries' `<testcase>`s as `state` keeps them, written into `out`
/// (emptied first).
fn write_junit(state: &State, out: &mut String) {
    let records = &state.records;
    out.clear();
    out.reserve(records.iter().map(|record| record.text().len()).sum::<usize>() + 4096);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_time: f64 = records.iter().map(|r| r.duration.as_secs_f64()).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"gpu-test\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{total_time:.3}\">",
        records.len(),
        state.count(Outcome::Failed),
        state.count(Outcome::Skipped)
    );
    for suite in &state.suites {
        // Records are sorted by suite first: a suite's are those between these two.
        let first = records.partition_point(|r| *r.suite < *suite.suite);
        let end = records.partition_point(|r| *r.suite <= *suite.suite);
        let entries = &records[first..end];
        let count = |o: Outcome| entries.iter().filter(|r| r.outcome == o).count();
        let time: f64 = entries.iter().map(|r| r.duration.as_secs_f64()).sum();
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
        property("gpu-test.run", &state.run);
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
        for record in entries {
            out.push_str(record.text());
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
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
            // Where a failed test ran, and what it timed before it failed, as for a passed one.
            let system_out = match details.is_empty() {
                true => String::new(),
                false => format!("      <system-out>{}</system-out>\n", xml(&details)),
            };
            let _ = write!(
                out,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n{reruns}{system_out}    </testcase>\n",
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

/// The directory (`dir`, or one above it) that another user made for everyone to write to,
/// without the sticky bit: any user could replace the report there or move it away; and its
/// owner and mode. One of this user's or root's is left alone: a CI volume made that way
/// (Kubernetes' `emptyDir`, a `chmod 777` Docker volume) serves one user, and a workspace the
/// user shares with a group is theirs to share, as are the tests it reports on.
/// `trusted`: root and this user.
fn replaceable_by_others(dir: &Path, trusted: &[u32]) -> Option<(PathBuf, u32, u32)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    dir.ancestors().find_map(|place| {
        let metadata = std::fs::metadata(place).ok()?;
        let (mode, owner) = (metadata.mode(), metadata.uid());
        (mode & 0o002 != 0 && mode & 0o1000 == 0 && !trusted.contains(&owner))
            .then(|| (place.to_path_buf(), owner, mode & 0o7777))
    })
}

/// The mode a report is made with: readable by others, as build outputs are, except in a
/// directory everyone may write to (such as `/tmp`), where it is this user's alone.
fn report_mode(dir: &Path) -> u32 {
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.mode() & 0o002 == 0 => 0o644,
        _ => 0o600,
    }
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
    if let Some((place, owner, mode)) = replaceable_by_others(dir, &[0, crate::util::os::user_id()]) {
        return Err(invalid(format!(
            "{} belongs to user {owner} and may be written by every user (mode {mode:o}) without the sticky \
             bit, so another user could replace or remove the report; give a path in a directory of this \
             user's, such as one under target/",
            place.display()
        )));
    }
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
    let probe = dir.join(format!(
        ".gpu-test-check.{}.{:016x}.tmp",
        std::process::id(),
        crate::util::files::unpredictable()
    ));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&probe);
    // Only what this process made: a file of that name that was there is someone else's.
    if created.is_ok() {
        let _ = std::fs::remove_file(&probe);
    }
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

/// The report state this process wrote last: its path, its text, and what it holds. A process
/// that writes the report again (as each body starts and ends under `cargo test`) mostly reads
/// back its own last write, which it then need not parse again.
static LAST_WRITTEN: Mutex<Option<(PathBuf, String, State)>> = Mutex::new(None);

/// The room of the report this process wrote last, to read the state into at the next write.
/// With the state's last text, reused as the next, a process writing its report as each body
/// starts and ends allocates no large buffer anew: doing so for each write cost more time than
/// all the copying, the kernel mapping and clearing fresh pages for each.
static SPARE: Mutex<String> = Mutex::new(String::new());

/// An entry's part of the report in `format`.
fn entry_text(format: ReportFormat, entry: &Entry) -> String {
    match format {
        ReportFormat::Json => json_entry(entry),
        ReportFormat::Junit => junit_testcase(entry),
    }
}

/// Whether the report at `path` names `run`, as both formats do near their start (JSON its
/// `run`, JUnit each suite's `gpu-test.run` property, the first of them within what
/// [`read_existing`] reads). A report that cannot be read names no run: its checks come elsewhere.
fn report_names_run(path: &Path, format: ReportFormat, run: &str) -> bool {
    let Ok(Some(head)) = read_existing(path) else {
        return false;
    };
    head.contains(&match format {
        ReportFormat::Json => format!("\"run\": {}", serde_json::to_string(run).unwrap_or_default()),
        ReportFormat::Junit => format!("name=\"gpu-test.run\" value=\"{}\"", xml(run)),
    })
}

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
    // Named `.json` as gpu-test 0.1.0 named its states (JSON then): a binary built with either
    // finds the other's state, and the sweep of stale ones finds both.
    let state_path = settings
        .runtime_dir
        .join("reports")
        .join(format!("{:016x}.json", stable_hash(&path.to_string_lossy())));
    let run = run_id(settings);
    let owned = run_owner().is_some() || settings.nextest.run_id.is_some();
    // A run no cargo or nextest owns (test binaries run by hand) is this process's while it
    // writes: another such run from another shell, writing the same report at the same time,
    // then sees a live process and fails, rather than each starting the report anew over the
    // other's entries.
    let owner = run_owner().or_else(|| {
        let pid = std::process::id();
        process_start_time(pid).map(|start| RunOwner { pid, start })
    });
    // A state untouched for a day is kept while its run goes on: this one, or another whose
    // cargo or nextest still runs.
    let still_going = |text: &str| {
        whose(text).is_some_and(|whose| whose.run == run || whose.owner.is_some_and(RunOwner::is_alive))
    };
    // Once per process: a process writes the report as each body starts and ends.
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| remove_stale_states(&settings.runtime_dir.join("reports"), STALE_AFTER, &still_going));

    let render = |entry: &Entry| entry_text(target.format, entry);
    // A state this run wrote but that cannot be read back holds entries of the run's other
    // processes: starting anew would drop them silently.
    let unreadable = |why: Unreadable| match why {
        Unreadable::OtherLayout(layout) => format!(
            "this run's report state in {} was written by a test binary built with another version of \
             gpu-test ({layout}), which this one cannot read, and writing over it would lose that binary's \
             entries; build every test binary of a run with the same version of gpu-test",
            state_path.display()
        ),
        Unreadable::Damaged(error) => format!(
            "this run's report state in {} cannot be read ({error}), and writing over it would lose the \
             entries of this run's other processes; remove it and run again",
            state_path.display()
        ),
    };
    let merged = |text: String| {
        let last = LAST_WRITTEN.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (mut state, mut next) = match last {
            // What this process wrote last, as it left it: a state of this run.
            Some((at, written, state)) if at == state_path && written == text => (state, written),
            last => {
                let room = last.map(|(_, written, _)| written).unwrap_or_default();
                match whose(&text) {
                    Some(whose) if whose.run == run => match State::parse(&text, target.format, &render) {
                        Ok(state) => (state, room),
                        Err(error) => return (text, Err(unreadable(error))),
                    },
                    Some(whose) if whose.owner.is_some_and(|o| Some(o) != owner && o.is_alive()) => {
                        // A run with nothing to record (its filters left out every GPU test)
                        // leaves the other run's report alone.
                        if nothing_to_record {
                            return (text, Ok(None));
                        }
                        let other = whose.owner.map(|o| o.pid).unwrap_or_default();
                        return (
                            text,
                            Err(format!(
                                "another test run (started by process {other}, which is still running) is writing \
                                 the same report, and the two would lose each other's entries; give each run its \
                                 own GPU_TEST_REPORT, or run them one after the other"
                            )),
                        );
                    }
                    // No state of this run here, though the report has entries of it: another
                    // process of the run keeps the state in another runtime directory, and
                    // starting anew would drop what it recorded. (Only for a run that cargo or
                    // nextest owns: binaries run by hand from one shell are one run however long
                    // the shell lives, and their state may have been swept as stale meanwhile.)
                    _ if owned && report_names_run(&path, target.format, &run) => {
                        return (
                            text,
                            Err(format!(
                                "{} has entries of this run that its report state in {} lacks: another process \
                                 of the run keeps the state in another runtime directory, and writing would lose \
                                 its entries; give every test process of a run the same runtime directory \
                                 (GPU_TEST_RUNTIME_DIR, else XDG_RUNTIME_DIR, HOME and TMPDIR decide it), or \
                                 remove the report to start it anew",
                                path.display(),
                                state_path.display()
                            )),
                        );
                    }
                    // An earlier run's report (or none, or one that cannot be read): this run
                    // starts anew.
                    _ => (State::new(run.clone(), owner, target.format), room),
                }
            }
        };
        if let Err(error) = state.merge(suite, entries, &render) {
            return (text, Err(unreadable(error)));
        }
        // The text read is what this write replaces: its room takes the report.
        let mut report = text;
        match target.format {
            ReportFormat::Json => write_json(&state, &mut report),
            ReportFormat::Junit => write_junit(&state, &mut report),
        }
        state.write_text(&mut next);
        (next, Ok(Some((report, state))))
    };
    // The report is written after the state and while its lock is held: a process that dies in
    // between leaves a state that has its entries, which the next rewrite puts in the report.
    let write_report = |rendered: Result<Option<(String, State)>, String>, written: String| match rendered? {
        Some((report, state)) => {
            // The report's directory is the process's: looked at once.
            static MODE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
            let mode = *MODE.get_or_init(|| report_mode(path.parent().unwrap_or(Path::new("/"))));
            let report_written = write_atomically(&path, report.as_bytes(), mode).map_err(|error| error.to_string());
            *SPARE.lock().unwrap_or_else(|p| p.into_inner()) = report;
            *LAST_WRITTEN.lock().unwrap_or_else(|p| p.into_inner()) = Some((state_path.clone(), written, state));
            report_written
        }
        None => Ok(()),
    };
    let room = std::mem::take(&mut *SPARE.lock().unwrap_or_else(|p| p.into_inner()));
    let recorded = update_locked_then(&state_path, room, merged, write_report);
    match recorded {
        Ok(result) => result,
        Err(error) => Err(format!(
            "its state in {} cannot be kept ({error})",
            state_path.display()
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

    fn render_json(state: &State) -> String {
        let mut text = String::new();
        write_json(state, &mut text);
        text
    }

    fn render_junit(state: &State) -> String {
        let mut text = String::new();
        write_junit(state, &mut text);
        text
    }

    /// A state in `format` holding `batches`, merged one after the other as processes would.
    fn state_of(format: ReportFormat, batches: Vec<(SuiteInfo, Vec<Entry>)>) -> State {
        let mut state = State::new("run".to_string(), None, format);
        for (suite, entries) in batches {
            merge(&mut state, suite, entries);
        }
        state
    }

    fn merge(state: &mut State, suite: SuiteInfo, entries: Vec<Entry>) {
        let format = state.format();
        state.merge(suite, entries, &|e| entry_text(format, e)).unwrap();
    }

    /// The same report made from nothing: every entry read back and its text made anew.
    fn made_anew(state: &State) -> State {
        let mut fresh = State::new(state.run.clone(), state.owner, state.format());
        for suite in &state.suites {
            let entries = state
                .records
                .iter()
                .filter(|r| *r.suite == *suite.suite)
                .map(|r| r.entry().unwrap())
                .collect();
            merge(&mut fresh, suite.clone(), entries);
        }
        fresh
    }

    #[test]
    fn junit_escapes_and_marks_skips() {
        let state = state_of(ReportFormat::Junit, vec![(suite("gpu"), vec![skipped("a"), skipped("b")])]);
        let xml = render_junit(&state);
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
    fn a_timeout_is_a_kind_of_its_own() {
        let mut hung = skipped("a");
        hung.outcome = Outcome::Failed;
        hung.cause = Cause::TimedOut("did not finish within its timeout of 2s".to_string());
        assert!(
            json_entry(&hung).contains("\"kind\": \"timed_out\""),
            "{}",
            json_entry(&hung)
        );
        assert!(
            junit_testcase(&hung).contains("type=\"timed_out\""),
            "{}",
            junit_testcase(&hung)
        );
        // A state read back keeps it.
        let state = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![hung])]);
        let read = State::parse(&state.to_text(), ReportFormat::Json, &json_entry).unwrap();
        assert_eq!(read.records[0].entry().unwrap().kind(), Some("timed_out"));
    }

    #[test]
    fn a_failed_testcase_says_where_it_ran_and_what_it_timed() {
        let mut failed = skipped("a");
        failed.outcome = Outcome::Failed;
        failed.devices = vec![DeviceRecord {
            ordinal: 0,
            name: "NVIDIA H200".to_string(),
            compute_capability: "9.0".to_string(),
            memory_bytes: 150_754_820_096,
            uuid: None,
        }];
        failed.timings = vec![Timing {
            label: "before".to_string(),
            device: "device 0 NVIDIA H200".to_string(),
            count: 1,
            total: std::time::Duration::from_micros(5),
            min: std::time::Duration::from_micros(5),
            median: std::time::Duration::from_micros(5),
            max: std::time::Duration::from_micros(5),
        }];
        let text = junit_testcase(&failed);
        assert!(
            text.contains("</failure>\n      <system-out>devices: device 0 NVIDIA H200")
                && text.contains("gpu-test: timing a: before 1 x median 5.00 us"),
            "{text}"
        );
    }

    #[test]
    fn another_users_directory_for_everyone_is_refused_and_a_shared_one_gets_a_private_report() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::util::files::scratch_dir("shared-report-dir");
        let shared = dir.join("shared");
        std::fs::create_dir(&shared).unwrap();
        let target = ReportTarget {
            path: shared.join("deep/report.json"),
            format: ReportFormat::Json,
        };
        let me = crate::util::os::user_id();
        // Seen by another user, who trusts neither root nor this one: this user's directories
        // are then someone else's.
        let someone_else = [me.wrapping_add(4242)];
        // Whatever the directories above the scratch directory are, they are not what is asked.
        let found = |dir: &Path, trusted: &[u32]| {
            replaceable_by_others(dir, trusted).filter(|(place, ..)| place.starts_with(&shared))
        };
        let owner = std::fs::metadata(&shared).unwrap().uid();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            found(&shared, &someone_else),
            Some((shared.canonicalize().unwrap(), owner, 0o777))
        );
        // This user's own (or root's): a CI volume made for one user, left alone.
        assert_eq!(found(&shared, &[0, me]), None);
        assert_eq!(check_writable(&target), Ok(()));
        assert_eq!(report_mode(&shared), 0o600);
        // With the sticky bit (as /tmp has), others cannot replace what is not theirs, but could
        // read it.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(found(&shared, &someone_else), None);
        assert_eq!(report_mode(&shared), 0o600);
        // A directory shared with a group (or made with a umask of 002) is the user's to share.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(found(&shared, &someone_else), None);
        assert_eq!(report_mode(&shared), 0o644);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_taken_beside_the_report_neither_blocks_the_check_nor_is_removed() {
        let dir = crate::util::files::scratch_dir("taken-name");
        // The name the check once used, which anyone could make first in a shared directory.
        let taken = dir.join(format!(".gpu-test-check.{}.tmp", std::process::id()));
        std::fs::write(&taken, "someone else's").unwrap();
        let target = ReportTarget {
            path: dir.join("report.json"),
            format: ReportFormat::Json,
        };
        assert_eq!(check_writable(&target), Ok(()));
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "someone else's");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [taken.file_name().unwrap()], "the check leaves nothing behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_retry_keeps_the_failures_before_it() {
        let mut report = State::new("run".to_string(), None, ReportFormat::Junit);
        let earlier = |state: &State| state.records[0].entry().unwrap().earlier_failures;
        let mut failed = skipped("a");
        failed.outcome = Outcome::Failed;
        failed.attempt_id = Some("run:gpu@a#1".to_string());
        merge(&mut report, suite("gpu"), vec![failed.clone()]);
        // The same attempt again (the final entry over the one recorded as the body started):
        // nothing is kept.
        merge(&mut report, suite("gpu"), vec![failed.clone()]);
        assert!(earlier(&report).is_empty());
        let mut passed = skipped("a");
        passed.outcome = Outcome::Passed;
        passed.attempt = 2;
        passed.attempt_id = Some("run:gpu@a#2".to_string());
        merge(&mut report, suite("gpu"), vec![passed]);
        assert_eq!(report.records[0].outcome, Outcome::Passed);
        assert_eq!(earlier(&report).len(), 1);
        assert!(earlier(&report)[0].starts_with("attempt 1: needs 2 CUDA devices"));
        // A nextest that sets no attempt id: the attempts' numbers tell them apart.
        let mut without_ids = state_of(ReportFormat::Json, vec![]);
        let mut first = failed.clone();
        first.attempt_id = None;
        merge(&mut without_ids, suite("gpu"), vec![first.clone()]);
        merge(&mut without_ids, suite("gpu"), vec![first]);
        assert!(earlier(&without_ids).is_empty());
        let mut retried = skipped("a");
        retried.outcome = Outcome::Passed;
        retried.attempt = 2;
        merge(&mut without_ids, suite("gpu"), vec![retried.clone()]);
        assert_eq!(earlier(&without_ids).len(), 1, "{:?}", without_ids.records[0]);
        // ...and a stress run's iterations by their numbers too.
        let mut iteration = failed.clone();
        (iteration.attempt_id, iteration.stress_iteration) = (None, Some(0));
        let mut stressed_without_ids = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![iteration])]);
        (retried.attempt, retried.stress_iteration) = (1, Some(1));
        merge(&mut stressed_without_ids, suite("gpu"), vec![retried]);
        assert_eq!(earlier(&stressed_without_ids).len(), 1);
        // A stress run's iterations count attempts from 1 again: the attempt id tells them apart.
        let mut first = failed.clone();
        first.attempt_id = Some("run:gpu@a#s0-1".to_string());
        first.stress_iteration = Some(0);
        let mut stressed = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![first])]);
        let mut second = skipped("a");
        second.outcome = Outcome::Passed;
        second.attempt_id = Some("run:gpu@a#s1-1".to_string());
        second.stress_iteration = Some(1);
        merge(&mut stressed, suite("gpu"), vec![second.clone()]);
        assert_eq!(earlier(&stressed).len(), 1, "{:?}", stressed.records[0]);
        assert!(earlier(&stressed)[0].starts_with("stress iteration 0, attempt 1: "));
        // An iteration that failed fails the stress run, whatever later iterations do: also
        // past a later iteration's provisional entry, replaced by its own outcome.
        assert_eq!(stressed.records[0].outcome, Outcome::Failed, "{:?}", stressed.records[0]);
        assert_eq!(stressed.count(Outcome::Failed), 1);
        let entry = stressed.records[0].entry().unwrap();
        assert_eq!(entry.failed_iteration, Some(0));
        assert!(entry.message().starts_with("failed in stress iteration 0"), "{}", entry.message());
        let mut provisional = failed.clone();
        provisional.attempt_id = Some("run:gpu@a#s2-1".to_string());
        provisional.stress_iteration = Some(2);
        merge(&mut stressed, suite("gpu"), vec![provisional]);
        let mut third = second.clone();
        third.attempt_id = Some("run:gpu@a#s2-1".to_string());
        third.stress_iteration = Some(2);
        merge(&mut stressed, suite("gpu"), vec![third]);
        assert_eq!(stressed.records[0].outcome, Outcome::Failed, "{:?}", stressed.records[0]);
        // Only the iteration that failed is an earlier failure: not the one that passed after it.
        assert_eq!(earlier(&stressed).len(), 1, "{:?}", earlier(&stressed));
        // A retry within an iteration that passes is flaky, not failed.
        let mut retried_in_one = failed.clone();
        (retried_in_one.attempt_id, retried_in_one.stress_iteration) = (Some("run:gpu@a#s0-1".to_string()), Some(0));
        let mut flaky = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![retried_in_one])]);
        let mut passed_retry = second.clone();
        (passed_retry.attempt_id, passed_retry.stress_iteration, passed_retry.attempt) =
            (Some("run:gpu@a#s0-2".to_string()), Some(0), 2);
        merge(&mut flaky, suite("gpu"), vec![passed_retry]);
        assert_eq!(flaky.records[0].outcome, Outcome::Passed);
        assert_eq!(earlier(&flaky).len(), 1);
        // An attempt that ran names its devices: a retry may run on another GPU.
        let mut ran = failed.clone();
        ran.devices = vec![DeviceRecord {
            ordinal: 1,
            name: "NVIDIA H200".to_string(),
            compute_capability: "9.0".to_string(),
            memory_bytes: 150_754_820_096,
            uuid: None,
        }];
        let mut on_a_gpu = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![ran])]);
        let mut retried = skipped("a");
        retried.outcome = Outcome::Passed;
        retried.attempt = 2;
        retried.attempt_id = Some("run:gpu@a#2".to_string());
        merge(&mut on_a_gpu, suite("gpu"), vec![retried]);
        assert!(
            earlier(&on_a_gpu)[0].starts_with("attempt 1 on device 1 NVIDIA H200: "),
            "{:?}",
            earlier(&on_a_gpu)
        );
        let xml = render_junit(&report);
        assert!(
            xml.contains("<testcase name=\"a\" classname=\"gpu\" time=\"0.000\">\n      <flakyFailure message=\"attempt 1: needs 2"),
            "{xml}"
        );
    }

    /// Another process's write between two of this process's is read, not the state this
    /// process remembers writing.
    #[test]
    fn a_state_another_process_wrote_since_is_read_again() {
        let (settings, target, state_path) = reporting("report-state");
        record(&settings, &target, suite("gpu"), vec![skipped("a")]).unwrap();
        // Another process of the run adds `b` to the state, as `record` would.
        let text = std::fs::read_to_string(&state_path).unwrap();
        let mut state = State::parse(&text, ReportFormat::Json, &json_entry).unwrap();
        merge(&mut state, suite("other"), vec![skipped("b")]);
        std::fs::write(&state_path, state.to_text()).unwrap();
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
        std::fs::remove_dir_all(settings.runtime_dir.parent().unwrap()).unwrap();
    }

    /// Settings that write a JSON report into a fresh scratch directory, with the path of the
    /// report's state.
    fn reporting(name: &str) -> (Settings, ReportTarget, PathBuf) {
        let dir = crate::util::files::scratch_dir(name);
        let target = ReportTarget {
            path: dir.join("report.json"),
            format: ReportFormat::Json,
        };
        let settings = Settings {
            runtime_dir: dir.join("runtime"),
            report: Some(target.clone()),
            ..Settings::default()
        };
        let path = absolute(&target.path);
        let state = settings
            .runtime_dir
            .join("reports")
            .join(format!("{:016x}.json", stable_hash(&path.to_string_lossy())));
        (settings, target, state)
    }

    /// Writes one after the other, as a process writes as each body starts and ends, each read
    /// back from this process's last: the report and the state hold every entry, in order.
    #[test]
    fn writes_in_a_row_keep_every_entry() {
        let (settings, target, state) = reporting("report-in-a-row");
        let mut started = skipped("b");
        started.outcome = Outcome::Failed;
        let mut passed = skipped("b");
        passed.outcome = Outcome::Passed;
        for entries in [vec![skipped("c")], vec![started], vec![passed], vec![skipped("a")]] {
            record(&settings, &target, suite("gpu"), entries).unwrap();
        }
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&target.path).unwrap()).unwrap();
        let tests: Vec<String> = json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{}/{}", t["name"], t["outcome"]).replace('"', ""))
            .collect();
        assert_eq!(tests, ["a/skipped", "b/passed", "c/skipped"], "{json:#}");
        let text = std::fs::read_to_string(&state).unwrap();
        let read = State::parse(&text, ReportFormat::Json, &json_entry).unwrap();
        let names: Vec<&str> = read.records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(read.to_text(), text);
        std::fs::remove_dir_all(settings.runtime_dir.parent().unwrap()).unwrap();
    }

    /// A state of this run that a test binary built with gpu-test 0.1.0 wrote is left as it is,
    /// and so is the report, with an error that says why: writing over it would lose its entries.
    #[test]
    fn a_state_of_this_run_in_another_layout_is_left_alone() {
        let (settings, target, state) = reporting("report-other-layout");
        std::fs::create_dir_all(state.parent().unwrap()).unwrap();
        let theirs = format!(
            "{{\"run\":\"{}\",\"owner\":null,\"suites\":[],\"entries\":[]}}",
            run_id(&settings)
        );
        std::fs::write(&state, &theirs).unwrap();
        let error = record(&settings, &target, suite("gpu"), vec![skipped("a")]).unwrap_err();
        assert!(
            error.contains("was written by a test binary built with another version of gpu-test (the layout of gpu-test 0.1.0)")
                && error.contains("build every test binary of a run with the same version of gpu-test"),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&state).unwrap(), theirs);
        assert!(!target.path.exists());
        std::fs::remove_dir_all(settings.runtime_dir.parent().unwrap()).unwrap();
    }

    /// The texts a state keeps are those rendering each entry makes, and merging (entries
    /// replaced, entries put before and between those there, another suite's) leaves each
    /// record with its own.
    #[test]
    fn kept_texts_are_the_reports_own_and_follow_a_change() {
        let in_suite = |suite: &str, name: &str| Entry {
            suite: Arc::from(suite),
            ..skipped(name)
        };
        let mut json_state = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![skipped("d"), skipped("b")])]);
        let cold = render_json(&json_state);
        // Each entry indented as an element of `tests`, as serde_json's pretty printer nests it.
        assert!(cold.contains("\n  \"tests\": [\n    {\n      \"suite\": \"gpu\",\n      \"name\": \"b\",\n"), "{cold}");
        let json: serde_json::Value = serde_json::from_str(&cold).unwrap();
        assert_eq!(json["tests"][1]["name"], "d");
        let mut junit_state = state_of(ReportFormat::Junit, vec![(suite("gpu"), vec![skipped("d"), skipped("b")])]);
        let before = render_junit(&junit_state);
        assert!(before.contains("<testcase name=\"b\" classname=\"gpu\" time=\"0.000\">\n      <skipped"), "{before}");

        let mut passed = skipped("b");
        passed.outcome = Outcome::Passed;
        // A line break in a text stays inside its string, whatever the indentation.
        let mut failed = skipped("c");
        failed.outcome = Outcome::Failed;
        failed.cause = Cause::Failure("first line\nsecond line".to_string());
        for state in [&mut json_state, &mut junit_state] {
            merge(state, suite("gpu"), vec![passed.clone(), failed.clone(), skipped("a")]);
            merge(state, suite("another"), vec![in_suite("another", "z")]);
            merge(state, suite("zeta"), vec![in_suite("zeta", "a")]);
        }
        assert_eq!(render_junit(&junit_state), render_junit(&made_anew(&junit_state)));
        let json: serde_json::Value = serde_json::from_str(&render_json(&json_state)).unwrap();
        let fresh: serde_json::Value = serde_json::from_str(&render_json(&made_anew(&json_state))).unwrap();
        assert_eq!(json["tests"], fresh["tests"]);
        let names: Vec<String> = json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{}/{}/{}", t["suite"], t["name"], t["outcome"]).replace('"', ""))
            .collect();
        assert_eq!(
            names,
            [
                "another/z/skipped",
                "gpu/a/skipped",
                "gpu/b/passed",
                "gpu/c/failed",
                "gpu/d/skipped",
                "zeta/a/skipped"
            ]
        );
        assert_eq!(json["tests"][3]["reason"], "first line\nsecond line", "{json:#}");
        assert_eq!(json["summary"]["passed"], 1);
        let xml = render_junit(&junit_state);
        assert!(xml.contains("<testcase name=\"b\" classname=\"gpu\" time=\"0.000\"/>"), "{xml}");
        assert!(
            xml.contains("<testsuite name=\"gpu\" tests=\"4\" failures=\"1\" skipped=\"2\""),
            "{xml}"
        );
        // No test: an empty list, still JSON.
        let empty: serde_json::Value =
            serde_json::from_str(&render_json(&State::new("run".to_string(), None, ReportFormat::Json))).unwrap();
        assert_eq!(empty["tests"], serde_json::json!([]));
    }

    /// A state read back is the state written, every field of every entry equal, and its texts
    /// are taken as it keeps them: made again only where it keeps them in another format.
    #[test]
    fn a_state_read_back_is_the_state_written_and_renders_nothing_again() {
        // One that ran, with what a run records: a device, a duration, a timed region.
        let mut ran = skipped("a");
        ran.outcome = Outcome::Passed;
        ran.duration = std::time::Duration::new(1, 234_567_891);
        ran.devices = vec![DeviceRecord {
            ordinal: 0,
            name: "NVIDIA H200".to_string(),
            compute_capability: "9.0".to_string(),
            memory_bytes: 150_754_820_096,
            uuid: Some("GPU-0".to_string()),
        }];
        ran.timings = vec![Timing {
            label: "saxpy".to_string(),
            device: "device 0 NVIDIA H200".to_string(),
            count: 3,
            total: std::time::Duration::from_nanos(3_000_001),
            min: std::time::Duration::from_nanos(999_999),
            median: std::time::Duration::from_nanos(1_000_001),
            max: std::time::Duration::from_nanos(1_000_001),
        }];
        // Names and texts of many bytes per character, and line breaks, in the lengths.
        let mut failed = skipped("ü_ß");
        failed.outcome = Outcome::Failed;
        failed.cause = Cause::Failure("a\nb 🙂".to_string());
        let state = state_of(
            ReportFormat::Junit,
            vec![(suite("gpu"), vec![ran.clone(), skipped("b"), failed])],
        );
        let text = state.to_text();
        let made = std::cell::Cell::new(0);
        let counting = |entry: &Entry| {
            made.set(made.get() + 1);
            junit_testcase(entry)
        };
        let read = State::parse(&text, ReportFormat::Junit, &counting).unwrap();
        assert_eq!(made.get(), 0, "texts kept in the state are not made again");
        assert_eq!(read, state);
        assert_eq!(read.to_text(), text);
        assert_eq!(read.records[0].entry().unwrap(), ran);
        assert_eq!(render_junit(&read), render_junit(&made_anew(&state)));
        // Kept for another format: each made anew, in the format asked for.
        let as_json = State::parse(&text, ReportFormat::Json, &json_entry).unwrap();
        assert_eq!(as_json.records[1].text(), json_entry(&skipped("b")));
        // Kept as another version of gpu-test made them: each made anew.
        let version = format!("\"gpu_test_version\":\"{}\"", env!("CARGO_PKG_VERSION"));
        assert!(text.contains(&version));
        let other = text.replacen(&version, "\"gpu_test_version\":\"0.0.1\"", 1);
        State::parse(&other, ReportFormat::Junit, &counting).unwrap();
        assert_eq!(made.get(), 3, "texts of another version are made anew");
    }

    /// Records out of order (a state written by hand) are sorted before merging, so a test
    /// recorded again still replaces its entry.
    #[test]
    fn merging_into_an_unsorted_state_sorts_it_first() {
        let mut state = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![skipped("a"), skipped("c")])]);
        state.records.reverse();
        let mut passed = skipped("c");
        passed.outcome = Outcome::Passed;
        merge(&mut state, suite("gpu"), vec![passed, skipped("b")]);
        let names: Vec<(&str, Outcome)> = state.records.iter().map(|r| (r.name.as_str(), r.outcome)).collect();
        assert_eq!(
            names,
            [
                ("a", Outcome::Skipped),
                ("b", Outcome::Skipped),
                ("c", Outcome::Passed)
            ]
        );
        let tests = |state: &State| serde_json::from_str::<serde_json::Value>(&render_json(state)).unwrap()["tests"].take();
        assert_eq!(tests(&state), tests(&made_anew(&state)));
    }

    #[test]
    fn merging_replaces_by_suite_and_name() {
        let mut state = state_of(ReportFormat::Json, vec![(suite("gpu"), vec![skipped("a")])]);
        let mut passed = skipped("a");
        passed.outcome = Outcome::Passed;
        merge(&mut state, suite("gpu"), vec![passed, skipped("b")]);
        assert_eq!(state.records.len(), 2);
        assert_eq!(state.records[0].outcome, Outcome::Passed);
        let json: serde_json::Value = serde_json::from_str(&render_json(&state)).unwrap();
        assert_eq!(json["summary"]["tests"], 2);
        assert_eq!(json["tests"][0]["outcome"], "passed");
        assert_eq!(json["tests"][1]["kind"], "too_few_devices");
    }
}
