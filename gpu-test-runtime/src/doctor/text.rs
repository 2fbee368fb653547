//! The diagnosis for people.

use std::fmt::Write as _;

use super::{ContextCheck, Diagnosis};
use crate::cuda::library::LoadAttempt;
use crate::probe::{Nvrtc, RECORDED};
use crate::util::format::{escape_control, format_bytes};

impl Diagnosis<'_> {
    /// The diagnosis for people.
    pub fn to_text(&self) -> String {
        let probe = self.probe;
        let mut out = String::new();
        let _ = writeln!(out, "gpu-test doctor {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "\nDriver");
        match &probe.driver.library {
            _ if probe.driver.hung.is_some() => {
                let hung = probe.driver.hung.as_ref();
                let call = hung.and_then(|h| h.call).unwrap_or("a call");
                let library = hung.and_then(|h| h.library.clone()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  library        did not answer: {call} ({library}) did not return"
                );
            }
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
        if probe.kernel_module.as_ref().and_then(|m| m.release.as_ref()).is_none()
            && let Some(release) = probe.driver_release()
        {
            // NVML is asked only where the file name tells nothing.
            let from = match probe.nvml_release {
                Some(_) => "NVML",
                None => "the library's file name",
            };
            let _ = writeln!(out, "  release        {release} (from {from})");
        }
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
                    ..
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
            if let ContextCheck::Failed(what) = context {
                details.push(what.clone());
            }
            if !details.is_empty() {
                let _ = writeln!(out, "     {}", details.join(", "));
            }
        }

        let _ = writeln!(out, "\nToolkit");
        let nvrtc = match &probe.toolkit().nvrtc {
            Nvrtc::Found { library, version } => format!("{version} ({})", library.display()),
            Nvrtc::NotFound { tried } => format!("not found (tried {})", file_names(tried)),
            Nvrtc::Unrecognised { library } => format!("{} is not NVRTC", library.display()),
            Nvrtc::VersionFailed { library, failure } => {
                format!("{}: nvrtcVersion {failure}", library.display())
            }
        };
        let _ = writeln!(out, "  NVRTC          {nvrtc}");
        let nvcc = match probe.nvcc() {
            Some(nvcc) => match nvcc.version {
                Some(version) => format!("{version} ({})", escape_control(&nvcc.path.display().to_string())),
                None => format!(
                    "{} (version unknown: {})",
                    escape_control(&nvcc.path.display().to_string()),
                    nvcc.version_error.as_deref().unwrap_or("no answer")
                ),
            },
            None => "not found on PATH, CUDA_HOME, CUDA_PATH or /usr/local/cuda".to_string(),
        };
        let _ = writeln!(out, "  nvcc           {nvcc}");

        let _ = writeln!(out, "\nEnvironment");
        let _ = writeln!(out, "  {:<22} {}", "platform", probe.platform().describe());
        for name in RECORDED {
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
        if usable > 0 {
            let _ = writeln!(
                out,
                "\nnextest: give the `gpu` test group max-threads = {} ({usable} usable device(s) x \
                 GPU_TEST_TESTS_PER_DEVICE), so that GPU tests queue in nextest rather than in device leases",
                self.gpu_test_slots()
            );
        }
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
}

/// The distinct file names tried, in order: the directories searched are the loader's (or
/// LD_LIBRARY_PATH's), which the Environment section shows.
fn file_names(tried: &[LoadAttempt]) -> String {
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
