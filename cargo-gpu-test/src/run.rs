//! `cargo gpu-test run`: the tests under `cargo nextest run` (or `cargo test`), with a JSON
//! report of the run, and afterwards what nextest cannot show: each skipped GPU test and why.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::render::skipped_text;
use crate::report::{self, Outcome, Report};

/// Which test runner `run` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runner {
    /// `cargo nextest run` when cargo-nextest is installed, else `cargo test`.
    Auto,
    /// `cargo nextest run`.
    Nextest,
    /// `cargo test`.
    CargoTest,
}

/// nextest's exit status when a run had no test to run (`NO_TESTS_RUN`).
const NEXTEST_NO_TESTS: i32 = 4;

/// Where the run's JSON report goes: the user's `GPU_TEST_REPORT`, or a private temporary
/// directory removed afterwards.
#[derive(Debug)]
struct ReportPath {
    path: PathBuf,
    temporary: Option<PathBuf>,
}

impl ReportPath {
    fn choose(given: Option<OsString>) -> Result<ReportPath, String> {
        if let Some(given) = given.filter(|g| !g.is_empty()) {
            let path = PathBuf::from(&given);
            if path.extension().is_none_or(|e| e != "json") {
                return Err(format!(
                    "GPU_TEST_REPORT={:?}: cargo gpu-test run reads the run's report back, so it must be a JSON \
                     report (a path ending in .json); unset it to use a temporary one, or run `cargo nextest run` \
                     or `cargo test` directly for a JUnit report",
                    path.display().to_string()
                ));
            }
            // Each test process resolves a relative path in its own directory; one path for all.
            let path = std::env::current_dir().map(|cwd| cwd.join(&path)).unwrap_or(path);
            return Ok(ReportPath {
                path,
                temporary: None,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("cargo-gpu-test-{}-{nanos:08x}", std::process::id()));
        // Created new and private: a directory someone else put there in advance is an error,
        // not a place to write the report.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|error| {
                format!(
                    "cannot create a private directory {} for the run's report: {error}",
                    dir.display()
                )
            })?;
        Ok(ReportPath {
            path: dir.join("gpu-test-report.json"),
            temporary: Some(dir),
        })
    }
}

impl Drop for ReportPath {
    fn drop(&mut self) {
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn nextest_installed() -> bool {
    Command::new(cargo())
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the tests with `args` passed through, prints the skipped GPU tests by reason, and
/// returns the exit status: the runner's, except that a run whose every GPU test was skipped
/// (nextest then has nothing to run) succeeds.
pub fn run(runner: Runner, args: &[OsString]) -> Result<i32, String> {
    let nextest = match runner {
        Runner::Auto => nextest_installed(),
        Runner::Nextest => true,
        Runner::CargoTest => false,
    };
    let report = ReportPath::choose(std::env::var_os("GPU_TEST_REPORT"))?;
    // A report of an earlier run at the user's path must not pass for this run's: one this run
    // did not rewrite is not read.
    let earlier = modified(&report.path);
    let mut command = Command::new(cargo());
    if nextest {
        command.args(["nextest", "run"]);
    } else {
        command.arg("test");
    }
    command.args(args).env("GPU_TEST_REPORT", &report.path);
    let shown = if nextest {
        "cargo nextest run"
    } else {
        "cargo test"
    };
    let status = command
        .status()
        .map_err(|error| format!("cannot start `{shown}`: {error}"))?;
    let code = status.code().unwrap_or(101);
    let written = match modified(&report.path) {
        Some(time) if Some(time) != earlier => Some(report::load(&report.path)?),
        _ => None,
    };
    Ok(conclude(written.as_ref(), code, nextest))
}

/// When the file at `path` was last written, if there is one.
fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Prints what the run skipped and why, and decides the exit status.
fn conclude(report: Option<&Report>, code: i32, nextest: bool) -> i32 {
    let Some(report) = report else {
        eprintln!("cargo gpu-test: no GPU test was run or skipped (no #[gpu_test] among the tests selected)");
        return code;
    };
    if let Some(text) = skipped_text(report) {
        eprint!("\ncargo gpu-test: {text}");
    }
    let all_skipped = !report.tests.is_empty() && report.count(Outcome::Skipped) == report.tests.len();
    if all_skipped {
        eprintln!(
            "cargo gpu-test: every GPU test of this run was skipped: none ran on a GPU{}",
            if code == NEXTEST_NO_TESTS && nextest {
                " (nextest had no test left to run, which is not a failure here)"
            } else {
                ""
            }
        );
        if code == NEXTEST_NO_TESTS && nextest {
            return 0;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn a_run_of_nothing_but_skips_succeeds_under_nextest() {
        let mut report = sample();
        report.tests.retain(|t| t.outcome == Outcome::Skipped);
        assert_eq!(conclude(Some(&report), NEXTEST_NO_TESTS, true), 0);
        // The same status for a run with tests that did run is nextest's to give.
        assert_eq!(
            conclude(Some(&sample()), NEXTEST_NO_TESTS, true),
            NEXTEST_NO_TESTS
        );
        // Without any GPU test, "no tests" stays an error.
        assert_eq!(conclude(None, NEXTEST_NO_TESTS, true), NEXTEST_NO_TESTS);
        assert_eq!(conclude(Some(&sample()), 100, true), 100);
    }

    #[test]
    fn the_report_path_is_json_and_absolute() {
        let error = ReportPath::choose(Some("gpu.xml".into())).unwrap_err();
        assert!(error.starts_with("GPU_TEST_REPORT=\"gpu.xml\": "), "{error}");
        let given = ReportPath::choose(Some("out/gpu.json".into())).unwrap();
        assert!(given.path.is_absolute() && given.path.ends_with("out/gpu.json"));
        let temporary = ReportPath::choose(None).unwrap();
        let dir = temporary.temporary.clone().unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(temporary);
        assert!(!dir.exists());
    }
}
