//! The run's report state: what the processes of one run have recorded, kept in a private file
//! between their writes of the report.
//!
//! Each entry is kept beside its part of the report, and a record is read back by its lengths,
//! without parsing it: a process that records one test (nextest runs a process per test) neither
//! parses nor renders the entries the run's other processes recorded, so what a process pays for
//! the report grows with the report's size in bytes, not with the work of serialising it anew.
//!
//! The file is a line naming its layout ([`MARK`] and a number), a line of JSON ([`Header`]),
//! then one record per entry, sorted by suite and name: a line of six numbers (the lengths in
//! bytes of the suite, the name, the entry's JSON and its part of the report; the duration's
//! seconds and nanoseconds) and an outcome, then those four texts one after the other and a line
//! break. A record's text goes into the report as it is: the file is in the user's private
//! runtime directory, written only by gpu-test, and checking each text against its entry would
//! cost what keeping it saves.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::{Entry, Outcome, SuiteInfo, test_key};
use super::state::RunOwner;
use crate::settings::ReportFormat;

/// How a state's first line starts: the number of its layout follows. Every later layout keeps
/// this line and a second of JSON naming the run and its owner, so that a test binary built with
/// one version of gpu-test never writes over a state of another it cannot read.
const MARK: &str = "gpu-test report state ";

/// The layout this version reads and writes.
const LAYOUT: &str = "2";

/// The version of gpu-test that writes a state, in its header: a state written by another keeps
/// texts that version made, which this one makes anew.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Makes an entry's part of the report in the report's format.
pub(crate) type RenderEntry<'a> = &'a dyn Fn(&Entry) -> String;

/// What a state says of itself before its records.
#[derive(Debug, Deserialize)]
struct Header {
    /// The run that wrote it.
    run: String,
    /// The process whose life is that run's.
    owner: Option<RunOwner>,
    /// The version of gpu-test that wrote it.
    gpu_test_version: String,
    /// The format its records' texts are in.
    format: String,
    /// One per test binary, sorted by suite.
    suites: Vec<SuiteInfo>,
}

/// Why a state cannot be read.
#[derive(Debug, PartialEq)]
pub(crate) enum Unreadable {
    /// A test binary built with another version of gpu-test wrote it, in a layout this one does
    /// not read: what that layout is.
    OtherLayout(String),
    /// It is damaged: what in it is wrong.
    Damaged(String),
}

/// Whose a state is: its run and that run's owner.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct Whose {
    /// The run that wrote it.
    pub run: String,
    /// The process whose life is that run's.
    #[serde(default)]
    pub owner: Option<RunOwner>,
}

/// Whose the state `text` is, read from its header alone, in any layout: also from gpu-test
/// 0.1.0's (one JSON object with the same two fields), which a test binary built with it may
/// write in the same run.
pub(crate) fn whose(text: &str) -> Option<Whose> {
    if !text.starts_with(MARK) {
        return serde_json::from_str(text).ok();
    }
    serde_json::from_str(text.split('\n').nth(1)?).ok()
}

/// `text`, quoted, cut short where it is long: a damaged state's line may be of any length.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// One test's entry, as the state keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// Its test's suite: with the name, what orders the records.
    pub suite: Arc<str>,
    /// Its test's name.
    pub name: String,
    /// How its test ended, for a report's counts.
    pub outcome: Outcome,
    /// How long its test took, for JUnit's times.
    pub duration: Duration,
    /// The record as the state's file holds it, from its line of numbers to its last line
    /// break: a write of the state copies it whole.
    stored: String,
    /// Where in `stored` the entry's JSON is.
    entry: Range<usize>,
    /// Where in `stored` its part of the report is.
    text: Range<usize>,
}

impl Record {
    /// The record of `entry`, its texts made now.
    fn new(entry: &Entry, render: RenderEntry) -> Record {
        let json = serde_json::to_string(entry).unwrap_or_default();
        let text = render(entry);
        let outcome = match entry.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        };
        let mut stored = format!(
            "{} {} {} {} {} {} {outcome}\n",
            entry.suite.len(),
            entry.name.len(),
            json.len(),
            text.len(),
            entry.duration.as_secs(),
            entry.duration.subsec_nanos()
        );
        stored.push_str(&entry.suite);
        stored.push_str(&entry.name);
        let json_at = stored.len()..stored.len() + json.len();
        stored.push_str(&json);
        let text_at = stored.len()..stored.len() + text.len();
        stored.push_str(&text);
        stored.push('\n');
        Record {
            suite: entry.suite.clone(),
            name: entry.name.clone(),
            outcome: entry.outcome,
            duration: entry.duration,
            stored,
            entry: json_at,
            text: text_at,
        }
    }

    /// Its part of the report.
    pub(crate) fn text(&self) -> &str {
        self.stored.get(self.text.clone()).unwrap_or_default()
    }

    /// The entry, parsed from what the state holds.
    pub(crate) fn entry(&self) -> Result<Entry, String> {
        let json = self.stored.get(self.entry.clone()).unwrap_or_default();
        serde_json::from_str(json).map_err(|error| format!("the entry of {} cannot be read ({error})", self.name))
    }
}

/// A run's report: its suites and its records, sorted by suite and name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    /// The run the entries belong to.
    pub run: String,
    /// The process whose life is the run's (cargo or nextest), to tell a finished run from one
    /// still going.
    pub owner: Option<RunOwner>,
    /// One per test binary, sorted by suite.
    pub suites: Vec<SuiteInfo>,
    /// The format the records' texts are in.
    format: ReportFormat,
    /// One per test.
    pub records: Vec<Record>,
}

/// How a header names `format`.
fn format_name(format: ReportFormat) -> &'static str {
    match format {
        ReportFormat::Json => "json",
        ReportFormat::Junit => "junit",
    }
}

impl State {
    /// A run's state with nothing recorded yet.
    pub(crate) fn new(run: String, owner: Option<RunOwner>, format: ReportFormat) -> State {
        State {
            run,
            owner,
            suites: Vec::new(),
            format,
            records: Vec::new(),
        }
    }

    /// The state `text` holds, its texts in `format`: made anew (`render`) only where the state
    /// holds them in another, or as another version of gpu-test made them.
    pub(crate) fn parse(text: &str, format: ReportFormat, render: RenderEntry) -> Result<State, Unreadable> {
        let damaged = Unreadable::Damaged;
        let Some(rest) = text.strip_prefix(MARK) else {
            return Err(Unreadable::OtherLayout("the layout of gpu-test 0.1.0".to_string()));
        };
        let (layout, rest) = rest.split_once('\n').ok_or(damaged("its first line has no end".to_string()))?;
        if layout != LAYOUT {
            return Err(Unreadable::OtherLayout(format!("layout {}", quoted(layout))));
        }
        let (header, mut rest) = rest.split_once('\n').ok_or(damaged("its header has no end".to_string()))?;
        let header: Header =
            serde_json::from_str(header).map_err(|error| damaged(format!("its header cannot be read ({error})")))?;
        let mut records = Vec::new();
        while !rest.is_empty() {
            let record;
            (record, rest) =
                read_record(rest).map_err(|why| damaged(format!("record {} {why}", records.len() + 1)))?;
            records.push(record);
        }
        let mut state = State {
            run: header.run,
            owner: header.owner,
            suites: header.suites,
            format,
            records,
        };
        if header.format != format_name(format) || header.gpu_test_version != VERSION {
            for record in &mut state.records {
                *record = Record::new(&record.entry().map_err(damaged)?, render);
            }
        }
        Ok(state)
    }

    /// Adds a process's suite and entries; a test recorded again replaces its earlier record
    /// (see [`Entry::superseding`]). The error says which earlier record cannot be read.
    pub(crate) fn merge(
        &mut self,
        suite: SuiteInfo,
        entries: Vec<Entry>,
        render: RenderEntry,
    ) -> Result<(), Unreadable> {
        match self.suites.iter_mut().find(|s| s.suite == suite.suite) {
            Some(existing) => *existing = suite,
            None => self.suites.push(suite),
        }
        self.suites.sort_by(|a, b| a.suite.cmp(&b.suite));
        let key = |record: &Record| (Arc::clone(&record.suite), record.name.clone());
        // Only a state written by hand is out of order: gpu-test keeps it sorted.
        if !self.records.is_sorted_by(|a, b| (&*a.suite, &a.name) <= (&*b.suite, &b.name)) {
            self.records.sort_by_key(key);
        }
        for entry in entries {
            let (suite, name) = test_key(&entry);
            match self
                .records
                .binary_search_by(|record| (&*record.suite, record.name.as_str()).cmp(&(suite, name)))
            {
                Ok(index) => {
                    let existing = self.records[index].entry().map_err(Unreadable::Damaged)?;
                    let entry = entry.superseding(existing);
                    self.records[index] = Record::new(&entry, render);
                }
                Err(index) => self.records.insert(index, Record::new(&entry, render)),
            }
        }
        Ok(())
    }

    /// The format its records' texts are in.
    #[cfg(test)]
    pub(crate) fn format(&self) -> ReportFormat {
        self.format
    }

    /// How many tests ended so.
    pub(crate) fn count(&self, outcome: Outcome) -> usize {
        self.records.iter().filter(|r| r.outcome == outcome).count()
    }

    /// The state as its file holds it.
    #[cfg(test)]
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::new();
        self.write_text(&mut text);
        text
    }

    /// Writes the state as its file holds it into `text`, which is emptied first.
    pub(crate) fn write_text(&self, text: &mut String) {
        // A header, as `Header` reads it back, without copying the suites.
        #[derive(Serialize)]
        struct Written<'a> {
            run: &'a str,
            owner: Option<RunOwner>,
            gpu_test_version: &'a str,
            format: &'a str,
            suites: &'a [SuiteInfo],
        }
        let header = Written {
            run: &self.run,
            owner: self.owner,
            gpu_test_version: VERSION,
            format: format_name(self.format),
            suites: &self.suites,
        };
        let header = serde_json::to_string(&header).unwrap_or_default();
        let records: usize = self.records.iter().map(|r| r.stored.len()).sum();
        text.clear();
        text.reserve(MARK.len() + LAYOUT.len() + header.len() + 2 + records);
        text.push_str(MARK);
        text.push_str(LAYOUT);
        text.push('\n');
        text.push_str(&header);
        text.push('\n');
        for record in &self.records {
            text.push_str(&record.stored);
        }
    }
}

/// The record at the start of `text`, and what follows it; the error says what is wrong with it.
fn read_record(text: &str) -> Result<(Record, &str), String> {
    let line = text.split('\n').next().filter(|line| line.len() < text.len()).ok_or("has no end")?;
    let fields: Vec<&str> = line.splitn(8, ' ').collect();
    let [suite, name, entry, part, secs, nanos, outcome] = fields[..] else {
        return Err(format!("starts with {}, not seven fields", quoted(line)));
    };
    let number = |field: &str| {
        field
            .parse::<usize>()
            .map_err(|_| format!("has {} where a length belongs", quoted(field)))
    };
    let lengths = [number(suite)?, number(name)?, number(entry)?, number(part)?];
    let secs: u64 = secs
        .parse()
        .map_err(|_| format!("has {} for its duration's seconds", quoted(secs)))?;
    let nanos: u32 = nanos
        .parse()
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| format!("has {} for its duration's nanoseconds", quoted(nanos)))?;
    let outcome = match outcome {
        "passed" => Outcome::Passed,
        "failed" => Outcome::Failed,
        "skipped" => Outcome::Skipped,
        other => return Err(format!("has the outcome {}", quoted(other))),
    };
    // Where the suite, the name, the entry and the text start, and where the last ends.
    const SHORT: &str = "is shorter than its lengths say";
    let mut bounds = [line.len() + 1; 5];
    for (i, length) in lengths.into_iter().enumerate() {
        bounds[i + 1] = bounds[i].checked_add(length).ok_or(SHORT)?;
    }
    let part = |i: usize| text.get(bounds[i]..bounds[i + 1]).ok_or(SHORT);
    let (suite, name) = (part(0)?, part(1)?);
    // Both are taken from `stored` later: each must end where a character does.
    part(2)?;
    part(3)?;
    let end = bounds[4];
    if text.get(end..).is_none_or(|after| !after.starts_with('\n')) {
        return Err("does not end where its lengths say".to_string());
    }
    let (stored, rest) = text.split_at(end + 1);
    let record = Record {
        suite: Arc::from(suite),
        name: name.to_string(),
        outcome,
        duration: Duration::new(secs, nanos),
        stored: stored.to_string(),
        entry: bounds[2]..bounds[3],
        text: bounds[3]..bounds[4],
    };
    Ok((record, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::report::model::Cause;

    fn entry(suite: &str, name: &str, outcome: Outcome) -> Entry {
        Entry {
            outcome,
            cause: Cause::None,
            duration: Duration::new(2, 5),
            ..Entry::started(&Arc::from(suite), name)
        }
    }

    fn suite(name: &str) -> SuiteInfo {
        SuiteInfo {
            suite: name.to_string(),
            probe: "probe".to_string(),
            driver_release: None,
            cuda_version: None,
            devices: Vec::new(),
            environment: Default::default(),
        }
    }

    fn text_of(entry: &Entry) -> String {
        format!("<{} {}>\n", entry.name, entry.suite)
    }

    fn state() -> State {
        let mut state = State::new("run-1".to_string(), None, ReportFormat::Junit);
        let entries = vec![entry("gpu", "b", Outcome::Passed), entry("gpu", "a", Outcome::Skipped)];
        state.merge(suite("gpu"), entries, &text_of).unwrap();
        state
    }

    #[test]
    fn a_state_is_written_as_a_header_and_records_of_lengths() {
        let text = state().to_text();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("gpu-test report state 2"));
        let header = format!("{{\"run\":\"run-1\",\"owner\":null,\"gpu_test_version\":\"{VERSION}\",\"format\":\"junit\"");
        assert!(lines.next().unwrap().starts_with(&header));
        let entry = serde_json::to_string(&entry("gpu", "a", Outcome::Skipped)).unwrap();
        assert_eq!(lines.next(), Some(format!("3 1 {} 8 2 5 skipped", entry.len()).as_str()));
        assert_eq!(lines.next(), Some(format!("gpua{entry}<a gpu>").as_str()));
        assert_eq!(whose(&text), Some(Whose { run: "run-1".to_string(), owner: None }));
    }

    /// A state of another layout, earlier or later, still says whose it is, so that a run never
    /// writes over another run's report, nor silently over its own; reading it says it is of
    /// another layout.
    #[test]
    fn another_layout_says_whose_it_is() {
        let earlier = r#"{"run":"run-0","owner":{"pid":7,"start":9},"suites":[],"entries":[]}"#;
        assert_eq!(
            whose(earlier),
            Some(Whose { run: "run-0".to_string(), owner: Some(RunOwner { pid: 7, start: 9 }) })
        );
        assert_eq!(
            State::parse(earlier, ReportFormat::Json, &text_of),
            Err(Unreadable::OtherLayout("the layout of gpu-test 0.1.0".to_string()))
        );
        let later = "gpu-test report state 3\n{\"run\":\"run-9\",\"owner\":null,\"more\":1}\nwhatever\n";
        assert_eq!(whose(later), Some(Whose { run: "run-9".to_string(), owner: None }));
        assert_eq!(
            State::parse(later, ReportFormat::Json, &text_of),
            Err(Unreadable::OtherLayout("layout \"3\"".to_string()))
        );
        assert_eq!(whose("garbage"), None);
        assert_eq!(whose("gpu-test report state 2"), None);
    }

    /// Whatever a damaged state holds, reading it says what is wrong, and never panics.
    #[test]
    fn a_damaged_state_is_an_error_naming_the_record() {
        let text = state().to_text();
        let mark_end = text.find('\n').unwrap() + 1;
        let header_end = mark_end + text[mark_end..].find('\n').unwrap() + 1;
        let records = header_end;
        let first = &text[records..];
        let first_line = &first[..first.find('\n').unwrap()];
        let with_line = |line: &str| format!("{}{line}{}", &text[..records], &first[first_line.len()..]);
        let error = |text: &str| match State::parse(text, ReportFormat::Junit, &text_of) {
            Err(Unreadable::Damaged(why)) => why,
            other => panic!("{other:?}"),
        };
        let fields: Vec<&str> = first_line.split(' ').collect();
        let replaced = |at: usize, value: &str| {
            let mut fields = fields.clone();
            fields[at] = value;
            with_line(&fields.join(" "))
        };
        for (damaged, says) in [
            (text[..text.len() - 1].to_string(), "record 2 does not end where its lengths say"),
            (text[..text.len() - 8].to_string(), "record 2 is shorter than its lengths say"),
            (replaced(0, "4"), "record 1 does not end where its lengths say"),
            (replaced(0, "x"), "record 1 has \"x\" where a length belongs"),
            (replaced(2, &usize::MAX.to_string()), "record 1 is shorter than its lengths say"),
            (replaced(3, "-1"), "record 1 has \"-1\" where a length belongs"),
            (replaced(4, "99999999999999999999"), "record 1 has \"99999999999999999999\" for its duration's seconds"),
            (replaced(5, "1000000000"), "record 1 has \"1000000000\" for its duration's nanoseconds"),
            (replaced(6, "lost"), "record 1 has the outcome \"lost\""),
            (with_line("3 1"), "record 1 starts with \"3 1\", not seven fields"),
            (with_line(&format!("{first_line} and more")), "not seven fields"),
            (
                replaced(6, &"x".repeat(1 << 20)),
                "record 1 has the outcome \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"...",
            ),
            (text[..header_end - 1].to_string(), "its header has no end"),
            (text.replacen("\"run\"", "\"ran\"", 1), "its header cannot be read"),
        ] {
            let error = error(&damaged);
            assert!(error.contains(says), "{error}");
        }
        // A length that ends inside a character is damage too.
        let mut state = State::new("run-1".to_string(), None, ReportFormat::Junit);
        state.merge(suite("gpu"), vec![entry("gpu", "é", Outcome::Passed)], &text_of).unwrap();
        let text = state.to_text();
        let split = text.replacen("3 2 ", "3 1 ", 1);
        assert!(error(&split).contains("record 1"), "{}", error(&split));
        // Between the entry and its text: one byte more of the first, one less of the second.
        let starts_wide = |entry: &Entry| format!("é{}", entry.name);
        let mut state = State::new("run-1".to_string(), None, ReportFormat::Junit);
        state.merge(suite("gpu"), vec![entry("gpu", "a", Outcome::Passed)], &starts_wide).unwrap();
        let text = state.to_text();
        let json = serde_json::to_string(&entry("gpu", "a", Outcome::Passed)).unwrap().len();
        let shifted = text.replacen(&format!("3 1 {json} 3 "), &format!("3 1 {} 2 ", json + 1), 1);
        assert_ne!(shifted, text);
        let why = error(&shifted);
        assert_eq!(why, "record 1 is shorter than its lengths say");
    }

    #[test]
    fn a_record_whose_entry_cannot_be_read_fails_the_merge_that_replaces_it() {
        // The same length, so that only the entry's JSON is wrong: it lacks its outcome.
        let text = state().to_text().replacen("\"outcome\":", "\"outcame\":", 1);
        let mut read = State::parse(&text, ReportFormat::Junit, &text_of).unwrap();
        let error = read
            .merge(suite("gpu"), vec![entry("gpu", "a", Outcome::Passed)], &text_of)
            .unwrap_err();
        let Unreadable::Damaged(why) = error else {
            panic!("{error:?}")
        };
        assert!(why.starts_with("the entry of a cannot be read ("), "{why}");
    }
}
