//! Device leases: a test holds one lease per device it uses for as long as its body runs, so that
//! parallel tests (threads under libtest, processes under nextest, or separate runs on the same
//! machine) never share a device beyond `GPU_TEST_TESTS_PER_DEVICE`.
//!
//! A lease is an exclusive `flock` on `<runtime dir>/leases/<key>.<slot>.lock` (the key is the
//! device's UUID without its `GPU-` or `MIG-`, see `DeviceInfo::key`), one slot per allowed
//! holder, together with a lock on `<key>.device.lock`: exclusive for a test
//! that has the device to itself (`GPU_TEST_TESTS_PER_DEVICE=1`), shared where tests share it.
//! The device lock keeps a test that needs the device alone (a leak check measures it
//! device-wide) apart from a run that shares it, whatever each run's setting. A test waiting for a
//! device to itself holds `<key>.alone.lock`, and tests that share take no new slot while
//! it is held, so that a sharing run that always has a test on the device cannot keep it out for
//! ever. The kernel drops every lock when its file is closed: when the lease is dropped, when the
//! body panics (the lease unwinds with it), or when the process dies.
//!
//! A test that declares its memory (`memory = "8 GiB"`) or needs free memory
//! (`min_free_memory`) is admitted under the device's admission lock (`<key>.admit.lock`): the
//! memory the tests holding the device reserve (each its `memory` or its `min_free_memory`,
//! whichever is more) plus its own must fit in what the device had
//! free when the first of those holders took it (recorded in `<key>.budget`), less what other
//! programs took since; and the free memory now must be at least `min_free_memory`. Holding the admission lock while checking and taking a
//! slot makes the two one step for every process.

use std::fs::{File, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::faults;
use crate::probe::DeviceInfo;
use crate::settings::Settings;
use crate::util::files::{create_private_dirs, open_existing, open_lock_file, sanitize};
use crate::util::format::{count, escape_control, format_bytes, format_bytes_needed, format_duration};
use crate::util::process::process_start_time;

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
    // The devices this test, waiting for one to itself, keeps sharing tests from (until it returns).
    let mut waiting_alone: Vec<(String, File)> = Vec::new();
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
            match admit(&dir, device, slots, test, demand, free_memory)? {
                Ok(lease) => held.push(lease),
                Err(Refusal::Memory(why)) => refusals.push(why),
                Err(Refusal::Full) => full = true,
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
        drop(held);
        if slots == 1 {
            for device in &usable {
                let key = device.key();
                if !waiting_alone.iter().any(|(held, _)| *held == key)
                    && let Some(intent) = wait_alone(&dir, device, test)
                {
                    waiting_alone.push((key, intent));
                }
            }
        }
        let waited = started.elapsed();
        // Who holds the devices, and what else keeps the test out (free memory it needs that
        // other processes hold); a device held by something no test of gpu-test's can be named
        // for (another PID namespace) is still said to be held.
        let why = || {
            let mut parts = Vec::new();
            match holders(&dir, &usable, slots) {
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

/// A slot of `device` for a test with `demand`: the first free one, when the memory fits too.
fn admit(
    dir: &Path,
    device: &DeviceInfo,
    slots: u32,
    test: &str,
    demand: MemoryDemand,
    free_memory: &FreeMemory<'_>,
) -> Result<Result<Lease, Refusal>, String> {
    if demand.is_empty() {
        return try_device(dir, device, slots, test, 0).map(|lease| lease.ok_or(Refusal::Full));
    }
    let key = sanitize(&device.key());
    // Another process is admitting a test to this device: try again shortly, as for a held slot,
    // so that a process stuck in the driver meanwhile holds up no one past their lease timeout.
    let Some(admission) = try_lock_at(&dir.join(format!("{key}.admit.lock")), Hold::Exclusive)? else {
        return Ok(Err(Refusal::Full));
    };
    let held = declared_by_holders(dir, device, slots);
    // What the test reserves while it holds the device: its `memory`, or the `min_free_memory`
    // it asked to find free, whichever is more; a test admitted after it, before it has
    // allocated, counts it as taken.
    let reserved = demand.declared.unwrap_or(0).max(demand.min_free.unwrap_or(0));
    // A slot first: memory is measured only on a device this test could take, so that a waiting
    // test opens no context on a device others are using (a leak check there would count it).
    let Some(lease) = try_device(dir, device, slots, test, reserved)? else {
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
fn declared_by_holders(dir: &Path, device: &DeviceInfo, slots: u32) -> u64 {
    // Every slot in use, those of a run that shares the device more widely than this one too.
    (0..slots.max(slots_in_use(dir, device)))
        .filter_map(|slot| held_text(&lock_path(dir, device, slot)))
        .map(|text| parse_holder(&text).map_or(0, |h| h.declared))
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

fn alone_path(dir: &Path, device: &DeviceInfo) -> PathBuf {
    dir.join(format!("{}.alone.lock", sanitize(&device.key())))
}

/// The lock by which a test waiting for `device` to itself keeps tests that share it from taking
/// new slots, if it could be taken now (a sharing test holds it for a moment as it takes a slot).
fn wait_alone(dir: &Path, device: &DeviceInfo, test: &str) -> Option<File> {
    let mut intent = try_lock_at(&alone_path(dir, device), Hold::Exclusive).ok()??;
    // Who waits, for the message of a sharing test it holds back.
    name_holder(&mut intent, test, 0);
    Some(intent)
}

/// A lease file's text: `<pid> <start time> <declared bytes> <test>`.
fn holder_text(test: &str, declared: u64) -> String {
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or(0);
    format!("{pid} {start} {declared} {test}")
}

/// Writes into a lease file just locked who holds it, for the message of a test that waits: one
/// write, then the length.
fn name_holder(file: &mut File, test: &str, declared: u64) {
    let holder = holder_text(test, declared);
    let _ = file.write_all(holder.as_bytes());
    let _ = file.set_len(holder.len() as u64);
}

/// How a lease file is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Exclusive,
    Shared,
}

/// The lease file at `path`, locked as `hold` asks when no other lock stands in the way, else
/// `None`; the error names the file.
fn try_lock_at(path: &Path, hold: Hold) -> Result<Option<File>, String> {
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

/// The first free slot of `device`, taken by `test` declaring `declared` bytes, when the device
/// lock allows: alone (`slots` 1) only while no one else holds the device, shared only while no
/// one holds it alone or waits to.
fn try_device(dir: &Path, device: &DeviceInfo, slots: u32, test: &str, declared: u64) -> Result<Option<Lease>, String> {
    // Held until this returns: long enough to keep a waiter from taking the intent between the
    // check and the taking of the device lock.
    let _not_waited_for = if slots > 1 {
        let Some(intent) = try_lock_at(&alone_path(dir, device), Hold::Shared)? else {
            return Ok(None);
        };
        Some(intent)
    } else {
        None
    };
    let hold = if slots == 1 { Hold::Exclusive } else { Hold::Shared };
    let device_lock = dir.join(format!("{}.device.lock", sanitize(&device.key())));
    let Some(whole) = try_lock_at(&device_lock, hold)? else {
        return Ok(None);
    };
    for slot in 0..slots {
        if let Some(mut file) = try_lock_at(&lock_path(dir, device, slot), Hold::Exclusive)? {
            name_holder(&mut file, test, declared);
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
/// slots or another's (which may allow more). A holder is named only while its lock is held and
/// its process lives: the file of a released slot still names its last holder, and that of a lock
/// held by anything else says nothing gpu-test can vouch for. Empty where none can be named.
fn holders(dir: &Path, devices: &[&DeviceInfo], slots: u32) -> String {
    let mut held = Vec::new();
    for device in devices {
        let names: Vec<String> = (0..slots.max(slots_in_use(dir, device)))
            .filter_map(|slot| holder_of(&lock_path(dir, device, slot)))
            .collect();
        if !names.is_empty() {
            held.push(format!("{} is held by {}", device.label(), names.join(", ")));
        }
        // A test of another run waiting to have the device to itself, which this sharing test
        // makes way for.
        let waiting = (slots > 1)
            .then(|| holder_of(&alone_path(dir, device)))
            .flatten();
        if let Some(waiter) = waiting {
            held.push(format!(
                "{waiter} waits to have {} to itself, and tests that share it make way",
                device.label()
            ));
        }
    }
    held.join("; ")
}

/// The text of a lease file that is there and whose lock someone holds: a slot's file keeps
/// naming its last holder once released.
fn held_text(path: &Path) -> Option<String> {
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
fn holder_of(path: &Path) -> Option<String> {
    living_holder(&held_text(path)?)
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

/// A lease file's `<pid> <start time> <declared bytes> <test>`.
struct HolderText<'a> {
    pid: u32,
    start: u64,
    declared: u64,
    test: &'a str,
}

fn parse_holder(text: &str) -> Option<HolderText<'_>> {
    let mut fields = text.splitn(4, ' ');
    Some(HolderText {
        pid: fields.next()?.parse().ok()?,
        start: fields.next()?.parse().ok()?,
        declared: fields.next()?.parse().ok()?,
        test: fields.next()?,
    })
}

/// `tests::a (process 123)` from a lease file, if that process is still the one that wrote it.
fn living_holder(text: &str) -> Option<String> {
    let holder = parse_holder(text)?;
    let alive = process_start_time(holder.pid) == Some(holder.start);
    let declared = if holder.declared > 0 {
        format!(", reserving {}", format_bytes_needed(holder.declared))
    } else {
        String::new()
    };
    alive.then(|| format!("{} (process {}{declared})", escape_control(holder.test), holder.pid))
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

    fn device() -> DeviceInfo {
        DeviceInfo {
            ordinal: 0,
            name: "NVIDIA Test".to_string(),
            compute_capability: crate::cuda::version::Version::new(9, 0),
            total_memory: 16 << 30,
            multiprocessors: None,
            uuid: Some(format!("GPU-lease-test-{}", std::process::id())),
            pci_bus_id: None,
            compute_mode: None,
        }
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
        let admit = |test: &str, demand: MemoryDemand| admit(&dir, &device, 4, test, demand, &free_memory).unwrap();

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
            admit(&dir, &device, 4, test, demand, &free_memory)
                .unwrap()
                .ok()
                .unwrap_or_else(|| panic!("{test} was refused"))
        };
        let (a, b) = (take("a", MemoryDemand::default()), take("b", MemoryDemand::default()));
        let (_c, _d) = (take("c", declaring(6)), take("d", declaring(6)));
        drop((a, b));
        // A run with two per device takes slot 0, and must count the 12 GiB of slots 2 and 3.
        match admit(&dir, &device, 2, "e", declaring(6), &free_memory).unwrap() {
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
        let alone = try_device(&dir, &device, 1, "alone", 0).unwrap().expect("free");
        assert!(try_device(&dir, &device, 2, "shared", 0).unwrap().is_none());
        drop(alone);
        let shared = try_device(&dir, &device, 2, "shared", 0).unwrap().expect("free");
        assert!(try_device(&dir, &device, 1, "alone", 0).unwrap().is_none());
        let also = try_device(&dir, &device, 2, "also", 0).unwrap().expect("a second slot");
        assert_eq!((shared.slot, also.slot), (0, 1));
        assert!(try_device(&dir, &device, 2, "third", 0).unwrap().is_none());
        // The waiting run names the holders of the other run's slots too.
        let named = holders(&dir, &[&device], 1);
        assert!(named.contains("shared (process") && named.contains("also (process"), "{named}");
        // While a test waits for the device to itself, sharing tests take no new slot, so that
        // the device drains.
        drop(also);
        let waiting = wait_alone(&dir, &device, "leaky").expect("no one else waits");
        assert!(try_device(&dir, &device, 2, "third", 0).unwrap().is_none());
        let named = holders(&dir, &[&device], 2);
        assert!(
            named.contains("leaky (process") && named.contains("waits to have device 0 NVIDIA Test to itself"),
            "{named}"
        );
        drop(shared);
        let alone = try_device(&dir, &device, 1, "alone", 0).unwrap().expect("drained");
        drop((waiting, alone));
        assert!(try_device(&dir, &device, 2, "third", 0).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_tests_that_hold_a_slot_are_named_as_holders() {
        let dir = crate::util::files::scratch_dir("holders");
        let device = device();
        let free_memory = |_: &DeviceInfo| -> Result<Option<u64>, MemoryUnread> { Ok(Some(16 << 30)) };
        let admit = |test: &str, demand: MemoryDemand| admit(&dir, &device, 4, test, demand, &free_memory).unwrap();
        let big = admit("big", declaring(12)).ok().expect("fits");
        // Refused for memory after it had written its name into a slot's file.
        assert!(matches!(admit("refused", declaring(8)), Err(Refusal::Memory(_))));
        let finished = admit("finished", declaring(1)).ok().expect("fits");
        drop(finished);
        let named = holders(&dir, &[&device], 4);
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
        admit(dir, device, 4, "x", demand, free_memory).unwrap()
    }
}
