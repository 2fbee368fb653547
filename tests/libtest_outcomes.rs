//! GPU tests under the default libtest harness, on described machines: every GPU test either runs
//! or prints one `gpu-test: skipped <name>: <reason>` line and passes; with GPU_TEST_STRICT=1 it
//! fails naming the reason. No scenario panics or crashes the process.

use gpu_test_tests::LIBTEST_BASIC_GPU_TESTS as GPU_TESTS;
use gpu_test_tests::{Fixture, Machine, Run};

fn gpu_tests(machine: &Machine, args: &[&str]) -> Run {
    machine.run("libtest-basic", "gpu", args)
}

/// `(test name, reason)` for each skip line, sorted by name.
fn skips(run: &Run) -> Vec<(String, String)> {
    let mut skips: Vec<(String, String)> = run
        .stderr_lines("gpu-test: skipped ")
        .iter()
        .map(|line| {
            let rest = line.trim_start_matches("gpu-test: skipped ");
            let (name, reason) = rest.split_once(": ").expect("name: reason");
            (name.to_string(), reason.to_string())
        })
        .collect();
    skips.sort();
    skips
}

fn reason_of(run: &Run, test: &str) -> String {
    skips(run)
        .into_iter()
        .find(|(name, _)| name == test)
        .unwrap_or_else(|| panic!("{test} was not skipped:\n{}", run.all()))
        .1
}

fn assert_passed(run: &Run, test: &str) {
    assert!(
        run.stdout.contains(&format!("test {test} ... ok")),
        "{test} did not pass:\n{}",
        run.all()
    );
}

#[test]
fn without_a_driver_every_gpu_test_is_skipped_once_with_its_reason() {
    let run = gpu_tests(&Machine::without_driver(), &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    let skips = skips(&run);
    let names: Vec<&str> = skips.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, GPU_TESTS, "{}", run.all());
    for (_, reason) in &skips {
        assert!(
            reason.starts_with("no CUDA driver: libcuda could not be loaded (tried "),
            "{reason}"
        );
        assert!(
            reason.contains("the NVIDIA kernel module is not loaded either; hint: install the NVIDIA driver"),
            "{reason}"
        );
    }
    assert_passed(&run, "cpu_only");
    assert!(
        run.stdout
            .contains("test result: ok. 9 passed; 0 failed; 0 ignored"),
        "{}",
        run.stdout
    );
}

#[test]
fn strict_mode_fails_every_unmet_test_with_its_reason() {
    // A configuration's failure, not a bug in the test's code: no backtrace into gpu-test.
    let run = gpu_tests(
        &Machine::without_driver()
            .env("GPU_TEST_STRICT", "1")
            .env("RUST_BACKTRACE", "1"),
        &["--test-threads=1"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(!run.all().contains("stack backtrace"), "{}", run.all());
    for test in GPU_TESTS {
        assert!(
            run.stdout.contains(&format!("test {test} ... FAILED")),
            "{test}:\n{}",
            run.all()
        );
        assert!(
            run.all().contains(&format!(
                "gpu-test: {test} cannot run, and GPU_TEST_STRICT=1 makes that a failure: no CUDA driver"
            )),
            "{test}:\n{}",
            run.all()
        );
    }
    assert_passed(&run, "cpu_only");
    assert!(skips(&run).is_empty());
}

#[test]
fn a_bad_strict_value_is_an_error_naming_the_accepted_values() {
    let run = gpu_tests(&Machine::without_driver().env("GPU_TEST_STRICT", "yes"), &[]);
    assert_eq!(run.code, Some(101));
    assert!(
        run.all().contains(r#"gpu-test: GPU_TEST_STRICT="yes" is not valid: accepted values are unset, empty, 0, 1, true, false"#),
        "{}",
        run.all()
    );
    assert_passed(&run, "cpu_only");
}

#[test]
fn one_fake_device_runs_what_it_can_and_names_what_it_cannot() {
    let run = gpu_tests(&Machine::with_fake_driver(), &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        skips(&run),
        [(
            "two_devices".to_string(),
            "needs 2 CUDA devices, found 1; hint: run on a machine with at least 2 GPUs".to_string()
        )]
    );
    for test in GPU_TESTS.iter().filter(|t| **t != "two_devices") {
        assert_passed(&run, test);
    }
}

#[test]
fn two_fake_devices_run_the_two_device_test_unless_hidden() {
    let two = Machine::with_fake_driver().devices("NVIDIA H100|9.0|80GiB;NVIDIA H100|9.0|80GiB");
    let run = gpu_tests(&two, &["--exact", "two_devices"]);
    run.assert_clean();
    assert_passed(&run, "two_devices");
    assert!(skips(&run).is_empty(), "{}", run.all());

    let hidden = two.env("CUDA_VISIBLE_DEVICES", "0");
    let run = gpu_tests(&hidden, &["--exact", "two_devices"]);
    assert_eq!(
        reason_of(&run, "two_devices"),
        "needs 2 CUDA devices, found 1 (CUDA_VISIBLE_DEVICES=0 hides the others); hint: run on a machine with at \
         least 2 GPUs, and list 2 devices in CUDA_VISIBLE_DEVICES or unset it"
    );
}

#[test]
fn an_old_driver_names_the_release_each_cuda_needs() {
    let run = gpu_tests(
        &Machine::with_fake_driver().driver_version(11040, "470.82.01"),
        &[],
    );
    run.assert_clean();
    assert_eq!(
        reason_of(&run, "needs_cuda_11_8"),
        "needs CUDA >= 11.8, driver 470.82.01 supports CUDA 11.4; CUDA 11.8 needs driver >= 520.61.05; hint: update \
         the NVIDIA driver to 520.61.05 or newer (`nvidia-smi` shows the installed one)"
    );
    let kernel = reason_of(&run, "compiles_a_kernel");
    assert!(
        kernel.starts_with("NVRTC 12.8 (")
            && kernel.contains(") makes PTX that driver 470.82.01 (CUDA 11.4) cannot load"),
        "{kernel}"
    );
    assert_passed(&run, "round_trip");

    // NVRTC from a wheel: the older NVRTC is the wheel of the driver's CUDA release, installed
    // where this one came from.
    let (machine, site_packages) = Machine::with_fake_driver()
        .without_nvrtc()
        .nvrtc_version("12.9")
        .python_env("venv");
    let wheel = site_packages.join("nvidia/cuda_nvrtc/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.12", "libnvrtc-builtins.so.12.9"]);
    let kernel = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        kernel.ends_with(&format!(
            "hint: update the driver to 575.51.03 or newer, or install the NVRTC wheel of CUDA 12.8 into the \
             Python environment it came from ({}): pip install \"nvidia-cuda-nvrtc-cu12<12.9\"",
            machine.dir().join("venv").display()
        )),
        "{kernel}"
    );
    // NVRTC of a newer major release than the driver's, from a wheel whose directory is on the
    // loader's path: pip cannot help, since cudarc asks for the newer name first; the fix is to
    // take it off the loader's path. (The fake NVRTC 13.0 is named libnvrtc.so.12 only because
    // this workspace's CUDA 12 bindings never ask for libnvrtc.so.13.)
    let (machine, site_packages) = Machine::with_fake_driver()
        .without_nvrtc()
        .nvrtc_version("13.0")
        .python_env("venv");
    let wheel = site_packages.join("nvidia/cuda_nvrtc/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.12"]);
    let path = format!("{}:{}", machine.dir().join("lib").display(), wheel.display());
    let kernel = reason_of(
        &gpu_tests(&machine.env("LD_LIBRARY_PATH", &path), &[]),
        "compiles_a_kernel",
    );
    assert!(
        kernel.ends_with(
            "or take this CUDA 13 NVRTC off the loader's path and put an NVRTC of CUDA 12.8 or older on it"
        ) && !kernel.contains("pip"),
        "{kernel}"
    );
}

#[test]
fn small_and_old_devices_are_named() {
    let run = gpu_tests(&Machine::with_fake_driver().devices("NVIDIA T4|7.5|15GiB"), &[]);
    run.assert_clean();
    assert_eq!(
        reason_of(&run, "needs_sm_80"),
        "device 0 NVIDIA T4 is sm_75, needs min_compute 8.0; hint: run on a GPU of compute capability 8.0 (sm_80) or newer"
    );
    assert_eq!(
        reason_of(&run, "needs_16_gib"),
        "device 0 NVIDIA T4 has 15 GiB, needs min_memory 16 GiB; hint: run on a GPU with at least 16 GiB of memory"
    );
    assert_passed(&run, "round_trip");
}

#[test]
fn nvrtc_missing_skips_kernel_tests_only() {
    let run = gpu_tests(&Machine::with_fake_driver().without_nvrtc(), &[]);
    run.assert_clean();
    let reason = reason_of(&run, "compiles_a_kernel");
    assert!(
        reason.starts_with("needs NVRTC >= 12.0 (min_toolkit), but libnvrtc could not be loaded (tried ")
            && reason.contains("other names cudarc looks for; LD_LIBRARY_PATH="),
        "{reason}"
    );
    assert_eq!(skips(&run).len(), 2, "{}", run.all());

    // A file on the loader's path that is not a library: the loader's own message says so.
    let machine = Machine::with_fake_driver().without_nvrtc();
    let broken = machine.dir().join("lib/libnvrtc.so.12");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, "not a library").unwrap();
    let reason = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        reason.contains(&format!("; {}: {}: ", broken.display(), broken.display()))
            && !reason.contains("No such file"),
        "{reason}"
    );

    // A CUDA 13 toolkit's NVRTC, whose name the CUDA 12 bindings do not try, not on the path.
    let machine = Machine::with_fake_driver().without_nvrtc();
    let cuda13 = machine.dir().join("root/usr/local/cuda-13.0/lib64");
    machine.nvrtc_in(&cuda13, &["libnvrtc.so.13"]);
    let reason = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        reason.contains(&format!(
            "; NVRTC is on this machine as {}/libnvrtc.so.13, a name this build's cudarc bindings do not look for",
            cuda13.display()
        )) && reason.contains("hint: build with the cudarc bindings of that CUDA release (gpu-test-runtime's feature cuda-13000"),
        "{reason}"
    );

    // The same from a CUDA 13 wheel (nvidia/cu13/lib) of a virtual environment on PATH.
    let (machine, site_packages) = Machine::with_fake_driver().without_nvrtc().python_env("venv");
    let wheel = site_packages.join("nvidia/cu13/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.13"]);
    let reason = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        reason.contains(&format!(
            "; NVRTC is on this machine as {}/libnvrtc.so.13, a name",
            wheel.display()
        )),
        "{reason}"
    );
}

/// NVRTC off the loader's path, under a name cudarc asks for (a toolkit's lib64 not in
/// LD_LIBRARY_PATH): gpu-test loads it by its full path, and the test's own cudarc calls then
/// find it, unless another user could have put it there.
#[test]
fn nvrtc_outside_the_loader_path_is_loaded_for_kernel_tests() {
    // The fake NVRTC, like the real one, asks the loader for its builtins by name when compiling.
    let machine = Machine::with_fake_driver()
        .without_nvrtc()
        .env("FAKE_NVRTC_BUILTINS", "1");
    let lib64 = machine.dir().join("root/usr/local/cuda/lib64");
    machine.nvrtc_in(&lib64, &["libnvrtc.so.12"]);
    let reason = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        reason.starts_with(&format!(
            "needs NVRTC >= 12.0 (min_toolkit): NVRTC {0}/libnvrtc.so.12 is not on the loader's path, and its \
             builtins could not be loaded with it ({0}/libnvrtc-builtins.so.12.8: NVRTC's builtins are neither \
             beside it nor on the loader's path (",
            lib64.display()
        )) && reason.ends_with(
            "hint: install libnvrtc-builtins.so.12.8, which comes with NVRTC (the cuda-nvrtc package), beside NVRTC \
             or on the loader's path"
        ),
        "{reason}"
    );
    machine.nvrtc_in(&lib64, &["libnvrtc-builtins.so.12.8"]);
    let run = gpu_tests(&machine, &[]);
    run.assert_clean();
    assert_passed(&run, "compiles_a_kernel");
    let notes = run.stderr_lines("gpu-test: note: NVRTC is not on the loader's path");
    assert_eq!(notes.len(), 1, "{}", run.all());
    assert!(
        notes[0].contains(&format!(
            "gpu-test loaded {}/libnvrtc.so.12 for the tests",
            lib64.display()
        )) && notes[0]
            .contains("and cudarc finds it as libnvrtc.so.12; programs outside gpu-test do not find it")
            && notes[0].ends_with(&format!("(add {} to LD_LIBRARY_PATH)", lib64.display())),
        "{}",
        notes[0]
    );

    // A directory others may write to: not loaded, and the skip says why.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&lib64, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = gpu_tests(&machine, &[]);
    run.assert_clean();
    let reason = reason_of(&run, "compiles_a_kernel");
    assert!(
        reason.contains(&format!(
            "which is not on the loader's path; {0}/libnvrtc.so.12: not loaded, since another user could have put it \
             there: {0} may be written by group or others (mode 777); hint: make {0} belong to root or you and \
             writable by no one else (chmod go-w), or install NVRTC where that holds",
            lib64.display()
        )),
        "{reason}"
    );
    assert!(run.stderr_lines("gpu-test: note:").is_empty(), "{}", run.all());

    // Builtins others may write to are not loaded either, and without them nothing compiles.
    let machine = Machine::with_fake_driver().without_nvrtc();
    let lib64 = machine.dir().join("root/usr/local/cuda/lib64");
    machine.nvrtc_in(&lib64, &["libnvrtc.so.12"]);
    let builtins = lib64.join("libnvrtc-builtins.so.12.8");
    machine.nvrtc_file(&builtins, "libnvrtc-builtins.so.12.8");
    std::fs::set_permissions(&builtins, std::fs::Permissions::from_mode(0o666)).unwrap();
    let reason = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        reason.contains(&format!(
            "its builtins could not be loaded with it ({0}: not loaded, since another user could have put it there: \
             {0} may be written by group or others (mode 666)); hint: make {0} belong to root or you",
            builtins.display()
        )),
        "{reason}"
    );

    // A file under a name cudarc asks for whose SONAME is another: loading it would not help.
    let machine = Machine::with_fake_driver().without_nvrtc();
    let wheel = machine
        .dir()
        .join("root/usr/local/lib/python3.12/dist-packages/nvidia/cuda_nvrtc/lib");
    machine.nvrtc_file(&wheel.join("libnvrtc.so.12"), "libnvrtc-other.so");
    let reason = reason_of(&gpu_tests(&machine, &[]), "compiles_a_kernel");
    assert!(
        reason.contains(&format!(
            "{}/libnvrtc.so.12: it loaded, but the loader hands it out under none of the names cudarc asks for",
            wheel.display()
        )) && reason.contains(&format!("hint: add {} to LD_LIBRARY_PATH", wheel.display())),
        "{reason}"
    );
}

#[test]
fn nvrtc_too_old_skips_kernel_tests_only() {
    let run = gpu_tests(&Machine::with_fake_driver().nvrtc_version("11.8"), &[]);
    let reason = reason_of(&run, "compiles_a_kernel");
    assert!(
        reason.starts_with("needs NVRTC >= 12.0 (min_toolkit), found NVRTC 11.8 ("),
        "{reason}"
    );
    assert!(
        reason.ends_with(
            "hint: put the lib64 directory of a CUDA 12.0 or newer toolkit first in LD_LIBRARY_PATH"
        ),
        "{reason}"
    );
    // The other tests do not need NVRTC.
    assert_eq!(skips(&run).len(), 2, "{}", run.all());
    assert_passed(&run, "round_trip");
}

#[test]
fn broken_drivers_skip_every_test_without_panicking() {
    let cases: Vec<(Machine, &str)> = vec![
        (
            Machine::with_fake_driver().init_result(100),
            r#"cuInit failed: CUDA_ERROR_NO_DEVICE (100) "no CUDA-capable device is detected""#,
        ),
        (
            Machine::with_fake_driver().init_result(34),
            r#"cuInit failed: CUDA_ERROR_STUB_LIBRARY (34) "CUDA driver is a stub library""#,
        ),
        (
            Machine::with_fake_driver().init_result(35),
            "cuInit failed: unknown CUDA error code 35 (not a driver API code",
        ),
        (
            Machine::with_fake_driver().init_result(9999),
            "cuInit failed: unknown CUDA error code 9999",
        ),
        (
            Machine::with_fake_driver().without_symbol("cuDeviceTotalMem_v2"),
            "lacks cuDeviceTotalMem_v2",
        ),
        (
            Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", ""),
            r#"CUDA_VISIBLE_DEVICES="" is set but empty, which hides every device"#,
        ),
        (
            Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", "garbage"),
            r#"CUDA_VISIBLE_DEVICES="garbage" hides every device"#,
        ),
    ];
    for (machine, expected) in cases {
        let run = gpu_tests(&machine, &[]);
        run.assert_clean();
        assert_eq!(run.code, Some(0), "{expected}:\n{}", run.all());
        let skips = skips(&run);
        assert_eq!(skips.len(), GPU_TESTS.len(), "{expected}:\n{}", run.all());
        for (name, reason) in skips {
            assert!(
                reason.contains(expected),
                "{name}: expected {expected:?} in {reason:?}"
            );
        }
    }
}

#[test]
fn failing_bodies_fail_with_their_message() {
    let fixture = Fixture::build("libtest-basic");
    let failing = |test: &str| {
        Run::of(
            Machine::with_fake_driver()
                .command(fixture.test("failing"))
                .args(["--ignored", "--exact", test]),
        )
    };
    let run = failing("returns_an_error");
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(r#"gpu-test: returns_an_error returned an error: "the kernel produced 3.0 where 4.0 was expected""#),
        "{}",
        run.all()
    );
    let run = failing("panics");
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("the body panicked on purpose"),
        "{}",
        run.all()
    );
}

#[test]
fn a_body_that_outlives_its_timeout_fails() {
    let fixture = Fixture::build("libtest-basic");
    let machine = Machine::with_fake_driver();
    let mut command = machine.command(fixture.test("failing"));
    command.args(["--ignored", "--exact", "outlives_its_timeout"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(101), "{}", run.all());
    // The body sleeps for 60 s and then says so: the test ended without waiting for it.
    assert!(
        !run.all().contains("the abandoned body finished"),
        "{}",
        run.all()
    );
    assert!(
        run.all().contains(
            "gpu-test: outlives_its_timeout did not finish within its timeout of 200ms: it was still running its body"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_driver_that_never_finishes_the_work_fails_the_test_at_its_timeout_and_the_process_ends() {
    let fixture = Fixture::build("libtest-basic");
    // The driver's own exit handlers wait for the call that never returned, as a real driver's
    // teardown may: the process must end without them. `timeout` stops it if it does not.
    let machine = Machine::with_fake_driver()
        .env("FAKE_CUDA_HANG", "cuCtxSynchronize+1")
        .env("FAKE_CUDA_EXIT_WAITS", "1");
    let mut command = machine.command("timeout");
    command
        .args(["--kill-after=10", "120"])
        .arg(fixture.test("failing"))
        .args(["--ignored", "--exact", "stuck_in_the_driver"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(
            "gpu-test: stuck_in_the_driver did not finish within its timeout of 200ms: it was still waiting for \
             the GPU work its body launched to finish (the CUDA driver had not returned), and was abandoned"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_test_attribute_above_gpu_test_is_caught_at_run_time() {
    let fixture = Fixture::build("libtest-basic");
    let run = Run::of(Machine::without_driver().command(fixture.test("failing")).args([
        "--ignored",
        "--exact",
        "registered_twice",
        "--test-threads=1",
    ]));
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(run.stdout.contains("1 passed; 1 failed"), "{}", run.all());
    assert!(
        run.all().contains("gpu-test: registered_twice is registered as a test twice, so it runs twice: remove the #[test] above #[gpu_test]"),
        "{}",
        run.all()
    );
}

#[test]
fn context_failures_fail_the_test_with_the_driver_error() {
    let run = gpu_tests(
        &Machine::with_fake_driver().env("FAKE_CUDA_FAIL", "cuDevicePrimaryCtxRetain=2"),
        &["--exact", "round_trip"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains(r#"gpu-test: round_trip could not create a CUDA context on device 0 NVIDIA Fake H100: CUDA_ERROR_OUT_OF_MEMORY (2) "out of memory""#),
        "{}",
        run.all()
    );
}

#[test]
fn the_report_and_summary_cover_every_test_of_the_run() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let fixture = Fixture::build("libtest-basic");
    // Two binaries of one run (this process is the parent of both, as cargo is under cargo test).
    let run = Run::of(machine.command(fixture.test("gpu")).args(["--test-threads", "4"]));
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        run.stderr_lines("gpu-test: 1 skipped"),
        ["gpu-test: 1 skipped: 1 x needs 2 CUDA devices, found 1"],
        "the summary at the end of the run:\n{}",
        run.stderr
    );
    let failing = Run::of(
        machine
            .command(fixture.test("failing"))
            .args(["--ignored", "--exact", "panics"]),
    );
    assert_eq!(failing.code, Some(101));

    let json = gpu_test_tests::read_report(&report);
    let outcome = |suite: &str, name: &str| {
        json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["suite"] == suite && t["name"] == name)
            .map(|t| t["outcome"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no entry for {suite}::{name}: {json:#}"))
    };
    for test in GPU_TESTS.iter().filter(|t| **t != "two_devices") {
        assert_eq!(outcome("libtest-basic::gpu", test), "passed", "{test}");
    }
    assert_eq!(outcome("libtest-basic::gpu", "two_devices"), "skipped");
    assert_eq!(outcome("libtest-basic::failing", "panics"), "failed");
    assert_eq!(json["summary"]["tests"], GPU_TESTS.len() + 1);
}

/// The issue's acceptance check, through cargo itself: a fresh crate passes `cargo test` on a
/// machine with no driver, showing one skip line per GPU test; strict mode fails naming each.
#[test]
fn cargo_test_on_a_fresh_crate() {
    let fixture = Fixture::build("libtest-basic");
    let machine = Machine::without_driver();
    let cargo_test = |strict: bool| {
        let mut command = fixture.cargo_test(&machine);
        if strict {
            command.env("GPU_TEST_STRICT", "1");
        }
        Run::of(&mut command)
    };
    let run = cargo_test(false);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(skips(&run).len(), GPU_TESTS.len(), "{}", run.all());

    let run = cargo_test(true);
    assert_ne!(run.code, Some(0));
    for test in GPU_TESTS {
        assert!(
            run.all().contains(&format!(
                "gpu-test: {test} cannot run, and GPU_TEST_STRICT=1 makes that a failure: no CUDA driver: "
            )),
            "{test}:\n{}",
            run.all()
        );
    }
}

/// `#[allow(non_snake_case)]` (or `#[expect]`) on a test function holds for the `#[test]`
/// function the attribute generates under its name: the fixture denies the lint, so that it
/// would not build otherwise.
#[test]
fn lints_allowed_on_a_test_function_hold_for_the_generated_test() {
    let fixture = Fixture::build("lints");
    let run = Run::of(&mut Machine::with_fake_driver().command(fixture.test("lints")));
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    for test in [
        "allowed_on_the_GPU",
        "expected_on_the_GPU",
        "expects_what_only_its_body_does",
        "expected_through_cfg_attr_on_the_GPU",
    ] {
        assert!(
            run.stdout.contains(&format!("test {test} ... ok")),
            "{}",
            run.all()
        );
    }
}

/// Under the default harness, where no body runs (strict mode on a machine without a driver), the
/// first GPU test that fails goes into the report at once: a plain test that then ends the process
/// leaves a report of this run with that failure in it, not none.
#[test]
fn a_failure_without_a_body_is_in_the_report_before_the_process_can_end() {
    let fixture = Fixture::build("libtest-basic");
    let (machine, report) = Machine::without_driver()
        .env("GPU_TEST_STRICT", "1")
        .reporting_to("report.json");
    let run = Run::of(machine.command(fixture.test("failing")).args([
        "--ignored",
        "--test-threads",
        "1",
        "--exact",
        "panics",
        "then_aborts_the_process",
    ]));
    // SIGABRT (6), which `abort` ends the process with.
    assert_eq!(run.signal, Some(6), "{}", run.all());
    let json = gpu_test_tests::read_report(&report);
    let entry = gpu_test_tests::report_entry(&json, "panics").unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(entry["outcome"], "failed", "{entry:#}");
    assert!(
        entry["reason"].as_str().unwrap().starts_with("no CUDA driver"),
        "{entry:#}"
    );
}
