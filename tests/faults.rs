//! The fault matrix: drivers that hang, crash, answer nonsense or codes nobody knows, and the
//! files and users of a shared machine. Each scenario runs in child processes on a described
//! machine and checks what gpu-test says, that it ends, and that it neither panics nor crashes
//! by its own doing.

use gpu_test_tests::{Fixture, Machine, Run};
use serde_json::Value;

/// The `harness = false` fixture (gpu-test's own `main()`).
fn harness(machine: &Machine, args: &[&str]) -> Run {
    Run::of(
        machine
            .command(Fixture::build("harness-basic").test("gpu"))
            .args(args),
    )
}

/// The default-libtest fixture.
fn libtest(machine: &Machine, args: &[&str]) -> Run {
    Run::of(
        machine
            .command(Fixture::build("libtest-basic").test("gpu"))
            .args(args),
    )
}

/// The fixture whose bodies time GPU work and hold devices.
fn execution(machine: &Machine, args: &[&str]) -> Run {
    Run::of(
        machine
            .command(Fixture::build("execution").test("execution"))
            .args(args),
    )
}

fn findings(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}: {} / {}", f["severity"], f["text"], f["hint"]))
        .collect()
}

fn has_finding(json: &Value, text: &str) -> bool {
    findings(json).iter().any(|f| f.contains(text))
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
    let run = harness(&machine, &[]);
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
    let list = harness(&machine, &["--list", "--ignored"]);
    assert_eq!(list.code, Some(0), "{}", list.all());
    assert!(list.stdout.contains("round_trip: test"), "{}", list.all());

    // Strict mode fails them, with the same reason.
    let strict = harness(&machine.env("GPU_TEST_STRICT", "1"), &[]);
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
    let run = libtest(&machine, &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("gpu-test: skipped round_trip: the CUDA driver did not answer: cuDeviceGetCount ("),
        "{}",
        run.all()
    );

    let doctor = machine.doctor(&["--json"]);
    doctor.assert_clean();
    assert_eq!(doctor.code, Some(1), "{}", doctor.all());
    let json = doctor.json();
    assert!(
        has_finding(&json, "the CUDA driver did not answer: cuDeviceGetCount"),
        "{:#?}",
        findings(&json)
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
    assert!(
        has_finding(&json, "cuDeviceGetCount reported 2147483647 devices"),
        "{:#?}",
        findings(&json)
    );
}

#[test]
fn an_nvcc_that_hangs_is_stopped_at_the_limit() {
    let machine = Machine::with_fake_driver().env("GPU_TEST_PROBE_TIMEOUT", "200ms");
    let bin = machine.dir().join("slow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let nvcc = bin.join("nvcc");
    std::fs::write(&nvcc, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&nvcc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = machine.env("PATH", &path).doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert!(
        has_finding(
            &json,
            "nvcc --version did not finish within 200ms (GPU_TEST_PROBE_TIMEOUT) and was stopped"
        ),
        "{:#?}",
        findings(&json)
    );
}

#[test]
fn codes_cudarc_does_not_know_in_its_context_setup_never_reach_cudarc() {
    // The probe reads four attributes of the device; the fifth call is the memory-pool
    // attribute cudarc's context setup asks for.
    for fail in [
        "cuDeviceGetAttribute+4=12345",
        "cuCtxSetCurrent=12345",
        "cuCtxGetCurrent=12345",
    ] {
        let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", fail);
        let run = harness(&machine, &["--exact", "round_trip"]);
        run.assert_clean();
        assert_eq!(run.code, Some(101), "{fail}: {}", run.all());
        assert!(
            run.stdout.contains(
                "gpu-test: round_trip could not set up a CUDA context on device 0 NVIDIA Fake H100: unknown CUDA \
                 error code 12345"
            ),
            "{fail}: {}",
            run.all()
        );
    }
}

#[test]
fn event_times_that_are_not_times_fail_the_test_without_a_panic() {
    for value in ["inf", "1e38", "-1", "NaN"] {
        let machine = Machine::with_fake_driver().env("FAKE_CUDA_EVENT_MS", value);
        let run = execution(&machine, &["--exact", "timed_regions"]);
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
