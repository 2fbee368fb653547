//! NVRTC's one entry point gpu-test calls itself: `nvrtcVersion`, through its own pointer.

use std::ffi::c_int;

use super::library::Library;

/// What `nvrtcVersion` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NvrtcVersion {
    /// The library does not export `nvrtcVersion`.
    Missing,
    /// The call failed with this `nvrtcResult`.
    Failed(i32),
    /// The call succeeded with a negative part, which no version has: `(major, minor)`.
    NoVersion(i32, i32),
    /// `(major, minor)`.
    Found(u32, u32),
}

/// Calls `nvrtcVersion` in `library`.
pub(crate) fn nvrtc_version(library: &Library) -> NvrtcVersion {
    type VersionFn = unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int;
    // SAFETY: nvrtcResult nvrtcVersion(int *major, int *minor), with the enum result as int.
    let Some(call) = (unsafe { library.function::<VersionFn>("nvrtcVersion") }) else {
        return NvrtcVersion::Missing;
    };
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two valid out-pointers.
    let code = unsafe { call(&mut major, &mut minor) };
    match (code, u32::try_from(major), u32::try_from(minor)) {
        (0, Ok(major), Ok(minor)) => NvrtcVersion::Found(major, minor),
        (0, _, _) => NvrtcVersion::NoVersion(major, minor),
        _ => NvrtcVersion::Failed(code),
    }
}
