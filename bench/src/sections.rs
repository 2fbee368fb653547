//! The seven measurements.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use gpu_test_runtime::Probe;

use crate::fixtures::{self, Tests, target};
use crate::measure::{self, interleaved};
use crate::{Goal, Options, Row};

/// The manifest text that compiles every dependency (gpu-test, libtest-mimic, cudarc) optimised
/// and without debug information, while the tests themselves stay a debug build, as the README
/// recommends.
const OPTIMISED_DEPENDENCIES: &str = "\n[profile.dev.package.\"*\"]\nopt-level = 3\ndebug = false\n";

/// How long one call of `f` takes (its result kept from the optimiser).
fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let started = Instant::now();
    black_box(f());
    started.elapsed()
}

/// 1. The probe on this machine (without a driver it is the skip path), against cudarc's
///    `is_culib_present()`, which tries every library name cudarc knows.
pub fn probe() -> Vec<Row> {
    eprintln!("gpu-test-bench: 1. probe");
    // SAFETY: is_culib_present only tries to load libraries by name.
    let driver_installed = unsafe { gpu_test_runtime::cudarc::driver::sys::is_culib_present() };
    let setting = if driver_installed {
        "with a driver installed"
    } else {
        "without a driver"
    };
    // The first call of each in a fresh process: what a test binary pays (later calls find the
    // loader's caches warm).
    let exe = std::env::current_exe().expect("the benchmark knows its own path");
    let first = |which: &'static str| {
        let exe = exe.clone();
        move || {
            let output = measure::output(measure::clean_command(&exe).arg(format!("--first-call={which}")));
            Duration::from_nanos(output.trim().parse().expect("a number of nanoseconds"))
        }
    };
    let (mut probe_first, mut culib_first) = (first("probe"), first("culib"));
    let medians = interleaved(41, &mut [&mut probe_first, &mut culib_first]);
    let mut detect = || timed(Probe::detect);

    gpu_test_runtime::probe();
    let reads = 10_000_000u32;
    let started = Instant::now();
    for _ in 0..reads {
        black_box(gpu_test_runtime::probe());
    }
    let cached = started.elapsed() / reads;

    // What a per-run probe cache would cost at least: reading a file of the probe's size.
    let cache = fixtures::bench_dir().join("probe-cache.json");
    std::fs::create_dir_all(fixtures::bench_dir()).unwrap();
    std::fs::write(&cache, "x".repeat(1024)).unwrap();
    let mut read = || timed(|| std::fs::read_to_string(&cache).unwrap());
    let cache_medians = interleaved(201, &mut [&mut read, &mut detect]);

    vec![
        Row {
            section: 1,
            what: format!("probe, first call in a fresh process ({setting})"),
            ours: medians[0],
            baseline: Some(("cudarc is_culib_present(), first call".to_string(), medians[1])),
            goal: Goal::Ratio(0.15),
        },
        Row {
            section: 1,
            what: "probe, cached read".to_string(),
            ours: cached,
            baseline: None,
            goal: Goal::Absolute(Duration::from_nanos(50)),
        },
        Row {
            section: 1,
            what: "a per-run cache: reading a 1 KiB file, before any parsing".to_string(),
            ours: cache_medians[0],
            baseline: Some(("probe, first call".to_string(), cache_medians[1])),
            goal: Goal::None,
        },
    ]
}

/// Times one call of `which` (`probe` or `culib`) and prints the nanoseconds: the first call of
/// a fresh process, for section 1.
pub fn first_call(which: &str) {
    let elapsed = match which {
        "probe" => timed(Probe::detect),
        // SAFETY: is_culib_present only tries to load libraries by name.
        _ => timed(|| unsafe { gpu_test_runtime::cudarc::driver::sys::is_culib_present() }),
    };
    println!("{}", elapsed.as_nanos());
}

fn run_binary(exe: &Path, args: &[&str]) -> Duration {
    measure::run(measure::clean_command(exe).args(args))
}

/// 2. 5,000 skipped GPU tests against 5,000 ignored and 5,000 passing plain tests, under both
///    harnesses and thread settings, with dependencies built as a debug build (cargo's default)
///    and optimised.
pub fn suites(options: &Options) -> Vec<Row> {
    let targets = [
        target("gpu_default", Tests::GpuDefault, 5000),
        target("gpu_harness", Tests::GpuHarness, 5000),
        target("ignored", Tests::Ignored, 5000),
        target("passing", Tests::Passing, 5000),
    ];
    let mut rows = Vec::new();
    for (crate_name, extra, dependencies) in [
        ("suites", "", "dependencies unoptimised"),
        ("suites-opt", OPTIMISED_DEPENDENCIES, "dependencies optimised"),
    ] {
        eprintln!("gpu-test-bench: 2. 5,000 tests, {dependencies}: building");
        let dir = fixtures::write_crate(crate_name, &targets, extra);
        let built = fixtures::build_tests(&dir, "test");
        let exe = |name| fixtures::executable(&built, name);
        let (gpu_default, gpu_harness, ignored, passing) = (
            exe("gpu_default"),
            exe("gpu_harness"),
            exe("ignored"),
            exe("passing"),
        );
        for (threads, args) in [
            ("default threads", &[][..]),
            ("--test-threads 1", &["--test-threads", "1"][..]),
        ] {
            eprintln!("gpu-test-bench: 2. 5,000 tests, {dependencies}, {threads}");
            // Short runs on a shared machine: three times the repetitions.
            let medians = interleaved(
                options.reps * 3,
                &mut [
                    &mut || run_binary(&gpu_harness, args),
                    &mut || run_binary(&ignored, args),
                    &mut || run_binary(&gpu_default, args),
                    &mut || run_binary(&passing, args),
                ],
            );
            rows.push(Row {
                section: 2,
                what: format!("5,000 skipped #[gpu_test], harness = false, {threads}, {dependencies}"),
                ours: medians[0],
                baseline: Some(("5,000 #[ignore]".to_string(), medians[1])),
                goal: Goal::Ratio(1.0),
            });
            rows.push(Row {
                section: 2,
                what: format!("5,000 skipped #[gpu_test], default harness, {threads}, {dependencies}"),
                ours: medians[2],
                baseline: Some(("5,000 passing #[test]".to_string(), medians[3])),
                goal: Goal::Ratio(1.05),
            });
        }
    }
    rows
}

/// 3. `cargo nextest run` over 1,000 skipped GPU tests against 1,000 ignored tests.
pub fn nextest(options: &Options) -> Vec<Row> {
    eprintln!("gpu-test-bench: 3. nextest: building");
    let targets = [
        target("gpu_harness", Tests::GpuHarness, 1000),
        target("ignored", Tests::Ignored, 1000),
    ];
    let dir = fixtures::write_crate("nextest", &targets, "");
    fixtures::build_tests(&dir, "test");
    let nextest = |test: &str| {
        let mut command = measure::cargo(&dir);
        command
            .args([
                "nextest",
                "run",
                "--no-tests",
                "pass",
                "--test",
                test,
                "--target-dir",
            ])
            .arg(fixtures::target_dir());
        command
    };
    // The harness must decide at list time: no process may start for a skipped test.
    let listing = measure::cargo(&dir)
        .args([
            "nextest",
            "run",
            "--no-tests",
            "pass",
            "--test",
            "gpu_harness",
            "--target-dir",
        ])
        .arg(fixtures::target_dir())
        .output()
        .expect("run cargo nextest");
    let text = String::from_utf8_lossy(&listing.stderr);
    assert!(
        text.contains("Starting 0 tests") && text.contains("1000 tests skipped"),
        "nextest started processes for skipped GPU tests:\n{text}"
    );
    eprintln!("gpu-test-bench: 3. nextest: running");
    let medians = interleaved(
        options.reps,
        &mut [&mut || measure::run(&mut nextest("gpu_harness")), &mut || {
            measure::run(&mut nextest("ignored"))
        }],
    );
    vec![Row {
        section: 3,
        what: "cargo nextest run, 1,000 skipped #[gpu_test] (0 processes started)".to_string(),
        ours: medians[0],
        baseline: Some(("1,000 #[ignore]".to_string(), medians[1])),
        goal: Goal::Ratio(1.5),
    }]
}

/// 4. One met GPU test per process (the fake driver) against one plain test per process: what
///    each nextest process pays.
pub fn per_process(options: &Options) -> Vec<Row> {
    eprintln!("gpu-test-bench: 4. one test per process: building");
    let targets = [
        target("gpu_one_harness", Tests::GpuHarness, 1),
        target("gpu_one_default", Tests::GpuDefault, 1),
        target("plain_one", Tests::Passing, 1),
    ];
    let dir = fixtures::write_crate("per-process", &targets, "");
    let built = fixtures::build_tests(&dir, "test");
    let driver = fixtures::fake_driver();
    let runtime = fixtures::bench_dir().join("runtime");
    // As nextest runs a test: its variables, its arguments, and, for gpu-test's harness, what
    // its list phase recorded for the run phase to read.
    let nextest = |command: &mut std::process::Command, phase: &str, binary: &str| {
        command
            .env("LD_LIBRARY_PATH", &driver)
            .env("GPU_TEST_RUNTIME_DIR", &runtime)
            .env("NEXTEST", "1")
            .env("NEXTEST_RUN_ID", "gpu-test-bench-per-process")
            .env("NEXTEST_TEST_PHASE", phase)
            .env("NEXTEST_BINARY_ID", format!("per-process::{binary}"));
    };
    for name in ["gpu_one_harness", "plain_one"] {
        let exe = fixtures::executable(&built, name);
        let mut list = measure::clean_command(&exe);
        list.args(["--list", "--format", "terse"]);
        nextest(&mut list, "list", name);
        measure::output(&mut list);
    }
    let run = |name: &'static str| {
        let exe = fixtures::executable(&built, name);
        let nextest = &nextest;
        move || {
            let mut command = measure::clean_command(&exe);
            command.args(["--exact", "t0", "--nocapture"]);
            nextest(&mut command, "run", name);
            measure::run(&mut command)
        }
    };
    let (mut harness, mut default, mut plain) =
        (run("gpu_one_harness"), run("gpu_one_default"), run("plain_one"));
    eprintln!("gpu-test-bench: 4. one test per process: running");
    let medians = interleaved(options.reps * 3, &mut [&mut harness, &mut default, &mut plain]);
    vec![
        Row {
            section: 4,
            what: "one met #[gpu_test] in its own process as nextest runs it, harness = false (fake driver)"
                .to_string(),
            ours: medians[0],
            baseline: Some(("one #[test] per process".to_string(), medians[2])),
            goal: Goal::Ratio(1.15),
        },
        Row {
            section: 4,
            what: "one met #[gpu_test] in its own process as nextest runs it, default harness (fake driver)"
                .to_string(),
            ours: medians[1],
            baseline: Some(("one #[test] per process".to_string(), medians[2])),
            goal: Goal::Ratio(1.15),
        },
    ]
}

/// Edits the first test's body, back and forth, as someone changing a test would.
fn edit(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let edited = match text.find("fn t0() {}") {
        Some(_) => text.replacen("fn t0() {}", "fn t0() { let _ = 1; }", 1),
        None => text.replacen("fn t0() { let _ = 1; }", "fn t0() {}", 1),
    };
    std::fs::write(path, edited).unwrap();
}

/// 5. Build time: 500 GPU tests against 500 plain tests with only the test crate rebuilt, and
///    the cold build of gpu-test against the cold build of cudarc alone.
pub fn builds(options: &Options) -> Vec<Row> {
    let targets = [
        target("gpu500", Tests::GpuDefault, 500),
        target("plain500", Tests::Passing, 500),
        target("linked500", Tests::PassingLinked, 500),
    ];
    let mut rows = Vec::new();
    for (crate_name, extra, dependencies) in [
        ("build500", "", "dependencies unoptimised"),
        (
            "build500-opt",
            OPTIMISED_DEPENDENCIES,
            "dependencies optimised, no debug info",
        ),
    ] {
        eprintln!("gpu-test-bench: 5. builds, {dependencies}: warming up");
        let dir = fixtures::write_crate(crate_name, &targets, extra);
        fixtures::build_tests(&dir, "test");
        let build = |name: &'static str| {
            let dir = dir.clone();
            move || {
                edit(&dir.join("tests").join(format!("{name}.rs")));
                measure::run(
                    measure::cargo(&dir)
                        .args(["test", "--no-run", "--test", name, "--target-dir"])
                        .arg(fixtures::target_dir()),
                )
            }
        };
        eprintln!("gpu-test-bench: 5. builds, {dependencies}: warm");
        let warm = interleaved(
            options.reps,
            &mut [
                &mut build("gpu500"),
                &mut build("linked500"),
                &mut build("plain500"),
            ],
        );
        rows.push(Row {
            section: 5,
            what: format!("rebuild of 500 #[gpu_test] after editing one, {dependencies}"),
            ours: warm[0],
            baseline: Some(("500 #[test] linking gpu-test-runtime".to_string(), warm[1])),
            goal: Goal::Ratio(1.3),
        });
        rows.push(Row {
            section: 5,
            what: format!("rebuild of 500 #[gpu_test] after editing one, {dependencies}"),
            ours: warm[0],
            baseline: Some(("500 #[test] without gpu-test-runtime".to_string(), warm[2])),
            goal: Goal::Ratio(2.0),
        });
    }

    eprintln!("gpu-test-bench: 5. builds: cold (each from an empty target directory)");
    let cold = |package: &'static str| {
        move || {
            let target = fixtures::bench_dir().join("cold-target");
            let _ = std::fs::remove_dir_all(&target);
            measure::run(
                measure::cargo(&fixtures::workspace())
                    .args(["build", "--lib", "-p", package, "--target-dir"])
                    .arg(&target),
            )
        }
    };
    let cold_reps = if options.reps < 5 { 1 } else { 3 };
    let cold = interleaved(
        cold_reps,
        &mut [&mut cold("gpu-test-runtime"), &mut cold("cudarc")],
    );
    let crates = measure::output(measure::cargo(&fixtures::workspace()).args([
        "tree",
        "-p",
        "gpu-test-runtime",
        "-e",
        "normal,build",
        "--prefix",
        "none",
    ]));
    let mut names: Vec<&str> = crates.lines().filter_map(|l| l.split(' ').next()).collect();
    names.sort();
    names.dedup();
    rows.push(Row {
        section: 5,
        what: format!("cold build of gpu-test-runtime and its {} crates", names.len()),
        ours: cold[0],
        baseline: Some(("cudarc alone".to_string(), cold[1])),
        goal: Goal::None,
    });
    rows
}

const TIMING_TEST: &str = r#"use std::time::{Duration, Instant};

use gpu_test_runtime::cudarc::driver::sys::CUevent_flags;
use gpu_test_runtime::{gpu_test, Gpu};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[gpu_test]
fn overhead(gpu: &Gpu) {
    let stream = gpu.stream();
    let (batches, per_batch) = (21u32, 500u32);
    let (mut ours, mut by_hand) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        let started = Instant::now();
        for _ in 0..per_batch {
            gpu.time("empty", |_| ()).unwrap();
        }
        ours.push(started.elapsed() / per_batch);
        let started = Instant::now();
        for _ in 0..per_batch {
            let start = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).unwrap();
            let end = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).unwrap();
            std::hint::black_box(start.elapsed_ms(&end).unwrap());
        }
        by_hand.push(started.elapsed() / per_batch);
    }
    println!("BENCH {} {}", median(ours).as_nanos(), median(by_hand).as_nanos());
}

fn main() {
    gpu_test_runtime::main()
}
"#;

/// 6. What `gpu.time` costs the CPU per region (the fake driver answers at once), against the
///    same two events recorded and read through cudarc by hand.
pub fn timing() -> Vec<Row> {
    eprintln!("gpu-test-bench: 6. gpu.time: building");
    // The crate must not be named like its test target: the library's unit tests would share the name.
    let dir = fixtures::write_crate("timing-overhead", &[target("timing", Tests::GpuHarness, 0)], "");
    let source = dir.join("tests/timing.rs");
    if std::fs::read_to_string(&source).ok().as_deref() != Some(TIMING_TEST) {
        std::fs::write(&source, TIMING_TEST).unwrap();
    }
    let built = fixtures::build_tests(&dir, "release");
    let driver = fixtures::fake_driver();
    eprintln!("gpu-test-bench: 6. gpu.time: running");
    let stdout = measure::output(
        measure::clean_command(fixtures::executable(&built, "timing"))
            .env("LD_LIBRARY_PATH", &driver)
            .env("GPU_TEST_RUNTIME_DIR", fixtures::bench_dir().join("runtime")),
    );
    // The result may follow libtest's `test overhead ... ` on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("BENCH ").map(|(_, numbers)| numbers))
        .expect("the timing test printed its result");
    let numbers: Vec<u64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
    vec![Row {
        section: 6,
        what: "gpu.time per region, CPU side (fake driver)".to_string(),
        ours: Duration::from_nanos(numbers[0]),
        baseline: Some((
            "two cudarc events by hand".to_string(),
            Duration::from_nanos(numbers[1]),
        )),
        goal: Goal::None,
    }]
}

/// 7. A report: 500 met GPU tests in one default-harness binary under `cargo test`, and 300 met
///    GPU tests under `cargo nextest run` (a process each, dependencies unoptimised and optimised),
///    on the fake driver with `GPU_TEST_REPORT`, each against the same run without one. The report
///    is written as each body starts and as it ends, whole each time.
pub fn report(options: &Options) -> Vec<Row> {
    eprintln!("gpu-test-bench: 7. report: building");
    let dir = fixtures::write_crate("report", &[target("gpu_met", Tests::GpuDefault, 500)], "");
    let built = fixtures::build_tests(&dir, "test");
    let exe = fixtures::executable(&built, "gpu_met");
    let driver = fixtures::fake_driver();
    let runtime = fixtures::bench_dir().join("runtime-report");
    let report = fixtures::bench_dir().join("report.json");
    let run = |with_report: bool| {
        let mut command = measure::clean_command(&exe);
        command
            .env("LD_LIBRARY_PATH", &driver)
            .env("GPU_TEST_RUNTIME_DIR", &runtime);
        if with_report {
            command.env("GPU_TEST_REPORT", &report);
        }
        measure::run(&mut command)
    };
    eprintln!("gpu-test-bench: 7. report: running");
    let medians = with_and_without_report(options, &report, 500, &run);
    let mut rows = vec![Row {
        section: 7,
        what: "500 met #[gpu_test] in one cargo test binary (fake driver), GPU_TEST_REPORT=report.json"
            .to_string(),
        ours: medians[0],
        baseline: Some(("the same run without a report".to_string(), medians[1])),
        goal: Goal::None,
    }];
    // Under nextest each process reads the run's state, which the others keep changing, and
    // makes every entry's texts afresh.
    for (crate_name, extra, dependencies) in [
        ("report-nextest", "", "dependencies unoptimised"),
        (
            "report-nextest-opt",
            OPTIMISED_DEPENDENCIES,
            "dependencies optimised",
        ),
    ] {
        eprintln!("gpu-test-bench: 7. report under nextest, {dependencies}: building");
        let dir = fixtures::write_crate(crate_name, &[target("gpu_met", Tests::GpuHarness, 300)], extra);
        fixtures::build_tests(&dir, "test");
        let nextest = |with_report: bool| {
            let mut command = measure::cargo(&dir);
            command
                .args(["nextest", "run", "--no-fail-fast", "--target-dir"])
                .arg(fixtures::target_dir())
                .env("LD_LIBRARY_PATH", &driver)
                .env("GPU_TEST_RUNTIME_DIR", &runtime);
            if with_report {
                command.env("GPU_TEST_REPORT", &report);
            }
            measure::run(&mut command)
        };
        eprintln!("gpu-test-bench: 7. report under nextest, {dependencies}: running");
        let medians = with_and_without_report(options, &report, 300, &nextest);
        rows.push(Row {
            section: 7,
            what: format!(
                "cargo nextest run, 300 met #[gpu_test] (fake driver), GPU_TEST_REPORT=report.json, {dependencies}"
            ),
            ours: medians[0],
            baseline: Some(("the same run without a report".to_string(), medians[1])),
            goal: Goal::None,
        });
    }
    rows
}

/// The medians of `run` with a report at `report` and without one, interleaved; what was timed
/// must have written the whole report, its `tests` all passed.
fn with_and_without_report(
    options: &Options,
    report: &Path,
    tests: usize,
    run: &dyn Fn(bool) -> Duration,
) -> Vec<Duration> {
    let medians = interleaved(options.reps, &mut [&mut || run(true), &mut || run(false)]);
    let written = std::fs::read_to_string(report).expect("read the report section 7 wrote");
    assert!(
        written.contains(&format!("\"tests\": {tests},\n    \"passed\": {tests},")),
        "the report section 7 wrote does not have its {tests} passed tests:\n{}",
        written.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    medians
}
