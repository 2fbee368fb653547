//! State shared by the processes of one test run: the run's identity, a directory for it, and
//! locked, atomic updates of files in it.
//!
//! A "run" is one `cargo nextest run` (its `NEXTEST_RUN_ID`) or one `cargo test` (the cargo
//! process that started every test binary: its process id and start time).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::settings::Settings;

/// Directories under the runtime directory older than this are removed when a run starts.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This run's identity: `nextest-<run id>` or `parent-<pid>-<start time>`.
pub fn run_id() -> String {
    if let Some(id) = std::env::var("NEXTEST_RUN_ID").ok().filter(|id| !id.is_empty()) {
        return format!("nextest-{}", sanitize(&id));
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

/// Keeps letters, digits, `-`, `_` and `.`: ids become file names.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The directory for gpu-test's per-user runtime state: `GPU_TEST_RUNTIME_DIR`, else
/// `$XDG_RUNTIME_DIR/gpu-test`, else `<temp dir>/gpu-test-<uid>`.
pub fn runtime_dir(settings: &Settings) -> PathBuf {
    if let Some(dir) = &settings.runtime_dir {
        return dir.clone();
    }
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(xdg).join("gpu-test");
    }
    std::env::temp_dir().join(format!("gpu-test-{}", user_id()))
}

unsafe extern "C" {
    fn getuid() -> u32;
}

fn user_id() -> u32 {
    // SAFETY: getuid takes no arguments and cannot fail.
    unsafe { getuid() }
}

/// This run's directory, created on first use; stale runs' directories are removed then.
pub fn run_dir(settings: &Settings) -> io::Result<PathBuf> {
    let runs = runtime_dir(settings).join("runs");
    let dir = runs.join(run_id());
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

/// Reads `path` (empty if absent), lets `update` change the text, and writes the result back
/// atomically, all under an exclusive lock on `<path>.lock` so that concurrent processes each see
/// the others' changes.
pub fn update_locked<T>(path: &Path, update: impl FnOnce(String) -> (String, T)) -> io::Result<T> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let lock_path = path.with_extension("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    lock.lock()?;
    let mut current = String::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_string(&mut current)?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let (next, result) = update(current);
    write_atomically(path, next.as_bytes())?;
    drop(lock);
    Ok(result)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: readers see
/// the old file or the new one, never a half-written one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)
}

/// FNV-1a: a stable hash for naming state files after paths, the same in every process.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gpu-test-run-state-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_parent_is_a_stable_run_id() {
        assert_eq!(run_id(), run_id());
        assert!(run_id().starts_with("parent-") || run_id().starts_with("nextest-"));
        assert!(process_start_time(std::process::id()).is_some());
    }

    #[test]
    fn locked_updates_from_many_threads_lose_nothing() {
        let dir = scratch("locked");
        let path = dir.join("counter");
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        update_locked(&path, |text| {
                            let n: u32 = text.trim().parse().unwrap_or(0);
                            ((n + 1).to_string(), ())
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(fs::read_to_string(&path).unwrap(), "200");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashes_and_names_are_stable() {
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(sanitize("nx::h$a b"), "nx__h_a_b");
    }
}
