//! The handle a test body receives: the devices it may use, each with a cudarc context.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};

use crate::probe::{DeviceInfo, Probe};

/// The GPUs a test body may use.
///
/// A test that asked for `devices = N` gets exactly `N` devices, each meeting the test's
/// per-device requirements. Use [`Gpu::context`] for the first one, or [`Gpu::devices`].
///
/// ```no_run
/// use gpu_test_runtime::{gpu_test, Gpu};
///
/// #[gpu_test]
/// fn copies_to_the_device(gpu: &Gpu) -> Result<(), gpu_test_runtime::cudarc::driver::DriverError> {
///     let stream = gpu.stream();
///     let on_device = stream.clone_htod(&[1.0f32, 2.0, 3.0])?;
///     assert_eq!(stream.clone_dtoh(&on_device)?, [1.0, 2.0, 3.0]);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Gpu {
    devices: Vec<GpuDevice>,
}

/// One device given to a test: what the probe found out about it, and a context on it.
#[derive(Debug)]
pub struct GpuDevice {
    info: DeviceInfo,
    context: Arc<CudaContext>,
    stream: Arc<CudaStream>,
}

impl GpuDevice {
    /// The device's name, compute capability, memory and identifiers.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device's primary context, shared with any other cudarc code in the process.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.context
    }

    /// The context's default stream.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
}

impl Gpu {
    /// Opens a context on each of `ordinals`.
    pub(crate) fn open(probe: &Probe, ordinals: &[usize]) -> Result<Gpu, String> {
        let mut devices = Vec::with_capacity(ordinals.len());
        for &ordinal in ordinals {
            let Some(info) = probe.devices.iter().find(|d| d.ordinal == ordinal) else {
                return Err(format!("device {ordinal} is not among the probed devices"));
            };
            let context = open_context(probe, info)?;
            let stream = context.default_stream();
            devices.push(GpuDevice {
                info: info.clone(),
                context,
                stream,
            });
        }
        Ok(Gpu { devices })
    }

    /// Every device given to the test, in the order they were assigned.
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

    /// The first device's default stream.
    pub fn stream(&self) -> &Arc<CudaStream> {
        self.device().stream()
    }

    /// What the probe found out about the first device.
    pub fn info(&self) -> &DeviceInfo {
        self.device().info()
    }
}

/// Creates the cudarc context for `info`, having first retained the primary context through
/// gpu-test's own driver calls: a failure is then reported with its code mapped here, and cudarc
/// is only asked once the driver has shown it will answer with success.
fn open_context(probe: &Probe, info: &DeviceInfo) -> Result<Arc<CudaContext>, String> {
    let sys = probe
        .driver
        .ready_sys()
        .ok_or_else(|| "the CUDA driver is not initialised".to_string())?;
    let failed =
        |what: &str, error: &dyn std::fmt::Display| format!("could not {what} on {}: {error}", info.label());
    let handle = sys
        .device(info.ordinal as i32)
        .map_err(|e| failed("get the device", &e))?;
    sys.retain_primary_context(handle)
        .map_err(|e| failed("create a CUDA context", &e))?;
    // cudarc panics when it cannot load libcuda; the probe loaded it by the same names, but a
    // panic here must still become a test failure with a message, not an abort.
    let opened = std::panic::catch_unwind(|| CudaContext::new(info.ordinal));
    let released = sys.release_primary_context(handle);
    let context = match opened {
        Ok(Ok(context)) => context,
        Ok(Err(error)) => {
            return Err(failed(
                "create a CUDA context through cudarc",
                &format!("{error:?}"),
            ));
        }
        Err(panic) => {
            let message = crate::private::panic_message(&panic);
            return Err(failed("create a CUDA context through cudarc", &message));
        }
    };
    released.map_err(|e| failed("release the probe's context reference", &e))?;
    Ok(context)
}
