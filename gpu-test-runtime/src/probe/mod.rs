//! The probe: what this machine offers a GPU test, found once per process.
//!
//! It never panics and never calls into cudarc: the driver is loaded and called through gpu-test's
//! own function pointers, with every result mapped from a plain integer. Nothing is probed at
//! build time; a binary built on a CPU machine probes the machine it runs on.

mod driver;
mod environment;
mod system;
mod toolkit;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cuda::guard::{driver_hung, guarded, with_crash_line};
use crate::cuda::library::{LoadAttempt, Search};
use crate::cuda::version::Version;
use crate::util::files;
use crate::util::format::escape_control;

pub use driver::DeviceInfo;
pub(crate) use driver::{ComputeMode, DeviceError, Driver, MAX_DEVICES, describe_errors};
pub(crate) use environment::{Environment, RECORDED, VisibleDevices};
pub(crate) use system::{DeviceNode, KernelModule, Platform, WSL_LIB_DIR};
pub(crate) use toolkit::{Nvcc, Nvrtc, Obstacle, PassedOver, Toolkit, python_environment_of};

/// Where distributions install the driver's libraries, looked at for stale links when none loads.
const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/lib64",
];

/// A shared library that loaded: the name it was asked for by, and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedLibrary {
    /// The name (or path) given to the loader, e.g. `libcuda.so.1`.
    pub name: String,
    /// The file the loader mapped, when it could be found.
    pub path: Option<PathBuf>,
}

impl LoadedLibrary {
    /// The driver release its file is named for (`580.95.05` in `libcuda.so.580.95.05`).
    pub(crate) fn release_in_file_name(&self) -> Option<&str> {
        release_in_file_name(self.path.as_deref()?.file_name()?.to_str()?)
    }

    /// The file if known, else the name, as messages show it (controls escaped: a directory's
    /// name comes from the environment).
    pub fn display(&self) -> String {
        escape_control(&self.file_or_name())
    }

    /// The file if known, else the name, as it is: for the doctor's JSON, which escapes what it
    /// holds itself.
    pub(crate) fn file_or_name(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => self.name.clone(),
        }
    }
}

/// Everything gpu-test found out about this machine's CUDA setup: facts only. What they mean for
/// a test is decided by [`Requirements::check`](crate::Requirements::check).
#[derive(Debug)]
pub struct Probe {
    /// The CUDA driver library: where it was found, its CUDA version, the `cuInit` result.
    pub(crate) driver: Driver,
    /// The devices the driver reports, in CUDA ordinal order.
    pub(crate) devices: Vec<DeviceInfo>,
    /// Devices the driver counted but could not describe.
    pub(crate) device_errors: Vec<DeviceError>,
    /// What `cuDeviceGetCount` reported, when it was past belief and so not read whole.
    pub(crate) reported_device_count: Option<i32>,
    /// The NVIDIA kernel module, when loaded.
    pub(crate) kernel_module: Option<KernelModule>,
    /// The driver's release as NVML gives it, asked only where neither the kernel module nor the
    /// driver library's file name tells it.
    pub(crate) nvml_release: Option<String>,
    /// The CUDA-related environment variables.
    pub(crate) environment: Environment,
    /// The directory `/proc` and `/dev` are read under (`/` unless `GPU_TEST_SYSTEM_ROOT` is set).
    pub(crate) system_root: PathBuf,
    search: Search,
    toolkit: OnceLock<Toolkit>,
    nvcc: OnceLock<Option<Nvcc>>,
    device_nodes: OnceLock<Vec<DeviceNode>>,
    platform: OnceLock<Platform>,
    mig: OnceLock<Option<Vec<u32>>>,
    ld_so_conf: OnceLock<Vec<PathBuf>>,
}

/// Writes the UUID of each device that `CUDA_VISIBLE_DEVICES` selected as a MIG instance
/// (`MIG-<uuid>`, the entry at the device's ordinal) as nvidia-smi does, `MIG-...`: the driver
/// gives the instance's UUID without saying it is one. Leases are then per instance, as MIG
/// isolates them. (Without the variable, an instance the driver picks keeps the `GPU-` form.)
fn name_mig_instances(devices: &mut [DeviceInfo], visible: &VisibleDevices) {
    let VisibleDevices::Set { valid, .. } = visible else {
        return;
    };
    for device in devices.iter_mut() {
        let Some(entry) = valid.get(device.ordinal) else {
            continue;
        };
        if entry.starts_with("MIG-")
            && let Some(uuid) = &mut device.uuid
            && let Some(rest) = uuid.strip_prefix("GPU-")
        {
            *uuid = format!("MIG-{rest}");
        }
    }
}

/// `550.54.14` in `libcuda.so.550.54.14`: digits and at least one dot, not the `1` of the
/// `libcuda.so.1` link.
fn release_in_file_name(file: &str) -> Option<&str> {
    let release = file.strip_prefix("libcuda.so.")?;
    let parts: Vec<&str> = release.split('.').collect();
    // NVIDIA's releases have a major of three digits or more (390.157, 580.95.05): Jetson's
    // `libcuda.so.1.1` is a file, but not a release.
    (parts.len() >= 2
        && parts[0].len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then_some(release)
}

/// The release in the name of the driver library's file (`libcuda.so.550.54.14`), which the
/// driver installs under its release; not that of a forward-compatibility library (`compat/`),
/// whose release is its own, newer than the kernel module's that nvidia-smi shows.
fn library_release(driver: &Driver) -> Option<&str> {
    let library = driver.library.as_ref().ok()?;
    let path = library.path.as_deref()?;
    if path.ancestors().skip(1).any(|dir| dir.file_name().is_some_and(|name| name == "compat")) {
        return None;
    }
    library.release_in_file_name()
}

/// The probe of this process, computed on first use and then shared.
pub fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(Probe::detect)
}

impl Probe {
    /// Probes the machine now. Use [`probe()`] for the shared, cached result.
    pub fn detect() -> Probe {
        let environment = Environment::from_process();
        let override_root = crate::settings::system_root();
        let library_path: Vec<PathBuf> = environment.library_path_dirs().map(PathBuf::from).collect();
        let (search, link_dirs) = match &override_root {
            Some(_) => (Search::Only(library_path.clone()), library_path),
            None => {
                let mut dirs = library_path;
                dirs.extend(SYSTEM_LIBRARY_DIRS.iter().map(PathBuf::from));
                (Search::System, dirs)
            }
        };
        let system_root = override_root.unwrap_or_else(|| PathBuf::from("/"));
        let kernel_module = system::kernel_module(&system_root);
        let fallback = kernel_module.is_some();
        // Loading runs here (with the crash line in place): on a machine without a driver that
        // is all there is, and it costs no thread.
        let loaded = with_crash_line(|calls| driver::load_driver(&search, fallback, &link_dirs, calls));
        let release_known = kernel_module.as_ref().is_some_and(|m| m.release.is_some());
        let nvml_search = search.clone();
        let probed = match loaded {
            Err(driver) => Ok((*driver, (Vec::new(), Vec::new(), None), None)),
            // A wedged GPU can block the driver forever: the probe waits for it only so long.
            Ok(loaded) => guarded(crate::settings::probe_timeout(), move |calls| {
                let driver = driver::probe_driver(loaded, calls);
                let devices = match driver.ready_sys() {
                    Some(sys) => driver::probe_devices(sys),
                    None => (Vec::new(), Vec::new(), None),
                };
                // NVML only where nothing else tells the release (WSL2, some sandboxes): it is
                // the slowest thing the probe would do.
                let nvml = match driver.is_ready() && !release_known && library_release(&driver).is_none() {
                    true => crate::cuda::nvml::driver_version(&nvml_search, calls)
                        .and_then(|text| system::parse_release(&text)),
                    false => None,
                };
                (driver, devices, nvml)
            }),
        };
        let (driver, (mut devices, device_errors, reported_device_count), nvml_release) = match probed {
            Ok(probed) => probed,
            Err(hung) => (Driver::hung(hung), (Vec::new(), Vec::new(), None), None),
        };
        name_mig_instances(&mut devices, &environment.visible_devices());
        Probe {
            driver,
            devices,
            device_errors,
            reported_device_count,
            kernel_module,
            nvml_release,
            environment,
            system_root,
            search,
            toolkit: OnceLock::new(),
            nvcc: OnceLock::new(),
            device_nodes: OnceLock::new(),
            platform: OnceLock::new(),
            mig: OnceLock::new(),
            ld_so_conf: OnceLock::new(),
        }
    }

    /// The CUDA toolkit's NVRTC, probed on first call (tests that compile no kernels never pay
    /// for the search).
    pub fn toolkit(&self) -> &Toolkit {
        self.toolkit.get_or_init(|| {
            if driver_hung() {
                // A hang may hold the loader's own lock: loading anything more could wait on it.
                let tried = vec![LoadAttempt {
                    name: "libnvrtc".to_string(),
                    error: "not looked for: the CUDA driver did not answer, and loading another library \
                            could wait on it"
                        .to_string(),
                }];
                return Toolkit::on_loader_path(Nvrtc::NotFound { tried });
            }
            let nvrtc = toolkit::probe_nvrtc(&self.search);
            if !matches!(nvrtc, Nvrtc::NotFound { .. }) {
                return Toolkit::on_loader_path(nvrtc);
            }
            let env = &self.environment;
            let searched: Vec<PathBuf> = env.library_path_dirs().map(PathBuf::from).collect();
            // The lib64 of the toolkits the user named, searched first and preferred.
            let named: Vec<PathBuf> = [&env.cuda_home, &env.cuda_path]
                .into_iter()
                .flatten()
                .map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join("lib64"))
                .collect();
            let path_dirs: Vec<PathBuf> = env.path_dirs().into_iter().filter(|d| d.is_absolute()).collect();
            let elsewhere = toolkit::nvrtc_elsewhere(&self.system_root, &searched, &named, &path_dirs);
            let names = crate::cuda::library::cudarc_names("nvrtc");
            let loaded =
                toolkit::load_from_elsewhere(&elsewhere, &named, &names, self.driver.cuda_version, &self.search);
            Toolkit::from_elsewhere(nvrtc, elsewhere, loaded)
        })
    }

    /// `nvcc`, looked for on first call; running it takes tens of milliseconds, so only the
    /// doctor asks.
    pub fn nvcc(&self) -> Option<&Nvcc> {
        self.nvcc
            .get_or_init(|| {
                let env = &self.environment;
                toolkit::find_nvcc(
                    &env.path_dirs(),
                    &[env.cuda_home.as_deref(), env.cuda_path.as_deref()],
                    &self.system_root,
                )
            })
            .as_ref()
    }

    /// The `/dev/nvidia*` files and whether this process may use them, read on first call.
    pub fn device_nodes(&self) -> &[DeviceNode] {
        self.device_nodes
            .get_or_init(|| system::device_nodes(&self.system_root))
    }

    /// The file the loader would take for the bare library name `name`, looked for in
    /// `LD_LIBRARY_PATH` and the usual system directories, for messages that tell the user to
    /// inspect it; `name` itself when it is a path or no such file is found.
    pub(crate) fn locate_library(&self, name: &str) -> String {
        if name.contains('/') {
            return name.to_string();
        }
        let dirs = self
            .environment
            .library_path_dirs()
            .map(PathBuf::from)
            .chain(SYSTEM_LIBRARY_DIRS.iter().map(PathBuf::from));
        dirs.map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| name.to_string())
    }

    /// Whether `/etc/ld.so.conf` (or a file it includes) names `dir`, read when first asked: a
    /// library there that the loader did not find by name came after `ldconfig` last ran.
    pub(crate) fn ld_so_conf_lists(&self, dir: &Path) -> bool {
        self.ld_so_conf_dirs().iter().any(|listed| files::same_place(listed, dir))
    }

    /// The directories `/etc/ld.so.conf` names (with its includes), read on first call.
    pub(crate) fn ld_so_conf_dirs(&self) -> &[PathBuf] {
        self.ld_so_conf.get_or_init(|| system::ld_so_conf_dirs(&self.system_root))
    }

    /// The GPUs in MIG mode (nvidia-smi's indices), asked of nvidia-smi when first needed: by a
    /// test only to explain why the driver shows no device, by the doctor also to name GPUs that
    /// CUDA shows only as MIG instances. Empty when nvidia-smi cannot tell.
    pub(crate) fn gpus_in_mig_mode(&self) -> &[u32] {
        self.mig
            .get_or_init(|| system::gpus_in_mig_mode(crate::settings::probe_timeout()))
            .as_deref()
            .unwrap_or_default()
    }

    /// Whether this is a container or WSL2, read when first asked: only a missing driver needs
    /// it, so a machine whose driver works never reads it.
    pub(crate) fn platform(&self) -> &Platform {
        self.platform.get_or_init(|| system::platform(&self.system_root))
    }

    /// The devices the driver reports, in CUDA ordinal order (after `CUDA_VISIBLE_DEVICES`).
    pub fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    /// The newest CUDA release the driver supports (`cuDriverGetVersion`), when it answered.
    pub fn cuda_version(&self) -> Option<Version> {
        self.driver.cuda_version
    }

    /// Whether the driver loaded, has every entry point gpu-test needs, and initialised.
    pub fn driver_ready(&self) -> bool {
        self.driver.is_ready()
    }

    /// The devices the driver counted: those read, and those it could not describe.
    pub(crate) fn counted_devices(&self) -> usize {
        self.devices.len() + self.device_errors.iter().filter(|error| !error.is_count()).count()
    }

    /// The driver release, e.g. `550.54.14`, when known: the kernel module's, or where
    /// `/proc/driver/nvidia/version` gives none (some containers and sandboxes), the one in the
    /// name of the driver library's file (`libcuda.so.550.54.14`), which the driver installs
    /// under its release (not that of a forward-compatibility library, `compat/`, whose release
    /// is not the one `nvidia-smi` shows); else NVML's (WSL2, whose `libcuda.so.1` is a plain
    /// file, gives the Windows driver's).
    pub fn driver_release(&self) -> Option<&str> {
        if let Some(release) = self.kernel_module.as_ref().and_then(|m| m.release.as_deref()) {
            return Some(release);
        }
        library_release(&self.driver).or(self.nvml_release.as_deref())
    }

    /// A one-line summary: `driver 550.54.14 (CUDA 12.4), 2 devices: 0 NVIDIA H100 (sm_90), ...`.
    pub fn summary(&self) -> String {
        if let Some(hung) = &self.driver.hung {
            return format!(
                "the CUDA driver did not answer ({} did not return)",
                hung.call.unwrap_or("a call")
            );
        }
        let driver = match (&self.driver.library, self.driver.cuda_version) {
            (Err(_), _) => "no CUDA driver".to_string(),
            (Ok(_), Some(cuda)) => match self.driver_release() {
                Some(release) => format!("driver {release} (CUDA {cuda})"),
                None => format!("driver with CUDA {cuda}"),
            },
            (Ok(library), None) => format!("driver {} (version unknown)", library.display()),
        };
        let devices: Vec<String> = self
            .devices
            .iter()
            .map(|d| format!("{} {} ({})", d.ordinal, d.name, d.compute_capability.sm()))
            .collect();
        let summary = match (self.driver.init.as_ref(), devices.len()) {
            (Some(Err(error)), _) => return format!("{driver}, cuInit failed: {error}"),
            (_, 0) => format!("{driver}, no devices"),
            (_, n) if self.reported_device_count.is_some() => format!(
                "{driver}, {n} devices read of {} reported",
                self.reported_device_count.unwrap_or_default()
            ),
            (_, 1) => format!("{driver}, 1 device: {}", devices[0]),
            (_, n) => format!("{driver}, {n} devices: {}", devices.join(", ")),
        };
        // A device the driver counted but could not describe is no device the run may forget.
        let errors = driver::describe_errors(&self.device_errors);
        match errors.is_empty() {
            true => summary,
            false => format!("{summary}; {}", errors.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DeviceInfo, VisibleDevices, name_mig_instances, release_in_file_name};

    #[test]
    fn a_mig_instance_has_one_key_however_it_was_chosen() {
        let instance = DeviceInfo {
            ordinal: 0,
            name: "NVIDIA H100 MIG 1g.10gb".to_string(),
            compute_capability: crate::cuda::version::Version::new(9, 0),
            total_memory: 10 << 30,
            multiprocessors: None,
            uuid: Some("GPU-0d3a6b2e-1c7f-5a4e-9b8d-2f6e4c1a7b90".to_string()),
            pci_bus_id: None,
            compute_mode: None,
        };
        // Chosen by its MIG UUID, it is named as nvidia-smi names it...
        let mut by_uuid = vec![instance.clone()];
        name_mig_instances(
            &mut by_uuid,
            &VisibleDevices::parse(Some("MIG-0d3a6b2e-1c7f-5a4e-9b8d-2f6e4c1a7b90")),
        );
        assert_eq!(
            by_uuid[0].uuid.as_deref(),
            Some("MIG-0d3a6b2e-1c7f-5a4e-9b8d-2f6e4c1a7b90")
        );
        // ...and leased under the same key as when chosen by index.
        assert_eq!(by_uuid[0].key(), instance.key());
        assert_eq!(instance.key(), "0d3a6b2e-1c7f-5a4e-9b8d-2f6e4c1a7b90");
    }

    #[test]
    fn a_release_is_read_from_the_driver_library_file_name() {
        assert_eq!(release_in_file_name("libcuda.so.580.95.05"), Some("580.95.05"));
        assert_eq!(release_in_file_name("libcuda.so.550.54"), Some("550.54"));
        // The links' names, and anything else, are not releases.
        for other in [
            "libcuda.so.1",
            "libcuda.so.1.1",
            "libcuda.so",
            "libcuda.so.580..05",
            "libcuda.so.580.x",
            "libnvrtc.so.12.8",
        ] {
            assert_eq!(release_in_file_name(other), None, "{other}");
        }
    }
}
