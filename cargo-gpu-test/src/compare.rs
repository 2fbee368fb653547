//! Comparing the GPU time of two runs: for each test and timed region, the old median against
//! the new, with the regions that got slower past a threshold flagged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::render::format_ms;
use crate::report::{Report, suite_key};

/// A percentage given on the command line (`10`, `10%`, `2.5%`); the error names the option.
pub fn parse_percent(option: &str, text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!(
            "{option} {text:?} is not a percentage: give a number of percent, e.g. 10 or 2.5%"
        )),
    }
}

/// One region of one test, in both runs or one.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `my-crate::gpu tests::saxpy`.
    pub test: String,
    /// The region's label.
    pub label: String,
    /// The device's position among the test's devices (0 for most tests), so that runs on
    /// differently named GPUs still line up.
    pub device: usize,
    /// The old median, in milliseconds.
    pub old_ms: Option<f64>,
    /// The new median, in milliseconds.
    pub new_ms: Option<f64>,
    /// Whether the test failed in the new run: a region it no longer timed is then not a rename,
    /// and one it timed before failing is not a clean measurement.
    pub new_failed: bool,
    /// Whether the test failed in the old run: what it timed is no clean baseline either.
    pub old_failed: bool,
}

impl Row {
    /// How much slower the new run is, in percent (negative: faster); infinite for a region that
    /// took no measurable time before and does now.
    pub fn change_percent(&self) -> Option<f64> {
        match (self.old_ms, self.new_ms) {
            (Some(old), Some(new)) if old > 0.0 => Some((new / old - 1.0) * 100.0),
            (Some(_), Some(new)) if new > 0.0 => Some(f64::INFINITY),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        }
    }
}

/// A region: its test (by [`suite_key`] and name), label and device position.
type Key = (String, String, usize);

/// Each region's test as the report names it, and its median.
fn regions(report: &Report) -> BTreeMap<Key, (String, f64)> {
    let mut regions = BTreeMap::new();
    for test in &report.tests {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for timing in &test.timings {
            // The device's place among the test's devices (the timings come in the order they were
            // first timed, which threads on several devices make vary); where the device is not
            // among them, its place among this label's timings.
            let appeared = seen.entry(timing.label.as_str()).or_default();
            let position = test
                .devices
                .iter()
                .position(|device| device.short_label() == timing.device)
                .unwrap_or(*appeared);
            *appeared += 1;
            regions.insert(
                (
                    format!("{} {}", suite_key(&test.suite), test.name),
                    timing.label.clone(),
                    position,
                ),
                (format!("{} {}", test.suite, test.name), timing.median_ms),
            );
        }
    }
    regions
}

/// Every region of either run, sorted by test and label.
pub fn compare(old: &Report, new: &Report) -> Vec<Row> {
    let failed = |report: &Report| -> BTreeSet<String> {
        report
            .tests
            .iter()
            .filter(|test| test.outcome == crate::report::Outcome::Failed)
            .map(|test| format!("{} {}", suite_key(&test.suite), test.name))
            .collect()
    };
    let (failed_in_old, failed_in_new) = (failed(old), failed(new));
    let old = regions(old);
    let mut new = regions(new);
    let mut rows = Vec::new();
    for (key, (test, old_ms)) in old {
        // Named as the new run names it.
        let (test, new_ms) = match new.remove(&key) {
            Some((test, new_ms)) => (test, Some(new_ms)),
            None => (test, None),
        };
        rows.push(Row {
            test,
            new_failed: failed_in_new.contains(&key.0),
            old_failed: failed_in_old.contains(&key.0),
            label: key.1,
            device: key.2,
            old_ms: Some(old_ms),
            new_ms,
        });
    }
    for (key, (test, new_ms)) in new {
        rows.push(Row {
            test,
            new_failed: failed_in_new.contains(&key.0),
            old_failed: failed_in_old.contains(&key.0),
            label: key.1,
            device: key.2,
            old_ms: None,
            new_ms: Some(new_ms),
        });
    }
    rows.sort_by(|a, b| (&a.test, &a.label, a.device).cmp(&(&b.test, &b.label, b.device)));
    rows
}

/// With `--fail-above`, the baseline `old` (read from `path`) must have GPU timings: without any,
/// every region of the new run would read as new, and the gate would pass having compared
/// nothing.
pub fn check_baseline(old: &Report, path: &std::path::Path) -> Result<(), String> {
    if old.tests.iter().any(|test| !test.timings.is_empty()) {
        return Ok(());
    }
    Err(format!(
        "the baseline {} has no GPU timings (regions timed with gpu.time), so --fail-above would compare \
         nothing; give the report of a run whose tests ran on a GPU and timed their regions",
        path.display()
    ))
}

/// The names of the GPUs `report`'s timed tests ran on.
fn timed_gpus(report: &Report) -> BTreeSet<&str> {
    report
        .tests
        .iter()
        .filter(|test| !test.timings.is_empty())
        .flat_map(|test| test.devices.iter().map(|device| device.name.as_str()))
        .collect()
}

/// The comparison as a table, the regions slower than `threshold` percent flagged, and whether
/// any is slower than `fail_above` percent.
pub fn render(old: &Report, new: &Report, threshold: f64, fail_above: Option<f64>) -> (String, bool) {
    let rows = compare(old, new);
    if rows.is_empty() {
        return (
            "neither report has GPU timings (regions timed with gpu.time)\n".to_string(),
            false,
        );
    }
    let mut out = String::new();
    let (old_gpus, new_gpus) = (timed_gpus(old), timed_gpus(new));
    if !old_gpus.is_empty() && !new_gpus.is_empty() && old_gpus != new_gpus {
        let names = |gpus: BTreeSet<&str>| gpus.into_iter().collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            out,
            "note: the runs timed different GPUs (old: {}; new: {}), so a change is the hardware's as much as \
             the code's\n",
            names(old_gpus),
            names(new_gpus)
        );
    }
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let region = if row.device == 0 {
                row.label.clone()
            } else {
                format!("{} (device #{})", row.label, row.device)
            };
            let time = |ms: Option<f64>| ms.map(format_ms).unwrap_or_else(|| "-".to_string());
            let mut change = match (row.change_percent(), row.old_ms, row.new_ms) {
                (Some(p), _, _) if p.is_infinite() => "from 0  SLOWER".to_string(),
                (Some(p), _, _) if p > threshold => format!("{p:+.1}%  SLOWER"),
                (Some(p), _, _) => format!("{p:+.1}%"),
                (None, None, _) => "new".to_string(),
                (None, _, None) => "gone".to_string(),
                _ => "-".to_string(),
            };
            match (row.old_failed, row.new_failed) {
                (_, true) => change.push_str("  (the test failed)"),
                (true, false) => change.push_str("  (the test failed in the old run)"),
                (false, false) => {}
            }
            [
                row.test.clone(),
                region,
                time(row.old_ms),
                time(row.new_ms),
                change,
            ]
        })
        .collect();
    let header = ["test", "region", "old median", "new median", "change"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in std::iter::once(header.map(str::to_string)).chain(cells) {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    let slower: Vec<&Row> = rows
        .iter()
        .filter(|r| r.change_percent().is_some_and(|p| p > threshold))
        .collect();
    let compared = rows.iter().filter(|r| r.change_percent().is_some()).count();
    let _ = write!(
        out,
        "\n{} of {compared} regions slower by more than {threshold}%",
        slower.len(),
    );
    // A lower --fail-above fails regions the threshold leaves unflagged: counted here too.
    match fail_above.filter(|limit| *limit < threshold) {
        Some(limit) => {
            let failing = rows
                .iter()
                .filter(|r| r.change_percent().is_some_and(|p| p > limit))
                .count();
            let _ = writeln!(out, "; {failing} by more than {limit}% (--fail-above)");
        }
        None => out.push('\n'),
    }
    let gone = rows
        .iter()
        .filter(|r| r.old_ms.is_some() && r.new_ms.is_none())
        .count();
    let gone_failed = rows
        .iter()
        .filter(|r| r.old_ms.is_some() && r.new_ms.is_none() && r.new_failed)
        .count();
    if gone > 0 {
        let because = match gone_failed {
            0 => String::new(),
            n if n == gone => " (their tests failed before timing them)".to_string(),
            n => format!(" ({n} of them because their tests failed before timing them)"),
        };
        let _ = writeln!(
            out,
            "{gone} region(s) timed in the old run were not timed in the new one{because}"
        );
    }
    let mut failed = false;
    if let Some(limit) = fail_above {
        // Named one by one: the limit may be below the threshold that flags rows above.
        for row in rows
            .iter()
            .filter(|r| r.change_percent().is_some_and(|p| p > limit))
        {
            let change = match row.change_percent() {
                Some(p) if p.is_infinite() => "from 0".to_string(),
                Some(p) => format!("{p:+.1}%"),
                None => continue,
            };
            let _ = writeln!(
                out,
                "failing: {} region {:?}{} is slower by more than {limit}% ({change}; --fail-above)",
                row.test,
                row.label,
                if row.device == 0 {
                    String::new()
                } else {
                    format!(" (device #{})", row.device)
                }
            );
            failed = true;
        }
        // A region that is no longer timed (a test that stopped running on a GPU) is not a pass.
        if gone > 0 {
            let advice = if gone_failed == gone {
                "their tests failed in the new run"
            } else {
                "after renaming a test or region, compare against a new baseline"
            };
            let _ = writeln!(
                out,
                "failing: regions of the old run are gone from the new one, so their time is unknown (--fail-above); \
                 {advice}"
            );
            failed = true;
        }
    }
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    fn slower_by(factor: f64) -> Report {
        let mut new = sample();
        for test in &mut new.tests {
            for timing in &mut test.timings {
                timing.median_ms *= factor;
            }
        }
        new
    }

    #[test]
    fn regions_line_up_by_test_label_and_device() {
        let mut new = slower_by(1.2);
        new.tests[3].timings[0].device = "device 0 NVIDIA A100".to_string();
        let rows = compare(&sample(), &new);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].test.as_str(), rows[0].label.as_str()),
            ("my-crate::gpu saxpy", "saxpy")
        );
        let change = rows[0].change_percent().unwrap();
        assert!((change - 20.0).abs() < 1e-9, "{change}");
    }

    #[test]
    fn slower_regions_are_flagged_and_fail_above_the_limit() {
        let (text, failed) = render(&sample(), &slower_by(1.2), 10.0, Some(15.0));
        assert!(failed);
        assert!(
            text.contains("my-crate::gpu saxpy  saxpy   41.3 us     49.6 us     +20.0%  SLOWER"),
            "{text}"
        );
        assert!(text.contains("1 of 1 regions slower by more than 10%"), "{text}");
        let (_, failed) = render(&sample(), &slower_by(1.2), 10.0, Some(25.0));
        assert!(!failed);
        let (text, failed) = render(&sample(), &slower_by(0.5), 10.0, Some(0.0));
        assert!(!failed, "{text}");
        assert!(text.contains("-50.0%"), "{text}");
    }

    #[test]
    fn runs_on_different_gpus_are_said_to_be() {
        let (text, _) = render(&sample(), &sample(), 10.0, None);
        assert!(!text.contains("note:"), "{text}");
        let mut new = sample();
        for device in new.tests.iter_mut().flat_map(|t| t.devices.iter_mut()) {
            device.name = "NVIDIA A100".to_string();
        }
        let (text, _) = render(&sample(), &new, 10.0, None);
        assert!(
            text.starts_with(
                "note: the runs timed different GPUs (old: NVIDIA H200; new: NVIDIA A100), so a change"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_failure_below_the_threshold_names_its_region() {
        let (text, failed) = render(&sample(), &slower_by(1.075), 10.0, Some(5.0));
        assert!(failed, "{text}");
        assert!(
            text.contains(
                "failing: my-crate::gpu saxpy region \"saxpy\" is slower by more than 5% (+7.5%; --fail-above)"
            ),
            "{text}"
        );
    }

    #[test]
    fn regions_in_one_run_only_are_shown_and_gone_ones_fail() {
        let mut new = sample();
        new.tests[3].timings[0].label = "saxpy_v2".to_string();
        let rows = compare(&sample(), &new);
        assert_eq!(rows.len(), 2);
        let (text, failed) = render(&sample(), &new, 10.0, None);
        assert!(text.contains("gone") && text.contains("new"), "{text}");
        assert!(!failed);
        let (text, failed) = render(&sample(), &new, 10.0, Some(50.0));
        assert!(failed, "{text}");
        assert!(
            text.contains("1 region(s) timed in the old run were not timed in the new one"),
            "{text}"
        );
        // A new run without any timing (its tests no longer ran on a GPU) fails too.
        let mut none = sample();
        none.tests.iter_mut().for_each(|t| t.timings.clear());
        assert!(render(&sample(), &none, 10.0, Some(50.0)).1);
        // New regions alone do not.
        assert!(!render(&none, &sample(), 10.0, Some(0.0)).1);
    }

    #[test]
    fn a_region_gone_with_a_failed_test_is_not_taken_for_a_rename() {
        let mut new = sample();
        new.tests[3].timings.clear();
        new.tests[3].outcome = crate::report::Outcome::Failed;
        let (text, failed) = render(&sample(), &new, 10.0, Some(50.0));
        assert!(failed, "{text}");
        assert!(text.contains("gone  (the test failed)"), "{text}");
        assert!(
            text.contains(
                "1 region(s) timed in the old run were not timed in the new one (their tests failed before timing \
                 them)"
            ) && text.contains("their time is unknown (--fail-above); their tests failed in the new run"),
            "{text}"
        );
        assert!(!text.contains("renaming"), "{text}");
    }

    #[test]
    fn a_baseline_from_a_failed_test_is_marked() {
        let mut old = sample();
        old.tests[3].outcome = crate::report::Outcome::Failed;
        let (text, _) = render(&old, &slower_by(1.2), 10.0, None);
        assert!(
            text.contains("+20.0%  SLOWER  (the test failed in the old run)"),
            "{text}"
        );
    }

    #[test]
    fn a_baseline_without_timings_is_refused_for_fail_above() {
        let path = std::path::Path::new("old.json");
        assert_eq!(check_baseline(&sample(), path), Ok(()));
        let mut untimed = sample();
        untimed.tests.iter_mut().for_each(|test| test.timings.clear());
        let refused = check_baseline(&untimed, path).unwrap_err();
        assert!(
            refused.starts_with("the baseline old.json has no GPU timings"),
            "{refused}"
        );
    }

    #[test]
    fn a_fail_above_below_the_threshold_is_counted_in_the_summary() {
        let (text, failed) = render(&sample(), &slower_by(1.2), 25.0, Some(15.0));
        assert!(failed, "{text}");
        assert!(
            text.contains("0 of 1 regions slower by more than 25%; 1 by more than 15% (--fail-above)"),
            "{text}"
        );
    }

    #[test]
    fn regions_of_several_devices_line_up_by_device_whatever_their_order() {
        let mut old = sample();
        let test = &mut old.tests[3];
        let mut second = test.devices[0].clone();
        second.ordinal = 1;
        test.devices.push(second);
        let mut other = test.timings[0].clone();
        other.device = format!("device 1 {}", test.devices[1].name);
        other.median_ms *= 2.0;
        test.timings.push(other);
        // The new run timed the same regions, the second device first.
        let mut new = old.clone();
        new.tests[3].timings.reverse();
        let rows = compare(&old, &new);
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter().all(|row| row.change_percent() == Some(0.0)),
            "{rows:?}"
        );
    }

    #[test]
    fn a_binary_named_by_cargo_test_and_by_nextest_is_one_suite() {
        let mut old = sample();
        old.tests[3].suite = "my-crate::gpu_smoke".to_string();
        let mut new = slower_by(1.2);
        new.tests[3].suite = "my-crate::gpu-smoke".to_string();
        let rows = compare(&old, &new);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].test, "my-crate::gpu-smoke saxpy");
    }

    #[test]
    fn a_region_that_took_no_time_before_and_does_now_is_slower() {
        let mut old = sample();
        old.tests[3].timings[0].median_ms = 0.0;
        let (text, failed) = render(&old, &sample(), 10.0, Some(10.0));
        assert!(failed, "{text}");
        assert!(text.contains("from 0  SLOWER"), "{text}");
        assert!(text.contains("1 of 1 regions slower by more than 10%"), "{text}");
        assert!(!render(&old, &old, 10.0, Some(10.0)).1);
    }

    #[test]
    fn percentages_are_read_or_refused() {
        assert_eq!(parse_percent("--threshold", "10%"), Ok(10.0));
        assert_eq!(parse_percent("--threshold", "2.5"), Ok(2.5));
        assert!(
            parse_percent("--fail-above", "ten")
                .unwrap_err()
                .starts_with("--fail-above \"ten\"")
        );
        assert!(parse_percent("--fail-above", "-3").is_err());
    }
}
