//! The doctor: this machine's CUDA setup for people (`text`) and as JSON (`json`), each finding
//! with a fix.
//!
//! Run it with `cargo run -p gpu-test-runtime --bin gpu-doctor [-- --json]`. It reads the same
//! probe the tests use, then also opens a context on each device to read its free memory, which
//! the tests' probe does not do.

mod json;
mod text;

use crate::cuda::guard::{self, guarded};
use crate::decide::{driver_table, reasons};
use crate::probe::{ComputeMode, DeviceInfo, Nvrtc, Probe, VisibleDevices};
use crate::settings::settings;
use crate::util::format::{escape_control, format_bytes};
use crate::util::stderr::write_stderr;
use std::io::Write as _;


/// The directories NVIDIA's CUDA container images put on `LD_LIBRARY_PATH` for the container
/// runtime to mount the driver into: where the runtime put it elsewhere they do not exist, and
/// that is the image's doing, not a fault.
const NVIDIA_IMAGE_LIBRARY_DIRS: [&str; 2] = ["/usr/local/nvidia/lib", "/usr/local/nvidia/lib64"];

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
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
pub(crate) struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// What was found.
    pub text: String,
    /// What to do about it.
    pub hint: String,
}

/// What opening a context on a device showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextCheck {
    /// A context opened; free and total memory in bytes, when the driver reported them.
    Opened {
        /// `(free, total)`.
        memory: Option<(u64, u64)>,
        /// Why the memory could not be read, when asking failed.
        memory_error: Option<String>,
    },
    /// The device cannot run work: what failed (`no CUDA context could be created: ...`).
    Failed(String),
}

/// The devices of `probe` a test could use, given the context check of each: none where the
/// driver is not ready or older than gpu-test runs on.
fn count_usable(probe: &Probe, contexts: &[ContextCheck]) -> usize {
    if !probe.driver.is_ready() || reasons::older_than_gpu_test_runs_on(probe).is_some() {
        return 0;
    }
    probe
        .devices
        .iter()
        .zip(contexts)
        .filter(|(device, context)| {
            matches!(context, ContextCheck::Opened { .. }) && device.compute_mode != Some(ComputeMode::Prohibited)
        })
        .count()
}

/// The doctor's diagnosis of this machine: what the probe found, a context opened on each
/// device, and every finding with its fix. The `gpu-doctor` binary prints it.
///
/// ```no_run
/// let diagnosis = gpu_test_runtime::Diagnosis::new(gpu_test_runtime::probe());
/// diagnosis.print_and_exit(false, "my-doctor");
/// ```
#[derive(Debug)]
pub struct Diagnosis<'p> {
    probe: &'p Probe,
    /// Per device (same order as `probe.devices`): the context check.
    contexts: Vec<ContextCheck>,
    /// Everything noticed, most serious first.
    findings: Vec<Finding>,
    /// How many devices a test could use.
    usable: usize,
}

impl<'p> Diagnosis<'p> {
    /// Diagnoses `probe`, opening a context on each device to check it is usable.
    pub fn new(probe: &'static Probe) -> Diagnosis<'static> {
        let contexts = check_contexts(probe);
        let usable = count_usable(probe, &contexts);
        let mut diagnosis = Diagnosis {
            probe,
            contexts,
            findings: Vec::new(),
            usable,
        };
        diagnosis.findings = diagnosis.find();
        diagnosis.findings.sort_by_key(|f| f.severity);
        diagnosis
    }

    /// The devices a test could use: the driver is ready, a context opened, and the device is not
    /// in compute mode Prohibited.
    pub fn usable_devices(&self) -> usize {
        self.usable
    }

    /// How many GPU tests this machine runs at once: usable devices × `GPU_TEST_TESTS_PER_DEVICE`.
    /// A nextest `gpu` test group with this `max-threads` queues GPU tests in nextest, where they
    /// do not count against its slow-test timeout, instead of in gpu-test's device leases.
    pub fn gpu_test_slots(&self) -> usize {
        let per_device = settings().map(|s| s.tests_per_device).unwrap_or(1);
        self.usable_devices() * per_device as usize
    }

    /// Ends the process with [`exit_code`](Self::exit_code), as the `gpu-doctor` binary does.
    /// When the driver did not answer, the process ends past the C library's exit handlers: the
    /// driver's own handlers could wait forever on the call that never returned.
    pub fn exit(&self) -> ! {
        guard::exit(self.exit_code())
    }

    /// Prints the diagnosis on standard output, as text or as JSON, and ends the process as
    /// [`exit`](Self::exit) does. A reader that stopped reading (`| head`) ends the output
    /// quietly; any other failure to write it (a full disk) is said on standard error, after
    /// `program`, and the status is 2, so that a saved diagnosis is never silently cut short.
    pub fn print_and_exit(&self, json: bool, program: &str) -> ! {
        let text = if json { self.to_json() } else { self.to_text() };
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                write_stderr(&format!("{program}: error: cannot write to standard output: {error}\n"));
                guard::exit(2)
            }
            _ => self.exit(),
        }
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
        match settings() {
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
        if let Some(problem) =
            reasons::driver_problem(probe).or_else(|| reasons::older_than_gpu_test_runs_on(probe))
        {
            add(Severity::Error, problem.reason.clone(), &problem.hint);
        }
        if let (Ok(used), Some(other)) = (&probe.driver.library, &probe.driver.shadowed)
            && probe.driver.is_ready()
        {
            let hint = "keep one driver library on the loader path: remove the directory of the one you do not want \
                        from LD_LIBRARY_PATH";
            match (used.release_in_file_name(), other.release_in_file_name()) {
                // Containers often mount the same driver twice; only different releases conflict.
                (Some(a), Some(b)) if a == b => add(
                    Severity::Info,
                    format!(
                        "libcuda.so ({}) and libcuda.so.1 ({}) are two copies of driver {a}; tests load libcuda.so",
                        used.display(),
                        other.display()
                    ),
                    hint,
                ),
                _ => add(
                    Severity::Warning,
                    format!(
                        "libcuda.so ({}) and libcuda.so.1 ({}) are different files; tests load libcuda.so",
                        used.display(),
                        other.display()
                    ),
                    hint,
                ),
            }
        }
        if probe.environment.library_path_has_empty_element() {
            add(
                Severity::Warning,
                format!(
                    "LD_LIBRARY_PATH=\"{}\" has an empty element (a leading, trailing or doubled ':'), which the \
                     loader reads as the current directory: a libcuda.so.1 in whatever directory a test runs in \
                     would be loaded",
                    escape_control(probe.environment.ld_library_path.as_deref().unwrap_or_default())
                ),
                "remove the empty element (write LD_LIBRARY_PATH=/a:/b, not /a::/b or /a:)",
            );
        }
        for dir in probe.environment.library_path_dirs() {
            let is_stubs = std::path::Path::new(dir).components().any(|part| part.as_os_str() == "stubs");
            let dir = &escape_control(dir);
            if is_stubs {
                add(
                    Severity::Warning,
                    format!("LD_LIBRARY_PATH contains {dir}, the CUDA toolkit's link-time stubs"),
                    "remove it: a stub libcuda found there replaces the real driver at run time (cuInit fails with CUDA_ERROR_STUB_LIBRARY)",
                );
            } else if !NVIDIA_IMAGE_LIBRARY_DIRS.contains(&dir.as_str()) && !std::path::Path::new(dir).is_dir() {
                add(
                    Severity::Info,
                    format!("LD_LIBRARY_PATH names {dir}, which does not exist"),
                    "remove it, or install what was meant to be there",
                );
            }
        }
        let visible = probe.environment.visible_devices();
        if let VisibleDevices::Set {
            raw,
            duplicate: Some(entry),
            ..
        } = &visible
        {
            let what = match probe.devices.len() {
                0 => "with which the driver shows no device at all",
                _ => "and one GPU cannot serve as two",
            };
            add(
                Severity::Warning,
                format!("CUDA_VISIBLE_DEVICES={raw} lists {entry} twice, {what}"),
                "list each device once (nvidia-smi -L lists them)",
            );
        }
        if let VisibleDevices::Set {
            raw,
            cut_short: Some((entry, read)),
            ..
        } = &visible
        {
            add(
                Severity::Warning,
                format!(
                    "CUDA_VISIBLE_DEVICES=\"{raw}\": the driver reads an entry's leading number, so \"{entry}\" is {read}"
                ),
                "separate devices with commas (such as 0,1), each a number or a UUID alone",
            );
        }
        if let VisibleDevices::Set { raw, invalid, .. } = &visible {
            match (raw.trim().is_empty(), invalid) {
                (true, _) => add(
                    Severity::Warning,
                    "CUDA_VISIBLE_DEVICES is set but empty, which hides every device".to_string(),
                    "unset it to see every device, or list the devices tests may use (0,1 or GPU-...)",
                ),
                (false, Some(entry)) => add(
                    Severity::Warning,
                    format!(
                        "CUDA_VISIBLE_DEVICES=\"{raw}\": \"{entry}\" {}, so the driver ignores it and everything after it",
                        visible.why_invalid()
                    ),
                    "use device indices or UUIDs such as 0,1 or GPU-... (nvidia-smi -L lists them)",
                ),
                // An entry listed twice: said above, and no device is shown to renumber.
                (false, None) if visible.hides_every_device() => {}
                // Entries that match no device (a UUID no GPU has, an index past the last): the
                // driver stops at the first, though some devices are still shown.
                (false, None) if !probe.devices.is_empty() => {
                    let counted = probe.counted_devices();
                    let visible = probe.environment.visible_devices();
                    let listed = match &visible {
                        VisibleDevices::Set { valid, .. } => valid.len(),
                        VisibleDevices::Unset => 0,
                    };
                    match visible.explain_shortfall(listed, counted) {
                        Some(why) if counted < listed => add(
                            Severity::Warning,
                            why,
                            "list only devices this machine has (nvidia-smi -L lists them), or unset it",
                        ),
                        _ => add(
                            Severity::Info,
                            format!(
                                "CUDA_VISIBLE_DEVICES={raw} limits which devices CUDA shows, and renumbers them from 0"
                            ),
                            "unset it to see every device",
                        ),
                    }
                }
                (false, None) => add(
                    Severity::Info,
                    format!(
                        "CUDA_VISIBLE_DEVICES={raw} limits which devices CUDA shows, and renumbers them from 0"
                    ),
                    "unset it to see every device",
                ),
            }
        }
        // A GPU in MIG mode shows in CUDA only as the MIG instance a process selects: on a machine
        // whose other GPUs show, it is missing without a word.
        if !probe.devices.is_empty() && probe.kernel_module.is_some() {
            for gpu in probe.gpus_in_mig_mode() {
                add(
                    Severity::Info,
                    format!(
                        "GPU {gpu} is in MIG mode (nvidia-smi): CUDA shows it only as a MIG instance selected with \
                         CUDA_VISIBLE_DEVICES=MIG-<uuid>, not as a whole device"
                    ),
                    "select an instance (`nvidia-smi -L` lists them), or turn MIG mode off (`sudo nvidia-smi -i <gpu> \
                     -mig 0`)",
                );
            }
        }
        // Empty is unset, as for every variable.
        match probe.environment.cuda_device_order.as_deref().filter(|order| !order.is_empty()) {
            None if probe.devices.len() > 1 => add(
                Severity::Info,
                "CUDA_DEVICE_ORDER is unset: CUDA numbers devices fastest first, which can differ from nvidia-smi's PCI order".to_string(),
                "set CUDA_DEVICE_ORDER=PCI_BUS_ID so that CUDA and nvidia-smi number devices alike",
            ),
            Some(order) if order != "PCI_BUS_ID" && order != "FASTEST_FIRST" => add(
                Severity::Warning,
                format!(
                    "CUDA_DEVICE_ORDER=\"{}\" is neither of the values CUDA documents (FASTEST_FIRST, PCI_BUS_ID): \
                     the driver need not number devices in PCI order",
                    escape_control(order)
                ),
                "set CUDA_DEVICE_ORDER=PCI_BUS_ID (in capitals) for nvidia-smi's order, or unset it",
            ),
            _ => {}
        }
        for (device, context) in probe.devices.iter().zip(&self.contexts) {
            self.device_findings(device, context, &mut add);
        }
        if let Some(reported) = probe.reported_device_count {
            add(
                Severity::Error,
                reasons::implausible_device_count(reported),
                "the driver is not answering sensibly: check `nvidia-smi`, and reinstall or update the driver",
            );
        }
        let hint = probe
            .device_errors
            .first()
            .and_then(|error| error.error.hint())
            .unwrap_or("check `nvidia-smi` for these devices");
        for line in crate::probe::describe_errors(&probe.device_errors) {
            add(Severity::Error, line, hint);
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
            Some(ComputeMode::Prohibited) => {
                let (fault, hint) = reasons::compute_mode_prohibited(device);
                add(Severity::Error, format!("{} {fault}", device.label()), &hint);
            }
            Some(ComputeMode::ExclusiveProcess) => add(
                Severity::Info,
                format!(
                    "{} is in compute mode Exclusive_Process: one process at a time",
                    device.label()
                ),
                &format!(
                    "tests in parallel processes (nextest) wait for each other or fail; to share it, as root: \
                     `nvidia-smi -i {} -c DEFAULT`",
                    device.nvidia_smi_id()
                ),
            ),
            _ => {}
        }
        match context {
            ContextCheck::Failed(what) => add(
                Severity::Error,
                format!("{}: {what}", device.label()),
                "check `nvidia-smi` for processes holding the device and for errors in `dmesg`",
            ),
            ContextCheck::Opened {
                memory_error: Some(error),
                ..
            } => add(
                Severity::Warning,
                format!("{}: its free memory could not be read: {error}", device.label()),
                "tests that declare memory, need free memory or check for leaks fail on it; check `nvidia-smi` \
                 and `dmesg` for errors on the device",
            ),
            ContextCheck::Opened {
                memory: Some((free, total)),
                ..
            } if *total > 0 && *free < *total / 10 => add(
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
            Nvrtc::NotFound { tried } => {
                let (found, hint) = reasons::nvrtc_found_elsewhere(probe, tried);
                add(
                    Severity::Warning,
                    format!(
                        "NVRTC could not be loaded ({}), so tests that compile kernels at run time (min_toolkit) are \
                         skipped{found}",
                        probe.environment.describe_library_path()
                    ),
                    hint.as_deref().unwrap_or(
                        "install the CUDA toolkit's NVRTC (the cuda-nvrtc package) and add its lib64 directory to \
                         LD_LIBRARY_PATH",
                    ),
                )
            }
            Nvrtc::Unrecognised { library } => add(
                Severity::Warning,
                format!(
                    "{} loaded as NVRTC but does not export nvrtcVersion",
                    library.display()
                ),
                "check LD_LIBRARY_PATH for a wrong or broken libnvrtc",
            ),
            Nvrtc::VersionFailed { library, failure } => add(
                Severity::Warning,
                format!("nvrtcVersion in {} {failure}", library.display()),
                "reinstall the CUDA toolkit's NVRTC",
            ),
            Nvrtc::Found { library, version } => {
                let toolkit = probe.toolkit();
                if toolkit.outside_loader_path {
                    let file = escape_control(&library.display());
                    // The builtins have a warning of their own, below.
                    let passed_over: String = toolkit
                        .passed_over
                        .iter()
                        .filter(|p| !p.is_builtins())
                        .map(|p| {
                            format!(
                                "; passed over {}: {}",
                                escape_control(&p.path.display().to_string()),
                                escape_control(&p.why)
                            )
                        })
                        .collect();
                    add(
                        Severity::Info,
                        format!(
                            "NVRTC ({file}) is not on the loader's path: gpu-test loads it by its full path for tests \
                             that declare min_toolkit, and cudarc then finds it as {}; tests that do not declare \
                             min_toolkit find it only after one that does in the same process, and programs outside \
                             gpu-test do not find it{passed_over}",
                            library.name
                        ),
                        &reasons::nvrtc_loader_path_fix(probe, library),
                    );
                    if let Some(builtins) = toolkit.missing_builtins() {
                        add(
                            Severity::Warning,
                            format!(
                                "NVRTC's builtins could not be loaded with it ({}: {}), so compiling a kernel would \
                                 fail (NVRTC_ERROR_BUILTIN_OPERATION_FAILURE): min_toolkit tests are skipped",
                                escape_control(&builtins.path.display().to_string()),
                                escape_control(&builtins.why)
                            ),
                            &reasons::passed_over_fix(probe, builtins),
                        );
                    }
                }
                if let Some(driver) = driver_cuda.filter(|d| version > d) {
                    let reason = reasons::nvrtc_newer_than_driver(probe, library, *version, driver);
                    add(Severity::Warning, reason.reason, &reason.hint);
                }
            }
        }
        if let Some(nvcc) = probe.nvcc()
            && let Some(error) = &nvcc.version_error
        {
            add(
                Severity::Warning,
                format!("{}: {error}", nvcc.path.display()),
                "check that this nvcc runs (`nvcc --version`), or take its directory off PATH",
            );
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
}

/// A context check on each device, under the probe's time limit: a driver that stops answering
/// fails every check with that, and is not called again.
fn check_contexts(probe: &'static Probe) -> Vec<ContextCheck> {
    let library = match &probe.driver.library {
        Ok(library) => library.display(),
        Err(_) => String::new(),
    };
    let checked = guarded(crate::settings::probe_timeout(), move |calls| {
        calls.set_library(&library);
        probe
            .devices
            .iter()
            .map(|device| check_context(probe, device))
            .collect()
    });
    checked.unwrap_or_else(|hung| {
        let reason = reasons::driver_hung(&hung).reason;
        vec![ContextCheck::Failed(format!("no CUDA context could be created: {reason}")); probe.devices.len()]
    })
}

/// Opens the device's primary context and makes it current, as a test's setup does (a device
/// where either fails, with a sticky or ECC error say, runs no test), and reads its memory.
fn check_context(probe: &Probe, device: &DeviceInfo) -> ContextCheck {
    let not_created = |error: String| ContextCheck::Failed(format!("no CUDA context could be created: {error}"));
    let Some(sys) = probe.driver.ready_sys() else {
        return not_created("the driver is not initialised".to_string());
    };
    let handle = match sys.device(device.ordinal as i32) {
        Ok(handle) => handle,
        Err(error) => return not_created(error.to_string()),
    };
    let context = match sys.retain_primary_context(handle) {
        Ok(context) => context,
        Err(error) => return not_created(error.to_string()),
    };
    let checked = match sys.set_current_context(context) {
        Err(error) => ContextCheck::Failed(format!("its CUDA context could not be made current: {error}")),
        // Only tests that declare memory or check for leaks read it: a device whose memory
        // cannot be read still runs the others.
        Ok(()) => match sys.memory_info() {
            Some(Err(error)) => ContextCheck::Opened {
                memory: None,
                memory_error: Some(error.to_string()),
            },
            Some(Ok(memory)) => ContextCheck::Opened {
                memory: Some(memory),
                memory_error: None,
            },
            // A driver without cuMemGetInfo_v2: the context is fine, the memory untold.
            None => ContextCheck::Opened {
                memory: None,
                memory_error: None,
            },
        },
    };
    let _ = sys.release_primary_context(handle);
    checked
}
