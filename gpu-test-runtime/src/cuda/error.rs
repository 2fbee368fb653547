//! CUDA driver result codes as plain integers, mapped to names and messages here.
//!
//! cudarc represents `CUresult` as a Rust enum, so a code its bindings do not know (a code from a
//! newer driver, or a runtime-API code returned by a shim) is undefined behaviour there. Every
//! driver call gpu-test makes itself returns an `i32`, and this module turns it into text; an
//! unknown code stays an integer and is reported as such.

use std::fmt;

/// A failed CUDA driver call's result: the raw code, with its name and message when known.
///
/// Its `Debug` text is its `Display` text in `CudaError(...)`: a test that returns it (through
/// `Box<dyn Error>` and `?`) fails with its `Debug` text, which must read as the error does.
#[derive(Clone, PartialEq, Eq)]
pub struct CudaError {
    /// The raw `CUresult` value.
    pub code: i32,
    /// `CUDA_ERROR_NO_DEVICE` for 100; `None` when neither the driver nor gpu-test knows the code.
    pub name: Option<String>,
    /// The driver's description, e.g. `no CUDA-capable device is detected`.
    pub message: Option<String>,
}

impl CudaError {
    /// Describes `code` from gpu-test's own table (used when the driver cannot be asked).
    pub fn from_code(code: i32) -> CudaError {
        let known = KNOWN.iter().find(|(c, _, _)| *c == code);
        CudaError {
            code,
            name: known.map(|(_, name, _)| (*name).to_string()),
            message: known.map(|(_, _, message)| (*message).to_string()),
        }
    }

    /// A call that reported success with an answer that cannot be right: `code` is 0 and the
    /// message says what was wrong.
    pub(crate) fn bad_answer(message: String) -> CudaError {
        CudaError {
            code: 0,
            name: None,
            message: Some(message),
        }
    }

    /// Whether this error leaves the context unusable: every later call on it fails the same way
    /// (an illegal address, a device-side assert, a kernel that faulted). These are the codes
    /// cuda.h says leave "the process in an inconsistent state" or require it to be "terminated
    /// and relaunched": a contained error (226), a launch timeout (702), a kernel's faults
    /// (700, 710, 714 to 719), tensor memory left allocated (721), an MPS client the server
    /// ended (810), and an external device's error (911).
    pub fn is_sticky(&self) -> bool {
        matches!(self.code, 226 | 700 | 702 | 710 | 714..=719 | 721 | 810 | 911)
    }

    /// Whether the device had no room for what was asked, which waiting may change: out of
    /// memory (2), in exclusive use by another process (46), an MPS server not ready or at its
    /// most clients or connections (807 to 809).
    pub(crate) fn is_for_want_of_room(&self) -> bool {
        matches!(self.code, 2 | 46 | 807..=809)
    }

    /// What to do about this error, where there is a usual fix.
    pub fn hint(&self) -> Option<&'static str> {
        if self.code == 710 {
            return Some("a device-side assert fired in a kernel; the context is now unusable");
        }
        if self.code == 810 {
            return Some(
                "the MPS server ended this process's connection; CUDA is unusable in this process until it is \
                 started again: check the MPS control daemon (`nvidia-cuda-mps-control`)",
            );
        }
        if matches!(self.code, 226 | 911) {
            return Some(
                "the GPU contained a hardware or interconnect error (check `nvidia-smi` and the kernel log for \
                 Xid errors: `sudo dmesg | grep -i xid`); the context is now unusable and every later call on it \
                 fails",
            );
        }
        if self.is_sticky() {
            return Some(
                "a kernel faulted; the context is now unusable and every later call on it fails: run tests in \
                 separate processes (cargo nextest) to keep one fault from failing the others",
            );
        }
        Some(match self.code {
            2 => "another process may be holding the GPU's memory: check `nvidia-smi`",
            3 | 4 => {
                "the driver was not initialised or is shutting down; this is usually a bug in the caller"
            }
            34 => {
                "the loaded libcuda is the CUDA toolkit's stub (from .../lib64/stubs), which only exists for linking: \
                   take it off the loader's path (LD_LIBRARY_PATH, /etc/ld.so.conf, a copy among the system's \
                   libraries) so the driver's libcuda.so.1 is found"
            }
            46 => {
                "the device is busy or in an exclusive compute mode used by another process: check `nvidia-smi` \
                   and `nvidia-smi -q -d COMPUTE`"
            }
            100 => {
                "no GPU is visible: check `nvidia-smi`, CUDA_VISIBLE_DEVICES, and in containers that the GPU \
                    was passed in (`--gpus all`)"
            }
            101 => "CUDA_VISIBLE_DEVICES names a device that does not exist",
            209 => "the code was not built for this GPU's architecture",
            222 => {
                "the PTX was made by a newer CUDA toolkit than the driver supports: update the driver or \
                    compile with an older toolkit"
            }
            304 => {
                "an operating-system call failed: check permissions on /dev/nvidia* and that the NVIDIA kernel \
                    module is loaded"
            }
            803 => {
                "the loaded libcuda and the NVIDIA kernel module are different releases, usually after a \
                    driver update without a reboot: reboot, or reload the nvidia kernel module"
            }
            804 => {
                "CUDA forward compatibility (a newer libcuda from cuda-compat) only works on data-centre GPUs: \
                    remove the compat directory from LD_LIBRARY_PATH"
            }
            999 => {
                "often a driver in a bad state (after suspend/resume, or an update without reboot): check \
                    `nvidia-smi` and `dmesg`, then reload the nvidia kernel module or reboot"
            }
            _ => return None,
        })
    }

    /// For a code the driver API does not define but the CUDA runtime API does, what it means
    /// there: such codes come from shims and wrappers that pass runtime errors through.
    fn runtime_meaning(&self) -> Option<(&'static str, &'static str)> {
        Some(match self.code {
            35 => (
                "cudaErrorInsufficientDriver",
                "CUDA driver version is insufficient for CUDA runtime version",
            ),
            _ => return None,
        })
    }
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.message) {
            (None, Some(message)) if self.code == 0 => f.write_str(message),
            (Some(name), Some(message)) => write!(f, "{name} ({}) \"{message}\"", self.code),
            (Some(name), None) => write!(f, "{name} ({})", self.code),
            // A driver that describes a code it does not name (`cuGetErrorName` failed, or is
            // missing), which gpu-test's table does not name either.
            (None, Some(message)) => write!(
                f,
                "CUDA error code {} \"{message}\" (a code gpu-test does not know by name)",
                self.code
            ),
            (None, None) => {
                write!(f, "unknown CUDA error code {}", self.code)?;
                match self.runtime_meaning() {
                    Some((name, message)) => write!(
                        f,
                        " (not a driver API code; in the CUDA runtime API it is {name}: \"{message}\")"
                    ),
                    None => write!(f, " (not a code this driver or gpu-test knows)"),
                }
            }
        }
    }
}

impl fmt::Debug for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CudaError({self})")
    }
}

impl std::error::Error for CudaError {}

/// `(code, name, message)` for every `CUresult` up to CUDA 13.2.
const KNOWN: &[(i32, &str, &str)] = &[
    (0, "CUDA_SUCCESS", "no error"),
    (1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"),
    (2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"),
    (3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"),
    (4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"),
    (
        5,
        "CUDA_ERROR_PROFILER_DISABLED",
        "profiler disabled while using external profiling tool",
    ),
    (
        6,
        "CUDA_ERROR_PROFILER_NOT_INITIALIZED",
        "profiler not initialized: call cudaProfilerInitialize()",
    ),
    (
        7,
        "CUDA_ERROR_PROFILER_ALREADY_STARTED",
        "profiler already started",
    ),
    (
        8,
        "CUDA_ERROR_PROFILER_ALREADY_STOPPED",
        "profiler already stopped",
    ),
    (34, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"),
    (
        36,
        "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER",
        "API call requires a newer CUDA driver",
    ),
    (
        46,
        "CUDA_ERROR_DEVICE_UNAVAILABLE",
        "CUDA-capable device(s) is/are busy or unavailable",
    ),
    (
        47,
        "CUDA_ERROR_MULTICAST_RESOURCE_FULL",
        "multicast resources are exhausted",
    ),
    (100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"),
    (101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"),
    (
        102,
        "CUDA_ERROR_DEVICE_NOT_LICENSED",
        "device doesn't have valid Grid license",
    ),
    (200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"),
    (201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"),
    (
        202,
        "CUDA_ERROR_CONTEXT_ALREADY_CURRENT",
        "context already current",
    ),
    (205, "CUDA_ERROR_MAP_FAILED", "mapping of buffer object failed"),
    (
        206,
        "CUDA_ERROR_UNMAP_FAILED",
        "unmapping of buffer object failed",
    ),
    (207, "CUDA_ERROR_ARRAY_IS_MAPPED", "array is mapped"),
    (208, "CUDA_ERROR_ALREADY_MAPPED", "resource already mapped"),
    (
        209,
        "CUDA_ERROR_NO_BINARY_FOR_GPU",
        "no kernel image is available for execution on the device",
    ),
    (210, "CUDA_ERROR_ALREADY_ACQUIRED", "resource already acquired"),
    (211, "CUDA_ERROR_NOT_MAPPED", "resource not mapped"),
    (
        212,
        "CUDA_ERROR_NOT_MAPPED_AS_ARRAY",
        "resource not mapped as array",
    ),
    (
        213,
        "CUDA_ERROR_NOT_MAPPED_AS_POINTER",
        "resource not mapped as pointer",
    ),
    (
        214,
        "CUDA_ERROR_ECC_UNCORRECTABLE",
        "uncorrectable ECC error encountered",
    ),
    (
        215,
        "CUDA_ERROR_UNSUPPORTED_LIMIT",
        "limit is not supported on this architecture",
    ),
    (
        216,
        "CUDA_ERROR_CONTEXT_ALREADY_IN_USE",
        "exclusive-thread device already in use by a different thread",
    ),
    (
        217,
        "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED",
        "peer access is not supported between these two devices",
    ),
    (218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"),
    (
        219,
        "CUDA_ERROR_INVALID_GRAPHICS_CONTEXT",
        "invalid OpenGL or DirectX context",
    ),
    (
        220,
        "CUDA_ERROR_NVLINK_UNCORRECTABLE",
        "uncorrectable NVLink error detected during the execution",
    ),
    (
        221,
        "CUDA_ERROR_JIT_COMPILER_NOT_FOUND",
        "PTX JIT compiler library not found",
    ),
    (
        222,
        "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        "the provided PTX was compiled with an unsupported toolchain.",
    ),
    (
        223,
        "CUDA_ERROR_JIT_COMPILATION_DISABLED",
        "PTX JIT compilation was disabled",
    ),
    (
        224,
        "CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY",
        "the provided execution affinity is not supported",
    ),
    (
        225,
        "CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC",
        "the provided PTX contains unsupported call to cudaDeviceSynchronize",
    ),
    (
        226,
        "CUDA_ERROR_CONTAINED",
        "an exception occurred on the device that is now contained by the GPU's error containment capability",
    ),
    (
        227,
        "CUDA_ERROR_INSUFFICIENT_LOADER_VERSION",
        "the loader is too old for the driver",
    ),
    (300, "CUDA_ERROR_INVALID_SOURCE", "device kernel image is invalid"),
    (301, "CUDA_ERROR_FILE_NOT_FOUND", "file not found"),
    (
        302,
        "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND",
        "shared object symbol not found",
    ),
    (
        303,
        "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED",
        "shared object initialization failed",
    ),
    (
        304,
        "CUDA_ERROR_OPERATING_SYSTEM",
        "OS call failed or operation not supported on this OS",
    ),
    (400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"),
    (
        401,
        "CUDA_ERROR_ILLEGAL_STATE",
        "the operation cannot be performed in the present state",
    ),
    (
        402,
        "CUDA_ERROR_LOSSY_QUERY",
        "attempted introspection would be semantically lossy",
    ),
    (500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"),
    (600, "CUDA_ERROR_NOT_READY", "device not ready"),
    (
        700,
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        "an illegal memory access was encountered",
    ),
    (
        701,
        "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        "too many resources requested for launch",
    ),
    (
        702,
        "CUDA_ERROR_LAUNCH_TIMEOUT",
        "the launch timed out and was terminated",
    ),
    (
        703,
        "CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING",
        "launch uses incompatible texturing mode",
    ),
    (
        704,
        "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED",
        "peer access is already enabled",
    ),
    (
        705,
        "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED",
        "peer access has not been enabled",
    ),
    (
        708,
        "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE",
        "cannot set while device is active in this process",
    ),
    (709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"),
    (710, "CUDA_ERROR_ASSERT", "device-side assert triggered"),
    (
        711,
        "CUDA_ERROR_TOO_MANY_PEERS",
        "peer mapping resources exhausted",
    ),
    (
        712,
        "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
        "part or all of the requested memory range is already mapped",
    ),
    (
        713,
        "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
        "pointer does not correspond to a registered memory region",
    ),
    (714, "CUDA_ERROR_HARDWARE_STACK_ERROR", "hardware stack error"),
    (
        715,
        "CUDA_ERROR_ILLEGAL_INSTRUCTION",
        "an illegal instruction was encountered",
    ),
    (716, "CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"),
    (
        717,
        "CUDA_ERROR_INVALID_ADDRESS_SPACE",
        "operation not supported on global/shared address space",
    ),
    (718, "CUDA_ERROR_INVALID_PC", "invalid program counter"),
    (719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"),
    (
        720,
        "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE",
        "too many blocks in cooperative launch",
    ),
    (
        721,
        "CUDA_ERROR_TENSOR_MEMORY_LEAK",
        "tensor memory not completely freed",
    ),
    (800, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"),
    (801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"),
    (802, "CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"),
    (
        803,
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        "system has unsupported display driver / cuda driver combination",
    ),
    (
        804,
        "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        "forward compatibility was attempted on non supported HW",
    ),
    (
        805,
        "CUDA_ERROR_MPS_CONNECTION_FAILED",
        "MPS client failed to connect to the MPS control daemon or the MPS server",
    ),
    (
        806,
        "CUDA_ERROR_MPS_RPC_FAILURE",
        "the remote procedural call between the MPS server and the MPS client failed",
    ),
    (
        807,
        "CUDA_ERROR_MPS_SERVER_NOT_READY",
        "MPS server is not ready to accept new MPS client requests",
    ),
    (
        808,
        "CUDA_ERROR_MPS_MAX_CLIENTS_REACHED",
        "the hardware resources required to create MPS client have been exhausted",
    ),
    (
        809,
        "CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED",
        "the hardware resources required to support device connections have been exhausted",
    ),
    (
        810,
        "CUDA_ERROR_MPS_CLIENT_TERMINATED",
        "the MPS client has been terminated by the server",
    ),
    (
        811,
        "CUDA_ERROR_CDP_NOT_SUPPORTED",
        "module is using CUDA Dynamic Parallelism, but the current configuration does not support it",
    ),
    (
        812,
        "CUDA_ERROR_CDP_VERSION_MISMATCH",
        "CUDA Dynamic Parallelism is not supported across different versions",
    ),
    (
        900,
        "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
        "operation not permitted when stream is capturing",
    ),
    (
        901,
        "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
        "operation failed due to a previous error during capture",
    ),
    (
        902,
        "CUDA_ERROR_STREAM_CAPTURE_MERGE",
        "operation would result in a merge of separate capture sequences",
    ),
    (
        903,
        "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED",
        "capture was not ended in the same stream as it began",
    ),
    (
        904,
        "CUDA_ERROR_STREAM_CAPTURE_UNJOINED",
        "capturing stream has unjoined work",
    ),
    (
        905,
        "CUDA_ERROR_STREAM_CAPTURE_ISOLATION",
        "dependency created on uncaptured work in another stream",
    ),
    (
        906,
        "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT",
        "operation would make the legacy stream depend on a capturing blocking stream",
    ),
    (
        907,
        "CUDA_ERROR_CAPTURED_EVENT",
        "operation not permitted on an event last recorded in a capturing stream",
    ),
    (
        908,
        "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD",
        "attempt to terminate a thread-local capture sequence from another thread",
    ),
    (909, "CUDA_ERROR_TIMEOUT", "wait operation timed out"),
    (
        910,
        "CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE",
        "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update",
    ),
    (
        911,
        "CUDA_ERROR_EXTERNAL_DEVICE",
        "an async error has occurred in a device outside of CUDA",
    ),
    (
        912,
        "CUDA_ERROR_INVALID_CLUSTER_SIZE",
        "a kernel launch error has occurred due to cluster misconfiguration",
    ),
    (
        913,
        "CUDA_ERROR_FUNCTION_NOT_LOADED",
        "the function handle is not loaded when calling an API that requires a loaded function",
    ),
    (
        914,
        "CUDA_ERROR_INVALID_RESOURCE_TYPE",
        "one or more resources passed in are not valid resource types for the operation",
    ),
    (
        915,
        "CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION",
        "one or more resources are insufficient or non-applicable for the operation",
    ),
    (
        916,
        "CUDA_ERROR_KEY_ROTATION",
        "an error happened during the key rotation sequence",
    ),
    (917, "CUDA_ERROR_STREAM_DETACHED", "the stream is detached"),
    (
        918,
        "CUDA_ERROR_GRAPH_RECAPTURE_FAILURE",
        "graph recapture failed",
    ),
    (919, "CUDA_ERROR_FABRIC_NOT_READY", "the fabric is not ready"),
    (999, "CUDA_ERROR_UNKNOWN", "unknown error"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_print_name_code_and_message() {
        assert_eq!(
            CudaError::from_code(100).to_string(),
            "CUDA_ERROR_NO_DEVICE (100) \"no CUDA-capable device is detected\""
        );
        assert_eq!(
            CudaError::from_code(34).to_string(),
            "CUDA_ERROR_STUB_LIBRARY (34) \"CUDA driver is a stub library\""
        );
        // A test that returns one fails with its Debug text: the same words, not its fields
        // (where a bad answer's `code: 0` would read as success).
        let returned: Box<dyn std::error::Error> = Box::new(CudaError::bad_answer("-1 ms is not a time".into()));
        assert_eq!(format!("{returned:?}"), "CudaError(-1 ms is not a time)");
    }

    #[test]
    fn a_code_the_driver_describes_but_does_not_name_keeps_the_description() {
        let error = CudaError {
            code: 12345,
            name: None,
            message: Some("a newer driver's failure".to_string()),
        };
        assert_eq!(
            error.to_string(),
            "CUDA error code 12345 \"a newer driver's failure\" (a code gpu-test does not know by name)"
        );
    }

    #[test]
    fn unknown_codes_stay_numbers() {
        let error = CudaError::from_code(9999);
        assert_eq!(error.name, None);
        assert_eq!(
            error.to_string(),
            "unknown CUDA error code 9999 (not a code this driver or gpu-test knows)"
        );
        assert!(
            CudaError::from_code(35)
                .to_string()
                .contains("cudaErrorInsufficientDriver")
        );
        assert!(CudaError::from_code(i32::MIN).to_string().contains("-2147483648"));
    }

    #[test]
    fn sticky_codes() {
        let sticky = |code| CudaError::from_code(code).is_sticky();
        for code in [226, 700, 702, 710, 714, 715, 716, 717, 718, 719, 721, 810, 911] {
            assert!(sticky(code), "{code}");
        }
        for code in [2, 209, 701, 709, 711, 720, 801, 999, 9999] {
            assert!(!sticky(code), "{code}");
        }
        assert!(CudaError::from_code(226).hint().unwrap().contains("Xid"));
        assert!(CudaError::from_code(810).hint().unwrap().contains("MPS"));
        assert!(
            CudaError::from_code(716)
                .hint()
                .unwrap()
                .contains("separate processes")
        );
    }

    #[test]
    fn codes_are_unique_and_sorted() {
        assert!(KNOWN.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
