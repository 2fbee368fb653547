//! The ledger: from the reports of many runs on many machines, which GPU tests never ran on a GPU
//! (or never on a given compute capability or driver), and when each last did. A GPU test that is
//! skipped everywhere passes everywhere; only the reports of all runs together show it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{Report, Test, suite_key};

/// What counts as having run: on any GPU, or only on these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A compute capability (`9.0`) one of the test's devices must have.
    pub compute: Option<String>,
    /// A driver release or its prefix (`580`, `580.65.06`).
    pub driver: Option<String>,
}

impl Filter {
    /// Reads `--compute` (`9.0` or `sm_90`) and `--driver` (`580` or `580.65.06`); the error
    /// names the option, the value and what is accepted.
    pub fn new(compute: Option<&str>, driver: Option<&str>) -> Result<Filter, String> {
        let compute = compute.map(parse_compute).transpose()?;
        let driver = match driver {
            Some(d)
                if d.is_empty()
                    || !d
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
            {
                return Err(format!(
                    "--driver {d:?} is not a driver release: give its numbers, e.g. 580 or 580.65.06"
                ));
            }
            d => d.map(str::to_string),
        };
        Ok(Filter { compute, driver })
    }

    fn describe(&self) -> String {
        let mut out = "on a GPU".to_string();
        if let Some(compute) = &self.compute {
            let _ = write!(out, " of compute capability {compute}");
        }
        if let Some(driver) = &self.driver {
            let _ = write!(out, " with driver {driver}");
        }
        out
    }
}

fn parse_compute(text: &str) -> Result<String, String> {
    let digits = text.strip_prefix("sm_").unwrap_or(text);
    let (major, minor) = match digits.split_once('.') {
        Some((major, minor)) => (major, minor),
        // `sm_90`: the last digit is the minor number (split only where a digit ends).
        None if text.starts_with("sm_") && digits.len() >= 2 && digits.is_ascii() => {
            digits.split_at(digits.len() - 1)
        }
        None => ("", ""),
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if number(major) && number(minor) {
        Ok(format!("{}.{}", major.trim_start_matches('0').max("0"), minor))
    } else {
        Err(format!(
            "--compute {text:?} is not a compute capability: give it as 9.0 or sm_90"
        ))
    }
}

/// Whether `release` is `prefix` or starts with it, number by number (`580` matches
/// `580.65.06`, not `5800.1`).
fn release_matches(release: &str, prefix: &str) -> bool {
    let mut release = release.split('.');
    prefix.split('.').all(|part| release.next() == Some(part))
}

/// One run of a test, from one report.
#[derive(Debug, Clone)]
struct Sighting<'a> {
    /// Which report: one report can see a test more than once (each device's run of an
    /// `each_device` test).
    report: usize,
    date: Option<&'a str>,
    host: Option<&'a str>,
    driver: Option<&'a str>,
    test: &'a Test,
}

impl Sighting<'_> {
    fn matches(&self, filter: &Filter) -> bool {
        if !self.test.ran_on_a_gpu() {
            return false;
        }
        let compute_ok = filter.compute.as_ref().is_none_or(|c| {
            self.test
                .devices
                .iter()
                .any(|d| parse_compute(&d.compute_capability).as_ref() == Ok(c))
        });
        let driver_ok = filter
            .driver
            .as_ref()
            .is_none_or(|d| self.driver.is_some_and(|r| release_matches(r, d)));
        compute_ok && driver_ok
    }

    /// `2026-11-28 on gpu-runner-1 (device 0 NVIDIA H200 (sm_90), driver 580.65.06)`.
    fn describe(&self, with_devices: bool) -> String {
        let mut out = self
            .date
            .map(|d| d.get(..10).unwrap_or(d).to_string())
            .unwrap_or_else(|| "(date unknown)".to_string());
        if let Some(host) = self.host {
            let _ = write!(out, " on {host}");
        }
        if with_devices {
            let devices: Vec<String> = self.test.devices.iter().map(|d| d.label()).collect();
            let _ = write!(out, " ({}", devices.join(", "));
            if let Some(driver) = self.driver {
                let _ = write!(out, ", driver {driver}");
            }
            out.push(')');
        }
        out
    }
}

/// A test the ledger lists, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `my-crate::gpu tests::saxpy`.
    pub test: String,
    /// Whether it ran as the filter asks in some report.
    pub ran_as_asked: bool,
    /// The explanation: the last run as asked, else the last run on any GPU, else the last skip.
    pub detail: String,
}

/// The latest of `sightings` by date (reports without a date count as oldest).
fn latest<'s, 'a>(sightings: impl Iterator<Item = &'s Sighting<'a>>) -> Option<&'s Sighting<'a>> {
    sightings.max_by(|a, b| a.date.cmp(&b.date))
}

/// The ledger over `reports`: one entry per GPU test (by binary and name), sorted.
pub fn ledger(reports: &[Report], filter: &Filter) -> Vec<Entry> {
    let mut sightings: BTreeMap<(String, &str), Vec<Sighting<'_>>> = BTreeMap::new();
    for (index, report) in reports.iter().enumerate() {
        for test in &report.tests {
            sightings
                // An `each_device` test is one test, whichever devices each machine named it by,
                // and one binary is one suite, whichever runner named it.
                .entry((suite_key(&test.suite), test.test_name()))
                .or_default()
                .push(Sighting {
                    report: index,
                    date: report.written_at.as_deref(),
                    host: report.host.as_deref(),
                    driver: report
                        .suite(&test.suite)
                        .and_then(|s| s.driver_release.as_deref()),
                    test,
                });
        }
    }
    let mut entries = Vec::new();
    for ((_, name), seen) in sightings {
        // Named as the latest report names it.
        let suite = latest(seen.iter()).map_or("", |s| s.test.suite.as_str());
        let test = format!("{suite} {name}");
        let matching = latest(seen.iter().filter(|s| s.matches(filter)));
        let on_a_gpu = latest(seen.iter().filter(|s| s.test.ran_on_a_gpu()));
        let last = latest(seen.iter());
        let in_reports = seen
            .iter()
            .map(|s| s.report)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let reports = if in_reports == 1 {
            "1 report".to_string()
        } else {
            format!("{in_reports} reports")
        };
        let (ran_as_asked, detail) = match (matching, on_a_gpu, last) {
            (Some(run), _, _) => (true, format!("last ran {}", run.describe(true))),
            (None, Some(run), _) => (
                false,
                format!(
                    "never ran {} in {reports}; last ran on a GPU {}",
                    filter.describe(),
                    run.describe(true)
                ),
            ),
            (None, None, Some(last)) => {
                let why = match (&last.test.reason, last.test.outcome) {
                    (Some(reason), crate::report::Outcome::Skipped) => format!("skipped: {reason}"),
                    (Some(reason), crate::report::Outcome::Other) => {
                        format!("ended in a way this cargo-gpu-test does not know: {reason}")
                    }
                    // An unmet requirement (strict mode) has its fix: the body never ran. Any
                    // other failure without a device (a crash, a kill) may have come from it.
                    (Some(reason), _) if last.test.hint.is_some() => {
                        format!("failed before running: {reason}")
                    }
                    (Some(reason), _) => format!("failed with no device recorded: {reason}"),
                    (None, _) => "did not run".to_string(),
                };
                (
                    false,
                    format!(
                        "never ran on a GPU in {reports}; last seen {}, {why}",
                        last.describe(false)
                    ),
                )
            }
            (None, None, None) => continue,
        };
        entries.push(Entry {
            test,
            ran_as_asked,
            detail,
        });
    }
    entries
}

/// The day reports must be written on or after to count (`--since`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since(String);

impl Since {
    /// Reads `--since` as a calendar day, `2026-11-01`; the error names the value and the form.
    pub fn new(text: &str) -> Result<Since, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let number = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let valid = match parts.as_slice() {
            [year, month, day] => match (number(year, 4), number(month, 2), number(day, 2)) {
                (Some(year), Some(month @ 1..=12), Some(day)) => {
                    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
                    let days = match month {
                        2 if leap => 29,
                        2 => 28,
                        4 | 6 | 9 | 11 => 30,
                        _ => 31,
                    };
                    (1..=days).contains(&day)
                }
                _ => false,
            },
            _ => false,
        };
        if valid {
            Ok(Since(text.to_string()))
        } else {
            Err(format!(
                "--since {text:?} is not a day: give it as YYYY-MM-DD, e.g. 2026-11-01 (reports written that day \
                 or later count)"
            ))
        }
    }

    /// Keeps the reports written on or after the day (a report's time is UTC, as it says); the
    /// count is of those left out, reports without a date among them.
    pub fn keep(&self, reports: Vec<Report>) -> (Vec<Report>, usize) {
        let before = reports.len();
        let kept: Vec<Report> = reports
            .into_iter()
            .filter(|report| {
                report
                    .written_at
                    .as_deref()
                    .and_then(|at| at.get(..10))
                    .and_then(|day| Since::new(day).ok())
                    .is_some_and(|day| day.0 >= self.0)
            })
            .collect();
        let left_out = before - kept.len();
        (kept, left_out)
    }

    /// The day, as given.
    pub fn day(&self) -> &str {
        &self.0
    }
}

/// Refuses a set of reports without a single GPU test: reports of runs that ran none (the wrong
/// package, a filter that left them all out) would otherwise make a ledger that passes.
pub fn check_has_tests(reports: &[Report]) -> Result<(), String> {
    if reports.iter().any(|report| !report.tests.is_empty()) {
        return Ok(());
    }
    Err(format!(
        "no GPU test in {}: were they written by runs of the crates with the #[gpu_test]s, with no filter \
         that left them all out?",
        if reports.len() == 1 {
            "the report".to_string()
        } else {
            format!("any of the {} reports", reports.len())
        }
    ))
}

/// The ledger as text: the tests that did not run as asked (every test with `all`), then a
/// count, which says how many reports `--since` left out. The `bool` is whether any test did not
/// run as asked.
pub fn render(
    reports: &[Report],
    filter: &Filter,
    all: bool,
    since: Option<(&Since, usize)>,
) -> (String, bool) {
    let entries = ledger(reports, filter);
    let missing = entries.iter().filter(|e| !e.ran_as_asked).count();
    let mut out = String::new();
    let shown: Vec<&Entry> = entries.iter().filter(|e| all || !e.ran_as_asked).collect();
    if !shown.is_empty() {
        let width = shown.iter().map(|e| e.test.chars().count()).max().unwrap_or(0);
        for entry in shown {
            let mark = if entry.ran_as_asked { "ran   " } else { "MISSING" };
            let _ = writeln!(out, "{mark:<7} {:<width$}  {}", entry.test, entry.detail);
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} of {} GPU tests in {}{} ran {} at least once{}{}",
        entries.len() - missing,
        entries.len(),
        if reports.len() == 1 {
            "1 report".to_string()
        } else {
            format!("{} reports", reports.len())
        },
        since.map_or(String::new(), |(since, _)| format!(" since {}", since.day())),
        filter.describe(),
        if missing == 0 {
            String::new()
        } else {
            format!("; {missing} never did")
        },
        match since {
            Some((since, left_out @ 1..)) => format!(
                " ({left_out} {} written before {} or without a date left out)",
                if left_out == 1 { "report" } else { "reports" },
                since.day()
            ),
            _ => String::new(),
        }
    );
    (out, missing > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;
    use crate::report::{Device, Outcome};

    #[test]
    fn reports_without_a_gpu_test_are_refused() {
        let mut empty = sample();
        empty.tests.clear();
        let error = check_has_tests(&[empty.clone(), empty.clone()]).unwrap_err();
        assert!(
            error.starts_with("no GPU test in any of the 2 reports: "),
            "{error}"
        );
        assert!(check_has_tests(&[empty, sample()]).is_ok());
    }

    #[test]
    fn a_binary_named_by_cargo_test_and_by_nextest_is_one_test() {
        let mut runs = two_runs();
        for test in &mut runs[0].tests {
            test.suite = test.suite.replace("gpu", "gpu-smoke");
        }
        for test in &mut runs[1].tests {
            test.suite = test.suite.replace("gpu", "gpu_smoke");
        }
        let both = ledger(&runs, &Filter::default());
        assert_eq!(both.len(), ledger(&two_runs(), &Filter::default()).len());
        // Named as the latest report names it.
        assert!(
            both.iter().all(|entry| entry.test.contains("gpu_smoke")),
            "{both:?}"
        );
    }

    /// The sample run, and a later one on an sm_80 machine with driver 550 where `all_reduce`
    /// ran and `saxpy` was skipped.
    fn two_runs() -> Vec<Report> {
        let first = sample();
        let mut second = sample();
        second.written_at = Some("2026-12-01T08:00:00Z".to_string());
        second.host = Some("a100-box".to_string());
        second.suites[0].driver_release = Some("550.54.14".to_string());
        let a100 = Device {
            ordinal: 0,
            name: "NVIDIA A100".to_string(),
            compute_capability: "8.0".to_string(),
        };
        for test in &mut second.tests {
            match test.name.as_str() {
                "all_reduce" => {
                    test.outcome = Outcome::Passed;
                    test.devices = vec![
                        a100.clone(),
                        Device {
                            ordinal: 1,
                            ..a100.clone()
                        },
                    ];
                }
                "saxpy" => {
                    test.outcome = Outcome::Skipped;
                    test.devices.clear();
                    test.reason = Some("no CUDA driver".to_string());
                }
                "kernel_fault" => test.devices = vec![a100.clone()],
                _ => {}
            }
        }
        vec![first, second]
    }

    fn detail<'a>(entries: &'a [Entry], test: &str) -> &'a Entry {
        entries.iter().find(|e| e.test.ends_with(test)).unwrap()
    }

    #[test]
    fn a_failure_without_a_device_is_not_said_to_be_before_the_body() {
        let mut runs = two_runs();
        for run in &mut runs {
            let fault = run.tests.iter_mut().find(|t| t.name == "kernel_fault").unwrap();
            fault.devices.clear();
            fault.hint = None;
            fault.reason =
                Some("its process ended before gpu-test could record how the test did".to_string());
        }
        let entries = ledger(&runs, &Filter::default());
        assert!(
            detail(&entries, " kernel_fault")
                .detail
                .ends_with(", failed with no device recorded: its process ended before gpu-test could record how the test did"),
            "{}",
            detail(&entries, " kernel_fault").detail
        );
        // An unmet requirement that failed in strict mode has its fix: that one never ran.
        for run in &mut runs {
            let fault = run.tests.iter_mut().find(|t| t.name == "kernel_fault").unwrap();
            fault.hint = Some("add a GPU".to_string());
            fault.reason = Some("needs 2 CUDA devices, found 1".to_string());
        }
        let entries = ledger(&runs, &Filter::default());
        assert!(
            detail(&entries, " kernel_fault")
                .detail
                .ends_with(", failed before running: needs 2 CUDA devices, found 1"),
            "{}",
            detail(&entries, " kernel_fault").detail
        );
    }

    #[test]
    fn a_test_skipped_everywhere_is_missing_with_its_last_reason() {
        let entries = ledger(&two_runs(), &Filter::default());
        let big = detail(&entries, " big_matmul");
        assert!(!big.ran_as_asked);
        assert_eq!(
            big.detail,
            "never ran on a GPU in 2 reports; last seen 2026-12-01 on a100-box, skipped: needs 2 CUDA devices, \
             found 1 (CUDA_VISIBLE_DEVICES=0 hides the others)"
        );
        // saxpy ran in the first run only: that is its last run, though it was skipped later.
        let saxpy = detail(&entries, " saxpy");
        assert!(saxpy.ran_as_asked);
        assert_eq!(
            saxpy.detail,
            "last ran 2026-11-28 on gpu-runner-1 (device 0 NVIDIA H200 (sm_90), driver 580.65.06)"
        );
        assert_eq!(entries.iter().filter(|e| !e.ran_as_asked).count(), 1);
    }

    #[test]
    fn filters_ask_for_a_compute_capability_or_a_driver() {
        let runs = two_runs();
        let hopper = Filter::new(Some("sm_90"), None).unwrap();
        let entries = ledger(&runs, &hopper);
        let all_reduce = detail(&entries, " all_reduce");
        assert!(!all_reduce.ran_as_asked);
        assert_eq!(
            all_reduce.detail,
            "never ran on a GPU of compute capability 9.0 in 2 reports; last ran on a GPU 2026-12-01 on a100-box \
             (device 0 NVIDIA A100 (sm_80), device 1 NVIDIA A100 (sm_80), driver 550.54.14)"
        );
        assert!(detail(&entries, " kernel_fault").ran_as_asked);

        let driver_550 = Filter::new(None, Some("550")).unwrap();
        let entries = ledger(&runs, &driver_550);
        assert!(detail(&entries, " all_reduce").ran_as_asked);
        assert!(!detail(&entries, " saxpy").ran_as_asked);
        // A prefix matches whole numbers only.
        assert!(!release_matches("5500.1", "550"));
        assert!(release_matches("550.54.14", "550.54"));
    }

    #[test]
    fn the_text_lists_what_is_missing_and_says_whether_anything_is() {
        let (text, missing) = render(&two_runs(), &Filter::default(), false, None);
        assert!(missing);
        assert!(
            text.starts_with("MISSING my-crate::gpu big_matmul  never ran on a GPU in 2 reports"),
            "{text}"
        );
        assert!(
            text.ends_with("3 of 4 GPU tests in 2 reports ran on a GPU at least once; 1 never did\n"),
            "{text}"
        );
        let (all, _) = render(&two_runs(), &Filter::default(), true, None);
        assert_eq!(all.lines().filter(|l| l.starts_with("ran ")).count(), 3, "{all}");
    }

    #[test]
    fn the_runs_of_an_each_device_test_are_one_test() {
        let mut cpu = sample();
        cpu.tests.retain(|t| t.name == "saxpy");
        cpu.tests[0].outcome = Outcome::Skipped;
        cpu.tests[0].devices.clear();
        let mut gpu = sample();
        gpu.tests.retain(|t| t.name == "saxpy");
        gpu.tests[0].name = "saxpy::cuda0".to_string();
        gpu.tests[0].each_device_of = Some("saxpy".to_string());
        let entries = ledger(&[cpu, gpu], &Filter::default());
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert!(
            entries[0].ran_as_asked && entries[0].test == "my-crate::gpu saxpy",
            "{entries:?}"
        );
    }

    #[test]
    fn since_keeps_the_reports_of_that_day_and_later() {
        let mut runs = two_runs();
        let mut undated = sample();
        undated.written_at = None;
        let mut garbled = sample();
        garbled.written_at = Some("yesterday, about noon".to_string());
        runs.extend([undated, garbled]);
        // The first run is of 2026-11-28, the second of 2026-12-01.
        let since = Since::new("2026-11-29").unwrap();
        let (kept, left_out) = since.keep(runs.clone());
        assert_eq!((kept.len(), left_out), (1, 3));
        assert_eq!(kept[0].host.as_deref(), Some("a100-box"));
        // The day itself counts.
        assert_eq!(Since::new("2026-11-28").unwrap().keep(runs).0.len(), 2);

        // saxpy last ran on 2026-11-28: since the 29th it never did.
        let (text, missing) = render(&kept, &Filter::default(), false, Some((&since, left_out)));
        assert!(missing);
        assert!(text.contains("MISSING my-crate::gpu saxpy "), "{text}");
        assert!(
            text.ends_with(
                "2 of 4 GPU tests in 1 report since 2026-11-29 ran on a GPU at least once; 2 never did \
                 (3 reports written before 2026-11-29 or without a date left out)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_since_that_is_not_a_day_is_named() {
        for good in ["2026-11-01", "2024-02-29", "2000-02-29", "2026-12-31"] {
            assert!(Since::new(good).is_ok(), "{good}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-11-31",
            "2026-13-01",
            "2026-00-10",
            "2026-11-00",
            "2026-1-01",
            "26-11-01",
            "2026-11-01T00:00:00Z",
            "last week",
            "",
        ] {
            let error = Since::new(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("--since {bad:?} is not a day: give it as YYYY-MM-DD")),
                "{error}"
            );
        }
    }

    #[test]
    fn bad_filters_are_named() {
        assert_eq!(
            Filter::new(Some("9.0"), None).unwrap().compute.as_deref(),
            Some("9.0")
        );
        assert_eq!(
            Filter::new(Some("sm_120"), None).unwrap().compute.as_deref(),
            Some("12.0")
        );
        assert!(
            Filter::new(Some("hopper"), None)
                .unwrap_err()
                .contains("--compute \"hopper\"")
        );
        assert!(
            Filter::new(None, Some("r580"))
                .unwrap_err()
                .contains("--driver \"r580\"")
        );
        // A character of more than one byte where the minor digit would be.
        for bad in ["sm_\u{e9}", "sm_9\u{e9}", "sm_\u{e9}9"] {
            let error = Filter::new(Some(bad), None).unwrap_err();
            assert!(error.contains("is not a compute capability"), "{error}");
        }
        // Nor does such a value in a report match, or stop the ledger.
        let mut odd = sample();
        odd.tests.retain(|t| t.name == "saxpy");
        odd.tests[0].devices[0].compute_capability = "sm_9\u{e9}".to_string();
        let entries = ledger(&[odd], &Filter::new(Some("9.0"), None).unwrap());
        assert!(!entries[0].ran_as_asked, "{entries:?}");
    }

    #[test]
    fn reports_are_counted_once_however_often_they_see_a_test() {
        let mut report = sample();
        report.tests.retain(|t| t.name == "saxpy");
        for device in 0..2 {
            let mut run = report.tests[0].clone();
            run.name = format!("saxpy::cuda{device}");
            run.each_device_of = Some("saxpy".to_string());
            report.tests.push(run);
        }
        report.tests.remove(0);
        let entries = ledger(&[report], &Filter::new(Some("12.0"), None).unwrap());
        assert!(
            entries[0]
                .detail
                .starts_with("never ran on a GPU of compute capability 12.0 in 1 report;"),
            "{entries:?}"
        );
    }
}
