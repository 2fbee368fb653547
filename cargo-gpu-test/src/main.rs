//! `cargo gpu-test`: the command-line companion of gpu-test.
//!
//! - `cargo gpu-test run [ARGS...]`: the tests under `cargo nextest run` (or `cargo test`), then
//!   every skipped GPU test with its reason and fix;
//! - `cargo gpu-test doctor [--json]`: why this machine can or cannot run GPU tests;
//! - `cargo gpu-test report FILE`: a JSON report for people or a CI job summary;
//! - `cargo gpu-test ledger FILES...`: GPU tests that never ran on a GPU across many runs;
//! - `cargo gpu-test compare OLD NEW`: GPU time per test and region, old against new.

#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "cargo-gpu-test supports Linux only (and WSL2, which is Linux): gpu-test finds the NVIDIA driver the way \
     Linux loads it"
);

/// `eprint!` that never panics: a run's last words (its skips, after the runner) still get as far
/// as they can where stderr is gone (a closed terminal), and the process ends as it should.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] with a line break.
macro_rules! say_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod compare;
mod files;
mod foreground;
mod ledger;
mod nextest_config;
mod render;
mod report;
mod run;
mod runner_args;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Honest GPU tests: run them, see why each skipped one was skipped, diagnose the machine, and
/// track which GPU tests ran where.
#[derive(Debug, Parser)]
#[command(name = "cargo-gpu-test", bin_name = "cargo gpu-test", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the tests (`cargo nextest run` when installed, else `cargo test`), then list every
    /// skipped GPU test with its reason and fix.
    ///
    /// ARGS go to the runner unchanged (`-p my-crate`, `--no-fail-fast`, `-- --exact name`, ...);
    /// this command's own options (`--runner`) come before them.
    /// The run writes a JSON report to GPU_TEST_REPORT, which must then end in .json, or to a
    /// private temporary file when it is unset. Exit status: the runner's (128 + the signal for a
    /// runner a signal ended), except that a nextest run in which every GPU test was skipped and
    /// no filter was given (nor a profile's default-filter applies) succeeds (nextest alone would
    /// say "no tests to run"); with GPU_TEST_STRICT=1 unmet tests fail instead. Ctrl-C is left to the runner, SIGTERM and SIGHUP
    /// are passed on to it, and once the skips are listed `run` ends by a termination it got, or
    /// by a Ctrl-C that ended the runner.
    Run {
        /// The test runner.
        #[arg(long, value_enum, default_value_t = run::Runner::Auto)]
        runner: run::Runner,
        /// Arguments for the runner.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Why this machine can or cannot run GPU tests: driver, devices, toolkit, environment,
    /// and each finding with its fix.
    ///
    /// Exit status: 0 when at least one CUDA device is usable, 1 when none is, 2 when the
    /// diagnosis cannot be written.
    Doctor {
        /// Print the diagnosis as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render a JSON report (GPU_TEST_REPORT=<path>.json) for people, or as Markdown for a CI
    /// job summary (`>> $GITHUB_STEP_SUMMARY`).
    Report {
        /// The JSON report.
        file: PathBuf,
        /// How to render it.
        #[arg(long, value_enum, default_value_t = render::Format::Text)]
        format: render::Format,
    },
    /// From the JSON reports of many runs and machines, list the GPU tests that never ran on a
    /// GPU (or never on a given compute capability or driver), with the last date each did.
    ///
    /// Exit status: 0 when every test ran as asked in some report, 1 when one never did, 2 when
    /// no report has a GPU test.
    Ledger {
        /// JSON reports.
        #[arg(required = true, value_name = "FILES")]
        files: Vec<PathBuf>,
        /// Count only runs on a device of this compute capability (`9.0` or `sm_90`).
        #[arg(long, value_name = "X.Y")]
        compute: Option<String>,
        /// Count only runs under this driver release, or one it prefixes (`580`, `580.65.06`).
        #[arg(long, value_name = "RELEASE")]
        driver: Option<String>,
        /// Count only reports written on this day (UTC) or later, `2026-11-01`: tests renamed
        /// or removed before it drop out of the ledger with their old reports.
        #[arg(long, value_name = "YYYY-MM-DD")]
        since: Option<String>,
        /// List every test, not only those that never ran as asked.
        #[arg(long)]
        all: bool,
    },
    /// Compare the GPU time (CUDA events) of two runs per test and region, flagging regions
    /// that got slower.
    ///
    /// Exit status: 1 with --fail-above when a region is slower by more than that, or a region of
    /// the old run is gone from the new one (a test renamed, or no longer run on a GPU), else 0;
    /// 2 with --fail-above when the old run has no GPU timings to compare against.
    Compare {
        /// The baseline's JSON report.
        old: PathBuf,
        /// The new run's JSON report.
        new: PathBuf,
        /// Flag regions slower by more than this many percent.
        #[arg(long, default_value = "10", value_name = "PERCENT")]
        threshold: String,
        /// Exit with status 1 when a region is slower by more than this many percent, or gone.
        #[arg(long, value_name = "PERCENT")]
        fail_above: Option<String>,
    },
}

fn main() -> ExitCode {
    // Run by cargo as `cargo-gpu-test gpu-test ...`, or directly as `cargo-gpu-test ...`.
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "gpu-test") {
        args.remove(1);
    }
    let cli = parse(args);
    let code = match execute(cli.command) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(message) => {
            say_line!("cargo gpu-test: error: {message}");
            ExitCode::from(2)
        }
    };
    // `run` ends by a signal it got, or by the Ctrl-C that ended its runner, once all is said.
    foreground::finish();
    code
}

/// Parses the command line. The arguments of `run` for the runner are taken as written: clap
/// drops a `--` that comes before any of them (`run -- --exact name`), which the runner needs.
fn parse(args: Vec<OsString>) -> Cli {
    let passed = runner_args(&args);
    let mut cli = Cli::parse_from(args);
    if let (Command::Run { args, .. }, Some(passed)) = (&mut cli.command, passed) {
        *args = passed;
    }
    cli
}

/// What follows `run` and its own options, as written; `None` for another command, or where
/// `run` is asked for help.
fn runner_args(args: &[OsString]) -> Option<Vec<OsString>> {
    if args.get(1).is_none_or(|command| command != "run") {
        return None;
    }
    let mut at = 2;
    while let Some(word) = args.get(at).map(|word| word.to_string_lossy()) {
        match word.as_ref() {
            "--runner" => at += 2,
            "-h" | "--help" => return None,
            _ if word.starts_with("--runner=") => at += 1,
            _ => break,
        }
    }
    Some(args.get(at..).unwrap_or_default().to_vec())
}

fn execute(command: Command) -> Result<i32, String> {
    match command {
        Command::Run { runner, args } => run::run(runner, &args),
        Command::Doctor { json } => {
            // Past the C library's exit handlers when the driver hung: a hung driver's own
            // handlers could wait forever.
            gpu_test_runtime::Diagnosis::new(gpu_test_runtime::probe()).print_and_exit(json, "cargo gpu-test")
        }
        Command::Report { file, format } => {
            print_out(&inert(&render::render(&report::load(&file)?, format)))?;
            Ok(0)
        }
        Command::Ledger {
            files,
            compute,
            driver,
            since,
            all,
        } => {
            let filter = ledger::Filter::new(compute.as_deref(), driver.as_deref())?;
            let since = since.as_deref().map(ledger::Since::new).transpose()?;
            // A file given twice (`a.json ./a.json`, or by a link) is one report.
            let mut seen = std::collections::HashSet::new();
            let files: Vec<&PathBuf> = files
                .iter()
                .filter(|f| {
                    use std::os::unix::fs::MetadataExt;
                    std::fs::metadata(f).map_or(true, |m| seen.insert((m.dev(), m.ino())))
                })
                .collect();
            let reports = files
                .iter()
                .map(|f| report::load(f))
                .collect::<Result<Vec<_>, _>>()?;
            let (reports, left_out) = match &since {
                Some(since) => {
                    let (kept, left_out) = since.keep(reports);
                    if kept.is_empty() {
                        return Err(format!(
                            "{} written on {} or later (the day --since gives)",
                            if left_out == 1 {
                                "the report was not".to_string()
                            } else {
                                format!("none of the {left_out} reports was")
                            },
                            since.day()
                        ));
                    }
                    (kept, left_out)
                }
                None => (reports, 0),
            };
            ledger::check_has_tests(&reports)?;
            let (text, missing) =
                ledger::render(&reports, &filter, all, since.as_ref().map(|s| (s, left_out)));
            print_out(&inert(&text))?;
            Ok(i32::from(missing))
        }
        Command::Compare {
            old,
            new,
            threshold,
            fail_above,
        } => {
            let threshold = compare::parse_percent("--threshold", &threshold)?;
            let fail_above = fail_above
                .map(|f| compare::parse_percent("--fail-above", &f))
                .transpose()?;
            let (old_path, old, new) = (&old, report::load(&old)?, report::load(&new)?);
            if fail_above.is_some() {
                compare::check_baseline(&old, old_path)?;
            }
            let (text, failed) = compare::render(&old, &new, threshold, fail_above);
            print_out(&inert(&text))?;
            Ok(i32::from(failed))
        }
    }
}

/// What `report`, `ledger` and `compare` print, with nothing a report's text (from another
/// machine, perhaps) could make a GitHub workflow command of where the output is a job's log.
fn inert(text: &str) -> String {
    gpu_test_runtime::__companion::without_workflow_commands(text)
}

/// Writes `text` to stdout. A reader that stopped reading (`| head`) ends the output quietly;
/// any other failure to write (a full disk) is an error.
fn print_out(text: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to standard output: {error}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run_of(words: &[&str]) -> (run::Runner, Vec<OsString>) {
        let args = words.iter().map(OsString::from).collect();
        let Command::Run { runner, args } = parse(args).command else {
            panic!("not run");
        };
        (runner, args)
    }

    #[test]
    fn run_passes_every_argument_through() {
        let (runner, args) = run_of(&[
            "cargo-gpu-test",
            "run",
            "-p",
            "my-crate",
            "--no-fail-fast",
            "--",
            "--exact",
            "x",
        ]);
        assert_eq!(runner, run::Runner::Auto);
        assert_eq!(args, ["-p", "my-crate", "--no-fail-fast", "--", "--exact", "x"]);
    }

    #[test]
    fn a_double_dash_right_after_run_reaches_the_runner() {
        let (runner, args) = run_of(&["cargo-gpu-test", "run", "--", "--exact", "x"]);
        assert_eq!(runner, run::Runner::Auto);
        assert_eq!(args, ["--", "--exact", "x"]);
        for words in [
            &[
                "cargo-gpu-test",
                "run",
                "--runner",
                "cargo-test",
                "--",
                "--exact",
                "x",
            ][..],
            &[
                "cargo-gpu-test",
                "run",
                "--runner=cargo-test",
                "--",
                "--exact",
                "x",
            ][..],
        ] {
            let (runner, args) = run_of(words);
            assert_eq!(runner, run::Runner::CargoTest, "{words:?}");
            assert_eq!(args, ["--", "--exact", "x"], "{words:?}");
        }
        let (_, args) = run_of(&["cargo-gpu-test", "run"]);
        assert!(args.is_empty());
    }
}
