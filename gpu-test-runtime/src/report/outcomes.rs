//! What a test process records about its GPU tests: every skip counted by reason (all the summary
//! and the annotations need), every test that ran or failed, and a full entry per skipped test
//! only when a report asks for one. A suite of thousands of skipped tests then costs a counter
//! per test, not an allocation.

use std::sync::Arc;

use super::model::{Entry, Outcome};
use super::{console, file, github};
use crate::decide::skip::SkipReason;
use crate::probe::Probe;
use crate::settings::Settings;

/// The recorded outcomes of one process.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    detailed: bool,
    skips: Vec<(Arc<SkipReason>, usize)>,
    entries: Vec<Entry>,
}

impl Outcomes {
    /// Records counts only, plus full entries for skipped tests when `detailed`.
    pub(crate) fn new(detailed: bool) -> Outcomes {
        Outcomes {
            detailed,
            ..Outcomes::default()
        }
    }

    /// A test skipped for `reason`; `entry` names it, and is only called when a report wants it.
    pub(crate) fn skipped(&mut self, reason: &Arc<SkipReason>, entry: impl FnOnce() -> (Arc<str>, String)) {
        // Tests with the same requirements share one reason, so the pointer usually matches.
        match self
            .skips
            .iter_mut()
            .find(|(r, _)| Arc::ptr_eq(r, reason) || r == reason)
        {
            Some(group) => group.1 += 1,
            None => self.skips.push((reason.clone(), 1)),
        }
        if self.detailed {
            let (suite, name) = entry();
            self.entries
                .push(Entry::unmet(&suite, &name, Outcome::Skipped, reason));
        }
    }

    /// A test that ran, or failed without running.
    pub(crate) fn ran(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// `(reason, number of tests)` for every distinct skip reason, most frequent first.
    pub(crate) fn skip_groups(&self) -> Vec<(&SkipReason, usize)> {
        let mut groups: Vec<(&SkipReason, usize)> = self.skips.iter().map(|(r, n)| (&**r, *n)).collect();
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

    /// What a process does with its outcomes when its tests are done: the skip summary on stderr,
    /// the GitHub annotations, and the report.
    pub(crate) fn conclude(self, settings: &Settings, probe: &Probe, suite: &str) -> Result<(), String> {
        let groups = self.skip_groups();
        console::print_skip_summary(&groups);
        github::annotate(settings, &groups, &self.failures());
        file::record_if_wanted(settings, probe, suite, self.into_entries())
    }

    /// What nextest's list phase does with the skips it decided: nextest runs no process for
    /// them, so their reasons go to the job summary and the report from here.
    pub(crate) fn conclude_listing(
        self,
        settings: &Settings,
        probe: &Probe,
        suite: &str,
    ) -> Result<(), String> {
        github::step_summary(settings, &self.skip_groups());
        file::record_if_wanted(settings, probe, suite, self.into_entries())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::skip::SkipKind;

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
            outcomes.skipped(&driver, || (suite.clone(), "a".to_string()));
            outcomes.skipped(&devices, || (suite.clone(), "b".to_string()));
            outcomes.skipped(&same_text, || (suite.clone(), "c".to_string()));
            let groups = outcomes.skip_groups();
            assert_eq!(groups.len(), 2);
            assert_eq!((groups[0].0.reason.as_str(), groups[0].1), ("no CUDA driver", 2));
            assert_eq!(outcomes.into_entries().len(), if detailed { 3 } else { 0 });
        }
    }
}
