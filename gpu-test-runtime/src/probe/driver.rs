//! Finding libcuda, resolving its entry points, asking its CUDA version and initialising it, then
//! describing each device.

use std::path::PathBuf;

use super::LoadedLibrary;
use crate::cuda::calls::Attribute;
use crate::cuda::error::CudaError;
use crate::cuda::guard::{Calls, Hung};
use crate::cuda::library::{self, Library, LoadAttempt, Search};
use crate::cuda::sys::DriverSys;
use crate::cuda::version::Version;
use crate::util::format::escape_control;

/// The names a Linux driver installs, its SONAME first. cudarc asks for `libcuda.so` first, so
/// when both load the probe uses that one, as a test body would.
pub(super) const DRIVER_NAMES: [&str; 2] = ["libcuda.so.1", "libcuda.so"];

/// What is known of the CUDA driver library.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) struct Driver {
    /// The library that loaded, or every attempt when none did.
    pub library: Result<LoadedLibrary, Vec<LoadAttempt>>,
    /// When none loaded: driver names that are symbolic links to files that do not exist, with
    /// their targets (the loader reports them as absent).
    pub dangling: Vec<(PathBuf, PathBuf)>,
    /// When `libcuda.so` and `libcuda.so.1` are different files, the one tests will not use.
    pub shadowed: Option<LoadedLibrary>,
    /// Entry points gpu-test needs that the library lacks.
    pub missing_symbols: Vec<&'static str>,
    /// The newest CUDA release the driver supports (`cuDriverGetVersion`).
    pub cuda_version: Option<Version>,
    /// Why `cuDriverGetVersion` gave no version, when it did not.
    pub version_error: Option<String>,
    /// The result of `cuInit(0)`; `None` when it could not be called.
    pub init: Option<Result<(), CudaError>>,
    /// The call that did not return within `GPU_TEST_PROBE_TIMEOUT`, if one did not: nothing
    /// calls into this driver again in this process.
    pub hung: Option<Hung>,
    pub(crate) sys: Option<DriverSys>,
}

impl Driver {
    /// Whether the driver loaded, has every entry point and initialised.
    pub(crate) fn is_ready(&self) -> bool {
        self.sys.is_some() && matches!(self.init, Some(Ok(())))
    }

    /// The driver's entry points, once it is ready.
    pub(crate) fn ready_sys(&self) -> Option<&DriverSys> {
        self.sys.as_ref().filter(|_| self.is_ready())
    }
}

impl Driver {
    /// A driver that did not answer in time: everything else about it is unknown.
    pub(crate) fn hung(hung: Hung) -> Driver {
        Driver {
            library: Err(Vec::new()),
            dangling: Vec::new(),
            shadowed: None,
            missing_symbols: Vec::new(),
            cuda_version: None,
            version_error: None,
            init: None,
            hung: Some(hung),
            sys: None,
        }
    }
}

/// A driver library that loaded, not yet called.
#[derive(Debug)]
pub(super) struct Loaded {
    library: Library,
    shadowed: Option<LoadedLibrary>,
}

/// Loads the driver library: `libcuda.so.1` and `libcuda.so`, and when `fallback` allows it (a
/// kernel module shows a driver exists) cudarc's other candidate names. `Err` is the whole
/// answer when none loads.
pub(super) fn load_driver(
    search: &Search,
    fallback: bool,
    link_dirs: &[PathBuf],
    calls: &Calls,
) -> Result<Loaded, Box<Driver>> {
    let mut tried = Vec::new();
    let mut load = |name: &str| {
        calls.enter("dlopen", name);
        match library::load_first(&[name.to_string()], search) {
            Ok(library) => Some(library),
            Err(attempts) => {
                tried.extend(attempts);
                None
            }
        }
    };
    let soname = load(DRIVER_NAMES[0]);
    let dev_name = load(DRIVER_NAMES[1]);
    let (library, shadowed) = match (dev_name, soname) {
        (Some(dev), Some(so)) => {
            let shadowed = (!dev.same_object(&so)).then(|| describe(&so));
            (Some(dev), shadowed)
        }
        (dev, so) => (dev.or(so), None),
    };
    let library = library.or_else(|| {
        if !fallback {
            return None;
        }
        library::cudarc_names("cuda")
            .into_iter()
            .filter(|name| !DRIVER_NAMES.contains(&name.as_str()))
            .find_map(|name| load(&name))
    });
    match library {
        Some(library) => Ok(Loaded { library, shadowed }),
        None => Err(Box::new(Driver {
            library: Err(tried),
            dangling: dangling_links(link_dirs),
            shadowed: None,
            missing_symbols: Vec::new(),
            cuda_version: None,
            version_error: None,
            init: None,
            hung: None,
            sys: None,
        })),
    }
}

/// Resolves the loaded driver's entry points, asks its CUDA version and initialises it.
pub(super) fn probe_driver(loaded: Loaded, calls: &Calls) -> Driver {
    let Loaded { library, shadowed } = loaded;
    let loaded = describe(&library);
    calls.set_library(&loaded.display());
    // Timing needs one of the two; which one depends on the driver's age.
    let sys = DriverSys::resolve(&library).and_then(|sys| {
        if sys.cuEventElapsedTime.is_none() && sys.cuEventElapsedTime_v2.is_none() {
            Err(vec!["cuEventElapsedTime"])
        } else {
            Ok(sys)
        }
    });
    let sys = match sys {
        Ok(sys) => sys,
        Err(missing_symbols) => {
            return Driver {
                library: Ok(loaded),
                dangling: Vec::new(),
                shadowed,
                missing_symbols,
                cuda_version: None,
                version_error: None,
                init: None,
                hung: None,
                sys: None,
            };
        }
    };
    let (cuda_version, version_error) = match sys.driver_version() {
        Ok(encoded) => match Version::from_cuda_int(encoded) {
            Some(version) => (Some(version), None),
            None => (
                None,
                Some(format!(
                    "cuDriverGetVersion returned {encoded}, which is not a version"
                )),
            ),
        },
        Err(error) => (None, Some(format!("cuDriverGetVersion failed: {error}"))),
    };
    let init = Some(sys.init());
    Driver {
        library: Ok(loaded),
        dangling: Vec::new(),
        shadowed,
        missing_symbols: Vec::new(),
        cuda_version,
        version_error,
        init,
        hung: None,
        sys: Some(sys),
    }
}

/// The driver names in `dirs` that are symbolic links to nothing, with where they point.
fn dangling_links(dirs: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    for dir in dirs {
        for name in DRIVER_NAMES {
            let link = dir.join(name);
            let is_link = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
            if is_link
                && std::fs::metadata(&link).is_err()
                && let Ok(target) = std::fs::read_link(&link)
            {
                found.push((link, target));
            }
        }
    }
    found
}

fn describe(library: &Library) -> LoadedLibrary {
    LoadedLibrary {
        name: library.name.clone(),
        path: library.path_of_symbol("cuInit"),
    }
}

/// A CUDA device as the driver describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The CUDA ordinal: its index among the visible devices (after `CUDA_VISIBLE_DEVICES`).
    pub ordinal: usize,
    /// The marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// The compute capability, e.g. 9.0 (`sm_90`).
    pub compute_capability: Version,
    /// Total device memory in bytes.
    pub total_memory: u64,
    /// The number of streaming multiprocessors, if the driver answered.
    pub multiprocessors: Option<u32>,
    /// The UUID as nvidia-smi prints it (`GPU-...`), if the driver answered.
    pub uuid: Option<String>,
    /// The PCI bus id (`0000:65:00.0`), if the driver answered.
    pub pci_bus_id: Option<String>,
    /// The compute mode, if the driver answered.
    pub(crate) compute_mode: Option<ComputeMode>,
}

impl DeviceInfo {
    /// `device 0 NVIDIA T4`, the way reasons name a device.
    pub fn label(&self) -> String {
        format!("device {} {}", self.ordinal, self.name)
    }

    /// How `nvidia-smi -i` names this GPU, for a command in a hint: its `GPU-` UUID, else its PCI
    /// bus id (a MIG instance's UUID names no GPU there), else a placeholder that says where to
    /// find one. Never the CUDA ordinal: nvidia-smi numbers every GPU, in PCI order, where CUDA
    /// numbers those `CUDA_VISIBLE_DEVICES` leaves, fastest first by default.
    pub(crate) fn nvidia_smi_id(&self) -> String {
        match (&self.uuid, &self.pci_bus_id) {
            (Some(uuid), _) if uuid.starts_with("GPU-") => uuid.clone(),
            (_, Some(bus)) => bus.clone(),
            _ => "<its UUID in `nvidia-smi -L`>".to_string(),
        }
    }

    /// A stable key for this physical device (or MIG instance): the UUID, else the PCI bus id,
    /// else the ordinal. The UUID's `GPU-` or `MIG-` is left out: it says only how
    /// `CUDA_VISIBLE_DEVICES` chose a MIG instance, and runs that chose one differently must
    /// still share its leases.
    pub fn key(&self) -> String {
        match &self.uuid {
            Some(uuid) => uuid
                .strip_prefix("GPU-")
                .or_else(|| uuid.strip_prefix("MIG-"))
                .unwrap_or(uuid)
                .to_string(),
            None => self
                .pci_bus_id
                .clone()
                .unwrap_or_else(|| format!("ordinal-{}", self.ordinal)),
        }
    }
}

/// A device's compute mode (`nvidia-smi -c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ComputeMode {
    /// Any number of processes may use the device.
    Default,
    /// One thread at a time (removed from current drivers).
    ExclusiveThread,
    /// No process may use the device.
    Prohibited,
    /// One process at a time.
    ExclusiveProcess,
    /// A value this version of gpu-test does not know.
    Other(i32),
}

impl ComputeMode {
    fn from_attribute(value: i32) -> ComputeMode {
        match value {
            0 => ComputeMode::Default,
            1 => ComputeMode::ExclusiveThread,
            2 => ComputeMode::Prohibited,
            3 => ComputeMode::ExclusiveProcess,
            other => ComputeMode::Other(other),
        }
    }

    /// The name nvidia-smi uses.
    pub(crate) fn name(self) -> String {
        match self {
            ComputeMode::Default => "Default".into(),
            ComputeMode::ExclusiveThread => "Exclusive_Thread".into(),
            ComputeMode::Prohibited => "Prohibited".into(),
            ComputeMode::ExclusiveProcess => "Exclusive_Process".into(),
            ComputeMode::Other(value) => format!("unknown ({value})"),
        }
    }
}

/// A device the driver counted but could not describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceError {
    /// The ordinal.
    pub ordinal: usize,
    /// The driver call that failed.
    pub call: &'static str,
    /// Its error.
    pub error: CudaError,
}

impl DeviceError {
    /// Whether the devices could not even be counted (its ordinal then names no device).
    pub(crate) fn is_count(&self) -> bool {
        self.call == "cuDeviceGetCount"
    }
}

/// Devices that could not be read, with runs of the same failure on consecutive ordinals said
/// once: `devices 1 to 63 could not be read: cuDeviceGet failed: ...`; devices that could not
/// be counted, so.
pub(crate) fn describe_errors(errors: &[DeviceError]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < errors.len() {
        let first = &errors[at];
        if first.is_count() {
            lines.push(format!("the devices could not be counted: cuDeviceGetCount failed: {}", first.error));
            at += 1;
            continue;
        }
        let mut end = at;
        while end + 1 < errors.len()
            && errors[end + 1].ordinal == errors[end].ordinal + 1
            && errors[end + 1].call == first.call
            && errors[end + 1].error == first.error
        {
            end += 1;
        }
        let devices = if end == at {
            format!("device {}", first.ordinal)
        } else {
            format!("devices {} to {}", first.ordinal, errors[end].ordinal)
        };
        lines.push(format!(
            "{devices} could not be read: {} failed: {}",
            first.call, first.error
        ));
        at = end + 1;
    }
    lines
}

/// The most devices gpu-test reads: four times the GPUs of the largest NVIDIA server. A driver
/// that counts more is not answering sensibly, and reading each would take hours.
pub(crate) const MAX_DEVICES: usize = 64;

/// Counts and describes the devices of an initialised driver; a count past [`MAX_DEVICES`] is
/// read as that many, and returned as reported.
pub(super) fn probe_devices(sys: &DriverSys) -> (Vec<DeviceInfo>, Vec<DeviceError>, Option<i32>) {
    let mut devices = Vec::new();
    let mut errors = Vec::new();
    let (count, capped) = match sys.device_count() {
        Ok(count) => match usize::try_from(count) {
            Ok(n) if n > MAX_DEVICES => (MAX_DEVICES, Some(count)),
            Ok(n) => (n, None),
            Err(_) => (0, Some(count)),
        },
        Err(error) => {
            errors.push(DeviceError {
                ordinal: 0,
                call: "cuDeviceGetCount",
                error,
            });
            return (devices, errors, None);
        }
    };
    for ordinal in 0..count {
        match describe_device(sys, ordinal) {
            Ok(device) => devices.push(device),
            Err((call, error)) => errors.push(DeviceError { ordinal, call, error }),
        }
    }
    (devices, errors, capped)
}

fn describe_device(sys: &DriverSys, ordinal: usize) -> Result<DeviceInfo, (&'static str, CudaError)> {
    let handle = sys.device(ordinal as i32).map_err(|e| ("cuDeviceGet", e))?;
    let name = escape_control(&sys.device_name(handle).map_err(|e| ("cuDeviceGetName", e))?);
    let attribute = |attribute| {
        sys.attribute(handle, attribute)
            .map_err(|e| ("cuDeviceGetAttribute", e))
    };
    let major = attribute(Attribute::ComputeCapabilityMajor)?;
    let minor = attribute(Attribute::ComputeCapabilityMinor)?;
    let (Ok(major @ 1..), Ok(minor)) = (u32::try_from(major), u32::try_from(minor)) else {
        return Err((
            "cuDeviceGetAttribute",
            CudaError::bad_answer(format!(
                "the driver gave the compute capability as {major}.{minor}, which no device has"
            )),
        ));
    };
    let total_memory = sys.total_memory(handle).map_err(|e| ("cuDeviceTotalMem_v2", e))?;
    Ok(DeviceInfo {
        ordinal,
        name,
        compute_capability: Version::new(major, minor),
        total_memory,
        multiprocessors: attribute(Attribute::MultiprocessorCount)
            .ok()
            .and_then(|n| u32::try_from(n).ok()),
        uuid: sys.uuid(handle).and_then(Result::ok),
        pci_bus_id: sys
            .pci_bus_id(handle)
            .and_then(Result::ok)
            .map(|id| escape_control(&id)),
        compute_mode: attribute(Attribute::ComputeMode)
            .ok()
            .map(ComputeMode::from_attribute),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(ordinal: usize, call: &'static str, code: i32) -> DeviceError {
        DeviceError {
            ordinal,
            call,
            error: CudaError::from_code(code),
        }
    }

    #[test]
    fn device_errors_are_said_once_per_run_of_devices_and_a_count_as_a_count() {
        let errors = [
            failed(1, "cuDeviceGet", 101),
            failed(2, "cuDeviceGet", 101),
            failed(3, "cuDeviceGetName", 999),
        ];
        assert_eq!(
            describe_errors(&errors),
            [
                "devices 1 to 2 could not be read: cuDeviceGet failed: CUDA_ERROR_INVALID_DEVICE (101) \"invalid device ordinal\"",
                "device 3 could not be read: cuDeviceGetName failed: CUDA_ERROR_UNKNOWN (999) \"unknown error\"",
            ]
        );
        let count = failed(0, "cuDeviceGetCount", 999);
        assert!(count.is_count() && !errors[0].is_count());
        assert_eq!(
            describe_errors(&[count]),
            ["the devices could not be counted: cuDeviceGetCount failed: CUDA_ERROR_UNKNOWN (999) \"unknown error\""]
        );
    }
}
