//! State shared by the processes of one test run: the run's identity and a directory for it.
//!
//! A "run" is one `cargo nextest run` (its `NEXTEST_RUN_ID`) or one `cargo test` (the cargo
//! process that started every test binary: its process id and start time).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::settings::Settings;
use crate::util::files::sanitize;

/// Directories under the runtime directory older than this are removed when a run starts.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This run's identity: `nextest-<run id>` or `parent-<pid>-<start time>`.
pub(crate) fn run_id(settings: &Settings) -> String {
    if let Some(id) = &settings.nextest.run_id {
        return format!("nextest-{}", sanitize(id));
    }
    let parent = std::os::unix::process::parent_id();
    let started = process_start_time(parent).unwrap_or(0);
    format!("parent-{parent}-{started}")
}

/// The start time of process `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`),
/// which tells a process apart from a later one that reuses its id.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// This run's directory, created on first use; stale runs' directories are removed then.
pub(crate) fn run_dir(settings: &Settings) -> io::Result<PathBuf> {
    let runs = settings.runtime_dir.join("runs");
    let dir = runs.join(run_id(settings));
    if !dir.exists() {
        fs::create_dir_all(&dir)?;
        remove_stale(&runs);
    }
    Ok(dir)
}

fn remove_stale(runs: &Path) {
    let Ok(entries) = fs::read_dir(runs) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_a_stable_run_id() {
        let settings = Settings::default();
        assert_eq!(run_id(&settings), run_id(&settings));
        assert!(run_id(&settings).starts_with("parent-"));
        assert!(process_start_time(std::process::id()).is_some());
        let mut nextest = Settings::default();
        nextest.nextest.run_id = Some("a/b".to_string());
        assert_eq!(run_id(&nextest), "nextest-a_b");
    }
}
