//! The order in which waiting tests get devices. A test that could not take its leases at once
//! takes a ticket, `wait.<n>.lock`: held exclusively for as long as it waits, numbered in the
//! order tickets are taken (under `queue.lock`), with the devices it waits for beside it in
//! `wait.<n>.keys` (replaced whole as they change). On each device it waits for, the living
//! waiter with the lowest ticket that waits for it holds the device's intent (`<key>.alone.lock`,
//! exclusively), and no other test takes a slot there: the device drains for it. So a test that
//! needs two devices, or much memory, is not overtaken for ever by tests that need less, and no
//! two waiters each keep a device from the other: the oldest holds the intent of every device it
//! waits for.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::files::{Hold, held_text, intent_path, name_holder, try_lock_at};
use crate::probe::DeviceInfo;
use crate::util::files::{open_existing, sanitize, write_atomically};

/// A waiting test's place in line, with the intents it holds: both given up when it is dropped.
pub(super) struct Ticket {
    number: u64,
    dir: PathBuf,
    _file: File,
    /// The keys of the devices it waits for, as its keys file names them.
    waits_for: Vec<String>,
    /// The intents held, with the key of each one's device.
    intents: Vec<(String, File)>,
}

impl Ticket {
    /// A ticket for `test`, which waits for `devices`, behind every ticket taken before it:
    /// `None` while another test is taking one (it is taken on a later try).
    pub(super) fn take(dir: &Path, test: &str, devices: &[&DeviceInfo]) -> Result<Option<Ticket>, String> {
        let Some(_taking) = try_lock_at(&dir.join("queue.lock"), Hold::Exclusive)? else {
            return Ok(None);
        };
        let mut last = 0;
        for number in numbers(dir) {
            match try_lock_at(&ticket_path(dir, number), Hold::Exclusive) {
                // No one holds it: its test ended without removing it (it was killed), or was
                // killed as it took it (a keys file alone).
                Ok(Some(_)) => remove(dir, number),
                _ => last = last.max(number),
            }
        }
        let number = last
            .checked_add(1)
            .ok_or_else(|| format!("the lease directory {} holds a ticket numbered {last}", dir.display()))?;
        // The keys first: whoever finds the ticket held finds what it waits for.
        let waits_for = keys_of(devices);
        write_keys(dir, number, &waits_for)?;
        let path = ticket_path(dir, number);
        let Some(mut file) = try_lock_at(&path, Hold::Exclusive)? else {
            return Err(format!("the lease file {} is held by another process", path.display()));
        };
        name_holder(&mut file, test, 0);
        Ok(Some(Ticket {
            number,
            dir: dir.to_path_buf(),
            _file: file,
            waits_for,
            intents: Vec::new(),
        }))
    }

    /// Says that this test waits for `devices` (those it was refused, and those it could take
    /// but gave back, lacking the rest), holds the intent of each that no waiter ahead of it
    /// waits for, where no one holds it, and gives up every other intent.
    pub(super) fn claim(&mut self, test: &str, devices: &[&DeviceInfo]) -> Result<(), String> {
        let keys = keys_of(devices);
        if keys != self.waits_for {
            write_keys(&self.dir, self.number, &keys)?;
            self.waits_for = keys;
        }
        let ahead: Vec<String> = numbers(&self.dir)
            .into_iter()
            .filter(|number| *number < self.number && held_text(&ticket_path(&self.dir, *number)).is_some())
            .flat_map(|number| read_keys(&self.dir, number))
            .collect();
        let waits_for = &self.waits_for;
        self.intents
            .retain(|(key, _)| waits_for.contains(key) && !ahead.contains(key));
        for device in devices {
            let key = sanitize(&device.key());
            if ahead.contains(&key) || self.holds_intent(device) {
                continue;
            }
            if let Some(mut intent) = try_lock_at(&intent_path(&self.dir, device), Hold::Exclusive)? {
                name_holder(&mut intent, test, 0);
                self.intents.push((key, intent));
            }
        }
        Ok(())
    }

    /// Whether this ticket holds `device`'s intent: its test alone may take a slot there.
    pub(super) fn holds_intent(&self, device: &DeviceInfo) -> bool {
        let key = sanitize(&device.key());
        self.intents.iter().any(|(held, _)| *held == key)
    }

    /// Whether it holds any intent: its test is first in line somewhere.
    pub(super) fn is_first_somewhere(&self) -> bool {
        !self.intents.is_empty()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Removed while still locked, so that no one takes it for a killed waiter's meanwhile.
        remove(&self.dir, self.number);
    }
}

fn keys_of(devices: &[&DeviceInfo]) -> Vec<String> {
    devices.iter().map(|device| sanitize(&device.key())).collect()
}

fn ticket_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wait.{number:020}.lock"))
}

fn keys_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wait.{number:020}.keys"))
}

fn remove(dir: &Path, number: u64) {
    let _ = std::fs::remove_file(ticket_path(dir, number));
    let _ = std::fs::remove_file(keys_path(dir, number));
}

/// Replaces ticket `number`'s keys file whole, so that no one reads half of it.
fn write_keys(dir: &Path, number: u64, keys: &[String]) -> Result<(), String> {
    let path = keys_path(dir, number);
    write_atomically(&path, keys.join(" ").as_bytes(), 0o600)
        .map_err(|error| format!("could not write the lease file {}: {error}", path.display()))
}

/// The keys of the devices ticket `number` waits for; none where its file cannot be read.
fn read_keys(dir: &Path, number: u64) -> Vec<String> {
    let mut text = String::new();
    let read = open_existing(&keys_path(dir, number)).and_then(|mut file| file.read_to_string(&mut text));
    match read {
        Ok(_) => text.split_whitespace().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

/// The number of every ticket that has a file, in no particular order.
fn numbers(dir: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let rest = name.to_str()?.strip_prefix("wait.")?;
            let digits = rest.strip_suffix(".lock").or_else(|| rest.strip_suffix(".keys"))?;
            if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

#[cfg(test)]
mod tests {
    use super::super::tests::nth_device;
    use super::*;
    use crate::util::files::create_private_dirs;

    fn lease_dir(name: &str) -> PathBuf {
        let dir = crate::util::files::scratch_dir(name);
        create_private_dirs(&dir).unwrap();
        dir
    }

    fn ticket(dir: &Path, test: &str, devices: &[&DeviceInfo]) -> Ticket {
        Ticket::take(dir, test, devices).unwrap().expect("no one else takes one")
    }

    /// Of two waiters for a device, the one that took its ticket first is first in line, also
    /// where the other tries first; a killed waiter's ticket counts for nothing and goes.
    #[test]
    fn waiters_line_up_in_the_order_they_came() {
        let dir = lease_dir("queue-order");
        let (d0, d1) = (nth_device(0), nth_device(1));
        std::fs::write(ticket_path(&dir, 7), "").unwrap();
        write_keys(&dir, 7, &[sanitize(&d1.key())]).unwrap();
        let mut a = ticket(&dir, "a", &[&d0]);
        assert!(numbers(&dir) == [a.number], "a killed waiter's ticket was kept");
        let mut b = ticket(&dir, "b", &[&d0, &d1]);
        assert!(a.number < b.number);
        b.claim("b", &[&d0, &d1]).unwrap();
        assert!(!b.holds_intent(&d0), "b went before a, which came first");
        assert!(b.holds_intent(&d1));
        a.claim("a", &[&d0]).unwrap();
        assert!(a.holds_intent(&d0));
        // a has its device: b is first in line for it at its next try.
        drop(a);
        b.claim("b", &[&d0, &d1]).unwrap();
        assert!(b.holds_intent(&d0));
        drop(b);
        assert!(numbers(&dir).is_empty(), "a ticket was left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A waiter that no longer waits for a device (refused now only for memory other programs
    /// hold) gives up its intent there, and no longer holds back those behind it.
    #[test]
    fn a_device_no_longer_waited_for_is_let_go() {
        let dir = lease_dir("queue-let-go");
        let (d0, d1) = (nth_device(0), nth_device(1));
        let mut x = ticket(&dir, "x", &[&d0, &d1]);
        x.claim("x", &[&d0, &d1]).unwrap();
        let mut b = ticket(&dir, "b", &[&d0]);
        b.claim("b", &[&d0]).unwrap();
        assert!(!b.holds_intent(&d0));
        x.claim("x", &[&d1]).unwrap();
        assert!(!x.holds_intent(&d0) && x.holds_intent(&d1));
        b.claim("b", &[&d0]).unwrap();
        assert!(b.holds_intent(&d0), "x still held b back on a device it no longer waits for");
        drop((x, b));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A waiter that took a device's intent before the waiter ahead of it said it waits for the
    /// device gives the intent up once it has, so that the oldest waiter is first everywhere.
    #[test]
    fn an_intent_goes_to_the_waiter_ahead() {
        let dir = lease_dir("queue-ahead");
        let d0 = nth_device(0);
        let mut a = ticket(&dir, "a", &[]);
        let mut b = ticket(&dir, "b", &[&d0]);
        b.claim("b", &[&d0]).unwrap();
        assert!(b.holds_intent(&d0));
        a.claim("a", &[&d0]).unwrap();
        assert!(!a.holds_intent(&d0), "two waiters hold one intent");
        b.claim("b", &[&d0]).unwrap();
        assert!(!b.holds_intent(&d0), "b kept the intent of a device a, ahead of it, waits for");
        a.claim("a", &[&d0]).unwrap();
        assert!(a.holds_intent(&d0));
        drop((a, b));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
