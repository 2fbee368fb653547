//! State shared by the processes of one test run: the run's identity and a directory for it.
//!
//! A "run" is one `cargo nextest run` (its `NEXTEST_RUN_ID`) or one `cargo test` (the cargo
//! process that started every test binary: its process id and start time).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::settings::Settings;
use crate::util::files::{create_private_dirs, sanitize};
use crate::util::process::{command_name, parent_of, process_start_time, started_with_argument};

/// Runs' directories and reports' states nobody has touched for this long are removed when a run
/// starts or records.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This run's identity: `nextest-<run id>`, or `parent-<pid>-<start time>` of the run's owner
/// (else of the parent, else, where there is none to tell apart, of this process).
pub(crate) fn run_id(settings: &Settings) -> String {
    if let Some(id) = &settings.nextest.run_id {
        return format!("nextest-{}", sanitize(id));
    }
    let parent = std::os::unix::process::parent_id();
    // Without /proc to tell its start time, the parent is still what a run's processes share.
    let parent = RunOwner {
        pid: parent,
        start: process_start_time(parent).unwrap_or(0),
    };
    let owner = standing_for_the_run(run_owner(), parent, || {
        let pid = std::process::id();
        process_start_time(pid).map(|start| RunOwner { pid, start })
    });
    match owner {
        Some(owner) => format!("parent-{}-{}", owner.pid, owner.start),
        // Without /proc to read start times from: a number of this process's own.
        None => {
            static OWN: OnceLock<u64> = OnceLock::new();
            format!(
                "process-{}-{:016x}",
                std::process::id(),
                OWN.get_or_init(crate::util::files::unpredictable)
            )
        }
    }
}

/// The process whose identity is the run's: its owner, else the parent, except where the parent
/// is none to tell apart (a container's first process, whose parent is 0 in its PID namespace),
/// for which this process is a run of its own, rather than one with every such process.
fn standing_for_the_run(
    owner: Option<RunOwner>,
    parent: RunOwner,
    this: impl FnOnce() -> Option<RunOwner>,
) -> Option<RunOwner> {
    match owner {
        Some(owner) => Some(owner),
        None if parent.pid != 0 => Some(parent),
        None => this(),
    }
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

/// How far up the process tree the run's owner is looked for: past a target runner or two
/// (`sudo`, `compute-sanitizer`, a wrapper script), not into the session around the run.
const OWNER_SEARCH_DEPTH: usize = 8;

/// This run's owner: the parent when it is a process whose life is the run's (cargo or
/// nextest), or the one above a target runner that forks rather than execs (a process of its
/// own per binary, so the parent alone would split one run into many). A runner is told by the
/// binary's path among its arguments, as cargo and nextest pass it. A binary run by hand, or by
/// a program of its own, has no owner: the shell or program above it may outlive many runs.
/// Found once per process: the processes above it are the run's for as long as it lives.
pub(crate) fn run_owner() -> Option<RunOwner> {
    static OWNER: OnceLock<Option<RunOwner>> = OnceLock::new();
    *OWNER.get_or_init(find_run_owner)
}

fn find_run_owner() -> Option<RunOwner> {
    let binary = std::env::args_os().next()?;
    let mut pid = std::os::unix::process::parent_id();
    for _ in 0..OWNER_SEARCH_DEPTH {
        let command = command_name(pid)?;
        if matches!(command.as_str(), "cargo" | "cargo-nextest" | "nextest") {
            return Some(RunOwner {
                pid,
                start: process_start_time(pid)?,
            });
        }
        if !started_with_argument(pid, &binary) {
            return None;
        }
        pid = parent_of(pid)?;
    }
    None
}

/// This run's directory, created on first use; stale runs' directories are removed then.
pub(crate) fn run_dir(settings: &Settings) -> io::Result<PathBuf> {
    let runs = settings.runtime_dir.join("runs");
    let dir = runs.join(run_id(settings));
    if dir.exists() {
        // A run's age is the time since its last process started, not since its first: a run
        // that lasts past a day is not stale while its tests still start.
        if let Ok(opened) = fs::File::open(&dir) {
            let _ = opened.set_modified(SystemTime::now());
        }
    } else {
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
        // The cargo or nextest above this binary (through a target runner that forks), else its
        // parent: never this process, which is one of the run's.
        let parent = std::os::unix::process::parent_id();
        let owner = run_owner().unwrap_or(RunOwner {
            pid: parent,
            start: process_start_time(parent).expect("the parent's start time"),
        });
        assert_ne!(owner.pid, std::process::id());
        assert_eq!(run_id(&settings), format!("parent-{}-{}", owner.pid, owner.start));
        let mut nextest = Settings::default();
        nextest.nextest.run_id = Some("a/b".to_string());
        assert_eq!(run_id(&nextest), "nextest-a_b");
    }

    #[test]
    fn a_process_without_a_parent_to_tell_apart_is_a_run_of_its_own() {
        let process = |pid, start| RunOwner { pid, start };
        let this = || Some(process(1, 7));
        assert_eq!(
            standing_for_the_run(Some(process(40, 1)), process(41, 2), this),
            Some(process(40, 1))
        );
        assert_eq!(standing_for_the_run(None, process(41, 2), this), Some(process(41, 2)));
        // A container's first process: its parent is 0, as is every other container's.
        assert_eq!(standing_for_the_run(None, process(0, 0), this), Some(process(1, 7)));
        // Without /proc, neither has a start time to tell: the caller makes a number its own.
        assert_eq!(standing_for_the_run(None, process(0, 0), || None), None);
    }
}
