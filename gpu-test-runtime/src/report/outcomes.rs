//! What a test process records about its GPU tests: every skip counted by reason (all the summary
//! and the annotations need), every test that ran or failed, and a full entry per skipped test
//! only when a report asks for one. A suite of thousands of skipped tests then costs a counter
//! per test, not an allocation.

use std::sync::Arc;

use super::model::{Entry, Location, Outcome};
use super::github::{self, Channel};
use super::{console, file};
use crate::decide::skip::SkipReason;
use crate::probe::Probe;
use crate::settings::Settings;

/// The recorded outcomes of one process.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    detailed: bool,
    /// Each reason, how many tests it skipped, and where the first of them is defined.
    skips: Vec<(Arc<SkipReason>, usize, Location)>,
    entries: Vec<Entry>,
    /// How many of `entries`, from the first, were handed out to be written.
    written: usize,
}

impl Outcomes {
    /// Records counts only, plus full entries for skipped tests when `detailed`.
    pub(crate) fn new(detailed: bool) -> Outcomes {
        Outcomes {
            detailed,
            ..Outcomes::default()
        }
    }

    /// A test defined at `at` skipped for `reason`; `entry` names it, and is only called when a
    /// report wants it.
    pub(crate) fn skipped(
        &mut self,
        reason: &Arc<SkipReason>,
        at: Location,
        entry: impl FnOnce() -> (Arc<str>, String, Option<String>),
    ) {
        // Tests with the same requirements share one reason, so the pointer usually matches.
        match self
            .skips
            .iter_mut()
            .find(|(r, _, _)| Arc::ptr_eq(r, reason) || r == reason)
        {
            Some(group) => group.1 += 1,
            None => self.skips.push((reason.clone(), 1, at)),
        }
        if self.detailed {
            let (suite, name, each_device_of) = entry();
            let mut entry = Entry::unmet(&suite, &name, Outcome::Skipped, reason).at(at.file, at.line);
            entry.each_device_of = each_device_of;
            self.entries.push(entry);
        }
    }

    /// A test that ran, or failed without running.
    pub(crate) fn ran(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// `(reason, number of tests)` for every distinct skip reason, most frequent first.
    pub(crate) fn skip_groups(&self) -> Vec<(&SkipReason, usize)> {
        self.located_skip_groups()
            .into_iter()
            .map(|(reason, n, _)| (reason, n))
            .collect()
    }

    /// [`Outcomes::skip_groups`], each with where its first test is defined.
    pub(crate) fn located_skip_groups(&self) -> Vec<(&SkipReason, usize, Location)> {
        let mut groups: Vec<(&SkipReason, usize, Location)> =
            self.skips.iter().map(|(r, n, at)| (&**r, *n, *at)).collect();
        groups.sort_by_key(|group| std::cmp::Reverse(group.1));
        groups
    }

    /// The tests that failed.
    pub(crate) fn failures(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.outcome == Outcome::Failed)
            .collect()
    }

    /// Every entry recorded (skipped ones only when detailed).
    pub(crate) fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    /// The entries recorded since the last call, which the caller puts into the report, and where
    /// they start, for [`rewind`](Self::rewind).
    pub(crate) fn take_unwritten(&mut self) -> (usize, Vec<Entry>) {
        let from = self.written;
        self.written = self.entries.len();
        (from, self.entries[from..].to_vec())
    }

    /// Hands out again, from `from`, the entries whose write failed: the next write, or the
    /// conclusion, tries them again (the caller holds off other writes in between).
    pub(crate) fn rewind(&mut self, from: usize) {
        self.written = self.written.min(from);
    }

    /// What a process does with its outcomes when its tests are done: the skip summary on stderr,
    /// the GitHub annotations (on `annotations`), and the entries not yet in the report.
    pub(crate) fn conclude(
        mut self,
        settings: &Settings,
        probe: &Probe,
        suite: &str,
        annotations: Channel,
    ) -> Result<(), String> {
        console::print_skip_summary(&self.skip_groups());
        github::annotate(
            settings,
            suite,
            &self.located_skip_groups(),
            &self.failures(),
            annotations,
        );
        let (from, unwritten) = self.take_unwritten();
        let wrote_before = from > 0;
        // A process that wrote nothing yet still writes, if only to replace an earlier run's report.
        if unwritten.is_empty() && wrote_before {
            return Ok(());
        }
        file::record_if_wanted(settings, probe, suite, unwritten)
    }

    /// What nextest's list phase does with the skips it decided: nextest runs no process for
    /// them, so their reasons go to the job summary and the report from here.
    pub(crate) fn conclude_listing(
        self,
        settings: &Settings,
        probe: &Probe,
        suite: &str,
    ) -> Result<(), String> {
        github::step_summary(settings, suite, &self.skip_groups());
        file::record_if_wanted(settings, probe, suite, self.into_entries())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::skip::SkipKind;

    #[test]
    fn entries_whose_write_failed_are_handed_out_again() {
        let suite: Arc<str> = Arc::from("gpu");
        let reason = Arc::new(SkipReason::new(SkipKind::NoDriver, "no CUDA driver", "install it"));
        let entry = |name: &str| Entry::unmet(&suite, name, Outcome::Skipped, &reason);
        let names = |entries: &[Entry]| entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        let mut outcomes = Outcomes::new(true);
        outcomes.ran(entry("a"));
        outcomes.ran(entry("b"));
        let (from, taken) = outcomes.take_unwritten();
        assert_eq!((from, names(&taken)), (0, vec!["a".to_string(), "b".to_string()]));
        assert!(outcomes.take_unwritten().1.is_empty(), "handed out once");
        outcomes.ran(entry("c"));
        outcomes.rewind(from);
        assert_eq!(names(&outcomes.take_unwritten().1), ["a", "b", "c"]);
        assert!(outcomes.take_unwritten().1.is_empty());
    }

    #[test]
    fn skips_are_counted_by_reason_and_kept_only_when_detailed() {
        let suite: Arc<str> = Arc::from("gpu");
        let driver = Arc::new(SkipReason::new(
            SkipKind::NoDriver,
            "no CUDA driver",
            "install it",
        ));
        let same_text = Arc::new(SkipReason::new(
            SkipKind::NoDriver,
            "no CUDA driver",
            "install it",
        ));
        let devices = Arc::new(SkipReason::new(SkipKind::TooFewDevices, "needs 2", "add one"));
        for detailed in [false, true] {
            let mut outcomes = Outcomes::new(detailed);
            let at = |line| Location {
                file: "tests/gpu.rs",
                line,
            };
            outcomes.skipped(&driver, at(3), || (suite.clone(), "a".to_string(), None));
            outcomes.skipped(&devices, at(7), || (suite.clone(), "b".to_string(), None));
            outcomes.skipped(&same_text, at(9), || (suite.clone(), "c".to_string(), None));
            let groups = outcomes.skip_groups();
            assert_eq!(groups.len(), 2);
            assert_eq!((groups[0].0.reason.as_str(), groups[0].1), ("no CUDA driver", 2));
            assert_eq!(outcomes.located_skip_groups()[0].2, at(3));
            let entries = outcomes.into_entries();
            assert_eq!(entries.len(), if detailed { 3 } else { 0 });
            if detailed {
                assert_eq!(
                    (entries[2].file.as_deref(), entries[2].line),
                    (Some("tests/gpu.rs"), Some(9))
                );
            }
        }
    }
}
