//! Executing a test body on its devices: leasing them, opening a context and stream on each
//! ([`Gpu`]), running the body (with its deadline), checking the devices afterwards, and
//! collecting its GPU timings. Nothing here prints: the caller reports what came back.

pub(crate) mod body;
pub(crate) mod faults;
pub(crate) mod gpu;
pub(crate) mod lease;
pub(crate) mod timing;

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::probe::{DeviceInfo, Probe};
use crate::settings::Settings;
use crate::util::format::{format_bytes, format_duration, panic_message};
use body::{BodyFailure, Stage, TestBody, run_body};
use faults::Blocked;
use gpu::{Gpu, GpuDevice};
use crate::cuda::error::CudaError;
use lease::{Lease, MemoryDemand, MemoryUnread, WaitHooks, Waiting};
use timing::{Sample, Timing, summarise};

/// A test body and what executing it needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Body<'a> {
    /// The test's name, for messages and leases.
    pub name: &'a str,
    /// The body.
    pub function: TestBody,
    /// How many devices it gets.
    pub devices: usize,
    /// Its `timeout`, if it has one.
    pub timeout: Option<Duration>,
    /// Its `leak_check` key: `None` follows `GPU_TEST_LEAK_CHECK`.
    pub leak_check: Option<bool>,
    /// Its `memory` and `min_free_memory` keys, for admission to a device.
    pub memory: MemoryDemand,
}

/// A test that ran: how it ended, how long it took, on which devices, and its GPU timings.
#[derive(Debug)]
pub(crate) struct Execution {
    /// `Ok` when the body succeeded.
    pub outcome: Result<(), BodyFailure>,
    /// From leasing the devices to the body's end.
    pub duration: Duration,
    /// The devices the body was given.
    pub devices: Vec<DeviceInfo>,
    /// The regions the body timed with `Gpu::time`.
    pub timings: Vec<Timing>,
}

impl Execution {
    fn failed(started: Instant, failure: BodyFailure) -> Execution {
        Execution {
            outcome: Err(failure),
            duration: started.elapsed(),
            devices: Vec::new(),
            timings: Vec::new(),
        }
    }
}

impl BodyFailure {
    /// A one-line description, after the test's name.
    pub(crate) fn describe(&self) -> String {
        // A failure before the hold-up comes first: it is the test's own.
        if let BodyFailure::TimedOut {
            failed: Some(failed),
            limit,
            stage,
            set_by,
            devices,
        } = self
        {
            let limit = match devices {
                Some(_) => format!("{} (GPU_TEST_PROBE_TIMEOUT)", format_duration(*limit)),
                None => timeout_text(*limit, *set_by),
            };
            return format!(
                "{failed}; after that, it was still {} when its limit of {limit} ran out (the CUDA driver had \
                 not returned), and was abandoned; a GPU that does not finish its work may be hung (check `nvidia-smi`, and the kernel \
                 log for Xid errors: `sudo dmesg | grep -i xid`), and later tests in this process cannot use its \
                 devices{}",
                stage.doing(),
                devices.as_ref().map(|devices| format!(" ({devices})")).unwrap_or_default()
            );
        }
        match self {
            BodyFailure::Setup(message) => message.clone(),
            BodyFailure::Returned(error) => format!("returned an error: {error}"),
            BodyFailure::Panicked(payload) => format!("panicked: {}", panic_message(&**payload)),
            BodyFailure::TimedOut {
                limit,
                stage: Stage::Body,
                set_by,
                ..
            } => format!(
                "did not finish within its timeout of {}: it was still running its body (its own code, or a \
                 driver call the body made), and was abandoned; its thread may still be using the GPU, so later \
                 tests in this process can be affected (check `nvidia-smi` for the GPU's load, and the kernel \
                 log for Xid errors: `sudo dmesg | grep -i xid`)",
                timeout_text(*limit, *set_by)
            ),
            // Before the body (its setup, or the release after a setup that failed): the
            // probe's limit.
            BodyFailure::TimedOut {
                limit,
                stage,
                devices: Some(devices),
                ..
            } => format!(
                "could not start: it was still {} after {} (GPU_TEST_PROBE_TIMEOUT; the CUDA driver had not \
                 returned), and was abandoned; a GPU that does not answer may be hung (check `nvidia-smi`, and \
                 the kernel log for Xid errors: `sudo dmesg | grep -i xid`), and gpu-test calls into the driver \
                 no more in this process, whose later tests cannot use its devices ({devices}) or any other",
                stage.doing(),
                format_duration(*limit),
            ),
            BodyFailure::TimedOut {
                limit, stage, set_by, ..
            } => format!(
                "did not finish within its timeout of {}: it was still {} (the CUDA driver had not returned), \
                 and was abandoned; a GPU that does not finish its work may be hung (check `nvidia-smi`, and \
                 the kernel log for Xid errors: `sudo dmesg | grep -i xid`), and later tests in this process \
                 cannot use its devices",
                timeout_text(*limit, *set_by),
                stage.doing()
            ),
            BodyFailure::Cuda(message) => message.clone(),
        }
    }
}

/// `30s`, or `30s (GPU_TEST_TIMEOUT)` for a timeout a variable gave.
fn timeout_text(limit: Duration, set_by: Option<&str>) -> String {
    match set_by {
        Some(variable) => format!("{} ({variable})", format_duration(limit)),
        None => format_duration(limit),
    }
}

/// What the caller of [`execute`] hears of a test's way to its devices, to record the test as it
/// goes: a process may end (a crash in the driver, a signal, nextest's `terminate-after`) at any
/// point from the first call into the driver or the first pause on.
pub(crate) struct Watch<'a> {
    /// Once, before the first thing that can end the process or take long before the leases are
    /// held: asking the driver for a device's free memory, or pausing while the devices are held.
    pub before_leasing: &'a dyn Fn(),
    /// Once, when the wait for leases gets long.
    pub waiting: &'a dyn Fn(&Waiting),
    /// Once, with the devices the test runs on, before any context is opened on them: as soon
    /// as they are known, which is before the leases are taken where the test can have no
    /// others (as many suitable devices as it needs), else once it holds them.
    pub devices: &'a dyn Fn(&[DeviceInfo]),
}

/// Leases devices among `suitable` (ordinals that meet the test's requirements), opens them,
/// runs `body`, and checks the devices afterwards, telling `watch` how far it got.
///
/// A test with a `timeout` runs its work on its devices on a thread of its own, bounded at every
/// stage: the driver may not return from opening a context on a hung GPU, or from waiting for a
/// kernel that never ends. The `timeout` counts from the body on, through waiting for what it
/// launched; what comes before (opening contexts, whose first creation on a cold GPU takes time of
/// its own) has the probe's limit. Past either, the test is abandoned where it is, with its
/// leases, and its devices are kept from later tests in this process.
pub(crate) fn execute(
    body: Body<'_>,
    probe: &'static Probe,
    suitable: &[usize],
    settings: &Settings,
    watch: &Watch<'_>,
) -> Execution {
    let started = Instant::now();
    let before_leasing_told = std::cell::Cell::new(false);
    let before_leasing = || {
        if !before_leasing_told.replace(true) {
            (watch.before_leasing)();
        }
    };
    let candidates: Vec<&DeviceInfo> = suitable
        .iter()
        .filter_map(|ordinal| probe.devices.iter().find(|d| d.ordinal == *ordinal))
        .collect();
    // Read under the probe's limit: leases are taken before any limit of the test's own runs, and
    // a GPU wedged since the probe may not answer.
    let free_memory = |device: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> {
        before_leasing();
        let ordinal = device.ordinal as i32;
        let library = probe.driver.library.as_ref().map(|l| l.display()).unwrap_or_default();
        let read = crate::cuda::guard::guarded(crate::settings::probe_timeout(), move |calls| {
            calls.set_library(&library);
            probe.driver.ready_sys().map(|sys| sys.device_memory(ordinal))
        });
        match read {
            Ok(None) => Ok(None),
            Ok(Some(Ok(memory))) => Ok(memory.map(|(free, _)| free)),
            Ok(Some(Err(failed))) if failed.error.is_for_want_of_room() => Err(MemoryUnread::NoRoom(failed.to_string())),
            Ok(Some(Err(failed))) => Err(MemoryUnread::Failed(failed.to_string())),
            Err(hung) => {
                let reason = format!(
                    "{} (asked for the free memory of {} for {})",
                    crate::decide::reasons::driver_hung(&hung).reason,
                    device.label(),
                    body.name
                );
                faults::abandon(&probe.devices, Blocked::DriverHung { reason: reason.clone() });
                Err(MemoryUnread::Failed(reason))
            }
        }
    };
    let leak_check = body.leak_check.unwrap_or(settings.leak_check);
    if leak_check && settings.tests_per_device > 1 {
        let message = format!(
            "cannot be checked for leaks: device memory is measured device-wide, so the check needs the device \
             to itself, and GPU_TEST_TESTS_PER_DEVICE={} lets other tests share it; set it to 1 for leak-checked \
             runs",
            settings.tests_per_device
        );
        return Execution::failed(started, BodyFailure::Setup(message));
    }
    // Told before the lease files are locked: what it is told may take a while, and the devices
    // would stay locked meanwhile. A test with no choice of devices is told them at once, and
    // needs no word before: what comes later cannot end its process sooner.
    let devices_known = candidates.len() == body.devices;
    if devices_known {
        before_leasing_told.set(true);
        (watch.devices)(&candidates.iter().map(|device| (*device).clone()).collect::<Vec<_>>());
    } else if !body.memory.is_empty() {
        before_leasing();
    }
    let leases = match lease::acquire(
        body.name,
        &candidates,
        body.devices,
        settings,
        body.memory,
        &free_memory,
        &WaitHooks {
            pausing: &before_leasing,
            waiting: watch.waiting,
        },
    ) {
        Ok(leases) => leases,
        Err(message) => return Execution::failed(started, BodyFailure::Setup(message)),
    };
    if !devices_known {
        (watch.devices)(&leases.iter().map(|lease| lease.device.clone()).collect::<Vec<_>>());
    }
    let work = OnDevices {
        test: body.name.to_string(),
        function: body.function,
        leak_check,
        progress: Progress::default(),
        samples: Arc::new(Mutex::new(Vec::new())),
    };
    // The test's own `timeout` key, else GPU_TEST_TIMEOUT's.
    let timeout = match (body.timeout, settings.timeout) {
        (Some(limit), _) => Some((limit, None)),
        (None, Some(limit)) => Some((limit, Some("GPU_TEST_TIMEOUT"))),
        (None, None) => None,
    };
    let run = match timeout {
        None => work.run(probe, leases),
        Some((limit, set_by)) => within(
            Limits {
                setup: crate::settings::probe_timeout(),
                body: limit,
                body_set_by: set_by,
            },
            work,
            probe,
            leases,
        ),
    };
    Execution {
        outcome: run.outcome,
        duration: started.elapsed(),
        devices: run.devices,
        timings: run.timings,
    }
}

/// What a test's work on its devices came to.
struct DevicesRun {
    outcome: Result<(), BodyFailure>,
    /// The devices its body ran on: none where it failed before its body (no context, a setup
    /// that outlived the probe's limit, which names them in its failure instead).
    devices: Vec<DeviceInfo>,
    timings: Vec<Timing>,
}

impl DevicesRun {
    /// Failed before the body, for `failure`.
    fn failed(failure: BodyFailure) -> DevicesRun {
        DevicesRun {
            outcome: Err(failure),
            devices: Vec::new(),
            timings: Vec::new(),
        }
    }
}

/// The stage a test's work on its devices has reached, and when its body started, shared with
/// the thread that waits for it.
#[derive(Clone, Default)]
struct Progress(Arc<Mutex<Reached>>);

#[derive(Default)]
struct Reached {
    stage: Stage,
    body_started: Option<Instant>,
    /// How the test had failed, where it had, before its contexts were released: a release that
    /// does not return must not take the failure with it.
    failed: Option<String>,
}

impl Progress {
    fn enter(&self, stage: Stage) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        now.stage = stage;
        if stage == Stage::Body {
            now.body_started = Some(Instant::now());
        }
    }

    fn now(&self) -> (Stage, Option<Instant>, Option<String>) {
        let now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (now.stage, now.body_started, now.failed.clone())
    }

    /// Enters [`Stage::Releasing`], with how the test failed, if it did.
    fn release(&self, failed: Option<String>) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        now.stage = Stage::Releasing;
        now.failed = failed;
    }

}

/// A test's work on its leased devices: open them, check them, run the body, check them again.
struct OnDevices {
    test: String,
    function: TestBody,
    leak_check: bool,
    progress: Progress,
    /// The regions the body timed, kept here so that a test abandoned past its limit still
    /// reports those it finished.
    samples: Arc<Mutex<Vec<Sample>>>,
}

/// How long a test's work on its devices may take: `setup` until the body starts, `body` from
/// then on (set by the variable `body_set_by`, where the test's own key did not set it).
#[derive(Debug, Clone, Copy)]
struct Limits {
    setup: Duration,
    body: Duration,
    body_set_by: Option<&'static str>,
}

/// The stack of the thread a test's body runs on when it has a timeout: as large as the main
/// thread's usual 8 MiB, where nextest runs each test's body without one (a thread Rust starts
/// has 2 MiB), or `RUST_MIN_STACK` where that asks for more.
fn body_stack_size() -> usize {
    const MAIN_THREAD_STACK: usize = 8 << 20;
    crate::settings::rust_min_stack().map_or(MAIN_THREAD_STACK, |asked| asked.max(MAIN_THREAD_STACK))
}

/// Runs `work` on a thread of its own and waits for it within `limits`; past them, the thread is
/// left where it is (it may be inside the driver, which nothing can interrupt) with its leases,
/// and the devices are marked abandoned.
fn within(limits: Limits, work: OnDevices, probe: &'static Probe, leases: Vec<Lease>) -> DevicesRun {
    let leased: Vec<DeviceInfo> = leases.iter().map(|lease| lease.device.clone()).collect();
    let test = work.test.clone();
    let progress = work.progress.clone();
    let samples = work.samples.clone();
    // Shared so that, when no thread can be started, the work can still be run here.
    let handed = Arc::new(Mutex::new(Some((work, leases))));
    let for_worker = handed.clone();
    let (done, finished) = mpsc::channel();
    let started = Instant::now();
    let worker = std::thread::Builder::new()
        .name(test.clone())
        .stack_size(body_stack_size());
    let spawned = worker.spawn(move || {
        let taken = for_worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((work, leases)) = taken {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run(probe, leases)));
            let _ = done.send(run);
        }
    });
    if spawned.is_err() {
        // Without a thread of its own (a process limit, say) the work runs here, without the limit,
        // rather than failing a test that may well pass.
        let taken = handed.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((work, leases)) = taken {
            return work.run(probe, leases);
        }
    }
    loop {
        // The limit that applies depends on the stage, which the worker moves on.
        // One reading: a failure is recorded together with the stage after it.
        let (stage, body_started, failed) = progress.now();
        let (limit, from) = match body_started {
            Some(at) => (limits.body, at),
            None => (limits.setup, started),
        };
        // A limit past what the clock can count (`GPU_TEST_PROBE_TIMEOUT=1000000y`) never ends.
        let left = from
            .checked_add(limit)
            .map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            // A result sent as the limit ran out still counts.
            match finished.try_recv() {
                Ok(Ok(run)) => return run,
                Ok(Err(payload)) => std::panic::resume_unwind(payload),
                Err(_) => {}
            }
            // The thread still holds the Gpu, and with it the leases.
            match body_started {
                // Opening a context, the thread is in gpu-test's own driver calls, which may hold
                // the driver's locks: as after any call that did not return, no device is used
                // again, and the driver is called no more. (A later stage may only be waiting for
                // work another test launched on a shared context.)
                None if stage == Stage::Opening => {
                    crate::cuda::guard::mark_hung(limit);
                    let reason = format!(
                        "the CUDA driver did not return while {test} was {} (within {}, GPU_TEST_PROBE_TIMEOUT), \
                         and gpu-test calls into it no more in this process",
                        stage.doing(),
                        format_duration(limit)
                    );
                    faults::abandon(&probe.devices, Blocked::DriverHung { reason });
                }
                _ => faults::abandon(&leased, Blocked::Abandoned { test: test.clone() }),
            }
            return DevicesRun {
                outcome: Err(BodyFailure::TimedOut {
                    limit,
                    stage,
                    set_by: body_started.and(limits.body_set_by),
                    devices: body_started.is_none().then(|| {
                        let labels: Vec<String> = leased.iter().map(DeviceInfo::label).collect();
                        labels.join(", ")
                    }),
                    failed,
                }),
                devices: if body_started.is_some() { leased } else { Vec::new() },
                timings: summarise(&samples.lock().unwrap_or_else(|p| p.into_inner())),
            };
        }
        match finished.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(Ok(run)) => return run,
            // A panic outside the body is gpu-test's own bug: it goes on as one.
            Ok(Err(payload)) => std::panic::resume_unwind(payload),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return DevicesRun {
                    outcome: Err(BodyFailure::Setup(
                        "the thread running the test ended without a result".to_string(),
                    )),
                    devices: if progress.now().1.is_some() { leased } else { Vec::new() },
                    timings: Vec::new(),
                };
            }
        }
    }
}

impl OnDevices {
    fn run(self, probe: &'static Probe, leases: Vec<Lease>) -> DevicesRun {
        self.progress.enter(Stage::Opening);
        let gpu = match Gpu::open(probe, leases, self.samples.clone()) {
            Ok(gpu) => gpu,
            Err(message) => return DevicesRun::failed(BodyFailure::Setup(message)),
        };
        let mut run = self.on(&gpu);
        self.progress
            .release(run.outcome.as_ref().err().map(BodyFailure::describe));
        // A test that failed already is reported for that; the release's failure would most
        // likely follow from it.
        if let Err(message) = gpu.close()
            && run.outcome.is_ok()
        {
            run.outcome = Err(BodyFailure::Cuda(message));
        }
        run
    }

    /// Checks `gpu`'s devices, runs the body on them, and checks them again.
    fn on(&self, gpu: &Gpu) -> DevicesRun {
        let failed = DevicesRun::failed;
        // A context broken before the body started (by code gpu-test did not run) is not this
        // test's failure to explain; name it and keep the device from later tests.
        self.progress.enter(Stage::Checking);
        for device in gpu.devices() {
            if let Err(error) = synchronize_or_block(device, EARLIER_CODE) {
                let message = format!(
                    "{} reported a CUDA error before the body started: {error}",
                    device.info().label()
                );
                return failed(BodyFailure::Setup(message));
            }
        }
        let in_use_before = if self.leak_check {
            self.progress.enter(Stage::Measuring);
            match memory_in_use_before(gpu) {
                Ok(in_use) => Some(in_use),
                Err(message) => return failed(BodyFailure::Setup(message)),
            }
        } else {
            None
        };
        let devices: Vec<DeviceInfo> = gpu.devices().iter().map(|d| d.info().clone()).collect();
        self.progress.enter(Stage::Body);
        let mut outcome = run_body(self.function, gpu);
        // Asynchronous errors (a faulting kernel) surface when the device is synchronised.
        self.progress.enter(Stage::Finishing);
        for device in gpu.devices() {
            let Err(error) = synchronize_or_block(device, &self.test) else {
                continue;
            };
            if outcome.is_ok() {
                outcome = Err(BodyFailure::Cuda(format!(
                    "left a CUDA error on {}: {error}",
                    device.info().label()
                )));
            }
        }
        if let (Some(before), Ok(())) = (&in_use_before, &outcome) {
            self.progress.enter(Stage::LeakCheck);
            outcome = check_for_leaks(gpu, &self.test, before);
        }
        DevicesRun {
            outcome,
            devices,
            timings: gpu.timings(),
        }
    }
}

/// The device memory in use on each of `gpu`'s devices before the body, once each device has
/// done the work a body's first use makes the driver set up and keep (which is not the body's
/// leak); the error says which device could not be measured and why.
fn memory_in_use_before(gpu: &Gpu) -> Result<Vec<u64>, String> {
    for device in gpu.devices() {
        if let Err(error) = device.warm_up() {
            // A context the warm-up found broken for good is kept from later tests, as the check
            // before the body would have kept it.
            let _ = synchronize_or_block(device, EARLIER_CODE);
            return Err(format!(
                "cannot be checked for leaks: preparing {} for the measurement failed: {error}",
                device.info().label()
            ));
        }
    }
    memory_in_use(gpu, EARLIER_CODE)
}

/// Who a device's error is blamed on when it was there before the test's body ran.
const EARLIER_CODE: &str = "code that ran earlier in this process";

/// Waits for `device`'s work and returns the error it raised; a sticky one (the context cannot
/// be used again) keeps the device from later tests in this process, naming `culprit`.
fn synchronize_or_block(device: &GpuDevice, culprit: &str) -> Result<(), CudaError> {
    let synchronized = device.synchronize();
    if let Err(error) = &synchronized
        && error.is_sticky()
    {
        faults::block(
            device.info(),
            Blocked::Poisoned {
                test: culprit.to_string(),
                error: error.clone(),
            },
        );
    }
    synchronized
}

/// The device memory in use on each of `gpu`'s devices, once its work is done (a sticky error
/// found then is blamed on `culprit`); the error says which device could not be measured and why.
fn memory_in_use(gpu: &Gpu, culprit: &str) -> Result<Vec<u64>, String> {
    gpu.devices()
        .iter()
        .map(|device| {
            let measured = synchronize_or_block(device, culprit)
                .map_err(|error| error.to_string())
                .and_then(|()| device.memory_in_use().map_err(|failed| failed.to_string()));
            (device, measured)
        })
        .map(|(device, measured)| match measured {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(format!(
                "cannot be checked for leaks: the CUDA driver lacks cuMemGetInfo_v2, so the memory in use on {} \
                 cannot be measured",
                device.info().label()
            )),
            Err(error) => Err(format!(
                "cannot be checked for leaks: measuring the memory in use on {} failed: {error}",
                device.info().label()
            )),
        })
        .collect()
}

/// Compares the memory in use after the body with `before`: a device with more in use than
/// before the body is a leak, which fails the test naming the bytes and the device.
fn check_for_leaks(gpu: &Gpu, test: &str, before: &[u64]) -> Result<(), BodyFailure> {
    let after = memory_in_use(gpu, test).map_err(BodyFailure::Cuda)?;
    let leaks: Vec<String> = gpu
        .devices()
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (before, after))| after > before)
        .map(|(device, (before, after))| {
            format!(
                "{} bytes ({}) on {} ({before} bytes in use before the body, {after} after)",
                after - before,
                format_bytes(after - before),
                device.info().label()
            )
        })
        .collect();
    if leaks.is_empty() {
        return Ok(());
    }
    Err(BodyFailure::Cuda(format!(
        "left device memory allocated: {}; measured after synchronising and releasing what the memory pool \
         caches: free what the test allocates before it returns (drop its CudaSlices), or turn the check off \
         for it with leak_check = false",
        leaks.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure the test had before its release hung comes first; the limit is named as the
    /// one that applied: the probe's before the body (with the devices), the test's after.
    #[test]
    fn a_failure_before_a_hold_up_is_said_first() {
        let timed_out = |devices: Option<&str>, set_by| BodyFailure::TimedOut {
            limit: Duration::from_millis(300),
            stage: Stage::Releasing,
            set_by,
            devices: devices.map(str::to_string),
            failed: Some("device 0 reported a CUDA error before the body started: X".to_string()),
        };
        let before_the_body = timed_out(Some("device 0 NVIDIA H100"), None).describe();
        assert!(
            before_the_body.starts_with(
                "device 0 reported a CUDA error before the body started: X; after that, it was still releasing \
                 the CUDA contexts of its devices when its limit of 300ms (GPU_TEST_PROBE_TIMEOUT) ran out"
            ) && before_the_body.ends_with("cannot use its devices (device 0 NVIDIA H100)"),
            "{before_the_body}"
        );
        let after_the_body = timed_out(None, Some("GPU_TEST_TIMEOUT")).describe();
        assert!(
            after_the_body.contains("when its limit of 300ms (GPU_TEST_TIMEOUT) ran out")
                && after_the_body.ends_with("cannot use its devices"),
            "{after_the_body}"
        );
        let own_key = timed_out(None, None).describe();
        assert!(own_key.contains("when its limit of 300ms ran out"), "{own_key}");
    }
}
