//! gpu-test's harness (`harness = false`, `fn main() { gpu_test_runtime::main() }`) on described
//! machines, under plain runs of the test binary (what `cargo test` does) and `cargo nextest run`:
//! unmet tests are real skips with their reasons, met tests run, strict mode fails, and reports are
//! complete.

use std::collections::BTreeSet;
use std::path::Path;

use gpu_test_tests::{Fixture, Machine, Run};

/// The GPU tests of the fixture's `gpu` binary that are not `#[ignore]`d.
const GPU_TESTS: [&str; 6] = [
    "compiles_a_kernel",
    "needs_a_big_modern_gpu",
    "needs_cuda_11_8",
    "nested::without_the_handle",
    "round_trip",
    "two_devices",
];

fn fixture() -> std::sync::Arc<Fixture> {
    Fixture::build("harness-basic")
}

fn gpu(machine: &Machine, args: &[&str]) -> Run {
    machine.run("harness-basic", "gpu", args)
}

/// `test <name> ... <outcome>` lines: name to the rest of the line after `... `.
fn outcomes(run: &Run) -> Vec<(String, String)> {
    let mut outcomes: Vec<(String, String)> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.split_once(" ... "))
        // libtest-mimic pads names to a common width.
        .map(|(name, outcome)| (name.trim_end().to_string(), outcome.to_string()))
        .collect();
    outcomes.sort();
    outcomes
}

fn outcome_of(run: &Run, test: &str) -> String {
    outcomes(run)
        .into_iter()
        .find(|(name, _)| name == test)
        .unwrap_or_else(|| panic!("no outcome for {test}:\n{}", run.all()))
        .1
}

fn listed(run: &Run) -> BTreeSet<String> {
    run.stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn without_a_driver_every_gpu_test_is_ignored_with_its_reason_and_summarised() {
    let run = gpu(&Machine::without_driver(), &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    for test in GPU_TESTS {
        let outcome = outcome_of(&run, test);
        assert!(
            outcome.starts_with("ignored (no CUDA driver: libcuda could not be loaded (tried ")
                && outcome.ends_with("the NVIDIA kernel module is not loaded either)"),
            "{test}: {outcome}"
        );
    }
    // The text of `#[ignore = "slow"]` is kept, as libtest keeps it.
    assert_eq!(outcome_of(&run, "slow_but_met"), "ignored (slow)");
    assert!(
        run.stdout
            .contains("test result: ok. 0 passed; 0 failed; 7 ignored"),
        "{}",
        run.stdout
    );
    let summary = run.stderr_lines("gpu-test: ");
    assert_eq!(summary.len(), 2, "{}", run.stderr);
    assert!(
        summary[0].starts_with("gpu-test: 6 skipped: 6 x no CUDA driver: libcuda could not be loaded"),
        "{}",
        summary[0]
    );
    assert!(
        summary[1].starts_with("gpu-test: to run them: install the NVIDIA driver"),
        "{}",
        summary[1]
    );
}

#[test]
fn ignore_texts_are_kept_when_tests_run_too() {
    // With a driver, met tests run through libtest-mimic, which shows no text for a test it
    // ignores itself: the harness ignores such a test at run time with its text instead.
    let machine = Machine::with_fake_driver();
    let run = gpu(&machine, &["--test-threads", "1"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(outcome_of(&run, "round_trip"), "ok");
    assert_eq!(outcome_of(&run, "slow_but_met"), "ignored (slow)");
    assert!(
        run.stdout.contains("5 passed; 0 failed; 2 ignored"),
        "{}",
        run.stdout
    );
    // Asked for, it runs.
    let run = gpu(&machine, &["--ignored", "--exact", "slow_but_met"]);
    assert_eq!(outcome_of(&run, "slow_but_met"), "ok", "{}", run.all());
    let run = gpu(&machine, &["--include-ignored", "--exact", "slow_but_met"]);
    assert_eq!(outcome_of(&run, "slow_but_met"), "ok", "{}", run.all());
}

#[test]
fn json_events_carry_skip_reasons_and_ignore_texts() {
    let run = gpu(
        &Machine::without_driver(),
        &["--format", "json", "-Z", "unstable-options"],
    );
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let ignored = |name: &str| {
        events
            .iter()
            .find(|e| e["name"] == name && e["event"] == "ignored")
            .unwrap_or_else(|| panic!("no ignored event for {name}:\n{}", run.stdout))["message"]
            .clone()
    };
    assert!(
        ignored("two_devices")
            .as_str()
            .is_some_and(|m| m.starts_with("no CUDA driver")),
        "{}",
        run.stdout
    );
    assert_eq!(ignored("slow_but_met"), "slow");
    assert_eq!(events.last().unwrap()["ignored"], 7, "{}", run.stdout);
}

#[test]
fn listing_marks_unmet_tests_ignored_so_list_and_run_agree() {
    let machine = Machine::with_fake_driver();
    let all = gpu(&machine, &["--list", "--format", "terse"]);
    let mut everything: Vec<&str> = GPU_TESTS.to_vec();
    everything.push("slow_but_met");
    assert_eq!(listed(&all), set(&everything), "{}", all.all());
    let ignored = gpu(&machine, &["--list", "--format", "terse", "--ignored"]);
    assert_eq!(
        listed(&ignored),
        set(&["slow_but_met", "two_devices"]),
        "{}",
        ignored.all()
    );

    // --ignored runs exactly what --list --ignored listed; the unmet one is still not run.
    let run = gpu(&machine, &["--ignored"]);
    run.assert_clean();
    assert_eq!(outcome_of(&run, "slow_but_met"), "ok");
    assert_eq!(
        outcome_of(&run, "two_devices"),
        "ignored (needs 2 CUDA devices, found 1)"
    );
    assert_eq!(outcomes(&run).len(), 2, "{}", run.all());

    let none = gpu(
        &Machine::without_driver(),
        &["--list", "--format", "terse", "--ignored"],
    );
    assert_eq!(listed(&none), set(&everything));
}

#[test]
fn include_ignored_never_runs_an_unmet_test() {
    let run = gpu(
        &Machine::without_driver(),
        &["--include-ignored", "--test-threads", "1"],
    );
    run.assert_clean();
    assert_eq!(run.code, Some(0));
    let outcomes = outcomes(&run);
    let mut expected: Vec<&str> = GPU_TESTS.into_iter().chain(["slow_but_met"]).collect();
    expected.sort_unstable();
    assert_eq!(
        outcomes.iter().map(|(test, _)| test.as_str()).collect::<Vec<_>>(),
        expected,
        "every GPU test is shown: {}",
        run.all()
    );
    for (test, outcome) in outcomes {
        assert!(
            outcome.starts_with("ignored (no CUDA driver"),
            "{test}: {outcome}"
        );
    }
}

#[test]
fn met_tests_run_and_pass() {
    let run = gpu(&Machine::with_fake_driver(), &[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    for test in GPU_TESTS.iter().filter(|t| **t != "two_devices") {
        assert_eq!(outcome_of(&run, test), "ok", "{test}");
    }
    assert_eq!(
        outcome_of(&run, "two_devices"),
        "ignored (needs 2 CUDA devices, found 1)"
    );
    let summary: Vec<&str> = run
        .stderr_lines("gpu-test: ")
        .into_iter()
        .filter(|l| !l.contains(" ran on "))
        .collect();
    assert_eq!(
        summary,
        [
            "gpu-test: 1 skipped: 1 x needs 2 CUDA devices, found 1",
            "gpu-test: to run them: run on a machine with at least 2 GPUs"
        ]
    );
    assert_eq!(
        run.stderr_lines("gpu-test: round_trip ran on "),
        ["gpu-test: round_trip ran on device 0 NVIDIA Fake H100 (GPU-fa4e0000-0000-0000-0000-000000000000)"]
    );
}

/// Two devices that both miss two requirements: each problem is named per device, each hint once.
#[test]
fn hints_of_several_unsuitable_devices_are_given_once() {
    let machine = Machine::with_fake_driver().devices("NVIDIA Fake T4|7.5|15GiB;NVIDIA Fake T4|7.5|15GiB");
    let run = gpu(&machine, &["--exact", "needs_a_big_modern_gpu"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        run.stderr_lines("gpu-test: to run them: "),
        [
            "gpu-test: to run them: run on a GPU of compute capability 8.0 (sm_80) or newer; run on a GPU with at \
          least 16 GiB of memory"
        ],
        "{}",
        run.all()
    );
    assert!(
        outcome_of(&run, "needs_a_big_modern_gpu")
            .contains("; device 1 NVIDIA Fake T4 is sm_75, needs min_compute"),
        "{}",
        run.all()
    );
}

/// A driver that cannot say which CUDA it supports may be new enough: the hint is not to update it.
#[test]
fn a_driver_whose_cuda_version_is_unknown_is_named_not_taken_for_old() {
    let machine = Machine::with_fake_driver().env("FAKE_CUDA_VERSION_RESULT", "999");
    let run = gpu(&machine, &["--exact", "needs_cuda_11_8"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        outcome_of(&run, "needs_cuda_11_8"),
        "ignored (needs CUDA >= 11.8, the driver's CUDA version is unknown (cuDriverGetVersion failed: \
         CUDA_ERROR_UNKNOWN (999) \"unknown error\"); CUDA 11.8 needs driver >= 520.61.05)"
    );
    let hint = run.stderr_lines("gpu-test: to run them: ").join("\n");
    assert!(
        hint.starts_with("gpu-test: to run them: check the driver's installation")
            && !hint.contains("update the NVIDIA driver"),
        "{}",
        run.all()
    );
}

/// A run whose filters leave out every GPU test still replaces the last run's report: the file
/// must never show an earlier run's results as this one's.
#[test]
fn a_run_that_filters_out_every_gpu_test_still_replaces_the_report() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let fixture = Fixture::build("harness-basic");
    let binary = fixture.test("gpu");
    // Each run from a shell of its own, as each `cargo test` is a run of its own.
    let run_in_a_shell = |args: &str| {
        Run::of(
            machine
                .command("sh")
                .args(["-c", &format!("'{}' {args}", binary.display())]),
        )
    };
    let tests = || {
        gpu_test_tests::read_report(&report)["tests"]
            .as_array()
            .unwrap()
            .len()
    };
    let run = run_in_a_shell("--exact round_trip");
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(tests(), 1);
    let run = run_in_a_shell("no_test_has_this_name");
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(tests(), 0, "the earlier run's report was left in place");
}

/// What nextest's list phase decides must reach its run phase: where it cannot be recorded, the
/// list fails; and a run phase that cannot read it still knows a test run without `--ignored` was
/// listed to run, so that one whose requirements are now unmet fails rather than passing as
/// ignored.
#[test]
fn decisions_the_list_phase_cannot_hand_on_fail_the_run() {
    let machine = Machine::with_fake_driver();
    let runtime = machine.dir().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    // Where the runs' directories go, a file.
    std::fs::write(runtime.join("runs"), "").unwrap();
    let run = nextest_on("harness-basic", &machine, &[]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(
        run.all().contains(&format!(
            "gpu-test: the run's directory in {} cannot be used",
            runtime.display()
        )),
        "{}",
        run.all()
    );

    // A run phase whose list phase left nothing, on a machine where the test's requirements are
    // unmet.
    let machine = Machine::without_driver()
        .env("NEXTEST_TEST_PHASE", "run")
        .env("NEXTEST_RUN_ID", "a-run-never-listed")
        .env("NEXTEST_BINARY_ID", "harness-basic::gpu");
    let run = gpu(&machine, &["--exact", "round_trip", "--nocapture"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all()
            .contains("nextest listed this test to run, but in this process its requirements are unmet"),
        "{}",
        run.all()
    );
    // ...and a device's run of an `each_device` test whose device this process does not see fails
    // rather than matching nothing.
    let machine = Machine::with_fake_driver()
        .env("NEXTEST_TEST_PHASE", "run")
        .env("NEXTEST_RUN_ID", "a-run-never-listed")
        .env("NEXTEST_BINARY_ID", "per-device::gpu");
    let run = machine.run(
        "per-device",
        "gpu",
        &["--exact", "on_every_modern_gpu::cuda1", "--nocapture"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("device 1 is not visible in this process"),
        "{}",
        run.all()
    );
}

/// A stdout nobody reads (`| head` that has exited) fails the run, as libtest-mimic does, but only
/// once the report has what the run skipped.
#[test]
fn a_closed_stdout_fails_the_run_after_the_report_has_its_skips() {
    let machine = Machine::without_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let fixture = Fixture::build("harness-basic");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = machine
        .command(fixture.test("gpu"))
        .stdout(writer)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(101));
    let json = gpu_test_tests::read_report(&report);
    let tests = json["tests"].as_array().unwrap();
    assert!(tests.iter().all(|t| t["outcome"] == "skipped"), "{json:#}");
    for test in GPU_TESTS {
        assert!(
            gpu_test_tests::report_entry(&json, test).is_some(),
            "every skip is in the report, {test} too: {json:#}"
        );
    }
}

/// `--test-threads 0` would start no thread and wait for ever: refused as libtest refuses it.
#[test]
fn zero_test_threads_are_refused_not_waited_on() {
    let machine = Machine::with_fake_driver();
    let run = Run::of(
        machine
            .command("timeout")
            .args(["--kill-after=10", "120"])
            .arg(Fixture::build("harness-basic").test("gpu"))
            .args(["--test-threads", "0", "--color", "always"]),
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr
            .contains("error: argument for --test-threads must not be 0"),
        "{}",
        run.all()
    );
}

#[test]
fn filters_select_tests_by_libtest_rules() {
    let machine = Machine::with_fake_driver();
    let run = gpu(&machine, &["--exact", "round_trip"]);
    assert_eq!(outcomes(&run), [("round_trip".to_string(), "ok".to_string())]);
    assert!(run.stdout.contains("6 filtered out"), "{}", run.stdout);
    let run = gpu(&machine, &["needs", "--skip", "cuda"]);
    assert_eq!(
        outcomes(&run),
        [("needs_a_big_modern_gpu".to_string(), "ok".to_string())]
    );
    let run = gpu(&machine, &["nested::"]);
    assert_eq!(
        outcomes(&run),
        [("nested::without_the_handle".to_string(), "ok".to_string())]
    );
}

#[test]
fn strict_mode_runs_unmet_tests_and_fails_them_with_the_reason() {
    let run = gpu(
        &Machine::without_driver().env("GPU_TEST_STRICT", "1"),
        &["--test-threads", "1"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    for test in GPU_TESTS {
        assert_eq!(outcome_of(&run, test), "FAILED", "{test}");
        assert!(
            run.stdout.contains(&format!(
                "gpu-test: {test} cannot run, and GPU_TEST_STRICT=1 makes that a failure: no CUDA driver: "
            )),
            "{test}:\n{}",
            run.stdout
        );
    }
    let listed_ignored = gpu(
        &Machine::without_driver().env("GPU_TEST_STRICT", "1"),
        &["--list", "--format", "terse", "--ignored"],
    );
    assert_eq!(
        listed(&listed_ignored),
        set(&["slow_but_met"]),
        "strict: unmet tests are not ignored"
    );
}

#[test]
fn failing_bodies_fail_with_their_message() {
    let machine = Machine::with_fake_driver();
    let run = Run::of(
        machine
            .command(fixture().test("failing"))
            .args(["--ignored", "--test-threads", "1"]),
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert_eq!(outcome_of(&run, "returns_an_error"), "FAILED");
    assert_eq!(outcome_of(&run, "panics"), "FAILED");
    assert!(
        run.stdout.contains(r#"gpu-test: returns_an_error returned an error: "the kernel produced 3.0 where 4.0 was expected""#),
        "{}",
        run.all()
    );
    assert!(
        run.all().contains("the body panicked on purpose"),
        "{}",
        run.all()
    );
}

#[test]
fn bad_settings_stop_before_any_test_runs() {
    let cases = [
        (
            "GPU_TEST_STRICT",
            "yes",
            r#"gpu-test: GPU_TEST_STRICT="yes" is not valid: accepted values are unset, empty, 0, 1, true, false"#,
        ),
        (
            "GPU_TEST_REPORT",
            "report.txt",
            r#"gpu-test: GPU_TEST_REPORT="report.txt" is not valid: the file name must end in .xml (JUnit) or .json"#,
        ),
        (
            "GPU_TEST_REPORT",
            "/proc/gpu-test/report.xml",
            r#"gpu-test: GPU_TEST_REPORT="/proc/gpu-test/report.xml" is not valid: its directory /proc/gpu-test cannot be created"#,
        ),
        (
            "GPU_TEST_TESTS_PER_DEVICE",
            "many",
            r#"gpu-test: GPU_TEST_TESTS_PER_DEVICE="many" is not valid: expected a whole number from 1 to 1024"#,
        ),
    ];
    for (variable, value, message) in cases {
        let run = gpu(&Machine::with_fake_driver().env(variable, value), &[]);
        assert_eq!(run.code, Some(101), "{variable}={value}:\n{}", run.all());
        assert!(run.stderr.contains(message), "{variable}={value}:\n{}", run.all());
        assert_eq!(
            run.stderr.matches("is not valid").count(),
            1,
            "reported once:\n{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("running"),
            "no test may run:\n{}",
            run.stdout
        );
    }
    // A path that is not UTF-8 read as text would name another file (U+FFFD for the byte), where
    // `cargo gpu-test run` would not find the report: refused, the variable named once.
    let machine = Machine::with_fake_driver();
    let mut report = machine.dir().as_os_str().as_encoded_bytes().to_vec();
    report.extend_from_slice(b"/r\xe9sultats/gpu.json");
    let report = <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(report);
    let run = Run::of(
        machine
            .command(fixture().test("gpu"))
            .env("GPU_TEST_REPORT", &report)
            .env("GPU_TEST_STRICT", "\u{fffd}"),
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    let message = format!(
        "gpu-test: GPU_TEST_REPORT=\"{}/r\u{fffd}sultats/gpu.json\" is not valid: the value is not UTF-8 text",
        machine.dir().display()
    );
    assert!(run.stderr.contains(&message), "{}", run.all());
    assert_eq!(
        run.stderr.matches("GPU_TEST_REPORT=").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("GPU_TEST_STRICT=\"\u{fffd}\" is not valid: accepted values are"),
        "a value that is text, even U+FFFD itself, is read as text:\n{}",
        run.stderr
    );
    assert!(
        !machine.dir().join("r\u{fffd}sultats").exists(),
        "nothing made at the other path"
    );
    assert!(
        !run.stdout.contains("running"),
        "no test may run:\n{}",
        run.stdout
    );
}

fn junit(path: &Path) -> String {
    let xml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("invalid XML ({e}):\n{xml}"));
    xml
}

/// `(name, outcome, message)` per test case of a JUnit report.
fn junit_cases(xml: &str) -> Vec<(String, String, String)> {
    let document = roxmltree::Document::parse(xml).unwrap();
    let mut cases: Vec<(String, String, String)> = document
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let child = case.children().find(|c| c.is_element());
            let (outcome, message) = match child {
                Some(c) if c.has_tag_name("skipped") => {
                    ("skipped", c.attribute("message").unwrap_or_default())
                }
                Some(c) if c.has_tag_name("failure") => {
                    ("failed", c.attribute("message").unwrap_or_default())
                }
                _ => ("passed", ""),
            };
            (
                case.attribute("name").unwrap().to_string(),
                outcome.to_string(),
                message.to_string(),
            )
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn junit_report_has_one_skipped_element_per_skipped_test() {
    let machine = Machine::without_driver().env("CUDA_VISIBLE_DEVICES", "0");
    let (machine, report) = machine.reporting_to("out/report.xml");
    let run = gpu(&machine, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let xml = junit(&report);
    let cases = junit_cases(&xml);
    assert_eq!(cases.len(), GPU_TESTS.len(), "{xml}");
    for (name, outcome, message) in &cases {
        assert_eq!(outcome, "skipped", "{name}");
        assert!(
            message.starts_with("no CUDA driver: ") && message.contains("; hint: install the NVIDIA driver"),
            "{message}"
        );
    }
    assert!(
        xml.contains("<testsuites name=\"gpu-test\" tests=\"6\" failures=\"0\" skipped=\"6\""),
        "{xml}"
    );
    assert!(
        xml.contains("<property name=\"gpu-test.probe\" value=\"no CUDA driver, no devices\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("<property name=\"CUDA_VISIBLE_DEVICES\" value=\"0\"/>"),
        "only CUDA variables:\n{xml}"
    );
    assert!(
        !xml.contains("\"PATH\""),
        "the report must not hold the whole environment:\n{xml}"
    );
}

fn quiet(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
}

#[test]
fn json_report_merges_binaries_and_parallel_processes() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let fixture = fixture();
    // Both binaries at once, as parallel processes of one run (they share this test's process as
    // their parent), with the gpu binary's tests spread over separate processes too.
    let mut children: Vec<std::process::Child> = Vec::new();
    for test in GPU_TESTS {
        let mut command = machine.command(fixture.test("gpu"));
        command.args(["--exact", test]);
        children.push(quiet(&mut command).spawn().unwrap());
    }
    let mut command = machine.command(fixture.test("failing"));
    command.arg("--ignored");
    children.push(quiet(&mut command).spawn().unwrap());
    for mut child in children {
        child.wait().unwrap();
    }
    let json = gpu_test_tests::read_report(&report);
    let tests = json["tests"].as_array().unwrap();
    let names: BTreeSet<String> = tests
        .iter()
        .map(|t| {
            format!(
                "{}::{}",
                t["suite"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        })
        .collect();
    let mut expected: BTreeSet<String> = GPU_TESTS
        .iter()
        .map(|t| format!("harness-basic::gpu::{t}"))
        .collect();
    expected.insert("harness-basic::failing::panics".to_string());
    expected.insert("harness-basic::failing::returns_an_error".to_string());
    assert_eq!(names, expected, "{json:#}");
    assert_eq!(json["summary"]["passed"], 5);
    assert_eq!(json["summary"]["skipped"], 1);
    assert_eq!(json["summary"]["failed"], 2);
    let two = tests.iter().find(|t| t["name"] == "two_devices").unwrap();
    assert_eq!(two["outcome"], "skipped");
    assert_eq!(two["reason"], "needs 2 CUDA devices, found 1");
    assert_eq!(two["kind"], "too_few_devices");
    let round_trip = tests.iter().find(|t| t["name"] == "round_trip").unwrap();
    assert_eq!(
        round_trip["devices"],
        serde_json::json!([{
            "ordinal": 0,
            "name": "NVIDIA Fake H100",
            "compute_capability": "9.0",
            "memory_bytes": 80u64 << 30,
            "uuid": "GPU-fa4e0000-0000-0000-0000-000000000000",
        }])
    );
    assert_eq!(
        (round_trip["file"].as_str(), round_trip["line"].as_u64()),
        (Some("tests/gpu.rs"), Some(5))
    );
    assert!(
        json["written_at"]
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "{json:#}"
    );
    let suites = json["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[0]["cuda_version"], "12.8");
    assert_eq!(suites[0]["driver_release"], "570.86.15");
    assert_eq!(suites[0]["devices"][0]["compute_capability"], "9.0");
}

#[test]
fn github_annotations_are_emitted_once_per_reason_per_run() {
    let machine = Machine::without_driver().env("GITHUB_ACTIONS", "true");
    let first = gpu(&machine, &[]);
    let notices: Vec<&str> = first
        .stdout
        .lines()
        .filter(|l| l.starts_with("::notice"))
        .collect();
    assert_eq!(notices.len(), 1, "{}", first.stdout);
    assert!(
        // On the first test skipped for the reason (tests/gpu.rs:29 is `fn compiles_a_kernel`).
        notices[0].starts_with(
            "::notice file=tests/gpu.rs,line=29,title=gpu-test skipped 6 GPU tests in harness-basic%3A%3Agpu::no \
             CUDA driver: libcuda could not be loaded"
        ),
        "{}",
        notices[0]
    );
    // The same run (this process is the parent of both), the same reason: not repeated.
    let second = gpu(&machine, &[]);
    assert!(!second.stdout.contains("::notice"), "{}", second.stdout);

    let strict = gpu(
        &Machine::without_driver()
            .env("GITHUB_ACTIONS", "true")
            .env("GPU_TEST_STRICT", "1"),
        &[],
    );
    let errors: Vec<&str> = strict
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(errors.len(), GPU_TESTS.len(), "{}", strict.stdout);
    assert!(
        errors.iter().any(|e| e.starts_with(
            "::error file=tests/gpu.rs,line=5,title=gpu-test%3A round_trip failed::no CUDA driver"
        )),
        "{}",
        strict.stdout
    );
}

/// With `--format json`, stdout is libtest's JSON for a program to read: the annotations go to
/// stderr, which the runner reads too, rather than break it.
#[test]
fn github_annotations_leave_json_on_stdout_whole() {
    let machine = Machine::without_driver()
        .env("GITHUB_ACTIONS", "true")
        .env("GPU_TEST_STRICT", "1");
    let run = gpu(&machine, &["--format", "json"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    let mut events = 0;
    for line in run.stdout.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error} in {line:?}:\n{}", run.stdout));
        events += usize::from(event["type"] == "test");
    }
    assert!(events > 0, "{}", run.stdout);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("::error file=tests/gpu.rs,line=5,")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_nextest_that_does_not_tell_its_list_phase_the_run_is_refused_with_the_update() {
    // nextest before 0.9.138 sets the phase but neither the run's id nor the binary's in it.
    let machine = Machine::without_driver()
        .env("NEXTEST", "1")
        .env("NEXTEST_TEST_PHASE", "list");
    let list = gpu(&machine, &["--list", "--format", "terse"]);
    assert_eq!(list.code, Some(101), "{}", list.all());
    assert!(
        list.stderr
            .contains("gpu-test: this cargo-nextest does not tell its list phase which run")
            && list.stderr.contains("cargo install cargo-nextest --locked"),
        "{}",
        list.all()
    );
}

#[test]
fn a_test_listed_to_run_that_cannot_run_later_fails_instead_of_passing() {
    // nextest's two phases, by hand: the list phase sees the fake GPU, the run phase no driver.
    let met = Machine::with_fake_driver();
    let runtime = met.dir().join("shared-runtime");
    let nextest = |machine: Machine, phase: &str| {
        machine
            .env("NEXTEST", "1")
            .env("NEXTEST_RUN_ID", "0f8b6c2e-run")
            .env("NEXTEST_BINARY_ID", "harness-basic::gpu")
            .env("NEXTEST_TEST_PHASE", phase)
            .env("GPU_TEST_RUNTIME_DIR", runtime.to_str().unwrap())
    };
    let met = nextest(met, "list");
    let list = gpu(&met, &["--list", "--format", "terse"]);
    assert!(listed(&list).contains("round_trip"));
    let gone = nextest(Machine::without_driver(), "run");
    let run = gpu(&gone, &["--exact", "round_trip", "--nocapture"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("gpu-test: round_trip nextest listed this test to run, but in this process its requirements are unmet: no CUDA driver"),
        "{}",
        run.all()
    );
    // A test the list phase skipped stays a skip when nextest is asked to run ignored tests.
    let run = gpu(&gone, &["--exact", "two_devices", "--nocapture", "--ignored"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        outcome_of(&run, "two_devices").starts_with("ignored (no CUDA driver"),
        "not a pass: {}",
        run.all()
    );
}

fn nextest(machine: &Machine, extra: &[&str]) -> Run {
    nextest_on("harness-basic", machine, extra)
}

/// `cargo nextest run` on the fixture `name`, on `machine`, with `extra` arguments.
fn nextest_on(name: &str, machine: &Machine, extra: &[&str]) -> Run {
    cargo_nextest(name, machine, &["run", "--no-fail-fast"], extra)
}

/// `cargo nextest <subcommand>` on the fixture `name`, on `machine`, with `extra` arguments.
fn cargo_nextest(name: &str, machine: &Machine, subcommand: &[&str], extra: &[&str]) -> Run {
    let fixture = Fixture::build(name);
    let cargo_path = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = machine.command(cargo_path);
    command
        .arg("nextest")
        .args(subcommand)
        .args(["--color", "never", "--manifest-path"])
        .arg(fixture.dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(Fixture::target_dir())
        .args(extra);
    Run::of(&mut command)
}

/// The test names nextest printed with `status` (`PASS`, `SKIP`, `FAIL`).
fn nextest_lines(run: &Run, status: &str) -> BTreeSet<String> {
    run.stderr
        .lines()
        .chain(run.stdout.lines())
        .filter(|l| l.trim_start().starts_with(status))
        .filter_map(|l| l.rsplit_once(' ').map(|(_, name)| name.to_string()))
        .collect()
}

#[test]
fn nextest_shows_unmet_tests_as_skip_and_met_ones_as_pass() {
    gpu_test_tests::require_nextest();

    let run = nextest(&Machine::without_driver(), &["--status-level", "all"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let skipped = nextest_lines(&run, "SKIP");
    let mut expected: Vec<&str> = GPU_TESTS.to_vec();
    expected.push("slow_but_met");
    expected.extend(["panics", "returns_an_error"]);
    assert_eq!(
        skipped,
        expected.into_iter().map(str::to_string).collect(),
        "{}",
        run.all()
    );
    assert!(
        nextest_lines(&run, "PASS").contains("tests::cpu_only"),
        "{}",
        run.all()
    );

    let run = nextest(&Machine::with_fake_driver(), &["--status-level", "all"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let passed = nextest_lines(&run, "PASS");
    for test in GPU_TESTS.iter().filter(|t| **t != "two_devices") {
        assert!(passed.contains(*test), "{test}:\n{}", run.all());
    }
    assert!(
        nextest_lines(&run, "SKIP").contains("two_devices"),
        "{}",
        run.all()
    );
}

#[test]
fn nextest_strict_fails_and_names_the_reason() {
    let run = nextest(&Machine::without_driver().env("GPU_TEST_STRICT", "1"), &[]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    let failed = nextest_lines(&run, "FAIL");
    for test in GPU_TESTS {
        assert!(failed.contains(test), "{test}:\n{}", run.all());
    }
    assert!(
        run.all()
            .contains("GPU_TEST_STRICT=1 makes that a failure: no CUDA driver: libcuda could not be loaded"),
        "{}",
        run.all()
    );
}

#[test]
fn nextest_junit_report_has_skips_from_the_list_phase_and_passes_from_the_run() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("nextest.xml");
    let run = nextest(&machine, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let cases = junit_cases(&junit(&report));
    let skipped: Vec<&str> = cases
        .iter()
        .filter(|c| c.1 == "skipped")
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(skipped, ["two_devices"], "{cases:#?}");
    assert_eq!(
        cases.iter().find(|c| c.0 == "two_devices").unwrap().2,
        "needs 2 CUDA devices, found 1; hint: run on a machine with at least 2 GPUs"
    );
    let passed: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c.1 == "passed")
        .map(|c| c.0.as_str())
        .collect();
    let expected: BTreeSet<&str> = GPU_TESTS
        .iter()
        .copied()
        .filter(|t| *t != "two_devices")
        .collect();
    assert_eq!(passed, expected, "{cases:#?}");
}

/// `cargo nextest list` and `cargo nextest run --no-run` run the list phase and no test: the
/// last run's report and job summary are left as they were, not replaced by a run of skips alone.
#[test]
fn cargo_nextest_list_leaves_the_last_runs_report_and_summary_alone() {
    let machine = Machine::with_fake_driver().env("GITHUB_ACTIONS", "true");
    let report = machine.dir().join("report.json");
    let summary = machine.dir().join("step-summary.md");
    let machine = machine
        .env("GPU_TEST_REPORT", report.to_str().unwrap())
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let run = nextest(&machine, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let (report_after_run, summary_after_run) = (
        std::fs::read_to_string(&report).unwrap(),
        std::fs::read_to_string(&summary).unwrap(),
    );
    assert!(report_after_run.contains("\"round_trip\""), "{report_after_run}");
    assert!(
        summary_after_run.contains("gpu-test skipped 1 GPU test in `harness-basic::gpu`"),
        "{summary_after_run}"
    );

    let list = cargo_nextest("harness-basic", &machine, &["list"], &[]);
    assert_eq!(list.code, Some(0), "{}", list.all());
    assert!(list.stdout.contains("round_trip"), "{}", list.all());
    assert_eq!(std::fs::read_to_string(&report).unwrap(), report_after_run);
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), summary_after_run);

    let build_only = cargo_nextest("harness-basic", &machine, &["run", "--no-run"], &[]);
    assert_eq!(build_only.code, Some(0), "{}", build_only.all());
    assert_eq!(std::fs::read_to_string(&report).unwrap(), report_after_run);
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), summary_after_run);
}

#[test]
fn the_github_job_summary_gets_the_reasons_nextest_hides() {
    let machine = Machine::without_driver().env("GITHUB_ACTIONS", "true");
    let summary = machine.dir().join("step-summary.md");
    let machine = machine.env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let run = nextest(&machine, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let text = std::fs::read_to_string(&summary).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    // One line per binary and reason, each counting that binary's tests; those `#[ignore]`d in
    // their source are not skipped GPU tests (the `failing` binary has only such tests).
    assert_eq!(lines.len(), 1, "one line per binary and distinct reason:\n{text}");
    assert!(
        lines[0].starts_with("- **gpu-test skipped 6 GPU tests in `harness-basic::gpu`**: no CUDA driver: "),
        "{text}"
    );

    // Under `--run-ignored`, nextest runs the tests `#[ignore]`d in their source too, each in a
    // process of its own whose output it shows no one: the summary counts those skipped.
    let machine = Machine::without_driver().env("GITHUB_ACTIONS", "true");
    let summary = machine.dir().join("step-summary.md");
    let machine = machine.env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let run = nextest(&machine, &["--run-ignored", "all"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let text = std::fs::read_to_string(&summary).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0]
            .starts_with("- **gpu-test skipped 2 GPU tests in `harness-basic::failing`**: no CUDA driver: "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("- **gpu-test skipped 7 GPU tests in `harness-basic::gpu`**: no CUDA driver: "),
        "{text}"
    );
}

/// Under the default libtest harness an unmet test passes (libtest has no skip at run time), and
/// nextest shows nothing a passing process printed: the job summary names each such test.
#[test]
fn the_github_job_summary_names_each_test_the_default_harness_passed_unmet_under_nextest() {
    let machine = Machine::without_driver().env("GITHUB_ACTIONS", "true");
    let summary = machine.dir().join("step-summary.md");
    let machine = machine.env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let run = nextest_on("libtest-basic", &machine, &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let text = std::fs::read_to_string(&summary).unwrap();
    let mut named: Vec<&str> = text
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("- **gpu-test skipped `")
                .unwrap_or_else(|| panic!("{line}"));
            let (test, rest) = rest
                .split_once("` in `libtest-basic::gpu`** (it shows as passed): ")
                .unwrap();
            assert!(
                rest.starts_with("no CUDA driver: ") && rest.contains(" (fix: "),
                "{line}"
            );
            test
        })
        .collect();
    named.sort();
    assert_eq!(named, gpu_test_tests::LIBTEST_BASIC_GPU_TESTS, "{text}");
}

/// The issue's acceptance check through cargo itself: `cargo test` on a crate using the harness
/// shows `ignored (<reason>)` for each GPU test and the grouped summary, and passes; strict, it
/// fails naming the reason.
#[test]
fn cargo_test_on_a_harness_crate() {
    let fixture = fixture();
    let machine = Machine::without_driver();
    let run = Run::of(&mut fixture.cargo_test(&machine));
    assert_eq!(run.code, Some(0), "{}", run.all());
    for test in GPU_TESTS {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(&format!("test {test} "))
                && l.contains("... ignored (no CUDA driver: libcuda could not be loaded")),
            "{test}:\n{}",
            run.all()
        );
    }
    assert!(
        run.stdout.contains("test tests::cpu_only ... ok"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("gpu-test: 6 skipped: 6 x no CUDA driver: ")),
        "{}",
        run.stderr
    );

    let mut strict = fixture.cargo_test(&machine);
    strict.env("GPU_TEST_STRICT", "1");
    let run = Run::of(&mut strict);
    assert_ne!(run.code, Some(0), "{}", run.all());
    for test in GPU_TESTS {
        assert!(
            run.stdout.contains(&format!(
                "gpu-test: {test} cannot run, and GPU_TEST_STRICT=1 makes that a failure: no CUDA driver: "
            )),
            "{test}:\n{}",
            run.all()
        );
    }
}

/// Without ANSI colour sequences and the run's duration, which differ between any two runs.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    const FINISHED: &str = "finished in ";
    match out.find(FINISHED) {
        Some(at) => {
            let from = at + FINISHED.len();
            let end = out[from..].find('s').map_or(out.len(), |e| from + e + 1);
            format!("{}{FINISHED}<time>{}", &out[..at], &out[end..])
        }
        None => out,
    }
}

#[test]
fn runs_with_nothing_to_run_print_exactly_what_libtest_mimic_prints() {
    let machine = Machine::without_driver();
    let cases: [&[&str]; 9] = [
        &[],
        &["--ignored"],
        &["--include-ignored"],
        &["-q"],
        &["--format", "terse"],
        &["round"],
        &["--exact", "two_devices"],
        &["--skip", "needs"],
        &["nested", "--test-threads", "1"],
    ];
    for args in cases {
        // gpu-test writes this run itself; with colours forced, libtest-mimic writes it.
        let fast = gpu(&machine, args);
        let mimic = gpu(&machine, &[args, &["--color", "always"]].concat());
        assert_eq!(fast.code, mimic.code, "{args:?}");
        // With more than one thread, libtest-mimic prints each test as it ends: compare lines
        // whatever their order.
        let lines = |text: &str| {
            let mut lines: Vec<String> = plain(text).lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(lines(&fast.stdout), lines(&mimic.stdout), "{args:?}");
        assert!(fast.stdout.starts_with("\nrunning "), "{args:?}: {}", fast.stdout);
    }
    for args in [
        &["--list"][..],
        &["--list", "--ignored"],
        &["--list", "--format", "terse", "round"],
    ] {
        let fast = gpu(&machine, args);
        let log = machine.dir().join("list.log");
        let mimic = gpu(&machine, &[args, &["--logfile", log.to_str().unwrap()]].concat());
        assert_eq!(mimic.code, Some(0), "{args:?}: {}", mimic.all());
        assert_eq!(fast.stdout, std::fs::read_to_string(&log).unwrap(), "{args:?}");
    }
}

/// `#[gpu_test(feature = "cuda")]`: built without the crate's feature, the test still exists and
/// is skipped with the reason under both harnesses and nextest (and fails, strict); built with
/// it, it runs.
#[test]
fn a_test_built_without_its_feature_is_skipped_not_lost() {
    let fixture = Fixture::build("features");
    let machine = Machine::with_fake_driver();
    let reason = "built without feature `cuda`, which the test's body needs";

    let run = Run::of(&mut machine.command(fixture.test("gpu")));
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(outcome_of(&run, "needs_no_feature"), "ok");
    assert_eq!(
        outcome_of(&run, "doubles_with_cuda"),
        format!("ignored ({reason})")
    );
    // Its signature names a type of the feature too.
    assert_eq!(
        outcome_of(&run, "returns_the_features_error"),
        format!("ignored ({reason})")
    );

    // The default harness: the test passes and says why on stderr.
    let run = Run::of(&mut machine.command(fixture.test("plain")));
    assert_eq!(run.code, Some(0), "{}", run.all());
    for test in [
        "doubles_with_cuda_under_libtest",
        "returns_the_features_error_under_libtest",
    ] {
        assert!(
            run.stderr.contains(&format!(
                "gpu-test: skipped {test}: {reason}; hint: build with `--features cuda`"
            )),
            "{}",
            run.stderr
        );
    }

    // Strict: both fail, naming the reason.
    let strict = Machine::with_fake_driver().env("GPU_TEST_STRICT", "1");
    for target in ["gpu", "plain"] {
        let run = Run::of(&mut strict.command(fixture.test(target)));
        assert_eq!(run.code, Some(101), "{target}: {}", run.all());
        assert!(run.all().contains(reason), "{target}: {}", run.all());
    }

    // nextest lists it as skipped, not absent.
    let run = nextest_on("features", &machine, &["--status-level", "skip"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("SKIP") && l.ends_with("features::gpu doubles_with_cuda")),
        "{}",
        run.all()
    );

    // Built with the feature, the body is compiled and runs.
    let mut command = fixture.cargo_test(&machine);
    command.args(["--features", "cuda", "--", "--test-threads=1"]);
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(0), "{}", run.all());
    // libtest-mimic pads the names to one width.
    let passed = |test: &str| {
        run.stdout.lines().any(|line| {
            line.strip_prefix("test ")
                .and_then(|rest| rest.strip_suffix(" ... ok"))
                .is_some_and(|name| name.trim_end() == test)
        })
    };
    for test in [
        "doubles_with_cuda",
        "returns_the_features_error",
        "doubles_with_cuda_under_libtest",
        "returns_the_features_error_under_libtest",
    ] {
        assert!(passed(test), "{test}: {}", run.all());
    }
    assert!(!run.all().contains(reason), "{}", run.all());
}

/// A device the driver counts but cannot describe is no device an `each_device` test may pass
/// over in silence: it has a run of its own, skipped naming the call that failed (failed in strict
/// mode), under either harness, and the report's probe summary names it.
#[test]
fn each_device_names_a_device_the_driver_could_not_describe() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .env("FAKE_CUDA_FAIL", "cuDeviceGetName@1=999");
    let (machine, report) = machine.reporting_to("report.json");
    let unreadable = "device 1 could not be read: cuDeviceGetName failed: CUDA_ERROR_UNKNOWN (999)";
    let run = machine.run("per-device", "gpu", &["--test-threads", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(outcome_of(&run, "on_every_modern_gpu::cuda0"), "ok");
    assert!(
        outcome_of(&run, "on_every_modern_gpu::cuda1").starts_with(&format!("ignored ({unreadable}")),
        "{}",
        run.all()
    );
    let json = gpu_test_tests::read_report(&report);
    let entry = gpu_test_tests::report_entry(&json, "on_every_modern_gpu::cuda1")
        .unwrap_or_else(|| panic!("{json:#}"))
        .clone();
    assert_eq!(entry["outcome"], "skipped", "{entry:#}");
    assert!(
        json.to_string()
            .contains(&format!("1 device: 0 NVIDIA Fake H100 (sm_90); {unreadable}")),
        "the probe summary: {json:#}"
    );

    let listed_ignored = machine.run("per-device", "gpu", &["--list", "--ignored"]);
    assert_eq!(
        listed(&listed_ignored),
        set(&["on_every_modern_gpu::cuda1"]),
        "{}",
        listed_ignored.all()
    );

    let strict = machine.env("GPU_TEST_STRICT", "1");
    let run = strict.run("per-device", "gpu", &["--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert_eq!(outcome_of(&run, "on_every_modern_gpu::cuda0"), "ok");
    assert_eq!(outcome_of(&run, "on_every_modern_gpu::cuda1"), "FAILED");
    assert!(run.all().contains(unreadable), "{}", run.all());

    // A count past belief lists no devices: those read have their runs, and no others.
    let implausible = Machine::with_fake_driver().env("FAKE_CUDA_DEVICE_COUNT", "2147483647");
    let listed_all = implausible.run("per-device", "gpu", &["--list"]);
    assert_eq!(
        listed(&listed_all),
        set(&["on_every_modern_gpu::cuda0"]),
        "{}",
        listed_all.all()
    );

    // libtest: one test, a run per device inside it.
    let run = strict.run(
        "per-device",
        "plain",
        &["--exact", "on_every_modern_gpu_under_libtest"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all()
            .contains("gpu-test: on_every_modern_gpu_under_libtest::cuda1 cannot run")
            && run.all().contains(unreadable),
        "{}",
        run.all()
    );
}

/// `#[gpu_test(each_device)]` on a machine with two GPUs of different compute capability: one
/// trial per device under gpu-test's harness and nextest, one run per device inside the one test
/// under libtest, each named `<test>::cuda<N>` and decided for its device alone.
#[test]
fn each_device_runs_once_per_qualifying_device() {
    let machine = Machine::with_fake_driver().devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake T4|7.5|16GiB");
    let (machine, report) = machine.reporting_to("report.json");
    let run = machine.run("per-device", "gpu", &["--test-threads", "1"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(outcome_of(&run, "on_every_modern_gpu::cuda0"), "ok");
    assert_eq!(
        outcome_of(&run, "on_every_modern_gpu::cuda1"),
        "ignored (device 1 NVIDIA Fake T4 is sm_75, needs min_compute 8.0)"
    );
    assert!(run.stderr.contains("body ran on ordinal 0"), "{}", run.stderr);
    assert!(!run.stderr.contains("body ran on ordinal 1"), "{}", run.stderr);
    let json = gpu_test_tests::read_report(&report);
    let entry = |name: &str| {
        json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {json:#}"))
            .clone()
    };
    assert_eq!(entry("on_every_modern_gpu::cuda0")["devices"][0]["ordinal"], 0);
    assert_eq!(
        entry("on_every_modern_gpu::cuda0")["each_device_of"],
        "on_every_modern_gpu"
    );
    assert_eq!(entry("on_every_modern_gpu::cuda1")["outcome"], "skipped");

    // Strict mode passes over a device the test does not suit where another device runs it, as
    // `devices = 1` does; and a GPU listed twice runs once (where a driver shows it twice).
    let two_gpus = "NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake T4|7.5|16GiB";
    for (devices, visible, skipped) in [
        (
            two_gpus,
            None,
            "ignored (device 1 NVIDIA Fake T4 is sm_75, needs min_compute 8.0)",
        ),
        (
            two_gpus,
            Some("0,0"),
            "ignored (device 1 NVIDIA Fake H100 is the same GPU as device 0 (CUDA_VISIBLE_DEVICES lists it \
             twice): one run per GPU)",
        ),
    ] {
        let mut strict = Machine::with_fake_driver()
            .devices(devices)
            .env("GPU_TEST_STRICT", "1")
            .env("FAKE_CUDA_SHOWS_REPEATS", "1");
        if let Some(visible) = visible {
            strict = strict.env("CUDA_VISIBLE_DEVICES", visible);
        }
        let run = strict.run("per-device", "gpu", &["--test-threads", "1"]);
        assert_eq!(run.code, Some(0), "{visible:?}: {}", run.all());
        assert_eq!(outcome_of(&run, "on_every_modern_gpu::cuda0"), "ok");
        assert_eq!(outcome_of(&run, "on_every_modern_gpu::cuda1"), skipped);
    }
    // Where no device suits it, strict mode fails every run.
    let strict = Machine::with_fake_driver()
        .devices("NVIDIA Fake T4|7.5|16GiB;NVIDIA Fake T4|7.5|16GiB")
        .env("GPU_TEST_STRICT", "1");
    let run = strict.run("per-device", "gpu", &["--test-threads", "1"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    for trial in ["on_every_modern_gpu::cuda0", "on_every_modern_gpu::cuda1"] {
        assert_eq!(outcome_of(&run, trial), "FAILED", "{}", run.all());
    }

    // Listing agrees with the run.
    let listed_ignored = machine.run("per-device", "gpu", &["--list", "--ignored"]);
    assert_eq!(
        listed(&listed_ignored),
        set(&["on_every_modern_gpu::cuda1"]),
        "{}",
        listed_ignored.all()
    );

    // Without a driver there are no devices to name: the test is one trial, skipped.
    let run = Machine::without_driver().run("per-device", "gpu", &[]);
    assert!(
        outcome_of(&run, "on_every_modern_gpu").starts_with("ignored (no CUDA driver"),
        "{}",
        run.all()
    );

    // Under libtest: one test, a run per device, each named.
    let run = machine.run(
        "per-device",
        "plain",
        &["--exact", "on_every_modern_gpu_under_libtest"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("gpu-test: on_every_modern_gpu_under_libtest::cuda0 ran on device 0 NVIDIA Fake H100"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "gpu-test: skipped on_every_modern_gpu_under_libtest::cuda1: device 1 NVIDIA Fake T4 is sm_75, needs \
             min_compute 8.0"
        ),
        "{}",
        run.stderr
    );
    // The report names each device's run of the one libtest test.
    let json = gpu_test_tests::read_report(&report);
    let names: Vec<&str> = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["each_device_of"] == "on_every_modern_gpu_under_libtest")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "on_every_modern_gpu_under_libtest::cuda0",
            "on_every_modern_gpu_under_libtest::cuda1"
        ],
        "{json:#}"
    );
    let run = machine.run(
        "per-device",
        "plain",
        &["--ignored", "--exact", "fails_on_the_second"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all()
            .contains("gpu-test: fails_on_the_second::cuda0 ran on device 0"),
        "{}",
        run.all()
    );
    assert!(
        run.all()
            .contains("fails_on_the_second::cuda1 panicked: assertion `left != right` failed: the body failed on the second device"),
        "{}",
        run.all()
    );

    // nextest: a process per device, the unqualified one skipped.
    let run = nextest_on(
        "per-device",
        &machine,
        &["--status-level", "skip", "--test", "gpu"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    let line = |status: &str, name: &str| {
        run.stderr
            .lines()
            .any(|l| l.trim_start().starts_with(status) && l.ends_with(&format!("per-device::gpu {name}")))
    };
    assert!(line("PASS", "on_every_modern_gpu::cuda0"), "{}", run.all());
    assert!(line("SKIP", "on_every_modern_gpu::cuda1"), "{}", run.all());
}

/// nextest's list phase sees two GPUs and lists `::cuda0` and `::cuda1`; a run phase that sees
/// no device still has those trials, and fails the one it is asked for rather than matching
/// nothing (which nextest would count as a pass).
#[test]
fn each_device_trials_listed_by_nextest_exist_in_its_run_phase() {
    let two = Machine::with_fake_driver().devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake A100|8.0|40GiB");
    let runtime = two.dir().join("shared-runtime");
    let nextest = |machine: Machine, phase: &str| {
        machine
            .env("NEXTEST", "1")
            .env("NEXTEST_RUN_ID", "5e1f-run")
            .env("NEXTEST_BINARY_ID", "per-device::gpu")
            .env("NEXTEST_TEST_PHASE", phase)
            .env("GPU_TEST_RUNTIME_DIR", runtime.to_str().unwrap())
    };
    let two = nextest(two, "list");
    let list = two.run("per-device", "gpu", &["--list", "--format", "terse"]);
    assert_eq!(
        listed(&list),
        set(&["on_every_modern_gpu::cuda0", "on_every_modern_gpu::cuda1"]),
        "{}",
        list.all()
    );
    let gone = nextest(Machine::without_driver(), "run");
    let run = gone.run(
        "per-device",
        "gpu",
        &["--exact", "on_every_modern_gpu::cuda1", "--nocapture"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.all().contains("device 1 is not visible in this process"),
        "{}",
        run.all()
    );
    // The other way round: listed (strict, so to run) where no device was seen, under the test's
    // own name, then run where two are: that trial exists, and fails.
    let runtime = runtime.join("second");
    let nextest = |machine: Machine, phase: &str| {
        machine
            .env("NEXTEST", "1")
            .env("NEXTEST_RUN_ID", "5e1f-second-run")
            .env("NEXTEST_BINARY_ID", "per-device::gpu")
            .env("NEXTEST_TEST_PHASE", phase)
            .env("GPU_TEST_RUNTIME_DIR", runtime.to_str().unwrap())
            .env("GPU_TEST_STRICT", "1")
    };
    let none = nextest(Machine::without_driver(), "list");
    let list = none.run("per-device", "gpu", &["--list", "--format", "terse"]);
    assert!(listed(&list).contains("on_every_modern_gpu"), "{}", list.all());
    let two = nextest(
        Machine::with_fake_driver().devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake A100|8.0|40GiB"),
        "run",
    );
    let run = two.run(
        "per-device",
        "gpu",
        &["--exact", "on_every_modern_gpu", "--nocapture"],
    );
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert_eq!(outcome_of(&run, "on_every_modern_gpu"), "FAILED", "{}", run.all());
    assert!(
        run.all()
            .contains("nextest listed this test when it saw no CUDA device, as one run; this process sees 2"),
        "{}",
        run.all()
    );
    // Whatever else nextest asks for that this binary does not have fails too.
    let run = two.run("per-device", "gpu", &["--exact", "no_such_test", "--nocapture"]);
    assert_eq!(run.code, Some(101), "{}", run.all());
    assert!(
        run.stderr.contains(
            "gpu-test: nextest asked this process to run no_such_test, which this test binary does not have"
        ),
        "{}",
        run.all()
    );
}
