//! Why a GPU test did not run: a stable reason and a hint to fix it.

use std::fmt;

/// Why a test's requirements are not met on this machine.
///
/// `reason` names the requirement, what was found and where it was looked for; it is stable text,
/// so CI logs can be searched for it. `hint` says what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkipReason {
    /// What kind of problem this is.
    pub kind: SkipKind,
    /// What is missing and what was found, e.g. `needs 2 CUDA devices, found 1`.
    pub reason: String,
    /// How to fix it.
    pub hint: String,
}

/// The kinds of skip reasons, for grouping and for machine-readable reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SkipKind {
    /// libcuda could not be loaded.
    NoDriver,
    /// libcuda lacks an entry point gpu-test needs.
    DriverSymbolMissing,
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
}

impl SkipKind {
    /// A stable snake_case name, used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::NoDriver => "no_driver",
            SkipKind::DriverSymbolMissing => "driver_symbol_missing",
            SkipKind::DriverInitFailed => "driver_init_failed",
            SkipKind::CudaTooOld => "cuda_too_old",
            SkipKind::TooFewDevices => "too_few_devices",
            SkipKind::DeviceUnsuitable => "device_unsuitable",
            SkipKind::ToolkitMissing => "toolkit_missing",
            SkipKind::ToolkitTooOld => "toolkit_too_old",
            SkipKind::ToolkitNewerThanDriver => "toolkit_newer_than_driver",
        }
    }
}

impl SkipKind {
    /// The kind named by [`SkipKind::as_str`].
    pub fn parse(text: &str) -> Option<SkipKind> {
        [
            SkipKind::NoDriver,
            SkipKind::DriverSymbolMissing,
            SkipKind::DriverInitFailed,
            SkipKind::CudaTooOld,
            SkipKind::TooFewDevices,
            SkipKind::DeviceUnsuitable,
            SkipKind::ToolkitMissing,
            SkipKind::ToolkitTooOld,
            SkipKind::ToolkitNewerThanDriver,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
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

/// Bytes for people: an exact binary or decimal unit when there is one (`16 GiB`, `80 GB`),
/// otherwise GiB with one decimal (`15.6 GiB`).
pub fn format_bytes(bytes: u64) -> String {
    const BINARY: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    const DECIMAL: [(&str, u64); 4] = [
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ];
    let exact = BINARY
        .iter()
        .chain(DECIMAL.iter())
        .filter(|(_, size)| bytes >= *size && bytes.is_multiple_of(*size))
        .max_by_key(|(_, size)| *size);
    match exact {
        Some((unit, size)) if bytes / size < 10_000 => format!("{} {unit}", bytes / size),
        _ if bytes < 10_000 => format!("{bytes} B"),
        _ if bytes < 1 << 20 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ if bytes < 1 << 30 => format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64),
        _ => format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
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
        assert_eq!(SkipKind::parse("too_few_devices"), Some(SkipKind::TooFewDevices));
        assert_eq!(SkipKind::parse("other"), None);
    }

    #[test]
    fn bytes_print_in_the_unit_they_were_given_in() {
        assert_eq!(format_bytes(16 << 30), "16 GiB");
        assert_eq!(format_bytes(80_000_000_000), "80 GB");
        assert_eq!(format_bytes(512 << 20), "512 MiB");
        assert_eq!(format_bytes(15_843_721_216), "14.8 GiB");
        assert_eq!(format_bytes(1000), "1 KB");
        assert_eq!(format_bytes(2048), "2 KiB");
        assert_eq!(format_bytes(12_345), "12.1 KiB");
        assert_eq!(format_bytes(1234), "1234 B");
        assert_eq!(format_bytes(300_000_001), "286.1 MiB");
    }
}
