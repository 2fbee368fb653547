//! libtest's own output, written directly for the runs of gpu-test's `main()` that need no test
//! to run: a listing (`--list`, as nextest asks for one), or a run in which every test is
//! skipped or ignored. libtest-mimic writes through an ANSI-escape stripper whenever stdout is
//! not a terminal, which in a debug build costs about 1,400 instructions per byte; this writes
//! the same text, once, through one locked stdout. Anything that has to run still goes through
//! libtest-mimic.

use std::io::Write;
use std::time::Duration;

/// How a test of a run that needs no running ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NotRun<'a> {
    /// Ignored by `#[ignore]`: `ignored`, or `ignored (<text>)` for `#[ignore = "<text>"]`.
    Ignored(Option<&'a str>),
    /// Skipped at run time: `ignored (<reason>)`.
    Skipped(&'a str),
}

impl<'a> NotRun<'a> {
    fn message(self) -> Option<&'a str> {
        match self {
            NotRun::Ignored(text) => text,
            NotRun::Skipped(reason) => Some(reason),
        }
    }
}

/// libtest's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A line per test.
    Pretty,
    /// A character per test.
    Terse,
    /// A JSON event per line (`--format json`); each ignored test carries its reason as
    /// libtest's `message`.
    Json,
}

/// `--list`: `<name>: test` per test. `false` where stdout could not take it (a closed pipe).
#[must_use]
pub(crate) fn write_list<'a>(names: impl Iterator<Item = &'a str>) -> bool {
    let mut out = String::new();
    for name in names {
        out.push_str(name);
        out.push_str(": test\n");
    }
    write_stdout(&out)
}

/// A whole run of tests that were not run, as libtest prints it: `running N tests`, a line per
/// test (pretty) or an `i` each (terse), and the result line; or libtest's JSON events. `false`
/// where stdout could not take it (a closed pipe).
#[must_use]
pub(crate) fn write_run(
    tests: &[(&str, NotRun<'_>)],
    format: Format,
    filtered_out: usize,
    elapsed: Duration,
) -> bool {
    if format == Format::Json {
        return write_stdout(&json_run(tests, filtered_out, elapsed));
    }
    let terse = format == Format::Terse;
    let width = tests
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::with_capacity(64 + tests.len() * (width + 24));
    let plural = if tests.len() == 1 { "" } else { "s" };
    out.push_str(&format!("\nrunning {} test{plural}\n", tests.len()));
    for (name, outcome) in tests {
        if terse {
            out.push('i');
            continue;
        }
        out.push_str("test ");
        out.push_str(name);
        for _ in name.chars().count()..width {
            out.push(' ');
        }
        out.push_str(" ... ignored");
        if let Some(message) = outcome.message() {
            out.push_str(" (");
            out.push_str(message);
            out.push(')');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; {filtered_out} filtered out; finished in \
         {:.2}s\n\n",
        tests.len(),
        elapsed.as_secs_f64()
    ));
    write_stdout(&out)
}

/// The events libtest-mimic writes for `--format json`, with each ignored test's reason as the
/// `message` libtest gives `#[ignore = "..."]`.
fn json_run(tests: &[(&str, NotRun<'_>)], filtered_out: usize, elapsed: Duration) -> String {
    let string = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string());
    let mut out = format!(
        "{{ \"type\": \"suite\", \"event\": \"started\", \"test_count\": {} }}\n",
        tests.len()
    );
    for (name, outcome) in tests {
        let name = string(name);
        out.push_str(&format!(
            "{{ \"type\": \"test\", \"event\": \"started\", \"name\": {name} }}\n"
        ));
        out.push_str(&format!(
            "{{ \"type\": \"test\", \"name\": {name}, \"event\": \"ignored\""
        ));
        if let Some(message) = outcome.message() {
            out.push_str(&format!(", \"message\": {}", string(message)));
        }
        out.push_str(" }\n");
    }
    out.push_str(&format!(
        "{{ \"type\": \"suite\", \"event\": \"ok\", \"passed\": 0, \"failed\": 0, \"ignored\": {}, \"measured\": 0, \
         \"filtered_out\": {filtered_out}, \"exec_time\": {} }}\n",
        tests.len(),
        elapsed.as_secs_f64()
    ));
    out
}

/// Writes `text`; `false` where stdout cannot be written (a closed pipe), which fails the run
/// as libtest-mimic's panic on it would, once the report has what the run recorded.
fn write_stdout(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_carry_each_reason() {
        let tests = [
            ("a", NotRun::Skipped("no \"driver\"")),
            ("b", NotRun::Ignored(Some("slow"))),
            ("c", NotRun::Ignored(None)),
        ];
        let text = json_run(&tests, 2, Duration::ZERO);
        let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), 8, "{text}");
        assert_eq!(events[0]["test_count"], 3);
        assert_eq!(events[2]["event"], "ignored");
        assert_eq!(events[2]["message"], "no \"driver\"");
        assert_eq!(events[4]["message"], "slow");
        assert!(events[6].get("message").is_none(), "{text}");
        assert_eq!(
            (events[7]["ignored"].as_u64(), events[7]["filtered_out"].as_u64()),
            (Some(3), Some(2))
        );
    }
}
