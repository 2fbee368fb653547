//! Files shared between processes: replaced atomically, updated under a lock, named stably.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Reads `path` (empty if absent), lets `update` change the text, and writes the result back
/// atomically, all under an exclusive lock on `<path>.lock` so that concurrent processes each see
/// the others' changes.
pub(crate) fn update_locked<T>(path: &Path, update: impl FnOnce(String) -> (String, T)) -> io::Result<T> {
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
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
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
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Keeps letters, digits, `-`, `_` and `.`: ids become file names.
pub(crate) fn sanitize(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gpu-test-files-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
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
