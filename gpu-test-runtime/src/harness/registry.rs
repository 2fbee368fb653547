//! The test registry: every `#[gpu_test]` of a binary, described by the macro's expansion and
//! collected at link time (no code runs before `main`).
//!
//! Each expansion puts a pointer to its [`TestDef`] in the `gpu_test_defs` link section; the
//! linker gathers them into one array and defines `__start_gpu_test_defs` and
//! `__stop_gpu_test_defs` around it (rustc keeps such sections from linker garbage collection).
//! This is what linkme does, without the macro and type checks linkme's attribute expands to for
//! every element, which cost more to compile than the rest of a test's expansion.

// Reading the section is the one unsafe step outside `cuda/` and `util/os.rs`.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::decide::requirements::Requirements;
use crate::report::model::Location;
use crate::run::Body;
use crate::run::lease::MemoryDemand;
use crate::run::body::TestBody;

/// Registers a test's description in the registry's link section: what the expansion of
/// `#[gpu_test]` calls. Being this crate's macro, it is the one place that names the section, and
/// its unsafe attribute does not count against a test crate's `#![forbid(unsafe_code)]`.
#[macro_export]
#[doc(hidden)]
macro_rules! __register_gpu_test {
    ($registration:ident = $def:expr) => {
        #[used]
        // The section's name carries the version (`REGISTRY_SECTION`): two versions of gpu-test in
        // one binary keep their registries apart, as their descriptions differ.
        #[unsafe(link_section = "gpu_test_defs_0_1_0")]
        #[allow(non_upper_case_globals)]
        #[doc(hidden)]
        static $registration: &$crate::__private::TestDef = $def;
    };
}

/// The registry's section, named for this version (`.` and `-` as `_`, for the start and stop
/// symbols' sake): the literal in [`__register_gpu_test`], `NO_TEST` and the symbols below.
#[cfg(test)]
const REGISTRY_SECTION: &str = "gpu_test_defs_0_1_0";

// An empty entry, so that the section (and its start and stop symbols) exists in a binary with
// no GPU test at all. Mutable like the entries (each a pointer relocated at load time), so that
// the section is writable whichever static comes first.
#[used]
#[unsafe(link_section = "gpu_test_defs_0_1_0")]
static mut NO_TEST: [&TestDef; 0] = [];

unsafe extern "Rust" {
    #[link_name = "__start_gpu_test_defs_0_1_0"]
    static SECTION_START: [&'static TestDef; 0];
    #[link_name = "__stop_gpu_test_defs_0_1_0"]
    static SECTION_STOP: [&'static TestDef; 0];
}

/// Every `#[gpu_test]` linked into the binary, for [`crate::main`].
pub(crate) fn registered() -> &'static [&'static TestDef] {
    // SAFETY: the linker places every entry of `gpu_test_defs` between the two symbols it defines,
    // and each entry is a `&'static TestDef` written by the expansion of `#[gpu_test]` (the only
    // code that names the section), aligned as the type requires; the array is never written.
    unsafe {
        let start = (&raw const SECTION_START).cast::<&'static TestDef>();
        let stop = (&raw const SECTION_STOP).cast::<&'static TestDef>();
        let len = (stop as usize - start as usize) / std::mem::size_of::<&TestDef>();
        std::slice::from_raw_parts(start, len)
    }
}

/// One `#[gpu_test]` function, as the macro describes it.
#[derive(Debug)]
pub struct TestDef {
    /// The package the test is in (`CARGO_PKG_NAME` when it was compiled; empty where a build
    /// system other than cargo did not set it).
    pub package: &'static str,
    /// The binary target it is in, when it is in one (`CARGO_BIN_NAME`).
    pub bin: Option<&'static str>,
    /// `module_path!()` where the test is defined.
    pub module_path: &'static str,
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
    /// The `leak_check` key; `None` follows `GPU_TEST_LEAK_CHECK`.
    pub leak_check: Option<bool>,
    /// `each_device`: one trial per visible device, each on that device alone.
    pub each_device: bool,
    /// The body.
    pub body: TestBody,
    /// Set when the test first runs: a second run in one process means the function was
    /// registered twice (`#[test]` above `#[gpu_test]`, which the macro cannot see).
    pub started: AtomicBool,
}

/// `<test>::cuda<N>`: the run of an `each_device` test on the device of CUDA ordinal `ordinal`.
pub(crate) fn device_trial(test: &str, ordinal: usize) -> String {
    format!("{test}::cuda{ordinal}")
}

/// The ordinal of `trial` when it is a [`device_trial`] of `test`.
pub(crate) fn trial_ordinal(test: &str, trial: &str) -> Option<usize> {
    trial.strip_prefix(test)?.strip_prefix("::cuda")?.parse().ok()
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
    /// What executing the body needs, for the test named `name`.
    pub(crate) fn body_named<'a>(&self, name: &'a str) -> Body<'a> {
        Body {
            name,
            function: self.body,
            devices: self.requirements.device_count() as usize,
            timeout: self.timeout_ms.map(Duration::from_millis),
            leak_check: self.leak_check,
            memory: MemoryDemand {
                declared: self.requirements.declared_memory(),
                min_free: self.requirements.needed_free_memory(),
            },
        }
    }

    /// The test's name as libtest prints it: the module path without the crate name, then the
    /// function (`tests::two_gpus`).
    pub fn name(&self) -> String {
        let mut name = String::with_capacity(self.module_path.len() + self.fn_name.len());
        self.push_name(&mut name);
        name
    }

    /// The suite this test's binary is reported under, as nextest names test binaries: the
    /// package for its library's unit tests, `package::target` for any other target (the
    /// target is the crate, the first element of the module path).
    pub(crate) fn suite(&self) -> String {
        if let Some(bin) = self.bin {
            return format!("{}::bin/{bin}", self.package);
        }
        let krate = self.module_path.split("::").next().unwrap_or(self.module_path);
        if krate == self.package.replace('-', "_") {
            self.package.to_string()
        } else {
            format!("{}::{krate}", self.package)
        }
    }

    /// Where the test is defined.
    pub(crate) fn location(&self) -> Location {
        Location {
            file: self.file,
            line: self.line,
        }
    }

    /// Appends [`TestDef::name`] to `out`.
    pub fn push_name(&self, out: &mut String) {
        // The module path without the crate's name: found here rather than at compile time, where
        // evaluating it for every test costs more than it ever saves.
        if let Some((_, path)) = self.module_path.split_once("::") {
            out.push_str(path);
            out.push_str("::");
        }
        out.push_str(self.fn_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::gpu::Gpu;

    fn body(_: &Gpu) {}

    fn def(module_path: &'static str) -> TestDef {
        TestDef {
            package: "my-crate",
            bin: None,
            module_path,
            fn_name: "two_gpus",
            file: file!(),
            line: line!(),
            requirements: Requirements::new(),
            ignored: false,
            ignore_reason: None,
            timeout_ms: None,
            leak_check: None,
            each_device: false,
            body: TestBody::Gpu(body),
            started: AtomicBool::new(false),
        }
    }

    #[test]
    fn the_registry_section_is_named_for_this_version() {
        let version: String = env!("CARGO_PKG_VERSION")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        assert_eq!(REGISTRY_SECTION, format!("gpu_test_defs_{version}"));
        let source = include_str!("registry.rs");
        assert_eq!(source.matches(&format!("\"{REGISTRY_SECTION}\"")).count(), 3);
        assert_eq!(source.matches(&format!("\"__start_{REGISTRY_SECTION}\"")).count(), 1);
        assert_eq!(source.matches(&format!("\"__stop_{REGISTRY_SECTION}\"")).count(), 1);
    }

    #[test]
    fn device_trials_are_named_and_read_back() {
        assert_eq!(device_trial("a::b", 3), "a::b::cuda3");
        assert_eq!(trial_ordinal("a::b", "a::b::cuda12"), Some(12));
        assert_eq!(trial_ordinal("a::b", "a::bc::cuda1"), None);
        assert_eq!(trial_ordinal("a::b", "a::b::cudax"), None);
    }

    #[test]
    fn a_binary_without_gpu_tests_has_an_empty_registry() {
        // This test binary has no #[gpu_test]: the section exists, empty, and links.
        assert!(registered().is_empty());
    }

    #[test]
    fn names_match_libtest() {
        assert_eq!(def("my_crate::tests").name(), "tests::two_gpus");
        assert_eq!(def("my_crate::a::b").name(), "a::b::two_gpus");
        assert_eq!(def("gpu_suite").name(), "two_gpus");
    }

    #[test]
    fn suites_are_named_as_nextest_names_binaries() {
        assert_eq!(def("my_crate::tests").suite(), "my-crate");
        assert_eq!(def("gpu::a").suite(), "my-crate::gpu");
        assert_eq!(def("gpu").suite(), "my-crate::gpu");
        let in_a_bin = TestDef {
            bin: Some("my-crate"),
            ..def("my_crate::tests")
        };
        assert_eq!(in_a_bin.suite(), "my-crate::bin/my-crate");
    }

    #[test]
    fn a_second_start_is_an_error() {
        let def = def("my_crate::tests");
        assert_eq!(def.start(), Ok(()));
        assert!(def.start().unwrap_err().contains("registered as a test twice"));
    }
}
