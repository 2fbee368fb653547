//! `cargo gpu-test run`: the tests under `cargo nextest run` (or `cargo test`), with a JSON
//! report of the run, and afterwards what nextest cannot show: each skipped GPU test and why.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::render::skipped_text;
use crate::report::{self, Outcome, Report};
use crate::runner_args::{option_value, runner_words};

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

/// nextest's exit status when a test failed (`TEST_RUN_FAILED`).
const NEXTEST_TEST_FAILED: i32 = 100;

/// `cargo test`'s exit status when a test failed.
const CARGO_TEST_FAILED: i32 = 101;

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
        // In gpu-test's runtime directory, which is this user's alone: in a shared temporary
        // directory another user could move the directory away and read, block or forge the report.
        let runtime = gpu_test_runtime::__companion::runtime_dir()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        remove_leftovers(&runtime);
        let dir = private_dir_name(&runtime, nanos);
        create_private_dir(&dir)?;
        Ok(ReportPath {
            path: dir.join("gpu-test-report.json"),
            temporary: Some(dir),
        })
    }
}

/// Removes the temporary report directories of runs that were stopped before they could (a
/// signal ends this command without its clean-up): those a day old whose process is gone.
fn remove_leftovers(runtime: &Path) {
    const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("cargo-gpu-test-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > DAY));
        // Both: a process of another container may have the same id.
        if old && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `<parent>/cargo-gpu-test-<pid>-<salt>`.
fn private_dir_name(parent: &Path, salt: u32) -> PathBuf {
    parent.join(format!("cargo-gpu-test-{}-{salt:08x}", std::process::id()))
}

/// Creates `dir` new and private (0700): a directory or link someone else put there in advance
/// is an error, not a place to write the report.
fn create_private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|error| {
            format!(
                "cannot create a private directory {} for the run's report: {error}",
                dir.display()
            )
        })
}

/// A report file as it is at one moment: gpu-test writes a report as a new file put in the old
/// one's place (renamed over it, or exchanged with it and the old one removed), so a report this
/// run wrote is another file (device and inode) than the one before, as long as the one before
/// is held open (a file system reuses the inode of a removed file), and one whose status changed
/// later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    changed: (i64, i64),
}

/// The report at `path`, opened without following a symbolic link and without waiting on a FIFO
/// (a path in a shared directory may have been made one by another user), with its identity;
/// `None` when there is none. Anything but a regular file of this user's is an error.
fn open_report(path: &Path) -> Result<Option<(std::fs::File, Identity)>, String> {
    let refused = |why: String| format!("GPU_TEST_REPORT={}: {why}", path.display());
    let file = match gpu_test_runtime::__companion::open_existing(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(
                "is a symbolic link; gpu-test writes a report only as a file of its own".to_string(),
            ));
        }
        Err(error) => return Err(refused(format!("cannot be read ({error})"))),
    };
    let metadata = file
        .metadata()
        .map_err(|error| refused(format!("cannot be read ({error})")))?;
    if !metadata.is_file() {
        return Err(refused("is not a regular file".to_string()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        return Err(refused(format!(
            "belongs to user {}, not to this user ({me}); gpu-test writes a report only as a file of its own: \
             remove it, or choose another path",
            metadata.uid()
        )));
    }
    let identity = Identity {
        device: metadata.dev(),
        inode: metadata.ino(),
        changed: (metadata.ctime(), metadata.ctime_nsec()),
    };
    Ok(Some((file, identity)))
}

/// The report at `path` when it is not the file `before` was: what this run wrote.
fn read_new_report(path: &Path, before: Option<Identity>) -> Result<Option<Vec<u8>>, String> {
    let Some((file, identity)) = open_report(path)? else {
        return Ok(None);
    };
    if Some(identity) == before {
        return Ok(None);
    }
    let bytes =
        report::read_bounded(file).map_err(|why| format!("GPU_TEST_REPORT={}: {why}", path.display()))?;
    Ok(Some(bytes))
}

impl Drop for ReportPath {
    fn drop(&mut self) {
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The cargo to run the tests with: the one that started this subcommand (`CARGO`, which cargo
/// sets), else `cargo` on the `PATH`; set but empty, as unset.
fn cargo() -> OsString {
    cargo_from(std::env::var_os("CARGO"))
}

fn cargo_from(given: Option<OsString>) -> OsString {
    given
        .filter(|cargo| !cargo.is_empty())
        .unwrap_or_else(|| "cargo".into())
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
/// returns the exit status: the runner's, except that a nextest run whose every GPU test was
/// skipped (nextest then has nothing to run) succeeds.
pub fn run(runner: Runner, args: &[OsString]) -> Result<i32, String> {
    let nextest = match runner {
        Runner::Auto => nextest_installed(),
        Runner::Nextest => true,
        Runner::CargoTest => false,
    };
    // The report path first: what `run` needs of it (a JSON report) is more than the tests do.
    let report = ReportPath::choose(std::env::var_os("GPU_TEST_REPORT"))?;
    // A report of an earlier run at the user's path must not pass for this run's: the file that
    // is there now is not read afterwards. It is held open until then, so that its inode cannot
    // be given to a file the run writes.
    let earlier = open_report(&report.path)?;
    // Before anything is built, what each test process checks as it starts (nextest would hide
    // its warnings, and make a refusal a list-phase failure).
    for warning in gpu_test_runtime::__companion::check_settings()? {
        say_line!("cargo gpu-test: warning: {warning}");
    }
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
    let status = crate::foreground::run(&mut command).map_err(|error| {
        format!(
            "cannot start `{shown}` with {} (the cargo that started `cargo gpu-test`, CARGO, else `cargo` on \
             the PATH): {error}",
            cargo().to_string_lossy()
        )
    })?;
    // A runner ended by a signal exits as a shell reports it: 128 + the signal.
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|signal| 128 + signal))
        .unwrap_or(101);
    let mut unreadable = false;
    let before = earlier.as_ref().map(|(_, identity)| *identity);
    let now = read_new_report(&report.path, before).unwrap_or_else(|error| {
        say_line!("cargo gpu-test: warning: {error}, so the run's skipped tests are not listed");
        unreadable = true;
        None
    });
    let written = match now {
        Some(now) => match report::parse(&String::from_utf8_lossy(&now)) {
            // A report without a test (a run whose filters left out every GPU test writes one)
            // says what no report says.
            Ok(report) if report.tests.is_empty() => None,
            Ok(report) => Some(report),
            Err(error) => {
                // The run's own status still decides; only the list of skips is lost, and said so.
                say_line!(
                    "cargo gpu-test: warning: the run's report {} cannot be read ({error}), so its skipped tests \
                     are not listed",
                    report.path.display()
                );
                return Ok(code);
            }
        },
        _ => None,
    };
    let ran = Ran {
        code,
        nextest,
        // Only nextest's status depends on it, and only nextest reads its configuration.
        filtered: narrows_selection(args)
            || nextest
                && crate::nextest_config::default_filter_may_narrow(
                    args,
                    &std::env::current_dir().unwrap_or_default(),
                    std::env::var("NEXTEST_PROFILE").ok().as_deref(),
                ),
        report_unreadable: unreadable,
        no_tests_given: no_tests_given(args, std::env::var("NEXTEST_NO_TESTS").ok().as_deref()),
    };
    if nextest
        && std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
        && let Some(report) = &written
    {
        let notices = github_notices(report);
        let format = std::env::var("NEXTEST_MESSAGE_FORMAT").ok();
        if stdout_is_json(args, format.as_deref()) {
            // nextest's libtest-json on stdout is for a program; the runner reads stderr too.
            say!("{notices}");
        } else if let Err(error) = crate::print_out(&notices) {
            // The tests have run: their status stands, and the skips are still listed below.
            say_line!(
                "cargo gpu-test: warning: {error}, so the GitHub notices of the run's skips are not written"
            );
        }
    }
    Ok(conclude(written.as_ref(), ran))
}

/// How the runner ended, and what the exit status depends on.
#[derive(Debug, Clone, Copy)]
struct Ran {
    code: i32,
    nextest: bool,
    /// Whether the arguments may have narrowed which tests run (filters, a partition, `--`).
    filtered: bool,
    /// Whether the report was there but could not be read (already said).
    report_unreadable: bool,
    /// Whether the user said what an empty run is (`--no-tests`): then nextest's status stands.
    no_tests_given: bool,
}

/// `cargo nextest run` options that take a value (the next word, unless given with `=`), as
/// `cargo nextest run --help` lists them (nextest 0.9.143), with cargo's `--config` and `-Z`.
const OPTIONS_WITH_VALUES: &[&str] = &[
    "-p",
    "--package",
    "-F",
    "--features",
    "--bin",
    "--example",
    "--test",
    "--bench",
    "--target",
    "--target-dir",
    "--cargo-profile",
    "-P",
    "--profile",
    "--manifest-path",
    "--build-jobs",
    "-j",
    "--test-threads",
    "--retries",
    "--flaky-result",
    "--config",
    "--config-file",
    "--tool-config-file",
    "--user-config-file",
    "--color",
    "--status-level",
    "--final-status-level",
    "--success-output",
    "--failure-output",
    "--show-progress",
    "--max-progress-running",
    "--max-fail",
    "--no-tests",
    "--stress-count",
    "--stress-duration",
    "--debugger",
    "--tracer",
    "--message-format",
    "--message-format-version",
    "--workspace-remap",
    "--target-dir-remap",
    "--build-dir-remap",
    "--binaries-metadata",
    "--cargo-metadata",
    "--archive-file",
    "--archive-format",
    "--extract-to",
    "--exclude",
    "--cargo-message-format",
    "-Z",
];

/// `cargo nextest run` options that select fewer tests than every test of the binaries built.
const NARROWING_OPTIONS: &[&str] = &[
    "-E",
    "--filterset",
    "--filter-expr",
    "--partition",
    "--run-ignored",
    "--ignored",
    "--skip",
    "--platform-filter",
    "-R",
    "--rerun",
];

/// Whether `args` may select fewer tests than every test of the binaries built: a filterset, a
/// name filter, a partition, `--run-ignored`, a rerun, or arguments for the test binaries after
/// `--`. A word that is not an option is taken as a name filter, so that an option's value this
/// list does not know of never turns "no tests" into "every GPU test was skipped".
fn narrows_selection(args: &[OsString]) -> bool {
    let mut words = args.iter().map(|a| a.to_string_lossy());
    while let Some(word) = words.next() {
        let name = word.split('=').next().unwrap_or_default();
        if word == "--" || NARROWING_OPTIONS.contains(&name) {
            return true;
        }
        if (word.starts_with("-E") || word.starts_with("-R")) && word.len() > 2 {
            return true;
        }
        if !word.starts_with('-') {
            // A positional word is a name filter.
            return true;
        }
        if OPTIONS_WITH_VALUES.contains(&name) && !word.contains('=') {
            words.next();
        }
    }
    false
}

/// Whether nextest writes JSON on stdout: `--message-format libtest-json` (or `-plus`), else
/// `NEXTEST_MESSAGE_FORMAT` (`from_environment`) so.
fn stdout_is_json(args: &[OsString], from_environment: Option<&str>) -> bool {
    option_value(&runner_words(args), "--message-format", None)
        .or(from_environment.map(str::to_string))
        .is_some_and(|format| format.starts_with("libtest-json"))
}

/// Whether the user said what nextest does with a run of no tests: `--no-tests`, or
/// `NEXTEST_NO_TESTS` (`from_environment`) set.
fn no_tests_given(args: &[OsString], from_environment: Option<&str>) -> bool {
    option_value(&runner_words(args), "--no-tests", None).is_some()
        || from_environment.is_some_and(|value| !value.is_empty())
}

/// On GitHub Actions, the notices nextest hides: one per test binary and skip reason, on the
/// first test it skipped.
fn github_notices(report: &Report) -> String {
    let mut out = String::new();
    for group in crate::render::skip_groups(report) {
        let mut suites: Vec<&str> = group.tests.iter().map(|t| t.suite.as_str()).collect();
        suites.dedup();
        for suite in suites {
            let tests: Vec<_> = group.tests.iter().filter(|t| t.suite == suite).collect();
            let at = tests[0].file.as_deref().zip(tests[0].line);
            let mut message = group.reason.to_string();
            if let Some(hint) = group.hint {
                message.push_str(&format!("; hint: {hint}"));
            }
            out.push_str(&gpu_test_runtime::__companion::skip_notice(
                suite,
                tests.len(),
                at,
                &message,
            ));
        }
    }
    out
}

/// Prints what the run skipped and why, and decides the exit status.
fn conclude(report: Option<&Report>, ran: Ran) -> i32 {
    let no_tests = ran.nextest && ran.code == NEXTEST_NO_TESTS;
    let Some(report) = report else {
        if (ran.code == 0 || no_tests) && !ran.report_unreadable {
            say_line!(
                "cargo gpu-test: no GPU test wrote to the run's report, so none was run or skipped: no #[gpu_test] \
                 was among the tests run (or a cargo config's [env] sets GPU_TEST_REPORT with force = true, over \
                 the report cargo gpu-test gives the run)"
            );
        }
        return ran.code;
    };
    // A failure the runner's status leaves out (a body that ended its process with status 0; a
    // stress iteration that failed, which nextest 0.9.143 exits 0 after under --no-fail-fast):
    // the report has it, and the run fails.
    let failed = report.ended(Outcome::Failed);
    if ran.code == 0 && !failed.is_empty() {
        const SHOWN: usize = 10;
        let mut names: Vec<String> = failed
            .iter()
            .take(SHOWN)
            .map(|test| format!("{} {}", test.suite, test.name))
            .collect();
        if failed.len() > SHOWN {
            names.push(format!("and {} more", failed.len() - SHOWN));
        }
        let code = if ran.nextest {
            NEXTEST_TEST_FAILED
        } else {
            CARGO_TEST_FAILED
        };
        say_line!(
            "cargo gpu-test: the runner exited with status 0, but the run's report has {} failed GPU test{}: {}; \
             cargo gpu-test exits with {code}, as for any failed test",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
        return code;
    }
    if let Some(text) = skipped_text(report) {
        say!("\ncargo gpu-test: {text}");
        if ran.nextest && ran.filtered {
            say_line!(
                "cargo gpu-test: (nextest lists every test of a binary before it applies filters, so this may \
                 include tests the filters left out)"
            );
        }
    }
    let all_skipped = !report.tests.is_empty() && report.count(Outcome::Skipped) == report.tests.len();
    if !all_skipped {
        return ran.code;
    }
    match (no_tests, ran.filtered) {
        (true, _) if ran.no_tests_given => {
            say_line!(
                "cargo gpu-test: every GPU test of this run was skipped: none ran on a GPU (nextest had no test left \
                 to run, and its --no-tests decides the status)"
            );
            ran.code
        }
        (true, false) => {
            say_line!(
                "cargo gpu-test: every GPU test of this run was skipped: none ran on a GPU (nextest had no test left \
                 to run, which is not a failure here)"
            );
            0
        }
        (true, true) => {
            say_line!(
                "cargo gpu-test: nextest had no test to run, and with filters given cargo gpu-test cannot tell \
                 whether they selected only skipped GPU tests or nothing at all, so nextest's status 4 stands; \
                 pass --no-tests=pass if an empty run is expected"
            );
            ran.code
        }
        (false, _) => {
            say_line!("cargo gpu-test: every GPU test of this run was skipped: none ran on a GPU");
            ran.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    fn ran(code: i32, filtered: bool) -> Ran {
        Ran {
            code,
            nextest: true,
            filtered,
            report_unreadable: false,
            no_tests_given: false,
        }
    }

    #[test]
    fn an_empty_cargo_variable_is_as_unset() {
        assert_eq!(cargo_from(None), "cargo");
        assert_eq!(cargo_from(Some(OsString::new())), "cargo");
        assert_eq!(cargo_from(Some("/opt/cargo".into())), "/opt/cargo");
    }

    #[test]
    fn a_run_of_nothing_but_skips_succeeds_under_nextest() {
        let mut report = sample();
        report.tests.retain(|t| t.outcome == Outcome::Skipped);
        assert_eq!(conclude(Some(&report), ran(NEXTEST_NO_TESTS, false)), 0);
        // With filters, an empty selection cannot be told from one of skipped tests.
        assert_eq!(
            conclude(Some(&report), ran(NEXTEST_NO_TESTS, true)),
            NEXTEST_NO_TESTS
        );
        // The same status for a run with tests that did run is nextest's to give.
        assert_eq!(
            conclude(Some(&sample()), ran(NEXTEST_NO_TESTS, false)),
            NEXTEST_NO_TESTS
        );
        // The user's --no-tests decides.
        let given = Ran {
            no_tests_given: true,
            ..ran(NEXTEST_NO_TESTS, false)
        };
        assert_eq!(conclude(Some(&report), given), NEXTEST_NO_TESTS);
        // Without any GPU test, "no tests" stays an error.
        assert_eq!(conclude(None, ran(NEXTEST_NO_TESTS, false)), NEXTEST_NO_TESTS);
        assert_eq!(conclude(Some(&sample()), ran(100, false)), 100);
    }

    #[test]
    fn a_failure_in_the_report_fails_a_run_the_runner_passed() {
        let mut report = sample();
        report.tests.retain(|t| t.outcome != Outcome::Failed);
        assert_eq!(conclude(Some(&report), ran(0, false)), 0);
        let mut failed = report.clone();
        failed.tests[0].outcome = Outcome::Failed;
        assert_eq!(conclude(Some(&failed), ran(0, false)), NEXTEST_TEST_FAILED);
        let cargo_test = Ran {
            nextest: false,
            ..ran(0, false)
        };
        assert_eq!(conclude(Some(&failed), cargo_test), CARGO_TEST_FAILED);
        // A status of the runner's own that is not 0 stands.
        assert_eq!(
            conclude(Some(&failed), ran(NEXTEST_TEST_FAILED, false)),
            NEXTEST_TEST_FAILED
        );
    }

    #[test]
    fn filters_are_told_from_options_and_their_values() {
        let narrows =
            |words: &[&str]| narrows_selection(&words.iter().map(OsString::from).collect::<Vec<_>>());
        assert!(!narrows(&[]));
        assert!(!narrows(&[
            "-p",
            "my-crate",
            "--test",
            "gpu",
            "--no-fail-fast",
            "--features=cuda"
        ]));
        assert!(!narrows(&["--retries", "2", "--profile", "ci", "--workspace"]));
        assert!(narrows(&["-E", "test(typo)"]));
        assert!(narrows(&["-Etest(x)"]));
        assert!(narrows(&["--filterset=test(x)"]));
        assert!(narrows(&["--test", "gpu", "saxpy"]));
        assert!(narrows(&["--partition", "count:1/2"]));
        assert!(narrows(&["--", "--exact", "x"]));
        assert!(!narrows(&["--no-tests=fail"]));
        // Options whose values are not filters, and those that narrow.
        assert!(!narrows(&[
            "--stress-count",
            "10",
            "--config-file",
            "ci.toml",
            "-P",
            "ci"
        ]));
        assert!(!narrows(&[
            "--stress-duration",
            "1m",
            "--flaky-result",
            "fail",
            "--show-progress",
            "none"
        ]));
        for narrowing in [
            &["--skip", "slow"][..],
            &["--ignored"],
            &["-R", "latest"],
            &["-Rlatest"],
            &["--rerun=latest"],
            &["--platform-filter", "host"],
        ] {
            assert!(narrows(narrowing), "{narrowing:?}");
        }
        let given = |words: &[&str], variable: Option<&str>| {
            no_tests_given(&words.iter().map(OsString::from).collect::<Vec<_>>(), variable)
        };
        assert!(given(&["--no-tests=fail"], None));
        assert!(given(&["-p", "x", "--no-tests", "warn"], None));
        assert!(given(&[], Some("fail")));
        assert!(!given(&[], Some("")));
        assert!(!given(&["--", "--no-tests=fail"], None));
    }

    #[test]
    fn nextest_json_on_stdout_is_told_from_other_output() {
        let words = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        let json = |args: &[&str]| stdout_is_json(&words(args), None);
        assert!(json(&["--message-format", "libtest-json"]));
        assert!(json(&["-p", "x", "--message-format=libtest-json-plus"]));
        assert!(!json(&["--message-format", "human"]));
        assert!(!json(&[]));
        assert!(!json(&["--", "--message-format", "libtest-json"]));
        assert!(stdout_is_json(&[], Some("libtest-json")));
        assert!(!stdout_is_json(
            &words(&["--message-format", "human"]),
            Some("libtest-json")
        ));
    }

    #[test]
    fn notices_are_placed_and_counted_per_binary() {
        let notices = github_notices(&sample());
        assert_eq!(
            notices,
            "::notice file=tests/gpu.rs,line=30,title=gpu-test skipped 2 GPU tests in my-crate%3A%3Agpu::needs 2 CUDA \
             devices, found 1 (CUDA_VISIBLE_DEVICES=0 hides the others); hint: run on a machine with at least 2 GPUs, \
             or unset CUDA_VISIBLE_DEVICES\n"
        );
    }

    #[test]
    fn the_report_path_is_json_and_absolute() {
        let error = ReportPath::choose(Some("gpu.xml".into())).unwrap_err();
        assert!(error.starts_with("GPU_TEST_REPORT=\"gpu.xml\": "), "{error}");
        let given = ReportPath::choose(Some("out/gpu.json".into())).unwrap();
        assert!(given.path.is_absolute() && given.path.ends_with("out/gpu.json"));
        let temporary = ReportPath::choose(None).unwrap();
        let dir = temporary.temporary.clone().unwrap();
        // In the runtime directory, which is this user's alone, not in a shared temporary one.
        let runtime = gpu_test_runtime::__companion::runtime_dir().unwrap();
        assert_eq!(dir.parent(), Some(runtime.as_path()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(temporary);
        assert!(!dir.exists());
    }

    #[test]
    fn a_report_is_read_only_when_it_is_another_file_than_before() {
        let dir = std::env::temp_dir().join(format!("cargo-gpu-test-identity-{}", std::process::id()));
        create_private_dir(&dir).unwrap();
        let path = dir.join("gpu.json");
        assert_eq!(read_new_report(&path, None), Ok(None), "none there");
        std::fs::write(&path, "earlier").unwrap();
        let (_held, before) = open_report(&path).unwrap().unwrap();
        assert_eq!(read_new_report(&path, Some(before)), Ok(None), "the same file");
        // As gpu-test writes it: a new file in the old one's place.
        std::fs::write(dir.join("next"), "this run's").unwrap();
        std::fs::rename(dir.join("next"), &path).unwrap();
        assert_eq!(
            read_new_report(&path, Some(before)),
            Ok(Some(b"this run's".to_vec()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leftovers_of_runs_long_gone_are_removed() {
        let runtime = std::env::temp_dir().join(format!("cargo-gpu-test-leftovers-{}", std::process::id()));
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(48 * 3600);
        // No process has an id past the kernel's limit (pid_max is at most 2^22).
        let gone = u32::MAX - 1;
        let make = |name: String, old: bool| {
            let dir = runtime.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            if old {
                std::fs::File::open(&dir)
                    .unwrap()
                    .set_modified(two_days_ago)
                    .unwrap();
            }
            dir
        };
        let stale = make(format!("cargo-gpu-test-{gone}-00000001"), true);
        let recent = make(format!("cargo-gpu-test-{gone}-00000002"), false);
        let running = make(format!("cargo-gpu-test-{}-00000003", std::process::id()), true);
        let other = make("reports".to_string(), true);
        remove_leftovers(&runtime);
        assert!(!stale.exists());
        assert!(recent.exists() && running.exists() && other.exists());
        std::fs::remove_dir_all(&runtime).unwrap();
    }

    #[test]
    fn a_directory_someone_put_in_the_way_is_not_used() {
        // Planted in advance at the name, as a link to a place of another user's choosing: refused.
        let elsewhere = std::env::temp_dir().join(format!("cargo-gpu-test-elsewhere-{}", std::process::id()));
        std::fs::create_dir_all(&elsewhere).unwrap();
        let planted = private_dir_name(&std::env::temp_dir(), 42);
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        let error = create_private_dir(&planted).unwrap_err();
        assert!(error.contains("cannot create a private directory"), "{error}");
        std::fs::remove_file(&planted).unwrap();
        std::fs::remove_dir(&elsewhere).unwrap();
    }
}
