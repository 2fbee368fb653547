//! Checked driver calls: each raw call's `i32` result becomes `Result<_, CudaError>`, and output
//! buffers are sized and terminated here so that callers never touch raw memory.

use std::ffi::{CStr, c_char, c_int};

use super::error::CudaError;
use super::guard::entering;
use super::sys::{CuDevice, CuDevicePtr, CuHandle, DriverSys};
use crate::util::format::escape_control;

/// `CUdevice_attribute` values gpu-test reads.
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
pub(crate) enum Attribute {
    MultiprocessorCount = 16,
    ComputeMode = 20,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MemoryPoolsSupported = 115,
}

impl DriverSys {
    /// Names `code` by asking the driver (`cuGetErrorName` / `cuGetErrorString`), falling back to
    /// gpu-test's own table for what the driver does not answer.
    pub(crate) fn error(&self, code: c_int) -> CudaError {
        let mut error = CudaError::from_code(code);
        let ask = |f: unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int| -> Option<String> {
            let mut text: *const c_char = std::ptr::null();
            // SAFETY: `text` is a valid out-pointer; the driver returns an error (and leaves it
            // null) for codes it does not know rather than failing.
            let result = unsafe { f(code, &mut text) };
            if result != 0 || text.is_null() {
                return None;
            }
            // SAFETY: on success the driver points `text` at a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
            Some(escape_control(&text))
        };
        if let Some(name) = self.cuGetErrorName.and_then(ask) {
            error.name = Some(name);
        }
        if let Some(message) = ask(self.cuGetErrorString) {
            error.message = Some(message);
        }
        error
    }

    fn check(&self, code: c_int) -> Result<(), CudaError> {
        if code == 0 { Ok(()) } else { Err(self.error(code)) }
    }

    /// `cuDriverGetVersion`: the newest CUDA the driver supports, as `1000 * major + 10 * minor`.
    pub(crate) fn driver_version(&self) -> Result<i32, CudaError> {
        entering("cuDriverGetVersion");
        let mut version = 0;
        // SAFETY: valid out-pointer; callable before cuInit.
        self.check(unsafe { (self.cuDriverGetVersion)(&mut version) })?;
        Ok(version)
    }

    /// `cuInit(0)`.
    pub(crate) fn init(&self) -> Result<(), CudaError> {
        entering("cuInit");
        // SAFETY: no pointers involved; flags must be 0.
        self.check(unsafe { (self.cuInit)(0) })
    }

    /// `cuDeviceGetCount`.
    pub(crate) fn device_count(&self) -> Result<i32, CudaError> {
        entering("cuDeviceGetCount");
        let mut count = 0;
        // SAFETY: valid out-pointer.
        self.check(unsafe { (self.cuDeviceGetCount)(&mut count) })?;
        Ok(count)
    }

    /// `cuDeviceGet`: the handle of the device with this ordinal.
    pub(crate) fn device(&self, ordinal: i32) -> Result<CuDevice, CudaError> {
        entering("cuDeviceGet");
        let mut device = 0;
        // SAFETY: valid out-pointer.
        self.check(unsafe { (self.cuDeviceGet)(&mut device, ordinal) })?;
        Ok(device)
    }

    /// `cuDeviceGetName`.
    pub(crate) fn device_name(&self, device: CuDevice) -> Result<String, CudaError> {
        entering("cuDeviceGetName");
        let mut buffer = [0 as c_char; 256];
        let len = buffer.len() as c_int - 1;
        // SAFETY: the driver writes at most `len` bytes; the last byte stays NUL.
        self.check(unsafe { (self.cuDeviceGetName)(buffer.as_mut_ptr(), len, device) })?;
        Ok(c_buffer_to_string(&buffer))
    }

    /// `cuDeviceGetAttribute`.
    pub(crate) fn attribute(&self, device: CuDevice, attribute: Attribute) -> Result<i32, CudaError> {
        entering("cuDeviceGetAttribute");
        let mut value = 0;
        // SAFETY: valid out-pointer; the attribute is a valid CUdevice_attribute.
        self.check(unsafe { (self.cuDeviceGetAttribute)(&mut value, attribute as c_int, device) })?;
        Ok(value)
    }

    /// `cuDeviceTotalMem_v2`, in bytes.
    pub(crate) fn total_memory(&self, device: CuDevice) -> Result<u64, CudaError> {
        entering("cuDeviceTotalMem_v2");
        let mut bytes = 0usize;
        // SAFETY: valid out-pointer of size_t.
        self.check(unsafe { (self.cuDeviceTotalMem_v2)(&mut bytes, device) })?;
        Ok(bytes as u64)
    }

    /// The device UUID as `nvidia-smi` prints it (`GPU-xxxxxxxx-xxxx-...`), if the driver has
    /// `cuDeviceGetUuid_v2` or `cuDeviceGetUuid`.
    pub(crate) fn uuid(&self, device: CuDevice) -> Option<Result<String, CudaError>> {
        entering("cuDeviceGetUuid");
        let call = self.cuDeviceGetUuid_v2.or(self.cuDeviceGetUuid)?;
        let mut bytes = [0u8; 16];
        // SAFETY: CUuuid is 16 bytes; valid out-pointer.
        let result = self.check(unsafe { call(&mut bytes, device) });
        Some(result.map(|()| format_uuid(&bytes)))
    }

    /// The PCI bus id (`0000:65:00.0`), if the driver has `cuDeviceGetPCIBusId`.
    pub(crate) fn pci_bus_id(&self, device: CuDevice) -> Option<Result<String, CudaError>> {
        entering("cuDeviceGetPCIBusId");
        let call = self.cuDeviceGetPCIBusId?;
        let mut buffer = [0 as c_char; 64];
        let len = buffer.len() as c_int - 1;
        // SAFETY: the driver writes at most `len` bytes; the last byte stays NUL.
        let result = self.check(unsafe { call(buffer.as_mut_ptr(), len, device) });
        Some(result.map(|()| c_buffer_to_string(&buffer)))
    }

    /// `cuDevicePrimaryCtxRetain`: keeps the device's primary context alive until released.
    pub(crate) fn retain_primary_context(&self, device: CuDevice) -> Result<CuHandle, CudaError> {
        entering("cuDevicePrimaryCtxRetain");
        let mut context: CuHandle = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        self.check(unsafe { (self.cuDevicePrimaryCtxRetain)(&mut context, device) })?;
        Ok(context)
    }

    /// `cuDevicePrimaryCtxRelease_v2`: undoes one retain.
    pub(crate) fn release_primary_context(&self, device: CuDevice) -> Result<(), CudaError> {
        entering("cuDevicePrimaryCtxRelease_v2");
        // SAFETY: called once per successful retain of the same device.
        self.check(unsafe { (self.cuDevicePrimaryCtxRelease_v2)(device) })
    }

    /// `cuCtxSetCurrent`.
    pub(crate) fn set_current_context(&self, context: CuHandle) -> Result<(), CudaError> {
        entering("cuCtxSetCurrent");
        // SAFETY: `context` is a live context handle from retain_primary_context.
        self.check(unsafe { (self.cuCtxSetCurrent)(context) })
    }

    /// `cuCtxGetCurrent`: the context current on this thread, null when none is.
    pub(crate) fn current_context(&self) -> Result<CuHandle, CudaError> {
        entering("cuCtxGetCurrent");
        let mut context: CuHandle = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        self.check(unsafe { (self.cuCtxGetCurrent)(&mut context) })?;
        Ok(context)
    }

    /// `cuCtxSynchronize` on the calling thread's current context: waits for its work, and
    /// returns any error that work raised (sticky errors included).
    pub(crate) fn synchronize_context(&self) -> Result<(), CudaError> {
        entering("cuCtxSynchronize");
        // SAFETY: no arguments; acts on the current context.
        self.check(unsafe { (self.cuCtxSynchronize)() })
    }

    /// `cuEventCreate` with default flags (timing enabled), in the current context.
    pub(crate) fn create_event(&self) -> Result<CuHandle, CudaError> {
        entering("cuEventCreate");
        let mut event: CuHandle = std::ptr::null_mut();
        // SAFETY: valid out-pointer; flags 0 is CU_EVENT_DEFAULT.
        self.check(unsafe { (self.cuEventCreate)(&mut event, 0) })?;
        Ok(event)
    }

    /// `cuEventRecord` of `event` on `stream`.
    pub(crate) fn record_event(&self, event: CuHandle, stream: CuHandle) -> Result<(), CudaError> {
        entering("cuEventRecord");
        // SAFETY: `event` is a live event and `stream` a live stream (or null, the default
        // stream) of the current context.
        self.check(unsafe { (self.cuEventRecord)(event, stream) })
    }

    /// `cuEventSynchronize`: waits until the work recorded before `event` is done.
    pub(crate) fn synchronize_event(&self, event: CuHandle) -> Result<(), CudaError> {
        entering("cuEventSynchronize");
        // SAFETY: `event` is a live, recorded event.
        self.check(unsafe { (self.cuEventSynchronize)(event) })
    }

    /// Milliseconds between two completed events (`cuEventElapsedTime[_v2]`).
    pub(crate) fn elapsed_ms(&self, start: CuHandle, end: CuHandle) -> Result<f32, CudaError> {
        entering("cuEventElapsedTime");
        let Some(call) = self.cuEventElapsedTime_v2.or(self.cuEventElapsedTime) else {
            return Err(CudaError::from_code(500));
        };
        let mut ms = 0.0f32;
        // SAFETY: valid out-pointer; both events are live, recorded and complete.
        self.check(unsafe { call(&mut ms, start, end) })?;
        // The time between two events on one stream is finite and not negative; a day is far
        // more than any region a test times, so more is a broken answer, not a measurement.
        if !ms.is_finite() || !(0.0..=86_400_000.0).contains(&ms) {
            return Err(CudaError::bad_answer(format!(
                "cuEventElapsedTime returned {ms} ms, which is not the time between two events"
            )));
        }
        Ok(ms)
    }

    /// `cuEventDestroy_v2`.
    pub(crate) fn destroy_event(&self, event: CuHandle) -> Result<(), CudaError> {
        entering("cuEventDestroy_v2");
        // SAFETY: `event` is a live event, destroyed once.
        self.check(unsafe { (self.cuEventDestroy_v2)(event) })
    }

    /// Releases to the device what `device`'s default stream-ordered memory pool holds for
    /// reuse (`cuMemPoolTrimTo(pool, 0)`), where the driver has the calls; for a device with
    /// pools: memory freed with `cuMemFreeAsync` stays in the pool, not free on the device.
    pub(crate) fn trim_default_pool(&self, device: CuDevice) -> Result<(), FailedCall> {
        let (Some(get_pool), Some(trim)) = (self.cuDeviceGetDefaultMemPool, self.cuMemPoolTrimTo) else {
            return Ok(());
        };
        let mut pool: CuHandle = std::ptr::null_mut();
        // SAFETY: a valid out-pointer and a device handle from cuDeviceGet.
        self.named("cuDeviceGetDefaultMemPool", || unsafe { get_pool(&mut pool, device) })?;
        // SAFETY: `pool` is the device's default pool, which lives as long as the context.
        self.named("cuMemPoolTrimTo", || unsafe { trim(pool, 0) })
    }

    /// One byte through device memory on `stream` of the current context, as a body's first
    /// copies take it through cudarc: allocated (stream-ordered where the device has memory
    /// pools, as cudarc allocates there), zeroed, written, read back, the stream waited for, and
    /// freed (freed too where a step between failed).
    pub(crate) fn byte_round_trip(&self, stream: CuHandle, pools: bool) -> Result<(), FailedCall> {
        let stream_ordered = match (pools, self.cuMemAllocAsync, self.cuMemFreeAsync) {
            (true, Some(alloc), Some(free)) => Some((alloc, free)),
            _ => None,
        };
        let mut address: CuDevicePtr = 0;
        match stream_ordered {
            // SAFETY: a valid out-pointer; `stream` is a live stream of the current context.
            Some((alloc, _)) => self.named("cuMemAllocAsync", || unsafe { alloc(&mut address, 1, stream) }),
            // SAFETY: a valid out-pointer.
            None => self.named("cuMemAlloc_v2", || unsafe { (self.cuMemAlloc_v2)(&mut address, 1) }),
        }?;
        let (written, mut read) = (0u8, 1u8);
        let used = (|| {
            // SAFETY: `address` is one byte allocated above; `stream` is live.
            self.named("cuMemsetD8Async", || unsafe { (self.cuMemsetD8Async)(address, 0, 1, stream) })?;
            // SAFETY: one byte from `written`, which outlives the copy: the stream is waited for
            // below before this function returns.
            self.named("cuMemcpyHtoDAsync_v2", || unsafe {
                (self.cuMemcpyHtoDAsync_v2)(address, (&raw const written).cast(), 1, stream)
            })?;
            // SAFETY: one byte into `read`, which outlives the copy, as above.
            self.named("cuMemcpyDtoHAsync_v2", || unsafe {
                (self.cuMemcpyDtoHAsync_v2)((&raw mut read).cast(), address, 1, stream)
            })
        })();
        // Waited for whatever failed: the copies may still be running into `written` and `read`.
        // SAFETY: `stream` is live.
        let synchronized = self.named("cuStreamSynchronize", || unsafe { (self.cuStreamSynchronize)(stream) });
        let freed = match stream_ordered {
            // SAFETY: `address` was allocated above on `stream`, and is freed once.
            Some((_, free)) => self.named("cuMemFreeAsync", || unsafe { free(address, stream) }),
            // SAFETY: `address` was allocated above, and is freed once.
            None => self.named("cuMemFree_v2", || unsafe { (self.cuMemFree_v2)(address) }),
        };
        used.and(synchronized).and(freed)?;
        if read != written {
            return Err(FailedCall {
                call: "cuMemcpyDtoHAsync_v2",
                error: CudaError::bad_answer(format!(
                    "cuMemcpyDtoHAsync_v2 read back {read} from a byte just written as {written}"
                )),
            });
        }
        Ok(())
    }

    /// A raw call made as `call` ([`entering`] it first), its result checked and, on failure,
    /// named.
    fn named(&self, call: &'static str, raw: impl FnOnce() -> c_int) -> Result<(), FailedCall> {
        entering(call);
        self.check(raw()).map_err(FailedCall::of(call))
    }

    /// `(free, total)` bytes on the device of `ordinal`, read through its primary context,
    /// retained for the call; `Ok(None)` when the driver lacks `cuMemGetInfo_v2`.
    pub(crate) fn device_memory(&self, ordinal: i32) -> Result<Option<(u64, u64)>, FailedCall> {
        let handle = self.device(ordinal).map_err(FailedCall::of("cuDeviceGet"))?;
        let context = self
            .retain_primary_context(handle)
            .map_err(FailedCall::of("cuDevicePrimaryCtxRetain"))?;
        let memory = self
            .set_current_context(context)
            .map_err(FailedCall::of("cuCtxSetCurrent"))
            .and_then(|()| {
                self.memory_info()
                    .transpose()
                    .map_err(FailedCall::of("cuMemGetInfo_v2"))
            });
        let _ = self.release_primary_context(handle);
        memory
    }

    /// `cuMemGetInfo_v2` for the current context: `(free, total)` bytes, if the driver has it.
    pub(crate) fn memory_info(&self) -> Option<Result<(u64, u64), CudaError>> {
        entering("cuMemGetInfo_v2");
        let call = self.cuMemGetInfo_v2?;
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: valid out-pointers of size_t.
        let result = self.check(unsafe { call(&mut free, &mut total) }).and_then(|()| {
            // More free than there is: a measurement of what is in use would read nothing.
            if free > total {
                return Err(CudaError::bad_answer(format!(
                    "cuMemGetInfo_v2 gave {free} bytes free of {total}, more than there is"
                )));
            }
            Ok((free as u64, total as u64))
        });
        Some(result)
    }
}

/// A driver call that failed, named: several calls stand behind one question to the driver, and
/// the error alone does not say which of them failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailedCall {
    /// The call, e.g. `cuDevicePrimaryCtxRetain`.
    pub call: &'static str,
    /// What it returned.
    pub error: CudaError,
}

impl FailedCall {
    /// For `map_err`: `error` as returned by `call`.
    pub(crate) fn of(call: &'static str) -> impl Fn(CudaError) -> FailedCall {
        move |error| FailedCall { call, error }
    }
}

impl std::fmt::Display for FailedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A call that succeeded with an impossible answer: its text names the call already.
        if self.error.code == 0 {
            write!(f, "{}", self.error)
        } else {
            write!(f, "{} failed: {}", self.call, self.error)
        }
    }
}

fn c_buffer_to_string(buffer: &[c_char]) -> String {
    let bytes: Vec<u8> = buffer.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `GPU-` followed by the 16 bytes as 8-4-4-4-12 hex digits, as nvidia-smi and
/// CUDA_VISIBLE_DEVICES write device UUIDs.
pub(crate) fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_as_nvidia_smi_does() {
        let bytes = [
            0x5f, 0x0c, 0x2a, 0x9d, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
        ];
        assert_eq!(format_uuid(&bytes), "GPU-5f0c2a9d-1122-3344-5566-778899aabbcc");
    }

    #[test]
    fn c_buffers_stop_at_nul() {
        let buffer = [b'T' as c_char, b'4' as c_char, 0, b'x' as c_char];
        assert_eq!(c_buffer_to_string(&buffer), "T4");
        // A name that fills the buffer without a NUL, in bytes that are not UTF-8, ends with it.
        let full = [0xff_u8 as c_char, b'H' as c_char, b'1' as c_char];
        assert_eq!(c_buffer_to_string(&full), "\u{fffd}H1");
    }
}
