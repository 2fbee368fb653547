//! Device leases: a test holds one lease per device it uses for as long as its body runs, so that
//! parallel tests (threads under libtest, processes under nextest, or separate runs on the same
//! machine) never share a device beyond `GPU_TEST_TESTS_PER_DEVICE`.
//!
//! A lease is an exclusive `flock` on `<runtime dir>/leases/<key>.<slot>.lock` (the key is the
//! device's UUID without its `GPU-` or `MIG-`, see `DeviceInfo::key`), one slot per allowed
//! holder, together with a lock on `<key>.device.lock`: exclusive for a test
//! that has the device to itself (`GPU_TEST_TESTS_PER_DEVICE=1`), shared where tests share it.
//! The device lock keeps a test that needs the device alone (a leak check measures it
//! device-wide) apart from a run that shares it, whatever each run's setting. Tests that have to
//! wait line up (see `queue`): the first in line for a device holds `<key>.alone.lock`, and no
//! other test takes a slot there meanwhile, so that tests that need less (one device of two, a
//! slot of a shared device) cannot keep it out for ever. The kernel drops every lock when its
//! file is closed: when the lease is dropped, when the body panics (the lease unwinds with it),
//! or when the process dies.
//!
//! A test that declares its memory (`memory = "8 GiB"`) or needs free memory
//! (`min_free_memory`) is admitted under the device's admission lock (`<key>.admit.lock`): the
//! memory the tests holding the device reserve (each its `memory` or its `min_free_memory`,
//! whichever is more) plus its own must fit in what the device had
//! free when the first of those holders took it (recorded in `<key>.budget`), less what other
//! programs took since; and the free memory now must be at least `min_free_memory`. Holding the admission lock while checking and taking a
//! slot makes the two one step for every process.

mod files;
mod queue;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use self::files::{Hold, held_text, holder_of, intent_path, lock_path, name_holder, parse_holder, try_lock_at};
use self::queue::Ticket;
use super::faults;
use crate::probe::DeviceInfo;
use crate::settings::Settings;
use crate::util::files::{create_private_dirs, open_lock_file, sanitize};
use crate::util::format::{count, format_bytes, format_bytes_needed, format_duration};

/// What a test asks of a device's memory when it takes its lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemoryDemand {
    /// `memory`: what the test declares it uses.
    pub declared: Option<u64>,
    /// `min_free_memory`: what must be free when the lease is taken.
    pub min_free: Option<u64>,
}

impl MemoryDemand {
    /// Whether the test declares no memory: leasing it then asks the driver nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.declared.is_none() && self.min_free.is_none()
    }
}

/// Why a device was not leased this time round.
enum Refusal {
    /// Every slot is held.
    Full,
    /// The memory does not fit: why, in words.
    Memory(String),
    /// Its free memory could not be read, for a reason waiting will not change: why, in words.
    /// The test passes over the device.
    Unreadable(String),
}

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
    _device: File,
}

/// What [`acquire`] tells its caller of a wait, each once.
pub(crate) struct WaitHooks<'a> {
    /// Before it first pauses between tries (and before `waiting`).
    pub pausing: &'a dyn Fn(),
    /// When the wait gets long (`GPU_TEST_LEASE_NOTICE`).
    pub waiting: &'a dyn Fn(&Waiting),
}

/// Takes `needed` leases among `candidates` (in order of preference), waiting while they are
/// held by other tests, and telling `hooks` of the wait. Devices this process
/// can no longer use (a sticky error, an abandoned body) are passed over; if too few remain, or
/// the wait exceeds the lease timeout, the error says why.
///
/// With a [`MemoryDemand`], `free_memory` tells how much a device has free now; a device whose
/// free memory the driver has no call for is not admitted for `min_free_memory`, and its whole
/// memory is the budget for declared memory; one whose free memory the driver fails to read is
/// passed over from then on, unless it failed for want of room ([`MemoryUnread`]).
pub(crate) fn acquire(
    test: &str,
    candidates: &[&DeviceInfo],
    needed: usize,
    settings: &Settings,
    demand: MemoryDemand,
    free_memory: &FreeMemory<'_>,
    hooks: &WaitHooks<'_>,
) -> Result<Vec<Lease>, String> {
    let dir = settings.runtime_dir.join("leases");
    create_private_dirs(&dir)
        .map_err(|error| format!("could not create the lease directory {}: {error}", dir.display()))?;
    let slots = settings.tests_per_device;
    let started = Instant::now();
    let mut announced = false;
    let mut paused = false;
    // This test's place in line, once it has had to wait.
    let mut ticket: Option<Ticket> = None;
    let mut pause = Duration::from_millis(5);
    // Devices whose free memory could not be read, by key, and why: passed over from then on.
    let mut unreadable: Vec<(String, String)> = Vec::new();
    loop {
        let mut usable = Vec::new();
        let mut excluded = Vec::new();
        for device in candidates {
            match faults::blocked(device) {
                Some(blocked) => excluded.push(faults::explain(device, &blocked)),
                None => match unreadable.iter().find(|(key, _)| *key == device.key()) {
                    Some((_, why)) => excluded.push(why.clone()),
                    None => usable.push(*device),
                },
            }
        }
        if usable.len() < needed {
            return Err(excluded.join("; "));
        }
        let unreadable_before = unreadable.len();
        let mut held = Vec::with_capacity(needed);
        let mut refusals = Vec::new();
        // Whether a device had every slot held, by whoever holds it.
        let mut full = false;
        // The devices that tests hold or are first in line for: what waiting in line helps with.
        let mut contested = Vec::new();
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
            let first_in_line = ticket.as_ref().is_some_and(|ticket| ticket.holds_intent(device));
            match admit(&dir, device, slots, test, demand, free_memory, first_in_line)? {
                Ok(lease) => held.push(lease),
                Err(Refusal::Memory(why)) => {
                    // Memory that other programs hold comes back whatever tests do; what the
                    // tests holding the device reserve, as they finish.
                    if is_held(&dir, device, slots) {
                        contested.push(*device);
                    }
                    refusals.push(why);
                }
                Err(Refusal::Full) => {
                    full = true;
                    contested.push(*device);
                }
                Err(Refusal::Unreadable(why)) => unreadable.push((device.key(), why)),
            }
        }
        if held.len() == needed {
            return Ok(held);
        }
        // A device passed over for good: the next round decides without it, at once.
        if unreadable.len() > unreadable_before {
            continue;
        }
        // All or nothing: never wait while holding some of the leases, or two multi-device tests
        // could each hold one device and wait for the other's.
        // What it waits for: the devices it was refused, and those it took but gives back.
        let mut waits_for = contested;
        waits_for.extend(
            usable
                .iter()
                .filter(|device| held.iter().any(|lease| lease.device.key() == device.key()))
                .copied(),
        );
        drop(held);
        if ticket.is_none() {
            ticket = Ticket::take(&dir, test, &waits_for)?;
        }
        if let Some(ticket) = ticket.as_mut() {
            ticket.claim(test, &waits_for)?;
        }
        let waited = started.elapsed();
        // Who holds the devices, and what else keeps the test out (free memory it needs that
        // other processes hold); a device held by something no test of gpu-test's can be named
        // for (another PID namespace) is still said to be held.
        let why = || {
            let mut parts = Vec::new();
            match holders(&dir, &usable, slots, ticket.as_ref()) {
                named if !named.is_empty() => parts.push(named),
                _ if full || refusals.is_empty() => parts.push("the devices are held by other tests".to_string()),
                _ => {}
            }
            parts.extend(refusals.iter().cloned());
            parts.join("; ")
        };
        if waited >= settings.lease_timeout {
            return Err(format!(
                "could not get {} within {} (GPU_TEST_LEASE_TIMEOUT): {}",
                leases(needed),
                format_duration(settings.lease_timeout),
                why()
            ));
        }
        // Told before the wait is announced: whoever hears of the wait may end the process.
        if !paused {
            paused = true;
            (hooks.pausing)();
        }
        if !announced && waited >= settings.lease_notice {
            announced = true;
            (hooks.waiting)(&Waiting {
                needed,
                slots,
                holders: why(),
                timeout: settings.lease_timeout,
            });
        }
        // First in line, a test takes a device as soon as it is free: no one else may meanwhile.
        if ticket.as_ref().is_some_and(Ticket::is_first_somewhere) {
            std::thread::sleep(FIRST_IN_LINE_PAUSE);
        } else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// How often a test first in line for a device tries again: a device left free waits for it.
const FIRST_IN_LINE_PAUSE: Duration = Duration::from_millis(5);

/// `a device lease`, `2 device leases`.
pub(crate) fn leases(n: usize) -> String {
    if n == 1 {
        "a device lease".to_string()
    } else {
        count(n, "device lease")
    }
}

/// A slot of `device` for a test with `demand`: the first free one, when the memory fits too.
fn admit(
    dir: &Path,
    device: &DeviceInfo,
    slots: u32,
    test: &str,
    demand: MemoryDemand,
    free_memory: &FreeMemory<'_>,
    first_in_line: bool,
) -> Result<Result<Lease, Refusal>, String> {
    if demand.is_empty() {
        return try_device(dir, device, slots, test, 0, first_in_line).map(|lease| lease.ok_or(Refusal::Full));
    }
    let key = sanitize(&device.key());
    // Another process is admitting a test to this device: try again shortly, as for a held slot,
    // so that a process stuck in the driver meanwhile holds up no one past their lease timeout.
    let Some(admission) = try_lock_at(&dir.join(format!("{key}.admit.lock")), Hold::Exclusive)? else {
        return Ok(Err(Refusal::Full));
    };
    let held = reserved_by_holders(dir, device, slots);
    // What the test reserves while it holds the device: its `memory`, or the `min_free_memory`
    // it asked to find free, whichever is more; a test admitted after it, before it has
    // allocated, counts it as taken.
    let reserved = demand.declared.unwrap_or(0).max(demand.min_free.unwrap_or(0));
    // A slot first: memory is measured only on a device this test could take, so that a waiting
    // test opens no context on a device others are using (a leak check there would count it).
    let Some(lease) = try_device(dir, device, slots, test, reserved, first_in_line)? else {
        return Ok(Err(Refusal::Full));
    };
    let now_free = match free_memory(device) {
        Ok(free) => free,
        Err(MemoryUnread::NoRoom(why)) => {
            return Ok(Err(Refusal::Memory(format!(
                "the free memory of {} could not be read ({why})",
                device.label()
            ))));
        }
        Err(MemoryUnread::Failed(why)) => {
            return Ok(Err(Refusal::Unreadable(format!(
                "the free memory of {}, which the test's memory declaration needs, could not be read: {why}",
                device.label()
            ))));
        }
    };
    let budget_file = dir.join(format!("{key}.budget"));
    let recorded = if held > 0 { read_budget(&budget_file) } else { None };
    // What the declaring holders may share: what the device had free when the first of them took
    // it, less what other programs have taken since; the whole device when the driver cannot tell.
    let budget = match (recorded, now_free) {
        (Some(recorded), Some(free)) => recorded.min(free.saturating_add(held)),
        (None, Some(free)) => free.saturating_add(held),
        (Some(recorded), None) => recorded,
        (None, None) => device.total_memory,
    };
    if let Some(min_free) = demand.min_free {
        let refusal = match now_free {
            Some(free) if free < min_free => Some(format!(
                "{} has {} free, and the test needs min_free_memory = \"{}\" (other processes hold the rest)",
                device.label(),
                format_bytes(free),
                format_bytes_needed(min_free)
            )),
            // Free now, but reserved by the tests holding the device, which may not have
            // allocated it yet.
            Some(_) if held.saturating_add(min_free) > budget => Some(format!(
                "{}: the tests holding it reserve {} of the {} it had free, and the test needs min_free_memory = \
                 \"{}\"",
                device.label(),
                format_bytes_needed(held),
                format_bytes(budget),
                format_bytes_needed(min_free)
            )),
            Some(_) => None,
            None => Some(format!(
                "the free memory of {} cannot be read (the driver lacks cuMemGetInfo_v2), so min_free_memory = \"{}\" \
                 cannot be checked",
                device.label(),
                format_bytes_needed(min_free)
            )),
        };
        if let Some(refusal) = refusal {
            return Ok(Err(Refusal::Memory(refusal)));
        }
    }
    if let Some(declared) = demand.declared
        && held.saturating_add(declared) > budget
    {
        return Ok(Err(Refusal::Memory(format!(
            "{}: the tests holding it reserve {} (their memory or min_free_memory), and this test's memory = \"{}\" \
             would not fit in the {} it had free",
            device.label(),
            format_bytes_needed(held),
            format_bytes_needed(declared),
            format_bytes(budget)
        ))));
    }
    if held == 0 {
        let _ = write_budget(&budget_file, budget);
    }
    drop(admission);
    Ok(Ok(lease))
}

/// How much memory a device has free now: `Ok(None)` when the driver cannot tell, `Err` when
/// asking failed.
pub(crate) type FreeMemory<'a> = dyn Fn(&DeviceInfo) -> Result<Option<u64>, MemoryUnread> + 'a;

/// Why the free memory of a device could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemoryUnread {
    /// For want of room, as the driver says (a full device can fail even the context that would
    /// measure it, a device in exclusive use by another process refuses it): the test waits, as
    /// for a slot.
    NoRoom(String),
    /// Any other failure (a driver that stopped answering too): an answer that will not change
    /// while the test waits for it, so the test passes over the device (and fails at once, rather
    /// than at its lease timeout, where too few devices are left).
    Failed(String),
}

/// The memory the current holders of `device`'s slots reserve: each slot whose lock someone
/// holds counts what its file says (nothing readable counts as nothing reserved).
fn reserved_by_holders(dir: &Path, device: &DeviceInfo, slots: u32) -> u64 {
    // Every slot in use, those of a run that shares the device more widely than this one too.
    (0..slots.max(slots_in_use(dir, device)))
        .filter_map(|slot| held_text(&lock_path(dir, device, slot)))
        .map(|text| parse_holder(&text).map_or(0, |h| h.reserved))
        .fold(0u64, u64::saturating_add)
}

fn read_budget(path: &Path) -> Option<u64> {
    let mut text = String::new();
    open_lock_file(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_budget(path: &Path, bytes: u64) -> std::io::Result<()> {
    let mut file = open_lock_file(path)?;
    let text = bytes.to_string();
    file.write_all(text.as_bytes())?;
    file.set_len(text.len() as u64)
}

/// The first free slot of `device`, taken by `test` reserving `reserved` bytes, when the device
/// lock allows: alone (`slots` 1) only while no one else holds the device, shared only while no
/// one holds it alone; and only while no other test is first in line for it (unless this one is,
/// `first_in_line`).
fn try_device(
    dir: &Path,
    device: &DeviceInfo,
    slots: u32,
    test: &str,
    reserved: u64,
    first_in_line: bool,
) -> Result<Option<Lease>, String> {
    // Held until this returns: long enough to keep a waiter from taking the intent between the
    // check and the taking of the device lock. The test first in line holds it already.
    let _no_one_first = if first_in_line {
        None
    } else {
        let Some(intent) = try_lock_at(&intent_path(dir, device), Hold::Shared)? else {
            return Ok(None);
        };
        Some(intent)
    };
    let hold = if slots == 1 { Hold::Exclusive } else { Hold::Shared };
    let device_lock = dir.join(format!("{}.device.lock", sanitize(&device.key())));
    let Some(whole) = try_lock_at(&device_lock, hold)? else {
        return Ok(None);
    };
    for slot in 0..slots {
        if let Some(mut file) = try_lock_at(&lock_path(dir, device, slot), Hold::Exclusive)? {
            name_holder(&mut file, test, reserved);
            return Ok(Some(Lease {
                device: device.clone(),
                slot,
                _file: file,
                _device: whole,
            }));
        }
    }
    Ok(None)
}

/// `device 0 NVIDIA H100 is held by tests::a (process 123)`, for every held slot, of this run's
/// slots or another's (which may allow more), and the test first in line for each device, where
/// that is not the one `ticket` holds. A holder is named only while its lock is held and its
/// process lives: the file of a released slot still names its last holder, and that of a lock
/// held by anything else says nothing gpu-test can vouch for. Empty where none can be named.
fn holders(dir: &Path, devices: &[&DeviceInfo], slots: u32, ticket: Option<&Ticket>) -> String {
    let mut held = Vec::new();
    for device in devices {
        let names: Vec<String> = (0..slots.max(slots_in_use(dir, device)))
            .filter_map(|slot| holder_of(&lock_path(dir, device, slot)))
            .collect();
        if !names.is_empty() {
            held.push(format!("{} is held by {}", device.label(), names.join(", ")));
        }
        let ours = ticket.is_some_and(|ticket| ticket.holds_intent(device));
        if let Some(waiter) = (!ours).then(|| holder_of(&intent_path(dir, device))).flatten() {
            held.push(format!(
                "{waiter} waited for {} first, and tests after it make way",
                device.label()
            ));
        }
    }
    held.join("; ")
}

/// Whether a test holds a slot of `device`, of this run's slots or another's.
fn is_held(dir: &Path, device: &DeviceInfo, slots: u32) -> bool {
    (0..slots.max(slots_in_use(dir, device))).any(|slot| held_text(&lock_path(dir, device, slot)).is_some())
}

/// One more than the highest slot of `device` that has a file in `dir`: every run's slots.
fn slots_in_use(dir: &Path, device: &DeviceInfo) -> u32 {
    let prefix = format!("{}.", sanitize(&device.key()));
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let slot = name.strip_prefix(&prefix)?.strip_suffix(".lock")?;
            slot.parse::<u32>().ok()
        })
        .map(|slot| slot.saturating_add(1))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceInfo {
        nth_device(0)
    }

    /// Device `ordinal` of a machine of its own (its UUID names this process).
    pub(super) fn nth_device(ordinal: usize) -> DeviceInfo {
        DeviceInfo {
            ordinal,
            name: "NVIDIA Test".to_string(),
            compute_capability: crate::cuda::version::Version::new(9, 0),
            total_memory: 16 << 30,
            multiprocessors: None,
            uuid: Some(format!("GPU-lease-test-{}-{ordinal}", std::process::id())),
            pci_bus_id: None,
            compute_mode: None,
        }
    }

    /// A test that needs two devices is first in line for both once it waits, so tests that need
    /// one cannot keep it out by taking them in turn: the devices drain for it.
    #[test]
    fn a_test_that_needs_two_devices_is_not_overtaken_by_tests_that_need_one() {
        let dir = crate::util::files::scratch_dir("queue-two");
        let (d0, d1) = (nth_device(0), nth_device(1));
        let settings = Settings {
            runtime_dir: dir.clone(),
            // Long enough for any machine; a regression fails rather than waiting ten minutes.
            lease_timeout: Duration::from_secs(60),
            ..Settings::default()
        };
        let leases = dir.join("leases");
        create_private_dirs(&leases).unwrap();
        let s1 = try_device(&leases, &d0, 1, "s1", 0, false).unwrap().expect("free");
        let s2 = try_device(&leases, &d1, 1, "s2", 0, false).unwrap().expect("free");
        let (waits, waiting) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            // Made here, so that a failure below drops it and the waiting test goes on.
            let (go_on, gone_on) = std::sync::mpsc::channel::<()>();
            let big = scope.spawn(|| {
                // Told once it has tried, and is in line, before its first pause.
                let pausing = move || {
                    waits.send(()).unwrap();
                    gone_on.recv().unwrap();
                };
                let hooks = WaitHooks {
                    pausing: &pausing,
                    waiting: &|_| {},
                };
                let free_memory = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> { Ok(None) };
                acquire("big", &[&d0, &d1], 2, &settings, MemoryDemand::default(), &free_memory, &hooks)
            });
            waiting.recv().unwrap();
            // s1 ends, and a test that needs one device comes: device 0 waits for big. (Asserted
            // once big has gone on, so that a failure cannot leave it waiting.)
            drop(s1);
            let overtook = try_device(&leases, &d0, 1, "s3", 0, false).unwrap().is_some();
            let named = holders(&leases, &[&d0], 1, None);
            drop(s2);
            go_on.send(()).unwrap();
            let taken = big.join().unwrap().expect("big gets both devices");
            assert!(!overtook, "s3 took device 0 while big waited for it");
            assert!(named.contains("big (process"), "{named}");
            assert_eq!(taken.len(), 2);
        });
        // Done waiting, big is no longer first in line anywhere.
        assert!(try_device(&leases, &d0, 1, "s4", 0, false).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn declaring(gib: u64) -> MemoryDemand {
        MemoryDemand {
            declared: Some(gib << 30),
            min_free: None,
        }
    }

    #[test]
    fn admission_follows_declared_memory_and_what_others_took() {
        let dir = crate::util::files::scratch_dir("admission");
        let device = device();
        let free = std::cell::Cell::new(16u64 << 30);
        let free_memory = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> { Ok(Some(free.get())) };
        let admit = |test: &str, demand: MemoryDemand| admit(&dir, &device, 4, test, demand, &free_memory, false).unwrap();

        let a = admit("a", declaring(6)).ok().expect("the first fits");
        // `a` allocated its 6 GiB: 10 GiB free, and the recorded 16 GiB still holds.
        free.set(10 << 30);
        let b = admit("b", declaring(6)).ok().expect("12 GiB of 16 fits");
        free.set(4 << 30);
        match admit("c", declaring(6)) {
            Err(Refusal::Memory(why)) => assert!(why.contains("reserve 12 GiB (their memory or min_free_memory)"), "{why}"),
            _ => panic!("18 GiB of 16 was admitted"),
        }
        drop(b);
        // Another program took 6 GiB meanwhile: 16 - 6 (a) - 6 (other) = 4 GiB free, so the
        // budget is 4 + 6 declared = 10 GiB, not the 16 recorded.
        free.set(4 << 30);
        match admit("d", declaring(6)) {
            Err(Refusal::Memory(why)) => assert!(why.contains("would not fit in the 10 GiB"), "{why}"),
            _ => panic!("admitted past what other programs left"),
        }
        drop(a);
        // min_free_memory is compared with what is free now; an unreadable device is no room.
        let min_free = MemoryDemand {
            declared: None,
            min_free: Some(8 << 30),
        };
        assert!(matches!(admit("e", min_free), Err(Refusal::Memory(_))));
        free.set(12 << 30);
        assert!(admit("f", min_free).is_ok());
        // Two tests that each need 8 GiB free, admitted before either allocates: the first
        // reserves its 8 GiB, and the second does not fit in what is left of the 12.
        let first = admit("f1", min_free).ok().expect("8 GiB of 12 free");
        match admit("f2", min_free) {
            Err(Refusal::Memory(why)) => assert!(
                why.contains("the tests holding it reserve 8 GiB of the 12 GiB it had free"),
                "{why}"
            ),
            _ => panic!("two tests that each need 8 GiB free were admitted to 12 GiB"),
        }
        // ...nor does one that needs 8 GiB free beside a test declaring 6 it has not allocated.
        drop(first);
        let declared = admit("f3", declaring(6)).ok().expect("6 GiB of 12");
        assert!(matches!(admit("f4", min_free), Err(Refusal::Memory(_))));
        drop(declared);
        let full = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> {
            Err(MemoryUnread::NoRoom("out of memory".to_string()))
        };
        match admit_with(&dir, &device, min_free, &full) {
            Err(Refusal::Memory(why)) => assert!(why.contains("could not be read (out of memory)"), "{why}"),
            _ => panic!("admitted without knowing the free memory"),
        }
        // Any other failure will not go away by waiting: the test fails at once, naming it.
        let failing = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> {
            Err(MemoryUnread::Failed("cuMemGetInfo_v2 failed: CUDA_ERROR_UNKNOWN (999)".to_string()))
        };
        match admit_with(&dir, &device, min_free, &failing) {
            Err(Refusal::Unreadable(why)) => assert_eq!(
                why,
                "the free memory of device 0 NVIDIA Test, which the test's memory declaration needs, could not be \
                 read: cuMemGetInfo_v2 failed: CUDA_ERROR_UNKNOWN (999)"
            ),
            _ => panic!("a driver failure was taken for no room, or for room"),
        }
        // Another process admitting to the device: wait, never block.
        let key = sanitize(&device.key());
        let busy = open_lock_file(&dir.join(format!("{key}.admit.lock"))).unwrap();
        busy.lock().unwrap();
        assert!(matches!(admit("g", declaring(1)), Err(Refusal::Full)));
        drop(busy);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn admission_counts_the_slots_of_a_run_that_shares_more_widely() {
        let dir = crate::util::files::scratch_dir("admission-wide");
        let device = device();
        // The holders have not allocated yet: all 16 GiB are free.
        let free_memory = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> { Ok(Some(16 << 30)) };
        // A run with four tests per device holds slots 2 and 3, declaring 6 GiB each.
        let take = |test: &str, demand: MemoryDemand| {
            admit(&dir, &device, 4, test, demand, &free_memory, false)
                .unwrap()
                .ok()
                .unwrap_or_else(|| panic!("{test} was refused"))
        };
        let (a, b) = (take("a", MemoryDemand::default()), take("b", MemoryDemand::default()));
        let (_c, _d) = (take("c", declaring(6)), take("d", declaring(6)));
        drop((a, b));
        // A run with two per device takes slot 0, and must count the 12 GiB of slots 2 and 3.
        match admit(&dir, &device, 2, "e", declaring(6), &free_memory, false).unwrap() {
            Err(Refusal::Memory(why)) => assert!(why.contains("reserve 12 GiB (their memory or min_free_memory)"), "{why}"),
            _ => panic!("18 GiB of 16 was admitted"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_test_that_has_the_device_to_itself_excludes_runs_that_share_it() {
        let dir = crate::util::files::scratch_dir("device-lock");
        let device = device();
        // A run that has each device to itself (1 test per device), and one that shares (2).
        let alone = try_device(&dir, &device, 1, "alone", 0, false).unwrap().expect("free");
        assert!(try_device(&dir, &device, 2, "shared", 0, false).unwrap().is_none());
        drop(alone);
        let shared = try_device(&dir, &device, 2, "shared", 0, false).unwrap().expect("free");
        assert!(try_device(&dir, &device, 1, "alone", 0, false).unwrap().is_none());
        let also = try_device(&dir, &device, 2, "also", 0, false).unwrap().expect("a second slot");
        assert_eq!((shared.slot, also.slot), (0, 1));
        assert!(try_device(&dir, &device, 2, "third", 0, false).unwrap().is_none());
        // The waiting run names the holders of the other run's slots too.
        let named = holders(&dir, &[&device], 1, None);
        assert!(named.contains("shared (process") && named.contains("also (process"), "{named}");
        // While a test waiting for the device to itself is first in line, sharing tests take no
        // new slot, so that the device drains.
        drop(also);
        let mut waiting = Ticket::take(&dir, "leaky", &[&device]).unwrap().expect("no one else takes one");
        waiting.claim("leaky", &[&device]).unwrap();
        assert!(try_device(&dir, &device, 2, "third", 0, false).unwrap().is_none());
        let named = holders(&dir, &[&device], 2, None);
        assert!(
            named.contains("leaky (process") && named.contains("waited for device 0 NVIDIA Test first"),
            "{named}"
        );
        assert!(!holders(&dir, &[&device], 1, Some(&waiting)).contains("waited for"));
        drop(shared);
        let alone = try_device(&dir, &device, 1, "alone", 0, true).unwrap().expect("drained");
        drop((waiting, alone));
        assert!(try_device(&dir, &device, 2, "third", 0, false).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_tests_that_hold_a_slot_are_named_as_holders() {
        let dir = crate::util::files::scratch_dir("holders");
        let device = device();
        let free_memory = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> { Ok(Some(16 << 30)) };
        let admit = |test: &str, demand: MemoryDemand| admit(&dir, &device, 4, test, demand, &free_memory, false).unwrap();
        let big = admit("big", declaring(12)).ok().expect("fits");
        // Refused for memory after it had written its name into a slot's file.
        assert!(matches!(admit("refused", declaring(8)), Err(Refusal::Memory(_))));
        let finished = admit("finished", declaring(1)).ok().expect("fits");
        drop(finished);
        let named = holders(&dir, &[&device], 4, None);
        assert!(named.contains("big (process"), "{named}");
        assert!(!named.contains("refused") && !named.contains("finished"), "{named}");
        drop(big);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn admit_with(
        dir: &Path,
        device: &DeviceInfo,
        demand: MemoryDemand,
        free_memory: &FreeMemory<'_>,
    ) -> Result<Lease, Refusal> {
        admit(dir, device, 4, "x", demand, free_memory, false).unwrap()
    }
}
