//! On GitHub Actions: annotations for skips and strict failures, and the job summary, each
//! reason once per run however many processes the run has.

use std::io::Write;

use super::model::Entry;
use super::state::run_dir;
use crate::decide::skip::SkipReason;
use crate::settings::Settings;
use crate::util::files::{stable_hash, update_locked};

/// Marks `keys` as emitted for this run and returns those that were not already.
fn first_time(settings: &Settings, file: &str, keys: Vec<String>) -> Vec<String> {
    let Ok(dir) = run_dir(settings) else {
        return keys;
    };
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
    .unwrap_or(keys)
}

/// On GitHub Actions: one `::notice` per distinct skip reason in the run (across processes), and
/// in strict mode one `::error` per failure, on stdout where the runner reads them.
pub(crate) fn annotate(settings: &Settings, groups: &[(&SkipReason, usize)], failures: &[&Entry]) {
    if !settings.github.actions {
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
    format!("{:016x}", stable_hash(&reason.reason))
}

/// On GitHub Actions, appends each distinct skip reason of the run (once) to the job summary
/// (`GITHUB_STEP_SUMMARY`). nextest discards what its list phase prints, so under nextest this is
/// where the reasons of skipped tests show up.
pub(crate) fn step_summary(settings: &Settings, groups: &[(&SkipReason, usize)]) {
    let Some(path) = settings
        .github
        .step_summary
        .as_ref()
        .filter(|_| settings.github.actions)
    else {
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

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }
}
