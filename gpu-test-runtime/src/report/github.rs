//! On GitHub Actions: annotations for skips and strict failures, and the job summary, each
//! reason once per run however many processes the run has.

use std::io::Write;

use super::model::{Entry, Location};

use super::state::run_dir;
use crate::decide::skip::SkipReason;
use crate::settings::Settings;
use crate::util::files::{stable_hash, update_locked};
use crate::util::format::{MarkdownPlace, markdown_code, markdown_text};
use crate::util::stderr::write_stderr;

/// Marks `keys` as emitted for this run and returns those that were not already; all of them
/// where the run's state cannot be read (better twice than never).
fn first_time(settings: &Settings, file: &str, keys: Vec<String>) -> Vec<String> {
    first_time_known(settings, file, keys.clone()).unwrap_or(keys)
}

/// [`first_time`], or `None` where the run's state cannot be read.
fn first_time_known(settings: &Settings, file: &str, keys: Vec<String>) -> Option<Vec<String>> {
    let dir = run_dir(settings).ok()?;
    update_locked(&dir.join(file), |text| {
        let seen: Vec<&str> = text.lines().collect();
        let fresh: Vec<String> = keys
            .iter()
            .filter(|k| !seen.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut next = text.clone();
        for key in &fresh {
            next.push_str(key);
            next.push('\n');
        }
        (next, fresh)
    })
    .ok()
}

/// Where the annotations are written: the runner reads workflow commands from both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// Standard output, where GitHub documents them.
    Stdout,
    /// Standard error, when stdout carries libtest's JSON, which a line of other text would break.
    Stderr,
}

/// On GitHub Actions: one `::notice` per distinct skip reason of this test binary, placed on the
/// first test it skipped and counting the binary's tests (each binary of a run has its own, so
/// none undercounts), and in strict mode one `::error` per failure on the failing test; on
/// `channel`. A notice already emitted in this run (by another process of the same binary) is not
/// repeated.
pub(crate) fn annotate(
    settings: &Settings,
    suite: &str,
    groups: &[(&SkipReason, usize, Location)],
    failures: &[&Entry],
    channel: Channel,
) {
    if !settings.github.actions {
        return;
    }
    let mut out = String::new();
    let keys = groups.iter().map(|(reason, _, _)| key(suite, reason)).collect();
    let fresh = first_time(settings, "github-notices", keys);
    for (reason, count, at) in groups {
        if fresh.contains(&key(suite, reason)) {
            let message = format!("{}; hint: {}", reason.reason, reason.hint);
            out.push_str(&skip_notice(suite, *count, Some((at.file, at.line)), &message));
        }
    }
    if settings.strict {
        for entry in failures {
            let mut message = entry.reason().unwrap_or("failed").to_string();
            if let Some(hint) = entry.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            let at = entry.file.as_deref().zip(entry.line);
            let title = format!("gpu-test: {} failed", entry.name);
            out.push_str(&workflow_command("error", at, &title, &message));
        }
    }
    match channel {
        Channel::Stdout => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
        }
        Channel::Stderr => write_stderr(&out),
    }
}

/// The `::notice` for `count` tests of the test binary `suite` skipped for one reason (`message`:
/// the reason and its hint), placed on the first of them: what `cargo gpu-test run` also emits
/// after a nextest run, whose list phase's output nextest discards.
pub fn skip_notice(suite: &str, count: usize, at: Option<(&str, u32)>, message: &str) -> String {
    let title = format!("gpu-test skipped {} in {suite}", tests(count));
    workflow_command("notice", at, &title, message)
}

/// `::kind file=F,line=L,title=T::message`, escaped, with its newline.
fn workflow_command(kind: &str, at: Option<(&str, u32)>, title: &str, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some((file, line)) = at {
        properties.push(format!("file={}", escape_property(file)));
        properties.push(format!("line={line}"));
    }
    properties.push(format!("title={}", escape_property(title)));
    format!("::{kind} {}::{}\n", properties.join(","), escape_data(message))
}

fn tests(count: usize) -> String {
    if count == 1 {
        "1 GPU test".to_string()
    } else {
        format!("{count} GPU tests")
    }
}

fn key(suite: &str, reason: &SkipReason) -> String {
    format!("{:016x}", stable_hash(&format!("{suite}\n{}", reason.reason)))
}

/// On GitHub Actions, appends each distinct skip reason of this test binary (once per run) to
/// the job summary (`GITHUB_STEP_SUMMARY`). nextest discards what its list phase prints, so
/// under nextest this is where the reasons of skipped tests show up.
pub(crate) fn step_summary(settings: &Settings, suite: &str, groups: &[(&SkipReason, usize)]) {
    let Some(path) = settings
        .github
        .step_summary
        .as_ref()
        .filter(|_| settings.github.actions)
    else {
        return;
    };
    let keys = groups.iter().map(|(reason, _)| key(suite, reason)).collect();
    let fresh = first_time(settings, "github-summary", keys);
    let mut text = String::new();
    for (reason, count) in groups {
        if fresh.contains(&key(suite, reason)) {
            text.push_str(&format!(
                "- **gpu-test skipped {} in {}**: {} (fix: {})\n",
                tests(*count),
                markdown_code(suite, MarkdownPlace::Line),
                markdown_text(&reason.reason, MarkdownPlace::Line),
                markdown_text(&reason.hint, MarkdownPlace::Line)
            ));
        }
    }
    append(settings, path, &text);
}

/// On GitHub Actions, under nextest's run phase with the default libtest harness: a line of the
/// job summary naming the test (`push_name` writes its name) of `suite`, skipped for `reason`, once per run (a retry adds none).
/// Such a test passes (libtest has no skip at run time), and nextest shows no one what a passing
/// process printed, its skip line and `::notice` included.
pub(crate) fn step_summary_of_test(
    settings: &Settings,
    suite: &str,
    push_name: &dyn Fn(&mut String),
    reason: &SkipReason,
) {
    let Some(path) = settings.github.step_summary.as_ref().filter(|_| {
        settings.github.actions && settings.nextest.phase.as_deref() == Some("run")
    }) else {
        return;
    };
    let mut test = String::new();
    push_name(&mut test);
    let key = format!("{:016x}", stable_hash(&format!("{suite}\n{test}\n{}", reason.reason)));
    if first_time(settings, "github-summary", vec![key]).is_empty() {
        return;
    }
    let line = format!(
        "- **gpu-test skipped {} in {}** (it shows as passed): {} (fix: {})\n",
        markdown_code(&test, MarkdownPlace::Line),
        markdown_code(suite, MarkdownPlace::Line),
        markdown_text(&reason.reason, MarkdownPlace::Line),
        markdown_text(&reason.hint, MarkdownPlace::Line)
    );
    append(settings, path, &line);
}

/// How large the job summary may grow with gpu-test's lines: GitHub drops a step's summary of
/// more than 1 MiB whole, with whatever else the step wrote there.
const SUMMARY_LIMIT: u64 = 512 << 10;

/// Appends `text` to the job summary at `path`, if there is any, unless the summary is past
/// [`SUMMARY_LIMIT`]. Once the summary reaches it (with gpu-test's lines or before them), a line
/// says that later lines are left out, once per run however many processes find it full.
fn append(settings: &Settings, path: &std::path::Path, text: &str) {
    if text.is_empty() {
        return;
    }
    let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) else {
        return;
    };
    let size = file.metadata().map_or(0, |metadata| metadata.len());
    if size < SUMMARY_LIMIT {
        let _ = file.write_all(text.as_bytes());
    }
    let past = size.saturating_add(text.len() as u64) >= SUMMARY_LIMIT;
    // Once per run; where the run's state cannot tell, by the append that takes it past.
    if past
        && first_time_known(settings, "github-summary", vec![SUMMARY_FULL.to_string()])
            .map_or(size < SUMMARY_LIMIT, |fresh| !fresh.is_empty())
    {
        let _ = file.write_all(
            format!(
                "- **gpu-test lists no more skips here**: the job summary passed {} KiB (GitHub drops one of \
                 more than 1 MiB whole); the run's report (GPU_TEST_REPORT) has every test\n",
                SUMMARY_LIMIT >> 10
            )
            .as_bytes(),
        );
    }
}

/// The key under which a run records that it said the job summary is full (skip reasons' keys
/// are hex digits, so none can be this).
const SUMMARY_FULL: &str = "summary-full";

/// Escapes a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn annotations_sit_on_the_test() {
        assert_eq!(
            workflow_command(
                "notice",
                Some(("tests/gpu.rs", 12)),
                "gpu-test skipped 2 GPU tests in a::gpu",
                "no driver\nat all"
            ),
            "::notice file=tests/gpu.rs,line=12,title=gpu-test skipped 2 GPU tests in a%3A%3Agpu::no driver%0Aat all\n"
        );
        assert_eq!(workflow_command("error", None, "t", "m"), "::error title=t::m\n");
    }

    /// The job summary stops growing before GitHub would drop it whole, saying so once per run:
    /// also where it was full before gpu-test's first line, and from a second process.
    #[test]
    fn the_job_summary_stays_below_githubs_limit() {
        let dir = crate::util::files::scratch_dir("step-summary");
        std::fs::create_dir_all(&dir).unwrap();
        let in_run = |run: &str| Settings {
            runtime_dir: dir.join("runtime"),
            nextest: crate::settings::Nextest {
                run_id: Some(run.to_string()),
                ..Default::default()
            },
            ..Settings::default()
        };
        let (settings, other_process) = (in_run("one"), in_run("one"));
        let path = dir.join("summary.md");
        std::fs::write(&path, "# Earlier steps\n").unwrap();
        let line = format!("- {}\n", "x".repeat(1000));
        for _ in 0..2000 {
            append(&settings, &path, &line);
        }
        append(&other_process, &path, &line);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < (SUMMARY_LIMIT as usize) + 2 * line.len(), "{} bytes", text.len());
        assert!(text.starts_with("# Earlier steps\n"));
        assert_eq!(text.matches("gpu-test lists no more skips here").count(), 1);
        assert!(text.ends_with("has every test\n"));

        // Another step's lines filled it: the first line gpu-test leaves out says so.
        let full = dir.join("full.md");
        let earlier = "y".repeat(SUMMARY_LIMIT as usize);
        std::fs::write(&full, &earlier).unwrap();
        let next_run = in_run("two");
        append(&next_run, &full, &line);
        append(&next_run, &full, &line);
        let text = std::fs::read_to_string(&full).unwrap();
        assert!(!text.contains("- xxx"), "a line past the limit was written");
        assert_eq!(text.matches("gpu-test lists no more skips here").count(), 1, "{}", &text[earlier.len()..]);

        // Where the run's state cannot be kept (its directory cannot be made), the append that
        // takes the summary past the limit says so, and no later one.
        let stateless = Settings {
            runtime_dir: full.join("not-a-directory"),
            ..Settings::default()
        };
        let unkept = dir.join("unkept.md");
        for _ in 0..1000 {
            append(&stateless, &unkept, &line);
        }
        let text = std::fs::read_to_string(&unkept).unwrap();
        assert_eq!(text.matches("gpu-test lists no more skips here").count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
