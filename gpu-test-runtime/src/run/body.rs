//! Running a test body, with its panics caught, and what it returns normalised.

use std::any::Any;
use std::fmt::Debug;
use std::time::Duration;

use super::gpu::Gpu;

/// What a test body returns, once normalised: `Err` holds the error's `Debug` text.
pub type Outcome = Result<(), String>;

/// Converts what a test body returns into an [`Outcome`].
#[diagnostic::on_unimplemented(
    message = "`#[gpu_test]` functions must return `()` or `Result<(), E>` where `E: Debug`",
    label = "this return type is not supported by #[gpu_test]",
    note = "return `Result<(), E>` to fail the test with the error's Debug text"
)]
pub trait IntoOutcome {
    /// Normalises the value.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Outcome {
        Ok(())
    }
}

impl<E: Debug> IntoOutcome for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        self.map_err(|error| format!("{error:?}"))
    }
}

/// A test's body, as the expansion of `#[gpu_test]` points at it: the function itself when it
/// returns `()`, a wrapper that converts its result otherwise.
#[derive(Debug, Clone, Copy)]
pub enum TestBody {
    /// `fn name(gpu: &Gpu)`.
    Gpu(fn(&Gpu)),
    /// `fn name()`.
    Plain(fn()),
    /// Any body that returns a value, converted by [`IntoOutcome`].
    Outcome(fn(&Gpu) -> Outcome),
}

impl TestBody {
    fn call(self, gpu: &Gpu) -> Outcome {
        match self {
            TestBody::Gpu(body) => {
                body(gpu);
                Ok(())
            }
            TestBody::Plain(body) => {
                body();
                Ok(())
            }
            TestBody::Outcome(body) => body(gpu),
        }
    }
}

/// How a body ended, when it did not succeed.
#[derive(Debug)]
pub(crate) enum BodyFailure {
    /// The devices could not be prepared (no context could be created, say).
    Setup(String),
    /// It returned `Err`; the error's `Debug` text.
    Returned(String),
    /// It panicked; the payload, to resume the panic with.
    Panicked(Box<dyn Any + Send>),
    /// It was still running at `stage` past the `limit` that applied to it: its timeout from the
    /// body on, `GPU_TEST_PROBE_TIMEOUT` before.
    TimedOut {
        /// The limit it outlived.
        limit: Duration,
        /// Where it was.
        stage: Stage,
        /// The variable that gave it its timeout (`GPU_TEST_TIMEOUT`), where its own `timeout`
        /// key did not.
        set_by: Option<&'static str>,
        /// The devices, named, where the body had not started: the failure is then the one
        /// place that says which GPU did not answer.
        devices: Option<String>,
        /// How the test had failed before it was held up (its contexts' release hung after
        /// it), said first.
        failed: Option<String>,
    },
    /// It returned, but the device reported a CUDA error for the work it left behind.
    Cuda(String),
}

/// Where a test's work on its devices had got to: what it was doing when it outlived its
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Stage {
    /// Opening a context and stream on each device.
    #[default]
    Opening,
    /// Synchronising the devices before the body.
    Checking,
    /// Measuring device memory before the body, for the leak check.
    Measuring,
    /// Running the body.
    Body,
    /// Synchronising the devices after the body: waiting for the work it launched.
    Finishing,
    /// Measuring device memory after the body, for the leak check.
    LeakCheck,
    /// Releasing the devices' CUDA contexts, the body done.
    Releasing,
}

impl Stage {
    /// What the test was doing at this stage, for a test that did not get past it.
    pub(crate) fn doing(self) -> &'static str {
        match self {
            Stage::Opening => "opening a CUDA context on its devices",
            Stage::Checking => "checking its devices before the body",
            Stage::Measuring | Stage::LeakCheck => "measuring device memory for the leak check",
            Stage::Body => "running its body",
            Stage::Finishing => "waiting for the GPU work its body launched to finish",
            Stage::Releasing => "releasing the CUDA contexts of its devices",
        }
    }
}

/// Runs `body` with `gpu`. Panics are caught and returned.
pub(crate) fn run_body(body: TestBody, gpu: &Gpu) -> Result<(), BodyFailure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.call(gpu))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(BodyFailure::Returned(error)),
        Err(payload) => Err(BodyFailure::Panicked(payload)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_the_error_text() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Err::<(), _>("boom").into_outcome(), Err("\"boom\"".to_string()));
    }
}
