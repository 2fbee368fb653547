//! The doctor: this machine's CUDA setup for people (and as JSON), each finding with a fix.
//!
//! Run it with `cargo run -p gpu-test-runtime --bin gpu-doctor [-- --json]`. It reads the same
//! probe the tests use, then also opens a context on each device to read its free memory, which
//! the tests' probe does not do.

use std::fmt::Write as _;

use crate::driver_table;
use crate::json::Json;
use crate::probe::{ComputeMode, DeviceInfo, Nvrtc, Probe, VisibleDevices};
use crate::skip::format_bytes;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Blocks GPU tests.
    Error,
    /// Likely to cause failures or surprises.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing the doctor noticed, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// What was found.
    pub text: String,
    /// What to do about it.
    pub hint: String,
}

/// What opening a context on a device showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextCheck {
    /// A context opened; free and total memory in bytes, when the driver reported them.
    Opened {
        /// `(free, total)`.
        memory: Option<(u64, u64)>,
    },
    /// No context could be created.
    Failed(String),
}

/// The doctor's diagnosis of this machine.
#[derive(Debug)]
pub struct Diagnosis<'p> {
    probe: &'p Probe,
    /// Per device (same order as `probe.devices`): the context check.
    pub contexts: Vec<ContextCheck>,
    /// Everything noticed, most serious first.
    pub findings: Vec<Finding>,
}

impl<'p> Diagnosis<'p> {
    /// Diagnoses `probe`, opening a context on each device to check it is usable.
    pub fn new(probe: &'p Probe) -> Diagnosis<'p> {
        let contexts = probe.devices.iter().map(|d| check_context(probe, d)).collect();
        let mut diagnosis = Diagnosis {
            probe,
            contexts,
            findings: Vec::new(),
        };
        diagnosis.findings = diagnosis.find();
        diagnosis.findings.sort_by_key(|f| f.severity);
        diagnosis
    }

    /// The devices a test could use: the driver is ready, a context opened, and the device is not
    /// in compute mode Prohibited.
    pub fn usable_devices(&self) -> usize {
        if !self.probe.driver.is_ready() {
            return 0;
        }
        self.probe
            .devices
            .iter()
            .zip(&self.contexts)
            .filter(|(device, context)| {
                matches!(context, ContextCheck::Opened { .. })
                    && device.compute_mode != Some(ComputeMode::Prohibited)
            })
            .count()
    }

    /// The exit code: 0 when at least one device is usable, 1 when none is.
    pub fn exit_code(&self) -> i32 {
        if self.usable_devices() > 0 { 0 } else { 1 }
    }

    fn find(&self) -> Vec<Finding> {
        let probe = self.probe;
        let mut findings = Vec::new();
        let mut add = |severity, text: String, hint: &str| {
            findings.push(Finding {
                severity,
                text,
                hint: hint.to_string(),
            })
        };
        match crate::settings::settings() {
            Err(errors) => {
                for error in errors {
                    add(
                        Severity::Error,
                        error.to_string(),
                        "fix or unset the variable: GPU tests stop with this error before running",
                    );
                }
            }
            Ok(settings) => {
                for unknown in &settings.unknown {
                    add(Severity::Warning, unknown.clone(), "rename or unset it");
                }
            }
        }
        if let Some(problem) = probe.driver_problem() {
            add(Severity::Error, problem.reason.clone(), &problem.hint);
        }
        if let (Ok(used), Some(other)) = (&probe.driver.library, &probe.driver.shadowed)
            && probe.driver.is_ready()
        {
            add(
                Severity::Warning,
                format!(
                    "libcuda.so ({}) and libcuda.so.1 ({}) are different files; tests load libcuda.so",
                    used.display(),
                    other.display()
                ),
                "keep one driver library on the loader path: remove the directory of the one you do not want from LD_LIBRARY_PATH",
            );
        }
        for dir in self.library_path_dirs() {
            if dir.contains("stubs") {
                add(
                    Severity::Warning,
                    format!("LD_LIBRARY_PATH contains {dir}, the CUDA toolkit's link-time stubs"),
                    "remove it: a stub libcuda found there replaces the real driver at run time (cuInit fails with CUDA_ERROR_STUB_LIBRARY)",
                );
            } else if !std::path::Path::new(dir).is_dir() {
                add(
                    Severity::Info,
                    format!("LD_LIBRARY_PATH names {dir}, which does not exist"),
                    "remove it, or install what was meant to be there",
                );
            }
        }
        if let VisibleDevices::Set { raw, invalid, .. } = probe.environment.visible_devices() {
            match (raw.trim().is_empty(), invalid) {
                (true, _) => add(
                    Severity::Warning,
                    "CUDA_VISIBLE_DEVICES is set but empty, which hides every device".to_string(),
                    "unset it to see every device, or list the devices tests may use (0,1 or GPU-...)",
                ),
                (false, Some(entry)) => add(
                    Severity::Warning,
                    format!(
                        "CUDA_VISIBLE_DEVICES=\"{raw}\": \"{entry}\" is not a device index or UUID, so the driver ignores it and everything after it"
                    ),
                    "use device indices or UUIDs such as 0,1 or GPU-... (nvidia-smi -L lists them)",
                ),
                (false, None) => add(
                    Severity::Info,
                    format!(
                        "CUDA_VISIBLE_DEVICES={raw} limits which devices CUDA shows, and renumbers them from 0"
                    ),
                    "unset it to see every device",
                ),
            }
        }
        if probe.devices.len() > 1 && probe.environment.cuda_device_order.is_none() {
            add(
                Severity::Info,
                "CUDA_DEVICE_ORDER is unset: CUDA numbers devices fastest first, which can differ from nvidia-smi's PCI order".to_string(),
                "set CUDA_DEVICE_ORDER=PCI_BUS_ID so that CUDA and nvidia-smi number devices alike",
            );
        }
        for (device, context) in probe.devices.iter().zip(&self.contexts) {
            self.device_findings(device, context, &mut add);
        }
        for error in &probe.device_errors {
            add(
                Severity::Error,
                format!(
                    "device {} could not be read: {} failed: {}",
                    error.ordinal, error.call, error.error
                ),
                error.error.hint().unwrap_or("check `nvidia-smi` for this device"),
            );
        }
        self.toolkit_findings(&mut add);
        findings
    }

    fn device_findings(
        &self,
        device: &DeviceInfo,
        context: &ContextCheck,
        add: &mut impl FnMut(Severity, String, &str),
    ) {
        match device.compute_mode {
            Some(ComputeMode::Prohibited) => add(
                Severity::Error,
                format!(
                    "{} is in compute mode Prohibited, so no process may use it",
                    device.label()
                ),
                "allow processes again with `nvidia-smi -i <index> -c DEFAULT`",
            ),
            Some(ComputeMode::ExclusiveProcess) => add(
                Severity::Info,
                format!(
                    "{} is in compute mode Exclusive_Process: one process at a time",
                    device.label()
                ),
                "tests in parallel processes (nextest) wait for each other or fail; set `nvidia-smi -c DEFAULT` to share it",
            ),
            _ => {}
        }
        match context {
            ContextCheck::Failed(error) => add(
                Severity::Error,
                format!("{}: no CUDA context could be created: {error}", device.label()),
                "check `nvidia-smi` for processes holding the device and for errors in `dmesg`",
            ),
            ContextCheck::Opened {
                memory: Some((free, total)),
            } if *total > 0 && free * 10 < *total => add(
                Severity::Warning,
                format!(
                    "{} has only {} free of {}: other processes hold its memory",
                    device.label(),
                    format_bytes(*free),
                    format_bytes(*total)
                ),
                "`nvidia-smi` lists the processes using it; tests with min_memory count total memory, not free",
            ),
            ContextCheck::Opened { .. } => {}
        }
    }

    fn toolkit_findings(&self, add: &mut impl FnMut(Severity, String, &str)) {
        let probe = self.probe;
        let driver_cuda = probe.driver.cuda_version;
        let nvrtc = &probe.toolkit().nvrtc;
        match nvrtc {
            Nvrtc::NotFound { .. } => add(
                Severity::Warning,
                format!(
                    "NVRTC could not be loaded ({}), so tests that compile kernels at run time (min_toolkit) are skipped",
                    probe.environment.describe_library_path()
                ),
                "install the CUDA toolkit's NVRTC (the cuda-nvrtc package) and add its lib64 directory to LD_LIBRARY_PATH",
            ),
            Nvrtc::NotNvrtc { library } => add(
                Severity::Warning,
                format!(
                    "{} loaded as NVRTC but does not export nvrtcVersion",
                    library.display()
                ),
                "check LD_LIBRARY_PATH for a wrong or broken libnvrtc",
            ),
            Nvrtc::VersionFailed { library, code } => add(
                Severity::Warning,
                format!("nvrtcVersion in {} failed with code {code}", library.display()),
                "reinstall the CUDA toolkit's NVRTC",
            ),
            Nvrtc::Found { library, version } => {
                if let Some(driver) = driver_cuda.filter(|d| version > d) {
                    let update = driver_table::min_driver_for(*version)
                        .map(|min| format!("update the driver to {min} or newer"))
                        .unwrap_or_else(|| "update the driver".to_string());
                    add(
                        Severity::Warning,
                        format!(
                            "NVRTC {version} ({}) is newer than the driver's CUDA {driver}: PTX it makes cannot be loaded (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)",
                            library.display()
                        ),
                        &format!(
                            "{update}, or put an NVRTC of CUDA {driver} or older first in LD_LIBRARY_PATH"
                        ),
                    );
                }
            }
        }
        if let Some(nvcc) = probe.nvcc() {
            if let (Some(nvcc_version), Some(driver)) = (nvcc.version, driver_cuda)
                && nvcc_version > driver
            {
                let min = driver_table::min_driver_for(nvcc_version)
                    .map(|m| format!(" (CUDA {nvcc_version} needs driver >= {m})"))
                    .unwrap_or_default();
                add(
                    Severity::Warning,
                    format!(
                        "nvcc {nvcc_version} ({}) builds for a newer CUDA than the driver supports ({driver}){min}",
                        nvcc.path.display()
                    ),
                    "update the driver, or build with a toolkit no newer than the driver's CUDA version",
                );
            }
            if let (Some(nvcc_version), Some(nvrtc_version)) = (nvcc.version, nvrtc.version())
                && nvcc_version != nvrtc_version
            {
                add(
                    Severity::Info,
                    format!(
                        "nvcc is CUDA {nvcc_version} but NVRTC is CUDA {nvrtc_version}: they come from different toolkits"
                    ),
                    "point PATH and LD_LIBRARY_PATH at the same CUDA installation",
                );
            }
        }
    }

    fn library_path_dirs(&self) -> Vec<&'p str> {
        self.probe
            .environment
            .ld_library_path
            .as_deref()
            .unwrap_or_default()
            .split(':')
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// The diagnosis for people.
    pub fn to_text(&self) -> String {
        let probe = self.probe;
        let mut out = String::new();
        let _ = writeln!(out, "gpu-test doctor {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "\nDriver");
        match &probe.driver.library {
            Ok(library) => {
                let _ = writeln!(
                    out,
                    "  library        {} (loaded as {})",
                    library.display(),
                    library.name
                );
            }
            Err(tried) => {
                let _ = writeln!(out, "  library        not found (tried {})", file_names(tried));
            }
        }
        let module = match &probe.kernel_module {
            Some(module) => module
                .release
                .clone()
                .unwrap_or_else(|| module.description.clone()),
            None => "not loaded (no /proc/driver/nvidia/version)".to_string(),
        };
        let _ = writeln!(out, "  kernel module  {module}");
        let cuda = match (probe.driver.cuda_version, &probe.driver.version_error) {
            (Some(version), _) => format!("{version} (the newest CUDA this driver supports)"),
            (None, Some(error)) => error.clone(),
            (None, None) => "unknown".to_string(),
        };
        let _ = writeln!(out, "  CUDA version   {cuda}");
        let init = match &probe.driver.init {
            Some(Ok(())) => "ok".to_string(),
            Some(Err(error)) => format!("failed: {error}"),
            None => "not called".to_string(),
        };
        let _ = writeln!(out, "  cuInit         {init}");

        let _ = writeln!(out, "\nDevices ({})", probe.devices.len());
        if probe.devices.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for (device, context) in probe.devices.iter().zip(&self.contexts) {
            let memory = match context {
                ContextCheck::Opened {
                    memory: Some((free, _)),
                } => {
                    format!(
                        "{} (free {})",
                        format_bytes(device.total_memory),
                        format_bytes(*free)
                    )
                }
                _ => format_bytes(device.total_memory),
            };
            let _ = writeln!(
                out,
                "  {}  {}  {} (compute {})  {}",
                device.ordinal,
                device.name,
                device.compute_capability.sm(),
                device.compute_capability,
                memory
            );
            let mut details = Vec::new();
            if let Some(sms) = device.multiprocessors {
                details.push(format!("{sms} SMs"));
            }
            if let Some(uuid) = &device.uuid {
                details.push(uuid.clone());
            }
            if let Some(bus) = &device.pci_bus_id {
                details.push(format!("PCI {bus}"));
            }
            if let Some(mode) = device.compute_mode {
                details.push(format!("compute mode {}", mode.name()));
            }
            if let ContextCheck::Failed(error) = context {
                details.push(format!("context failed: {error}"));
            }
            if !details.is_empty() {
                let _ = writeln!(out, "     {}", details.join(", "));
            }
        }

        let _ = writeln!(out, "\nToolkit");
        let nvrtc = match &probe.toolkit().nvrtc {
            Nvrtc::Found { library, version } => format!("{version} ({})", library.display()),
            Nvrtc::NotFound { tried } => format!("not found (tried {})", file_names(tried)),
            Nvrtc::NotNvrtc { library } => format!("{} is not NVRTC", library.display()),
            Nvrtc::VersionFailed { library, code } => {
                format!("{}: nvrtcVersion failed ({code})", library.display())
            }
        };
        let _ = writeln!(out, "  NVRTC          {nvrtc}");
        let nvcc = match probe.nvcc() {
            Some(nvcc) => match nvcc.version {
                Some(version) => format!("{version} ({})", nvcc.path.display()),
                None => format!("{} (version unknown)", nvcc.path.display()),
            },
            None => "not found on PATH, CUDA_HOME, CUDA_PATH or /usr/local/cuda".to_string(),
        };
        let _ = writeln!(out, "  nvcc           {nvcc}");

        let _ = writeln!(out, "\nEnvironment");
        for name in crate::probe::environment_variables() {
            let value = probe
                .environment
                .set_variables()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| format!("\"{v}\""))
                .unwrap_or_else(|| "unset".to_string());
            let _ = writeln!(out, "  {name:<22} {value}");
        }
        let nodes = probe.device_nodes();
        let nodes = if nodes.is_empty() {
            "none".to_string()
        } else {
            nodes
                .iter()
                .map(|n| {
                    let name = n
                        .path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if n.accessible {
                        name
                    } else {
                        format!("{name} (no read/write access)")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "  {:<22} {nodes}", "/dev/nvidia*");

        let _ = writeln!(out, "\nFindings");
        if self.findings.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for finding in &self.findings {
            let _ = writeln!(out, "  {:<7}  {}", finding.severity.as_str(), finding.text);
            let _ = writeln!(out, "  {:<7}  fix: {}", "", finding.hint);
        }
        let usable = self.usable_devices();
        let _ = writeln!(
            out,
            "\n{} (exit {})",
            match usable {
                0 => "No usable CUDA device: GPU tests on this machine are skipped (or fail with GPU_TEST_STRICT=1).".to_string(),
                1 => "1 usable CUDA device.".to_string(),
                n => format!("{n} usable CUDA devices."),
            },
            self.exit_code()
        );
        out
    }

    /// The diagnosis for machines.
    pub fn to_json(&self) -> Json {
        let probe = self.probe;
        let driver = &probe.driver;
        let library = match &driver.library {
            Ok(library) => Json::object()
                .with("name", library.name.as_str())
                .with("path", library.path.as_ref().map(|p| p.display().to_string())),
            Err(_) => Json::Null,
        };
        let tried: Vec<Json> = match &driver.library {
            Err(tried) => tried
                .iter()
                .map(|a| {
                    Json::object()
                        .with("name", a.name.as_str())
                        .with("error", a.error.as_str())
                })
                .collect(),
            Ok(_) => Vec::new(),
        };
        let init = match &driver.init {
            Some(Ok(())) => Json::object().with("ok", true),
            Some(Err(error)) => Json::object()
                .with("ok", false)
                .with("code", error.code)
                .with("name", error.name.clone())
                .with("message", error.message.clone()),
            None => Json::Null,
        };
        let devices: Vec<Json> = probe
            .devices
            .iter()
            .zip(&self.contexts)
            .map(|(d, context)| {
                let (context_ok, free, context_error) = match context {
                    ContextCheck::Opened { memory } => (true, memory.map(|(free, _)| free), None),
                    ContextCheck::Failed(error) => (false, None, Some(error.clone())),
                };
                Json::object()
                    .with("ordinal", d.ordinal)
                    .with("name", d.name.as_str())
                    .with("compute_capability", d.compute_capability.to_string())
                    .with("total_memory", d.total_memory)
                    .with("free_memory", free)
                    .with("multiprocessors", d.multiprocessors)
                    .with("uuid", d.uuid.clone())
                    .with("pci_bus_id", d.pci_bus_id.clone())
                    .with("compute_mode", d.compute_mode.map(ComputeMode::name))
                    .with("context_ok", context_ok)
                    .with("context_error", context_error)
            })
            .collect();
        let nvrtc = match &probe.toolkit().nvrtc {
            Nvrtc::Found { library, version } => Json::object()
                .with("found", true)
                .with("version", version.to_string())
                .with("library", library.display()),
            other => Json::object()
                .with("found", false)
                .with("detail", format!("{other:?}")),
        };
        let nvcc = probe.nvcc().map(|nvcc| {
            Json::object()
                .with("path", nvcc.path.display().to_string())
                .with("version", nvcc.version.map(|v| v.to_string()))
        });
        let mut environment = Json::object();
        for name in crate::probe::environment_variables() {
            let value = probe
                .environment
                .set_variables()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_string());
            environment = environment.with(name, value);
        }
        let nodes: Vec<Json> = probe
            .device_nodes()
            .iter()
            .map(|n| {
                Json::object()
                    .with("path", n.path.display().to_string())
                    .with("accessible", n.accessible)
            })
            .collect();
        let findings: Vec<Json> = self
            .findings
            .iter()
            .map(|f| {
                Json::object()
                    .with("severity", f.severity.as_str())
                    .with("text", f.text.as_str())
                    .with("hint", f.hint.as_str())
            })
            .collect();
        Json::object()
            .with("gpu_test_version", env!("CARGO_PKG_VERSION"))
            .with(
                "driver",
                Json::object()
                    .with("library", library)
                    .with("tried", Json::Array(tried))
                    .with(
                        "missing_symbols",
                        driver
                            .missing_symbols
                            .iter()
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>(),
                    )
                    .with(
                        "kernel_module_release",
                        probe.kernel_module.as_ref().and_then(|m| m.release.clone()),
                    )
                    .with("cuda_version", driver.cuda_version.map(|v| v.to_string()))
                    .with("init", init),
            )
            .with("devices", Json::Array(devices))
            .with("toolkit", Json::object().with("nvrtc", nvrtc).with("nvcc", nvcc))
            .with("environment", environment)
            .with("device_nodes", Json::Array(nodes))
            .with("findings", Json::Array(findings))
            .with("usable_devices", self.usable_devices())
    }
}

/// The distinct file names tried, in order: the directories searched are the loader's (or
/// LD_LIBRARY_PATH's), which the Environment section shows.
fn file_names(tried: &[crate::probe::LoadAttempt]) -> String {
    let mut names: Vec<String> = Vec::new();
    for attempt in tried {
        let name = std::path::Path::new(&attempt.name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| attempt.name.clone());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

fn check_context(probe: &Probe, device: &DeviceInfo) -> ContextCheck {
    let Some(sys) = probe.driver.ready_sys() else {
        return ContextCheck::Failed("the driver is not initialised".to_string());
    };
    let handle = match sys.device(device.ordinal as i32) {
        Ok(handle) => handle,
        Err(error) => return ContextCheck::Failed(error.to_string()),
    };
    let context = match sys.retain_primary_context(handle) {
        Ok(context) => context,
        Err(error) => return ContextCheck::Failed(error.to_string()),
    };
    let memory = match sys.set_current_context(context) {
        Ok(()) => sys.memory_info().and_then(Result::ok),
        Err(_) => None,
    };
    let _ = sys.release_primary_context(handle);
    ContextCheck::Opened { memory }
}
