//! What `#[gpu_test]` expands to refers to; not a public API.

use std::any::Any;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::gpu::Gpu;
use crate::requirements::Requirements;

pub use crate::libtest::run_under_libtest;
pub use linkme;

/// Every `#[gpu_test]` linked into the binary, for [`crate::main`].
#[linkme::distributed_slice]
pub static GPU_TESTS: [&'static TestDef];

/// What a test body returns, once normalised: `Err` holds the error's `Debug` text.
pub type Outcome = Result<(), String>;

/// One `#[gpu_test]` function, as the macro describes it.
#[derive(Debug)]
pub struct TestDef {
    /// `module_path!()` where the test is defined.
    pub module_path: &'static str,
    /// Where the module path starts after the crate's name and `::` ([`path_after_crate`]).
    pub path_start: usize,
    /// The function's name.
    pub fn_name: &'static str,
    /// `file!()` of the definition.
    pub file: &'static str,
    /// `line!()` of the definition.
    pub line: u32,
    /// What the test needs.
    pub requirements: Requirements,
    /// Whether the function also carries `#[ignore]`.
    pub ignored: bool,
    /// The reason in `#[ignore = "..."]`.
    pub ignore_reason: Option<&'static str>,
    /// The `timeout` key, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The body.
    pub body: fn(&Gpu) -> Outcome,
    /// Set when the test first runs: a second run in one process means the function was
    /// registered twice (`#[test]` above `#[gpu_test]`, which the macro cannot see).
    pub started: AtomicBool,
}

impl TestDef {
    /// Marks the test as started; `Err` with the explanation if it already was.
    pub(crate) fn start(&self) -> Result<(), String> {
        if self.started.swap(true, Ordering::SeqCst) {
            return Err(format!(
                "gpu-test: {} is registered as a test twice, so it runs twice: remove the #[test] above \
                 #[gpu_test], which already makes the function a test",
                self.name()
            ));
        }
        Ok(())
    }
}

impl TestDef {
    /// The test's name as libtest prints it: the module path without the crate name, then the
    /// function (`tests::two_gpus`).
    pub fn name(&self) -> String {
        let mut name = String::with_capacity(self.module_path.len() + self.fn_name.len());
        self.push_name(&mut name);
        name
    }

    /// Appends [`TestDef::name`] to `out`.
    pub fn push_name(&self, out: &mut String) {
        if let Some(path) = self.module_path.get(self.path_start..).filter(|p| !p.is_empty()) {
            out.push_str(path);
            out.push_str("::");
        }
        out.push_str(self.fn_name);
    }
}

/// The offset in `module_path` just past the crate's name and its `::` (the length when the path
/// is the crate alone): computed at compile time, so that naming a test costs no search.
pub const fn path_after_crate(module_path: &str) -> usize {
    let bytes = module_path.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b':' && bytes[i + 1] == b':' {
            return i + 2;
        }
        i += 1;
    }
    bytes.len()
}

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

/// The text of a panic payload.
pub fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(_: &Gpu) -> Outcome {
        Ok(())
    }

    fn def(module_path: &'static str) -> TestDef {
        TestDef {
            module_path,
            path_start: path_after_crate(module_path),
            fn_name: "two_gpus",
            file: file!(),
            line: line!(),
            requirements: Requirements::new(),
            ignored: false,
            ignore_reason: None,
            timeout_ms: None,
            body,
            started: AtomicBool::new(false),
        }
    }

    #[test]
    fn names_match_libtest() {
        assert_eq!(def("my_crate::tests").name(), "tests::two_gpus");
        assert_eq!(def("my_crate::a::b").name(), "a::b::two_gpus");
        assert_eq!(def("gpu_suite").name(), "two_gpus");
        assert_eq!(path_after_crate("my_crate::a"), 10);
        assert_eq!(path_after_crate("my_crate"), 8);
    }

    #[test]
    fn a_second_start_is_an_error() {
        let def = def("my_crate::tests");
        assert_eq!(def.start(), Ok(()));
        assert!(def.start().unwrap_err().contains("registered as a test twice"));
    }

    #[test]
    fn outcomes_keep_the_error_text() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Err::<(), _>("boom").into_outcome(), Err("\"boom\"".to_string()));
    }
}
