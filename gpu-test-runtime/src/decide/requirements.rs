//! What a test needs, and the decision whether this machine provides it.

use std::fmt;

use super::reasons;
use super::skip::{SkipKind, SkipReason};
use crate::cuda::version::Version;
use crate::probe::{ComputeMode, DeviceInfo, Probe, describe_errors};
use crate::util::format::{count, format_bytes, format_bytes_needed};

/// What a GPU test needs from the machine. `#[gpu_test(...)]` builds one from its keys.
///
/// ```
/// use gpu_test_runtime::{Requirements, Version};
/// const NEEDS: Requirements = Requirements::new().devices(2).min_cuda(Version::new(11, 8));
/// assert_eq!(NEEDS.to_string(), "devices = 2, min_cuda = \"11.8\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Requirements {
    devices: u32,
    min_cuda: Option<Version>,
    min_compute: Option<Version>,
    min_memory: Option<u64>,
    memory: Option<u64>,
    min_free_memory: Option<u64>,
    min_toolkit: Option<Version>,
    /// The cargo feature the body needs, and whether the build enabled it.
    feature: Option<(&'static str, bool)>,
}

impl Default for Requirements {
    fn default() -> Requirements {
        Requirements::new()
    }
}

impl Requirements {
    /// One CUDA device, nothing else.
    pub const fn new() -> Requirements {
        Requirements {
            devices: 1,
            min_cuda: None,
            min_compute: None,
            min_memory: None,
            memory: None,
            min_free_memory: None,
            min_toolkit: None,
            feature: None,
        }
    }

    /// At least `count` visible devices that meet the per-device requirements; `0` counts as 1,
    /// since a GPU test runs on a device (the attribute refuses `devices = 0`).
    pub const fn devices(mut self, count: u32) -> Requirements {
        self.devices = if count == 0 { 1 } else { count };
        self
    }

    /// A driver that supports at least this CUDA release.
    pub const fn min_cuda(mut self, version: Version) -> Requirements {
        self.min_cuda = Some(version);
        self
    }

    /// Devices of at least this compute capability.
    pub const fn min_compute(mut self, version: Version) -> Requirements {
        self.min_compute = Some(version);
        self
    }

    /// Devices with at least this many bytes of memory.
    pub const fn min_memory(mut self, bytes: u64) -> Requirements {
        self.min_memory = Some(bytes);
        self
    }

    /// The test uses about this many bytes on each of its devices: device leases admit it while
    /// the declared memory of the tests holding a device fits in what the device had free.
    pub const fn memory(mut self, bytes: u64) -> Requirements {
        self.memory = Some(bytes);
        self
    }

    /// At least this many bytes free on each device when its lease is taken (other processes
    /// may hold memory): the test waits for it, and fails saying how much was free.
    pub const fn min_free_memory(mut self, bytes: u64) -> Requirements {
        self.min_free_memory = Some(bytes);
        self
    }

    /// The declared memory per device, if any.
    pub(crate) const fn declared_memory(&self) -> Option<u64> {
        self.memory
    }

    /// The free memory needed per device when the lease is taken, if any.
    pub(crate) const fn needed_free_memory(&self) -> Option<u64> {
        self.min_free_memory
    }

    /// NVRTC of at least this release, loadable by cudarc.
    pub const fn min_toolkit(mut self, version: Version) -> Requirements {
        self.min_toolkit = Some(version);
        self
    }

    /// Whether the test declared `min_toolkit`, so that NVRTC was looked for before it ran.
    pub(crate) const fn needs_toolkit(&self) -> bool {
        self.min_toolkit.is_some()
    }

    /// The body is compiled only with the cargo feature `name` of the crate under test;
    /// `enabled` is whether this build has it (`cfg!(feature = "name")` there). Without it the
    /// test is skipped, before anything about the machine: no GPU can run a body that was not
    /// compiled.
    pub const fn feature(mut self, name: &'static str, enabled: bool) -> Requirements {
        self.feature = Some((name, enabled));
        self
    }

    /// The number of devices needed.
    pub const fn device_count(&self) -> u32 {
        self.devices
    }

    /// Decides whether `device` alone meets these requirements (`each_device`): what the machine
    /// must offer (the feature, the driver, `min_cuda`, `min_toolkit`) and what the one device
    /// must be. `earlier` are the devices before it, so that a GPU listed twice runs once.
    pub(crate) fn check_device(&self, probe: &Probe, device: &DeviceInfo, earlier: &[DeviceInfo]) -> Result<(), SkipReason> {
        if let Some(problem) = self.machine_problem(probe) {
            return Err(problem);
        }
        if let Some(same) = earlier
            .iter()
            .find(|e| e.uuid.is_some() && e.uuid == device.uuid)
        {
            return Err(SkipReason::new(
                SkipKind::DeviceUnsuitable,
                format!(
                    "{} is the same GPU as device {} (CUDA_VISIBLE_DEVICES lists it twice): one run per GPU",
                    device.label(),
                    same.ordinal
                ),
                "list each GPU once in CUDA_VISIBLE_DEVICES",
            ));
        }
        let mut hints = Vec::new();
        if let Some(problem) = self.device_problem(device, &mut hints) {
            return Err(SkipReason::new(SkipKind::DeviceUnsuitable, problem, hints.join("; ")));
        }
        if let Some(problem) = self.toolkit_problem(probe) {
            return Err(problem);
        }
        Ok(())
    }

    /// Decides whether `probe` meets these requirements. `Ok` holds the ordinals of every device
    /// that meets the per-device requirements (at least [`device_count`](Self::device_count)).
    pub fn check(&self, probe: &Probe) -> Result<Vec<usize>, SkipReason> {
        if let Some(problem) = self.machine_problem(probe) {
            return Err(problem);
        }
        let needed = self.devices as usize;
        if probe.devices.len() < needed {
            return Err(self.too_few_devices(probe, probe.devices.len()));
        }
        let mut suitable = Vec::new();
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        let mut hints = Vec::new();
        for device in &probe.devices {
            match self.device_problem(device, &mut hints) {
                // Only a UUID says two ordinals are one GPU (MIG instances share a PCI id).
                None if device.uuid.is_some() && keys.contains(&device.uuid) => {}
                None => {
                    keys.push(device.uuid.clone());
                    suitable.push(device.ordinal);
                }
                Some(problem) => problems.push(problem),
            }
        }
        // One GPU listed twice (CUDA_VISIBLE_DEVICES=0,0) is one GPU, and cannot be leased twice.
        if suitable.len() < needed && probe.devices.len() >= needed && problems.is_empty() {
            return Err(self.too_few_devices(probe, suitable.len()));
        }
        if suitable.len() < needed {
            let reason = if needed == 1 && probe.devices.len() == 1 {
                problems.join("; ")
            } else {
                format!(
                    "needs {}, found {}: {}",
                    count(needed, "suitable CUDA device"),
                    suitable.len(),
                    problems.join("; ")
                )
            };
            // Each hint once, however many devices gave it.
            let mut seen = Vec::new();
            hints.retain(|hint| {
                let first = !seen.contains(hint);
                seen.push(hint.clone());
                first
            });
            return Err(SkipReason::new(
                SkipKind::DeviceUnsuitable,
                reason,
                hints.join("; "),
            ));
        }
        if let Some(problem) = self.toolkit_problem(probe) {
            return Err(problem);
        }
        Ok(suitable)
    }

    /// What no device can make up for, checked before any device: the feature the body needs,
    /// the driver, `min_cuda`.
    fn machine_problem(&self, probe: &Probe) -> Option<SkipReason> {
        if let Some((name, false)) = self.feature {
            return Some(reasons::built_without_feature(name));
        }
        reasons::driver_problem(probe).or_else(|| match self.min_cuda {
            Some(min_cuda) if min_cuda >= reasons::OLDEST_CUDA => reasons::cuda_too_old(probe, min_cuda),
            Some(min_cuda) => {
                reasons::older_than_gpu_test_runs_on(probe).or_else(|| reasons::cuda_too_old(probe, min_cuda))
            }
            None => reasons::older_than_gpu_test_runs_on(probe),
        })
    }

    /// `min_toolkit`, checked after the devices.
    fn toolkit_problem(&self, probe: &Probe) -> Option<SkipReason> {
        reasons::toolkit_problem(probe, self.min_toolkit?)
    }

    fn too_few_devices(&self, probe: &Probe, found: usize) -> SkipReason {
        let needed = self.devices as usize;
        let mut reason = format!("needs {}, found {found}", count(needed, "CUDA device"));
        if found < probe.devices.len() {
            reason.push_str(&format!(" distinct among {} ordinals", probe.devices.len()));
        }
        let mut hint = format!("run on a machine with at least {}", count(needed, "GPU"));
        let visible = probe.environment.visible_devices();
        if let Some((explanation, fix)) = visible.shortfall(needed, probe.counted_devices()) {
            reason.push_str(&format!(" ({explanation})"));
            hint.push_str(&format!(", and {fix}"));
        }
        if found == 0
            && let Some((why, fix)) = reasons::mig_without_instances(probe)
        {
            reason.push_str(&format!(" ({why})"));
            hint = fix;
        }
        // A GPU whose device file this user may not open is one CUDA does not show.
        if let Some(blocked) = reasons::unopenable_device_files(probe, reasons::is_gpu_device_file) {
            reason.push_str(&format!("; {blocked}"));
            hint.push_str(&format!("; {}", reasons::DEVICE_FILE_ACCESS_FIX));
        }
        if let Some(reported) = probe.reported_device_count {
            reason.push_str(&format!("; {}", reasons::implausible_device_count(reported)));
        }
        for line in describe_errors(&probe.device_errors) {
            reason.push_str(&format!("; {line}"));
        }
        SkipReason::new(SkipKind::TooFewDevices, reason, hint)
    }

    /// Why `device` cannot serve this test, in the words reasons use, or `None`.
    fn device_problem(&self, device: &DeviceInfo, hints: &mut Vec<String>) -> Option<String> {
        let mut faults = Vec::new();
        if let Some(min) = self.min_compute
            && device.compute_capability < min
        {
            faults.push(format!(
                "is {}, needs min_compute {min}",
                device.compute_capability.sm()
            ));
            hints.push(format!(
                "run on a GPU of compute capability {min} ({}) or newer",
                min.sm()
            ));
        }
        if let Some(min) = self.min_memory
            && device.total_memory < min
        {
            faults.push(format!(
                "has {}, needs min_memory {}",
                format_bytes(device.total_memory),
                format_bytes_needed(min)
            ));
            hints.push(format!(
                "run on a GPU with at least {} of memory",
                format_bytes_needed(min)
            ));
        }
        for (key, bytes) in [("memory", self.memory), ("min_free_memory", self.min_free_memory)] {
            if let Some(bytes) = bytes
                && device.total_memory < bytes
            {
                faults.push(format!(
                    "has {} in all, less than its {key} = \"{}\"",
                    format_bytes(device.total_memory),
                    format_bytes_needed(bytes)
                ));
                hints.push(format!("run on a GPU with at least {} of memory", format_bytes_needed(bytes)));
            }
        }
        if device.compute_mode == Some(ComputeMode::Prohibited) {
            let (fault, hint) = reasons::compute_mode_prohibited(device);
            faults.push(fault.to_string());
            hints.push(hint);
        }
        if faults.is_empty() {
            return None;
        }
        Some(format!("{} {}", device.label(), faults.join(", and ")))
    }
}

impl fmt::Display for Requirements {
    /// The requirements as the attribute's keys: `devices = 2, min_cuda = "11.8"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![format!("devices = {}", self.devices)];
        if let Some(v) = self.min_cuda {
            parts.push(format!("min_cuda = \"{v}\""));
        }
        if let Some(v) = self.min_compute {
            parts.push(format!("min_compute = \"{v}\""));
        }
        if let Some(bytes) = self.min_memory {
            parts.push(format!("min_memory = \"{}\"", format_bytes_needed(bytes)));
        }
        if let Some(bytes) = self.memory {
            parts.push(format!("memory = \"{}\"", format_bytes_needed(bytes)));
        }
        if let Some(bytes) = self.min_free_memory {
            parts.push(format!("min_free_memory = \"{}\"", format_bytes_needed(bytes)));
        }
        if let Some(v) = self.min_toolkit {
            parts.push(format!("min_toolkit = \"{v}\""));
        }
        if let Some((name, _)) = self.feature {
            parts.push(format!("feature = \"{name}\""));
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::Requirements;

    #[test]
    fn a_test_needs_at_least_one_device() {
        assert_eq!(Requirements::new().devices(0).device_count(), 1);
        assert_eq!(Requirements::new().devices(3).device_count(), 3);
    }
}
