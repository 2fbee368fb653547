//! State shared by the processes of one test run: the run's identity and a directory for it.
//!
//! A "run" is one `cargo nextest run` (its `NEXTEST_RUN_ID`) or one `cargo test` (the cargo
//! process that started every test binary: its process id and start time).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::settings::Settings;
use crate::util::files::{create_private_dirs, sanitize};
use crate::util::process::process_start_time;

/// Directories under the runtime directory older than this are removed when a run starts.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This run's identity: `nextest-<run id>` or `parent-<pid>-<start time>`.
pub(crate) fn run_id(settings: &Settings) -> String {
    if let Some(id) = &settings.nextest.run_id {
        return format!("nextest-{}", sanitize(id));
    }
    let parent = std::os::unix::process::parent_id();
    format!("parent-{parent}-{}", process_start_time(parent).unwrap_or(0))
}

/// The process whose life is the run's: the parent of every test process (cargo, nextest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunOwner {
    /// Its process id.
    pub pid: u32,
    /// Its start time, which tells it apart from a later process with the same id.
    pub start: u64,
}

impl RunOwner {
    /// Whether the process is still running.
    pub(crate) fn is_alive(self) -> bool {
        process_start_time(self.pid) == Some(self.start)
    }
}

/// This run's owner, when the parent is a process whose life is the run's (cargo or nextest).
/// A binary run by hand has a shell for a parent, which outlives many runs: then there is none.
pub(crate) fn run_owner() -> Option<RunOwner> {
    let pid = std::os::unix::process::parent_id();
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let runs_tests = matches!(command.trim(), "cargo" | "cargo-nextest" | "nextest");
    runs_tests.then(|| RunOwner {
        pid,
        start: process_start_time(pid).unwrap_or(0),
    })
}

/// This run's directory, created on first use; stale runs' directories are removed then.
pub(crate) fn run_dir(settings: &Settings) -> io::Result<PathBuf> {
    let runs = settings.runtime_dir.join("runs");
    let dir = runs.join(run_id(settings));
    if !dir.exists() {
        create_private_dirs(&dir)?;
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
