//! Every environment variable gpu-test reads about itself and the tools around it, all read
//! here, once per process. (The CUDA variables are facts about the machine: the probe records
//! them.)
//!
//! Unset or empty means the default; any other value that is not accepted is an error naming the
//! variable, the value and what is accepted, and no GPU test runs: gpu-test's harness stops the
//! test binary with it before any test (exit status 101), and under the default harness each GPU
//! test fails with it. Never a silent default. A `GPU_TEST_*` variable
//! gpu-test does not know is a warning (a typo would otherwise silently turn strict mode off).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::files::movable_by_others;
use crate::util::format::{parse_duration, parse_duration_or_zero};
use crate::util::os::user_id;
use crate::util::suggest::nearest;

/// Every `GPU_TEST_*` variable gpu-test reads (what each accepts is in its error message and the
/// README).
pub(crate) const VARIABLES: &[&str] = &[
    "GPU_TEST_STRICT",
    "GPU_TEST_LEAK_CHECK",
    "GPU_TEST_REPORT",
    "GPU_TEST_TESTS_PER_DEVICE",
    "GPU_TEST_TIMEOUT",
    "GPU_TEST_LEASE_TIMEOUT",
    "GPU_TEST_LEASE_NOTICE",
    "GPU_TEST_PROBE_TIMEOUT",
    "GPU_TEST_RUNTIME_DIR",
    "GPU_TEST_SYSTEM_ROOT",
];

/// The parsed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `GPU_TEST_STRICT`: an unmet requirement fails the test instead of skipping it.
    pub strict: bool,
    /// `GPU_TEST_LEAK_CHECK`: a test that leaves device memory allocated fails.
    pub leak_check: bool,
    /// `GPU_TEST_REPORT`: where to write the report of every GPU test, and in which format.
    pub report: Option<ReportTarget>,
    /// `GPU_TEST_TESTS_PER_DEVICE`: how many tests may hold one device at a time.
    pub tests_per_device: u32,
    /// `GPU_TEST_TIMEOUT`: the timeout of a GPU test without a `timeout` key of its own.
    pub timeout: Option<Duration>,
    /// `GPU_TEST_LEASE_TIMEOUT`: how long a test waits for device leases before failing.
    pub lease_timeout: Duration,
    /// `GPU_TEST_LEASE_NOTICE`: how long a test waits for device leases before saying so.
    pub lease_notice: Duration,
    /// `GPU_TEST_RUNTIME_DIR`, else a default (see `default_runtime_dir`): where lease locks and
    /// per-run state live.
    pub runtime_dir: PathBuf,
    /// Whether `GPU_TEST_RUNTIME_DIR` chose it.
    pub runtime_dir_is_set: bool,
    /// `GPU_TEST_SYSTEM_ROOT`: read `/proc`, `/dev` and `/etc/ld.so.conf`, and look for toolkits
    /// and system Pythons, under this directory, and load the driver only from `LD_LIBRARY_PATH`,
    /// as if the machine had nothing else.
    pub system_root: Option<PathBuf>,
    /// `GPU_TEST_*` variables that are set but not known, with a suggestion when one is close.
    pub unknown: Vec<String>,
    /// What nextest tells its test processes.
    pub nextest: Nextest,
    /// What GitHub Actions tells the processes of a job.
    pub github: Github,
}

/// `NEXTEST_TEST_PHASE`, `NEXTEST_RUN_ID`, `NEXTEST_BINARY_ID`, `NEXTEST_ATTEMPT`,
/// `NEXTEST_ATTEMPT_ID` and `NEXTEST_STRESS_CURRENT`, set by nextest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Nextest {
    /// `list` or `run`, when nextest started this process.
    pub phase: Option<String>,
    /// The run's id: every process of one `cargo nextest run` shares it.
    pub run_id: Option<String>,
    /// The test binary's id (`package::target`).
    pub binary_id: Option<String>,
    /// Which attempt at the test this process is, from 1 (`--retries` makes more).
    pub attempt: Option<u32>,
    /// `NEXTEST_ATTEMPT_ID`: names this attempt apart from every other of the run, the
    /// iterations of `--stress-count` too, whose attempts count from 1 again.
    pub attempt_id: Option<String>,
    /// `NEXTEST_STRESS_CURRENT`: which iteration of `--stress-count` this is, counted from 0.
    pub stress_iteration: Option<u32>,
}

/// `GITHUB_ACTIONS` and `GITHUB_STEP_SUMMARY`, set by GitHub Actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Github {
    /// `GITHUB_ACTIONS=true`: workflow commands are read from stdout.
    pub actions: bool,
    /// The job summary file, on GitHub Actions.
    pub step_summary: Option<PathBuf>,
}

/// A report file and its format, chosen by the extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportTarget {
    /// The path, as given.
    pub path: PathBuf,
    /// JUnit XML or JSON.
    pub format: ReportFormat,
}

/// The report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    /// `.xml`: JUnit, as CI test-report viewers read it.
    Junit,
    /// `.json`.
    Json,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            strict: false,
            leak_check: false,
            report: None,
            tests_per_device: 1,
            timeout: None,
            lease_timeout: Duration::from_secs(600),
            lease_notice: Duration::from_secs(3),
            runtime_dir: std::env::temp_dir().join(format!("gpu-test-{}", user_id())),
            runtime_dir_is_set: false,
            system_root: None,
            unknown: Vec::new(),
            nextest: Nextest::default(),
            github: Github::default(),
        }
    }
}

/// A variable whose value is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SettingError {
    /// The variable's name.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What would be accepted, and why this value is not.
    pub accepted: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}=\"{}\" is not valid: {}",
            self.variable, self.value, self.accepted
        )
    }
}

impl std::error::Error for SettingError {}

/// The settings of this process, read once. `Err` holds every invalid variable.
pub(crate) fn settings() -> Result<&'static Settings, &'static [SettingError]> {
    static SETTINGS: OnceLock<Result<Settings, Vec<SettingError>>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let present: Vec<String> = std::env::vars_os()
                .map(|(k, _)| k.to_string_lossy().into_owned())
                .filter(|k| k.starts_with("GPU_TEST_"))
                .collect();
            let not_text = not_text(|name| std::env::var_os(name));
            let parsed = Settings::parse(
                |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
                present.iter().map(String::as_str),
            );
            match parsed {
                Ok(settings) if not_text.is_empty() => Ok(settings),
                Ok(_) => Err(not_text),
                Err(mut errors) => {
                    errors.retain(|error| not_text.iter().all(|bytes| bytes.variable != error.variable));
                    Err(not_text.into_iter().chain(errors).collect())
                }
            }
        })
        .as_ref()
        .map_err(Vec::as_slice)
}

/// An error for each gpu-test variable whose value (as `lookup` finds it) is not UTF-8 text: read
/// as text, a path would name another file than the one given (and `cargo gpu-test run`, which
/// keeps the bytes, would look for the report where no test wrote it).
fn not_text(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<SettingError> {
    VARIABLES
        .iter()
        .filter_map(|&variable| {
            let value = lookup(variable)?;
            value.to_str().is_none().then(|| SettingError {
                variable,
                value: value.to_string_lossy().into_owned(),
                accepted: "the value is not UTF-8 text (each byte that is not is shown as \u{fffd}); gpu-test \
                           reads its variables as text: give it in UTF-8"
                    .into(),
            })
        })
        .collect()
}

/// How long the probe waits for the driver by default. Initialising the driver without
/// persistence mode brings up every GPU, which takes seconds per GPU (tens of seconds on an
/// 8-GPU machine); two minutes leaves room for that and still ends a run on a wedged GPU.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether `dir` is a directory of this user's (a home that is `/`, or one that does not exist,
/// as a container may give a user without an account, is not a place to keep files).
fn is_own_directory(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|metadata| metadata.is_dir() && metadata.uid() == user_id())
}

/// The runtime directory when `GPU_TEST_RUNTIME_DIR` is unset: `$XDG_RUNTIME_DIR/gpu-test` where
/// that is this user's; else the home's cache, `$HOME/.cache/gpu-test`, where it exists already;
/// else `temp` (`<temp>/gpu-test-<uid>`), unless another user could take its place: a relative
/// temporary directory, one others may write to without the sticky bit (a container's /tmp
/// mounted from a Kubernetes emptyDir: they could move this user's directory away and put theirs
/// in its place), or a `gpu-test-<uid>` another user made first (a name anyone can guess: they
/// would otherwise block every GPU test); then the home's cache. A cache once made is kept, so
/// that another user who removes what they made cannot split this user's runs between two
/// directories whose leases do not see each other. Where the home will not do, `temp` stays, and
/// its refusal names the real cause.
fn default_runtime_dir(get: &dyn Fn(&str) -> Option<String>, temp: PathBuf) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    // `sudo -E` and `su` keep the XDG_RUNTIME_DIR of the user they came from.
    if let Some(xdg) = get("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && is_own_directory(dir))
    {
        return xdg.join("gpu-test");
    }
    let cache = get("HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute() && is_own_directory(home))
        .map(|home| home.join(".cache").join("gpu-test"))
        .filter(|cache| movable_by_others(cache).is_none());
    if let Some(cache) = cache.as_ref().filter(|cache| is_own_directory(cache)) {
        return cache.clone();
    }
    let taken_by_others = std::fs::symlink_metadata(&temp)
        .is_ok_and(|metadata| !metadata.is_dir() || metadata.uid() != user_id());
    if temp.is_absolute() && movable_by_others(&temp).is_none() && !taken_by_others {
        return temp;
    }
    cache.unwrap_or(temp)
}

/// `GPU_TEST_PROBE_TIMEOUT`, read without failing: the probe needs it and must never fail (an
/// invalid value is reported through [`settings`], and the probe uses the default meanwhile).
/// The only reader of the variable's value.
pub(crate) fn probe_timeout() -> Duration {
    std::env::var("GPU_TEST_PROBE_TIMEOUT")
        .ok()
        .and_then(|value| parse_duration(&value))
        .unwrap_or(PROBE_TIMEOUT)
}

/// `RUST_MIN_STACK`, the stack size Rust gives the threads it starts, read as the standard
/// library reads it (a number of bytes; anything else is no setting).
pub(crate) fn rust_min_stack() -> Option<usize> {
    std::env::var("RUST_MIN_STACK").ok()?.trim().parse().ok()
}

/// `GPU_TEST_SYSTEM_ROOT`, read without validation: the probe needs it and must never fail.
pub(crate) fn system_root() -> Option<PathBuf> {
    std::env::var_os("GPU_TEST_SYSTEM_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Settings {
    /// Why the runtime directory cannot be used (`error`), and what to do about it.
    pub(crate) fn unusable_runtime_dir(&self, error: &str) -> String {
        let advice = if self.runtime_dir_is_set {
            "GPU_TEST_RUNTIME_DIR names it: give a directory of this user's own"
        } else {
            "set GPU_TEST_RUNTIME_DIR to a directory of this user's own"
        };
        format!("the runtime directory is not usable: {error}; {advice}")
    }

    /// Parses the variables through `lookup`; `present` lists every `GPU_TEST_*` name set.
    pub(crate) fn parse<'a>(
        lookup: impl Fn(&str) -> Option<String>,
        present: impl Iterator<Item = &'a str>,
    ) -> Result<Settings, Vec<SettingError>> {
        let mut settings = Settings::default();
        let mut errors = Vec::new();
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut fail = |variable: &'static str, value: &str, accepted: String| {
            errors.push(SettingError {
                variable,
                value: value.to_string(),
                accepted,
            })
        };

        if let Some(value) = get("GPU_TEST_STRICT") {
            match value.as_str() {
                "1" | "true" => settings.strict = true,
                "0" | "false" => settings.strict = false,
                _ => fail(
                    "GPU_TEST_STRICT",
                    &value,
                    "accepted values are unset, empty, 0, 1, true, false".into(),
                ),
            }
        }
        if let Some(value) = get("GPU_TEST_LEAK_CHECK") {
            match value.as_str() {
                "1" | "true" => settings.leak_check = true,
                "0" | "false" => settings.leak_check = false,
                _ => fail(
                    "GPU_TEST_LEAK_CHECK",
                    &value,
                    "accepted values are unset, empty, 0, 1, true, false".into(),
                ),
            }
        }
        if let Some(value) = get("GPU_TEST_REPORT") {
            let path = PathBuf::from(&value);
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("xml") => Some(ReportFormat::Junit),
                Some("json") => Some(ReportFormat::Json),
                _ => None,
            };
            match format {
                Some(format) => settings.report = Some(ReportTarget { path, format }),
                None => fail(
                    "GPU_TEST_REPORT",
                    &value,
                    "the file name must end in .xml (JUnit) or .json".into(),
                ),
            }
        }
        if let Some(value) = get("GPU_TEST_TESTS_PER_DEVICE") {
            match value.trim().parse::<u32>() {
                Ok(n) if (1..=1024).contains(&n) => settings.tests_per_device = n,
                _ => fail(
                    "GPU_TEST_TESTS_PER_DEVICE",
                    &value,
                    "expected a whole number from 1 to 1024: how many tests may use one device at a time"
                        .into(),
                ),
            }
        }
        let mut duration = |variable: &'static str, zero: bool, examples: &str| -> Option<Duration> {
            let value = get(variable)?;
            let parsed = match value.trim() {
                "0" if zero => Some(Duration::ZERO),
                // `0s` or `0ms` is zero too, where zero is allowed.
                text if zero => parse_duration_or_zero(text),
                text => parse_duration(text),
            };
            if parsed.is_none() {
                let accepted = if zero {
                    format!("expected 0 (at once) or a duration of at least 1ms such as {examples} (units ms, s, m, h)")
                } else {
                    format!("expected a duration of at least 1ms such as {examples} (units ms, s, m, h)")
                };
                fail(variable, &value, accepted);
            }
            parsed
        };
        settings.timeout = duration("GPU_TEST_TIMEOUT", false, "30s, 10m or 1h");
        if let Some(timeout) = duration("GPU_TEST_LEASE_TIMEOUT", false, "30s, 500ms, 10m or 1h") {
            settings.lease_timeout = timeout;
        }
        if let Some(notice) = duration("GPU_TEST_LEASE_NOTICE", true, "3s, 500ms or 1m") {
            settings.lease_notice = notice;
        }
        // Checked here; read by the probe itself through probe_timeout(), which must never fail.
        duration("GPU_TEST_PROBE_TIMEOUT", false, "120s, 30s or 5m");
        if let Some(value) = get("GPU_TEST_RUNTIME_DIR") {
            let dir = PathBuf::from(&value);
            if dir.is_absolute() {
                settings.runtime_dir = dir;
                settings.runtime_dir_is_set = true;
            } else {
                fail(
                    "GPU_TEST_RUNTIME_DIR",
                    &value,
                    "expected an absolute path: every test process of a run must find the same directory, \
                     whatever its working directory"
                        .into(),
                );
            }
        } else {
            settings.runtime_dir = default_runtime_dir(&get, settings.runtime_dir);
        }
        if let Some(value) = get("GPU_TEST_SYSTEM_ROOT") {
            let root = PathBuf::from(&value);
            if root.is_dir() {
                settings.system_root = Some(root);
            } else {
                fail(
                    "GPU_TEST_SYSTEM_ROOT",
                    &value,
                    "expected an existing directory to read /proc and /dev under".into(),
                );
            }
        }
        settings.nextest = Nextest {
            phase: get("NEXTEST_TEST_PHASE"),
            run_id: get("NEXTEST_RUN_ID"),
            binary_id: get("NEXTEST_BINARY_ID"),
            // nextest's own variable: one that cannot be read is taken as the first attempt.
            attempt: get("NEXTEST_ATTEMPT").and_then(|value| value.trim().parse().ok()).filter(|&n| n >= 1),
            attempt_id: get("NEXTEST_ATTEMPT_ID"),
            stress_iteration: get("NEXTEST_STRESS_CURRENT").and_then(|value| value.trim().parse().ok()),
        };
        settings.github = Github {
            actions: get("GITHUB_ACTIONS").as_deref() == Some("true"),
            step_summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        };
        for name in present {
            if !VARIABLES.contains(&name) {
                settings.unknown.push(describe_unknown(name));
            }
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

fn describe_unknown(name: &str) -> String {
    let close = nearest(name, VARIABLES)
        .map(|k| format!("; did you mean {k}?"))
        .unwrap_or_default();
    format!(
        "{name} is set but is not a gpu-test variable{close} (known: {})",
        VARIABLES.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, Vec<SettingError>> {
        Settings::parse(
            |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()),
            vars.iter().map(|(k, _)| *k),
        )
    }

    #[test]
    fn a_value_that_is_not_text_is_an_error_naming_its_variable() {
        use std::os::unix::ffi::OsStringExt;
        let errors = not_text(|name| match name {
            "GPU_TEST_RUNTIME_DIR" => Some(std::ffi::OsString::from_vec(b"/run/g\xffpu".to_vec())),
            "GPU_TEST_STRICT" => Some("1".into()),
            _ => None,
        });
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["GPU_TEST_RUNTIME_DIR=\"/run/g\u{fffd}pu\" is not valid: the value is not UTF-8 text (each byte that \
              is not is shown as \u{fffd}); gpu-test reads its variables as text: give it in UTF-8"]
        );
    }

    #[test]
    fn unset_and_empty_mean_default() {
        assert_eq!(parse(&[]).unwrap(), Settings::default());
        assert_eq!(
            parse(&[("GPU_TEST_STRICT", ""), ("GPU_TEST_REPORT", "")]).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn leak_check_is_on_or_off() {
        assert!(parse(&[("GPU_TEST_LEAK_CHECK", "1")]).unwrap().leak_check);
        assert!(!parse(&[("GPU_TEST_LEAK_CHECK", "")]).unwrap().leak_check);
        let errors = parse(&[("GPU_TEST_LEAK_CHECK", "yes")]).unwrap_err();
        assert!(errors[0].to_string().starts_with("GPU_TEST_LEAK_CHECK=\"yes\" is not valid"), "{}", errors[0]);
    }

    #[test]
    fn strict_accepts_exactly_the_documented_values() {
        for (value, strict) in [("1", true), ("true", true), ("0", false), ("false", false)] {
            assert_eq!(
                parse(&[("GPU_TEST_STRICT", value)]).unwrap().strict,
                strict,
                "{value}"
            );
        }
        for bad in ["yes", "TRUE", "2", " 1"] {
            let errors = parse(&[("GPU_TEST_STRICT", bad)]).unwrap_err();
            assert_eq!(
                errors[0].to_string(),
                format!(
                    "GPU_TEST_STRICT=\"{bad}\" is not valid: accepted values are unset, empty, 0, 1, true, false"
                )
            );
        }
    }

    #[test]
    fn report_format_follows_the_extension() {
        let report = parse(&[("GPU_TEST_REPORT", "out/r.xml")])
            .unwrap()
            .report
            .unwrap();
        assert_eq!(report.format, ReportFormat::Junit);
        let report = parse(&[("GPU_TEST_REPORT", "r.json")]).unwrap().report.unwrap();
        assert_eq!(report.format, ReportFormat::Json);
        let errors = parse(&[("GPU_TEST_REPORT", "r.txt")]).unwrap_err();
        assert!(
            errors[0]
                .to_string()
                .contains("must end in .xml (JUnit) or .json")
        );
    }

    #[test]
    fn numbers_and_durations_are_checked() {
        assert_eq!(
            parse(&[("GPU_TEST_TESTS_PER_DEVICE", "4")])
                .unwrap()
                .tests_per_device,
            4
        );
        assert!(parse(&[("GPU_TEST_TESTS_PER_DEVICE", "0")]).is_err());
        assert!(parse(&[("GPU_TEST_TESTS_PER_DEVICE", "many")]).is_err());
        assert_eq!(
            parse(&[("GPU_TEST_LEASE_TIMEOUT", "90s")]).unwrap().lease_timeout,
            Duration::from_secs(90)
        );
        assert_eq!(
            parse(&[("GPU_TEST_LEASE_TIMEOUT", "2m")]).unwrap().lease_timeout,
            Duration::from_secs(120)
        );
        assert!(parse(&[("GPU_TEST_LEASE_TIMEOUT", "0s")]).is_err());
        assert_eq!(parse(&[]).unwrap().timeout, None);
        assert_eq!(parse(&[("GPU_TEST_TIMEOUT", "")]).unwrap().timeout, None);
        assert_eq!(
            parse(&[("GPU_TEST_TIMEOUT", "1m 30s")]).unwrap().timeout,
            Some(Duration::from_secs(90))
        );
        // Less than a millisecond is refused, as the `timeout` key refuses it.
        for bad in ["0", "soon", "500us", "1ns"] {
            let errors = parse(&[("GPU_TEST_TIMEOUT", bad)]).unwrap_err();
            let error = errors[0].to_string();
            assert!(
                error.contains("GPU_TEST_TIMEOUT") && error.contains("expected a duration of at least 1ms"),
                "{error}"
            );
        }
        for zero in ["0", "0s", "0ms"] {
            assert_eq!(
                parse(&[("GPU_TEST_LEASE_NOTICE", zero)]).unwrap().lease_notice,
                Duration::ZERO,
                "{zero}"
            );
        }
        assert_eq!(
            parse(&[("GPU_TEST_LEASE_NOTICE", "500ms")]).unwrap().lease_notice,
            Duration::from_millis(500)
        );
        assert!(parse(&[("GPU_TEST_LEASE_NOTICE", "later")]).is_err());
        assert!(parse(&[("GPU_TEST_LEASE_NOTICE", "10us")]).is_err());
        assert_eq!(
            parse(&[("GPU_TEST_TIMEOUT", "1500us")]).unwrap().timeout,
            Some(Duration::from_micros(1500))
        );
        assert!(
            parse(&[("GPU_TEST_RUNTIME_DIR", "relative/dir")]).unwrap_err()[0]
                .to_string()
                .contains("expected an absolute path")
        );
        assert!(parse(&[("GPU_TEST_LEASE_TIMEOUT", "soon")]).is_err());
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let errors = parse(&[("GPU_TEST_STRICT", "yes"), ("GPU_TEST_REPORT", "r.txt")]).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn unknown_variables_are_named_with_a_suggestion() {
        let settings = parse(&[("GPU_TEST_STIRCT", "1")]).unwrap();
        assert!(!settings.strict);
        assert!(settings.unknown[0].contains(
            "GPU_TEST_STIRCT is set but is not a gpu-test variable; did you mean GPU_TEST_STRICT?"
        ));
    }
}
