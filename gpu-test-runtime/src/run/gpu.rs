//! The handle a test body receives: the devices leased to it, each with a cudarc context and
//! stream, and GPU timing with CUDA events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cudarc::driver::{CudaContext, CudaStream};

use super::lease::Lease;
use super::timing::{Sample, Timing, summarise};
use crate::cuda::calls::{Attribute, FailedCall};
use crate::cuda::error::CudaError;
use crate::cuda::event::Event;
use crate::cuda::sys::{CuDevice, CuHandle, DriverSys};
use crate::probe::{DeviceInfo, Probe};
use crate::util::format::panic_message;

/// The GPUs a test body may use.
///
/// A test that asked for `devices = N` gets `N` devices, each meeting the test's per-device
/// requirements and leased to it for the body's duration. Use [`Gpu::context`] and
/// [`Gpu::stream`] for the first device, or [`Gpu::devices`].
///
/// ```no_run
/// use gpu_test_runtime::{gpu_test, Gpu};
///
/// #[gpu_test]
/// fn copies_to_the_device(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
///     let copied = gpu.time("copy", |stream| stream.clone_htod(&[1.0f32, 2.0, 3.0]))?;
///     println!("the copy took {:?} of GPU time", copied.elapsed);
///     assert_eq!(gpu.stream().clone_dtoh(&copied.value?)?, [1.0, 2.0, 3.0]);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Gpu {
    devices: Vec<GpuDevice>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

/// One device given to a test: what the probe found out about it, a context and a stream on it.
#[derive(Debug)]
pub struct GpuDevice {
    info: DeviceInfo,
    context: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    sys: &'static DriverSys,
    /// Whether the device has stream-ordered memory pools (cudarc then allocates from them), as
    /// read once when its context was set up.
    memory_pools: bool,
    samples: Arc<Mutex<Vec<Sample>>>,
    lease: Option<Lease>,
}

/// A timed region's result: what the work returned, and the GPU time it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed<R> {
    /// What the work returned.
    pub value: R,
    /// The GPU time between the events recorded before and after the work, on the stream.
    pub elapsed: Duration,
}

impl GpuDevice {
    /// The device's name, compute capability, memory, UUID, PCI bus id.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device's primary context, shared with any other cudarc code in the process.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.context
    }

    /// The stream [`GpuDevice::time`] records its events on: the context's default stream.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Which of the device's `GPU_TEST_TESTS_PER_DEVICE` lease slots the test holds.
    pub fn lease_slot(&self) -> Option<u32> {
        self.lease.as_ref().map(|lease| lease.slot)
    }

    /// Runs `work` with this device's stream and measures the GPU time of what it launched there,
    /// with CUDA events recorded on the stream before and after. Regions with the same label are
    /// aggregated (count, total, min, median, max) and printed after the test.
    ///
    /// Launch the work on the stream passed in: work on other streams is not measured. The call
    /// waits for the stream to reach the second event.
    pub fn time<R>(
        &self,
        label: &str,
        work: impl FnOnce(&Arc<CudaStream>) -> R,
    ) -> Result<Timed<R>, CudaError> {
        let (value, elapsed) = self.between_events(work)?;
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Sample {
                label: label.to_string(),
                device: self.info.label(),
                elapsed,
            });
        Ok(Timed { value, elapsed })
    }

    /// Runs `work` with this device's stream between two CUDA events recorded on it, and returns
    /// what it returned with the GPU time between the events.
    fn between_events<R>(&self, work: impl FnOnce(&Arc<CudaStream>) -> R) -> Result<(R, Duration), CudaError> {
        let sys = self.sys;
        let context = self.context.cu_ctx() as CuHandle;
        let stream = self.stream.cu_stream() as CuHandle;
        sys.set_current_context(context)?;
        let start = Event::new(sys)?;
        let end = Event::new(sys)?;
        start.record(stream)?;
        let value = work(&self.stream);
        // The work may have made another context current on this thread.
        sys.set_current_context(context)?;
        end.record(stream)?;
        let ms = end.elapsed_since(&start)?;
        Ok((value, Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1000.0)))
    }

    /// Does once what a body's first GPU work makes the driver set up and keep (the memory
    /// pool's first block, what a memset and copies each way use, timing events), so that the
    /// leak check's measurement before the body already counts it.
    ///
    /// Through gpu-test's own driver calls, as cudarc would make them for a body (the same
    /// calls, the same choice of stream-ordered allocation): an error code cudarc does not know
    /// is undefined behaviour in cudarc, and here is an error naming the call.
    pub(crate) fn warm_up(&self) -> Result<(), String> {
        self.sys
            .set_current_context(self.context.cu_ctx() as CuHandle)
            .map_err(|error| FailedCall::of("cuCtxSetCurrent")(error).to_string())?;
        // The byte first, on its own: a sticky error it meets would fail the timing events too,
        // whose error would not say which call met it.
        self.sys
            .byte_round_trip(self.stream.cu_stream() as CuHandle, self.memory_pools)
            .map_err(|failed| failed.to_string())?;
        self.between_events(|_| ()).map(drop).map_err(|error| error.to_string())
    }

    /// The device memory in use, in bytes, device-wide, once what the stream-ordered pool keeps
    /// for reuse is released; call it with the context's work done. `None` when the driver cannot
    /// tell (no `cuMemGetInfo_v2`).
    pub(crate) fn memory_in_use(&self) -> Result<Option<u64>, FailedCall> {
        self.sys
            .set_current_context(self.context.cu_ctx() as CuHandle)
            .map_err(FailedCall::of("cuCtxSetCurrent"))?;
        if self.memory_pools {
            self.sys.trim_default_pool(self.context.cu_device())?;
        }
        Ok(match self.sys.memory_info() {
            Some(info) => {
                let (free, total) = info.map_err(FailedCall::of("cuMemGetInfo_v2"))?;
                Some(total.saturating_sub(free))
            }
            None => None,
        })
    }

    /// Waits for the context's work and returns the error it raised, if any (a fault in an
    /// earlier kernel surfaces here), through gpu-test's own driver call.
    pub(crate) fn synchronize(&self) -> Result<(), CudaError> {
        self.sys.set_current_context(self.context.cu_ctx() as CuHandle)?;
        self.sys.synchronize_context()
    }

    /// Lets go of the device: its context ([`let_go`]), then its lease; the error says what
    /// went wrong, after the device's name.
    fn close(self) -> Result<(), String> {
        let GpuDevice {
            info,
            context,
            stream,
            sys,
            lease,
            ..
        } = self;
        // The default stream owns no driver object, but holds a reference to the context.
        drop(stream);
        let let_go = let_go(sys, context);
        // Only once the context is gone may the next test have the device.
        drop(lease);
        let_go.map_err(|left| left.describe(&info.label()))
    }
}

/// What letting go of a context found wrong.
enum Left {
    /// cudarc had recorded this error from a drop: freeing memory, destroying a stream or an
    /// event the body dropped, which returns no error to anyone.
    Recorded(CudaError),
    /// The release failed.
    Unreleased(FailedCall),
}

impl Left {
    /// What went wrong on the device `label` names.
    fn describe(&self, label: &str) -> String {
        match self {
            Left::Recorded(error) => format!(
                "left a CUDA error on {label} that no call of the body returned (cudarc recorded it as it freed or \
                 destroyed an object the body dropped: memory, a stream, an event, a module): {error}"
            ),
            Left::Unreleased(failed) => format!("could not release its CUDA context on {label}: {failed}"),
        }
    }
}

/// Lets go of cudarc's `context`: the error cudarc recorded from a drop, if any, and the primary
/// context's release.
///
/// cudarc's context releases itself as it drops, through bindings for which a code they do not
/// know is undefined behaviour, and keeps any error in the value being dropped, where no one
/// reads it. So where this is the last reference, the context is taken out of its `Arc`, its
/// recorded error read, the context released through gpu-test's own call, and cudarc's value
/// forgotten: in cudarc 0.19 it is plain data about a primary context (`CudaContext::new`), so
/// nothing leaks; check that again when cudarc's version changes. A reference kept elsewhere
/// (by a body, in a static or on a thread) is left to release it, through cudarc, when it drops;
/// the error recorded so far is read all the same.
fn let_go(sys: &DriverSys, context: Arc<CudaContext>) -> Result<(), Left> {
    // Read also where the body keeps a reference (a module cached in a static): the error is the
    // test's, and would otherwise go to a later test's first call.
    // The code cudarc stores is one its bindings returned as a value of their enum.
    let recorded = context
        .check_err()
        .map_err(|error| Left::Recorded(CudaError::from_code(error.0 as i32)));
    let Some(context) = Arc::into_inner(context) else {
        return recorded;
    };
    debug_assert!(context.is_primary());
    let device = context.cu_device();
    std::mem::forget(context);
    let released = sys
        .release_primary_context(device)
        .map_err(|error| Left::Unreleased(FailedCall::of("cuDevicePrimaryCtxRelease_v2")(error)));
    recorded.and(released)
}

impl Gpu {
    /// Opens a context and stream on each leased device; the regions the body times go to
    /// `samples`, which the caller may read even if the body never returns.
    pub(crate) fn open(
        probe: &'static Probe,
        leases: Vec<Lease>,
        samples: Arc<Mutex<Vec<Sample>>>,
    ) -> Result<Gpu, String> {
        let sys = probe
            .driver
            .ready_sys()
            .ok_or_else(|| "the CUDA driver is not initialised".to_string())?;
        // Devices opened before one that fails are closed as the Gpu drops.
        let mut gpu = Gpu {
            devices: Vec::with_capacity(leases.len()),
            samples,
        };
        for lease in leases {
            let info = lease.device.clone();
            let (context, memory_pools) = open_context(sys, &info)?;
            let stream = context.default_stream();
            gpu.devices.push(GpuDevice {
                info,
                context,
                stream,
                sys,
                memory_pools,
                samples: gpu.samples.clone(),
                lease: Some(lease),
            });
        }
        Ok(gpu)
    }

    /// Every device given to the test, in the order they were leased.
    pub fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    /// The first device.
    pub fn device(&self) -> &GpuDevice {
        &self.devices[0]
    }

    /// The first device's context.
    pub fn context(&self) -> &Arc<CudaContext> {
        self.device().context()
    }

    /// The first device's stream.
    pub fn stream(&self) -> &Arc<CudaStream> {
        self.device().stream()
    }

    /// What the probe found out about the first device.
    pub fn info(&self) -> &DeviceInfo {
        self.device().info()
    }

    /// [`GpuDevice::time`] on the first device.
    pub fn time<R>(
        &self,
        label: &str,
        work: impl FnOnce(&Arc<CudaStream>) -> R,
    ) -> Result<Timed<R>, CudaError> {
        self.device().time(label, work)
    }

    /// The timed regions so far, aggregated per label and device.
    pub fn timings(&self) -> Vec<Timing> {
        summarise(&self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Lets go of each device's context and lease; the error is the first device's that went
    /// wrong: an error cudarc recorded from a drop, or a release that failed.
    pub(crate) fn close(mut self) -> Result<(), String> {
        close_all(std::mem::take(&mut self.devices))
    }
}

/// Where a `Gpu` is not closed (a device after the first could not be opened), its devices are
/// let go of all the same, the failure that stopped it being the one to report.
impl Drop for Gpu {
    fn drop(&mut self) {
        let _ = close_all(std::mem::take(&mut self.devices));
    }
}

fn close_all(devices: Vec<GpuDevice>) -> Result<(), String> {
    let mut first_error = None;
    for device in devices {
        if let Err(message) = device.close() {
            first_error.get_or_insert(message);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Creates the cudarc context for `info`. cudarc's `CudaContext::new` calls cuInit, cuDeviceGet,
/// cuDevicePrimaryCtxRetain, cuDeviceGetAttribute (memory pools), cuCtxGetCurrent and
/// cuCtxSetCurrent, and holds each result as an enum for which a code its bindings do not know is
/// undefined behaviour. So gpu-test makes each of those calls first through its own pointers,
/// where every code is mapped, and asks cudarc only once the driver has answered each with
/// success.
/// Also whether the device has stream-ordered memory pools, which the setup asks.
fn open_context(sys: &DriverSys, info: &DeviceInfo) -> Result<(Arc<CudaContext>, bool), String> {
    let failed =
        |what: &str, error: &dyn std::fmt::Display| format!("could not {what} on {}: {error}", info.label());
    let handle = sys
        .device(info.ordinal as i32)
        .map_err(|e| failed("get the device", &e))?;
    let context = sys
        .retain_primary_context(handle)
        .map_err(|e| failed("create a CUDA context", &e))?;
    let checked = check_context_setup(sys, handle, context).map_err(|e| failed("set up a CUDA context", &e));
    let opened = match checked {
        // cudarc panics when it cannot load libcuda; the probe loaded it by the same names, but a
        // panic here must still become a test failure with a message, not an abort.
        Ok(memory_pools) => match std::panic::catch_unwind(|| CudaContext::new(info.ordinal)) {
            Ok(Ok(context)) => Ok((context, memory_pools)),
            Ok(Err(error)) => Err(failed(
                "create a CUDA context through cudarc",
                &format!("{error:?}"),
            )),
            Err(panic) => Err(failed(
                "create a CUDA context through cudarc",
                &panic_message(&*panic),
            )),
        },
        Err(message) => Err(message),
    };
    let released = sys
        .release_primary_context(handle)
        .map_err(FailedCall::of("cuDevicePrimaryCtxRelease_v2"));
    let (context, memory_pools) = opened?;
    if let Err(error) = released {
        let _ = let_go(sys, context);
        return Err(failed("release gpu-test's own reference to the context", &error));
    }
    Ok((context, memory_pools))
}

/// The driver calls of cudarc's context setup that gpu-test has not already made, in its order;
/// whether the device has stream-ordered memory pools, as cudarc asks.
fn check_context_setup(sys: &DriverSys, device: CuDevice, context: CuHandle) -> Result<bool, FailedCall> {
    sys.init().map_err(FailedCall::of("cuInit"))?;
    let pools = sys
        .attribute(device, Attribute::MemoryPoolsSupported)
        .map_err(FailedCall::of("cuDeviceGetAttribute"))?;
    sys.current_context().map_err(FailedCall::of("cuCtxGetCurrent"))?;
    sys.set_current_context(context)
        .map_err(FailedCall::of("cuCtxSetCurrent"))?;
    Ok(pools > 0)
}
