//! Support for gpu-test's integration tests.
//!
//! - [`built`] builds the fake CUDA driver and `gpu-doctor` (once per process, in the target
//!   directory the fixtures share, since the outer `cargo test` holds the workspace's).
//! - [`Machine`] describes a machine in a temporary directory: a library directory holding the
//!   fake driver under the names a real one has, and a system root with `/proc/driver/nvidia` and
//!   `/dev/nvidia*`. [`Machine::command`] starts a child process that sees only that machine.
//! - [`Fixture`] copies a fixture crate, points it at this workspace, and builds its tests.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is inside the workspace")
        .to_path_buf()
}

/// A directory under the workspace's target directory for everything these tests build and
/// write: `<target>/gpu-test-it`.
pub fn scratch_dir() -> PathBuf {
    // Test binaries live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("gpu-test-it");
    fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Variables removed from every child, so that the outer environment (a CI runner's
/// GPU_TEST_STRICT, nextest's own variables, a real CUDA setup) cannot leak into a scenario.
const CLEARED_PREFIXES: &[&str] = &["GPU_TEST_", "NEXTEST", "FAKE_CUDA_", "FAKE_NVRTC_", "CUDA_"];
const CLEARED: &[&str] = &[
    "LD_LIBRARY_PATH",
    "GITHUB_ACTIONS",
    "RUST_TEST_THREADS",
    "RUST_BACKTRACE",
];

/// A command for `program` that inherits none of the variables that would change what it does
/// or measures (see `CLEARED_PREFIXES` and `CLEARED`).
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if CLEARED_PREFIXES.iter().any(|p| name.starts_with(p)) || CLEARED.contains(&name.as_ref()) {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// A `cargo` command (the one running these tests) with a clean environment.
pub fn cargo() -> Command {
    clean_command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Fails the calling test, saying how to install it, where cargo-nextest is not installed: the
/// tests of gpu-test under nextest drive it.
pub fn require_nextest() {
    let installed = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "this test runs `cargo nextest`: install it with `cargo install cargo-nextest --locked` (.ci/run does)"
    );
}

/// What [`built`] produces.
#[derive(Debug)]
pub struct Built {
    /// The fake driver: `libgpu_test_fake_cuda.so`.
    pub fake_library: PathBuf,
    /// The `gpu-doctor` binary.
    pub doctor: PathBuf,
}

/// The GPU tests of the fixture `libtest-basic`, sorted by name.
pub const LIBTEST_BASIC_GPU_TESTS: [&str; 8] = [
    "compiles_a_kernel",
    "needs_16_gib",
    "needs_cuda_11_8",
    "needs_sm_80",
    "nested::without_the_handle",
    "round_trip",
    "two_devices",
    "within_its_timeout",
];

/// Builds the fake driver and the doctor once per process, in the fixtures' target directory:
/// gpu-test-runtime and its dependencies build once for both.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = Fixture::target_dir();
        let output = cargo()
            .arg("build")
            .arg("--manifest-path")
            .arg(workspace_root().join("Cargo.toml"))
            .args([
                "-p",
                "gpu-test-fake-cuda",
                "-p",
                "gpu-test-runtime",
                "--lib",
                "--bins",
            ])
            .arg("--target-dir")
            .arg(&target)
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building the fake driver and gpu-doctor failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Built {
            fake_library: target.join("debug/libgpu_test_fake_cuda.so"),
            doctor: target.join("debug/gpu-doctor"),
        }
    })
}

fn unique_dir(kind: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = scratch_dir()
        .join(kind)
        .join(format!("{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A machine described in a directory, for one scenario.
#[derive(Debug)]
pub struct Machine {
    dir: PathBuf,
    env: Vec<(String, String)>,
    driver: bool,
    nvrtc: bool,
    missing_symbols: Vec<String>,
    null_symbols: Vec<String>,
    kernel_release: Option<String>,
    driver_file: Option<String>,
    dev_link_file: Option<String>,
    device_nodes: Vec<(String, u32)>,
    files: Vec<(String, String)>,
    path_first: Vec<PathBuf>,
    written: OnceLock<()>,
}

impl Machine {
    /// A machine with no NVIDIA driver at all: no library, no kernel module, no device files.
    pub fn without_driver() -> Machine {
        Machine {
            dir: unique_dir("machines"),
            env: Vec::new(),
            driver: false,
            nvrtc: false,
            missing_symbols: Vec::new(),
            null_symbols: Vec::new(),
            kernel_release: None,
            driver_file: None,
            dev_link_file: None,
            device_nodes: Vec::new(),
            files: Vec::new(),
            path_first: Vec::new(),
            written: OnceLock::new(),
        }
    }

    /// A machine with the fake driver (CUDA 12.8, driver 570.86.15, one `NVIDIA Fake H100`) and
    /// the fake NVRTC 12.8, unless changed with the other methods.
    pub fn with_fake_driver() -> Machine {
        let mut machine = Machine::without_driver();
        machine.driver = true;
        machine.nvrtc = true;
        machine.kernel_release = Some("570.86.15".to_string());
        machine.device_nodes = vec![("nvidiactl".to_string(), 0o666), ("nvidia0".to_string(), 0o666)];
        machine
    }

    /// Sets an environment variable for the child (`FAKE_CUDA_*` to shape the fake driver).
    pub fn env(mut self, name: &str, value: &str) -> Machine {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// `FAKE_CUDA_DEVICES`: `name|major.minor|memory[|mode]`, `;`-separated.
    pub fn devices(self, spec: &str) -> Machine {
        self.env("FAKE_CUDA_DEVICES", spec)
    }

    /// The CUDA version the driver reports, as `1000 * major + 10 * minor`, and the release in
    /// `/proc/driver/nvidia/version`.
    pub fn driver_version(mut self, encoded: u32, release: &str) -> Machine {
        self.kernel_release = Some(release.to_string());
        self.env("FAKE_CUDA_DRIVER_VERSION", &encoded.to_string())
    }

    /// The result `cuInit` returns.
    pub fn init_result(self, code: i32) -> Machine {
        self.env("FAKE_CUDA_INIT_RESULT", &code.to_string())
    }

    /// No NVRTC on the library path.
    pub fn without_nvrtc(mut self) -> Machine {
        self.nvrtc = false;
        self
    }

    /// The version the fake NVRTC reports.
    pub fn nvrtc_version(self, version: &str) -> Machine {
        self.env("FAKE_NVRTC_VERSION", version)
    }

    /// The driver library lacks `symbol` (renamed in a copy of the fake).
    pub fn without_symbol(mut self, symbol: &str) -> Machine {
        self.missing_symbols.push(symbol.to_string());
        self
    }

    /// The fake driver's `symbol` is found, at address 0: an absolute symbol of value 0, for
    /// which `dlsym` returns null without an error.
    pub fn null_symbol(mut self, symbol: &str) -> Machine {
        self.null_symbols.push(symbol.to_string());
        self
    }

    /// A loaded NVIDIA kernel module of this release (`/proc/driver/nvidia/version`).
    pub fn kernel_module(mut self, release: &str) -> Machine {
        self.kernel_release = Some(release.to_string());
        self
    }

    /// The driver library is a file of this name (`libcuda.so.580.95.05`, as the driver installs
    /// it; a relative path puts it in a subdirectory), which `libcuda.so.1` and `libcuda.so` link
    /// to.
    pub fn driver_file(mut self, name: &str) -> Machine {
        self.driver_file = Some(name.to_string());
        self
    }

    /// `libcuda.so` links to a copy of the driver library of its own, at this path under the
    /// library directory (`other/libcuda.so.580.95.05`), rather than to `libcuda.so.1`'s file.
    pub fn dev_link_file(mut self, name: &str) -> Machine {
        self.dev_link_file = Some(name.to_string());
        self
    }

    /// No `/proc/driver/nvidia/version`.
    pub fn without_kernel_module(mut self) -> Machine {
        self.kernel_release = None;
        self
    }

    /// No such `/dev` file.
    pub fn without_device_node(mut self, name: &str) -> Machine {
        self.device_nodes.retain(|(n, _)| n != name);
        self
    }

    /// Sets the permission bits of a `/dev` file (created if absent).
    pub fn device_node(mut self, name: &str, mode: u32) -> Machine {
        self.device_nodes.retain(|(n, _)| n != name);
        self.device_nodes.push((name.to_string(), mode));
        self
    }

    /// A file under the system root (`.dockerenv`, `proc/1/cgroup`, ...) holding `contents`.
    pub fn file(mut self, path: &str, contents: &str) -> Machine {
        self.files.push((path.to_string(), contents.to_string()));
        self
    }

    /// A Python virtual environment `name` inside this machine, active as `bin/activate` leaves
    /// one (its `bin` first on `PATH`). Returns the machine and the environment's
    /// `site-packages`, where NVIDIA's wheels put `nvidia/`.
    pub fn python_env(mut self, name: &str) -> (Machine, PathBuf) {
        let venv = self.dir.join(name);
        let site_packages = venv.join("lib/python3.12/site-packages");
        fs::create_dir_all(&site_packages).unwrap();
        fs::create_dir_all(venv.join("bin")).unwrap();
        fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        self.path_first.push(venv.join("bin"));
        (self, site_packages)
    }

    /// This machine with `GPU_TEST_REPORT` naming `file` in its directory, and that path.
    pub fn reporting_to(self, file: &str) -> (Machine, PathBuf) {
        let report = self.dir.join(file);
        let machine = self.env("GPU_TEST_REPORT", report.to_str().expect("a UTF-8 path"));
        (machine, report)
    }

    /// The directory the machine lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns a command for `program` that sees only this machine, whose files are written on
    /// the first call (later calls share them, so children may run at the same time).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let lib = self.dir.join("lib");
        let root = self.dir.join("root");
        self.written.get_or_init(|| self.write_files(&lib, &root));
        let mut command = clean_command(program);
        // gpu-test looks for NVRTC in the Python environments on PATH: none of the host's.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::split_paths(&path).filter(|dir| {
            dir.parent()
                .is_none_or(|env| !env.join("pyvenv.cfg").exists() && !env.join("conda-meta").exists())
        });
        let path = self.path_first.iter().cloned().chain(path);
        command
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("LD_LIBRARY_PATH", &lib)
            .env("GPU_TEST_SYSTEM_ROOT", &root)
            .env("GPU_TEST_RUNTIME_DIR", self.dir.join("runtime"))
            .stdin(Stdio::null());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    fn write_files(&self, lib: &Path, root: &Path) {
        fs::create_dir_all(lib).unwrap();
        fs::create_dir_all(root.join("dev")).unwrap();
        if self.driver || self.nvrtc {
            let library = self.library_file();
            let mut names = Vec::new();
            if self.driver {
                names.extend(["libcuda.so.1", "libcuda.so", "libnvidia-ml.so.1"]);
            }
            if self.nvrtc {
                names.extend(["libnvrtc.so", "libnvrtc.so.12"]);
            }
            // A copy of the library at `file` under `lib`, if one is asked for.
            let copy = |file: &Option<String>| {
                file.as_ref().map(|file| {
                    let path = lib.join(file);
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    fs::copy(&library, &path).unwrap();
                    path
                })
            };
            let driver = copy(&self.driver_file).unwrap_or_else(|| library.clone());
            let dev_link = copy(&self.dev_link_file).unwrap_or_else(|| driver.clone());
            for name in names {
                let target = match name {
                    "libcuda.so" => &dev_link,
                    "libcuda.so.1" => &driver,
                    _ => &library,
                };
                std::os::unix::fs::symlink(target, lib.join(name)).unwrap();
            }
        }
        if let Some(release) = &self.kernel_release {
            fs::create_dir_all(root.join("proc/driver/nvidia")).unwrap();
            fs::write(
                root.join("proc/driver/nvidia/version"),
                format!(
                    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {release}  Tue Jan  7 17:41:40 UTC 2025\n\
                     GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
                ),
            )
            .unwrap();
        }
        for (path, contents) in &self.files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, contents).unwrap();
        }
        for (name, mode) in &self.device_nodes {
            use std::os::unix::fs::PermissionsExt;
            let path = root.join("dev").join(name);
            fs::write(&path, "").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
        }
    }

    /// The fake library, or a copy of it with the missing symbols renamed.
    fn library_file(&self) -> PathBuf {
        let fake = &built().fake_library;
        if self.missing_symbols.is_empty() && self.null_symbols.is_empty() {
            return fake.clone();
        }
        let mut bytes = fs::read(fake).unwrap();
        for symbol in &self.null_symbols {
            make_null(&mut bytes, symbol);
        }
        for symbol in &self.missing_symbols {
            let needle: Vec<u8> = [&[0u8][..], symbol.as_bytes(), &[0u8][..]].concat();
            let mut found = false;
            let mut at = 0;
            while let Some(position) = find(&bytes[at..], &needle) {
                // Renaming the first letter keeps every offset valid; dlsym then finds no
                // symbol of the original name.
                bytes[at + position + 1] = b'X';
                at += position + needle.len() - 1;
                found = true;
            }
            assert!(found, "the fake driver does not export {symbol}");
        }
        let copy = self.dir.join("libfake-cuda-patched.so");
        fs::write(&copy, bytes).unwrap();
        copy
    }

    /// Puts a copy of the fake NVRTC at `path` (inside this machine's directory) whose `SONAME` is
    /// `soname`, as a toolkit's or a wheel's NVRTC answers to its own name once loaded.
    pub fn nvrtc_file(&self, path: &Path, soname: &str) {
        const OWN: &[u8] = b"\0libgpu-test-fake-cuda.so.0\0";
        assert!(
            path.starts_with(&self.dir),
            "{} is not in this machine",
            path.display()
        );
        assert!(
            soname.len() <= OWN.len() - 2,
            "{soname} is longer than the fake's own SONAME"
        );
        let mut bytes = fs::read(&built().fake_library).unwrap();
        let at = find(&bytes, OWN).expect("the fake driver has its own SONAME") + 1;
        let mut renamed = soname.as_bytes().to_vec();
        renamed.resize(OWN.len() - 2, 0);
        bytes[at..at + renamed.len()].copy_from_slice(&renamed);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    /// Puts copies of the fake NVRTC in `dir`, each named and answering to one of `names`
    /// (`libnvrtc.so.12`, `libnvrtc-builtins.so.12.8`), as a toolkit or a wheel installs them.
    pub fn nvrtc_in(&self, dir: &Path, names: &[&str]) {
        for name in names {
            self.nvrtc_file(&dir.join(name), name);
        }
    }

    /// Runs the test target `target` of the fixture crate `fixture` with `args` on this machine.
    pub fn run(&self, fixture: &str, target: &str, args: &[&str]) -> Run {
        Run::of(self.command(Fixture::build(fixture).test(target)).args(args))
    }

    /// Runs `gpu-doctor` with `args` on this machine.
    pub fn doctor(&self, args: &[&str]) -> Run {
        Run::of(self.command(&built().doctor).args(args))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Makes the dynamic symbol `name` of the ELF64 image `bytes` absolute with value 0 (`SHN_ABS`),
/// which the loader resolves to address 0.
fn make_null(bytes: &mut [u8], name: &str) {
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&bytes[..5], b"\x7fELF\x02", "the fake driver is an ELF64 file");
    let (sections, entry_size, count) = (u64_at(bytes, 0x28), u16_at(bytes, 0x3a), u16_at(bytes, 0x3c));
    let section = |index: usize| sections + index * entry_size;
    let dynsym = (0..count)
        .map(section)
        .find(|&header| u32_at(bytes, header + 4) == 11)
        .expect("the fake driver has a .dynsym");
    let (symbols, size) = (u64_at(bytes, dynsym + 0x18), u64_at(bytes, dynsym + 0x20));
    let strings = u64_at(bytes, section(u32_at(bytes, dynsym + 0x28)) + 0x18);
    for symbol in (symbols..symbols + size).step_by(24) {
        let start = strings + u32_at(bytes, symbol);
        if bytes[start..].starts_with(name.as_bytes()) && bytes[start + name.len()] == 0 {
            bytes[symbol + 6..symbol + 8].copy_from_slice(&0xfff1u16.to_le_bytes());
            bytes[symbol + 8..symbol + 16].fill(0);
            return;
        }
    }
    panic!("the fake driver does not export {name}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A finished child process.
#[derive(Debug)]
pub struct Run {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Runs `command` to completion.
    pub fn of(command: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().expect("start the child process");
        Run {
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Standard output then standard error.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the process exited normally (not killed by a signal, not aborted) and printed no
    /// panic; returns self.
    pub fn assert_clean(&self) -> &Run {
        assert!(
            self.code.is_some(),
            "the process was killed by a signal:\n{}",
            self.all()
        );
        assert!(
            !self.all().contains("panicked"),
            "the process panicked:\n{}",
            self.all()
        );
        self
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.all()))
    }

    /// The lines of standard error that start with `prefix`.
    pub fn stderr_lines(&self, prefix: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with(prefix)).collect()
    }
}

/// The JSON report gpu-test wrote at `path`.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|error| panic!("no report at {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("the report at {} is not JSON ({error}): {text}", path.display()))
}

/// The entry of the test `name` in a JSON report, if it has one.
pub fn report_entry<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    report["tests"]
        .as_array()?
        .iter()
        .find(|test| test["name"] == name)
}

/// A fixture crate copied out of `tests/fixtures`, pointed at this workspace, and built.
#[derive(Debug)]
pub struct Fixture {
    /// The copy's directory.
    pub dir: PathBuf,
    /// The arguments it was built with (features), which [`Fixture::cargo_test`] passes too.
    pub cargo_args: Vec<String>,
    /// The test executables, by target name.
    pub tests: HashMap<String, PathBuf>,
}

impl Fixture {
    /// Copies and builds the fixture `name` (`tests/fixtures/<name>`), once per process; a file
    /// lock keeps parallel test processes from building the same copy at once.
    pub fn build(name: &str) -> Arc<Fixture> {
        Fixture::build_with(name, &[])
    }

    /// [`Fixture::build`] with more arguments for `cargo test --no-run` (features), once per
    /// process for each set of them.
    pub fn build_with(name: &str, cargo_args: &[&str]) -> Arc<Fixture> {
        static BUILT: Mutex<Vec<(String, Arc<Fixture>)>> = Mutex::new(Vec::new());
        let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, fixture)) = built
            .iter()
            .find(|(n, fixture)| n == name && fixture.cargo_args == cargo_args)
        {
            return fixture.clone();
        }
        let fixture = Arc::new(Fixture::copy_and_build(name, cargo_args));
        built.push((name.to_string(), fixture.clone()));
        fixture
    }

    fn copy_and_build(name: &str, cargo_args: &[&str]) -> Fixture {
        let fixtures = scratch_dir().join("fixtures");
        fs::create_dir_all(&fixtures).unwrap();
        let lock = fs::File::create(fixtures.join(format!("{name}.lock"))).unwrap();
        lock.lock().expect("lock the fixture");
        let dir = fixtures.join(name);
        let _ = fs::remove_dir_all(dir.join("src"));
        let _ = fs::remove_dir_all(dir.join("tests"));
        copy_dir(&workspace_root().join("tests/fixtures").join(name), &dir);
        let manifest = dir.join("Cargo.toml");
        let text = fs::read_to_string(&manifest).unwrap();
        let root = workspace_root();
        fs::write(&manifest, text.replace("@WORKSPACE@", &root.to_string_lossy())).unwrap();
        if !dir.join("Cargo.lock").exists() {
            fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        }
        let output = cargo()
            .args(["test", "--no-run", "--message-format=json"])
            .args(cargo_args)
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(Fixture::target_dir())
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building fixture {name} {cargo_args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut tests = HashMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(executable), Some(target)) =
                (message["executable"].as_str(), message["target"]["name"].as_str())
            else {
                continue;
            };
            if message["profile"]["test"].as_bool() == Some(true) {
                tests.insert(target.to_string(), PathBuf::from(executable));
            }
        }
        drop(lock);
        Fixture {
            dir,
            cargo_args: cargo_args.iter().map(|a| a.to_string()).collect(),
            tests,
        }
    }

    /// `cargo test` on the fixture, as a user would run it, on `machine`.
    pub fn cargo_test(&self, machine: &Machine) -> Command {
        let mut command = machine.command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command
            .arg("test")
            .args(&self.cargo_args)
            .arg("--manifest-path")
            .arg(self.dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(Fixture::target_dir());
        command
    }

    /// The target directory all fixtures share (so dependencies are built once).
    pub fn target_dir() -> PathBuf {
        scratch_dir().join("fixture-target")
    }

    /// The test executable of target `name`.
    pub fn test(&self, name: &str) -> &Path {
        self.tests
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no test target {name}: {:?}", self.tests.keys()))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The doctor's findings in its JSON, as `severity: text / hint`.
pub fn finding_texts(json: &serde_json::Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .expect("the doctor's JSON has findings")
        .iter()
        .map(|f| {
            format!(
                "{}: {} / {}",
                f["severity"].as_str().unwrap_or_default(),
                f["text"].as_str().unwrap_or_default(),
                f["hint"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Whether the doctor found something of `severity` whose text or hint contains `text`.
pub fn has_finding(json: &serde_json::Value, severity: &str, text: &str) -> bool {
    finding_texts(json)
        .iter()
        .any(|f| f.starts_with(&format!("{severity}: ")) && f.contains(text))
}

/// Asserts that the doctor found something of `severity` whose text or hint contains `text`,
/// listing every finding when it did not.
#[track_caller]
pub fn assert_finding(json: &serde_json::Value, severity: &str, text: &str) {
    assert!(
        has_finding(json, severity, text),
        "no {severity} finding with `{text}` among {:#?}",
        finding_texts(json)
    );
}

/// Asserts that the doctor's JSON shows NVRTC `version` loaded by its full path from `dir`,
/// answering to `soname`, with its builtins beside it, and says so in a note and in no warning or
/// error.
pub fn assert_nvrtc_loaded_from(json: &serde_json::Value, dir: &Path, soname: &str, version: &str) {
    let nvrtc = &json["toolkit"]["nvrtc"];
    assert_eq!(nvrtc["version"], version, "{json:#}");
    assert_eq!(nvrtc["outside_loader_path"], true, "{json:#}");
    assert_eq!(nvrtc["loaded_as"], soname, "{json:#}");
    let builtins = dir.join(format!("libnvrtc-builtins.so.{version}"));
    assert_eq!(nvrtc["builtins"], builtins.display().to_string(), "{json:#}");
    let note = format!(
        "NVRTC ({}) is not on the loader's path",
        dir.join(soname).display()
    );
    assert!(
        has_finding(json, "info", &note)
            && !finding_texts(json)
                .iter()
                .any(|f| f.contains("NVRTC") && !f.starts_with("info: ")),
        "{:#?}",
        finding_texts(json)
    );
}

/// The workspace README's Rust examples, compiled and run as doctests so that none goes stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
