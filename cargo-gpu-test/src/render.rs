//! A report for people (`text`) and for CI job summaries (`markdown`): the counts, each test
//! binary's machine, the failures, the skipped tests grouped by reason with the fix, and the GPU
//! timings.

use std::fmt::Write as _;

use crate::report::{Outcome, Report, Test};
use gpu_test_runtime::__companion::{MarkdownPlace, markdown_code, markdown_text};

/// The two ways a report is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Plain text, for a terminal or a log.
    Text,
    /// Markdown, for `$GITHUB_STEP_SUMMARY` and pull-request comments.
    Markdown,
}

/// Skipped tests sharing one reason.
#[derive(Debug)]
pub struct SkipGroup<'a> {
    /// The reason.
    pub reason: &'a str,
    /// The fix.
    pub hint: Option<&'a str>,
    /// The tests, in report order.
    pub tests: Vec<&'a Test>,
}

/// The skipped tests of `report`, grouped by reason, the largest group first.
pub fn skip_groups(report: &Report) -> Vec<SkipGroup<'_>> {
    let mut groups: Vec<SkipGroup<'_>> = Vec::new();
    for test in report.ended(Outcome::Skipped) {
        let reason = test.reason.as_deref().unwrap_or("no reason recorded");
        match groups.iter_mut().find(|g| g.reason == reason) {
            Some(group) => group.tests.push(test),
            None => groups.push(SkipGroup {
                reason,
                hint: test.hint.as_deref(),
                tests: vec![test],
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.tests.len()));
    groups
}

/// `my-crate::gpu tests::a`: a test with its binary.
fn qualified(test: &Test) -> String {
    format!("{} {}", test.suite, test.name)
}

/// `N GPU tests skipped, by reason:` and each group with its fix and its tests: what `cargo
/// gpu-test run` prints after a run, where nextest showed no reasons.
pub fn skipped_text(report: &Report) -> Option<String> {
    let groups = skip_groups(report);
    if groups.is_empty() {
        return None;
    }
    let total: usize = groups.iter().map(|g| g.tests.len()).sum();
    let mut out = format!("{} skipped, by reason:\n", tests(total));
    for group in &groups {
        // A reason's or fix's own line breaks stay inside its indent: no line of theirs can pass
        // for a group or a test of the list.
        let _ = writeln!(out, "  {} x {}", group.tests.len(), continued(group.reason, 6));
        if let Some(hint) = group.hint {
            let _ = writeln!(out, "      fix: {}", continued(hint, 11));
        }
        for test in &group.tests {
            let _ = write!(out, "      {}", qualified(test));
            if let Some(at) = test.location() {
                let _ = write!(out, " ({at})");
            }
            out.push('\n');
        }
    }
    Some(out)
}

fn tests(n: usize) -> String {
    if n == 1 {
        "1 GPU test".to_string()
    } else {
        format!("{n} GPU tests")
    }
}

/// `41.3 us`, `1.20 ms`, `2.50 s`: three significant digits.
pub fn format_ms(ms: f64) -> String {
    let (value, unit) = if ms < 0.001 {
        (ms * 1_000_000.0, "ns")
    } else if ms < 1.0 {
        (ms * 1000.0, "us")
    } else if ms < 1000.0 {
        (ms, "ms")
    } else {
        (ms / 1000.0, "s")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// The whole report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Markdown => markdown(report),
    }
}

/// How many tests passed after an earlier attempt of the run failed.
fn flaky(report: &Report) -> usize {
    retried(report)
        .iter()
        .filter(|test| test.outcome == Outcome::Passed)
        .count()
}

/// Tests an earlier attempt of which failed, however the last ended.
fn retried(report: &Report) -> Vec<&crate::report::Test> {
    report
        .tests
        .iter()
        .filter(|test| !test.earlier_failures.is_empty())
        .collect()
}

/// The heading over the tests whose outcome a later gpu-test wrote: each is listed as a failure
/// is, since it may be one.
const ENDED_OTHERWISE: &str = "Ended in a way this cargo-gpu-test does not know (update it)";

/// The outcomes whose tests are listed one by one with why, each under its heading.
const LISTED: [(Outcome, &str); 2] = [(Outcome::Failed, "Failed"), (Outcome::Other, ENDED_OTHERWISE)];

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
        Outcome::Other => "ended otherwise",
    }
}

fn counts(report: &Report) -> String {
    let flaky = match flaky(report) {
        0 => String::new(),
        n => format!(" ({n} flaky)"),
    };
    let mut counts = format!(
        "{}: {} passed{flaky}, {} failed, {} skipped",
        tests(report.tests.len()),
        report.count(Outcome::Passed),
        report.count(Outcome::Failed),
        report.count(Outcome::Skipped)
    );
    let other = report.count(Outcome::Other);
    if other > 0 {
        let _ = write!(
            counts,
            ", {other} with an outcome this cargo-gpu-test does not know (update it)"
        );
    }
    counts
}

fn written(report: &Report) -> String {
    let mut out = format!("run {}", report.run);
    if let Some(at) = &report.written_at {
        let _ = write!(out, ", written {at}");
    }
    if let Some(host) = &report.host {
        let _ = write!(out, " on {host}");
    }
    out
}

fn machine(suite: &crate::report::Suite) -> String {
    let mut out = match (&suite.driver_release, &suite.cuda_version) {
        (Some(release), Some(cuda)) => format!("driver {release} (CUDA {cuda})"),
        (None, Some(cuda)) => format!("driver with CUDA {cuda}"),
        _ => suite.probe.clone(),
    };
    if !suite.devices.is_empty() {
        let devices: Vec<String> = suite.devices.iter().map(|d| d.label()).collect();
        let _ = write!(out, "; {}", devices.join(", "));
    }
    for (name, value) in &suite.environment {
        let _ = write!(out, "; {name}={value}");
    }
    out
}

fn timing_rows(report: &Report) -> Vec<(String, String, String, usize, String)> {
    let mut rows = Vec::new();
    for test in &report.tests {
        for timing in &test.timings {
            rows.push((
                qualified(test),
                timing.label.clone(),
                timing.device.clone(),
                timing.count,
                format!(
                    "{} (min {}, max {})",
                    format_ms(timing.median_ms),
                    format_ms(timing.min_ms),
                    format_ms(timing.max_ms)
                ),
            ));
        }
    }
    rows
}

fn text(report: &Report) -> String {
    let mut out = format!("gpu-test report: {}\n{}\n", written(report), counts(report));
    if !report.suites.is_empty() {
        out.push_str("\nMachines, per test binary:\n");
        for suite in &report.suites {
            let _ = writeln!(out, "  {}: {}", suite.suite, machine(suite));
        }
    }
    for (outcome, title) in LISTED {
        let tests = report.ended(outcome);
        if tests.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}:");
        for test in tests {
            let _ = write!(out, "  {}", qualified(test));
            if let Some(at) = test.location() {
                let _ = write!(out, " ({at})");
            }
            let _ = writeln!(
                out,
                ": {}",
                continued(test.reason.as_deref().unwrap_or(outcome_word(outcome)), 6)
            );
            if let Some(hint) = &test.hint {
                let _ = writeln!(out, "      fix: {}", continued(hint, 6));
            }
        }
    }
    let retried = retried(report);
    if !retried.is_empty() {
        out.push_str("\nEarlier attempts that failed (nextest's retries):\n");
        for test in retried {
            let _ = writeln!(
                out,
                "  {} (then {}):",
                qualified(test),
                outcome_word(test.outcome)
            );
            // Each attempt on lines of its own, its later lines indented under it: a failure of
            // several lines would run into the next.
            for failure in &test.earlier_failures {
                let _ = writeln!(out, "      {}", continued(failure, 8));
            }
        }
    }
    if let Some(skipped) = skipped_text(report) {
        out.push('\n');
        out.push_str(&skipped);
    }
    let rows = timing_rows(report);
    if !rows.is_empty() {
        out.push_str("\nGPU time (CUDA events), median per region:\n");
        for (test, label, device, count, times) in rows {
            let _ = writeln!(out, "  {test}: {label} {count} x {times}, {device}");
        }
    }
    out
}

/// A message of several lines (an assertion's `left:` and `right:`) for the text layout: each
/// line after the first indented by `indent` spaces, under what it belongs to, so that none
/// reads as an entry of its own.
fn continued(text: &str, indent: usize) -> String {
    text.trim_end().replace('\n', &format!("\n{:indent$}", ""))
}

/// Text for a Markdown table cell: pipes and newlines would break the table, so lines are
/// joined by `<br>`; `<`, `>` and `&` are escaped outside code spans, or GitHub would take
/// `Vec<u8>` in a message for a tag and drop it.
fn cell(text: &str) -> String {
    let text = text.trim_end();
    // A failure's message may hold whole arrays (`assert_eq!` of a kernel's output): a cell
    // keeps its start, and the JSON report has the rest.
    let cut;
    let text = match text.char_indices().nth(CELL_LIMIT) {
        Some((at, _)) => {
            cut = format!(
                "{} … ({} more bytes in the JSON report)",
                &text[..at],
                text.len() - at
            );
            cut.as_str()
        }
        None => text,
    };
    markdown_text(text, MarkdownPlace::Cell)
}

/// A name (of a test, a binary, a file) as one code span of a Markdown table cell.
fn code_cell(text: &str) -> String {
    markdown_code(text, MarkdownPlace::Cell)
}

/// The most characters of a report's text one cell of the Markdown summary shows.
const CELL_LIMIT: usize = 2000;

/// The most test names one skip reason's row of the Markdown summary lists.
const NAMES_LIMIT: usize = 50;

/// The most bytes of the Markdown summary: GitHub refuses a job summary of more than 1 MiB
/// whole, not only its end.
const SUMMARY_LIMIT: usize = 900 << 10;

/// The Markdown summary, cut at a line's end to [`SUMMARY_LIMIT`], saying so.
fn markdown(report: &Report) -> String {
    let mut out = markdown_whole(report);
    if out.len() > SUMMARY_LIMIT {
        let mut end = SUMMARY_LIMIT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        let end = out[..end].rfind('\n').map_or(0, |at| at + 1);
        let left_out = out.len() - end;
        out.truncate(end);
        let _ = writeln!(
            out,
            "\n**The summary is cut here** ({left_out} more bytes): GitHub takes no job summary over 1 MiB. \
             The JSON report has every test."
        );
    }
    out
}

fn markdown_whole(report: &Report) -> String {
    let mut out = format!(
        "## gpu-test\n\n**{}** ({})\n",
        counts(report),
        cell(&written(report))
    );
    if !report.suites.is_empty() {
        out.push_str("\n| test binary | machine |\n|---|---|\n");
        for suite in &report.suites {
            let _ = writeln!(out, "| {} | {} |", code_cell(&suite.suite), cell(&machine(suite)));
        }
    }
    for (outcome, title) in LISTED {
        let tests = report.ended(outcome);
        if tests.is_empty() {
            continue;
        }
        let _ = write!(out, "\n### {title}\n\n| test | where | why |\n|---|---|---|\n");
        for test in tests {
            let mut why = test
                .reason
                .as_deref()
                .map_or(outcome_word(outcome), str::trim_end)
                .to_string();
            if let Some(hint) = &test.hint {
                let _ = write!(why, "; fix: {hint}");
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                code_cell(&qualified(test)),
                test.location().map(|l| code_cell(&l)).unwrap_or_default(),
                cell(&why)
            );
        }
    }
    let retried = retried(report);
    if !retried.is_empty() {
        out.push_str(
            "\n### Earlier attempts that failed (nextest's retries)\n\n| test | then | earlier attempts |\n|---|---|---|\n",
        );
        for test in retried {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                code_cell(&qualified(test)),
                outcome_word(test.outcome),
                test.earlier_failures
                    .iter()
                    .map(|f| cell(f))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
    }
    let groups = skip_groups(report);
    if !groups.is_empty() {
        out.push_str("\n### Skipped, by reason\n\n| tests | reason | fix |\n|---|---|---|\n");
        for group in &groups {
            let mut names: Vec<String> = group
                .tests
                .iter()
                .take(NAMES_LIMIT)
                .map(|t| code_cell(&qualified(t)))
                .collect();
            if group.tests.len() > NAMES_LIMIT {
                names.push(format!("and {} more", group.tests.len() - NAMES_LIMIT));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                names.join("<br>"),
                cell(group.reason),
                cell(group.hint.unwrap_or(""))
            );
        }
    }
    let rows = timing_rows(report);
    if !rows.is_empty() {
        out.push_str("\n### GPU time (CUDA events)\n\n| test | region | device | count | median |\n|---|---|---|---|---|\n");
        for (test, label, device, count, times) in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {count} | {} |",
                code_cell(&test),
                cell(&label),
                cell(&device),
                cell(&times)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    /// The first test of `report` that `pick` picks, to change.
    fn the_test(report: &mut Report, pick: impl Fn(&Test) -> bool) -> &mut Test {
        report
            .tests
            .iter_mut()
            .find(|t| pick(t))
            .expect("the sample has such a test")
    }

    #[test]
    fn a_reason_on_several_lines_stays_inside_its_group() {
        let mut report = sample();
        for test in report.tests.iter_mut().filter(|t| t.outcome == Outcome::Skipped) {
            test.reason = Some("first\n  1 x not a group".to_string());
            test.hint = Some("do this\nthen that".to_string());
        }
        let text = skipped_text(&report).unwrap();
        assert!(
            text.contains("  2 x first\n        1 x not a group\n      fix: do this\n           then that\n"),
            "{text}"
        );
    }

    #[test]
    fn a_report_cannot_put_a_link_or_an_image_into_the_summary() {
        assert_eq!(
            cell("see ![x](http://e) | [y](http://f)\n<b>"),
            "see !\\[x\\](http\\://e) \\| \\[y\\](http\\://f)<br>&lt;b&gt;"
        );
        // A command in a hint reads as it is typed; a name cannot end its code span early.
        assert_eq!(
            cell("run `lspci | grep -i nvidia` or `cargo add <package>` <b>"),
            "run `lspci \\| grep -i nvidia` or `cargo add <package>` &lt;b&gt;"
        );
        assert_eq!(code_cell("a::`b` | c"), "``a::`b` \\| c``");
    }

    #[test]
    fn a_markdown_summary_stays_within_what_github_takes() {
        let mut report = sample();
        // A failure whose message is a whole array, and thousands of tests skipped for one reason.
        let failed = the_test(&mut report, |t| t.outcome == Outcome::Failed);
        failed.reason = Some("left: [".to_string() + &"0.5, ".repeat(1 << 20) + "]");
        let skipped = report
            .tests
            .iter()
            .find(|t| t.outcome == Outcome::Skipped)
            .unwrap()
            .clone();
        for n in 0..10_000 {
            let mut test = skipped.clone();
            test.name = format!("skipped_{n}");
            report.tests.push(test);
        }
        let text = markdown(&report);
        assert!(text.len() <= SUMMARY_LIMIT + 200, "{} bytes", text.len());
        assert!(text.contains(" … ("), "the long message is cut in its cell");
        assert!(text.contains("more bytes in the JSON report)"));
        assert!(
            text.contains("<br>and 9952 more |"),
            "the names past the first 50"
        );
        // Past the limit, whole lines are left out, and it says so.
        let mut huge = sample();
        for n in 0..600 {
            let mut test = skipped.clone();
            test.name = format!("skipped_{n}");
            test.reason = Some(format!("reason {n} {}", "x".repeat(1900)));
            huge.tests.push(test);
        }
        let text = markdown(&huge);
        assert!(text.len() <= SUMMARY_LIMIT + 200, "{} bytes", text.len());
        assert!(
            text.contains("\n**The summary is cut here** ("),
            "{}",
            &text[text.len() - 300..]
        );
    }

    #[test]
    fn skipped_tests_are_grouped_by_reason_with_the_fix() {
        let report = sample();
        let text = skipped_text(&report).unwrap();
        assert_eq!(
            text,
            "2 GPU tests skipped, by reason:\n  \
             2 x needs 2 CUDA devices, found 1 (CUDA_VISIBLE_DEVICES=0 hides the others)\n      \
             fix: run on a machine with at least 2 GPUs, or unset CUDA_VISIBLE_DEVICES\n      \
             my-crate::gpu all_reduce (tests/gpu.rs:30)\n      \
             my-crate::gpu big_matmul (tests/gpu.rs:40)\n"
        );
    }

    #[test]
    fn a_message_of_several_lines_stays_under_its_test() {
        let mut report = sample();
        let failed = the_test(&mut report, |t| t.outcome == Outcome::Failed);
        failed.reason =
            Some("panicked: assertion `left == right` failed: broken\n  left: 2\n right: 3\n".into());
        failed.hint = Some("a Vec<u8> & more".into());
        let text = render(&report, Format::Text);
        assert!(
            text.contains(
                "  my-crate::gpu kernel_fault (tests/gpu.rs:50): panicked: assertion `left == right` failed: broken\n        \
                 left: 2\n       right: 3\n"
            ),
            "{text}"
        );
        let markdown = render(&report, Format::Markdown);
        assert!(
            markdown.contains(
                "| panicked: assertion `left == right` failed: broken<br>  left: 2<br> right: 3; fix: a Vec&lt;u8&gt; \
                 &amp; more |"
            ),
            "{markdown}"
        );
    }

    #[test]
    fn text_shows_counts_machine_failures_and_timing() {
        let text = render(&sample(), Format::Text);
        assert!(text.starts_with(
            "gpu-test report: run nextest-0f8b6c2e, written 2026-11-28T09:15:02Z on gpu-runner-1\n\
             4 GPU tests: 1 passed, 1 failed, 2 skipped\n"
        ));
        assert!(text.contains(
            "  my-crate::gpu: driver 580.65.06 (CUDA 13.0); device 0 NVIDIA H200 (sm_90); \
             CUDA_VISIBLE_DEVICES=0\n"
        ));
        assert!(text.contains(
            "  my-crate::gpu kernel_fault (tests/gpu.rs:50): left a CUDA error on device 0 NVIDIA H200: \
             CUDA_ERROR_ILLEGAL_ADDRESS (700)\n"
        ));
        assert!(text.contains(
            "  my-crate::gpu saxpy: saxpy 10 x 41.3 us (min 40.9 us, max 44.0 us), device 0 NVIDIA H200\n"
        ));
    }

    #[test]
    fn a_test_that_passed_after_failing_is_flaky_not_clean() {
        let mut report = sample();
        let saxpy = the_test(&mut report, |t| t.name == "saxpy");
        saxpy.earlier_failures = vec![
            "attempt 1: the process ended".to_string(),
            "attempt 2: panicked: broken\n  left: 2\n right: 3".to_string(),
        ];
        let text = render(&report, Format::Text);
        assert!(
            text.contains("4 GPU tests: 1 passed (1 flaky), 1 failed, 2 skipped\n"),
            "{text}"
        );
        // Each attempt on lines of its own, a failure of several lines under it.
        assert!(
            text.contains(
                "Earlier attempts that failed (nextest's retries):\n  my-crate::gpu saxpy (then passed):\n      \
                 attempt 1: the process ended\n      attempt 2: panicked: broken\n          left: 2\n         right: 3\n"
            ),
            "{text}"
        );
        let markdown = render(&report, Format::Markdown);
        assert!(
            markdown.contains("attempt 1: the process ended<br>attempt 2: panicked: broken<br>  left: 2"),
            "{markdown}"
        );
        assert_eq!(format_ms(0.0004), "400 ns");
        // One attempt, for the layouts checked below.
        let saxpy = the_test(&mut report, |t| t.name == "saxpy");
        saxpy.earlier_failures.truncate(1);
        let markdown = render(&report, Format::Markdown);
        assert!(
            markdown.contains("| `my-crate::gpu saxpy` | passed | attempt 1: the process ended |"),
            "{markdown}"
        );
        // A retry that ended skipped is no flaky pass, and its earlier failure is still shown.
        let saxpy = the_test(&mut report, |t| t.name == "saxpy");
        saxpy.outcome = Outcome::Skipped;
        let text = render(&report, Format::Text);
        assert!(!text.contains("flaky"), "{text}");
        assert!(
            text.contains("  my-crate::gpu saxpy (then skipped):\n      attempt 1: the process ended\n"),
            "{text}"
        );
    }

    #[test]
    fn markdown_is_tables_that_survive_pipes() {
        let mut report = sample();
        report.tests[0].reason = Some("a | b".to_string());
        let text = render(&report, Format::Markdown);
        assert!(text.starts_with("## gpu-test\n\n**4 GPU tests: 1 passed, 1 failed, 2 skipped**"));
        assert!(
            text.contains("| `my-crate::gpu all_reduce` | a \\| b | run on a machine"),
            "{text}"
        );
        assert!(
            text.contains("| `my-crate::gpu kernel_fault` | `tests/gpu.rs:50` |"),
            "{text}"
        );
    }

    #[test]
    fn a_test_of_an_outcome_a_later_version_wrote_is_listed_as_a_failure_is() {
        let mut report = sample();
        let fault = the_test(&mut report, |t| t.name == "kernel_fault");
        fault.outcome = Outcome::Other;
        fault.reason = Some("ran past its deadline".to_string());
        let text = render(&report, Format::Text);
        assert!(
            text.contains(
                "\nEnded in a way this cargo-gpu-test does not know (update it):\n  my-crate::gpu kernel_fault \
                 (tests/gpu.rs:50): ran past its deadline\n"
            ),
            "{text}"
        );
        let markdown = render(&report, Format::Markdown);
        assert!(
            markdown.contains(
                "### Ended in a way this cargo-gpu-test does not know (update it)\n\n| test | where | why |\n\
                 |---|---|---|\n| `my-crate::gpu kernel_fault` | `tests/gpu.rs:50` | ran past its deadline"
            ),
            "{markdown}"
        );
    }

    #[test]
    fn times_keep_three_digits() {
        assert_eq!(format_ms(0.0413), "41.3 us");
        assert_eq!(format_ms(1.2), "1.20 ms");
        assert_eq!(format_ms(250.0), "250 ms");
        assert_eq!(format_ms(2500.0), "2.50 s");
    }
}
