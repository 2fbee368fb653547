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
    /// Ignored by `#[ignore]` (or a listing's flag): `ignored`.
    Ignored,
    /// Skipped at run time: `ignored (<reason>)`.
    Skipped(&'a str),
}

/// `--list`: `<name>: test` per test.
pub(crate) fn write_list<'a>(names: impl Iterator<Item = &'a str>) {
    let mut out = String::new();
    for name in names {
        out.push_str(name);
        out.push_str(": test\n");
    }
    write_stdout(&out);
}

/// A whole run of tests that were not run, as libtest prints it: `running N tests`, a line per
/// test (pretty) or an `i` each (terse), and the result line.
pub(crate) fn write_run(tests: &[(&str, NotRun<'_>)], terse: bool, filtered_out: usize, elapsed: Duration) {
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
        if let NotRun::Skipped(reason) = outcome {
            out.push_str(" (");
            out.push_str(reason);
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
    write_stdout(&out);
}

/// Writes `text`; a stdout that cannot be written (a closed pipe) ends the process with 101, as
/// libtest-mimic's panic on it would.
fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(101);
    }
}
