//! Running a test body: on the calling thread, or, when the test has a `timeout`, on a thread of
//! its own that the caller stops waiting for at the deadline.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::mpsc;
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
    /// It was still running at the deadline.
    TimedOut(Duration),
    /// It returned, but the device reported a CUDA error for the work it left behind.
    Cuda(String),
}

/// Runs `body` with `gpu`, within `timeout` if there is one. Panics are caught and returned.
pub(crate) fn run_body(
    name: &str,
    body: TestBody,
    timeout: Option<Duration>,
    gpu: Arc<Gpu>,
) -> Result<(), BodyFailure> {
    let Some(limit) = timeout else {
        return match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.call(&gpu))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(BodyFailure::Returned(error)),
            Err(payload) => Err(BodyFailure::Panicked(payload)),
        };
    };
    let (done, finished) = mpsc::channel();
    let spawned = std::thread::Builder::new().name(name.to_string()).spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.call(&gpu)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_the_error_text() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Err::<(), _>("boom").into_outcome(), Err("\"boom\"".to_string()));
    }
}
