//! CUDA events, created and destroyed through gpu-test's own driver calls.

use super::error::CudaError;
use super::sys::{CuHandle, DriverSys};

/// A CUDA event of the current context, destroyed when dropped (also when timed work panics).
#[derive(Debug)]
pub(crate) struct Event<'a> {
    handle: CuHandle,
    sys: &'a DriverSys,
}

impl<'a> Event<'a> {
    /// Creates an event with timing enabled in the current context.
    pub(crate) fn new(sys: &'a DriverSys) -> Result<Event<'a>, CudaError> {
        Ok(Event {
            handle: sys.create_event()?,
            sys,
        })
    }

    /// Records the event on `stream`.
    pub(crate) fn record(&self, stream: CuHandle) -> Result<(), CudaError> {
        self.sys.record_event(self.handle, stream)
    }

    /// Waits for the event, then returns the milliseconds since `start` completed.
    pub(crate) fn elapsed_since(&self, start: &Event<'_>) -> Result<f32, CudaError> {
        self.sys.synchronize_event(self.handle)?;
        self.sys.elapsed_ms(start.handle, self.handle)
    }
}

impl Drop for Event<'_> {
    fn drop(&mut self) {
        let _ = self.sys.destroy_event(self.handle);
    }
}
