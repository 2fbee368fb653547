//! `cargo gpu-test`, used as a user would: installed with `cargo install --path`, run as a cargo
//! subcommand in a crate outside this workspace, on described machines (no driver, the fake
//! driver), and its `report`, `ledger` and `compare` commands on reports of fixture runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gpu_test_tests::{Fixture, Machine, Run, cargo, scratch_dir, workspace_root};

/// `cargo install --path cargo-gpu-test` into a directory of its own, once per process; the
/// directory holding the installed `cargo-gpu-test`.
fn installed() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = scratch_dir().join("installed");
        let output = cargo()
            .args(["install", "--locked", "--debug", "--force", "--path"])
            .arg(workspace_root().join("cargo-gpu-test"))
            .arg("--root")
            .arg(&root)
            .arg("--target-dir")
            .arg(Fixture::target_dir())
            .output()
            .expect("run cargo install");
        assert!(
            output.status.success(),
            "cargo install --path cargo-gpu-test failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        root.join("bin")
    })
}

/// `PATH` with the installed companion first, so that `cargo gpu-test` finds it.
fn path_with_companion() -> std::ffi::OsString {
    let mut dirs = vec![installed().to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// `cargo gpu-test ARGS` in `dir`, on `machine`.
fn cargo_gpu_test(machine: &Machine, dir: &Path, args: &[&str]) -> Run {
    let mut command = machine.command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .env("PATH", path_with_companion())
        .env("CARGO_TARGET_DIR", Fixture::target_dir())
        .current_dir(dir)
        .arg("gpu-test")
        .args(args);
    Run::of(&mut command)
}

/// The installed `cargo-gpu-test ARGS`, run directly.
fn companion(machine: &Machine, args: &[&str]) -> Run {
    Run::of(machine.command(installed().join("cargo-gpu-test")).args(args))
}

#[test]
fn run_under_nextest_shows_every_skip_reason_and_passes_on_a_cpu_machine() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("harness-basic");
    let machine = Machine::without_driver();
    let run = cargo_gpu_test(&machine, &fixture.dir, &["run", "--no-fail-fast"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    // nextest itself ran: its summary line, and the plain test passing.
    assert!(run.all().contains("cpu_only"), "{}", run.all());
    assert!(run.stderr.contains("Summary ["), "{}", run.all());
    // Then every skipped GPU test, grouped by reason, with the fix and where it is.
    let after = run
        .stderr
        .split_once("cargo gpu-test: ")
        .unwrap_or_else(|| panic!("no skip list:\n{}", run.all()))
        .1;
    assert!(
        after.starts_with(
            "6 GPU tests skipped, by reason:\n  6 x no CUDA driver: libcuda could not be loaded"
        ),
        "{after}"
    );
    assert!(after.contains("      fix: install the NVIDIA driver"), "{after}");
    for test in ["two_devices", "round_trip", "nested::without_the_handle"] {
        assert!(
            after.contains(&format!("harness-basic::gpu {test} (tests/gpu.rs:")),
            "{test}:\n{after}"
        );
    }
    // A test `#[ignore]`d in its source is not a GPU skip, as under `cargo test`, unless the run
    // runs ignored tests.
    assert!(!after.contains("slow_but_met"), "{after}");
    let run = cargo_gpu_test(&machine, &fixture.dir, &["run", "--run-ignored", "all"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("cargo gpu-test: 9 GPU tests skipped, by reason:")
            && run
                .stderr
                .contains("harness-basic::gpu slow_but_met (tests/gpu.rs:"),
        "{}",
        run.all()
    );
}

#[test]
fn a_run_in_which_every_gpu_test_is_skipped_succeeds_and_says_so() {
    let fixture = Fixture::build("harness-basic");
    let machine = Machine::without_driver();
    // Only the GPU binary: nextest has nothing left to run and says so with exit status 4.
    let run = cargo_gpu_test(&machine, &fixture.dir, &["run", "--test", "gpu"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("every GPU test of this run was skipped: none ran on a GPU (nextest had no test left"),
        "{}",
        run.all()
    );
    // Strict: the unmet tests run and fail, and so does the command.
    let strict = Machine::without_driver().env("GPU_TEST_STRICT", "1");
    let run = cargo_gpu_test(&strict, &fixture.dir, &["run", "--test", "gpu"]);
    run.assert_clean();
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(run.all().contains("FAIL"), "{}", run.all());
    // cargo test as the runner, by choice.
    let run = cargo_gpu_test(
        &machine,
        &fixture.dir,
        &["run", "--runner", "cargo-test", "--test", "gpu"],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("... ignored (no CUDA driver"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("every GPU test of this run was skipped"),
        "{}",
        run.all()
    );
}

/// On GitHub Actions `run` writes the skips' notices on stdout once nextest is done: where that
/// fails (a full disk), the tests' status stands and the skips are still listed.
#[test]
fn notices_that_cannot_be_written_leave_the_runs_status() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("harness-basic");
    let machine = Machine::without_driver().env("GITHUB_ACTIONS", "true");
    let mut command = machine.command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .env("PATH", path_with_companion())
        .env("CARGO_TARGET_DIR", Fixture::target_dir())
        .current_dir(&fixture.dir)
        .args(["gpu-test", "run", "--test", "gpu"])
        .stdout(std::fs::File::create("/dev/full").unwrap());
    let run = Run::of(&mut command);
    assert_eq!(run.code, Some(0), "every GPU test was skipped: {}", run.all());
    assert!(
        run.stderr.contains(
            "cargo gpu-test: warning: cannot write to standard output: No space left on device (os error 28), \
             so the GitHub notices of the run's skips are not written"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("6 GPU tests skipped, by reason:"),
        "{}",
        run.stderr
    );
}

/// A test whose body ends its process with status 0 would read as passed to its runner: the
/// process ends with 101, naming it, and the report has it as failed for want of an outcome.
#[test]
fn a_body_that_exits_with_success_fails_the_run() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("per-device");
    let machine = Machine::with_fake_driver();
    for (args, code) in [
        (&["run", "--test", "exits", "--run-ignored", "only"][..], 100),
        (
            &[
                "run",
                "--runner",
                "cargo-test",
                "--test",
                "exits",
                "--",
                "--ignored",
            ][..],
            101,
        ),
    ] {
        let run = cargo_gpu_test(&machine, &fixture.dir, args);
        assert_eq!(run.code, Some(code), "{args:?}: {}", run.all());
        assert!(
            run.all().contains(
                "gpu-test: the process is exiting while the body of exits_with_success_in_its_body runs \
                 (std::process::exit"
            ),
            "{args:?}: {}",
            run.all()
        );
    }
}

/// A failure the report has and the runner's status does not fails `run`: a body that ends its
/// process with `_exit(0)`, past every exit handler (its runner sees a pass), and a stress
/// iteration that failed, after which nextest exits 0 under `--no-fail-fast`.
#[test]
fn a_failure_only_the_report_has_fails_the_run() {
    gpu_test_tests::require_nextest();
    let fixture = Fixture::build("execution");
    let machine = Machine::with_fake_driver();
    for (args, named) in [
        (
            &[
                "run",
                "--run-ignored",
                "only",
                "-E",
                "test(=ends_its_process_at_once_with_success)",
            ][..],
            "execution::execution ends_its_process_at_once_with_success",
        ),
        (
            &[
                "run",
                "--no-fail-fast",
                "--stress-count",
                "2",
                "--run-ignored",
                "only",
                "-E",
                "test(=fails_the_first_iteration)",
            ][..],
            "execution::execution fails_the_first_iteration",
        ),
    ] {
        let run = cargo_gpu_test(&machine, &fixture.dir, args);
        assert_eq!(run.code, Some(100), "{args:?}: {}", run.all());
        assert!(
            run.all().contains(&format!(
                "cargo gpu-test: the runner exited with status 0, but the run's report has 1 failed GPU test: {named}; \
                 cargo gpu-test exits with 100"
            )),
            "{args:?}: {}",
            run.all()
        );
    }
}

#[test]
fn a_junit_report_variable_is_refused_with_the_way_out() {
    let fixture = Fixture::build("harness-basic");
    // Neither a JUnit report nor a name the tests refuse is pointed at JUnit: `run` needs JSON.
    for path in ["gpu.xml", "report.txt"] {
        let machine = Machine::without_driver().env("GPU_TEST_REPORT", path);
        let run = cargo_gpu_test(&machine, &fixture.dir, &["run"]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.starts_with(&format!(
                "cargo gpu-test: error: GPU_TEST_REPORT=\"{path}\": cargo gpu-test run reads the run's report back"
            )),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_report_path_that_is_a_fifo_or_a_link_is_refused_before_the_run() {
    // Another user may make a path in a shared directory a FIFO (reading it would wait for ever)
    // or a link (to a file of this user's).
    let machine = Machine::without_driver();
    let fifo = machine.dir().join("fifo.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let link = machine.dir().join("link.json");
    std::os::unix::fs::symlink(machine.dir().join("elsewhere.json"), &link).unwrap();
    for (path, why) in [
        (&fifo, "is not a regular file"),
        (
            &link,
            "is a symbolic link; gpu-test writes a report only as a file of its own",
        ),
    ] {
        // `timeout` stops a companion that waits on the FIFO.
        let run = Run::of(
            machine
                .command("timeout")
                .args(["--kill-after=10", "60"])
                .arg(installed().join("cargo-gpu-test"))
                // Outside any cargo project, so that a run that went ahead would find nothing.
                .current_dir("/")
                .args(["run", "--runner", "cargo-test"])
                .env("GPU_TEST_REPORT", path),
        );
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert_eq!(
            run.stderr.trim_end(),
            format!("cargo gpu-test: error: GPU_TEST_REPORT={}: {why}", path.display()).as_str(),
            "nothing runs: {}",
            run.all()
        );
    }
}

#[test]
fn a_report_path_that_is_another_users_file_is_refused_before_the_run() {
    let machine = Machine::without_driver();
    let theirs = machine.dir().join("theirs.json");
    std::fs::write(&theirs, "{}").unwrap();
    // Only root can give a file away: as another user this case cannot be set up (CI runs the
    // suite as root, where it is checked).
    if let Err(error) = std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)) {
        eprintln!("not checked: a file of another user's cannot be made here ({error})");
        return;
    }
    // Outside any cargo project, so that a run that went ahead would find nothing to test.
    let run = Run::of(
        machine
            .command(installed().join("cargo-gpu-test"))
            .current_dir("/")
            .args(["run", "--runner", "cargo-test"])
            .env("GPU_TEST_REPORT", &theirs),
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.starts_with(&format!(
            "cargo gpu-test: error: GPU_TEST_REPORT={}: belongs to user 65534, not to this user",
            theirs.display()
        )),
        "nothing runs: {}",
        run.all()
    );
}

#[test]
fn a_misspelt_variable_and_a_file_that_is_not_a_report_are_named_before_the_run() {
    let machine = Machine::without_driver();
    std::fs::create_dir_all(machine.dir()).unwrap();
    let notes = machine.dir().join("notes.json");
    std::fs::write(&notes, "hello\n").unwrap();
    // Outside any cargo project, so that a run that went ahead would find nothing to test.
    let run = Run::of(
        machine
            .command(installed().join("cargo-gpu-test"))
            .current_dir("/")
            .args(["run", "--runner", "cargo-test"])
            .env("GPU_TEST_REPORT", &notes),
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "cargo gpu-test: error: GPU_TEST_REPORT=\"{0}\" is not valid: {0} exists and is not a gpu-test report, \
             so it is not overwritten; remove it or give another path",
            notes.display()
        ),
        "nothing runs: {}",
        run.all()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "hello\n");
    // Under nextest, which hides what test processes print, `run` warns of a misspelt variable.
    let run = Run::of(
        machine
            .command(installed().join("cargo-gpu-test"))
            .current_dir("/")
            .args(["run", "--runner", "cargo-test"])
            .env("GPU_TEST_STIRCT", "1"),
    );
    assert!(
        run.stderr.starts_with(
            "cargo gpu-test: warning: GPU_TEST_STIRCT is set but is not a gpu-test variable; did you mean \
             GPU_TEST_STRICT? (known: GPU_TEST_STRICT, "
        ),
        "{}",
        run.all()
    );
}

/// `report`, `ledger` and `compare` read the files they are given; one that is a FIFO (which
/// would wait for ever), a device or a directory, or far larger than any report, is named as an
/// error rather than stopping or exhausting the command.
#[test]
fn a_report_to_read_that_is_not_a_report_file_is_named() {
    let machine = Machine::without_driver();
    std::fs::create_dir_all(machine.dir()).unwrap();
    let fifo = machine.dir().join("fifo.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let huge = machine.dir().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((256 << 20) + 1)
        .unwrap();
    let good = machine.dir().join("good.json");
    std::fs::write(&good, include_str!("../cargo-gpu-test/tests/data/report.json")).unwrap();
    for (path, why) in [
        (fifo.as_path(), "it is not a regular file"),
        (Path::new("/dev/zero"), "it is not a regular file"),
        (machine.dir(), "it is not a regular file"),
        (
            huge.as_path(),
            "it is larger than 256 MiB, more than any report gpu-test writes",
        ),
    ] {
        let path = path.to_str().unwrap();
        for args in [
            vec!["report", path],
            vec!["ledger", good.to_str().unwrap(), path],
            vec!["compare", good.to_str().unwrap(), path],
        ] {
            // `timeout` stops a companion that waits on the FIFO.
            let run = Run::of(
                machine
                    .command("timeout")
                    .args(["--kill-after=10", "60"])
                    .arg(installed().join("cargo-gpu-test"))
                    .args(&args),
            );
            assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
            assert_eq!(
                run.stderr.trim_end(),
                format!("cargo gpu-test: error: cannot read the report {path}: {why}"),
                "{args:?}"
            );
        }
    }
}

/// A diagnosis saved to a file (`doctor --json > doctor.json`) that could not be written whole is
/// an error (status 2), not a short file and the machine's status; a reader that stopped reading
/// (`| head`) is no error. For `cargo gpu-test doctor` and `gpu-doctor` alike.
#[test]
fn a_diagnosis_that_cannot_be_written_is_an_error() {
    let machine = Machine::without_driver();
    let doctors = [
        (
            installed().join("cargo-gpu-test"),
            vec!["doctor", "--json"],
            "cargo gpu-test",
        ),
        (
            gpu_test_tests::built().doctor.clone(),
            vec!["--json"],
            "gpu-doctor",
        ),
    ];
    for (program, args, name) in doctors {
        let full = std::fs::File::create("/dev/full").unwrap();
        let run = Run::of(machine.command(&program).args(&args).stdout(full));
        assert_eq!(run.code, Some(2), "{name}: {}", run.all());
        assert_eq!(
            run.stderr.trim_end(),
            format!("{name}: error: cannot write to standard output: No space left on device (os error 28)"),
        );
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let run = Run::of(machine.command(&program).args(&args).stdout(writer));
        assert_eq!(
            run.code,
            Some(1),
            "{name}: no device is usable here: {}",
            run.all()
        );
        assert_eq!(run.stderr, "", "{name}");
    }
}

#[test]
fn a_ledger_of_reports_without_a_gpu_test_is_an_error() {
    let machine = Machine::without_driver();
    let empty = machine.dir().join("empty.json");
    std::fs::create_dir_all(machine.dir()).unwrap();
    std::fs::write(&empty, r#"{"run": "r", "suites": [], "tests": []}"#).unwrap();
    let run = companion(&machine, &["ledger", empty.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .starts_with("cargo gpu-test: error: no GPU test in the report: were they written by runs"),
        "{}",
        run.all()
    );
}

#[test]
fn a_runner_ended_by_a_signal_exits_as_a_shell_reports_it() {
    let machine = Machine::without_driver();
    // A cargo that is killed: its status has a signal and no code.
    let killed = machine.dir().join("killed-cargo");
    std::fs::write(&killed, "#!/bin/sh\nkill -KILL $$\n").unwrap();
    std::fs::set_permissions(&killed, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = Run::of(
        machine
            .command(installed().join("cargo-gpu-test"))
            .current_dir("/")
            .args(["run", "--runner", "cargo-test"])
            .env("CARGO", &killed),
    );
    assert_eq!(run.code, Some(128 + 9), "{}", run.all());
}

/// `run` runs the runner as a shell runs a command in the foreground: Ctrl-C, which the terminal
/// sends the whole process group, is left to the runner, and `run` outlives it, says what it has
/// to say, and exits with the runner's status, or ends by the interrupt where the interrupt ended
/// the runner (so that a shell loop around it stops); a termination sent to `run` alone (a CI
/// job's timeout) reaches the runner, which is not left behind, and `run` then ends by it.
#[test]
fn the_runner_gets_the_signals_and_run_outlives_it() {
    let machine = Machine::without_driver();
    std::fs::create_dir_all(machine.dir()).unwrap();
    // A cargo that writes the run's report (one skipped test), says it started, then waits (a
    // minute at most) for a signal, and exits with a status that names the one it got; with
    // TRAP_INT unset, an interrupt ends it.
    let cargo = machine.dir().join("waiting-cargo");
    let report = r#"{"run": "r", "tests": [{"suite": "s", "name": "waits", "outcome": "skipped", "reason": "no CUDA driver"}]}"#;
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\nulimit -c 0\nif [ -n \"$TRAP_INT\" ]; then trap 'echo INT > \"$0.got\"; exit 5' INT; fi\n\
             trap 'echo TERM > \"$0.got\"; exit 6' TERM\necho '{report}' > \"$GPU_TEST_REPORT\"\n\
             echo $$ > \"$0.started\"\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\nexit 7\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let started = machine.dir().join("waiting-cargo.started");
    let got = machine.dir().join("waiting-cargo.got");
    // Linux's numbers.
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    // What `run` says once the runner is done: the run's skips.
    let said = "cargo gpu-test: 1 GPU test skipped, by reason:";
    // (signal, sent to the whole group as a terminal does, the runner traps it, stderr is gone,
    // how `run` ends, what the runner wrote).
    for (signal, to_the_group, trap_int, stderr_gone, code, ended_by, runner_got) in [
        ("INT", true, true, false, Some(5), None, Some("INT")),
        ("INT", true, false, false, None, Some(SIGINT), None),
        // Ctrl-\: as a shell reports it, not raised (which would dump a core).
        ("QUIT", true, false, false, Some(128 + 3), None, None),
        ("TERM", false, false, false, None, Some(SIGTERM), Some("TERM")),
        // Ended by the termination even where nothing can be said any more.
        ("TERM", false, false, true, None, Some(SIGTERM), Some("TERM")),
    ] {
        let _ = std::fs::remove_file(&started);
        let _ = std::fs::remove_file(&got);
        // Output to files: a runner left behind would hold pipes open for its minute.
        let out = std::fs::File::create(machine.dir().join("out")).unwrap();
        let mut command = machine.command(installed().join("cargo-gpu-test"));
        command
            .current_dir("/")
            .args(["run", "--runner", "cargo-test"])
            .env("CARGO", &cargo)
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if stderr_gone {
            command.stderr(std::fs::File::create("/dev/full").unwrap());
        }
        if trap_int {
            command.env("TRAP_INT", "1");
        }
        let mut companion = std::os::unix::process::CommandExt::process_group(&mut command, 0)
            .spawn()
            .unwrap();
        // Waits for the runner to have started (its traps set), for as long as it takes.
        while !started.exists() {
            assert!(
                companion.try_wait().unwrap().is_none(),
                "cargo gpu-test ended early"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let target = if to_the_group {
            format!("-{}", companion.id())
        } else {
            companion.id().to_string()
        };
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), "--", &target])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = companion.wait().unwrap();
        let runner = std::fs::read_to_string(&started).unwrap();
        let got_it = std::fs::read_to_string(&got).ok();
        // A runner left behind is stopped here, whatever the assertions find.
        let _ = std::process::Command::new("kill").arg(runner.trim()).status();
        let output = std::fs::read_to_string(machine.dir().join("out")).unwrap();
        let case = format!("SIG{signal}, trapped: {trap_int}: {status:?}\n{output}");
        assert_eq!(status.code(), code, "{case}");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            ended_by,
            "{case}"
        );
        assert_eq!(got_it.as_deref().map(str::trim), runner_got, "{case}");
        assert!(
            stderr_gone || output.contains(said),
            "run outlived the runner: {case}"
        );
    }
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    let report = workspace_root().join("cargo-gpu-test/tests/data/report.json");
    // A pipe whose reading end is closed before the companion writes: as `| head -0` would leave it.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Machine::without_driver()
        .command(installed().join("cargo-gpu-test"))
        .arg("report")
        .arg(&report)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn doctor_and_version() {
    let machine = Machine::with_fake_driver();
    let fixture = Fixture::build("harness-basic");
    let run = cargo_gpu_test(&machine, &fixture.dir, &["doctor", "--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.json()["devices"][0]["name"], "NVIDIA Fake H100");
    assert_eq!(run.json()["gpu_test_slots"], 1);
    // Two GPUs, two tests on each: a nextest `gpu` group of four.
    let two = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake A100|8.0|40GiB")
        .env("GPU_TEST_TESTS_PER_DEVICE", "2");
    let run = cargo_gpu_test(&two, &fixture.dir, &["doctor"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout
            .contains("nextest: give the `gpu` test group max-threads = 4 (2 usable device(s) x"),
        "{}",
        run.stdout
    );
    let none = cargo_gpu_test(&Machine::without_driver(), &fixture.dir, &["doctor"]);
    assert_eq!(none.code, Some(1), "{}", none.all());
    assert!(none.stdout.contains("no CUDA driver"), "{}", none.stdout);
    let help = cargo_gpu_test(&machine, &fixture.dir, &["--help"]);
    assert_eq!(help.code, Some(0), "{}", help.all());
    for command in ["run", "doctor", "report", "ledger", "compare"] {
        assert!(
            help.stdout.contains(&format!("  {command} ")),
            "{command}:\n{}",
            help.stdout
        );
    }
    let version = cargo_gpu_test(&machine, &fixture.dir, &["--version"]);
    assert_eq!(
        version.stdout,
        format!("cargo-gpu-test {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Runs the fixture `execution`'s `timed_regions` on `machine`, writing a JSON report; its path.
fn timed_report(machine: &Machine, name: &str) -> PathBuf {
    let report = machine.dir().join(name);
    let run = Run::of(
        machine
            .command(Fixture::build("execution").test("execution"))
            .env("GPU_TEST_REPORT", &report)
            .args(["--exact", "timed_regions"]),
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    report
}

#[test]
fn compare_flags_regions_that_got_slower() {
    let old = Machine::with_fake_driver().env("FAKE_CUDA_EVENT_MS", "0.040");
    let new = Machine::with_fake_driver().env("FAKE_CUDA_EVENT_MS", "0.050");
    let (old, new) = (timed_report(&old, "old.json"), timed_report(&new, "new.json"));
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let machine = Machine::without_driver();
    let run = companion(&machine, &["compare", old, new, "--fail-above", "20"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout
            .contains("execution timed_regions  saxpy   40.0 us     50.0 us     +25.0%  SLOWER"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("2 of 2 regions slower by more than 10%"),
        "{}",
        run.stdout
    );
    let run = companion(&machine, &["compare", old, new, "--fail-above", "30"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let run = companion(&machine, &["compare", new, old, "--fail-above", "0"]);
    assert_eq!(run.code, Some(0), "faster is not a failure:\n{}", run.all());
    assert!(run.stdout.contains("-20.0%"), "{}", run.stdout);
    // A baseline whose tests were skipped has no timings: the gate would compare nothing.
    let skipped = Machine::without_driver();
    let untimed = timed_report(&skipped, "untimed.json");
    let run = companion(
        &machine,
        &["compare", untimed.to_str().unwrap(), new, "--fail-above", "20"],
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("the baseline {} has no GPU timings", untimed.display())),
        "{}",
        run.all()
    );
}

#[test]
fn ledger_finds_the_tests_that_never_ran_on_a_gpu() {
    let fixture = Fixture::build("harness-basic");
    let run_on = |machine: Machine, name: &str| {
        let report = machine.dir().join(name);
        let machine = machine.env("GPU_TEST_REPORT", report.to_str().unwrap());
        let run = Run::of(machine.command(fixture.test("gpu")).arg("--test-threads=1"));
        assert_eq!(run.code, Some(0), "{}", run.all());
        (machine, report)
    };
    // A CPU machine, and an sm_90 machine with one GPU and driver 570.
    let (_cpu, cpu) = run_on(Machine::without_driver(), "cpu.json");
    let (_gpu, gpu) = run_on(Machine::with_fake_driver(), "gpu.json");
    let (cpu, gpu) = (cpu.to_str().unwrap(), gpu.to_str().unwrap());
    let machine = Machine::without_driver();

    let run = companion(&machine, &["ledger", cpu, gpu]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let missing: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("MISSING")).collect();
    // The fake GPU meets every requirement but two devices.
    assert_eq!(missing.len(), 1, "{}", run.stdout);
    assert!(
        missing[0].starts_with(
            "MISSING harness-basic::gpu two_devices  never ran on a GPU in 2 reports; last seen "
        ) && missing[0].ends_with("skipped: needs 2 CUDA devices, found 1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("5 of 6 GPU tests in 2 reports ran on a GPU at least once; 1 never did\n"),
        "{}",
        run.stdout
    );

    // Only the CPU run: nothing ran; given twice, it is still one report.
    let run = companion(&machine, &["ledger", cpu, cpu]);
    assert!(
        run.stdout
            .ends_with("0 of 6 GPU tests in 1 report ran on a GPU at least once; 6 never did\n"),
        "{}",
        run.stdout
    );

    // The fake GPU is sm_90 with driver 570: asked for sm_80, or driver 580, nothing ran.
    let run = companion(&machine, &["ledger", cpu, gpu, "--compute", "8.0"]);
    assert!(
        run.stdout
            .contains("never ran on a GPU of compute capability 8.0 in 2 reports; last ran on a GPU "),
        "{}",
        run.stdout
    );
    let run = companion(
        &machine,
        &[
            "ledger",
            cpu,
            gpu,
            "--compute",
            "sm_90",
            "--driver",
            "570",
            "--all",
        ],
    );
    assert!(
        run.stdout.contains("ran     harness-basic::gpu round_trip"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("(device 0 NVIDIA Fake H100 (sm_90), driver 570.86.15)"),
        "{}",
        run.stdout
    );
    let run = companion(&machine, &["ledger", gpu, "--driver", "580"]);
    assert!(run.stdout.ends_with("; 6 never did\n"), "{}", run.stdout);

    // With --since, older reports drop out, and the count says how many.
    let old_gpu = std::path::Path::new(gpu).with_file_name("old-gpu.json");
    let text = std::fs::read_to_string(gpu).unwrap();
    let (at, _) = text
        .split_once("\"written_at\"")
        .expect("the report has its date");
    let rest = &text[at.len()..];
    let date_end = rest.find('Z').expect("the date is UTC") + 1;
    let old = format!("{at}\"written_at\": \"2020-01-01T00:00:00Z{}", &rest[date_end..]);
    std::fs::write(&old_gpu, old).unwrap();
    let old_gpu = old_gpu.to_str().unwrap();
    let run = companion(&machine, &["ledger", cpu, old_gpu, "--since", "2021-01-01"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.ends_with(
            "0 of 6 GPU tests in 1 report since 2021-01-01 ran on a GPU at least once; 6 never did \
             (1 report written before 2021-01-01 or without a date left out)\n"
        ),
        "{}",
        run.stdout
    );
    let run = companion(&machine, &["ledger", old_gpu, "--since", "2021-01-01"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("the report was not written on 2021-01-01 or later (the day --since gives)"),
        "{}",
        run.stderr
    );
    let run = companion(&machine, &["ledger", gpu, "--since", "2026-02-30"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("--since \"2026-02-30\" is not a day"),
        "{}",
        run.stderr
    );

    // Bad input: named.
    let run = companion(&machine, &["ledger", gpu, "--compute", "hopper"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("--compute \"hopper\" is not a compute capability"),
        "{}",
        run.stderr
    );
}

#[test]
fn report_renders_a_fixture_run_as_text_and_markdown() {
    let machine = Machine::with_fake_driver();
    let (machine, report) = machine.reporting_to("report.json");
    let fixture = Fixture::build("harness-basic");
    let run = Run::of(machine.command(fixture.test("gpu")).arg("--test-threads=1"));
    assert_eq!(run.code, Some(0), "{}", run.all());
    let report = report.to_str().unwrap();
    let text = companion(&machine, &["report", report]);
    assert_eq!(text.code, Some(0), "{}", text.all());
    assert!(
        text.stdout.contains("6 GPU tests: 5 passed, 0 failed, 1 skipped"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(
            "  harness-basic::gpu: driver 570.86.15 (CUDA 12.8); device 0 NVIDIA Fake H100 (sm_90)"
        ),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("  1 x needs 2 CUDA devices, found 1\n"),
        "{}",
        text.stdout
    );
    let markdown = companion(&machine, &["report", report, "--format", "markdown"]);
    assert!(
        markdown.stdout.starts_with("## gpu-test\n"),
        "{}",
        markdown.stdout
    );
    assert!(
        markdown
            .stdout
            .contains("| `harness-basic::gpu two_devices` | needs 2 CUDA devices, found 1 |"),
        "{}",
        markdown.stdout
    );
    let bad = companion(&machine, &["report", report, "--format", "html"]);
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    assert!(
        bad.stderr.contains("possible values: text, markdown"),
        "{}",
        bad.stderr
    );
}

#[test]
fn an_earlier_report_is_not_read_as_this_runs_and_filters_keep_nextests_status() {
    let fixture = Fixture::build("harness-basic");
    let machine = Machine::without_driver();
    let report = machine.dir().join("earlier.json");
    std::fs::write(
        &report,
        std::fs::read(workspace_root().join("cargo-gpu-test/tests/data/report.json")).unwrap(),
    )
    .unwrap();
    let machine = machine.env("GPU_TEST_REPORT", report.to_str().unwrap());
    // Only the library's plain test: no GPU test rewrites the report, so the earlier one's skips
    // are not this run's.
    let run = cargo_gpu_test(&machine, &fixture.dir, &["run", "--lib"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("no GPU test wrote to the run's report, so none was run or skipped"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("all_reduce"), "{}", run.all());

    // A run that rewrites it many times (the list phase, then each test's process): the file
    // system may give a rewrite the earlier file's inode, which must not hide this run's report.
    let fake = Machine::with_fake_driver().env("GPU_TEST_REPORT", report.to_str().unwrap());
    let run = cargo_gpu_test(&fake, &fixture.dir, &["run", "--test", "gpu"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains("1 GPU test skipped") && run.stderr.contains("needs 2 CUDA devices, found 1"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("all_reduce"), "{}", run.all());

    // A filter that matches nothing: nextest's "no tests to run" stands.
    let machine = Machine::without_driver();
    let run = cargo_gpu_test(
        &machine,
        &fixture.dir,
        &["run", "--test", "gpu", "-E", "test(no_such_test)"],
    );
    assert_eq!(run.code, Some(4), "{}", run.all());
    assert!(
        run.stderr.contains("so nextest's status 4 stands"),
        "{}",
        run.all()
    );

    // So does a profile's default filter that matches nothing, and an option's value is no filter.
    std::fs::create_dir_all(machine.dir()).unwrap();
    let config = machine.dir().join("nextest.toml");
    std::fs::write(
        &config,
        "[profile.default]\ndefault-filter = \"test(no_such_test)\"\n",
    )
    .unwrap();
    // Given with `=`, which no version took for a name filter.
    let config_file = format!("--config-file={}", config.display());
    let run = cargo_gpu_test(&machine, &fixture.dir, &["run", "--test", "gpu", &config_file]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    assert!(
        run.stderr.contains("so nextest's status 4 stands"),
        "{}",
        run.all()
    );
    let run = cargo_gpu_test(
        &machine,
        &fixture.dir,
        &["run", "--test", "gpu", &config_file, "--ignore-default-filter"],
    );
    assert_eq!(run.code, Some(0), "every GPU test was skipped: {}", run.all());
}

#[test]
fn a_report_is_read_without_holding_a_value_for_each_of_its_json_values() {
    // A report (or a file that only looks like one) with a field gpu-test does not write, of
    // eight million values: read into one `serde_json::Value` each, they took 256 MiB and more.
    // The companion reads it with its data segment limited to 128 MiB.
    let machine = Machine::without_driver();
    let path = machine.dir().join("large.json");
    let mut text = String::from("{\"run\": \"r\", \"tests\": [], \"more\": [");
    text.push_str(&"0,".repeat(8 << 20));
    text.push_str("0]}");
    std::fs::write(&path, text).unwrap();
    let run = Run::of(
        machine
            .command("sh")
            .args(["-c", "ulimit -d 131072 && exec \"$0\" report \"$1\""])
            .arg(installed().join("cargo-gpu-test"))
            .arg(&path),
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("0 GPU tests"), "{}", run.all());
}

/// A report from another machine cannot make a GitHub workflow command of `report`, `ledger` or
/// `compare` output in a job's log: a line of a message that starts with `::`, or an older
/// command's `##[` anywhere, is made inert.
#[test]
fn report_text_cannot_start_a_workflow_command() {
    let machine = Machine::without_driver();
    let sample =
        std::fs::read_to_string(workspace_root().join("cargo-gpu-test/tests/data/report.json")).unwrap();
    let forged = sample
        .replace(
            "left a CUDA error on device 0 NVIDIA H200: CUDA_ERROR_ILLEGAL_ADDRESS (700)",
            "boom\\n  ::stop-commands::pwn\\n::error file=src/lib.rs,line=1::forged",
        )
        .replace(
            "\"host\": \"gpu-runner-1\"",
            "\"host\": \"runner ##[add-mask]secret\"",
        );
    let path = machine.dir().join("forged.json");
    std::fs::write(&path, forged).unwrap();
    let path = path.to_str().unwrap();
    for args in [
        vec!["report", path],
        vec!["report", path, "--format", "markdown"],
        vec!["ledger", path, "--all"],
    ] {
        let run = companion(&machine, &args);
        assert!(run.code.is_some(), "{args:?}: {}", run.all());
        for line in run.stdout.lines() {
            assert!(
                !line.trim_start().starts_with("::"),
                "{args:?}: {line}\n{}",
                run.stdout
            );
            assert!(!line.contains("##["), "{args:?}: {line}\n{}", run.stdout);
        }
        // The text layout keeps a message's lines (Markdown joins them with <br>).
        if args.len() == 2 && args[0] == "report" {
            assert!(
                run.stdout.contains("\\::stop-commands::pwn"),
                "{args:?}: {}",
                run.stdout
            );
        }
    }
}
