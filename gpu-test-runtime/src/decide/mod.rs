//! The decision: whether a test runs, is skipped, or fails without running, from its
//! requirements, the probe's facts and the run's policy (strict mode, what nextest's list phase
//! decided). Both harness paths decide through [`Decider::decide`], and nothing else decides.

pub(crate) mod driver_table;
pub(crate) mod reasons;
pub(crate) mod requirements;
pub(crate) mod skip;

use std::sync::{Arc, Mutex, OnceLock};

use crate::probe::{DeviceInfo, Probe};
use requirements::Requirements;
use skip::SkipReason;

/// What to do with one test.
#[derive(Debug, Clone)]
pub(crate) enum Decision {
    /// Requirements met: run on any of these device ordinals.
    Run(Arc<Vec<usize>>),
    /// Requirements unmet: skip, with the reason.
    Skip(Arc<SkipReason>),
    /// Requirements unmet, and the policy makes that a failure: the message (after the test's
    /// name), and the reason.
    Fail(String, Arc<SkipReason>),
}

/// One device's run of an `each_device` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceRun {
    /// On the probe's device at this index of its devices.
    Read(usize),
    /// On the device of the probe's device error at this index, which the driver could not describe.
    Unreadable(usize),
}

impl DeviceRun {
    /// The CUDA ordinal of its device.
    pub(crate) fn ordinal(self, probe: &Probe) -> usize {
        match self {
            DeviceRun::Read(index) => probe.devices[index].ordinal,
            DeviceRun::Unreadable(index) => probe.device_errors[index].ordinal,
        }
    }
}

/// What [`Requirements::check`] answered, shared by every test with the same requirements.
type Checked = Result<Arc<Vec<usize>>, Arc<SkipReason>>;

/// The decisions of one process: the requirements of a suite of thousands of tests come in a
/// handful of distinct sets, so each set is checked once.
#[derive(Debug)]
pub(crate) struct Decider {
    probe: &'static Probe,
    strict: bool,
    first: OnceLock<(Requirements, Checked)>,
    others: Mutex<Vec<(Requirements, Checked)>>,
}

impl Decider {
    /// Decides over `probe`; with `strict`, an unmet requirement is a failure.
    pub(crate) fn new(probe: &'static Probe, strict: bool) -> Decider {
        Decider {
            probe,
            strict,
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The probe decided over.
    pub(crate) fn probe(&self) -> &'static Probe {
        self.probe
    }

    /// The one decision policy. `listed_to_run` is what nextest's list phase decided for this
    /// test, when this process is nextest's run phase.
    pub(crate) fn decide(&self, requirements: &Requirements, listed_to_run: Option<bool>) -> Decision {
        self.apply_policy(self.check(requirements), listed_to_run)
    }

    /// The decision for one device of an `each_device` test: run on it alone, or not. `earlier`
    /// are the devices before it.
    pub(crate) fn decide_device(
        &self,
        requirements: &Requirements,
        device: &DeviceInfo,
        earlier: &[DeviceInfo],
        listed_to_run: Option<bool>,
    ) -> Decision {
        let checked = requirements
            .check_device(self.probe, device, earlier)
            .map(|()| Arc::new(vec![device.ordinal]))
            .map_err(Arc::new);
        match checked {
            // A device this test does not suit, on a machine where another runs it, is no unmet
            // requirement of the machine's: as `devices = 1` passes over it, strict mode does too.
            // (Where nextest listed it to run, the environment changed: that stays a failure.)
            // (Without strict mode the policy skips it anyway, so no device is checked again.)
            Err(reason)
                if self.strict
                    && reason.kind == skip::SkipKind::DeviceUnsuitable
                    && listed_to_run != Some(true)
                    && self.some_device_suits(requirements) =>
            {
                Decision::Skip(reason)
            }
            checked => self.apply_policy(checked, listed_to_run),
        }
    }

    /// Whether some device of the machine would run an `each_device` test.
    fn some_device_suits(&self, requirements: &Requirements) -> bool {
        let devices = &self.probe.devices;
        (0..devices.len()).any(|index| {
            requirements
                .check_device(self.probe, &devices[index], &devices[..index])
                .is_ok()
        })
    }

    /// The devices an `each_device` test has a run for, by ordinal: each the probe read, and each
    /// the driver counted but could not describe, which the test must not pass over in silence.
    pub(crate) fn each_device(&self) -> Vec<DeviceRun> {
        let mut runs: Vec<DeviceRun> = (0..self.probe.devices.len()).map(DeviceRun::Read).collect();
        // A count past belief is no list of devices to run on: the devices read are.
        if self.probe.reported_device_count.is_none() {
            runs.extend(
                (0..self.probe.device_errors.len())
                    .filter(|&index| !self.probe.device_errors[index].is_count())
                    .map(DeviceRun::Unreadable),
            );
        }
        runs.sort_by_key(|run| run.ordinal(self.probe));
        runs
    }

    /// The decision for one run of an `each_device` test ([`Decider::each_device`]).
    pub(crate) fn decide_device_run(
        &self,
        requirements: &Requirements,
        run: DeviceRun,
        listed_to_run: Option<bool>,
    ) -> Decision {
        match run {
            DeviceRun::Read(index) => {
                let devices = &self.probe.devices;
                self.decide_device(requirements, &devices[index], &devices[..index], listed_to_run)
            }
            DeviceRun::Unreadable(index) => {
                let reason = reasons::unreadable_device(&self.probe.device_errors[index]);
                self.apply_policy(Err(Arc::new(reason)), listed_to_run)
            }
        }
    }

    /// The decision for the run of an `each_device` test on device `ordinal`, which nextest's list
    /// phase saw and this process does not.
    pub(crate) fn decide_missing_device(&self, ordinal: usize, listed_to_run: Option<bool>) -> Decision {
        let reason = SkipReason::new(
            skip::SkipKind::TooFewDevices,
            format!("device {ordinal} is not visible in this process"),
            "check the driver and CUDA_VISIBLE_DEVICES: the device was visible when the tests were listed",
        );
        self.apply_policy(Err(Arc::new(reason)), listed_to_run)
    }

    /// The decision for an `each_device` test asked for by its own name, as nextest's list phase
    /// lists it where that process saw no device, in a process that sees `count` devices (and
    /// names its runs `NAME::cudaN`, which nextest did not list and will not ask for).
    pub(crate) fn decide_listed_without_devices(&self, count: usize, listed_to_run: Option<bool>) -> Decision {
        let reason = SkipReason::new(
            skip::SkipKind::TooFewDevices,
            format!(
                "nextest listed this test when it saw no CUDA device, as one run; this process sees {count}, \
                 where it runs once per device, under names nextest did not list"
            ),
            "run the tests again, and check the driver and CUDA_VISIBLE_DEVICES: the devices the tests were \
             listed with changed before they ran",
        );
        self.apply_policy(Err(Arc::new(reason)), listed_to_run)
    }

    fn apply_policy(&self, checked: Checked, listed_to_run: Option<bool>) -> Decision {
        match checked {
            Ok(ordinals) => Decision::Run(ordinals),
            Err(reason) if self.strict => Decision::Fail(
                format!("cannot run, and GPU_TEST_STRICT=1 makes that a failure: {reason}"),
                reason,
            ),
            Err(reason) if listed_to_run == Some(true) => Decision::Fail(
                format!(
                    "nextest listed this test to run, but in this process its requirements are unmet: {reason} \
                     (did the environment change between listing and running?)"
                ),
                reason,
            ),
            Err(reason) => Decision::Skip(reason),
        }
    }

    /// [`Requirements::check`], once per distinct set of requirements.
    fn check(&self, requirements: &Requirements) -> Checked {
        // Most suites have one set of requirements: that one is answered without a lock.
        if let Some((first, checked)) = self.first.get()
            && first == requirements
        {
            return checked.clone();
        }
        let mut others = self.others.lock().unwrap_or_else(|p| p.into_inner());
        // A list, not a map: there are few distinct requirements, and comparing is cheaper than
        // hashing in the debug builds tests run in.
        if let Some((_, checked)) = others.iter().find(|(r, _)| r == requirements) {
            return checked.clone();
        }
        let checked = requirements.check(self.probe).map(Arc::new).map_err(Arc::new);
        others.push((*requirements, checked.clone()));
        let _ = self.first.set((*requirements, checked.clone()));
        checked
    }
}
