//! The fault matrix: drivers that hang, crash, answer nonsense or codes nobody knows, and the
//! files and users of a shared machine. Each scenario runs in child processes on a described
//! machine and checks what gpu-test says, that it ends, and that it neither panics nor crashes
//! by its own doing.

use gpu_test_tests::{Fixture, Machine, Run, assert_finding};
use serde_json::Value;

/// The `harness = false` fixture (gpu-test's own `main()`).
fn harness(machine: &Machine, args: &[&str]) -> Run {
    machine.run("harness-basic", "gpu", args)
}

/// The default-libtest fixture.
fn libtest(machine: &Machine, args: &[&str]) -> Run {
    machine.run("libtest-basic", "gpu", args)
}

/// `program` with `args` on `machine`, stopped after two minutes: where gpu-test waited for ever
/// on a driver or a file that never answers, the scenario fails (status 124) rather than hanging
/// the suite.
fn within_two_minutes(machine: &Machine, program: &std::path::Path, args: &[&str]) -> Run {
    Run::of(
        machine
            .command("timeout")
            .args(["--kill-after=10", "120"])
            .arg(program)
            .args(args),
    )
}

/// [`harness`], stopped after two minutes.
fn harness_within_two_minutes(machine: &Machine, args: &[&str]) -> Run {
    within_two_minutes(machine, Fixture::build("harness-basic").test("gpu"), args)
}

/// A machine whose driver never returns from `call`, with a short probe limit.
fn hung_in(call: &str) -> Machine {
    Machine::with_fake_driver()
        .env("FAKE_CUDA_HANG", call)
        .env("GPU_TEST_PROBE_TIMEOUT", "200ms")
}

#[test]
fn a_driver_that_never_returns_from_cu_init_skips_every_test_naming_the_call() {
    let machine = hung_in("cuInit");
    let run = harness_within_two_minutes(&machine, &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    let reason = "ignored (the CUDA driver did not answer: cuInit (";
    assert!(run.stdout.contains(reason), "{}", run.all());
    assert!(
        run.stdout.contains(
            ") did not return within 200ms (GPU_TEST_PROBE_TIMEOUT), and gpu-test calls into it no more"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("Xid errors") && run.stderr.contains("nvidia-smi"),
        "{}",
        run.all()
    );

    // Listing (nextest's first step) ends too, and lists the tests as ignored.
    let list = harness_within_two_minutes(&machine, &["--list", "--ignored"]);
    assert_eq!(list.code, Some(0), "{}", list.all());
    assert!(list.stdout.contains("round_trip: test"), "{}", list.all());

    // Strict mode fails them, with the same reason.
    let strict = harness_within_two_minutes(&machine.env("GPU_TEST_STRICT", "1"), &[]);
    assert_eq!(strict.code, Some(101), "{}", strict.all());
    assert!(
        strict
            .all()
            .contains("GPU_TEST_STRICT=1 makes that a failure: the CUDA driver did not answer: cuInit"),
        "{}",
        strict.all()
    );
}

#[test]
fn a_driver_that_hangs_later_is_named_at_that_call_under_both_harnesses() {
    let machine = hung_in("cuDeviceGetCount");
    let run = within_two_minutes(&machine, Fixture::build("libtest-basic").test("gpu"), &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("gpu-test: skipped round_trip: the CUDA driver did not answer: cuDeviceGetCount ("),
        "{}",
        run.all()
    );

    let doctor = within_two_minutes(&machine, &gpu_test_tests::built().doctor, &["--json"]);
    doctor.assert_clean();
    assert_eq!(doctor.code, Some(1), "{}", doctor.all());
    let json = doctor.json();
    assert_finding(&json, "error", "the CUDA driver did not answer: cuDeviceGetCount");
    assert_eq!(json["driver"]["hung"]["call"], "cuDeviceGetCount", "{json:#}");
    let text = within_two_minutes(&machine, &gpu_test_tests::built().doctor, &[]);
    assert!(
        text.stdout.contains("did not answer: cuDeviceGetCount ("),
        "{}",
        text.stdout
    );
}

#[test]
fn a_driver_that_crashes_in_cu_init_is_named_before_the_process_dies() {
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_CRASH", "cuInit");
    let run = harness(&machine, &[]);
    assert_eq!(run.signal, Some(11), "{}", run.all());
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("gpu-test: the CUDA driver crashed in cuInit ("))
        .unwrap_or_else(|| panic!("no crash line:\n{}", run.all()));
    assert!(line.contains("libgpu_test_fake_cuda.so)"), "{line}");
    assert!(
        line.ends_with("the process is stopped by signal 11 (SIGSEGV)"),
        "{line}"
    );
}

#[test]
fn an_absurd_device_count_is_capped_with_a_reason() {
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_DEVICE_COUNT", "2147483647");
    let run = harness(&machine, &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("test round_trip ") && l.ends_with(" ok")),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(
            "cuDeviceGetCount reported 2147483647 devices, which no machine has: gpu-test read at most the first 64"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .contains("devices 1 to 63 could not be read: cuDeviceGet failed: CUDA_ERROR_INVALID_DEVICE"),
        "{}",
        run.all()
    );
    let json = machine.doctor(&["--json"]).json();
    assert_finding(&json, "error", "cuDeviceGetCount reported 2147483647 devices");
}

#[test]
fn an_nvcc_that_hangs_is_stopped_at_the_limit() {
    let machine = Machine::with_fake_driver().env("GPU_TEST_PROBE_TIMEOUT", "200ms");
    let bin = machine.dir().join("slow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let nvcc = bin.join("nvcc");
    // A wrapper that answers only after ten minutes, and leaves a process holding its output.
    std::fs::write(&nvcc, "#!/bin/sh\n(sleep 600 &)\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&nvcc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = machine.env("PATH", &path).doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert_finding(
        &json,
        "warning",
        "nvcc --version did not finish within 200ms (GPU_TEST_PROBE_TIMEOUT) and was stopped",
    );
}

#[test]
fn codes_cudarc_does_not_know_in_its_context_setup_never_reach_cudarc() {
    // The probe reads four attributes of the device; the fifth call is the memory-pool
    // attribute cudarc's context setup asks for.
    for (fail, call) in [
        ("cuDeviceGetAttribute+4=12345", "cuDeviceGetAttribute"),
        ("cuCtxSetCurrent=12345", "cuCtxSetCurrent"),
        ("cuCtxGetCurrent=12345", "cuCtxGetCurrent"),
    ] {
        let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", fail);
        let run = harness(&machine, &["--exact", "round_trip"]);
        run.assert_clean();
        assert_eq!(run.code, Some(101), "{fail}: {}", run.all());
        assert!(
            run.stdout.contains(&format!(
                "gpu-test: round_trip could not set up a CUDA context on device 0 NVIDIA Fake H100: {call} failed: \
                 unknown CUDA error code 12345"
            )),
            "{fail}: {}",
            run.all()
        );
    }
}

/// The context a test's devices were given is released after the body through gpu-test's own
/// call: a code cudarc does not know never reaches cudarc's bindings, and the failure, which
/// cudarc would keep in the value it was dropping, fails the test naming the call.
#[test]
fn a_context_that_cannot_be_released_fails_the_test_naming_the_call() {
    // The first release is of gpu-test's own reference, taken to check the context's setup; the
    // second, after the body, of the context the body was given.
    for (fail, failure) in [
        (
            "cuDevicePrimaryCtxRelease_v2+1=12345",
            "could not release its CUDA context on device 0 NVIDIA Fake H100: cuDevicePrimaryCtxRelease_v2 \
             failed: unknown CUDA error code 12345",
        ),
        (
            "cuDevicePrimaryCtxRelease_v2+1=201",
            "could not release its CUDA context on device 0 NVIDIA Fake H100: cuDevicePrimaryCtxRelease_v2 \
             failed: CUDA_ERROR_INVALID_CONTEXT (201)",
        ),
        (
            "cuDevicePrimaryCtxRelease_v2=12345",
            "could not release gpu-test's own reference to the context on device 0 NVIDIA Fake H100: \
             cuDevicePrimaryCtxRelease_v2 failed: unknown CUDA error code 12345",
        ),
    ] {
        let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", fail);
        let run = harness(&machine, &["--exact", "round_trip"]);
        run.assert_clean();
        assert_eq!(run.code, Some(101), "{fail}: {}", run.all());
        assert!(
            run.stdout.contains(&format!("gpu-test: round_trip {failure}")),
            "{fail}: {}",
            run.all()
        );
    }
}

/// An error cudarc recorded as the body dropped one of its objects (here: freeing the memory of
/// a `CudaSlice`), which no call returned to the body, fails the test.
#[test]
fn an_error_cudarc_recorded_from_a_drop_fails_the_test() {
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuMemFree_v2=1");
    let run = harness(&machine, &["--exact", "round_trip"]);
    run.assert_clean();
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: round_trip left a CUDA error on device 0 NVIDIA Fake H100 that no call of the body \
             returned (cudarc recorded it as it freed or destroyed an object the body dropped: memory, a stream, \
             an event, a module): CUDA_ERROR_INVALID_VALUE (1)"
        ),
        "{}",
        run.all()
    );
}

/// Every context retained for a test is released once, and no more, in a process that runs
/// several tests one after another, one of them on two devices, and where that test's second
/// device cannot be opened (the first is let go of all the same).
#[test]
fn each_context_a_test_retains_is_released_once() {
    let two = "NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB";
    for (fail, passes) in [("", true), ("cuDevicePrimaryCtxRetain@1=2", false)] {
        let machine = Machine::with_fake_driver()
            .devices(two)
            .env("FAKE_CUDA_FAIL", fail);
        let log = machine.dir().join("contexts.log");
        let machine = machine.env("FAKE_CUDA_LOG", log.to_str().unwrap());
        let run = harness(&machine, &["--test-threads", "1"]);
        run.assert_clean();
        assert_eq!(run.code == Some(0), passes, "{fail}: {}", run.all());
        let log = std::fs::read_to_string(&log).unwrap();
        for ordinal in ["0", "1"] {
            let count = |event: &str| {
                log.lines()
                    .filter(|line| line.split(' ').skip(1).eq([event, ordinal]))
                    .count()
            };
            // Each test on the first device; the second, in two_devices where it opened.
            let least = if ordinal == "0" { 3 } else { usize::from(passes) };
            assert!(count("retain") >= least, "{fail}: device {ordinal}: {log}");
            assert_eq!(
                count("retain"),
                count("release"),
                "{fail}: device {ordinal}: {log}"
            );
            assert_eq!(count("release-unretained"), 0, "{fail}: device {ordinal}: {log}");
        }
    }
}

/// The leak check's warm-up goes through device memory before the body, as the body's first
/// copies would: through gpu-test's own calls, so a code cudarc does not know (undefined
/// behaviour there, a crash in practice) fails the test naming the call.
#[test]
fn codes_cudarc_does_not_know_in_the_leak_checks_warm_up_never_reach_cudarc() {
    for (fail, pools, call) in [
        ("cuMemAlloc_v2=12345", "", "cuMemAlloc_v2"),
        ("cuMemAlloc_v2=12345", "1", "cuMemAllocAsync"),
        ("cuMemsetD8Async=12345", "", "cuMemsetD8Async"),
        ("cuStreamSynchronize=12345", "1", "cuStreamSynchronize"),
        // A kernel's fault poisons the context: the call that met it is named, not the timing
        // event that fails after it.
        ("cuMemsetD8Async=700", "", "cuMemsetD8Async"),
    ] {
        let machine = Machine::with_fake_driver()
            .env("FAKE_CUDA_FAIL", fail)
            .env("FAKE_CUDA_MEMORY_POOLS", pools)
            .env("GPU_TEST_LEAK_CHECK", "1");
        let run = harness(&machine, &["--exact", "round_trip"]);
        run.assert_clean();
        assert_eq!(run.code, Some(101), "{fail}: {}", run.all());
        assert!(
            run.stdout.contains(&format!(
                "gpu-test: round_trip cannot be checked for leaks: preparing device 0 NVIDIA Fake H100 for the \
                 measurement failed: {call} failed: "
            )),
            "{fail}: {}",
            run.all()
        );
    }
}

#[test]
fn event_times_that_are_not_times_fail_the_test_without_a_panic() {
    for value in ["inf", "1e38", "-1", "NaN"] {
        let machine = Machine::with_fake_driver().env("FAKE_CUDA_EVENT_MS", value);
        let run = machine.run("execution", "execution", &["--exact", "timed_regions"]);
        run.assert_clean();
        assert_eq!(run.code, Some(101), "{value}: {}", run.all());
        assert!(
            run.stdout.contains("cuEventElapsedTime returned")
                && run.stdout.contains("which is not the time between two events"),
            "{value}: {}",
            run.all()
        );
    }
}

/// Two processes of one run (here: of one nextest run) whose runtime directories differ do not
/// share the run's state: the second fails to write the report, saying why, rather than write it
/// anew without the first one's entries.
#[test]
fn a_process_that_cannot_see_its_runs_state_keeps_the_others_entries() {
    for file in ["report.json", "report.xml"] {
        let machine = Machine::with_fake_driver().env("NEXTEST_RUN_ID", "one-run");
        let elsewhere = machine.dir().join("another-runtime");
        let (machine, report) = machine.reporting_to(file);
        let first = harness(&machine, &["--exact", "round_trip"]);
        assert_eq!(first.code, Some(0), "{file}: {}", first.all());
        let machine = machine.env("GPU_TEST_RUNTIME_DIR", elsewhere.to_str().unwrap());
        let second = harness(&machine, &["--exact", "nested::without_the_handle"]);
        assert_eq!(second.code, Some(101), "{file}: {}", second.all());
        assert!(
            second.all().contains(&format!(
                "{} has entries of this run that its report state in {}",
                report.display(),
                elsewhere.join("reports").display()
            )),
            "{file}: {}",
            second.all()
        );
        let text = std::fs::read_to_string(&report).unwrap();
        assert!(text.contains("round_trip"), "{file}: {text}");
    }
    // Binaries run by hand from one shell are one run however long the shell lives, and a state
    // untouched for a day is swept: such a run starts its report anew.
    let machine = Machine::with_fake_driver();
    let elsewhere = machine.dir().join("another-runtime");
    let (machine, _) = machine.reporting_to("report.json");
    assert_eq!(harness(&machine, &["--exact", "round_trip"]).code, Some(0));
    let machine = machine.env("GPU_TEST_RUNTIME_DIR", elsewhere.to_str().unwrap());
    let second = harness(&machine, &["--exact", "nested::without_the_handle"]);
    assert_eq!(second.code, Some(0), "{}", second.all());
}

/// FNV-1a of the report's path: the name of its state file under `<runtime dir>/reports`.
fn state_file(machine: &Machine, report: &std::path::Path) -> std::path::PathBuf {
    let dir = std::fs::canonicalize(report.parent().unwrap()).unwrap();
    let hash = dir
        .join(report.file_name().unwrap())
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    machine
        .dir()
        .join("runtime/reports")
        .join(format!("{hash:016x}.json"))
}

/// A process's start time, as `/proc/<pid>/stat` gives it.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    after_name.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn two_packages_with_a_gpu_target_each_keep_their_entries() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    // Both packages name their target `gpu`; one's round_trip fails, the other's passes.
    let failed = Run::of(
        machine
            .command(Fixture::build("harness-basic").test("gpu"))
            .env("FAKE_CUDA_FAIL", "cuDevicePrimaryCtxRetain=2")
            .args(["--exact", "round_trip"]),
    );
    assert_eq!(failed.code, Some(101), "{}", failed.all());
    let passed = libtest(&machine, &["--exact", "round_trip"]);
    assert_eq!(passed.code, Some(0), "{}", passed.all());
    let json = gpu_test_tests::read_report(&report);
    let outcome = |suite: &str| {
        json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["suite"] == suite && t["name"] == "round_trip")
            .map(|t| t["outcome"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {suite} round_trip: {json:#}"))
    };
    assert_eq!(outcome("harness-basic::gpu"), "failed");
    assert_eq!(outcome("libtest-basic::gpu"), "passed");
}

/// The suites `report` holds entries for.
fn suites_in(report: &std::path::Path) -> Vec<String> {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let mut suites: Vec<String> = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["suite"].as_str().unwrap().to_string())
        .collect();
    suites.dedup();
    suites
}

#[test]
fn test_binaries_behind_a_forking_target_runner_share_one_report() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    // A target runner that forks (a wrapper script, sudo, compute-sanitizer) puts a process of
    // its own between cargo and each test binary; a copy of sh named cargo stands for cargo.
    let runner = machine.dir().join("runner.sh");
    std::fs::write(&runner, "#!/bin/sh\n\"$@\"\nexit $?\n").unwrap();
    std::fs::set_permissions(&runner, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cargo = machine.dir().join("cargo");
    std::fs::copy("/bin/sh", &cargo).unwrap();
    let run = Run::of(
        machine
            .command(&cargo)
            .arg("-c")
            .arg(r#"for binary in "$@"; do "$0" "$binary" --exact round_trip || exit 1; done"#)
            .arg(&runner)
            .arg(Fixture::build("harness-basic").test("gpu"))
            .arg(Fixture::build("libtest-basic").test("gpu")),
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(suites_in(&report), ["harness-basic::gpu", "libtest-basic::gpu"]);
}

#[test]
fn one_report_named_from_two_directories_keeps_both_binaries_entries() {
    let machine = Machine::with_fake_driver().env("GPU_TEST_REPORT", "../report.json");
    for (fixture, cwd) in [("harness-basic", "a"), ("libtest-basic", "b")] {
        let cwd = machine.dir().join(cwd);
        std::fs::create_dir_all(&cwd).unwrap();
        let run = Run::of(
            machine
                .command(Fixture::build(fixture).test("gpu"))
                .current_dir(&cwd)
                .args(["--exact", "round_trip"]),
        );
        assert_eq!(run.code, Some(0), "{}", run.all());
    }
    assert_eq!(
        suites_in(&machine.dir().join("report.json")),
        ["harness-basic::gpu", "libtest-basic::gpu"]
    );
}

#[test]
fn report_states_nobody_wrote_for_a_day_are_removed_when_a_report_is_written() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    // Another report's state, last written two days ago.
    let reports = machine.dir().join("runtime/reports");
    std::fs::create_dir_all(&reports).unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(48 * 3600);
    for name in ["00000000deadbeef.json", "00000000deadbeef.lock"] {
        let file = std::fs::File::create(reports.join(name)).unwrap();
        file.set_modified(two_days_ago).unwrap();
    }
    let run = harness(&machine, &["--exact", "round_trip"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let mut left: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let state = state_file(&machine, &report);
    let ours = state.file_stem().unwrap().to_string_lossy();
    let mut wanted = [
        format!("{ours}.json"),
        format!("{ours}.lock"),
        "check.lock".to_string(),
    ];
    wanted.sort();
    assert_eq!(left, wanted);
}

#[test]
fn a_second_run_writing_the_same_report_at_once_fails_loudly() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    // Another run, still going: its owner is a live process other than this test's.
    let mut other = std::process::Command::new("sleep").arg("600").spawn().unwrap();
    let owner = serde_json::json!({ "pid": other.id(), "start": start_time(other.id()) });
    let state = state_file(&machine, &report);
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let theirs = serde_json::json!({
        "run": "parent-other", "owner": owner, "gpu_test_version": "0.1.0", "format": "json", "suites": []
    });
    std::fs::write(&state, format!("gpu-test report state 2\n{theirs}\n")).unwrap();
    std::fs::write(
        &report,
        "{\"gpu_test_version\": \"0.1.0\", \"tests\": [\"theirs\"]}",
    )
    .unwrap();
    let run = harness(&machine, &["--exact", "round_trip"]);
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "another test run (started by process {}, which is still running) is writing the same report",
            owner["pid"]
        )),
        "{}",
        run.all()
    );
    assert!(
        std::fs::read_to_string(&report).unwrap().contains("theirs"),
        "the other run's report is left alone"
    );

    // Once that run is over, a new run replaces its report.
    let run = harness(&machine, &["--exact", "round_trip"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(!std::fs::read_to_string(&report).unwrap().contains("theirs"));
}

#[test]
fn a_file_that_is_not_a_report_is_not_overwritten() {
    let machine = Machine::with_fake_driver();
    let report = machine.dir().join("notes.xml");
    std::fs::write(&report, "<notes>mine</notes>").unwrap();
    let machine = machine.env("GPU_TEST_REPORT", report.to_str().unwrap());
    for run in [harness(&machine, &[]), libtest(&machine, &[])] {
        assert_eq!(run.code, Some(101), "{}", run.all());
        assert!(
            run.all()
                .contains("exists and is not a gpu-test report, so it is not overwritten"),
            "{}",
            run.all()
        );
    }
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "<notes>mine</notes>");
}

#[test]
fn an_unusable_runtime_directory_stops_the_run_before_any_test_naming_the_variable() {
    let machine = Machine::with_fake_driver();
    let report = machine.dir().join("report.xml");
    let machine = machine
        .env("GPU_TEST_REPORT", report.to_str().unwrap())
        .env("GPU_TEST_RUNTIME_DIR", "/proc/gpu-test-runtime");
    for (run, own_harness) in [(harness(&machine, &[]), true), (libtest(&machine, &[]), false)] {
        assert_eq!(run.code, Some(101), "{}", run.all());
        assert!(
            run.all().contains(
                "gpu-test: the runtime directory is not usable: /proc/gpu-test-runtime could not be created"
            ) && run.all().contains("GPU_TEST_RUNTIME_DIR names it"),
            "{}",
            run.all()
        );
        if own_harness {
            // gpu-test's `main()` stops before libtest-mimic starts any test.
            assert!(
                !run.stdout.contains("\nrunning ") && !run.stdout.starts_with("running "),
                "no test may run:\n{}",
                run.all()
            );
        } else {
            // Under libtest each GPU test stops at its start.
            let passed: Vec<&str> = run.stdout.lines().filter(|l| l.ends_with(" ... ok")).collect();
            assert_eq!(
                passed,
                ["test cpu_only ... ok"],
                "no GPU test may pass:\n{}",
                run.all()
            );
        }
    }
    assert!(!report.exists(), "no file is left at the report's path");
}

/// A report write that fails is tried again by the next: a test whose own outcome could not be
/// written when it ended is not left in the report as failed for want of one, nor missing, once
/// the report can be written again (the run still fails, with the first error).
#[test]
fn an_entry_whose_write_failed_is_written_by_the_next_write() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let state = state_file(&machine, &report);
    let machine = machine.env("REPORT_STATE", state.to_str().unwrap());
    let run = machine.run(
        "execution",
        "execution",
        &["--ignored", "report_write_", "--test-threads", "1"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr
            .contains("gpu-test: could not write the report GPU_TEST_REPORT="),
        "{}",
        run.all()
    );
    let json = gpu_test_tests::read_report(&report);
    for test in ["report_write_a_blocks", "report_write_b_unblocks"] {
        let entry = gpu_test_tests::report_entry(&json, test)
            .unwrap_or_else(|| panic!("{test} is not in the report: {json:#}"));
        assert_eq!(entry["outcome"], "passed", "{test}: {json:#}");
    }
}

#[test]
fn a_report_that_cannot_be_written_at_the_end_fails_the_default_harness_too() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    // The state file's place is taken by a directory: no write of the run's gets through.
    std::fs::create_dir_all(state_file(&machine, &report)).unwrap();
    let run = libtest(&machine, &["--exact", "round_trip"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(run.stdout.contains("test round_trip ... ok"), "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "gpu-test: could not write the report GPU_TEST_REPORT={}: its state in",
            report.display()
        )),
        "{}",
        run.all()
    );
    assert!(!report.exists(), "no empty or partial file at the report's path");
    let leftovers: Vec<_> = std::fs::read_dir(machine.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// This process's real user id.
fn user_id() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:")?.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Runs `program` as the unprivileged user 65534, when this process may (root, with setpriv).
fn as_another_user(program: &str, args: &[&str]) -> bool {
    if user_id() != 0 {
        eprintln!("skipped: the second-user cases need root to act as another user");
        return false;
    }
    let status = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", program])
        .args(args)
        .status();
    match status {
        Ok(status) if status.success() => true,
        // As root with setpriv, a command that fails is the test's own mistake, not a reason to skip.
        Ok(status) => panic!("{program} {args:?} as user 65534 failed: {status}"),
        Err(error) => {
            eprintln!("skipped: setpriv could not run {program} as user 65534: {error}");
            false
        }
    }
}

/// Leases are in `runtime`: the run made its lease directory there.
fn leases_are_in(runtime: &std::path::Path) -> bool {
    runtime.join("leases").is_dir()
}

#[test]
fn a_default_runtime_directory_made_by_another_user_is_passed_over() {
    use std::os::unix::fs::PermissionsExt;
    let machine = Machine::with_fake_driver();
    // A shared temporary directory, as /tmp is.
    let tmp = machine.dir().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(machine.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = machine.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // Another user takes the name first, which anyone can guess.
    let planted = tmp.join("gpu-test-0");
    if !as_another_user("mkdir", &["-m", "0777", planted.to_str().unwrap()]) {
        return;
    }
    let run_with = |home: &std::path::Path| {
        let mut command = machine.command(Fixture::build("harness-basic").test("gpu"));
        command
            .env_remove("GPU_TEST_RUNTIME_DIR")
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", &tmp)
            .env("HOME", home)
            .args(["--exact", "round_trip"]);
        Run::of(&mut command)
    };
    // It blocks nothing: the run uses the home's cache.
    let run = run_with(&home);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(leases_are_in(&home.join(".cache/gpu-test")), "{}", run.all());
    assert_eq!(
        std::fs::read_dir(&planted).unwrap().count(),
        0,
        "nothing was written there"
    );

    // Without a home of this user's, the refusal names the directory and who made it.
    let run = run_with(&machine.dir().join("no-such-home"));
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "{} belongs to user 65534, not to this user (0)",
            planted.display()
        )) && run.stderr.contains("set GPU_TEST_RUNTIME_DIR"),
        "{}",
        run.all()
    );
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);

    // The cache, once made, is kept: the other user removing theirs cannot split this user's runs
    // between two directories whose leases do not see each other.
    assert!(as_another_user("rmdir", &[planted.to_str().unwrap()]));
    let run = run_with(&home);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(!planted.exists(), "the run went back to {}", planted.display());
}

#[test]
fn an_xdg_runtime_dir_or_temporary_directory_not_fit_for_this_user_is_passed_over() {
    use std::os::unix::fs::PermissionsExt;
    let machine = Machine::with_fake_driver();
    let tmp = machine.dir().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let home = machine.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run_with = |xdg: Option<&std::path::Path>, tmpdir: &std::ffi::OsStr, home: &std::path::Path| {
        let mut command = machine.command(Fixture::build("harness-basic").test("gpu"));
        command
            .env_remove("GPU_TEST_RUNTIME_DIR")
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", tmpdir)
            .env("HOME", home)
            .current_dir(machine.dir())
            .args(["--exact", "round_trip"]);
        if let Some(xdg) = xdg {
            command.env("XDG_RUNTIME_DIR", xdg);
        }
        Run::of(&mut command)
    };

    // A relative TMPDIR, which each process would find from its own working directory.
    let run = run_with(None, "relative-tmp".as_ref(), &home);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(leases_are_in(&home.join(".cache/gpu-test")), "{}", run.all());
    assert!(!machine.dir().join("relative-tmp").exists());
    let run = run_with(None, "relative-tmp".as_ref(), &machine.dir().join("no-such-home"));
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr.contains(&format!(
            "the runtime directory is not usable: relative-tmp/gpu-test-{} is a relative path",
            user_id()
        )),
        "{}",
        run.all()
    );

    // Another user's XDG_RUNTIME_DIR, as `sudo -E` keeps it (with a home whose cache is not made
    // yet, which would come first).
    std::fs::set_permissions(machine.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = machine.dir().join("run");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let foreign = shared.join("user-65534");
    if !as_another_user("mkdir", &["-m", "0700", foreign.to_str().unwrap()]) {
        return;
    }
    let fresh_home = machine.dir().join("fresh-home");
    std::fs::create_dir_all(&fresh_home).unwrap();
    let run = run_with(Some(&foreign), tmp.as_os_str(), &fresh_home);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(leases_are_in(&tmp.join("gpu-test-0")), "{}", run.all());
}

/// A group-writable directory on the way is trusted only where the group is the user's own
/// private group: here, a group of other users.
#[test]
fn a_runtime_directory_a_shared_group_may_write_above_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    if user_id() != 0 {
        eprintln!("skipped: giving a directory to another group needs root");
        return;
    }
    let machine = Machine::with_fake_driver();
    let shared = machine.dir().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::chown(&shared, None, Some(65534)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).unwrap();
    let machine = machine.env("GPU_TEST_RUNTIME_DIR", shared.join("runtime").to_str().unwrap());
    let run = harness(&machine, &["--exact", "round_trip"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(&format!(
            "is inside {}, which may be written by group or others (mode 775)",
            shared.display()
        )),
        "{}",
        run.all()
    );

    // Root's own group, where it has no other member (as in this suite's containers), is private.
    let root_group_is_private = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .any(|line| line == "root:x:0:")
        && std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .all(|line| line.split(':').nth(3) != Some("0") || line.starts_with("root:"));
    if root_group_is_private {
        std::os::unix::fs::chown(&shared, None, Some(0)).unwrap();
        let run = harness(&machine, &["--exact", "round_trip"]);
        assert_eq!(run.code, Some(0), "{}", run.all());
    }
}

#[test]
fn a_temporary_directory_others_may_rename_in_is_not_the_default_runtime_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let machine = Machine::with_fake_driver();
    // Writable by all without the sticky bit, as a Kubernetes emptyDir mounted at /tmp is.
    let open = machine.dir().join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let home = machine.dir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = machine.command(Fixture::build("harness-basic").test("gpu"));
    command
        .env_remove("GPU_TEST_RUNTIME_DIR")
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &open)
        .env("HOME", &home)
        .args(["--exact", "round_trip"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let cache = home.join(".cache/gpu-test");
    assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
    assert!(
        cache.join("leases").is_dir(),
        "the leases are in the home's cache"
    );
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "nothing in {}",
        open.display()
    );

    // A home that is not this user's directory (a container's user without an account) is no
    // fallback: the refusal names the temporary directory, the real cause.
    let mut command = machine.command(Fixture::build("harness-basic").test("gpu"));
    command
        .env_remove("GPU_TEST_RUNTIME_DIR")
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &open)
        .env("HOME", machine.dir().join("no-such-home"))
        .args(["--exact", "round_trip"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all()
            .contains(&format!("is inside {}, which may be written", open.display())),
        "{}",
        run.all()
    );

    // Named by GPU_TEST_RUNTIME_DIR, such a place is refused, naming it.
    let run = harness(
        &machine.env("GPU_TEST_RUNTIME_DIR", open.join("runtime").to_str().unwrap()),
        &["--exact", "round_trip"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(&format!(
            "is inside {}, which may be written by group or others (mode 777)",
            open.display()
        )),
        "{}",
        run.all()
    );
}

#[test]
fn files_in_the_runtime_directory_are_private_and_never_followed_through_links() {
    use std::os::unix::fs::MetadataExt;
    let machine = Machine::with_fake_driver();
    let runtime = machine.dir().join("runtime");
    let run = harness(&machine, &["--exact", "round_trip"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(std::fs::metadata(&runtime).unwrap().mode() & 0o777, 0o700);
    let leases: Vec<_> = std::fs::read_dir(runtime.join("leases"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!leases.is_empty());
    for lease in &leases {
        assert_eq!(lease.metadata().unwrap().mode() & 0o777, 0o600, "{lease:?}");
    }

    // A lease file replaced by a link to another file: the test fails, the file is untouched.
    let victim = machine.dir().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let lease = leases[0].path();
    std::fs::remove_file(&lease).unwrap();
    std::os::unix::fs::symlink(&victim, &lease).unwrap();
    let run = harness(&machine, &["--exact", "round_trip"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains("could not open the lease file"),
        "{}",
        run.all()
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// The driver shows no device where `CUDA_VISIBLE_DEVICES` lists one twice: the reason names the
/// repeat, not a missing GPU.
#[test]
fn one_gpu_listed_twice_hides_every_gpu_and_said_so() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("CUDA_VISIBLE_DEVICES", "0,1,0");
    let run = harness(&machine, &["--exact", "round_trip"]);
    run.assert_clean();
    assert!(
        run.stdout.contains(
            "CUDA_VISIBLE_DEVICES=0,1,0 lists 0 twice, with which the driver shows no device at all"
        ),
        "{}",
        run.all()
    );
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "warning",
        "lists 0 twice, with which the driver shows no device at all",
    );
    // Where the driver reads only an entry's leading number, the doctor says so.
    let cut = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("CUDA_VISIBLE_DEVICES", "0;1");
    let run = harness(&cut, &["--exact", "two_devices"]);
    assert!(
        run.stdout.contains(
            "needs 2 CUDA devices, found 1 (CUDA_VISIBLE_DEVICES=\"0;1\" leaves at most 1 device visible: the \
             driver reads an entry's leading number, so \"0;1\" is 0)"
        ),
        "{}",
        run.all()
    );
    assert_finding(&cut.doctor(&["--json"]).json(), "warning", "so \"0;1\" is 0");
}

/// A driver that shows a GPU listed twice as two devices: gpu-test counts it once.
#[test]
fn one_gpu_listed_twice_is_one_gpu_and_said_so_at_once() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("FAKE_CUDA_SHOWS_REPEATS", "1")
        .env("CUDA_VISIBLE_DEVICES", "0,0");
    let run = harness(&machine, &["--exact", "two_devices"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains(
            "ignored (needs 2 CUDA devices, found 1 distinct among 2 ordinals (CUDA_VISIBLE_DEVICES=0,0 lists 0 \
             twice, and one GPU cannot serve as two)"
        ),
        "{}",
        run.all()
    );
    let json = machine.doctor(&["--json"]).json();
    assert_finding(&json, "warning", "lists 0 twice");
}

#[test]
fn a_driver_library_whose_dependency_is_missing_is_not_called_absent() {
    // The copy's dynamic section asks for "Xibgcc_s.so.1", which no directory has.
    let machine = Machine::with_fake_driver().without_symbol("libgcc_s.so.1");
    let run = harness(&machine, &["--exact", "round_trip"]);
    run.assert_clean();
    assert!(
        run.stdout
            .contains("was found but cannot be loaded: a library it needs, Xibgcc_s.so.1, is missing"),
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains("no CUDA driver"), "{}", run.all());
    assert!(run.stderr.contains("`ldd "), "{}", run.all());
}

#[test]
fn a_dangling_libcuda_link_is_named() {
    let machine = Machine::without_driver();
    let lib = machine.dir().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::os::unix::fs::symlink("/nonexistent/libcuda.so.580.65.06", lib.join("libcuda.so.1")).unwrap();
    let run = harness(&machine, &["--exact", "round_trip"]);
    run.assert_clean();
    assert!(
        run.stdout.contains(&format!(
            "no CUDA driver: {}/libcuda.so.1 is a symbolic link to /nonexistent/libcuda.so.580.65.06, which \
             does not exist",
            lib.display()
        )),
        "{}",
        run.all()
    );
}

#[test]
fn an_empty_library_path_element_is_a_doctor_finding() {
    let machine = Machine::with_fake_driver();
    let lib = machine.dir().join("lib");
    let machine = machine.env("LD_LIBRARY_PATH", &format!("{}::", lib.display()));
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "warning",
        "has an empty element (a leading, trailing or doubled ':')",
    );
}

#[test]
fn control_characters_from_the_driver_cannot_inject_annotations() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake\n::error::injected|9.0|8GiB")
        .env("GITHUB_ACTIONS", "true");
    for run in [harness(&machine, &[]), libtest(&machine, &[])] {
        run.assert_clean();
        let all = run.all();
        assert!(
            all.lines().all(|line| !line.starts_with("::error::injected")),
            "{all}"
        );
        assert!(all.contains("NVIDIA Fake\\n::error::injected"), "{all}");
    }
    let text = machine.doctor(&[]);
    assert!(
        text.stdout
            .lines()
            .all(|line| !line.trim_start().starts_with("::error::injected")),
        "{}",
        text.stdout
    );
}

#[test]
fn a_state_file_with_numbers_out_of_range_fails_loudly_without_a_panic() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    // This run's state (the run is this test process, the fixture's parent) with a duration no
    // Duration holds.
    let me = std::process::id();
    let run = format!("parent-{me}-{}", start_time(me));
    let state = state_file(&machine, &report);
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let header = serde_json::json!({
        "run": run, "owner": null, "gpu_test_version": "0.1.0", "format": "json", "suites": []
    });
    let entry = "{}";
    let broken = format!(
        "gpu-test report state 2\n{header}\n10 1 {} 0 18446744073709551615 4000000000 failed\nother::gput{entry}\n",
        entry.len()
    );
    std::fs::write(&state, broken).unwrap();
    for run in [
        libtest(&machine, &["--exact", "round_trip"]),
        harness(&machine, &["--exact", "round_trip"]),
    ] {
        run.assert_clean();
        assert_eq!(run.code, Some(101), "{}", run.all());
        assert!(
            run.stderr.contains("this run's report state in")
                && run
                    .stderr
                    .contains("cannot be read (record 1 has \"4000000000\" for its duration's nanoseconds)"),
            "{}",
            run.all()
        );
    }
    assert!(
        std::fs::read_to_string(&state).unwrap().contains("other::gpu"),
        "the state is kept"
    );
}

#[test]
fn a_fifo_at_the_report_path_does_not_block_the_run() {
    let machine = Machine::with_fake_driver();
    let report = machine.dir().join("report.xml");
    let made = std::process::Command::new("mkfifo")
        .arg(&report)
        .status()
        .unwrap();
    assert!(made.success());
    let run = harness_within_two_minutes(&machine.env("GPU_TEST_REPORT", report.to_str().unwrap()), &[]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(run.stderr.contains("is not a regular file"), "{}", run.all());
}
