//! Generated crates to measure: many small tests of each kind, in a directory under
//! `target/gpu-test-bench`, sharing one target directory so dependencies build once.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::measure;

pub use gpu_test_tests::workspace_root as workspace;

/// Where the generated crates and their builds live.
pub fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("gpu-test-bench")
}

/// The target directory every generated crate builds into.
pub fn target_dir() -> PathBuf {
    bench_dir().join("target")
}

/// What one test target holds.
#[derive(Debug, Clone, Copy)]
pub enum Tests {
    /// `#[gpu_test] fn t{i}() {}` under the default harness.
    GpuDefault,
    /// `#[gpu_test] fn t{i}() {}` with `harness = false` and `gpu_test_runtime::main()`.
    GpuHarness,
    /// `#[test] #[ignore] fn t{i}() {}`.
    Ignored,
    /// `#[test] fn t{i}() {}`.
    Passing,
    /// `#[test] fn t{i}() {}` in a target that links gpu-test-runtime (and uses nothing of it).
    PassingLinked,
}

/// A test target: its name, kind and number of tests.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub tests: Tests,
    pub count: usize,
}

/// `count` tests of kind `tests` in the test target `name`.
pub const fn target(name: &'static str, tests: Tests, count: usize) -> Target {
    Target { name, tests, count }
}

fn source(target: &Target) -> String {
    let mut out = String::new();
    if matches!(target.tests, Tests::GpuDefault | Tests::GpuHarness) {
        out.push_str("use gpu_test_runtime::gpu_test;\n");
    }
    if let Tests::PassingLinked = target.tests {
        out.push_str("use gpu_test_runtime as _;\n");
    }
    for i in 0..target.count {
        let _ = match target.tests {
            Tests::GpuDefault | Tests::GpuHarness => writeln!(out, "#[gpu_test]\nfn t{i}() {{}}"),
            Tests::Ignored => writeln!(out, "#[test]\n#[ignore]\nfn t{i}() {{}}"),
            Tests::Passing | Tests::PassingLinked => writeln!(out, "#[test]\nfn t{i}() {{}}"),
        };
    }
    if let Tests::GpuHarness = target.tests {
        out.push_str("fn main() {\n    gpu_test_runtime::main()\n}\n");
    }
    out
}

/// Writes a crate named `name` with `targets`, and optional extra manifest text (a profile). The
/// files are only rewritten when they change, so warm builds stay warm.
pub fn write_crate(name: &str, targets: &[Target], manifest_extra: &str) -> PathBuf {
    let dir = bench_dir().join(name);
    fs::create_dir_all(dir.join("tests")).unwrap();
    fs::create_dir_all(dir.join("src")).unwrap();
    let runtime = workspace().join("gpu-test-runtime");
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n\
         [dev-dependencies]\ngpu-test-runtime = {{ path = \"{}\" }}\n",
        runtime.display()
    );
    for target in targets {
        let harness = !matches!(target.tests, Tests::GpuHarness);
        let _ = write!(
            manifest,
            "\n[[test]]\nname = \"{}\"\nharness = {harness}\n",
            target.name
        );
    }
    manifest.push_str(manifest_extra);
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    write_if_changed(&dir.join("src/lib.rs"), "");
    for target in targets {
        write_if_changed(
            &dir.join("tests").join(format!("{}.rs", target.name)),
            &source(target),
        );
    }
    if !dir.join("Cargo.lock").exists() {
        fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    }
    dir
}

fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).unwrap();
    }
}

/// Builds the crate's tests (in `profile`) and returns each test target's executable.
pub fn build_tests(dir: &Path, profile: &str) -> Vec<(String, PathBuf)> {
    let stdout = measure::output(
        measure::cargo(dir)
            .args([
                "test",
                "--no-run",
                "--message-format=json",
                "--profile",
                profile,
                "--target-dir",
            ])
            .arg(target_dir()),
    );
    stdout
        .lines()
        .filter(|line| line.contains("\"executable\":\"") && line.contains("\"test\":true"))
        .filter_map(|line| {
            let name = field(line, "\"target\":{")?
                .split("\"name\":\"")
                .nth(1)?
                .split('"')
                .next()?
                .to_string();
            let executable = line.split("\"executable\":\"").nth(1)?.split('"').next()?;
            Some((name, PathBuf::from(executable)))
        })
        .collect()
}

fn field<'a>(line: &'a str, start: &str) -> Option<&'a str> {
    line.find(start).map(|at| &line[at..])
}

/// The executable of test target `name`.
pub fn executable(built: &[(String, PathBuf)], name: &str) -> PathBuf {
    built
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, path)| path.clone())
        .unwrap_or_else(|| panic!("no test target {name} in {built:?}"))
}

/// Builds the fake CUDA driver and returns a directory holding it as `libcuda.so.1`,
/// `libcuda.so` and `libnvrtc.so`.
pub fn fake_driver() -> PathBuf {
    measure::output(
        measure::cargo(&workspace())
            .args(["build", "--release", "-p", "gpu-test-fake-cuda", "--target-dir"])
            .arg(target_dir()),
    );
    let library = target_dir().join("release/libgpu_test_fake_cuda.so");
    let dir = bench_dir().join("fake-driver");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for name in ["libcuda.so.1", "libcuda.so", "libnvrtc.so", "libnvrtc.so.12"] {
        std::os::unix::fs::symlink(&library, dir.join(name)).unwrap();
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sources_have_one_test_per_index() {
        let gpu = source(&target("g", Tests::GpuHarness, 3));
        assert_eq!(gpu.matches("#[gpu_test]").count(), 3);
        assert!(gpu.contains("gpu_test_runtime::main()"));
        let ignored = source(&target("i", Tests::Ignored, 2));
        assert_eq!(ignored.matches("#[ignore]").count(), 2);
    }
}
