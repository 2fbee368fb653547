//! NVML, the NVIDIA driver's management library, asked for the one fact the CUDA driver API does
//! not give: the driver's release (`580.95.05`, as `nvidia-smi` shows it), where neither
//! `/proc/driver/nvidia/version` (absent in WSL2 and some sandboxes) nor the driver library's
//! file name (a plain `libcuda.so.1`, as WSL2 and some container runtimes mount it) tells it.

use std::ffi::{CStr, c_char};

use super::guard::Calls;
use super::library::{self, Search};

/// `nvmlInit_v2`.
type Init = unsafe extern "C" fn() -> i32;
/// `nvmlSystemGetDriverVersion(char *version, unsigned int length)`.
type DriverVersion = unsafe extern "C" fn(*mut c_char, u32) -> i32;
/// `nvmlShutdown`.
type Shutdown = unsafe extern "C" fn() -> i32;

/// `NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE`.
const VERSION_BUFFER: usize = 80;

/// The driver version NVML gives, as it gives it (the caller checks that it is a release);
/// `None` where NVML does not load, lacks a function, or fails. Initialising NVML talks to the
/// driver, which a wedged GPU can keep from answering: call it under the probe's guard, which
/// `calls` records the calls for.
pub(crate) fn driver_version(search: &Search, calls: &Calls) -> Option<String> {
    let library = library::load_first(&["libnvidia-ml.so.1".to_string()], search).ok()?;
    // SAFETY: the types are those nvml.h declares for these functions.
    let (init, version, shutdown) = unsafe {
        (
            library.function::<Init>("nvmlInit_v2")?,
            library.function::<DriverVersion>("nvmlSystemGetDriverVersion")?,
            library.function::<Shutdown>("nvmlShutdown")?,
        )
    };
    calls.enter("nvmlInit_v2", &library.name);
    // SAFETY: takes no arguments.
    if unsafe { init() } != 0 {
        return None;
    }
    let mut buffer = [0 as c_char; VERSION_BUFFER];
    calls.enter("nvmlSystemGetDriverVersion", &library.name);
    // SAFETY: `buffer` holds the `VERSION_BUFFER` bytes the length says.
    let answered = unsafe { version(buffer.as_mut_ptr(), VERSION_BUFFER as u32) };
    calls.enter("nvmlShutdown", &library.name);
    // SAFETY: balances the `nvmlInit_v2` that succeeded above.
    unsafe { shutdown() };
    if answered != 0 {
        return None;
    }
    // Read up to the first NUL within the buffer, never past it, whatever NVML wrote.
    let bytes: Vec<u8> = buffer.iter().map(|&c| c as u8).collect();
    let text = CStr::from_bytes_until_nul(&bytes).ok()?.to_str().ok()?;
    Some(text.to_string())
}
