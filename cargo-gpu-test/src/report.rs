//! gpu-test's JSON report (`GPU_TEST_REPORT=<path>.json`), read back: what every GPU test of a
//! run did, on which devices, with which timings, and what each test binary saw of its machine.
//! Fields added by later versions are ignored; a field this version needs and does not find is
//! an error naming the file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// What two reports' suite names are compared by: cargo test names a target by its crate name,
/// where nextest keeps the target's own (`my-crate::gpu_smoke` and `my-crate::gpu-smoke` are one
/// binary), so a hyphen and an underscore count as one.
pub fn suite_key(suite: &str) -> String {
    suite.replace('-', "_")
}

/// One run's report.
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    /// The run's identity.
    pub run: String,
    /// When it was written (UTC, RFC 3339); reports of older versions have none.
    #[serde(default)]
    pub written_at: Option<String>,
    /// The host it was written on.
    #[serde(default)]
    pub host: Option<String>,
    /// What each test binary saw of its machine.
    #[serde(default)]
    pub suites: Vec<Suite>,
    /// One per GPU test.
    pub tests: Vec<Test>,
}

/// A test binary and its machine.
#[derive(Debug, Clone, Deserialize)]
pub struct Suite {
    /// `package::target`.
    pub suite: String,
    /// The probe's summary line.
    #[serde(default)]
    pub probe: String,
    /// The NVIDIA driver release (`580.65.06`).
    #[serde(default)]
    pub driver_release: Option<String>,
    /// The CUDA version the driver supports.
    #[serde(default)]
    pub cuda_version: Option<String>,
    /// The devices the binary saw.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// The CUDA-related variables that were set.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

/// A device.
#[derive(Debug, Clone, Deserialize)]
pub struct Device {
    /// Its CUDA ordinal in the test's process.
    pub ordinal: usize,
    /// Its name.
    pub name: String,
    /// `9.0`.
    pub compute_capability: String,
}

impl Device {
    /// `device 0 NVIDIA H100 (sm_90)`.
    pub fn label(&self) -> String {
        format!(
            "{} (sm_{})",
            self.short_label(),
            self.compute_capability.replace('.', "")
        )
    }

    /// `device 0 NVIDIA H100`, as a timing names its device.
    pub fn short_label(&self) -> String {
        format!("device {} {}", self.ordinal, self.name)
    }
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The body ran and succeeded.
    Passed,
    /// The body failed, or strict mode failed an unmet requirement.
    Failed,
    /// A requirement was unmet.
    Skipped,
    /// An outcome a later gpu-test records and this cargo-gpu-test does not know.
    #[serde(other)]
    Other,
}

/// One GPU test.
#[derive(Debug, Clone, Deserialize)]
pub struct Test {
    /// Its binary.
    pub suite: String,
    /// Its name, as libtest prints it.
    pub name: String,
    /// For one device's run of an `each_device` test (`tests::a::cuda0`), the test's own name.
    #[serde(default)]
    pub each_device_of: Option<String>,
    /// Where it is defined.
    #[serde(default)]
    pub file: Option<String>,
    /// The line of its definition.
    #[serde(default)]
    pub line: Option<u32>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was skipped, or how it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The fix for an unmet requirement.
    #[serde(default)]
    pub hint: Option<String>,
    /// The devices its body ran on: empty when it did not run on a GPU.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Its timed regions.
    #[serde(default)]
    pub timings: Vec<Timing>,
    /// How earlier attempts of the run failed (nextest's `--retries`): a test that then passed
    /// is flaky.
    #[serde(default)]
    pub earlier_failures: Vec<String>,
}

impl Test {
    /// Whether its body ran on a GPU (passed or failed there).
    pub fn ran_on_a_gpu(&self) -> bool {
        !self.devices.is_empty()
    }

    /// The test this entry is a run of: its own name, or the `each_device` test it ran for.
    pub fn test_name(&self) -> &str {
        self.each_device_of.as_deref().unwrap_or(&self.name)
    }

    /// `tests/gpu.rs:12`, when known.
    pub fn location(&self) -> Option<String> {
        Some(format!("{}:{}", self.file.as_ref()?, self.line?))
    }
}

/// A timed region: the aggregate of every `gpu.time` with one label on one device.
#[derive(Debug, Clone, Deserialize)]
pub struct Timing {
    /// The label.
    pub label: String,
    /// `device 0 NVIDIA H100`.
    pub device: String,
    /// How many times it was timed.
    pub count: usize,
    /// The median, in milliseconds.
    pub median_ms: f64,
    /// The fastest, in milliseconds.
    #[serde(default)]
    pub min_ms: f64,
    /// The slowest, in milliseconds.
    #[serde(default)]
    pub max_ms: f64,
}

impl Report {
    /// The suite named `name`, if the report describes it.
    pub fn suite(&self, name: &str) -> Option<&Suite> {
        self.suites.iter().find(|s| s.suite == name)
    }

    /// The tests that ended so.
    pub fn ended(&self, outcome: Outcome) -> Vec<&Test> {
        self.tests.iter().filter(|t| t.outcome == outcome).collect()
    }

    /// How many tests ended so.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.ended(outcome).len()
    }
}

/// The most of a report that is read: far more than any run's, and a bound on what a file put in
/// its place can make this command hold.
pub const REPORT_LIMIT: u64 = 256 << 20;

/// What an open report holds, read to its end but no further than [`REPORT_LIMIT`]; the error
/// says why it cannot be had.
pub fn read_bounded(file: std::fs::File) -> Result<Vec<u8>, String> {
    crate::files::read_at_most(file, REPORT_LIMIT)?.ok_or_else(|| {
        format!(
            "it is larger than {} MiB, more than any report gpu-test writes",
            REPORT_LIMIT >> 20
        )
    })
}

/// Reads the report at `path`; the error names the file and what is wrong with it. Only a
/// regular file is read, without waiting on a FIFO and no more than [`REPORT_LIMIT`], so that a
/// path among many (`reports/*.json` in a shared directory) cannot stop or exhaust the command.
pub fn load(path: &Path) -> Result<Report, String> {
    let cannot = |why: String| format!("cannot read the report {}: {why}", path.display());
    let (file, _) = crate::files::open_regular(path).map_err(cannot)?;
    let bytes = read_bounded(file).map_err(cannot)?;
    let text =
        String::from_utf8(bytes).map_err(|_| cannot("it is not UTF-8 text, as a report is".to_string()))?;
    parse(&text).map_err(|error| {
        format!(
            "{} is not a gpu-test JSON report ({error}); a run writes one with GPU_TEST_REPORT=<path>.json",
            path.display()
        )
    })
}

/// Parses a report's text. Control characters in its text other than line breaks and tabs (a
/// report may come from another machine) are replaced, so that printing it cannot drive the
/// terminal; so are the marks and overrides of bidirectional text, with which a name can read as
/// another, and the line and paragraph separators. They are replaced in the JSON text, before
/// the one parse: a parse into a `serde_json::Value` to clean would hold every value of the file
/// (also those of fields a report does not have) at tens of bytes each.
pub fn parse(text: &str) -> Result<Report, String> {
    if text.trim_start().starts_with('<') {
        return Err("it is XML (a JUnit report)".to_string());
    }
    serde_json::from_str::<Report>(&made_safe(text)).map_err(|error| error.to_string())
}

/// Whether a character read from a report is replaced (see [`parse`]): a failure's message keeps
/// its lines and tabs.
fn is_unsafe(c: char) -> bool {
    c != '\n' && c != '\t' && gpu_test_runtime::__companion::changes_what_text_shows(c)
}

/// The JSON `text` with every character [`is_unsafe`] in its strings (and keys) replaced with
/// U+FFFD: one written as an escape (`\u001b`, `\r`) by the escape `\ufffd`, one written as
/// itself by itself. A control below space written as itself is left for the parse to refuse, as JSON
/// does; a character replaced outside a string leaves the text as far from JSON as it was.
fn made_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let mut made = String::new();
    // How much of `text` is in `made`: nothing until a character is replaced.
    let mut copied = 0;
    let mut replace = |made: &mut String, range: std::ops::Range<usize>, with: &str| {
        if made.is_empty() {
            made.reserve(text.len());
        }
        made.push_str(&text[copied..range.start]);
        made.push_str(with);
        copied = range.end;
    };
    let mut in_string = false;
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => in_string = !in_string,
            '\\' if in_string => {
                // Only `\u` is followed by more than one character; a malformed escape is the
                // parse's to refuse. Of the short escapes, `\b`, `\f` and `\r` are controls (as
                // serde_json writes them): replaced too.
                let escaped = chars.next().map(|(_, escaped)| escaped);
                if matches!(escaped, Some('b' | 'f' | 'r')) {
                    replace(&mut made, at..at + 2, "\\ufffd");
                    continue;
                }
                let digits = text
                    .get(at + 2..at + 6)
                    .filter(|digits| escaped == Some('u') && digits.bytes().all(|b| b.is_ascii_hexdigit()));
                if let Some(digits) = digits {
                    let named = u32::from_str_radix(digits, 16).ok().and_then(char::from_u32);
                    if named.is_some_and(is_unsafe) {
                        replace(&mut made, at..at + 6, "\\ufffd");
                    }
                    chars.nth(3);
                }
            }
            c if c >= '\u{7f}' && is_unsafe(c) => replace(&mut made, at..at + c.len_utf8(), "\u{fffd}"),
            _ => {}
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    made.push_str(&text[copied..]);
    std::borrow::Cow::Owned(made)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report as gpu-test writes it, for the other modules' tests.
    pub(crate) fn sample() -> Report {
        parse(include_str!("../tests/data/report.json")).unwrap()
    }

    #[test]
    fn a_written_report_is_read() {
        let report = sample();
        assert_eq!(report.tests.len(), 4);
        assert_eq!(report.count(Outcome::Skipped), 2);
        let saxpy = report.tests.iter().find(|t| t.name == "saxpy").unwrap();
        assert!(saxpy.ran_on_a_gpu());
        assert_eq!(saxpy.devices[0].compute_capability, "9.0");
        assert_eq!(saxpy.location().as_deref(), Some("tests/gpu.rs:12"));
        assert_eq!(saxpy.timings[0].median_ms, 0.0413);
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        assert!(
            parse("<?xml version=\"1.0\"?><testsuites/>")
                .unwrap_err()
                .contains("JUnit")
        );
        let error = parse("{\"run\": \"r\"}").unwrap_err();
        assert!(error.contains("missing field `tests`"), "{error}");
    }

    #[test]
    fn an_outcome_of_a_later_version_is_read_as_other() {
        let report = parse(
            "{\"run\": \"r\", \"tests\": [{\"suite\": \"s\", \"name\": \"n\", \"outcome\": \"timed_out\"}]}",
        )
        .unwrap();
        assert_eq!(report.tests[0].outcome, Outcome::Other);
    }

    #[test]
    fn control_characters_from_a_report_never_reach_the_terminal() {
        let report = parse(
            "{\"run\": \"r\\u001b]0;owned\\u0007\", \"host\": \"h\\u009b2J\", \"tests\": [{\"suite\": \"s\", \
             \"name\": \"n\\n\", \"outcome\": \"skipped\", \"reason\": \"\\u001b[31mred\"}]}",
        )
        .unwrap();
        assert_eq!(report.run, "r\u{fffd}]0;owned\u{fffd}");
        assert_eq!(report.host.as_deref(), Some("h\u{fffd}2J"));
        assert_eq!(report.tests[0].name, "n\n", "line breaks are kept");
        assert_eq!(report.tests[0].reason.as_deref(), Some("\u{fffd}[31mred"));
        let report = parse(
            "{\"run\": \"r\", \"tests\": [{\"suite\": \"s\", \"name\": \"gpu_\\u202etset\\u2069\", \
             \"outcome\": \"skipped\", \"reason\": \"a\\u2028b — é\"}]}",
        )
        .unwrap();
        assert_eq!(report.tests[0].name, "gpu_\u{fffd}tset\u{fffd}");
        assert_eq!(report.tests[0].reason.as_deref(), Some("a\u{fffd}b — é"));
        // Written as themselves (JSON lets a string hold DEL, C1 controls and every mark), in
        // keys too, and escaped in upper case; an escaped backslash before `u001b` is text.
        let report = parse(
            "{\"run\": \"r\u{7f}\u{9b}\", \"tests\": [{\"suite\": \"s\", \"name\": \"gpu_\u{202e}tset\u{2069}\", \
             \"outcome\": \"skipped\", \"reason\": \"\\\\u001b \\u001B \\\"\\u2028\", \"x\u{202e}\": 1}]}",
        )
        .unwrap();
        assert_eq!(report.run, "r\u{fffd}\u{fffd}");
        assert_eq!(report.tests[0].name, "gpu_\u{fffd}tset\u{fffd}");
        assert_eq!(
            report.tests[0].reason.as_deref(),
            Some("\\u001b \u{fffd} \"\u{fffd}")
        );
        // What is not JSON stays so: a control below space written as itself, a bad escape.
        for text in [
            "{\"run\": \"r\u{1b}\", \"tests\": []}",
            "{\"run\": \"r\\u00\", \"tests\": []}",
            "{\"run\": \"r\\u001\"}",
            "{\"run\": \"r\\",
            "\u{202e}{\"run\": \"r\", \"tests\": []}",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        // The short escapes of controls, as serde_json writes them: a carriage return would let a
        // line overwrite another.
        let report = parse(
            "{\"run\": \"r\\b\\f\", \"tests\": [{\"suite\": \"s\", \"name\": \"gpu_x\\rgpu_ok ... ok\", \
             \"outcome\": \"skipped\", \"reason\": \"a\\nb\\tc\\\\r\"}]}",
        )
        .unwrap();
        assert_eq!(report.run, "r\u{fffd}\u{fffd}");
        assert_eq!(report.tests[0].name, "gpu_x\u{fffd}gpu_ok ... ok");
        assert_eq!(
            report.tests[0].reason.as_deref(),
            Some("a\nb\tc\\r"),
            "kept, and an escaped backslash"
        );
        assert!(matches!(
            made_safe("{\"a\": \"é\"}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
