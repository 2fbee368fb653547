//! Raw CUDA driver entry points, resolved from the loaded libcuda as `extern "C" fn(..) -> i32`.
//!
//! Results stay `i32` (never cudarc's `CUresult` enum, for which an unknown code is undefined
//! behaviour), and a symbol the library lacks is reported by name instead of panicking.

use std::ffi::{c_char, c_int, c_uchar, c_uint, c_void};

use super::library::Library;

/// `CUdevice`.
pub(crate) type CuDevice = c_int;
/// `CUcontext`, `CUstream`, `CUevent`: opaque driver handles.
pub(crate) type CuHandle = *mut c_void;
/// `CUdeviceptr`: an address in device memory.
pub(crate) type CuDevicePtr = u64;

macro_rules! driver_symbols {
    (
        required { $($req:ident = $req_sym:literal : fn($($req_arg:ty),*);)* }
        optional { $($opt:ident = $opt_sym:literal : fn($($opt_arg:ty),*);)* }
        checked { $($checked:literal),* $(,)? }
    ) => {
        /// The driver's entry points. Required ones are plain function pointers; optional ones
        /// (absent from older drivers) are `Option`s.
        #[allow(non_snake_case)]
        pub(crate) struct DriverSys {
            $(pub(crate) $req: unsafe extern "C" fn($($req_arg),*) -> c_int,)*
            $(pub(crate) $opt: Option<unsafe extern "C" fn($($opt_arg),*) -> c_int>,)*
        }

        impl DriverSys {
            /// Symbols gpu-test does not call itself but a test body's cudarc context, stream
            /// and copies need: checked up front so that a driver lacking one is a skip reason
            /// naming it, not a panic inside cudarc in the middle of a test.
            const CHECKED: &'static [&'static str] = &[$($checked),*];

            /// Resolves every symbol; `Err` lists the required ones the library lacks.
            #[allow(non_snake_case)]
            pub(crate) fn resolve(library: &Library) -> Result<DriverSys, Vec<&'static str>> {
                $(
                    // SAFETY: the type is the symbol's C declaration from cuda.h, with the
                    // CUresult return as a plain int.
                    let $req = unsafe {
                        library.function::<unsafe extern "C" fn($($req_arg),*) -> c_int>($req_sym)
                    };
                )*
                let mut missing: Vec<&'static str> = [$(($req_sym, $req.is_some())),*]
                    .into_iter()
                    .filter(|(_, found)| !found)
                    .map(|(symbol, _)| symbol)
                    .collect();
                for symbol in Self::CHECKED {
                    if library.address(symbol).is_none() {
                        missing.push(symbol);
                    }
                }
                match ($($req,)*) {
                    ($(Some($req),)*) if missing.is_empty() => Ok(DriverSys {
                        $($req,)*
                        // SAFETY: as above, each type is the symbol's C declaration.
                        $($opt: unsafe { library.function($opt_sym) },)*
                    }),
                    _ => Err(missing),
                }
            }
        }

        impl std::fmt::Debug for DriverSys {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("DriverSys").finish_non_exhaustive()
            }
        }
    };
}

driver_symbols! {
    required {
        cuDriverGetVersion = "cuDriverGetVersion": fn(*mut c_int);
        cuInit = "cuInit": fn(c_uint);
        cuDeviceGetCount = "cuDeviceGetCount": fn(*mut c_int);
        cuDeviceGet = "cuDeviceGet": fn(*mut CuDevice, c_int);
        cuDeviceGetName = "cuDeviceGetName": fn(*mut c_char, c_int, CuDevice);
        cuDeviceGetAttribute = "cuDeviceGetAttribute": fn(*mut c_int, c_int, CuDevice);
        cuDeviceTotalMem_v2 = "cuDeviceTotalMem_v2": fn(*mut usize, CuDevice);
        cuGetErrorString = "cuGetErrorString": fn(c_int, *mut *const c_char);
        cuDevicePrimaryCtxRetain = "cuDevicePrimaryCtxRetain": fn(*mut CuHandle, CuDevice);
        cuDevicePrimaryCtxRelease_v2 = "cuDevicePrimaryCtxRelease_v2": fn(CuDevice);
        cuCtxSetCurrent = "cuCtxSetCurrent": fn(CuHandle);
        cuCtxGetCurrent = "cuCtxGetCurrent": fn(*mut CuHandle);
        cuCtxSynchronize = "cuCtxSynchronize": fn();
        cuEventCreate = "cuEventCreate": fn(*mut CuHandle, c_uint);
        cuEventRecord = "cuEventRecord": fn(CuHandle, CuHandle);
        cuEventSynchronize = "cuEventSynchronize": fn(CuHandle);
        cuEventDestroy_v2 = "cuEventDestroy_v2": fn(CuHandle);
        cuMemAlloc_v2 = "cuMemAlloc_v2": fn(*mut CuDevicePtr, usize);
        cuMemFree_v2 = "cuMemFree_v2": fn(CuDevicePtr);
        cuMemsetD8Async = "cuMemsetD8Async": fn(CuDevicePtr, c_uchar, usize, CuHandle);
        cuMemcpyHtoDAsync_v2 = "cuMemcpyHtoDAsync_v2": fn(CuDevicePtr, *const c_void, usize, CuHandle);
        cuMemcpyDtoHAsync_v2 = "cuMemcpyDtoHAsync_v2": fn(*mut c_void, CuDevicePtr, usize, CuHandle);
        cuStreamSynchronize = "cuStreamSynchronize": fn(CuHandle);
    }
    optional {
        cuGetErrorName = "cuGetErrorName": fn(c_int, *mut *const c_char);
        cuDeviceGetUuid = "cuDeviceGetUuid": fn(*mut [u8; 16], CuDevice);
        cuDeviceGetUuid_v2 = "cuDeviceGetUuid_v2": fn(*mut [u8; 16], CuDevice);
        cuDeviceGetPCIBusId = "cuDeviceGetPCIBusId": fn(*mut c_char, c_int, CuDevice);
        cuMemGetInfo_v2 = "cuMemGetInfo_v2": fn(*mut usize, *mut usize);
        cuDeviceGetDefaultMemPool = "cuDeviceGetDefaultMemPool": fn(*mut CuHandle, CuDevice);
        cuMemPoolTrimTo = "cuMemPoolTrimTo": fn(CuHandle, usize);
        cuEventElapsedTime = "cuEventElapsedTime": fn(*mut f32, CuHandle, CuHandle);
        cuEventElapsedTime_v2 = "cuEventElapsedTime_v2": fn(*mut f32, CuHandle, CuHandle);
        cuMemAllocAsync = "cuMemAllocAsync": fn(*mut CuDevicePtr, usize, CuHandle);
        cuMemFreeAsync = "cuMemFreeAsync": fn(CuDevicePtr, CuHandle);
    }
    checked {
        "cuStreamWaitEvent",
    }
}
