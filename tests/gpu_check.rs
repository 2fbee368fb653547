//! The GPU check bundle (examples/gpu-check) end to end on a CPU machine: built as a GPU
//! machine's copy would be, then its run script on a machine with the fake driver, so that the
//! flow cannot rot between runs on real GPUs.

use std::path::Path;
use std::process::Command;

use gpu_test_tests::{Fixture, Machine, Run, cargo, scratch_dir, workspace_root};

/// A stand-in for nvidia-smi that describes the fake driver's two devices as the real one would.
fn fake_nvidia_smi(dir: &Path) {
    let script = "#!/bin/sh\n\
        case \"$*\" in\n\
        '--query-gpu=uuid,name,memory.total,driver_version,compute_cap --format=csv,noheader,nounits')\n\
            echo 'GPU-fa4e0000-0000-0000-0000-000000000000, NVIDIA Fake H100, 81920, 580.95.05, 9.0'\n\
            echo 'GPU-fa4e0000-0000-0000-0000-000000000001, NVIDIA Fake H100, 81920, 580.95.05, 9.0' ;;\n\
        '--query-gpu=name,driver_version --format=csv,noheader') echo 'NVIDIA Fake H100, 580.95.05' ;;\n\
        '--query-gpu=persistence_mode,compute_mode --format=csv,noheader')\n\
            echo 'Enabled, Default'\n\
            echo \"Enabled, ${FAKE_COMPUTE_MODE:-Default}\" ;;\n\
        '--query-gpu=index,mig.mode.current --format=csv,noheader') echo '0, Disabled'; echo '1, Disabled' ;;\n\
        '') echo '| NVIDIA-SMI 580.95.05    Driver Version: 580.95.05    CUDA Version: 13.0 |'\n\
            echo '|   0  NVIDIA Fake H100    On |' ;;\n\
        *) echo \"fake nvidia-smi: no answer to: $*\" >&2; exit 2 ;;\n\
        esac\n";
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("nvidia-smi");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn the_bundle_builds_within_its_limit_and_its_run_script_works_on_the_fake_driver() {
    gpu_test_tests::require_nextest();
    let bundle = scratch_dir().join("gpu-check-bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    // The CUDA 13 bindings, which GPU machines with a CUDA 13 toolkit need (and which find a CUDA
    // 12 toolkit's NVRTC too), on a driver of CUDA 13.0.
    let built = Run::of(
        Command::new("bash")
            .arg(workspace_root().join("examples/gpu-check/build.sh"))
            .args(["--cuda", "13"])
            .arg(&bundle)
            // The outer cargo holds the workspace's target directory; the fixtures' is free.
            .env("CARGO_TARGET_DIR", Fixture::target_dir()),
    );
    assert_eq!(built.code, Some(0), "{}", built.all());
    assert!(built.stdout.contains("build.sh: bundle in"), "{}", built.all());
    let size: u64 = std::fs::read_dir(&bundle)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(size <= 64 << 20, "the bundle is {size} bytes");
    // The files changed since the commit it names, or new, as git tells them.
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(workspace_root())
        .output()
        .expect("git, which tells the checkout's changes, on PATH");
    assert_eq!(
        std::fs::read(bundle.join("changes")).unwrap(),
        status.stdout,
        "the bundle's changes file"
    );
    // The bundle names the oldest glibc its programs run on: the newest symbol version any of
    // them asks for, which is at most this machine's own.
    let needs_glibc = std::fs::read_to_string(bundle.join("glibc")).unwrap();
    let needs_glibc = needs_glibc.trim();
    let has_glibc = this_machines_glibc();
    let programs = [bundle.join("gpu-doctor"), bundle.join("cargo-nextest")]
        .into_iter()
        .chain(example_test_binaries());
    let newest = programs
        .map(|program| newest_glibc_symbol(&std::fs::read(&program).unwrap()))
        .max_by_key(|version| version_key(version))
        .unwrap();
    assert_eq!(needs_glibc, newest, "the bundle's glibc file");
    assert!(
        version_key(needs_glibc) <= version_key(&has_glibc),
        "glibc {needs_glibc}, above this machine's {has_glibc}"
    );

    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake H100|9.0|80GiB;NVIDIA Fake H100|9.0|80GiB")
        .driver_version(13000, "580.95.05")
        // The fake runs no kernel: an out-of-bounds write is made to fault at its launch.
        .env("FAKE_CUDA_FAIL", "cuLaunchKernel=700");
    let bin = machine.dir().join("bin");
    fake_nvidia_smi(&bin);
    let out = machine.dir().join("out");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    // Kernels do not run on the fake driver: the tests that check their results and their time
    // are left to real GPUs.
    // A trailing `:` (an empty entry, which the doctor warns about) as a Dockerfile's
    // `ENV LD_LIBRARY_PATH=/x:$LD_LIBRARY_PATH` leaves it: the script runs without it.
    let lib = machine.dir().join("lib");
    // Toolkits older and newer than the driver's CUDA 13.0: the older goes first.
    let toolkits = machine.dir().join("toolkits");
    for (version, nvrtc) in [("12.8", "libnvrtc.so.12"), ("13.1", "libnvrtc.so.13")] {
        let lib64 = toolkits.join(format!("cuda-{version}/lib64"));
        std::fs::create_dir_all(&lib64).unwrap();
        std::os::unix::fs::symlink(lib.join("libnvrtc.so.12"), lib64.join(nvrtc)).unwrap();
    }
    let run = Run::of(
        machine
            .command(bundle.join("run.sh"))
            .arg(&out)
            .env("PATH", &path)
            .env("LD_LIBRARY_PATH", format!("{}:", lib.display()))
            // Toolkits looked for where this machine has them, whatever the host has.
            .env("GPU_CHECK_TOOLKITS", &toolkits)
            .env("GPU_CHECK_WORKSPACE", workspace_root())
            .env("GPU_CHECK_FILTER", "not (binary(kernels) | binary(timing))"),
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{}\n{}", run.all(), read("tests.txt"));
    for said in [
        "persistence mode, compute mode: Enabled, Default;Enabled, Default;".to_string(),
        format!(
            "run.sh: LD_LIBRARY_PATH without its empty entries: {}\n",
            lib.display()
        ),
        format!(
            "run.sh: the newest toolkit not newer than the driver's CUDA 13.0 goes first: {}/cuda-12.8 ",
            toolkits.display()
        ),
        format!(
            "run.sh: {}/cuda-12.8/lib64 has no libnvrtc.so, the name cudarc asks the loader for first",
            toolkits.display()
        ),
    ] {
        assert!(
            read("machine.txt").contains(&said),
            "{said}\n{}",
            read("machine.txt")
        );
    }
    assert!(
        read("machine.txt").contains("NVIDIA Fake H100")
            && read("machine.txt").contains(", CUDA 13 bindings"),
        "{}",
        read("machine.txt")
    );
    assert!(
        read("doctor.txt").contains("2 usable CUDA devices. (exit 0)"),
        "{}",
        read("doctor.txt")
    );
    let doctor: serde_json::Value = serde_json::from_str(&read("doctor.json")).unwrap();
    assert_eq!(doctor["usable_devices"], 2);
    let tests = read("tests.txt");
    assert!(tests.contains("with nextest profile: gpu-check"), "{tests}");
    // The test binaries ran from beside the bundle (a temporary directory may be noexec), and
    // are gone with the run.
    assert!(
        tests.contains(&format!(" to {}/extracted.", bundle.display())),
        "{tests}"
    );
    let left: Vec<_> = std::fs::read_dir(&bundle)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("extracted"))
        .map(|entry| entry.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The profile runs one test at a time and stops a hung one (the hang below overrides its
    // timeout for one test, so the profile's own settings are read here).
    let config = std::fs::read_to_string(workspace_root().join(".config/nextest.toml")).unwrap();
    let profile = config
        .split_once("[profile.gpu-check]\n")
        .map(|(_, rest)| rest.split("\n[").next().unwrap_or_default())
        .unwrap_or_else(|| panic!("no [profile.gpu-check] in .config/nextest.toml:\n{config}"));
    assert!(
        profile.lines().any(|l| l.trim() == "test-threads = 1")
            && profile
                .lines()
                .any(|l| l.starts_with("slow-timeout") && l.contains("terminate-after")),
        "{profile}"
    );
    // What passing tests printed is in the record too (the timing lines, on a real GPU), with
    // what the processes that the fault, lease and leak tests start said.
    for said in [
        "gpu-test: a_test_that_declares_its_memory_runs_within_it ran on device ",
        "the faulting process (exit status: 101) said:\n",
        "CUDA_ERROR_ILLEGAL_ADDRESS",
        "its CUDA context was poisoned by fault_a_out_of_bounds_write",
        "the holders' log: [\"begin ",
        "the lease files: [\"",
        "the leaking process (exit status: 101) said:\n",
        "CUDA_VISIBLE_DEVICES=0,0: the driver shows 0 device(s)",
    ] {
        assert!(tests.contains(said), "{said}\n{tests}");
    }
    for test in [
        "a_faulting_kernel_is_named_and_poisons_only_its_process",
        "a_second_process_waits_for_the_gpu_the_first_holds",
        "the_doctor_raises_no_false_alarm_and_agrees_with_nvidia_smi",
        "cuda_visible_devices_is_read_as_the_driver_reads_it",
        "copies_between_two_devices",
        "every_gpu_round_trips_a_buffer::cuda0",
        "every_gpu_round_trips_a_buffer::cuda1",
        "a_test_that_frees_what_it_allocates_passes_the_leak_check",
        "a_leak_fails_the_leak_check",
        "a_test_that_declares_its_memory_runs_within_it",
    ] {
        assert!(
            tests.lines().any(|l| l.contains(" PASS ") && l.ends_with(test)),
            "{test} did not pass:\n{tests}"
        );
    }
    let report: serde_json::Value = serde_json::from_str(&read("report.json")).unwrap();
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    assert!(report["summary"]["passed"].as_u64().unwrap() >= 4, "{report:#}");
    let skips = read("skips.txt");
    assert!(
        skips.contains("SKIP") && skips.contains("needs_more_memory_than_any_gpu_has"),
        "{skips}"
    );
    // A device run brings back at most 8 files.
    let files = std::fs::read_dir(&out).unwrap().count();
    assert!(files <= 8, "{files} files in the output folder");
    // The record for docs/gpu-runs.md holds every file as it was.
    let entry = read("entry.md");
    assert!(
        entry.starts_with("## ") && entry.lines().next().unwrap().contains("NVIDIA Fake H100"),
        "{entry}"
    );
    assert!(entry.contains("The strict run exited 0."), "{entry}");
    for file in [
        "machine.txt",
        "doctor.txt",
        "doctor.json",
        "tests.txt",
        "skips.txt",
        "report.json",
    ] {
        let mut body = read(file);
        if !body.ends_with('\n') {
            body.push('\n');
        }
        assert!(
            entry.contains(&format!("### {file}\n\n```text\n{body}```\n")),
            "{file} is not in the entry:\n{entry}"
        );
    }
    assert!(
        read("machine.txt").contains(&format!("needs glibc {needs_glibc} or newer"))
            && read("machine.txt").contains(&format!("glibc: {has_glibc}\n")),
        "{}",
        read("machine.txt")
    );

    // A test that hangs (a kernel launch that never returns, as on a wedged GPU) is stopped by
    // the gpu-check profile's slow-test timeout, and the tests after it still run and are
    // recorded. The override shortens that timeout for the hanging test alone, so that the
    // others keep the profile's own. Were run.sh to run another profile, nothing would stop the
    // test: `timeout` then ends run.sh, and the check fails instead of hanging.
    let config = machine.dir().join("hang.toml");
    std::fs::write(
        &config,
        "[[profile.gpu-check.overrides]]\n\
         filter = 'test(=a_faulting_kernel_is_named_and_poisons_only_its_process)'\n\
         slow-timeout = { period = \"1s\", terminate-after = 1 }\n",
    )
    .unwrap();
    let hung = machine.dir().join("out-hung");
    let run = Run::of(
        machine
            .command("timeout")
            .args(["--kill-after=10", "300"])
            .arg(bundle.join("run.sh"))
            .arg(&hung)
            .arg("--tool-config-file")
            .arg(format!("gpu-check-test:{}", config.display()))
            .env("PATH", &path)
            .env("GPU_CHECK_WORKSPACE", workspace_root())
            .env_remove("FAKE_CUDA_FAIL")
            .env("FAKE_CUDA_HANG", "cuLaunchKernel")
            .env(
                "GPU_CHECK_FILTER",
                "test(=a_faulting_kernel_is_named_and_poisons_only_its_process) | test(=copies_between_two_devices)",
            ),
    );
    let read_hung = |name: &str| std::fs::read_to_string(hung.join(name)).unwrap_or_default();
    let tests = read_hung("tests.txt");
    assert_ne!(
        run.code,
        Some(124),
        "run.sh was stopped after 300 s: the gpu-check profile did not stop the hanging test\n{tests}"
    );
    assert_eq!(run.code, Some(100), "{}\n{tests}", run.all());
    assert!(
        tests.lines().any(|l| l.contains("TIMEOUT")
            && l.ends_with("a_faulting_kernel_is_named_and_poisons_only_its_process")),
        "{tests}"
    );
    assert!(
        tests
            .lines()
            .any(|l| l.contains(" PASS ") && l.ends_with("copies_between_two_devices")),
        "{tests}"
    );
    assert!(
        read_hung("entry.md").contains("The strict run exited 100."),
        "{}",
        read_hung("entry.md")
    );

    // The strict run has a limit of its own (GPU_CHECK_LIMIT), so that the run after it and the
    // record fit in the caller's; and where a signal stops run.sh first (a caller's `timeout`),
    // the run is stopped and the record still written, saying so. The test hangs here past either.
    // Under coreutils' `timeout` where `outer` gives its arguments.
    let hanging = |out: &Path, limit: &str, outer: &[&str]| {
        let mut command = match outer {
            [] => machine.command(bundle.join("run.sh")),
            _ => {
                let mut command = machine.command("timeout");
                command.args(outer).arg(bundle.join("run.sh"));
                command
            }
        };
        command
            .arg(out)
            .env("PATH", &path)
            .env("GPU_CHECK_WORKSPACE", workspace_root())
            .env_remove("FAKE_CUDA_FAIL")
            .env("FAKE_CUDA_HANG", "cuLaunchKernel")
            .env("GPU_CHECK_LIMIT", limit)
            .env(
                "GPU_CHECK_FILTER",
                "test(=a_faulting_kernel_is_named_and_poisons_only_its_process)",
            );
        command
    };
    let read_in = |out: &Path, name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let limited = machine.dir().join("out-limited");
    let run = Run::of(&mut hanging(&limited, "3", &["--kill-after=10", "300"]));
    let tests = read_in(&limited, "tests.txt");
    assert_eq!(run.code, Some(124), "{}\n{tests}", run.all());
    assert!(
        tests.ends_with("run.sh: the strict run was stopped after 3 s (GPU_CHECK_LIMIT)\nexit status: 124\n"),
        "{tests}"
    );
    let skips = read_in(&limited, "skips.txt");
    assert!(
        skips.contains("SKIP") && skips.contains("needs_more_memory_than_any_gpu_has"),
        "{skips}"
    );
    let entry = read_in(&limited, "entry.md");
    assert!(entry.contains("The strict run exited 124.\n"), "{entry}");
    // Stopped by a signal once the strict run is under way (the hanging test started): the run is
    // stopped too, and what nextest said of that is in the record.
    let stopped = machine.dir().join("out-stopped");
    let mut run_sh = hanging(&stopped, "300", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let under_way = |tests: &str| tests.contains("    Starting 1 test across");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !under_way(&read_in(&stopped, "tests.txt")) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        under_way(&read_in(&stopped, "tests.txt")),
        "the strict run did not start within 2 minutes"
    );
    let signalled = Command::new("kill")
        .args(["-TERM", &run_sh.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let ended = loop {
        match run_sh.try_wait().unwrap() {
            Some(ended) => break Some(ended),
            None if std::time::Instant::now() > deadline => break None,
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let Some(ended) = ended else {
        let _ = run_sh.kill();
        panic!("run.sh had not ended 2 minutes after its TERM");
    };
    let tests = read_in(&stopped, "tests.txt");
    assert_eq!(ended.code(), Some(143), "{tests}");
    let entry = read_in(&stopped, "entry.md");
    assert!(
        entry.contains(
            "run.sh was stopped (by a signal: a caller's time limit, say) during the strict run, before its end; \
             the files below are as far as they got."
        ) && entry.contains("### tests.txt")
            && entry.contains("Cancelling due to signal")
            && entry.ends_with("```\n"),
        "{entry}"
    );
    assert!(!entry.contains("The strict run exited"), "{entry}");
    // No part of the run outlives run.sh.
    let nextest = bundle.join("cargo-nextest");
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(nextest.to_str().unwrap()))
        .collect();
    assert!(
        running.is_empty(),
        "still running after run.sh ended: {running:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&bundle)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("extracted"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // With no toolkit up to the driver's CUDA, a Python wheel's NVRTC that is (as PyTorch brings)
    // goes first, under the name cudarc asks for first, which wheels lack.
    let newer_only = machine.dir().join("newer-toolkits");
    let lib64 = newer_only.join("cuda-13.1/lib64");
    std::fs::create_dir_all(&lib64).unwrap();
    std::os::unix::fs::symlink(lib.join("libnvrtc.so.12"), lib64.join("libnvrtc.so.13")).unwrap();
    let site = machine.dir().join("site-packages");
    let wheel = site.join("nvidia/cu13/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.13"]);
    std::fs::write(wheel.join("libnvrtc-builtins.so.13.0"), "").unwrap();
    // And one of a CUDA newer than the driver's, which must not be taken.
    let newer_site = machine.dir().join("newer-site-packages");
    let newer_wheel = newer_site.join("nvidia/cu13/lib");
    machine.nvrtc_in(&newer_wheel, &["libnvrtc.so.13"]);
    std::fs::write(newer_wheel.join("libnvrtc-builtins.so.13.1"), "").unwrap();
    let python = bin.join("python3");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\necho '{}'\necho '{}'\n",
            newer_site.display(),
            site.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let with_wheel = machine.dir().join("out-wheel");
    let run = Run::of(
        machine
            .command(bundle.join("run.sh"))
            .arg(&with_wheel)
            .env("PATH", &path)
            .env("LD_LIBRARY_PATH", &lib)
            .env("GPU_CHECK_TOOLKITS", &newer_only)
            .env("GPU_CHECK_WORKSPACE", workspace_root())
            // A GPU that takes one process at a time.
            .env("FAKE_COMPUTE_MODE", "Exclusive_Process")
            .env(
                "GPU_CHECK_FILTER",
                "test(=the_doctor_raises_no_false_alarm_and_agrees_with_nvidia_smi)",
            ),
    );
    std::fs::remove_file(&python).unwrap();
    let machine_txt = std::fs::read_to_string(with_wheel.join("machine.txt")).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{}\n{machine_txt}", run.all());
    for said in [
        format!(
            "run.sh: no toolkit in {} up to the driver's CUDA 13.0 (there: {}/cuda-13.1);",
            newer_only.display(),
            newer_only.display()
        ),
        format!("run.sh: a Python wheel's NVRTC, CUDA 13.0: {}\n", wheel.display()),
        format!(
            "run.sh: a Python wheel's NVRTC, CUDA 13.1: {}\n",
            newer_wheel.display()
        ),
        format!(
            "run.sh: the NVRTC of the Python wheel of CUDA 13.0, not newer than the driver's CUDA 13.0, goes \
             first: {}/libnvrtc.so.13 ",
            wheel.display()
        ),
    ] {
        assert!(machine_txt.contains(&said), "{said}\n{machine_txt}");
    }
    let left_out = "the tests that start a second process on it are left out: not \
                    (test(=a_faulting_kernel_is_named_and_poisons_only_its_process) | \
                    test(=a_second_process_waits_for_the_gpu_the_first_holds) | test(=a_leak_fails_the_leak_check))";
    assert!(machine_txt.contains(left_out), "{machine_txt}");
    let tests = std::fs::read_to_string(with_wheel.join("tests.txt")).unwrap();
    assert!(
        tests.starts_with("filter: not test(=needs_more_memory_than_any_gpu_has) and not (test(=a_faulting"),
        "{tests}"
    );
    let doctor: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with_wheel.join("doctor.json")).unwrap()).unwrap();
    let nvrtc = &doctor["toolkit"]["nvrtc"];
    assert_eq!(
        nvrtc["library"],
        wheel.join("libnvrtc.so.13").display().to_string(),
        "{doctor:#}"
    );
    assert!(
        nvrtc["loaded_as"].as_str().unwrap().ends_with("/libnvrtc.so"),
        "{doctor:#}"
    );

    // In a checkout of another revision than the bundle's, run.sh stops before any test.
    let revision = std::fs::read_to_string(bundle.join("revision")).unwrap();
    std::fs::write(
        bundle.join("revision"),
        "0123456789abcdef0123456789abcdef01234567\n",
    )
    .unwrap();
    let elsewhere = machine.dir().join("out-elsewhere");
    let git = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|dir| dir.join("git").is_file())
        .expect("git, which tells the checkout's revision, on PATH");
    let run = Run::of(
        machine
            .command(bundle.join("run.sh"))
            .arg(&elsewhere)
            .env("PATH", format!("{path}:{}", git.display()))
            .env("GPU_CHECK_WORKSPACE", workspace_root()),
    );
    // A copy that lies inside another repository is not that repository's revision: not checked,
    // and said so (the run then goes on; a filter that selects nothing ends it at once).
    let inside = machine.dir().join("out-inside");
    let inner = Run::of(
        machine
            .command(bundle.join("run.sh"))
            .arg(&inside)
            .env("PATH", format!("{path}:{}", git.display()))
            .env("GPU_CHECK_WORKSPACE", workspace_root().join("examples"))
            .env("GPU_CHECK_FILTER", "test(=no_such_test)"),
    );
    std::fs::write(bundle.join("revision"), &revision).unwrap();
    assert_ne!(inner.code, Some(3), "{}", inner.all());
    let inside_machine = std::fs::read_to_string(inside.join("machine.txt")).unwrap();
    assert!(
        inside_machine.contains("examples is not a git checkout of its own here (or there is no git)"),
        "{inside_machine}"
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains(
            "run.sh: the bundle was built from revision 0123456789abcdef0123456789abcdef01234567, and the \
             checkout at"
        ),
        "{}",
        run.all()
    );
    assert!(!elsewhere.join("doctor.txt").exists() && !elsewhere.join("tests.txt").exists());

    // On a machine whose glibc is older than the bundle's programs need, run.sh stops before
    // any of them fails to start, and says how to build a bundle that runs there.
    std::fs::write(bundle.join("glibc"), "2.999\n").unwrap();
    // A bundle built from a checkout with uncommitted changes says so, and names them.
    std::fs::write(bundle.join("changes"), " M README.md\nM  src/lib.rs\n").unwrap();
    let too_old = machine.dir().join("out-too-old");
    let run = Run::of(
        machine
            .command(bundle.join("run.sh"))
            .arg(&too_old)
            .env("PATH", &path)
            .env("GPU_CHECK_WORKSPACE", workspace_root()),
    );
    let refusal = format!(
        "run.sh: the bundle's programs need glibc 2.999 or newer, and this machine has glibc {has_glibc}; \
         build the bundle where glibc is {has_glibc} or older"
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains(&refusal), "{}", run.all());
    let machine_txt = std::fs::read_to_string(too_old.join("machine.txt")).unwrap();
    assert!(machine_txt.contains(&refusal), "{machine_txt}");
    assert!(!too_old.join("doctor.txt").exists() && !too_old.join("tests.txt").exists());
    assert!(
        machine_txt.contains(&format!(
            "bundle: revision {} with uncommitted changes to 2 file(s), CUDA 13 bindings",
            revision.trim()
        )) && machine_txt.contains("bundle: uncommitted:  M README.md\nbundle: uncommitted: M  src/lib.rs\n"),
        "{machine_txt}"
    );
}

/// The example test binaries the bundle's archive holds, as nextest lists them from the build
/// that build.sh made.
fn example_test_binaries() -> Vec<std::path::PathBuf> {
    let listed = Run::of(
        cargo()
            .args([
                "nextest",
                "list",
                "-p",
                "gpu-test-examples",
                "--cargo-profile",
                "gpu-check",
            ])
            .args(["--no-default-features", "--features", "cuda-13000"])
            .args(["--list-type", "binaries-only", "--message-format", "json"])
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", Fixture::target_dir()),
    );
    assert_eq!(listed.code, Some(0), "{}", listed.all());
    let json: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let binaries: Vec<std::path::PathBuf> = json["rust-binaries"]
        .as_object()
        .unwrap()
        .values()
        .map(|binary| binary["binary-path"].as_str().unwrap().into())
        .collect();
    assert!(binaries.len() >= 7, "{binaries:?}");
    binaries
}

/// This machine's glibc, as `getconf` tells it (`2.36`).
fn this_machines_glibc() -> String {
    let output = Command::new("getconf").arg("GNU_LIBC_VERSION").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.trim()
        .strip_prefix("glibc ")
        .unwrap_or_else(|| panic!("getconf says {text:?}"))
        .to_string()
}

/// The newest `GLIBC_2.N` symbol version named in an ELF program's bytes.
fn newest_glibc_symbol(program: &[u8]) -> String {
    let marker = b"GLIBC_2.";
    program
        .windows(marker.len())
        .enumerate()
        .filter(|(_, window)| *window == marker)
        .filter_map(|(at, _)| {
            let digits: Vec<u8> = program[at + marker.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            (!digits.is_empty()).then(|| format!("2.{}", String::from_utf8(digits).unwrap()))
        })
        .max_by_key(|version| version_key(version))
        .expect("the program names a glibc version")
}

/// `2.34` as `(2, 34)`, so that versions compare as numbers; fields after the second (a
/// development glibc's `2.39.9000`) do not count.
fn version_key(version: &str) -> (u32, u32) {
    let mut fields = version.split('.').map(|field| field.parse::<u32>());
    match (fields.next(), fields.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => panic!("version {version:?}"),
    }
}
