//! Running bodies on (fake) GPUs: CUDA-event timing and its aggregation, device leases across
//! threads and processes, and faults (errors, panics, sticky CUDA errors, timeouts).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

use gpu_test_tests::{Fixture, Machine, Run};

const TWO_DEVICES: &str = "NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB";

fn execution(machine: &Machine, args: &[&str]) -> Run {
    machine.run("execution", "execution", args)
}

/// The execution fixture under `timeout`, which stops a process that does not end (a test of a
/// hang must not hang the suite).
fn execution_within_two_minutes(machine: &Machine, args: &[&str]) -> Run {
    Run::of(
        machine
            .command("timeout")
            .args(["--kill-after=10", "120"])
            .arg(Fixture::build("execution").test("execution"))
            .args(args),
    )
}

/// `cargo nextest run` on the fixture crate `fixture`, on `machine`, arguments to follow.
fn nextest_run(machine: &Machine, fixture: &Fixture) -> Command {
    let mut command = machine.command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["nextest", "run", "--color", "never", "--manifest-path"])
        .arg(fixture.dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(Fixture::target_dir());
    command
}

fn command(machine: &Machine, args: &[&str]) -> Command {
    let mut command = machine.command(Fixture::build("execution").test("execution"));
    command.args(args);
    command
}

#[test]
fn timed_regions_are_aggregated_and_printed_per_label() {
    let machine =
        Machine::with_fake_driver().env("FAKE_CUDA_EVENT_MS", "0.0413,0.0409,0.0440,0.0415,0.0412,0.005");
    let (machine, report) = machine.reporting_to("report.json");
    let run = execution(&machine, &["--exact", "timed_regions"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        run.stderr_lines("gpu-test: timing "),
        [
            "gpu-test: timing timed_regions: saxpy 5 x median 41.3 us (min 40.9, max 44.0), device 0 NVIDIA Fake H100",
            "gpu-test: timing timed_regions: copy 1 x median 5.00 us (min 5.00, max 5.00), device 0 NVIDIA Fake H100",
        ],
        "{}",
        run.stderr
    );
    let json = gpu_test_tests::read_report(&report);
    let timings = &json["tests"][0]["timings"];
    assert_eq!(timings[0]["label"], "saxpy");
    assert_eq!(timings[0]["count"], 5);
    let close = |value: &serde_json::Value, expected: f64| (value.as_f64().unwrap() - expected).abs() < 1e-6;
    assert!(close(&timings[0]["median_ms"], 0.0413), "{timings:#}");
    assert!(
        close(&timings[0]["min_ms"], 0.0409) && close(&timings[0]["max_ms"], 0.0440),
        "{timings:#}"
    );
    assert!(
        close(
            &timings[0]["total_ms"],
            0.0413 + 0.0409 + 0.0440 + 0.0415 + 0.0412
        ),
        "{timings:#}"
    );
    assert_eq!(
        timings[0]["line"],
        "gpu-test: timing timed_regions: saxpy 5 x median 41.3 us (min 40.9, max 44.0), device 0 NVIDIA Fake H100"
    );
}

/// The most tests that held each device at once, from the bodies' `begin`/`end` log.
fn max_holders(log: &str) -> HashMap<String, i32> {
    let mut current: HashMap<String, i32> = HashMap::new();
    let mut most: HashMap<String, i32> = HashMap::new();
    for line in log.lines() {
        let mut fields = line.split(' ');
        let (Some(event), Some(device)) = (fields.next(), fields.next()) else {
            continue;
        };
        let count = current.entry(device.to_string()).or_default();
        *count += if event == "begin" { 1 } else { -1 };
        let peak = most.entry(device.to_string()).or_default();
        *peak = (*peak).max(*count);
    }
    assert!(
        current.values().all(|c| *c == 0),
        "every begin has its end:\n{log}"
    );
    most
}

/// Runs the execution binary with `args` in three processes at once on `machine`, each to
/// success; the lease log the bodies wrote.
fn in_three_processes(machine: &Machine, args: &[&str], log: &std::path::Path) -> String {
    let children: Vec<Child> = (0..3)
        .map(|_| {
            command(machine, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    std::fs::read_to_string(log).unwrap()
}

fn run_holders_in_parallel(tests_per_device: &str) -> HashMap<String, i32> {
    let machine = Machine::with_fake_driver().devices(TWO_DEVICES);
    let log = machine.dir().join("leases.log");
    let machine = machine
        .env("LEASE_LOG", log.to_str().unwrap())
        .env("GPU_TEST_TESTS_PER_DEVICE", tests_per_device);
    // Three processes of eight threads each, all after two devices.
    let text = in_three_processes(&machine, &["--ignored", "hold_", "--test-threads", "8"], &log);
    assert_eq!(
        text.lines().count(),
        3 * (10 + 2 * 2) * 2,
        "every test ran once per process:\n{text}"
    );
    max_holders(&text)
}

#[test]
fn leases_allow_one_test_per_device_by_default() {
    let peaks = run_holders_in_parallel("1");
    assert_eq!(peaks.len(), 2);
    assert!(peaks.values().all(|p| *p == 1), "{peaks:?}");
}

#[test]
fn leases_never_allow_more_tests_per_device_than_configured() {
    let peaks = run_holders_in_parallel("2");
    assert_eq!(peaks.len(), 2);
    assert!(peaks.values().all(|p| *p <= 2), "{peaks:?}");
}

/// With `GPU_TEST_TESTS_PER_DEVICE=3` a third test gets the device two hold, at once; a fourth
/// does not.
#[test]
fn leases_allow_as_many_tests_per_device_as_configured() {
    let machine = Machine::with_fake_driver()
        .env("GPU_TEST_TESTS_PER_DEVICE", "3")
        .env("GPU_TEST_LEASE_TIMEOUT", "1ms");
    let mut holders = vec![Holder::start(&machine), Holder::start(&machine)];
    let third = execution(&machine, &["--ignored", "--exact", "quick"]);
    assert_eq!(third.code, Some(0), "{}", third.all());
    holders.push(Holder::start(&machine));
    let fourth = execution(&machine, &["--ignored", "--exact", "quick"]);
    holders.iter_mut().for_each(Holder::stop);
    assert_eq!(fourth.code, Some(101), "{}", fourth.all());
    assert!(
        fourth
            .all()
            .contains("gpu-test: quick could not get a device lease within 1ms (GPU_TEST_LEASE_TIMEOUT)"),
        "{}",
        fourth.all()
    );
}

#[test]
fn a_second_test_shares_a_device_when_two_are_allowed() {
    let machine = Machine::with_fake_driver().env("GPU_TEST_TESTS_PER_DEVICE", "2");
    let mut holder = Holder::start(&machine);
    // The only device is held: the test runs at once only if it may share it.
    let run = execution(
        &machine.env("GPU_TEST_LEASE_TIMEOUT", "1ms"),
        &["--ignored", "--exact", "quick"],
    );
    holder.stop();
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn a_panicking_body_releases_its_lease() {
    let machine = Machine::with_fake_driver().env("GPU_TEST_LEASE_TIMEOUT", "2s");
    let run = execution(&machine, &["--ignored", "panic_", "--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("the body panicked while holding its device"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("test panic_b_after") && l.ends_with("ok")),
        "the next test got the device:\n{}",
        run.all()
    );
}

/// A body's panic payload whose own `Drop` panics fails its test, and the harness goes on: out
/// of libtest-mimic's worker thread, that panic left the runner waiting for its result for ever.
#[test]
fn a_panic_payload_that_panics_as_it_drops_fails_its_test() {
    let machine = Machine::with_fake_driver();
    let run = execution_within_two_minutes(&machine, &["--ignored", "payload_", "--test-threads", "2"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("test payload_panics_as_it_drops") && l.ends_with("FAILED")),
        "{}",
        run.all()
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("test payload_b_after") && l.ends_with("ok")),
        "{}",
        run.all()
    );
    assert!(
        run.all()
            .contains("test panicked: a panic with a non-text payload"),
        "{}",
        run.all()
    );
}

/// `holds_for_a_minute`, running in a process of its own.
struct Holder {
    child: Child,
    /// Kept open, so that the holder can still write to it.
    stderr: BufReader<ChildStderr>,
}

impl Holder {
    /// Starts the holder and returns once its body holds the device, as its stderr says.
    fn start(machine: &Machine) -> Holder {
        let mut child = command(machine, &["--ignored", "--exact", "holds_for_a_minute"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut holder = Holder { child, stderr };
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let read = holder.stderr.read_line(&mut line).unwrap();
            assert!(read > 0, "the holder ended before holding the device:\n{seen}");
            seen.push_str(&line);
            if line.starts_with("holding: holds_for_a_minute began") {
                return holder;
            }
        }
    }

    /// Kills the holder and waits until it is gone, and with it its open files and locks.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two runs by hand (test binaries started from two shells, no cargo or nextest) writing one
/// report at the same time: the second fails, naming the first, rather than each starting the
/// report anew over the other's entries.
#[test]
fn two_runs_by_hand_writing_one_report_at_once_fail_loudly() {
    let (machine, report) = Machine::with_fake_driver()
        .env("GPU_TEST_LEASE_TIMEOUT", "2s")
        .reporting_to("report.json");
    let fixture = Fixture::build("execution");
    let binary = fixture.test("execution");
    // Each from a shell of its own, which stays its parent: two runs.
    let from_a_shell = |args: &[&str]| {
        let mut command = machine.command("sh");
        command
            .args(["-c", "\"$0\" \"$@\"; status=$?; exit $status"])
            .arg(binary)
            .args(args);
        command
    };
    let mut first = from_a_shell(&["--ignored", "--exact", "holds_for_a_minute"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("holding: holds_for_a_minute began") {
        let read = stderr.read_line(&mut seen).unwrap();
        assert!(read > 0, "the first run ended before holding the device:\n{seen}");
    }
    let second = Run::of(&mut from_a_shell(&["--ignored", "--exact", "quick"]));
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.code, Some(101), "{}", second.all());
    assert!(
        second.all().contains("another test run (started by process")
            && second
                .all()
                .contains("which is still running) is writing the same report"),
        "{}",
        second.all()
    );
    let json = gpu_test_tests::read_report(&report);
    assert!(
        gpu_test_tests::report_entry(&json, "holds_for_a_minute").is_some(),
        "the first run's entry is kept: {json:#}"
    );
}

#[test]
fn a_killed_process_releases_its_lease() {
    let machine = Machine::with_fake_driver();
    let mut holder = Holder::start(&machine);
    holder.stop();
    // The test may not wait at all: the lease must be free the moment the holder is gone.
    let run = execution(
        &machine.env("GPU_TEST_LEASE_TIMEOUT", "1ms"),
        &["--ignored", "--exact", "quick"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn a_waiting_test_says_so_and_runs_once_the_device_is_free() {
    let machine = Machine::with_fake_driver().env("GPU_TEST_LEASE_TIMEOUT", "60s");
    let mut holder = Holder::start(&machine);
    let machine = machine.env("GPU_TEST_LEASE_NOTICE", "0");
    let (waiter, mut stderr, line) = wait_for_the_device(&machine);
    holder.stop();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = waiter.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{line}{rest}{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        line.starts_with(
            "gpu-test: quick is waiting for a device lease (one test per device with GPU_TEST_TESTS_PER_DEVICE=1): \
             device 0 NVIDIA Fake H100 is held by holds_for_a_minute (process "
        ) && line.trim_end().ends_with("; it gives up after 1m (GPU_TEST_LEASE_TIMEOUT)"),
        "{line}"
    );
}

/// A test whose process is killed while it waits for one of two devices (by nextest's
/// `terminate-after`, say) stays in the report as failed, with no device: it had none.
#[test]
fn a_test_killed_while_it_waits_for_its_devices_stays_in_the_report() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("GPU_TEST_LEASE_TIMEOUT", "60s");
    let (machine, report) = machine.reporting_to("report.json");
    let mut holder = Holder::start(&machine);
    let mut second = Holder::start(&machine);
    let machine = machine.env("GPU_TEST_LEASE_NOTICE", "0");
    let (mut waiter, _, line) = wait_for_the_device(&machine);
    assert!(
        line.starts_with("gpu-test: quick is waiting for a device lease"),
        "{line}"
    );
    waiter.kill().unwrap();
    waiter.wait().unwrap();
    holder.stop();
    second.stop();
    assert_lost_without_a_device(&report, "quick");
}

/// A test that declares memory asks the driver for the free memory of the devices it may take
/// before it holds them: a crash there leaves it in the report as failed, with no device.
#[test]
fn a_crash_asking_for_free_memory_stays_in_the_report() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("FAKE_CUDA_CRASH", "cuMemGetInfo_v2");
    let (machine, report) = machine.reporting_to("report.json");
    let run = execution(&machine, &["--ignored", "--exact", "needs_eight_gib_free"]);
    assert_eq!(run.code, None, "ended by SIGSEGV: {}", run.all());
    assert_lost_without_a_device(&report, "needs_eight_gib_free");
}

/// A failure reading a device's free memory that waiting will not change passes over the
/// device, and fails a test that declares memory at once, naming the call, where no other device
/// is left; a device with no room for the context that reads it is waited for, as a held one is.
#[test]
fn a_free_memory_read_that_fails_fails_the_test_at_once() {
    // needs_eight_gib_free on one GPU whose driver answers the call with the code given.
    let needing_eight_gib = |fail: &str, lease_timeout: &str| {
        let machine = Machine::with_fake_driver()
            .env("FAKE_CUDA_FAIL", fail)
            .env("GPU_TEST_LEASE_TIMEOUT", lease_timeout);
        let run = execution_within_two_minutes(&machine, &["--ignored", "--exact", "needs_eight_gib_free"]);
        assert_eq!(run.code, Some(101), "{fail}: {}", run.all());
        run.all()
    };
    let failed = needing_eight_gib("cuMemGetInfo_v2=999", "10m");
    assert!(
        failed.contains(
            "the free memory of device 0 NVIDIA Fake H100, which the test's memory declaration needs, could not \
             be read: cuMemGetInfo_v2 failed: CUDA_ERROR_UNKNOWN (999)"
        ) && !failed.contains("GPU_TEST_LEASE_TIMEOUT"),
        "{failed}"
    );

    // Another device is taken instead.
    let two = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake A100|8.0|80GiB")
        .env("FAKE_CUDA_FAIL", "cuMemGetInfo_v2@0=999")
        .env("GPU_TEST_LEASE_TIMEOUT", "10m");
    let run = execution_within_two_minutes(&two, &["--ignored", "--exact", "needs_eight_gib_free"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.all()
            .contains("needs_eight_gib_free ran on device 1 NVIDIA Fake A100"),
        "{}",
        run.all()
    );

    // No room for the context that would read it (out of memory; an MPS server at its most
    // clients): waited for, as a held device is.
    let timed_out = "could not get a device lease within 1ms (GPU_TEST_LEASE_TIMEOUT): the free memory of device 0 \
                     NVIDIA Fake H100 could not be read (cuDevicePrimaryCtxRetain failed: ";
    for (code, name) in [
        (2, "CUDA_ERROR_OUT_OF_MEMORY"),
        (808, "CUDA_ERROR_MPS_MAX_CLIENTS_REACHED"),
    ] {
        let waited = needing_eight_gib(&format!("cuDevicePrimaryCtxRetain={code}"), "1ms");
        assert!(
            waited.contains(&format!("{timed_out}{name} ({code})")),
            "{waited}"
        );
    }
}

/// Starts `quick` on `machine`, where it must wait for the device and says so at once
/// (`GPU_TEST_LEASE_NOTICE=0`: no sleep stands between the processes), and returns it with its
/// stderr and that first line.
fn wait_for_the_device(machine: &Machine) -> (Child, BufReader<ChildStderr>, String) {
    let mut waiter = command(machine, &["--ignored", "--exact", "quick"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(waiter.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    (waiter, stderr, line)
}

/// That the report has `test` as failed because its process ended, on no device.
fn assert_lost_without_a_device(report: &std::path::Path, test: &str) {
    let json = gpu_test_tests::read_report(report);
    let entry = gpu_test_tests::report_entry(&json, test).unwrap_or_else(|| panic!("{test}: {json:#}"));
    assert_eq!(entry["outcome"], "failed", "{json:#}");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .starts_with("its process ended before gpu-test could record how the test did"),
        "{json:#}"
    );
    assert_eq!(entry["devices"], serde_json::json!([]), "{json:#}");
}

#[test]
fn a_test_that_cannot_get_a_lease_in_time_fails_naming_the_holder() {
    let machine = Machine::with_fake_driver();
    let mut holder = Holder::start(&machine);
    let run = execution(
        &machine.env("GPU_TEST_LEASE_TIMEOUT", "1ms"),
        &["--ignored", "--exact", "quick"],
    );
    holder.stop();
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(
            "gpu-test: quick could not get a device lease within 1ms (GPU_TEST_LEASE_TIMEOUT): device 0 NVIDIA Fake \
             H100 is held by holds_for_a_minute (process "
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_sticky_error_names_the_test_that_poisoned_the_device() {
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuLaunchKernel=700");
    let run = execution(&machine, &["--ignored", "fault_", "--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: fault_a_illegal_address returned an error: DriverError(CUDA_ERROR_ILLEGAL_ADDRESS, \"an illegal memory access was encountered\")"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(
            "gpu-test: fault_b_after device 0 NVIDIA Fake H100 cannot be used: its CUDA context was poisoned by \
             fault_a_illegal_address (CUDA_ERROR_ILLEGAL_ADDRESS (700) \"an illegal memory access was encountered\")"
        ) && run.stdout.contains("run tests in separate processes (cargo nextest run)"),
        "{}",
        run.all()
    );

    // In a process of its own, the second test is not affected.
    let run = execution(&machine, &["--ignored", "--exact", "fault_b_after"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn an_error_code_cudarc_does_not_know_is_reported_as_a_number() {
    // The first synchronisation (before the body) succeeds; the one after the body fails.
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuCtxSynchronize+1=9999");
    let run = execution(&machine, &["--ignored", "--exact", "leaves_an_unknown_error"]);
    run.assert_clean();
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: leaves_an_unknown_error left a CUDA error on device 0 NVIDIA Fake H100: unknown CUDA error code \
             9999 (not a code this driver or gpu-test knows)"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_body_past_its_timeout_fails_and_keeps_its_device_from_later_tests() {
    // A probe limit past what the clock can count is no limit, not an overflow.
    let report = gpu_test_tests::scratch_dir().join(format!("timeout-{}.json", std::process::id()));
    let machine = Machine::with_fake_driver()
        .env("GPU_TEST_PROBE_TIMEOUT", "5000000000000000h")
        .env("GPU_TEST_REPORT", report.to_str().unwrap());
    let run = execution(&machine, &["--ignored", "hang_", "--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    // The report tells a hang from a failure.
    let json = gpu_test_tests::read_report(&report);
    let hung = gpu_test_tests::report_entry(&json, "hang_a").unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(hung["kind"], "timed_out", "{hung:#}");
    let _ = std::fs::remove_file(&report);
    // The hung body sleeps for 60 s and then says so: the run ended without waiting for it.
    assert!(run.stderr.contains("holding: hang_a began"), "{}", run.all());
    assert!(!run.stderr.contains("holding: hang_a ended"), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: hang_a did not finish within its timeout of 200ms: it was still running its body"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(
            "gpu-test: hang_b_after device 0 NVIDIA Fake H100 cannot be used: hang_a outlived its timeout"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn gpu_test_timeout_bounds_the_tests_without_a_timeout_of_their_own() {
    let stuck = |test: &str, timeout: &str| {
        let machine = Machine::with_fake_driver()
            .env("FAKE_CUDA_HANG", "cuCtxSynchronize+1")
            .env("GPU_TEST_TIMEOUT", timeout);
        execution_within_two_minutes(&machine, &["--ignored", "--exact", test])
    };
    // No `timeout` key: the variable's limit, named as such.
    let run = stuck("stuck_b_after", "200ms");
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: stuck_b_after did not finish within its timeout of 200ms (GPU_TEST_TIMEOUT): it was still \
             waiting for the GPU work its body launched to finish"
        ),
        "{}",
        run.all()
    );
    // The test's own key wins over the variable.
    let run = stuck("stuck_a_in_the_driver", "1h");
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: stuck_a_in_the_driver did not finish within its timeout of 200ms: it was still"
        ),
        "{}",
        run.all()
    );
}

/// A body stuck in the driver while it holds stderr's lock (for lines of its own) is given up on
/// at its timeout, and the test fails and the process ends: gpu-test's own lines, and its exit,
/// no longer wait for that lock.
#[test]
fn a_body_stuck_while_it_holds_stderr_does_not_hang_the_process() {
    let machine = Machine::with_fake_driver()
        .env("FAKE_CUDA_HANG", "cuStreamSynchronize")
        .env("FAKE_CUDA_EXIT_WAITS", "1");
    let run = execution_within_two_minutes(
        &machine,
        &["--ignored", "--exact", "keeps_stderr_locked_in_the_driver"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(run.stderr.contains("progress: synchronising"), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: keeps_stderr_locked_in_the_driver did not finish within its timeout of 2s: it was still \
             running its body"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("gpu-test: keeps_stderr_locked_in_the_driver ran on device 0"),
        "gpu-test's own line after the timeout:\n{}",
        run.all()
    );
    // Under the default harness without libtest's capture (--nocapture, as nextest runs a test),
    // the test's failure is written past the lock too.
    let run = Run::of(
        machine
            .command("timeout")
            .args(["--kill-after=10", "120"])
            .arg(Fixture::build("libtest-basic").test("failing"))
            .args([
                "--ignored",
                "--exact",
                "keeps_stderr_locked_in_the_driver",
                "--nocapture",
            ]),
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr.contains(
            "gpu-test: keeps_stderr_locked_in_the_driver did not finish within its timeout of 2s: it was still \
             running its body"
        ),
        "{}",
        run.all()
    );
}

/// A body with a timeout runs on a thread of its own, whose stack is the main thread's 8 MiB
/// (nextest runs a body without a timeout on the main thread), or more with RUST_MIN_STACK.
#[test]
fn a_body_with_a_timeout_has_the_stack_it_would_have_without() {
    for (mib, min_stack) in [("4", None), ("12", Some("16777216"))] {
        let mut machine = Machine::with_fake_driver().env("STACK_MIB", mib);
        if let Some(min_stack) = min_stack {
            machine = machine.env("RUST_MIN_STACK", min_stack);
        }
        let run = execution(&machine, &["--ignored", "--exact", "uses_a_deep_stack"]);
        assert_eq!(run.code, Some(0), "{mib} MiB: {}", run.all());
    }
}

/// A test that failed, and whose contexts then do not release, is reported with its own failure
/// first, then the hang (here under GPU_TEST_TIMEOUT, which bounds the release), as timed out.
#[test]
fn a_failure_is_kept_when_the_release_after_it_does_not_return() {
    for (test, failure) in [
        (
            "returns_an_error",
            "returned an error: \"the kernel produced 3.0 where 4.0 was expected\"",
        ),
        ("panics", "panicked: the body panicked on purpose"),
    ] {
        let (machine, report) = Machine::with_fake_driver()
            .env("GPU_TEST_TIMEOUT", "2s")
            .env("FAKE_CUDA_HANG", "cuDevicePrimaryCtxRelease_v2+1")
            .reporting_to("report.json");
        let run = Run::of(
            machine
                .command("timeout")
                .args(["--kill-after=10", "120"])
                .arg(Fixture::build("harness-basic").test("failing"))
                .args(["--ignored", "--exact", test]),
        );
        assert_eq!(run.code, Some(101), "{test}: {}", run.all());
        assert!(
            run.stdout.contains(&format!(
                "gpu-test: {test} {failure}; after that, it was still releasing the CUDA contexts of its devices \
                 when its limit of 2s (GPU_TEST_TIMEOUT) ran out (the CUDA driver had not returned), and was \
                 abandoned"
            )),
            "{test}: {}",
            run.all()
        );
        let json = gpu_test_tests::read_report(&report);
        let entry = gpu_test_tests::report_entry(&json, test).unwrap_or_else(|| panic!("{json:#}"));
        assert_eq!(entry["kind"], "timed_out", "{entry:#}");
    }
}

#[test]
fn a_driver_that_never_returns_is_bounded_at_every_stage() {
    for (hang, failure) in [
        // The test's timeout counts from the body on, through waiting for what it launched...
        (
            "cuCtxSynchronize+1",
            "did not finish within its timeout of 200ms: it was still waiting for the GPU work its body launched \
             to finish (the CUDA driver had not returned), and was abandoned",
        ),
        // ...and releasing the devices' contexts once it is done...
        (
            "cuDevicePrimaryCtxRelease_v2+1",
            "did not finish within its timeout of 200ms: it was still releasing the CUDA contexts of its devices \
             (the CUDA driver had not returned), and was abandoned",
        ),
        // ...and what comes before it has the probe's limit.
        (
            "cuDevicePrimaryCtxRetain",
            "could not start: it was still opening a CUDA context on its devices after 300ms \
             (GPU_TEST_PROBE_TIMEOUT; the CUDA driver had not returned), and was abandoned",
        ),
    ] {
        // The driver's own exit handlers wait for the call that never returned, as a real
        // driver's teardown may: the process must end without them.
        let machine = Machine::with_fake_driver()
            .env("FAKE_CUDA_HANG", hang)
            .env("FAKE_CUDA_EXIT_WAITS", "1")
            .env("GPU_TEST_PROBE_TIMEOUT", "300ms");
        let run = execution_within_two_minutes(&machine, &["--ignored", "stuck_", "--test-threads", "1"]);
        assert_eq!(run.code, Some(101), "{hang}: {}", run.all());
        // Only a body that started ran on its devices; a setup that did not finish names them.
        assert_eq!(
            run.stderr
                .contains("gpu-test: stuck_a_in_the_driver ran on device 0"),
            hang != "cuDevicePrimaryCtxRetain",
            "{hang}: {}",
            run.all()
        );
        assert_eq!(
            run.stdout
                .contains("cannot use its devices (device 0 NVIDIA Fake H100)"),
            hang == "cuDevicePrimaryCtxRetain",
            "{hang}: {}",
            run.all()
        );
        assert!(
            run.stdout
                .contains(&format!("gpu-test: stuck_a_in_the_driver {failure}")),
            "{hang}: {}",
            run.all()
        );
        // A body stuck (or what it launched) holds its devices; gpu-test's own set-up stuck in
        // the driver may hold the driver's locks, so it is called no more.
        let after = match hang {
            "cuDevicePrimaryCtxRetain" => {
                "gpu-test: stuck_b_after device 0 NVIDIA Fake H100 cannot be used: the CUDA driver did not return \
                 while stuck_a_in_the_driver was opening a CUDA context on its devices (within 300ms, \
                 GPU_TEST_PROBE_TIMEOUT), and gpu-test calls into it no more in this process"
            }
            _ => {
                "gpu-test: stuck_b_after device 0 NVIDIA Fake H100 cannot be used: stuck_a_in_the_driver outlived its timeout"
            }
        };
        assert!(run.stdout.contains(after), "{hang}: {}", run.all());
    }
    // A set-up stuck in the driver on one GPU keeps the next test off the other GPU too: the
    // driver is called no more.
    let two = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("FAKE_CUDA_HANG", "cuDevicePrimaryCtxRetain")
        .env("FAKE_CUDA_EXIT_WAITS", "1")
        .env("GPU_TEST_PROBE_TIMEOUT", "300ms");
    let run = execution_within_two_minutes(&two, &["--ignored", "stuck_", "--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "; device 1 NVIDIA Fake H100 cannot be used: the CUDA driver did not return while \
             stuck_a_in_the_driver was opening a CUDA context"
        ),
        "{}",
        run.all()
    );
    // Reading a device's free memory for a lease comes before any limit of the test's own: it
    // has the probe's.
    let machine = Machine::with_fake_driver()
        .env("FAKE_CUDA_HANG", "cuDevicePrimaryCtxRetain")
        .env("FAKE_CUDA_EXIT_WAITS", "1")
        .env("GPU_TEST_PROBE_TIMEOUT", "300ms");
    let run = execution_within_two_minutes(&machine, &["--ignored", "--exact", "needs_eight_gib_free"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    // The call is left in the driver, which may hold its locks: no device is used again.
    let failure = run
        .stdout
        .lines()
        .find(|line| line.starts_with("gpu-test: needs_eight_gib_free "))
        .unwrap_or_else(|| panic!("no failure line: {}", run.all()));
    assert!(
        failure.starts_with(
            "gpu-test: needs_eight_gib_free device 0 NVIDIA Fake H100 cannot be used: the CUDA driver did not \
             answer: cuDevicePrimaryCtxRetain ("
        ) && failure.ends_with(
            "did not return within 300ms (GPU_TEST_PROBE_TIMEOUT), and gpu-test calls into it no more in this \
             process (asked for the free memory of device 0 NVIDIA Fake H100 for needs_eight_gib_free)"
        ),
        "{}",
        run.all()
    );

    // The regions a test timed before it hung are reported.
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_HANG", "cuCtxSynchronize+1");
    let run = execution_within_two_minutes(&machine, &["--ignored", "--exact", "stuck_a_in_the_driver"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr
            .contains("gpu-test: timing stuck_a_in_the_driver: before the hang 1 x median"),
        "{}",
        run.all()
    );
}

#[test]
fn a_crate_with_its_own_cudarc_version_builds_and_runs() {
    let fixture = Fixture::build("own-cudarc");
    let machine = Machine::with_fake_driver();
    let run = Run::of(&mut machine.command(fixture.test("gpu")));
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("test uses_the_same_cudarc ... ok"),
        "{}",
        run.all()
    );
}

/// The README's nextest configuration, as the `execution` fixture carries it: a `gpu` test group
/// whose `max-threads` is the machine's GPUs × tests per device queues GPU tests in nextest, so
/// that none waits for a device lease (where waiting counts against nextest's slow-test timeout).
#[test]
fn a_nextest_test_group_queues_gpu_tests_before_the_leases() {
    let config = std::fs::read_to_string(
        gpu_test_tests::workspace_root().join("tests/fixtures/execution/.config/nextest.toml"),
    )
    .unwrap();
    let readme = std::fs::read_to_string(gpu_test_tests::workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&config),
        "the README shows the fixture's .config/nextest.toml"
    );

    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("execution");
    let machine = Machine::with_fake_driver();
    let log = machine.dir().join("leases.log");
    let machine = machine
        .env("LEASE_LOG", log.to_str().unwrap())
        .env("GPU_TEST_LEASE_NOTICE", "0");
    let mut command = nextest_run(&machine, &fixture);
    command
        // Four at a time, but the group lets one GPU test run at once on the one fake GPU.
        .args([
            "--test-threads",
            "4",
            "--run-ignored",
            "only",
            "-E",
            "test(/^hold_[0-9]+$/)",
        ])
        .args(["--success-output", "immediate"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stderr.contains("10 tests run: 10 passed"), "{}", run.all());
    // Each test printed that it held the device, and none had to wait for it.
    assert_eq!(run.all().matches("holding: hold_").count(), 20, "{}", run.all());
    assert!(
        !run.all().contains("is waiting for a device lease"),
        "{}",
        run.all()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(max_holders(&text).values().copied().max(), Some(1), "{text}");
}

/// Under nextest, a test whose process ends inside the body (here it aborts) stays in the report
/// as failed, saying so; and a failure that a retry turns into a pass stays too, as an earlier
/// attempt's: the report never shows a clean pass where nextest shows a flaky test.
#[test]
fn no_attempt_of_a_test_is_lost_from_the_report() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("execution");
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let mut command = nextest_run(&machine, &fixture);
    command.args([
        "--no-fail-fast",
        "--retries",
        "1",
        "--run-ignored",
        "only",
        "-E",
        "test(=aborts_its_process) | test(=fails_the_first_attempt)",
    ]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(100), "{}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let entry = |name: &str| {
        gpu_test_tests::report_entry(&json, name)
            .unwrap_or_else(|| panic!("{name} is not in the report: {json:#}"))
            .clone()
    };
    let lost = "its process ended before gpu-test could record how the test did";
    let aborted = entry("aborts_its_process");
    assert_eq!(aborted["outcome"], "failed", "{aborted:#}");
    assert!(
        aborted["reason"].as_str().unwrap().starts_with(lost),
        "{aborted:#}"
    );
    assert_eq!(aborted["attempt"], 2, "{aborted:#}");
    // Where it ran, as its body started: the device a crash happened on.
    assert_eq!(aborted["devices"][0]["name"], "NVIDIA Fake H100", "{aborted:#}");
    assert!(
        aborted["earlier_failures"][0]
            .as_str()
            .unwrap()
            .starts_with("attempt 1 on device 0 NVIDIA Fake H100 (GPU-")
            && aborted["earlier_failures"][0]
                .as_str()
                .unwrap()
                .contains(&format!("): {lost}")),
        "{aborted:#}"
    );
    let flaky = entry("fails_the_first_attempt");
    assert_eq!(flaky["outcome"], "passed", "{flaky:#}");
    assert_eq!(flaky["attempt"], 2, "{flaky:#}");
    let earlier = flaky["earlier_failures"].as_array().unwrap();
    assert_eq!(earlier.len(), 1, "{flaky:#}");
    // The attempt that failed names where it ran: a retry may run on another GPU.
    assert!(
        earlier[0]
            .as_str()
            .unwrap()
            .starts_with("attempt 1 on device 0 NVIDIA Fake H100 (GPU-")
            && earlier[0].as_str().unwrap().contains("the first attempt fails"),
        "{flaky:#}"
    );
}

/// An error cudarc recorded as the body dropped an object fails the test also where the body
/// keeps a reference to its context past its end (a static): it is not left for a later test.
#[test]
fn a_recorded_error_fails_the_test_that_keeps_its_context() {
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuMemFree_v2=1");
    let run = execution(
        &machine,
        &["--ignored", "--exact", "keeps_its_context_and_frees_memory"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stdout.contains(
            "gpu-test: keeps_its_context_and_frees_memory left a CUDA error on device 0 NVIDIA Fake H100 that no \
             call of the body returned"
        ),
        "{}",
        run.all()
    );
}

/// Under nextest's `--stress-count`, a test that failed in one iteration is failed in the report,
/// though a later iteration passed: nextest fails the run.
#[test]
fn a_stress_iteration_that_failed_fails_the_test_in_the_report() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("execution");
    let (machine, report) = Machine::with_fake_driver().reporting_to("report.json");
    let mut command = nextest_run(&machine, &fixture);
    command.args([
        "--no-fail-fast",
        "--stress-count",
        "3",
        "--run-ignored",
        "only",
        "-E",
        "test(=fails_the_first_iteration)",
    ]);
    let run = Run::of(&mut command);
    // nextest 0.9.143 exits 0 after a failed iteration under --no-fail-fast (a later one passed);
    // `cargo gpu-test run` fails such a run on the report's failure (tests/companion.rs).
    assert!(matches!(run.code, Some(0 | 100)), "{}", run.all());
    assert!(run.all().contains("1 failed"), "{}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let entry = gpu_test_tests::report_entry(&json, "fails_the_first_iteration")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(entry["outcome"], "failed", "{entry:#}");
    assert_eq!(entry["failed_iteration"], 0, "{entry:#}");
    assert_eq!(json["summary"]["failed"], 1, "{json:#}");
    // The one iteration that failed, not those that passed after it.
    assert_eq!(
        entry["earlier_failures"].as_array().unwrap().len(),
        1,
        "{entry:#}"
    );
    assert!(
        entry["earlier_failures"][0]
            .as_str()
            .unwrap()
            .contains("the first iteration fails"),
        "{entry:#}"
    );
}

/// Under the default harness one nextest process runs every device of an `each_device` test:
/// where the second device's run ends the process, the first's outcome is in the report already.
#[test]
fn a_device_run_that_ends_the_process_loses_none_before_it() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("per-device");
    let machine =
        Machine::with_fake_driver().devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB");
    let (machine, report) = machine.reporting_to("report.json");
    let mut command = nextest_run(&machine, &fixture);
    command.args(["--run-ignored", "only", "-E", "test(=then_aborts_on_the_second)"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(100), "{}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let outcome = |name: &str| gpu_test_tests::report_entry(&json, name).and_then(|t| t["outcome"].as_str());
    assert_eq!(
        outcome("then_aborts_on_the_second::cuda0"),
        Some("passed"),
        "{json:#}"
    );
    assert_eq!(
        outcome("then_aborts_on_the_second::cuda1"),
        Some("failed"),
        "{json:#}"
    );
}

/// Under `cargo test` one process runs a binary's every test, and once wrote the report only as it
/// ended:
/// where a body ends the process first, the report still has the tests before it, a skip and a
/// failure among them, and names the one it ended in. Under either harness.
#[test]
fn a_crash_under_cargo_test_loses_none_before_it() {
    let lost = "its process ended before gpu-test could record how the test did";
    let machine = Machine::with_fake_driver().devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake T4|7.5|16GiB");
    let (machine, report) = machine.reporting_to("report.json");
    let run = machine.run(
        "per-device",
        "plain",
        &["--include-ignored", "--test-threads", "1"],
    );
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.code, None, "ended by SIGABRT: {}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let entry = |name: &str| {
        gpu_test_tests::report_entry(&json, name)
            .unwrap_or_else(|| panic!("{name} is not in the report: {json:#}"))
            .clone()
    };
    for (name, outcome) in [
        ("fails_on_the_second::cuda0", "passed"),
        ("fails_on_the_second::cuda1", "failed"),
        ("on_every_modern_gpu_under_libtest::cuda0", "passed"),
        ("on_every_modern_gpu_under_libtest::cuda1", "skipped"),
        ("then_aborts_on_the_second::cuda0", "passed"),
        ("then_aborts_on_the_second::cuda1", "failed"),
    ] {
        assert_eq!(entry(name)["outcome"], outcome, "{name}: {json:#}");
    }
    let aborted = entry("then_aborts_on_the_second::cuda1");
    assert!(
        aborted["reason"].as_str().unwrap().starts_with(lost),
        "{aborted:#}"
    );
    assert_eq!(aborted["devices"][0]["ordinal"], 1, "{aborted:#}");
    assert_eq!(aborted["devices"][0]["name"], "NVIDIA Fake T4", "{aborted:#}");
    assert!(
        !entry("fails_on_the_second::cuda1")["reason"]
            .as_str()
            .unwrap()
            .starts_with(lost),
        "a test that ended is recorded as it ended: {json:#}"
    );

    // gpu-test's own harness.
    let (machine, report) = Machine::with_fake_driver().reporting_to("report.json");
    let run = machine.run(
        "execution",
        "execution",
        &["--ignored", "--exact", "aborts_its_process"],
    );
    assert_eq!(run.code, None, "ended by SIGABRT: {}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let aborted = gpu_test_tests::report_entry(&json, "aborts_its_process")
        .unwrap_or_else(|| panic!("aborts_its_process is not in the report: {json:#}"));
    assert_eq!(aborted["outcome"], "failed", "{aborted:#}");
    assert!(
        aborted["reason"].as_str().unwrap().starts_with(lost),
        "{aborted:#}"
    );
}

/// A body that ends its process with status 0 does not pass: under gpu-test's harness (as under
/// libtest, tested with the companion) the process writes the report, names the test and ends
/// with 101.
#[test]
fn a_body_that_exits_with_success_fails() {
    let (machine, report) = Machine::with_fake_driver().reporting_to("report.json");
    let run = execution(
        &machine,
        &["--ignored", "--exact", "exits_the_process_with_success"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr.contains(
            "gpu-test: the process is exiting while the body of exits_the_process_with_success runs \
             (std::process::exit"
        ),
        "{}",
        run.all()
    );
    let json = gpu_test_tests::read_report(&report);
    let entry = gpu_test_tests::report_entry(&json, "exits_the_process_with_success")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(entry["outcome"], "failed", "{json:#}");

    // Under libtest, as its own end is not gpu-test's to see.
    let (machine, report) = Machine::with_fake_driver().reporting_to("report.json");
    let run = machine.run(
        "per-device",
        "exits",
        &["--ignored", "--exact", "exits_with_success_in_its_body"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let entry = gpu_test_tests::report_entry(&json, "exits_with_success_in_its_body")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(entry["outcome"], "failed", "{json:#}");

    // A child a body forks exits with the hooks it inherited: its status is its own, and the run
    // is not its to conclude.
    let (machine, report) = Machine::with_fake_driver().reporting_to("report.json");
    let run = execution(&machine, &["--ignored", "--exact", "forks_a_child_that_exits"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let entry =
        gpu_test_tests::report_entry(&json, "forks_a_child_that_exits").unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(entry["outcome"], "passed", "{json:#}");
}

/// A test decided without a body (a skip, or strict mode's failure) while another thread runs a
/// body goes into the report at once: that body may end the process before the next write.
#[test]
fn a_test_decided_while_a_body_runs_is_in_the_report_when_the_body_ends_the_process() {
    for (strict, outcome) in [("", "skipped"), ("1", "failed")] {
        let machine = Machine::with_fake_driver().env("GPU_TEST_STRICT", strict);
        let (machine, report) = machine.reporting_to("report.json");
        let run = machine.run("per-device", "concurrent", &["--ignored", "--test-threads", "2"]);
        assert_eq!(run.code, None, "ended by SIGABRT: {}", run.all());
        let json = gpu_test_tests::read_report(&report);
        let entry = |name: &str| {
            gpu_test_tests::report_entry(&json, name)
                .unwrap_or_else(|| panic!("{name} is not in the report: {json:#}"))
                .clone()
        };
        assert_eq!(entry("c_needs_eight_gpus")["outcome"], outcome, "{json:#}");
        let aborted = entry("a_body_that_aborts_once_c_is_reported");
        assert_eq!(aborted["outcome"], "failed", "{aborted:#}");
    }
}

/// The leak check: a test that leaves device memory allocated fails naming the bytes and the
/// device, by its attribute or for every test with GPU_TEST_LEAK_CHECK=1; one that frees what it
/// allocates passes; `leak_check = false` opts out.
#[test]
fn a_test_that_leaks_device_memory_fails_when_checked() {
    let machine = Machine::with_fake_driver();
    let run = execution(&machine, &["--ignored", "--exact", "leak_checked_leak"]);
    run.assert_clean();
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(
            "leak_checked_leak left device memory allocated: 4096 bytes (4 KiB) on device 0 NVIDIA Fake H100"
        ),
        "{}",
        run.all()
    );
    let run = execution(&machine, &["--ignored", "--exact", "leak_checked_clean"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    // With stream-ordered pools, freed memory stays in the pool until trimmed: the check trims it
    // rather than calling it a leak; a real leak is still one.
    let pools = Machine::with_fake_driver().env("FAKE_CUDA_MEMORY_POOLS", "1");
    let run = execution(&pools, &["--ignored", "--exact", "leak_checked_clean"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let run = execution(&pools, &["--ignored", "--exact", "leak_checked_leak"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    // What a driver sets up on first use and keeps (the first pool block) is not the body's
    // leak: it is in use before the body, and a real leak is still one.
    let keeps = Machine::with_fake_driver()
        .env("FAKE_CUDA_MEMORY_POOLS", "1")
        .env("FAKE_CUDA_KEPT_ON_FIRST_USE", "2MiB");
    let run = execution(&keeps, &["--ignored", "--exact", "leak_checked_clean"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let run = execution(&keeps, &["--ignored", "--exact", "leak_checked_leak"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("4096 bytes (4 KiB) on device 0"),
        "{}",
        run.all()
    );

    // A measurement the driver fails names the call that failed.
    let failing = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuMemGetInfo_v2=12345");
    let run = execution(&failing, &["--ignored", "--exact", "leak_checked_clean"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(
            "leak_checked_clean cannot be checked for leaks: measuring the memory in use on device 0 NVIDIA Fake \
             H100 failed: cuMemGetInfo_v2 failed: unknown CUDA error code 12345"
        ),
        "{}",
        run.all()
    );

    // A device the measurement before the body finds broken for good is kept from later tests.
    let broken = Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuCtxSynchronize+1=700");
    let run = execution(&broken, &["--ignored", "leak_checked_", "--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(
            "leak_checked_clean cannot be checked for leaks: measuring the memory in use on device 0 NVIDIA Fake \
             H100 failed: CUDA_ERROR_ILLEGAL_ADDRESS"
        ),
        "{}",
        run.all()
    );
    assert!(
        run.all().contains(
            "leak_checked_leak device 0 NVIDIA Fake H100 cannot be used: its CUDA context was poisoned by code \
             that ran earlier in this process"
        ),
        "{}",
        run.all()
    );

    // Unchecked, a leak passes; GPU_TEST_LEAK_CHECK=1 checks every test, and the key turns it off.
    let run = execution(&machine, &["--ignored", "--exact", "leaks_unless_checked"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let checked = Machine::with_fake_driver().env("GPU_TEST_LEAK_CHECK", "1");
    let run = execution(&checked, &["--ignored", "--exact", "leaks_unless_checked"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("1024 bytes (1 KiB) on device 0"),
        "{}",
        run.all()
    );
    let run = execution(&checked, &["--ignored", "--exact", "leaks_with_the_check_off"]);
    assert_eq!(run.code, Some(0), "{}", run.all());

    // Sharing a device would make a device-wide measurement meaningless: said, not guessed.
    let shared = Machine::with_fake_driver()
        .env("GPU_TEST_LEAK_CHECK", "1")
        .env("GPU_TEST_TESTS_PER_DEVICE", "2");
    let run = execution(&shared, &["--ignored", "--exact", "leak_checked_clean"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all()
            .contains("GPU_TEST_TESTS_PER_DEVICE=2 lets other tests share it"),
        "{}",
        run.all()
    );
}

/// Memory-aware leases: tests declaring 6 GiB on a 16 GiB GPU, four slots per device, from
/// three processes at once: the declared memory of the tests holding the GPU never exceeds what
/// it had free, so at most two hold it at a time.
#[test]
fn declared_memory_never_exceeds_what_the_device_had_free() {
    let machine = Machine::with_fake_driver().devices("NVIDIA Fake A|9.0|16GiB");
    let log = machine.dir().join("leases.log");
    let machine = machine
        .env("LEASE_LOG", log.to_str().unwrap())
        .env("GPU_TEST_TESTS_PER_DEVICE", "4");
    let text = in_three_processes(&machine, &["--ignored", "six_gib_", "--test-threads", "4"], &log);
    assert_eq!(text.lines().count(), 3 * 6 * 2, "{text}");
    let peak = max_holders(&text).values().copied().max().unwrap();
    assert!(
        peak * 6 <= 16,
        "{peak} tests declaring 6 GiB each held the 16 GiB GPU at once:\n{text}"
    );
}

#[test]
fn min_free_memory_waits_then_fails_saying_how_much_was_free() {
    let machine = Machine::with_fake_driver().devices("NVIDIA Fake A|9.0|16GiB");
    let run = execution(&machine, &["--ignored", "--exact", "needs_eight_gib_free"]);
    assert_eq!(run.code, Some(0), "{}", run.all());

    let crowded = Machine::with_fake_driver()
        .devices("NVIDIA Fake A|9.0|16GiB")
        .env("FAKE_CUDA_USED_ELSEWHERE", "12GiB")
        .env("GPU_TEST_LEASE_TIMEOUT", "300ms")
        .env("GPU_TEST_LEASE_NOTICE", "0");
    let run = execution(&crowded, &["--ignored", "--exact", "needs_eight_gib_free"]);
    run.assert_clean();
    assert_eq!(run.code, Some(101), "{}", run.all());
    let why = "device 0 NVIDIA Fake A has 4 GiB free, and the test needs min_free_memory = \"8 GiB\"";
    assert!(
        run.stderr.contains("is waiting for a device lease") && run.stderr.contains(why),
        "{}",
        run.all()
    );
    // No test holds the device: nothing says one does.
    assert!(
        run.all().contains(&format!(
            "could not get a device lease within 300ms (GPU_TEST_LEASE_TIMEOUT): {why}"
        )) && !run.all().contains("held by other tests"),
        "{}",
        run.all()
    );

    // More than the GPU has at all can never fit: a skip, with the reason.
    let run = execution(
        &machine,
        &["--ignored", "--exact", "declares_more_than_the_gpu_has"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains(
            "ignored (device 0 NVIDIA Fake A has 16 GiB in all, less than its memory = \"24 GiB\")"
        ),
        "{}",
        run.all()
    );
}
