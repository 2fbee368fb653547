//! Telling people about skips after a run: the grouped summary on stderr, and on GitHub Actions,
//! annotations and the job summary.

use std::io::Write;

use crate::libtest::write_stderr;
use crate::report::Entry;
use crate::run_state;
use crate::settings::Settings;
use crate::skip::SkipReason;

/// `gpu-test: 7 skipped: 5 x <reason>, 2 x <reason>` and the distinct fixes.
pub fn skip_summary(groups: &[(&SkipReason, usize)]) -> Option<String> {
    if groups.is_empty() {
        return None;
    }
    let total: usize = groups.iter().map(|g| g.1).sum();
    let reasons: Vec<String> = groups
        .iter()
        .map(|(reason, n)| format!("{n} x {}", reason.reason))
        .collect();
    let mut hints: Vec<&str> = Vec::new();
    for (reason, _) in groups {
        if !reason.hint.is_empty() && !hints.contains(&reason.hint.as_str()) {
            hints.push(&reason.hint);
        }
    }
    let mut text = format!("gpu-test: {total} skipped: {}\n", reasons.join(", "));
    if !hints.is_empty() {
        text.push_str(&format!("gpu-test: to run them: {}\n", hints.join("; ")));
    }
    Some(text)
}

/// Prints [`skip_summary`] to stderr, if anything was skipped.
pub fn print_skip_summary(groups: &[(&SkipReason, usize)]) {
    if let Some(text) = skip_summary(groups) {
        write_stderr(&text);
    }
}

fn on_github() -> bool {
    std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")
}

/// Marks `keys` as emitted for this run and returns those that were not already.
fn first_time(settings: &Settings, file: &str, keys: Vec<String>) -> Vec<String> {
    let Ok(dir) = run_state::run_dir(settings) else {
        return keys;
    };
    run_state::update_locked(&dir.join(file), |text| {
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
    .unwrap_or(keys)
}

/// On GitHub Actions: one `::notice` per distinct skip reason in the run (across processes), and
/// in strict mode one `::error` per failure, on stdout where the runner reads them.
pub fn annotate(settings: &Settings, groups: &[(&SkipReason, usize)], failures: &[&Entry]) {
    if !on_github() {
        return;
    }
    let mut out = String::new();
    let keys = groups.iter().map(|(reason, _)| key(reason)).collect();
    let fresh = first_time(settings, "github-notices", keys);
    for (reason, count) in groups {
        if fresh.contains(&key(reason)) {
            let tests = if *count == 1 {
                "1 GPU test".to_string()
            } else {
                format!("{count} GPU tests")
            };
            out.push_str(&format!(
                "::notice title={}::{}\n",
                escape_property(&format!("gpu-test skipped {tests}")),
                escape_data(&format!("{}; hint: {}", reason.reason, reason.hint))
            ));
        }
    }
    if settings.strict {
        for entry in failures {
            let mut message = entry.reason().unwrap_or("failed").to_string();
            if let Some(hint) = entry.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            out.push_str(&format!(
                "::error title={}::{}\n",
                escape_property(&format!("gpu-test: {} failed", entry.name)),
                escape_data(&message)
            ));
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

fn key(reason: &SkipReason) -> String {
    format!("{:016x}", run_state::stable_hash(&reason.reason))
}

/// On GitHub Actions, appends each distinct skip reason of the run (once) to the job summary
/// (`GITHUB_STEP_SUMMARY`). nextest discards what its list phase prints, so under nextest this is
/// where the reasons of skipped tests show up.
pub fn step_summary(settings: &Settings, groups: &[(&SkipReason, usize)]) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| on_github() && !p.is_empty()) else {
        return;
    };
    let keys = groups.iter().map(|(reason, _)| key(reason)).collect();
    let fresh = first_time(settings, "github-summary", keys);
    let mut text = String::new();
    for (reason, count) in groups {
        if fresh.contains(&key(reason)) {
            text.push_str(&format!(
                "- **gpu-test skipped {count} test(s)**: {} (fix: {})\n",
                reason.reason, reason.hint
            ));
        }
    }
    if !text.is_empty()
        && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

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
    use crate::skip::SkipKind;

    #[test]
    fn skips_are_summarised_by_reason_with_their_fixes() {
        let driver = SkipReason::new(SkipKind::NoDriver, "no CUDA driver", "install the driver");
        let devices = SkipReason::new(
            SkipKind::TooFewDevices,
            "needs 2 CUDA devices, found 1",
            "add a GPU",
        );
        assert_eq!(
            skip_summary(&[(&driver, 2), (&devices, 1)]).unwrap(),
            "gpu-test: 3 skipped: 2 x no CUDA driver, 1 x needs 2 CUDA devices, found 1\n\
             gpu-test: to run them: install the driver; add a GPU\n"
        );
        assert_eq!(skip_summary(&[]), None);
    }

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }
}
