//! A fake CUDA driver (`libcuda`), NVRTC (`libnvrtc`) and NVML's driver release in one shared
//! library, so that gpu-test's probe, `Gpu` handle and harness run their real loading and calling
//! paths on machines without a GPU.
//!
//! The tests put this library in a directory under the names `libcuda.so.1`, `libcuda.so`,
//! `libnvidia-ml.so.1` and `libnvrtc.so`, point `LD_LIBRARY_PATH` at it, and start a child process. Its answers are set by
//! environment variables; see [`config`]. To "leave out" a symbol, the tests copy the library and
//! rename the symbol in the copy's dynamic string table, so that `dlsym` no longer finds it.
//!
//! Entry points follow the CUDA driver API's C declarations; their safety contracts are CUDA's.

#![allow(non_snake_case, clippy::too_many_arguments)]

pub mod config;
mod driver;
mod nvml;
mod nvrtc;
mod state;

/// The name and message the real driver gives for the codes the fake knows; unknown codes get no
/// name, as with the real driver (`cuGetErrorName` returns `CUDA_ERROR_INVALID_VALUE`).
fn error_name(code: i32) -> Option<(&'static str, &'static str)> {
    Some(match code {
        0 => ("CUDA_SUCCESS\0", "no error\0"),
        1 => ("CUDA_ERROR_INVALID_VALUE\0", "invalid argument\0"),
        2 => ("CUDA_ERROR_OUT_OF_MEMORY\0", "out of memory\0"),
        3 => ("CUDA_ERROR_NOT_INITIALIZED\0", "initialization error\0"),
        34 => ("CUDA_ERROR_STUB_LIBRARY\0", "CUDA driver is a stub library\0"),
        46 => (
            "CUDA_ERROR_DEVICE_UNAVAILABLE\0",
            "CUDA-capable device(s) is/are busy or unavailable\0",
        ),
        100 => ("CUDA_ERROR_NO_DEVICE\0", "no CUDA-capable device is detected\0"),
        101 => ("CUDA_ERROR_INVALID_DEVICE\0", "invalid device ordinal\0"),
        201 => ("CUDA_ERROR_INVALID_CONTEXT\0", "invalid device context\0"),
        304 => (
            "CUDA_ERROR_OPERATING_SYSTEM\0",
            "OS call failed or operation not supported on this OS\0",
        ),
        400 => ("CUDA_ERROR_INVALID_HANDLE\0", "invalid resource handle\0"),
        700 => (
            "CUDA_ERROR_ILLEGAL_ADDRESS\0",
            "an illegal memory access was encountered\0",
        ),
        719 => ("CUDA_ERROR_LAUNCH_FAILED\0", "unspecified launch failure\0"),
        803 => (
            "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH\0",
            "system has unsupported display driver / cuda driver combination\0",
        ),
        999 => ("CUDA_ERROR_UNKNOWN\0", "unknown error\0"),
        _ => return None,
    })
}

/// Errors that leave a context unusable: every later call on it returns the same code (as cuda.h
/// describes them).
fn is_sticky(code: i32) -> bool {
    matches!(code, 226 | 700 | 702 | 710 | 714..=719 | 721 | 810 | 911)
}
