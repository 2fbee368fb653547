//! The order in which waiting tests get devices. A test that could not take its leases at once
//! takes a ticket, `wait.<n>.lock`: held exclusively for as long as it waits, numbered in the
//! order tickets are taken (under `queue.lock`), and naming the devices the test may use. On each
//! device it waits for, the living waiter with the lowest ticket that may use it holds the
//! device's intent (`<key>.alone.lock`, exclusively), and no other test takes a slot there: the
//! device drains for it. So a test that needs two devices, or much memory, is not overtaken for
//! ever by tests that need less, and no two waiters each keep a device from the other: the oldest
//! holds the intent of every device it waits for.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::files::{Hold, held_text, holder_text, intent_path, name_holder, try_lock_at};
use crate::probe::DeviceInfo;
use crate::util::files::sanitize;

/// A waiting test's place in line, with the intents it holds: both given up when it is dropped.
pub(super) struct Ticket {
    number: u64,
    path: PathBuf,
    _file: File,
    /// The intents held, with the key of each one's device.
    intents: Vec<(String, File)>,
}

impl Ticket {
    /// A ticket for `test`, which may use `devices`, behind every ticket taken before it: `None`
    /// while another test is taking one (it is taken on a later try).
    pub(super) fn take(dir: &Path, test: &str, devices: &[&DeviceInfo]) -> Result<Option<Ticket>, String> {
        let Some(_taking) = try_lock_at(&dir.join("queue.lock"), Hold::Exclusive)? else {
            return Ok(None);
        };
        let mut last = 0;
        for (number, path) in tickets(dir) {
            match try_lock_at(&path, Hold::Exclusive) {
                // No one holds it: its test ended without removing it (it was killed).
                Ok(Some(_)) => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => last = last.max(number),
            }
        }
        let number = last + 1;
        let path = dir.join(ticket_name(number));
        let mut file = try_lock_at(&path, Hold::Exclusive)?
            .ok_or_else(|| format!("the lease file {} is held by another process", path.display()))?;
        let keys: Vec<String> = devices.iter().map(|device| sanitize(&device.key())).collect();
        let text = format!("{}\n{}", keys.join(" "), holder_text(test, 0));
        let _ = file.write_all(text.as_bytes());
        let _ = file.set_len(text.len() as u64);
        Ok(Some(Ticket {
            number,
            path,
            _file: file,
            intents: Vec::new(),
        }))
    }

    /// Takes the intent of each device of `waited_for` that no waiter ahead of this one may use,
    /// where no one holds it, and gives up those a waiter ahead may use (one that took its ticket
    /// just before this one, and had not yet named its devices).
    pub(super) fn claim(&mut self, dir: &Path, test: &str, waited_for: &[&DeviceInfo]) -> Result<(), String> {
        let ahead: Vec<String> = tickets(dir)
            .into_iter()
            .filter(|(number, _)| *number < self.number)
            .filter_map(|(_, path)| held_text(&path))
            .flat_map(|text| {
                let keys = text.split_once('\n').map_or("", |(keys, _)| keys);
                keys.split(' ').map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        self.intents.retain(|(key, _)| !ahead.contains(key));
        for device in waited_for {
            let key = sanitize(&device.key());
            if ahead.contains(&key) || self.holds_intent(device) {
                continue;
            }
            if let Some(mut intent) = try_lock_at(&intent_path(dir, device), Hold::Exclusive)? {
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
        let _ = std::fs::remove_file(&self.path);
    }
}

fn ticket_name(number: u64) -> String {
    format!("wait.{number:020}.lock")
}

/// Every ticket's number and file, in no particular order.
fn tickets(dir: &Path) -> Vec<(u64, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name.to_str()?.strip_prefix("wait.")?.strip_suffix(".lock")?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::nth_device;
    use super::*;
    use crate::util::files::create_private_dirs;

    /// Of two waiters for a device, the one that took its ticket first is first in line, also
    /// where the other tries first; a killed waiter's ticket counts for nothing and goes.
    #[test]
    fn waiters_line_up_in_the_order_they_came() {
        let dir = crate::util::files::scratch_dir("queue-order");
        create_private_dirs(&dir).unwrap();
        let (d0, d1) = (nth_device(0), nth_device(1));
        let killed = dir.join(ticket_name(7));
        std::fs::write(&killed, format!("{}\n1 1 0 killed", sanitize(&d1.key()))).unwrap();
        let mut a = Ticket::take(&dir, "a", &[&d0]).unwrap().expect("no one else takes one");
        assert!(!killed.exists(), "a killed waiter's ticket was kept");
        let mut b = Ticket::take(&dir, "b", &[&d0, &d1]).unwrap().expect("no one else takes one");
        assert!(a.number < b.number);
        b.claim(&dir, "b", &[&d0, &d1]).unwrap();
        assert!(!b.holds_intent(&d0), "b went before a, which came first");
        assert!(b.holds_intent(&d1));
        a.claim(&dir, "a", &[&d0]).unwrap();
        assert!(a.holds_intent(&d0));
        // a has its device: b is first in line for it at its next try.
        drop(a);
        b.claim(&dir, "b", &[&d0, &d1]).unwrap();
        assert!(b.holds_intent(&d0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A waiter that took a device's intent before the waiter ahead of it had named its devices
    /// gives the intent up once it sees them, so that the oldest waiter is first everywhere.
    #[test]
    fn an_intent_goes_to_the_waiter_ahead() {
        let dir = crate::util::files::scratch_dir("queue-ahead");
        create_private_dirs(&dir).unwrap();
        let d0 = nth_device(0);
        let mut a = Ticket::take(&dir, "a", &[&d0]).unwrap().expect("no one else takes one");
        let named = std::fs::read_to_string(&a.path).unwrap();
        std::fs::write(&a.path, "\n").unwrap();
        let mut b = Ticket::take(&dir, "b", &[&d0]).unwrap().expect("no one else takes one");
        b.claim(&dir, "b", &[&d0]).unwrap();
        assert!(b.holds_intent(&d0));
        a.claim(&dir, "a", &[&d0]).unwrap();
        assert!(!a.holds_intent(&d0), "two waiters hold one intent");
        std::fs::write(&a.path, named).unwrap();
        b.claim(&dir, "b", &[&d0]).unwrap();
        assert!(!b.holds_intent(&d0), "b kept the intent of a device a, ahead of it, waits for");
        a.claim(&dir, "a", &[&d0]).unwrap();
        assert!(a.holds_intent(&d0));
        drop((a, b));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
