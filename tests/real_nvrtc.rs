//! gpu-test with NVIDIA's own NVRTC, from the Python wheels that PyTorch installs
//! (`nvidia-cuda-nvrtc-cu12`, and `nvidia-cuda-nvrtc` from CUDA 13 on), beside the fake driver.
//! The wheel lies in a virtual environment on `PATH`, off the loader's path, as PyTorch's do:
//! gpu-test must find it, load it and its builtins by their full paths so that cudarc gets them
//! by name, and the examples' kernels must then compile for real. NVRTC needs no GPU, so this
//! runs on any x86_64 Linux machine.
//!
//! The tests are ignored by default, since the wheels are downloads: `.ci/real-nvrtc` fetches the
//! pinned wheels (checking their hashes), unpacks them, and runs these tests with
//! `REAL_NVRTC_WHEELS` naming the folder (`cu12/` and `cu13/`, each holding a wheel's `nvidia/`
//! and its `*.dist-info`).

use std::path::{Path, PathBuf};

use gpu_test_tests::{Fixture, Machine, Run, assert_finding, assert_nvrtc_loaded_from};

/// An unpacked NVRTC wheel.
struct Wheel {
    /// Its `nvidia/` folder, which pip puts in `site-packages`.
    nvidia: PathBuf,
    /// Its version (`12.9.86`), from its `.dist-info` folder.
    version: String,
}

impl Wheel {
    /// The wheel unpacked as `name` (`cu12`, `cu13`) in `REAL_NVRTC_WHEELS`.
    fn unpacked(name: &str) -> Wheel {
        let root = std::env::var_os("REAL_NVRTC_WHEELS")
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "REAL_NVRTC_WHEELS is not set: run .ci/real-nvrtc, which downloads the wheels and sets it"
                )
            });
        let dir = Path::new(&root).join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("REAL_NVRTC_WHEELS: cannot read {}: {e}", dir.display()));
        let version = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".dist-info")?;
                Some(stem.rsplit_once('-')?.1.to_string())
            })
            .next()
            .unwrap_or_else(|| panic!("{} holds no *.dist-info: not an unpacked wheel", dir.display()));
        Wheel {
            nvidia: dir.join("nvidia"),
            version,
        }
    }

    /// `12.9` of `12.9.86`: the CUDA release NVRTC reports.
    fn release(&self) -> &str {
        let mut dots = self.version.match_indices('.');
        let end = dots.nth(1).map_or(self.version.len(), |(at, _)| at);
        &self.version[..end]
    }
}

/// A machine with the fake driver at CUDA 13.0 (a driver of the 580 series, which loads PTX of
/// both wheels), no NVRTC on the loader's path, and strict mode.
fn machine() -> Machine {
    Machine::with_fake_driver()
        .without_nvrtc()
        .driver_version(13000, "580.95.05")
        .env("GPU_TEST_STRICT", "1")
}

/// [`machine`] with `wheels` installed in one virtual environment on `PATH` (each wheel's
/// folders under `nvidia/`, as pip puts them). Returns the machine and the environment's
/// `nvidia/` folder.
fn machine_with(wheels: &[&Wheel]) -> (Machine, PathBuf) {
    let (machine, site_packages) = machine().python_env("venv");
    let nvidia = site_packages.join("nvidia");
    std::fs::create_dir(&nvidia).unwrap();
    for wheel in wheels {
        for entry in std::fs::read_dir(&wheel.nvidia).unwrap().flatten() {
            std::os::unix::fs::symlink(entry.path(), nvidia.join(entry.file_name())).unwrap();
        }
    }
    (machine, nvidia)
}

/// Runs the fixture's kernel test, built with `features`, on a machine with the wheels
/// `installed`, and checks it as [`compiles_with`] does, with `library` under `nvidia/`.
fn compiles_the_examples_kernels(installed: &[&str], wheel: &str, library: &str, features: &[&str]) {
    let installed: Vec<Wheel> = installed.iter().map(|name| Wheel::unpacked(name)).collect();
    let (machine, nvidia) = machine_with(&installed.iter().collect::<Vec<_>>());
    compiles_with(&machine, &Wheel::unpacked(wheel), &nvidia.join(library), features);
}

/// Runs the fixture's kernel test, built with `features`, on `machine`, and checks that the test
/// passed in strict mode, every kernel the examples run on a GPU compiled, with PTX from `wheel`'s
/// NVRTC, loaded from `loaded` as gpu-test's note says.
fn compiles_with(machine: &Machine, wheel: &Wheel, loaded: &Path, features: &[&str]) {
    let fixture = Fixture::build_with("real-nvrtc", features);
    let run = Run::of(&mut machine.command(fixture.test("kernels")));
    assert_eq!(run.code, Some(0), "{}", run.all());
    // The body's own lines come between the test's name and its `ok`.
    assert!(
        run.stdout
            .contains("test result: ok. 1 passed; 0 failed; 0 ignored"),
        "{}",
        run.all()
    );
    let made_by = format!(
        "ptx: // Cuda compilation tools, release {}, V{}",
        wheel.release(),
        wheel.version
    );
    assert!(run.stdout.contains(&made_by), "no `{made_by}` in:\n{}", run.all());
    let kernels = gpu_test_examples::SOURCES
        .iter()
        .flat_map(|(_, kernels)| kernels.iter());
    for kernel in kernels {
        assert!(
            run.stdout.contains(&format!("compiled: {kernel}\n")),
            "{kernel} was not compiled:\n{}",
            run.all()
        );
    }
    let notes = run.stderr_lines("gpu-test: note: NVRTC is not on the loader's path");
    assert!(
        notes.len() == 1 && notes[0].contains(&format!("gpu-test loaded {} for the tests", loaded.display())),
        "expected one note naming {}:\n{}",
        loaded.display(),
        run.all()
    );
}

const CUDA_13_BINDINGS: &[&str] = &["--no-default-features", "--features", "cuda-13000"];

#[test]
#[ignore = "needs NVIDIA's NVRTC wheels: .ci/real-nvrtc downloads them and runs these tests"]
fn nvrtc_12_from_its_wheel_compiles_the_examples_kernels() {
    compiles_the_examples_kernels(&["cu12"], "cu12", "cuda_nvrtc/lib/libnvrtc.so.12", &[]);
}

#[test]
#[ignore = "needs NVIDIA's NVRTC wheels: .ci/real-nvrtc downloads them and runs these tests"]
fn nvrtc_13_from_its_wheel_compiles_the_examples_kernels_with_the_cuda_13_bindings() {
    compiles_the_examples_kernels(&["cu13"], "cu13", "cu13/lib/libnvrtc.so.13", CUDA_13_BINDINGS);
}

/// The CUDA 13 bindings also ask for `libnvrtc.so.12`, so a bundle built with them works with
/// either toolkit.
#[test]
#[ignore = "needs NVIDIA's NVRTC wheels: .ci/real-nvrtc downloads them and runs these tests"]
fn nvrtc_12_from_its_wheel_compiles_the_examples_kernels_with_the_cuda_13_bindings() {
    compiles_the_examples_kernels(
        &["cu12"],
        "cu12",
        "cuda_nvrtc/lib/libnvrtc.so.12",
        CUDA_13_BINDINGS,
    );
}

/// Both wheels in one environment: the NVRTC that cudarc would ask the loader for first, were
/// both on its path (`libnvrtc.so.13` with the CUDA 13 bindings, which the CUDA 12 ones never
/// ask for).
#[test]
#[ignore = "needs NVIDIA's NVRTC wheels: .ci/real-nvrtc downloads them and runs these tests"]
fn with_both_wheels_each_binding_gets_the_nvrtc_cudarc_asks_for_first() {
    compiles_the_examples_kernels(
        &["cu12", "cu13"],
        "cu13",
        "cu13/lib/libnvrtc.so.13",
        CUDA_13_BINDINGS,
    );
    compiles_the_examples_kernels(&["cu12", "cu13"], "cu12", "cuda_nvrtc/lib/libnvrtc.so.12", &[]);
}

/// NVRTC 13.0 laid out as a CUDA toolkit installs it in `/usr/local/cuda/lib64`, a chain of
/// links down to the versioned file, and not on the loader's path: a machine whose
/// `ld.so.conf` does not name the toolkit.
#[test]
#[ignore = "needs NVIDIA's NVRTC wheels: .ci/real-nvrtc downloads them and runs these tests"]
fn nvrtc_13_in_a_toolkits_lib64_compiles_the_examples_kernels_with_the_cuda_13_bindings() {
    let wheel = Wheel::unpacked("cu13");
    let machine = machine();
    let lib64 = machine
        .dir()
        .join("root/usr/local/cuda-13.0/targets/x86_64-linux/lib");
    std::fs::create_dir_all(&lib64).unwrap();
    let link = |name: &str, to: &Path| std::os::unix::fs::symlink(to, lib64.join(name)).unwrap();
    // libnvrtc.so -> libnvrtc.so.13 -> libnvrtc.so.13.0.88, and the builtins likewise.
    let built = wheel.nvidia.join("cu13/lib");
    let nvrtc = format!("libnvrtc.so.{}", wheel.version);
    link(&nvrtc, &built.join("libnvrtc.so.13"));
    link("libnvrtc.so.13", Path::new(&nvrtc));
    link("libnvrtc.so", Path::new("libnvrtc.so.13"));
    let builtins = format!("libnvrtc-builtins.so.{}", wheel.release());
    let builtins_file = format!("libnvrtc-builtins.so.{}", wheel.version);
    link(&builtins_file, &built.join(&builtins));
    link(&builtins, Path::new(&builtins_file));
    let cuda = machine.dir().join("root/usr/local/cuda");
    std::os::unix::fs::symlink("cuda-13.0", &cuda).unwrap();
    std::os::unix::fs::symlink("targets/x86_64-linux/lib", cuda.join("lib64")).unwrap();
    compiles_with(
        &machine,
        &wheel,
        &cuda.join("lib64/libnvrtc.so.13"),
        CUDA_13_BINDINGS,
    );
}

#[test]
#[ignore = "needs NVIDIA's NVRTC wheels: .ci/real-nvrtc downloads them and runs these tests"]
fn the_doctor_reads_the_wheels_nvrtc() {
    // The CUDA 12 wheel: loaded by its full path, its version as NVRTC itself reports it.
    let wheel = Wheel::unpacked("cu12");
    let (machine, nvidia) = machine_with(&[&wheel]);
    let json = machine.doctor(&["--json"]).json();
    assert_nvrtc_loaded_from(
        &json,
        &nvidia.join("cuda_nvrtc/lib"),
        "libnvrtc.so.12",
        wheel.release(),
    );
    assert_eq!(
        json["toolkit"]["nvrtc"]["python_environment"],
        machine.dir().join("venv").display().to_string(),
        "{json:#}"
    );

    // The CUDA 13 wheel, to a doctor built with the CUDA 12 bindings: named, with the fix.
    let wheel = Wheel::unpacked("cu13");
    let (machine, nvidia) = machine_with(&[&wheel]);
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "warning",
        &format!(
            "NVRTC is on this machine as {}/cu13/lib/libnvrtc.so.13, a name this build's cudarc bindings do not \
                 look for",
            nvidia.display()
        ),
    );
}
