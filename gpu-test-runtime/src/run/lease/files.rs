//! The lease directory's files: where each lives, how one is locked, and what a locked one says
//! of its holder.

use std::fs::{File, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::probe::DeviceInfo;
use crate::util::files::{open_existing, open_lock_file, sanitize};
use crate::util::format::{escape_control, format_bytes_needed};
use crate::util::process::process_start_time;

/// The file of `device`'s slot `slot`.
pub(super) fn lock_path(dir: &Path, device: &DeviceInfo, slot: u32) -> PathBuf {
    dir.join(format!("{}.{slot}.lock", sanitize(&device.key())))
}

/// The file of `device`'s intent: held exclusively by the test first in line for the device,
/// shared for a moment by any other test as it takes a slot.
pub(super) fn intent_path(dir: &Path, device: &DeviceInfo) -> PathBuf {
    dir.join(format!("{}.alone.lock", sanitize(&device.key())))
}

/// How a lease file is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    Exclusive,
    Shared,
}

/// The lease file at `path`, locked as `hold` asks when no other lock stands in the way, else
/// `None`; the error names the file.
pub(super) fn try_lock_at(path: &Path, hold: Hold) -> Result<Option<File>, String> {
    let file = open_lock_file(path)
        .map_err(|error| format!("could not open the lease file {}: {error}", path.display()))?;
    let locked = match hold {
        Hold::Exclusive => file.try_lock(),
        Hold::Shared => file.try_lock_shared(),
    };
    match locked {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(error)) => Err(format!("could not lock the lease file {}: {error}", path.display())),
    }
}

/// A lease file's text: `<pid> <start time> <reserved bytes> <test>`.
pub(super) fn holder_text(test: &str, reserved: u64) -> String {
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or(0);
    format!("{pid} {start} {reserved} {test}")
}

/// Writes into a lease file just locked who holds it, for the message of a test that waits: one
/// write, then the length.
pub(super) fn name_holder(file: &mut File, test: &str, reserved: u64) {
    let holder = holder_text(test, reserved);
    let _ = file.write_all(holder.as_bytes());
    let _ = file.set_len(holder.len() as u64);
}

/// The text of a lease file that is there and whose lock someone holds: a slot's file keeps
/// naming its last holder once released.
pub(super) fn held_text(path: &Path) -> Option<String> {
    // Opened without creating it: a slot no one took has no file.
    let mut file = open_existing(path).ok()?;
    // Leases and waits are held exclusively; a shared lock fails only while one is.
    if !matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)) {
        return None;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    Some(text)
}

/// `tests::a (process 123)`, from a held lease file whose holder still lives.
pub(super) fn holder_of(path: &Path) -> Option<String> {
    living_holder(&held_text(path)?)
}

/// A lease file's `<pid> <start time> <reserved bytes> <test>`.
pub(super) struct HolderText<'a> {
    pub pid: u32,
    pub start: u64,
    pub reserved: u64,
    pub test: &'a str,
}

pub(super) fn parse_holder(text: &str) -> Option<HolderText<'_>> {
    let mut fields = text.splitn(4, ' ');
    Some(HolderText {
        pid: fields.next()?.parse().ok()?,
        start: fields.next()?.parse().ok()?,
        reserved: fields.next()?.parse().ok()?,
        test: fields.next()?,
    })
}

/// `tests::a (process 123)` from a lease file, if that process is still the one that wrote it.
pub(super) fn living_holder(text: &str) -> Option<String> {
    let holder = parse_holder(text)?;
    let alive = process_start_time(holder.pid) == Some(holder.start);
    let reserved = if holder.reserved > 0 {
        format!(", reserving {}", format_bytes_needed(holder.reserved))
    } else {
        String::new()
    };
    alive.then(|| format!("{} (process {}{reserved})", escape_control(holder.test), holder.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_living_holder_is_named() {
        let pid = std::process::id();
        let start = process_start_time(pid).unwrap();
        assert_eq!(
            living_holder(&format!("{pid} {start} 0 tests::big")).as_deref(),
            Some(format!("tests::big (process {pid})").as_str())
        );
        assert_eq!(
            living_holder(&format!("{pid} {start} {} tests::big", 8u64 << 30)).as_deref(),
            Some(format!("tests::big (process {pid}, reserving 8 GiB)").as_str())
        );
        // The same id with another start time is a later process, not the holder.
        assert_eq!(living_holder(&format!("{pid} {} 0 tests::big", start + 1)), None);
        assert_eq!(living_holder("tests::big (process 4242)"), None);
        assert_eq!(living_holder(""), None);
    }
}
