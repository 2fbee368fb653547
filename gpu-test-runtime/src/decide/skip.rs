//! Why a GPU test did not run: a stable reason and a hint to fix it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a test's requirements are not met on this machine.
///
/// `reason` names the requirement, what was found and where it was looked for; it is stable text,
/// so CI logs can be searched for it. `hint` says what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkipReason {
    /// What kind of problem this is.
    pub kind: SkipKind,
    /// What is missing and what was found, e.g. `needs 2 CUDA devices, found 1`.
    pub reason: String,
    /// How to fix it.
    pub hint: String,
}

/// The kinds of skip reasons, for grouping and for machine-readable reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipKind {
    /// libcuda could not be loaded.
    NoDriver,
    /// libcuda lacks an entry point gpu-test needs.
    DriverSymbolMissing,
    /// A driver call did not return within `GPU_TEST_PROBE_TIMEOUT`.
    DriverHung,
    /// `cuInit` failed.
    DriverInitFailed,
    /// The driver supports an older CUDA than `min_cuda`.
    CudaTooOld,
    /// Fewer devices are visible than `devices`.
    TooFewDevices,
    /// Devices are visible, but too few meet `min_compute`, `min_memory` or may be used at all.
    DeviceUnsuitable,
    /// `min_toolkit` is set and NVRTC could not be loaded.
    ToolkitMissing,
    /// NVRTC is older than `min_toolkit`.
    ToolkitTooOld,
    /// NVRTC makes PTX newer than the driver can load.
    ToolkitNewerThanDriver,
    /// The test's body is compiled only with a cargo feature the build did not enable
    /// (`#[gpu_test(feature = "cuda")]`).
    BuiltWithoutFeature,
}

impl SkipKind {
    /// A stable snake_case name, used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::NoDriver => "no_driver",
            SkipKind::DriverSymbolMissing => "driver_symbol_missing",
            SkipKind::DriverHung => "driver_hung",
            SkipKind::DriverInitFailed => "driver_init_failed",
            SkipKind::CudaTooOld => "cuda_too_old",
            SkipKind::TooFewDevices => "too_few_devices",
            SkipKind::DeviceUnsuitable => "device_unsuitable",
            SkipKind::ToolkitMissing => "toolkit_missing",
            SkipKind::ToolkitTooOld => "toolkit_too_old",
            SkipKind::ToolkitNewerThanDriver => "toolkit_newer_than_driver",
            SkipKind::BuiltWithoutFeature => "built_without_feature",
        }
    }
}

impl SkipReason {
    pub(crate) fn new(kind: SkipKind, reason: impl Into<String>, hint: impl Into<String>) -> SkipReason {
        SkipReason {
            kind,
            reason: reason.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; hint: {}", self.reason, self.hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_print_with_their_hint() {
        let reason = SkipReason::new(
            SkipKind::TooFewDevices,
            "needs 2 CUDA devices, found 1",
            "use a 2-GPU runner",
        );
        assert_eq!(
            reason.to_string(),
            "needs 2 CUDA devices, found 1; hint: use a 2-GPU runner"
        );
        assert_eq!(reason.kind.as_str(), "too_few_devices");
        for kind in [SkipKind::NoDriver, SkipKind::ToolkitNewerThanDriver] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }
}
