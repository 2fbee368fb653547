//! Why a test cannot run, in words: the reasons and hints shared by the requirement check and the
//! doctor, each written once.

use std::path::{Path, PathBuf};

use super::driver_table;
use super::skip::{SkipKind, SkipReason};
use crate::cuda::guard::Hung;
use crate::cuda::library::LoadAttempt;
use crate::cuda::version::Version;
use crate::probe::{
    DeviceError, DeviceInfo, LoadedLibrary, MAX_DEVICES, Nvrtc, Obstacle, PassedOver, Probe,
    WSL_LIB_DIR, python_environment_of,
};
use crate::util::files::same_place;
use crate::util::format::{escape_control, format_duration};

/// Why no test can use the driver at all, or `None` when it is loaded and initialised.
pub(crate) fn driver_problem(probe: &Probe) -> Option<SkipReason> {
    let driver = &probe.driver;
    if let Some(hung) = &driver.hung {
        return Some(driver_hung(hung));
    }
    let library = match &driver.library {
        Err(tried) => return Some(no_driver(probe, tried)),
        Ok(library) => library,
    };
    if !driver.missing_symbols.is_empty() {
        return Some(SkipReason::new(
            SkipKind::DriverSymbolMissing,
            format!(
                "CUDA driver {} lacks {} (it is too old, or not a real driver library)",
                library.display(),
                driver.missing_symbols.join(", ")
            ),
            "update the NVIDIA driver, and check that LD_LIBRARY_PATH does not put an old or stub \
             libcuda before the driver's",
        ));
    }
    let Some(Err(error)) = &driver.init else {
        return None;
    };
    let mut reason = format!("cuInit failed: {error} (loaded {})", library.display());
    let mut hint = error
        .hint()
        .unwrap_or("check that `nvidia-smi` lists the GPU and reports no error")
        .to_string();
    if error.code == 34
        && let Some(path) = &library.path
    {
        // The loaded file is known by its real path; the loader found it, or a link to it, under
        // a driver library's name in one of these.
        let holds_it = |dir: &Path| {
            ["libcuda.so.1", "libcuda.so"]
                .iter()
                .any(|name| same_place(&dir.join(name), path))
        };
        let on_path = probe.environment.library_path_dirs().map(Path::new).find(|dir| holds_it(dir));
        let found_by = match on_path {
            Some(dir) => StubFoundBy::LibraryPath(dir.to_path_buf()),
            None => match probe.ld_so_conf_dirs().iter().find(|dir| holds_it(dir)) {
                Some(dir) => StubFoundBy::LdSoConf(dir.clone()),
                None => StubFoundBy::PutThere,
            },
        };
        hint = stub_library_fix(path, &found_by);
    }
    if let Some(shadowed) = &driver.shadowed {
        reason.push_str(&format!(
            "; libcuda.so is {} but the driver's libcuda.so.1 is {}",
            library.display(),
            shadowed.display()
        ));
        hint = format!(
            "libcuda.so and libcuda.so.1 are different files and tests load libcuda.so: remove the \
             directory holding {} from LD_LIBRARY_PATH",
            library.display()
        );
    }
    // The control files without a GPU's own: a container given NVIDIA's devices with no GPU
    // selected, or a host where the GPU's file was never made (nvidia-modprobe or udev makes
    // them, the first time a program as root asks). Whatever CUDA_VISIBLE_DEVICES says, no GPU
    // can be seen without it.
    let nodes = probe.device_nodes();
    if error.code == 100 && !nodes.is_empty() && !nodes.iter().any(|node| is_gpu_device_file(&node.path)) {
        let names: Vec<String> = nodes
            .iter()
            .filter_map(|node| node.path.file_name())
            .map(|name| escape_control(&name.to_string_lossy()))
            .collect();
        reason.push_str(&format!(
            "; /dev has {} but no GPU's device file (nvidia0, ...)",
            names.join(", ")
        ));
        hint = match (probe.platform().container.as_deref(), &probe.kernel_module) {
            (Some(container), _) => format!(
                "this container ({}) was given NVIDIA's control devices but no GPU: start it with the GPUs \
                 selected (`docker run --gpus all`, NVIDIA_VISIBLE_DEVICES=all, or CDI `--device \
                 nvidia.com/gpu=all`); on a host without an NVIDIA GPU this skip is expected",
                escape_control(container)
            ),
            (None, Some(_)) => "the GPU's device file was never made: run `sudo nvidia-smi` once, which \
                                makes /dev/nvidia0 and the others, and check that nvidia-modprobe is \
                                installed setuid root; if `lspci | grep -i nvidia` lists no NVIDIA GPU, \
                                this skip is expected"
                .to_string(),
            (None, None) => "the NVIDIA kernel module is not loaded (no /proc/driver/nvidia/version): load it \
                             (`sudo modprobe nvidia`, or reinstall the driver), then run `sudo nvidia-smi` \
                             once to make the GPUs' device files"
                .to_string(),
        };
        return Some(SkipReason::new(SkipKind::DriverInitFailed, reason, hint));
    }
    // Most certain first: a variable that hides every device whatever the machine has, then what
    // the machine shows (device files this user cannot open, a GPU in MIG mode), and only then
    // an entry that may match no device, which the driver cannot tell apart from the rest.
    let visible = probe.environment.visible_devices();
    let shortfall = if matches!(error.code, 100 | 101) {
        visible.explain_shortfall(1, 0)
    } else {
        None
    };
    let visible_hint = "unset CUDA_VISIBLE_DEVICES, or set it to device indices or UUIDs such as 0,1 or GPU-...";
    if let Some(explanation) = shortfall.as_ref().filter(|_| visible.hides_every_device()) {
        reason.push_str(&format!("; {explanation}"));
        return Some(SkipReason::new(SkipKind::DriverInitFailed, reason, visible_hint));
    }
    // Any of NVIDIA's device files (nvidiactl too) can stop cuInit.
    if matches!(error.code, 100 | 304 | 999)
        && let Some(blocked) = unopenable_device_files(probe, |_| true)
    {
        reason.push_str(&format!("; {blocked}"));
        return Some(SkipReason::new(SkipKind::DriverInitFailed, reason, DEVICE_FILE_ACCESS_FIX));
    }
    if error.code == 100
        && let Some((why, fix)) = mig_without_instances(probe)
    {
        reason.push_str(&format!("; {why}"));
        return Some(SkipReason::new(SkipKind::DriverInitFailed, reason, fix));
    }
    // The GPUs /dev shows bound the indices that can match; WSL2 shows none (its GPUs are reached
    // through the Windows driver), so there only a first index past 0, or a UUID, is suspect.
    let gpu_files = nodes.iter().filter(|node| is_gpu_device_file(&node.path)).count();
    let suspect = match (probe.platform().wsl, gpu_files) {
        (true, _) => !visible.first_within(1),
        (false, 0) => false,
        (false, count) => !visible.first_within(count),
    };
    if let Some(explanation) = shortfall.filter(|_| suspect) {
        reason.push_str(&format!("; {explanation}"));
        return Some(SkipReason::new(SkipKind::DriverInitFailed, reason, visible_hint));
    }
    if error.code == 100 && nodes.is_empty() {
        // WSL2 has no /dev/nvidia*: its GPU is reached through the Windows driver, whose libcuda
        // loaded here and found no GPU.
        if probe.platform().wsl {
            reason.push_str(
                "; this is WSL2, where CUDA reaches the GPU through the Windows NVIDIA driver, and that driver \
                 shows CUDA no GPU",
            );
            hint = format!(
                "update the NVIDIA driver on Windows to one with CUDA support for WSL2, check that \
                 /{WSL_LIB_DIR}/nvidia-smi lists the GPU, then run `wsl --shutdown` and reopen the distribution"
            );
        } else if let Some((why, fix)) = missing_on_this_platform(probe) {
            reason.push_str(&format!("; {why}"));
            hint = fix;
        } else {
            reason.push_str("; there are no /dev/nvidia* device files");
            hint = "no GPU is visible to this system: check `nvidia-smi`; in a container, start it with the \
                    NVIDIA container toolkit (docker run --gpus all)"
                .to_string();
        }
    }
    Some(SkipReason::new(SkipKind::DriverInitFailed, reason, hint))
}

/// The fix for device files this user may not open.
pub(crate) const DEVICE_FILE_ACCESS_FIX: &str = "give this user read and write access to /dev/nvidia* (usually by \
                                                 adding it to the group that owns them, such as video or render)";

/// `this user may not read and write /dev/nvidia1`, for the device files `which` picks, when
/// there are such.
pub(crate) fn unopenable_device_files(probe: &Probe, which: impl Fn(&Path) -> bool) -> Option<String> {
    let blocked: Vec<String> = probe
        .device_nodes()
        .iter()
        .filter(|node| !node.accessible && which(&node.path))
        .map(|node| node.path.display().to_string())
        .collect();
    (!blocked.is_empty()).then(|| format!("this user may not read and write {}", blocked.join(", ")))
}

/// `/dev/nvidia0`, `/dev/nvidia1`, ...: a GPU's own device file, as opposed to `nvidiactl`,
/// `nvidia-uvm` or `nvidia-modeset`.
pub(crate) fn is_gpu_device_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("nvidia"))
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// The driver did not answer within the probe's limit.
pub(crate) fn driver_hung(hung: &Hung) -> SkipReason {
    let call = match (hung.call, &hung.library) {
        (Some("dlopen"), Some(library)) => format!("loading {library}"),
        (Some(call), Some(library)) if !library.is_empty() => format!("{call} ({library})"),
        (Some(call), _) => call.to_string(),
        (None, _) => "the driver".to_string(),
    };
    SkipReason::new(
        SkipKind::DriverHung,
        format!(
            "the CUDA driver did not answer: {call} did not return within {} (GPU_TEST_PROBE_TIMEOUT), \
             and gpu-test calls into it no more in this process",
            format_duration(hung.limit)
        ),
        "a GPU or driver in a bad state: check `nvidia-smi`, and the kernel log for Xid errors (`sudo dmesg | \
         grep -i xid`); such a GPU usually needs a reset or a reboot. If the driver is only slow to start (many \
         GPUs without persistence mode), enable persistence mode (`nvidia-smi -pm 1`) or raise \
         GPU_TEST_PROBE_TIMEOUT",
    )
}

fn no_driver(probe: &Probe, tried: &[LoadAttempt]) -> SkipReason {
    if let Some((link, target)) = probe.driver.dangling.first() {
        return SkipReason::new(
            SkipKind::NoDriver,
            format!(
                "no CUDA driver: {} is a symbolic link to {}, which does not exist (a driver removed or \
                 upgraded halfway)",
                escape_control(&link.display().to_string()),
                escape_control(&target.display().to_string())
            ),
            "reinstall the NVIDIA driver, or remove the stale link so the loader finds the driver's own libcuda",
        );
    }
    if let Some(attempt) = tried.iter().find(|a| a.missing_dependency().is_some()) {
        let needed = attempt.missing_dependency().unwrap_or_default();
        // `ldd` needs the file, where the loader was asked by name.
        let file = escape_control(&probe.locate_library(&attempt.name));
        return SkipReason::new(
            SkipKind::NoDriver,
            format!(
                "the CUDA driver library {file} was found but cannot be loaded: a library it needs, {needed}, is \
                 missing (the loader said: {})",
                attempt.error
            ),
            format!(
                "`ldd {file}` lists what it needs and cannot find: install that (reinstalling the NVIDIA driver \
                 restores its own libraries), or add its directory to LD_LIBRARY_PATH"
            ),
        );
    }
    let names: Vec<&str> = tried.iter().map(|a| a.name.as_str()).collect();
    let mut reason = format!(
        "no CUDA driver: libcuda could not be loaded (tried {}; {})",
        names.join(", "),
        probe.environment.describe_library_path()
    );
    let unusable: Vec<&LoadAttempt> = tried.iter().filter(|a| !a.is_not_found()).collect();
    for attempt in &unusable {
        reason.push_str(&format!("; {}", attempt.error));
    }
    let mounted = unusable
        .is_empty()
        .then(|| mounted_driver_off_path(probe))
        .flatten();
    match (&probe.kernel_module, mounted) {
        (Some(module), _) => {
            let release = module
                .release
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            reason.push_str(&format!(
                "; the NVIDIA kernel module{release} is loaded, so the driver is installed but its library \
                 is not where the loader looks"
            ));
        }
        // WSL2 has no NVIDIA kernel module (the Windows driver serves the GPU), and sandboxes that
        // mount the driver's libraries (gVisor) show no /proc/driver/nvidia: there, the module's
        // absence says nothing.
        (None, None) if !probe.platform().wsl => reason.push_str("; the NVIDIA kernel module is not loaded either"),
        (None, _) => {}
    }
    // The most specific explanation gives the fix.
    let hint = if !unusable.is_empty() {
        "a libcuda file was found but could not be loaded (see the loader's message): check its permissions \
         and that it is a 64-bit driver library"
            .to_string()
    } else if let Some(dir) = mounted {
        reason.push_str(&format!(
            "; libcuda.so.1 is in {dir}, where GPU containers and sandboxes (GKE, gVisor) mount the driver's \
             libraries, and the loader does not look there"
        ));
        loader_path_fix(probe, Path::new(dir))
    } else if let Some((why, fix)) = missing_on_this_platform(probe) {
        reason.push_str(&format!("; {why}"));
        fix
    } else if probe.kernel_module.is_some() {
        "add the directory holding libcuda.so.1 to LD_LIBRARY_PATH or the loader cache (ldconfig); in a \
         container, start it with the NVIDIA container toolkit (docker run --gpus all)"
            .to_string()
    } else {
        "install the NVIDIA driver and check that `nvidia-smi` lists a GPU; on a machine without an NVIDIA GPU \
         this skip is expected"
            .to_string()
    };
    SkipReason::new(SkipKind::NoDriver, reason, hint)
}

/// The directory where a GPU container or sandbox mounted the driver's libraries
/// (`/usr/local/nvidia/lib64`), when it holds `libcuda.so.1`, the GPUs' device files are there,
/// and `LD_LIBRARY_PATH` does not name it: the one thing missing is the loader's path.
fn mounted_driver_off_path(probe: &Probe) -> Option<&str> {
    let dir = probe.platform().mounted_driver_dir.as_deref()?;
    let on_path = probe
        .environment
        .library_path_dirs()
        .any(|listed| same_place(Path::new(listed), Path::new(dir)));
    (!probe.device_nodes().is_empty() && !on_path).then_some(dir)
}

/// Why no device shows when GPUs are in MIG mode and no MIG instance is visible, and the fix: a
/// GPU in MIG mode runs CUDA only in the instances made on it.
pub(crate) fn mig_without_instances(probe: &Probe) -> Option<(String, String)> {
    if probe.kernel_module.is_none() || !probe.devices.is_empty() {
        return None;
    }
    let gpus = probe.gpus_in_mig_mode();
    let first = gpus.first()?;
    let listed: Vec<String> = gpus.iter().map(u32::to_string).collect();
    let which = if gpus.len() == 1 {
        format!("GPU {first} is")
    } else {
        format!("GPUs {} are", listed.join(", "))
    };
    Some((
        format!("{which} in MIG mode (nvidia-smi), and CUDA sees no MIG instance"),
        format!(
            "create a GPU instance with its compute instance (`sudo nvidia-smi mig -i {first} -cgi <profile> -C`) \
             and select it with CUDA_VISIBLE_DEVICES=MIG-<uuid> (`nvidia-smi -L` lists them), or turn MIG mode \
             off (`sudo nvidia-smi -i {first} -mig 0`)"
        ),
    ))
}

/// Why a container or WSL2 has no driver library, and the fix, when the process runs in one.
pub(crate) fn missing_on_this_platform(probe: &Probe) -> Option<(String, String)> {
    let platform = probe.platform();
    if platform.wsl1 {
        return Some((
            "this is WSL 1, which has no GPU support: CUDA runs only in WSL 2".to_string(),
            "convert the distribution to WSL 2 (in Windows: `wsl -l -v` lists them, `wsl --set-version <name> 2`), \
             with the NVIDIA driver installed on Windows"
                .to_string(),
        ));
    }
    if platform.wsl {
        let wsl_lib = format!("/{WSL_LIB_DIR}");
        return Some(match &platform.wsl_libcuda {
            Some(_) => (
                format!(
                    "this is WSL2, and its libcuda.so.1 (from the Windows NVIDIA driver) is in {wsl_lib}, \
                     where the loader does not look"
                ),
                format!(
                    "add {wsl_lib} to LD_LIBRARY_PATH, or restore /etc/ld.so.conf.d/ld.wsl.conf (it lists \
                     {wsl_lib}) and run `sudo ldconfig`"
                ),
            ),
            None => (
                format!(
                    "this is WSL2, where libcuda comes from the Windows NVIDIA driver ({wsl_lib}/libcuda.so.1), \
                     and it is not there"
                ),
                "install or update the NVIDIA driver on Windows, which provides CUDA to WSL2 (do not install a \
                 Linux NVIDIA driver inside WSL), then run `wsl --shutdown` and reopen the distribution"
                    .to_string(),
            ),
        });
    }
    let container = platform.container.as_deref()?;
    let nodes = probe.device_nodes();
    let names: Vec<String> = nodes
        .iter()
        .filter_map(|node| node.path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    // NVIDIA's control devices alone (nvidiactl, nvidia-uvm), as some runtimes give every
    // container, are no GPU.
    Some(if !nodes.iter().any(|node| is_gpu_device_file(&node.path)) {
        let has = match names.as_slice() {
            [] => "no /dev/nvidia* device files".to_string(),
            names => format!(
                "no GPU's device file (nvidia0, ...), only NVIDIA's control devices ({})",
                escape_control(&names.join(", "))
            ),
        };
        (
            format!(
                "this is a container ({}) started without GPU access: it has {has}",
                escape_control(container)
            ),
            "start the container with the GPUs passed in through the NVIDIA Container Toolkit: `docker run \
             --gpus all`, or with CDI `--device nvidia.com/gpu=all` (Docker, Podman); in Kubernetes, request \
             `nvidia.com/gpu` in the pod's resources; on a host without an NVIDIA GPU this skip is expected"
                .to_string(),
        )
    } else {
        (
            format!(
                "this is a container ({}) with the GPU device files but without the driver library: the \
                 NVIDIA Container Toolkit did not mount libcuda into it",
                escape_control(container)
            ),
            "configure the container runtime for the NVIDIA Container Toolkit on the host (`sudo nvidia-ctk \
             runtime configure --runtime=docker`, then restart it) and start the container with `--gpus all`, \
             rather than passing /dev/nvidia* alone with --device"
                .to_string(),
        )
    })
}

/// A body compiled only with a cargo feature the build lacks: the Rust form of a CPU-only build,
/// in which GPU tests gated by `#[cfg(feature = ...)]` would vanish from the run unseen.
pub(crate) fn built_without_feature(name: &str) -> SkipReason {
    SkipReason::new(
        SkipKind::BuiltWithoutFeature,
        format!("built without feature `{name}`, which the test's body needs"),
        format!(
            "build with `--features {name}` (from a workspace root, `--features <package>/{name}`, or \
             `--all-features`)"
        ),
    )
}

/// The oldest CUDA a driver may support for gpu-test to run a test on it: the context set-up that
/// gpu-test and cudarc make asks whether the device has stream-ordered memory pools, which older
/// drivers do not know (`CUDA_ERROR_INVALID_VALUE`).
pub(crate) const OLDEST_CUDA: Version = Version::new(11, 2);

/// Why no test runs on a driver older than [`OLDEST_CUDA`], whatever its `min_cuda`; `None` for
/// a driver new enough, or one that does not say.
pub(crate) fn older_than_gpu_test_runs_on(probe: &Probe) -> Option<SkipReason> {
    probe.driver.cuda_version.filter(|&version| version < OLDEST_CUDA)?;
    let mut reason = cuda_too_old(probe, OLDEST_CUDA)?;
    reason.reason.push_str(&format!(
        " (CUDA {OLDEST_CUDA} is the oldest gpu-test runs tests on: a context's set-up asks for what older \
         drivers lack)"
    ));
    Some(reason)
}

/// Why the driver does not meet `min_cuda`, or `None` when it does.
pub(crate) fn cuda_too_old(probe: &Probe, min_cuda: Version) -> Option<SkipReason> {
    let needed = match driver_table::min_driver_for(min_cuda) {
        Some(driver) => format!("CUDA {min_cuda} needs driver >= {driver}"),
        None if driver_table::older_than_known(min_cuda) => {
            format!("CUDA {min_cuda} is older than every release whose minimum driver gpu-test knows")
        }
        None => format!("CUDA {min_cuda} is newer than every release whose minimum driver gpu-test knows"),
    };
    let hint = match (probe.driver.cuda_version, driver_table::min_driver_for(min_cuda)) {
        // The driver did not say which CUDA it supports: it may well be new enough.
        (None, _) => "check the driver's installation: `nvidia-smi` shows its release and the CUDA version it \
                      supports; a driver whose cuDriverGetVersion fails is damaged or mismatched with its kernel \
                      module (reinstall it, or reboot after an update)"
            .to_string(),
        (Some(_), Some(driver)) => {
            format!("update the NVIDIA driver to {driver} or newer (`nvidia-smi` shows the installed one)")
        }
        (Some(_), None) => "update the NVIDIA driver (`nvidia-smi` shows the installed one)".to_string(),
    };
    let found = match probe.driver.cuda_version {
        Some(version) if version >= min_cuda => return None,
        Some(version) => match probe.driver_release() {
            Some(release) => format!("driver {release} supports CUDA {version}"),
            None => format!("the driver supports CUDA {version}"),
        },
        None => format!(
            "the driver's CUDA version is unknown ({})",
            probe
                .driver
                .version_error
                .as_deref()
                .unwrap_or("cuDriverGetVersion gave no answer")
        ),
    };
    Some(SkipReason::new(
        SkipKind::CudaTooOld,
        format!("needs CUDA >= {min_cuda}, {found}; {needed}"),
        hint,
    ))
}

/// Why NVRTC does not meet `min_toolkit`, or `None` when it does.
pub(crate) fn toolkit_problem(probe: &Probe, min_toolkit: Version) -> Option<SkipReason> {
    let need = format!("needs NVRTC >= {min_toolkit} (min_toolkit)");
    let install = "install the CUDA toolkit's NVRTC (the cuda-nvrtc package) and add its lib64 directory to \
                   LD_LIBRARY_PATH";
    let toolkit = probe.toolkit();
    // NVRTC loaded from off the loader's path without its builtins: compiling would fail.
    if let (Nvrtc::Found { library, .. }, Some(passed_over)) = (&toolkit.nvrtc, toolkit.missing_builtins()) {
        return Some(SkipReason::new(
            SkipKind::ToolkitMissing,
            format!(
                "{need}: NVRTC {} is not on the loader's path, and its builtins could not be loaded with it \
                 ({}: {})",
                library.display(),
                escape_control(&passed_over.path.display().to_string()),
                escape_control(&passed_over.why)
            ),
            passed_over_fix(probe, passed_over),
        ));
    }
    match &toolkit.nvrtc {
        Nvrtc::NotFound { tried } => {
            let first = tried.first().map(|a| a.name.as_str()).unwrap_or("libnvrtc.so");
            let mut reason = format!(
                "{need}, but libnvrtc could not be loaded (tried {first} and {} other names cudarc looks for; {})",
                tried.len().saturating_sub(1),
                probe.environment.describe_library_path()
            );
            // A file the loader found but could not use says more than the names not found.
            if let Some(broken) = tried.iter().find(|attempt| !attempt.is_not_found()) {
                reason.push_str(&format!("; {}: {}", escape_control(&broken.name), broken.error));
            }
            let (found, hint) = nvrtc_found_elsewhere(probe, tried);
            reason.push_str(&found);
            Some(SkipReason::new(
                SkipKind::ToolkitMissing,
                reason,
                hint.unwrap_or_else(|| install.to_string()),
            ))
        }
        Nvrtc::Unrecognised { library } => Some(SkipReason::new(
            SkipKind::ToolkitMissing,
            format!("{need}, but {} does not export nvrtcVersion", library.display()),
            install,
        )),
        Nvrtc::VersionFailed { library, failure } => Some(SkipReason::new(
            SkipKind::ToolkitMissing,
            format!("{need}, but nvrtcVersion in {} {failure}", library.display()),
            install,
        )),
        Nvrtc::Found { library, version } if *version < min_toolkit => Some(SkipReason::new(
            SkipKind::ToolkitTooOld,
            format!("{need}, found NVRTC {version} ({})", library.display()),
            format!(
                "put the lib64 directory of a CUDA {min_toolkit} or newer toolkit first in LD_LIBRARY_PATH"
            ),
        )),
        Nvrtc::Found { library, version } => {
            let driver_cuda = probe.driver.cuda_version?;
            (*version > driver_cuda).then(|| nvrtc_newer_than_driver(probe, library, *version, driver_cuda))
        }
    }
}

/// NVRTC on this machine that the loader was not asked for: where it is, and the fix. A file
/// whose name cudarc tries (under another directory) needs its directory on the loader's path; one
/// whose name it does not try (libnvrtc.so.13 for the CUDA 12 bindings) needs other bindings.
pub(crate) fn nvrtc_found_elsewhere(probe: &Probe, tried: &[LoadAttempt]) -> (String, Option<String>) {
    let elsewhere = &probe.toolkit().elsewhere;
    if elsewhere.is_empty() {
        return (String::new(), None);
    }
    let tried_names: Vec<&str> = tried
        .iter()
        .filter_map(|a| Path::new(&a.name).file_name()?.to_str())
        .collect();
    let is_tried = |path: &PathBuf| {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|name| tried_names.contains(&name))
    };
    let listed: Vec<String> = elsewhere
        .iter()
        .map(|p| escape_control(&p.display().to_string()))
        .collect();
    let dir_of = |path: &PathBuf| {
        path.parent()
            .map(|d| escape_control(&d.display().to_string()))
            .unwrap_or_default()
    };
    // A file cudarc would load by name, which gpu-test could not use for it: why, and the fix.
    if let Some(passed_over) = probe.toolkit().passed_over.first() {
        return (
            format!(
                "; NVRTC is on this machine at {}, which is not on the loader's path; {}: {}",
                listed.join(", "),
                escape_control(&passed_over.path.display().to_string()),
                escape_control(&passed_over.why)
            ),
            Some(passed_over_fix(probe, passed_over)),
        );
    }
    if let Some(usable) = elsewhere.iter().find(|p| is_tried(p)) {
        return (
            format!(
                "; NVRTC is on this machine at {}, which is not on the loader's path",
                listed.join(", ")
            ),
            Some(file_loader_path_fix(probe, usable)),
        );
    }
    (
        format!(
            "; NVRTC is on this machine as {}, a name this build's cudarc bindings do not look for",
            listed.join(", ")
        ),
        Some(format!(
            "build with the cudarc bindings of that CUDA release (gpu-test-runtime's feature cuda-13000 or newer \
             for libnvrtc.so.13), and add {} to LD_LIBRARY_PATH if it is not on the loader's path",
            dir_of(&elsewhere[0])
        )),
    )
}

/// The fix for an NVRTC file gpu-test could not use: a place others may change is made safe
/// first, since putting it on the loader's path would let them change what every program loads.
pub(crate) fn passed_over_fix(probe: &Probe, passed_over: &PassedOver) -> String {
    let path = escape_control(&passed_over.path.display().to_string());
    match &passed_over.obstacle {
        Obstacle::Untrusted { place } => format!(
            "make {} belong to root or you and writable by no one else (chmod go-w), or install NVRTC where \
             that holds",
            escape_control(&place.display().to_string())
        ),
        Obstacle::Unusable => {
            format!("fix what the loader says of {path} (`ldd {path}` lists what it lacks), or install NVRTC again")
        }
        Obstacle::BuiltinsMissing => {
            let name = passed_over
                .path
                .file_name()
                .map(|name| escape_control(&name.to_string_lossy()))
                .unwrap_or_default();
            format!(
                "install {name}, which comes with NVRTC (the cuda-nvrtc package), beside NVRTC or on the loader's path"
            )
        }
        Obstacle::NeedsLoaderPath => file_loader_path_fix(probe, &passed_over.path),
        Obstacle::NewerThanDriver {
            release: Some(release), ..
        } => {
            let update = update_driver_for(*release);
            match probe.driver.cuda_version {
                Some(driver) => {
                    let environment = python_environment_of(&passed_over.path);
                    match wheel_of_the_drivers_cuda(*release, driver, environment.as_deref()) {
                        Some(wheel) => format!("{update}, {wheel}"),
                        None => format!("{update}, or install an NVRTC of CUDA {driver} or older"),
                    }
                }
                None => update,
            }
        }
        Obstacle::NewerThanDriver { cuda_major, .. } => {
            // Only the major release of this NVRTC is known (its file name): its minor release
            // may need a newer driver than the first of that major.
            let update = match driver_table::min_driver_for(Version::new(*cuda_major, 0)) {
                Some(min) => format!(
                    "update the driver to one of CUDA {cuda_major} ({min} or newer for {cuda_major}.0, newer for \
                     a later {cuda_major}.x)"
                ),
                None => format!("update the driver to one of CUDA {cuda_major} or newer"),
            };
            match probe.driver.cuda_version {
                Some(driver) => format!("{update}, or install an NVRTC of CUDA {driver} or older"),
                None => update,
            }
        }
    }
}

/// How to put NVRTC's directory on the loader's path, so that programs outside gpu-test find it.
pub(crate) fn nvrtc_loader_path_fix(probe: &Probe, library: &LoadedLibrary) -> String {
    match library.path.as_deref() {
        Some(file) => file_loader_path_fix(probe, file),
        None => "add NVRTC's directory to LD_LIBRARY_PATH".to_string(),
    }
}

/// How to put the directory of `file` on the loader's path.
fn file_loader_path_fix(probe: &Probe, file: &Path) -> String {
    match file.parent() {
        Some(dir) => loader_path_fix(probe, dir),
        None => "add its directory to LD_LIBRARY_PATH".to_string(),
    }
}

/// How to put `dir` on the loader's path: `ldconfig` when `/etc/ld.so.conf` already names it
/// (the cache is only out of date), else `LD_LIBRARY_PATH`.
fn loader_path_fix(probe: &Probe, dir: &Path) -> String {
    let shown = escape_control(&dir.display().to_string());
    if probe.ld_so_conf_lists(dir) {
        format!("run ldconfig as root: /etc/ld.so.conf names {shown}, but the loader's cache does not have it yet")
    } else {
        format!("add {shown} to LD_LIBRARY_PATH")
    }
}

/// NVRTC makes PTX for its own CUDA release, which an older driver cannot load.
pub(crate) fn nvrtc_newer_than_driver(
    probe: &Probe,
    library: &LoadedLibrary,
    version: Version,
    driver_cuda: Version,
) -> SkipReason {
    let driver = match probe.driver_release() {
        Some(release) => format!("driver {release} (CUDA {driver_cuda})"),
        None => format!("the driver (CUDA {driver_cuda})"),
    };
    let update = update_driver_for(version);
    let wheel = wheel_of_the_drivers_cuda(version, driver_cuda, probe.toolkit().python_environment.as_deref());
    let older = match wheel {
        Some(wheel) => wheel,
        // cudarc asks for the newest name first (libnvrtc.so.13 before .so.12), so an older NVRTC
        // of another major release is found only once this one is off the loader's path.
        None if version.major > driver_cuda.major => format!(
            "or take this CUDA {} NVRTC off the loader's path and put an NVRTC of CUDA {driver_cuda} or older \
             on it",
            version.major
        ),
        None => format!("or put an NVRTC of CUDA {driver_cuda} or older first in LD_LIBRARY_PATH"),
    };
    SkipReason::new(
        SkipKind::ToolkitNewerThanDriver,
        format!(
            "NVRTC {version} ({}) makes PTX that {driver} cannot load (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)",
            library.display()
        ),
        format!("{update}, {older}"),
    )
}

/// `or install the NVRTC wheel of CUDA 12.8 into the Python environment it came from (...): pip
/// install "..."`, for an NVRTC of `version` from the Python environment `environment`, beside a
/// driver of `driver_cuda`. pip can put an older wheel in its place only within one major release:
/// the CUDA 12 and 13 wheels are different packages in different folders, and cudarc tries the
/// newer name first.
fn wheel_of_the_drivers_cuda(version: Version, driver_cuda: Version, environment: Option<&Path>) -> Option<String> {
    let environment = environment.filter(|_| version.major == driver_cuda.major && driver_cuda.major >= 12)?;
    Some(format!(
        "or install the NVRTC wheel of CUDA {driver_cuda} into the Python environment it came from ({}): pip \
         install \"{}\"",
        escape_control(&environment.display().to_string()),
        nvrtc_wheel_requirement(driver_cuda)
    ))
}

/// `update the driver to 580.65.06 or newer`: the driver that loads PTX of CUDA `cuda`, when
/// NVIDIA's table names it.
fn update_driver_for(cuda: Version) -> String {
    match driver_table::min_driver_for(cuda) {
        Some(min) => format!("update the driver to {min} or newer"),
        None => format!("update the driver to one for CUDA {cuda} or newer"),
    }
}

/// The pip requirement for the newest NVRTC wheel a driver of CUDA `cuda` (12.0 or newer, which
/// all have wheels) loads PTX from: `nvidia-cuda-nvrtc-cu12` for CUDA 12, one package from CUDA
/// 13 on, and `<12.8` also covers a driver of a CUDA release that had no wheels (12.7).
fn nvrtc_wheel_requirement(cuda: Version) -> String {
    let package = match cuda.major {
        12 => "nvidia-cuda-nvrtc-cu12",
        _ => "nvidia-cuda-nvrtc",
    };
    format!("{package}<{}.{}", cuda.major, cuda.minor.saturating_add(1))
}

/// A device count past belief (`cuDeviceGetCount` answered it), and what gpu-test did with it.
pub(crate) fn implausible_device_count(reported: i32) -> String {
    if reported < 0 {
        return format!(
            "cuDeviceGetCount reported {reported} devices, which is not a count: gpu-test read none"
        );
    }
    format!(
        "cuDeviceGetCount reported {reported} devices, which no machine has: gpu-test read at most the first \
         {MAX_DEVICES}"
    )
}

/// Why one device of an `each_device` test, which the driver counted but could not describe,
/// is not run: its error, and the error's usual fix or how to run on the others.
pub(crate) fn unreadable_device(error: &DeviceError) -> SkipReason {
    let reason = format!(
        "device {} could not be read: {} failed: {}",
        error.ordinal, error.call, error.error
    );
    let others = "or hide the GPU with CUDA_VISIBLE_DEVICES to run on the others";
    let hint = match error.error.hint() {
        Some(hint) => format!("{hint}; {others}"),
        None => format!("check the GPU with `nvidia-smi` and the kernel log (`sudo dmesg | grep -i xid`), {others}"),
    };
    SkipReason::new(SkipKind::DeviceUnsuitable, reason, hint)
}


/// Where the loader found a stub libcuda (the CUDA toolkit's, for linking only), or a link to it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StubFoundBy {
    /// In this directory, which `LD_LIBRARY_PATH` names.
    LibraryPath(PathBuf),
    /// In this directory, which `/etc/ld.so.conf` names.
    LdSoConf(PathBuf),
    /// Elsewhere on the loader's path: a copy of it, or a link to it, put among the system's own
    /// libraries.
    PutThere,
}

/// The fix for the stub libcuda whose file is `path`, which loaded (CUDA_ERROR_STUB_LIBRARY), by
/// where the loader found it.
fn stub_library_fix(path: &Path, found_by: &StubFoundBy) -> String {
    let shown = |path: &Path| escape_control(&path.display().to_string());
    let why = "the loaded libcuda is the CUDA toolkit's stub, which only exists for linking";
    let then = "so that the driver's libcuda.so.1 is found (install the NVIDIA driver where there is none)";
    match found_by {
        StubFoundBy::LibraryPath(dir) => format!("{why}: remove {} from LD_LIBRARY_PATH, {then}", shown(dir)),
        StubFoundBy::LdSoConf(dir) => format!(
            "{why}: remove {} from /etc/ld.so.conf (or the file in /etc/ld.so.conf.d that names it) and run \
             `sudo ldconfig`, {then}",
            shown(dir)
        ),
        StubFoundBy::PutThere => format!(
            "{why} ({}): a copy of it, or a link to it, is among the system's libraries under a driver library's \
             name (`ldconfig -p | grep libcuda` shows where); remove it and run `sudo ldconfig`, {then}",
            shown(path)
        ),
    }
}

/// A device in compute mode Prohibited: what is wrong with it (after its label) and the fix.
pub(crate) fn compute_mode_prohibited(device: &DeviceInfo) -> (&'static str, String) {
    (
        "is in compute mode Prohibited, so no process may use it",
        format!(
            "allow processes on it again, as root: `nvidia-smi -i {} -c DEFAULT`",
            device.nvidia_smi_id()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stub_library_is_removed_from_where_the_loader_found_it() {
        let stub = Path::new("/usr/local/cuda-13.0/targets/x86_64-linux/lib/stubs/libcuda.so");
        let stubs = || stub.parent().unwrap().to_path_buf();
        assert_eq!(
            stub_library_fix(stub, &StubFoundBy::LibraryPath(stubs())),
            "the loaded libcuda is the CUDA toolkit's stub, which only exists for linking: remove \
             /usr/local/cuda-13.0/targets/x86_64-linux/lib/stubs from LD_LIBRARY_PATH, so that the driver's \
             libcuda.so.1 is found (install the NVIDIA driver where there is none)"
        );
        assert!(
            stub_library_fix(stub, &StubFoundBy::LdSoConf(stubs())).contains(
                "remove /usr/local/cuda-13.0/targets/x86_64-linux/lib/stubs from /etc/ld.so.conf (or the file in \
                 /etc/ld.so.conf.d that names it) and run `sudo ldconfig`"
            )
        );
        assert!(stub_library_fix(stub, &StubFoundBy::PutThere).contains(
            "stub, which only exists for linking (/usr/local/cuda-13.0/targets/x86_64-linux/lib/stubs/libcuda.so): \
             a copy of it, or a link to it, is among the system's libraries under a driver library's name \
             (`ldconfig -p | grep libcuda` shows where); remove it"
        ));
    }

    #[test]
    fn a_gpus_device_file_is_nvidia_and_a_number() {
        for gpu in ["/dev/nvidia0", "/dev/nvidia15"] {
            assert!(is_gpu_device_file(Path::new(gpu)), "{gpu}");
        }
        for other in ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-modeset", "/dev/nvidia"] {
            assert!(!is_gpu_device_file(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn the_wheel_requirement_names_the_package_of_the_drivers_release() {
        assert_eq!(
            nvrtc_wheel_requirement(Version::new(12, 8)),
            "nvidia-cuda-nvrtc-cu12<12.9"
        );
        assert_eq!(
            nvrtc_wheel_requirement(Version::new(12, 7)),
            "nvidia-cuda-nvrtc-cu12<12.8"
        );
        assert_eq!(nvrtc_wheel_requirement(Version::new(13, 0)), "nvidia-cuda-nvrtc<13.1");
    }
}
