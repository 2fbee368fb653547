//! Running a test body: on the calling thread, or, when the test has a `timeout`, on a thread of
//! its own that the caller stops waiting for at the deadline.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::faults::{self, Blocked};
use crate::gpu::Gpu;
use crate::lease;
use crate::libtest::write_stderr;
use crate::private::{TestDef, panic_message};
use crate::probe::{DeviceInfo, Probe};
use crate::settings::Settings;
use crate::timing::Timing;

/// How a body ended, when it did not succeed.
#[derive(Debug)]
pub enum BodyFailure {
    /// The devices could not be prepared (no context could be created, say).
    Setup(String),
    /// It returned `Err`; the error's `Debug` text.
    Returned(String),
    /// It panicked; the payload, to resume the panic with.
    Panicked(Box<dyn Any + Send>),
    /// It was still running at the deadline.
    TimedOut(Duration),
    /// It returned, but the device reported a CUDA error for the work it left behind.
    Cuda(String),
}

impl BodyFailure {
    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        match self {
            BodyFailure::Setup(message) => message.clone(),
            BodyFailure::Returned(error) => format!("returned an error: {error}"),
            BodyFailure::Panicked(payload) => format!("panicked: {}", panic_message(payload)),
            BodyFailure::TimedOut(limit) => timed_out_message(*limit),
            BodyFailure::Cuda(message) => message.clone(),
        }
    }
}

fn timed_out_message(limit: Duration) -> String {
    format!(
        "did not finish within its timeout of {} and was abandoned; its thread may still be using the GPU, \
         so later tests in this process can be affected",
        format_duration(limit)
    )
}

/// A test that ran: how it ended, how long it took, on which devices, and its GPU timings.
#[derive(Debug)]
pub struct Execution {
    /// `Ok` when the body succeeded.
    pub outcome: Result<(), BodyFailure>,
    /// From leasing the devices to the body's end.
    pub duration: Duration,
    /// `device 0 NVIDIA H100 (GPU-...)` for each device the body was given.
    pub devices: Vec<String>,
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

/// Leases devices among `suitable` (ordinals that meet the test's requirements), opens them,
/// runs the body of `def`, checks the devices afterwards, and prints which devices the test ran
/// on and its timings.
pub fn execute(
    def: &'static TestDef,
    probe: &'static Probe,
    suitable: &[usize],
    settings: &Settings,
) -> Execution {
    let started = Instant::now();
    let name = def.name();
    let needed = def.requirements.device_count() as usize;
    let candidates: Vec<&DeviceInfo> = suitable
        .iter()
        .filter_map(|ordinal| probe.devices.iter().find(|d| d.ordinal == *ordinal))
        .collect();
    let leases = match lease::acquire(&name, &candidates, needed, settings) {
        Ok(leases) => leases,
        Err(message) => return Execution::failed(started, BodyFailure::Setup(message)),
    };
    let gpu = match Gpu::open(probe, leases) {
        Ok(gpu) => gpu,
        Err(message) => return Execution::failed(started, BodyFailure::Setup(message)),
    };
    // A context broken before the body started (by code gpu-test did not run) is not this test's
    // failure to explain; name it and keep the device from later tests.
    for device in gpu.devices() {
        if let Err(error) = device.synchronize() {
            if faults::is_sticky(error.code) {
                let test = "code that ran earlier in this process".to_string();
                faults::block(
                    device.info(),
                    Blocked::Poisoned {
                        test,
                        error: error.clone(),
                    },
                );
            }
            let message = format!(
                "{} reported a CUDA error before the body started: {error}",
                device.info().label()
            );
            return Execution::failed(started, BodyFailure::Setup(message));
        }
    }
    let devices: Vec<String> = gpu
        .devices()
        .iter()
        .map(|d| match &d.info().uuid {
            Some(uuid) => format!("{} ({uuid})", d.info().label()),
            None => d.info().label(),
        })
        .collect();
    let gpu = Arc::new(gpu);
    let mut outcome = run(def, gpu.clone());
    if let Err(BodyFailure::TimedOut(_)) = outcome {
        // The body's thread still holds the Gpu, and with it the leases.
        for device in gpu.devices() {
            faults::block(device.info(), Blocked::Abandoned { test: name.clone() });
        }
    } else {
        // Asynchronous errors (a faulting kernel) surface when the device is synchronised.
        for device in gpu.devices() {
            let Err(error) = device.synchronize() else {
                continue;
            };
            if faults::is_sticky(error.code) {
                faults::block(
                    device.info(),
                    Blocked::Poisoned {
                        test: name.clone(),
                        error: error.clone(),
                    },
                );
            }
            if outcome.is_ok() {
                outcome = Err(BodyFailure::Cuda(format!(
                    "left a CUDA error on {}: {error}",
                    device.info().label()
                )));
            }
        }
    }
    let timings = gpu.timings();
    let mut lines = format!("gpu-test: {name} ran on {}\n", devices.join(", "));
    for timing in &timings {
        lines.push_str(&timing.line(&name));
        lines.push('\n');
    }
    write_stderr(&lines);
    Execution {
        outcome,
        duration: started.elapsed(),
        devices,
        timings,
    }
}

/// Runs the body of `def` with `gpu`. Panics are caught and returned.
pub fn run(def: &'static TestDef, gpu: Arc<Gpu>) -> Result<(), BodyFailure> {
    let Some(ms) = def.timeout_ms else {
        return match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (def.body)(&gpu))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(BodyFailure::Returned(error)),
            Err(payload) => Err(BodyFailure::Panicked(payload)),
        };
    };
    let limit = Duration::from_millis(ms);
    let (done, finished) = mpsc::channel();
    let spawned = std::thread::Builder::new().name(def.name()).spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (def.body)(&gpu)));
        let _ = done.send(outcome);
    });
    if let Err(error) = spawned {
        return Err(BodyFailure::Returned(format!(
            "could not start the body's thread: {error}"
        )));
    }
    match finished.recv_timeout(limit) {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(error))) => Err(BodyFailure::Returned(error)),
        Ok(Err(payload)) => Err(BodyFailure::Panicked(payload)),
        Err(_) => Err(BodyFailure::TimedOut(limit)),
    }
}

/// `30s`, `1.5s`, `250ms`, `2m 5s`.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{:.1}s", duration.as_secs_f64())
        }
    } else {
        let seconds = duration.as_secs();
        match (seconds / 60, seconds % 60) {
            (minutes, 0) => format!("{minutes}m"),
            (minutes, rest) => format!("{minutes}m {rest}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_briefly() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m 5s");
    }
}
