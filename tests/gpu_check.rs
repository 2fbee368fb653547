//! The GPU check bundle (examples/gpu-check) end to end on a CPU machine: built as a GPU
//! machine's copy would be, then its run script on a machine with the fake driver, so that the
//! flow cannot rot between runs on real GPUs.

use std::path::Path;
use std::process::Command;

use gpu_test_tests::{Fixture, Machine, Run, cargo, scratch_dir, workspace_root};

/// A stand-in for nvidia-smi that describes the fake driver's two devices as the real one would.
fn fake_nvidia_smi(dir: &Path) {
    let script = "#!/bin/sh\n\
        echo 'GPU-fa4e0000-0000-0000-0000-000000000000, NVIDIA Fake H100, 81920, 580.95.05'\n\
        echo 'GPU-fa4e0000-0000-0000-0000-000000000001, NVIDIA Fake H100, 81920, 580.95.05'\n";
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("nvidia-smi");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn the_bundle_builds_within_its_limit_and_its_run_script_works_on_the_fake_driver() {
    let installed = cargo().args(["nextest", "--version"]).output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "cargo-nextest is required (.ci/run installs it)"
    );
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
    let run = Run::of(
        machine
            .command(bundle.join("run.sh"))
            .arg(&out)
            .env("PATH", &path)
            .env("GPU_CHECK_WORKSPACE", workspace_root())
            .env("GPU_CHECK_FILTER", "not (binary(kernels) | binary(timing))"),
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    assert_eq!(run.code, Some(0), "{}\n{}", run.all(), read("tests.txt"));
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
    for test in [
        "a_faulting_kernel_is_named_and_poisons_only_its_process",
        "a_second_process_waits_for_the_gpu_the_first_holds",
        "the_doctor_raises_no_false_alarm_and_agrees_with_nvidia_smi",
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
}
