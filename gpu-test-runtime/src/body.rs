//! Running a test body: on the calling thread, or, when the test has a `timeout`, on a thread of
//! its own that the caller stops waiting for at the deadline.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::gpu::Gpu;
use crate::private::{TestDef, panic_message};
use crate::probe::Probe;

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
}

impl BodyFailure {
    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        match self {
            BodyFailure::Setup(message) => message.clone(),
            BodyFailure::Returned(error) => format!("returned an error: {error}"),
            BodyFailure::Panicked(payload) => format!("panicked: {}", panic_message(payload)),
            BodyFailure::TimedOut(limit) => timed_out_message(*limit),
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

/// A test that ran: how it ended, how long it took, on which devices.
#[derive(Debug)]
pub struct Execution {
    /// `Ok` when the body succeeded.
    pub outcome: Result<(), BodyFailure>,
    /// From opening the devices to the body's end.
    pub duration: Duration,
    /// `0 NVIDIA H100` for each device the body was given.
    pub devices: Vec<String>,
}

/// Opens the first `devices` of `ordinals` and runs the body of `def` on them.
pub fn execute(def: &'static TestDef, probe: &Probe, ordinals: &[usize]) -> Execution {
    let started = Instant::now();
    let needed = (def.requirements.device_count() as usize).min(ordinals.len());
    let (outcome, devices) = match Gpu::open(probe, &ordinals[..needed]) {
        Ok(gpu) => {
            let devices = gpu
                .devices()
                .iter()
                .map(|d| format!("{} {}", d.info().ordinal, d.info().name))
                .collect();
            (run(def, Arc::new(gpu)), devices)
        }
        Err(message) => (Err(BodyFailure::Setup(message)), Vec::new()),
    };
    Execution {
        outcome,
        duration: started.elapsed(),
        devices,
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
