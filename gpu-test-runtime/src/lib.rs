//! Honest GPU tests for Rust.
//!
//! A test annotated with [`#[gpu_test]`](gpu_test) runs its body on real NVIDIA GPUs when the
//! machine meets its requirements. Everywhere else it is reported as **skipped, with the precise
//! reason and a hint to fix it**: never as a silent pass, and never silently on the CPU. With
//! `GPU_TEST_STRICT=1` (for GPU CI runners) an unmet requirement fails the test instead.
//!
//! # Setup
//!
//! ```toml
//! [dev-dependencies]
//! gpu-test-runtime = "0.1"
//! ```
//!
//! ```no_run
//! use gpu_test_runtime::{gpu_test, Gpu};
//!
//! #[gpu_test(min_cuda = "11.8", devices = 2, min_memory = "16 GiB")]
//! fn all_reduce(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
//!     for device in gpu.devices() {
//!         let stream = device.stream();
//!         let data = stream.clone_htod(&[1.0f32; 1024])?;
//!         assert_eq!(stream.clone_dtoh(&data)?.len(), 1024);
//!     }
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! On a machine without a usable GPU, `cargo test` shows one line per GPU test on stderr:
//!
//! ```text
//! gpu-test: skipped all_reduce: no CUDA driver: libcuda could not be loaded (tried libcuda.so.1, libcuda.so; LD_LIBRARY_PATH holds only cargo's own directories); the NVIDIA kernel module is not loaded either; hint: install the NVIDIA driver ...
//! ```
//!
//! # A real skip: gpu-test's harness
//!
//! libtest cannot skip at run time, so under the default harness an unmet test passes (and says
//! why). For `ignored (<reason>)` under `cargo test` and SKIP under `cargo nextest run`, give the
//! test target `harness = false` and call [`main()`]:
//!
//! ```toml
//! [[test]]
//! name = "gpu"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/gpu.rs
//! use gpu_test_runtime::{gpu_test, Gpu};
//!
//! #[gpu_test(devices = 2)]
//! fn all_reduce(gpu: &Gpu) { /* ... */ }
//!
//! fn main() {
//!     gpu_test_runtime::main()
//! }
//! ```
//!
//! # Keys
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `devices = N` | at least `N` (1 to 64) visible CUDA devices that meet the per-device keys | 1 |
//! | `each_device` | one run per visible device, each on that device alone (`<test>::cuda<N>`) | off |
//! | `min_cuda = "X.Y"` | the driver supports at least CUDA X.Y | 11.2, the oldest gpu-test runs tests on |
//! | `min_compute = "X.Y"` | every device the test uses has compute capability X.Y or newer | any |
//! | `min_memory = "16 GiB"` | every device the test uses has this much memory (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB) | any |
//! | `memory = "8 GiB"` | declared memory per device: leases admit the test while declared memory fits in what the device had free | not declared |
//! | `min_free_memory = "8 GiB"` | free memory per device when the lease is taken, else wait, then fail | not needed |
//! | `min_toolkit = "X.Y"` | NVRTC X.Y or newer can be loaded (the test compiles kernels at run time) | not needed |
//! | `timeout = "30s"` | the test fails if its body, with waiting for what it launched, takes longer (ms, s, m, h) | `GPU_TEST_TIMEOUT`, else none |
//! | `leak_check = true` | the test fails if it leaves device memory allocated | `GPU_TEST_LEAK_CHECK` |
//! | `feature = "cuda"` | the body, signature included, is compiled only with this cargo feature; without it the test is skipped, not lost | always compiled |
//! | `crate = "path"` | where the generated code finds this crate, when it is re-exported | `::gpu_test_runtime` |
//!
//! The body is `fn name()` or `fn name(gpu: &Gpu)` and returns `()` or `Result<(), E: Debug>`.
//!
//! # Environment variables
//!
//! Unset or empty means the default; any other value that is not accepted is an error naming the
//! variable, the value and what is accepted, and no GPU test runs: gpu-test's harness stops the
//! test binary with it before any test (exit status 101), and under the default harness each GPU
//! test fails with it. Never a silent default. A `GPU_TEST_*` variable gpu-test does not know is
//! a warning naming the nearest known one.
//!
//! | variable | accepted | effect |
//! |---|---|---|
//! | `GPU_TEST_STRICT` | unset, empty, `0`, `1`, `true`, `false` | `1`/`true`: an unmet requirement fails the test |
//! | `GPU_TEST_LEAK_CHECK` | unset, empty, `0`, `1`, `true`, `false` | `1`/`true`: a test that leaves device memory allocated fails |
//! | `GPU_TEST_REPORT` | a path ending in `.xml` or `.json` | a JUnit or JSON report of every GPU test of the run |
//! | `GPU_TEST_TESTS_PER_DEVICE` | 1 to 1024 (default 1) | how many tests may hold one device at a time |
//! | `GPU_TEST_TIMEOUT` | a duration: `500ms`, `30s`, `10m`, `1h` (default none) | the timeout of a GPU test without a `timeout` key |
//! | `GPU_TEST_LEASE_TIMEOUT` | `500ms`, `30s`, `10m`, `1h` (default `10m`) | how long a test waits for device leases |
//! | `GPU_TEST_LEASE_NOTICE` | `0` (or `0s`) or a duration (default `3s`) | how long a test waits for device leases before saying so |
//! | `GPU_TEST_PROBE_TIMEOUT` | a duration (default `2m`) | how long the probe waits for the driver before giving up on it |
//! | `GPU_TEST_RUNTIME_DIR` | an absolute path to a directory of this user's own (default `$XDG_RUNTIME_DIR/gpu-test` where that is this user's, else `$HOME/.cache/gpu-test` where it exists, else `<temp>/gpu-test-<uid>` unless others could move or take that, then the cache) | where device leases and per-run state shared by a run's processes live |
//! | `GPU_TEST_SYSTEM_ROOT` | an existing directory (default `/`) | read `/proc` and `/dev` under it and load CUDA libraries only from `LD_LIBRARY_PATH`: for testing gpu-test itself |
//!
//! # Layers
//!
//! - [`probe()`]: what this machine offers, found once per process, without ever panicking.
//! - [`Requirements::check`]: the decision, as a [`SkipReason`] when unmet.
//! - [`Gpu`]: the devices leased to a body, each with a cudarc context and stream, and
//!   [`Gpu::time`] for CUDA-event timing ([`Timed`], [`Timing`]).
//! - [`Diagnosis`]: the same facts for people; `cargo gpu-test doctor` prints it (the
//!   `cargo-gpu-test` crate), as does this crate's `gpu-doctor` binary.

#![warn(unreachable_pub, missing_docs)]
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "gpu-test-runtime supports Linux only (and WSL2, which is Linux): it finds and loads the NVIDIA driver \
     the way Linux does (libcuda.so.1, /proc/driver/nvidia, /dev/nvidia*)"
);

/// The crate's README, whose examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

/// Compiles its items on Linux only, so that another target stops at the `compile_error!` above
/// rather than at what Linux has and it lacks.
macro_rules! on_linux {
    ($($item:item)*) => { $(#[cfg(target_os = "linux")] $item)* };
}

on_linux! {
    // The stages, each importing only from those above it.
    mod cuda;
    mod decide;
    mod doctor;
    mod harness;
    mod probe;
    mod report;
    mod run;
    mod settings;
    mod util;

    pub use cuda::error::CudaError;
    pub use cuda::version::Version;
    pub use decide::requirements::Requirements;
    pub use decide::skip::{SkipKind, SkipReason};
    pub use doctor::Diagnosis;
    pub use gpu_test_macros::gpu_test;
    pub use harness::mimic::main;
    pub use probe::{DeviceInfo, Probe, probe};
    pub use run::gpu::{Gpu, GpuDevice, Timed};
    pub use run::timing::Timing;

    /// What the expansion of `#[gpu_test]` refers to; not a public API.
    #[doc(hidden)]
    pub mod __private {
        pub use crate::harness::libtest::run_under_libtest;
        pub use crate::harness::registry::TestDef;
        pub use crate::run::body::{IntoOutcome, Outcome, TestBody};
    }
}

/// What `cargo gpu-test` shares with the harness; not a public API.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub mod __companion {
    pub use crate::report::github::skip_notice;
    pub use crate::util::files::open_existing;
    pub use crate::util::format::{
        MarkdownPlace, changes_what_text_shows, markdown_code, markdown_text, without_workflow_commands,
    };

    /// gpu-test's settings, or the values every GPU test would refuse, in one line.
    fn settings() -> Result<&'static crate::settings::Settings, String> {
        crate::settings::settings().map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("; ")
        })
    }

    /// Checks, before a run, what every test process will check as it starts: the variables'
    /// values, and the report `GPU_TEST_REPORT` asks for (its directory is made, and a file there
    /// that is not a gpu-test report is refused). Returns the warnings for variables that look
    /// like gpu-test's but are not (`GPU_TEST_STIRCT`), which the test processes print where
    /// nextest hides them.
    pub fn check_settings() -> Result<Vec<String>, String> {
        let settings = settings()?;
        if let Some(target) = &settings.report {
            crate::report::file::check_writable(target)?;
        }
        Ok(settings.unknown.clone())
    }

    /// This user's runtime directory (`GPU_TEST_RUNTIME_DIR` or its default), created private if
    /// missing and refused where another user could read, block or move what is in it: the place
    /// for the companion's own temporary files. The error says why and what to do, as the tests
    /// would (a variable gpu-test does not accept, which every GPU test would fail on).
    pub fn runtime_dir() -> Result<std::path::PathBuf, String> {
        let settings = settings()?;
        crate::util::files::ensure_private_dir(&settings.runtime_dir)
            .map_err(|error| settings.unusable_runtime_dir(&error))?;
        Ok(settings.runtime_dir.clone())
    }
}

/// cudarc, re-exported so that test code and gpu-test agree on its types.
pub use cudarc;
