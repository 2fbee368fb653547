//! Devices this process can no longer give to tests: a sticky CUDA error (an illegal address, a
//! device-side assert) leaves a context unusable for the rest of the process, and a body that
//! outlived its timeout may still be using its device.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cuda::error::CudaError;
use crate::probe::DeviceInfo;

/// Why a device is out of use, and which test caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// A sticky error broke the device's context.
    Poisoned {
        /// The test in which the error surfaced.
        test: String,
        /// The error.
        error: CudaError,
    },
    /// A body that timed out may still be running on the device.
    Abandoned {
        /// The test that timed out.
        test: String,
    },
    /// A call gpu-test made for a test (reading free memory for its lease) did not return: it is
    /// left inside the driver, which may hold the driver's locks, so no device can be used.
    DriverHung {
        /// What did not return, its limit, and for which device and test it was made.
        reason: String,
    },
}

static BLOCKED: Mutex<Vec<(String, String, Blocked)>> = Mutex::new(Vec::new());

/// Records that `device` cannot be used again in this process, unless already recorded (the
/// first cause is the one worth naming).
pub(crate) fn block(device: &DeviceInfo, blocked: Blocked) {
    let mut all = BLOCKED.lock().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|(key, _, _)| *key == device.key()) {
        all.push((device.key(), device.label(), blocked));
    }
}

/// Why `device` is out of use, if it is.
pub(crate) fn blocked(device: &DeviceInfo) -> Option<Blocked> {
    let all = BLOCKED.lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .find(|(key, _, _)| *key == device.key())
        .map(|(_, _, b)| b.clone())
}

/// Set when a test is abandoned, whatever else blocked its devices first.
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// Records that work of a test was left running, in its body past its limit (`Blocked::Abandoned`)
/// or in a call into the driver (`Blocked::DriverHung`): `devices` are blocked for that cause
/// (unless already, for an earlier one), and the process should end without exit handlers.
pub(crate) fn abandon(devices: &[DeviceInfo], cause: Blocked) {
    ABANDONED.store(true, Ordering::SeqCst);
    crate::util::stderr::write_past_the_lock();
    for device in devices {
        block(device, cause.clone());
    }
}

/// Whether a test outlived its limit in this process. Its thread may be inside the driver, whose
/// own exit-time teardown could then wait for it for ever: the process should end without
/// running exit handlers.
pub(crate) fn any_abandoned() -> bool {
    ABANDONED.load(Ordering::SeqCst)
}

/// Why `device` cannot be given to a test, for the test's failure message.
pub(crate) fn explain(device: &DeviceInfo, blocked: &Blocked) -> String {
    match blocked {
        Blocked::Poisoned { test, error } => format!(
            "{} cannot be used: its CUDA context was poisoned by {test} ({error}); such an error leaves the \
             context unusable for the rest of the process, so every later test on this device would fail \
             with it; run tests in separate processes (cargo nextest run) so that one fault cannot fail the \
             others",
            device.label()
        ),
        Blocked::DriverHung { reason } => format!("{} cannot be used: {reason}", device.label()),
        Blocked::Abandoned { test } => format!(
            "{} cannot be used: {test} outlived its timeout and may still be running on it; run tests in \
             separate processes (cargo nextest run) so that a hung test cannot hold up the others",
            device.label()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::version::Version;

    #[test]
    fn the_first_cause_is_kept_and_explained() {
        let device = DeviceInfo {
            ordinal: 0,
            name: "NVIDIA H100".to_string(),
            compute_capability: Version::new(9, 0),
            total_memory: 80 << 30,
            multiprocessors: None,
            uuid: Some("GPU-faults-test".to_string()),
            pci_bus_id: None,
            compute_mode: None,
        };
        assert_eq!(blocked(&device), None);
        let error = CudaError::from_code(700);
        block(
            &device,
            Blocked::Poisoned {
                test: "a::bad".to_string(),
                error: error.clone(),
            },
        );
        assert!(!any_abandoned(), "a poisoned device is not an abandoned test");
        // A test abandoned on a device poisoned first still counts as abandoned.
        abandon(
            std::slice::from_ref(&device),
            Blocked::Abandoned {
                test: "b::slow".to_string(),
            },
        );
        assert!(any_abandoned());
        let cause = blocked(&device).unwrap();
        assert_eq!(
            cause,
            Blocked::Poisoned {
                test: "a::bad".to_string(),
                error
            }
        );
        let text = explain(&device, &cause);
        assert!(text.starts_with("device 0 NVIDIA H100 cannot be used: its CUDA context was poisoned by a::bad (CUDA_ERROR_ILLEGAL_ADDRESS (700)"), "{text}");
        assert!(text.contains("cargo nextest run"));
    }
}
