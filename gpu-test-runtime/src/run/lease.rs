//! Device leases: a test holds one lease per device it uses for as long as its body runs, so that
//! parallel tests (threads under libtest, processes under nextest, or separate runs on the same
//! machine) never share a device beyond `GPU_TEST_TESTS_PER_DEVICE`.
//!
//! A lease is an exclusive `flock` on `<runtime dir>/leases/<device UUID>.<slot>.lock`, one slot
//! per allowed holder. The kernel drops it when the file is closed: when the lease is dropped,
//! when the body panics (the lease unwinds with it), or when the process dies.

use std::fs::{File, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::faults;
use crate::probe::DeviceInfo;
use crate::settings::Settings;
use crate::util::files::{create_private_dirs, open_lock_file, sanitize};
use crate::util::format::{count, escape_control, format_duration};
use crate::util::process::process_start_time;

/// A test that has been waiting for its leases long enough to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// The leases it needs.
    pub needed: usize,
    /// `GPU_TEST_TESTS_PER_DEVICE`.
    pub slots: u32,
    /// Who holds the devices: `device 0 NVIDIA H100 is held by tests::a (process 123)`.
    pub holders: String,
    /// When it gives up (`GPU_TEST_LEASE_TIMEOUT`).
    pub timeout: Duration,
}

/// A held lease on one device.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The device.
    pub device: DeviceInfo,
    /// Which of the device's slots.
    pub slot: u32,
    _file: File,
}

/// Takes `needed` leases among `candidates` (in order of preference), waiting while they are
/// held by other tests, and telling `on_wait` once when the wait gets long. Devices this process
/// can no longer use (a sticky error, an abandoned body) are passed over; if too few remain, or
/// the wait exceeds the lease timeout, the error says why.
pub(crate) fn acquire(
    test: &str,
    candidates: &[&DeviceInfo],
    needed: usize,
    settings: &Settings,
    on_wait: &dyn Fn(&Waiting),
) -> Result<Vec<Lease>, String> {
    let dir = settings.runtime_dir.join("leases");
    create_private_dirs(&dir)
        .map_err(|error| format!("could not create the lease directory {}: {error}", dir.display()))?;
    let slots = settings.tests_per_device;
    let started = Instant::now();
    let mut announced = false;
    let mut pause = Duration::from_millis(5);
    loop {
        let mut usable = Vec::new();
        let mut excluded = Vec::new();
        for device in candidates {
            match faults::blocked(device) {
                Some(blocked) => excluded.push(faults::explain(device, &blocked)),
                None => usable.push(*device),
            }
        }
        if usable.len() < needed {
            return Err(excluded.join("; "));
        }
        let mut held = Vec::with_capacity(needed);
        for device in &usable {
            if held.len() == needed {
                break;
            }
            // The same GPU under two ordinals is one device: never wait on a lease this test holds.
            if held
                .iter()
                .any(|lease: &Lease| lease.device.key() == device.key())
            {
                continue;
            }
            if let Some(lease) = try_device(&dir, device, slots, test)? {
                held.push(lease);
            }
        }
        if held.len() == needed {
            return Ok(held);
        }
        // All or nothing: never wait while holding some of the leases, or two multi-device tests
        // could each hold one device and wait for the other's.
        drop(held);
        let waited = started.elapsed();
        if waited >= settings.lease_timeout {
            return Err(format!(
                "could not get {} within {} (GPU_TEST_LEASE_TIMEOUT): {}",
                leases(needed),
                format_duration(settings.lease_timeout),
                holders(&dir, &usable, slots)
            ));
        }
        if !announced && waited >= settings.lease_notice {
            announced = true;
            on_wait(&Waiting {
                needed,
                slots,
                holders: holders(&dir, &usable, slots),
                timeout: settings.lease_timeout,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// `a device lease`, `2 device leases`.
pub(crate) fn leases(n: usize) -> String {
    if n == 1 {
        "a device lease".to_string()
    } else {
        count(n, "device lease")
    }
}

fn lock_path(dir: &Path, device: &DeviceInfo, slot: u32) -> PathBuf {
    dir.join(format!("{}.{slot}.lock", sanitize(&device.key())))
}

/// The first free slot of `device`, taken.
fn try_device(dir: &Path, device: &DeviceInfo, slots: u32, test: &str) -> Result<Option<Lease>, String> {
    for slot in 0..slots {
        let path = lock_path(dir, device, slot);
        let mut file = open_lock_file(&path)
            .map_err(|error| format!("could not open the lease file {}: {error}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message of a test that waits: one write, then the length.
                let pid = std::process::id();
                let start = process_start_time(pid).unwrap_or(0);
                let holder = format!("{pid} {start} {test}");
                let _ = file.write_all(holder.as_bytes());
                let _ = file.set_len(holder.len() as u64);
                return Ok(Some(Lease {
                    device: device.clone(),
                    slot,
                    _file: file,
                }));
            }
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(error)) => {
                return Err(format!(
                    "could not lock the lease file {}: {error}",
                    path.display()
                ));
            }
        }
    }
    Ok(None)
}

/// `device 0 NVIDIA H100 is held by tests::a (process 123)`, for every held slot. A holder is
/// named only while its process lives; the file of a lock held by anything else says nothing
/// gpu-test can vouch for.
fn holders(dir: &Path, devices: &[&DeviceInfo], slots: u32) -> String {
    let mut held = Vec::new();
    for device in devices {
        let mut names = Vec::new();
        for slot in 0..slots {
            let mut text = String::new();
            if let Ok(mut file) = open_lock_file(&lock_path(dir, device, slot)) {
                let _ = file.read_to_string(&mut text);
            }
            if let Some(holder) = living_holder(&text) {
                names.push(holder);
            }
        }
        if !names.is_empty() {
            held.push(format!("{} is held by {}", device.label(), names.join(", ")));
        }
    }
    if held.is_empty() {
        "the devices are held by other tests".to_string()
    } else {
        held.join("; ")
    }
}

/// `tests::a (process 123)` from a lease file's `<pid> <start time> <test>`, if that process is
/// still the one that wrote it.
fn living_holder(text: &str) -> Option<String> {
    let mut fields = text.splitn(3, ' ');
    let pid: u32 = fields.next()?.parse().ok()?;
    let start: u64 = fields.next()?.parse().ok()?;
    let test = fields.next()?;
    let alive = process_start_time(pid) == Some(start);
    alive.then(|| format!("{} (process {pid})", escape_control(test)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_living_holder_is_named() {
        let pid = std::process::id();
        let start = process_start_time(pid).unwrap();
        assert_eq!(
            living_holder(&format!("{pid} {start} tests::big")).as_deref(),
            Some(format!("tests::big (process {pid})").as_str())
        );
        // The same id with another start time is a later process, not the holder.
        assert_eq!(living_holder(&format!("{pid} {} tests::big", start + 1)), None);
        assert_eq!(living_holder("tests::big (process 4242)"), None);
        assert_eq!(living_holder(""), None);
    }
}
