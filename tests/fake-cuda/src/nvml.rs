//! The NVML entry points gpu-test calls for the driver's release, where nothing else tells it.
//! `FAKE_NVML_RELEASE` is the release they give; unset, `nvmlInit_v2` fails, as on a machine
//! where NVML cannot reach the driver.

use std::ffi::{c_char, c_int, c_uint};

const NVML_SUCCESS: c_int = 0;
const NVML_ERROR_INVALID_ARGUMENT: c_int = 2;
const NVML_ERROR_INSUFFICIENT_SIZE: c_int = 7;
const NVML_ERROR_DRIVER_NOT_LOADED: c_int = 9;

fn release() -> Option<String> {
    std::env::var("FAKE_NVML_RELEASE").ok().filter(|r| !r.is_empty())
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> c_int {
    match release() {
        Some(_) => NVML_SUCCESS,
        None => NVML_ERROR_DRIVER_NOT_LOADED,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> c_int {
    let Some(release) = release() else {
        return NVML_ERROR_DRIVER_NOT_LOADED;
    };
    if version.is_null() {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    let bytes = release.as_bytes();
    if bytes.len() + 1 > length as usize {
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    // SAFETY: NVML's contract: `version` holds `length` bytes, which the release and its NUL fit.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), version.cast::<u8>(), bytes.len());
        version.add(bytes.len()).write(0);
    }
    NVML_SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> c_int {
    NVML_SUCCESS
}
