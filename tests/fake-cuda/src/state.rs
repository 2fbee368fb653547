//! The fake driver's process-wide state.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::config::Config;

/// The configuration, read once; a bad configuration stops the process with its message, since a
/// test that misconfigures its fake cannot mean anything.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("fake-cuda: {message}");
            std::process::abort();
        }
    })
}

/// A primary context: one per device, reference-counted like the real one.
#[derive(Debug)]
pub struct Context {
    pub retained: u32,
    /// A sticky error (an illegal address, say): every later call on the context returns it.
    pub sticky: Option<i32>,
}

/// Mutable state behind one lock.
#[derive(Debug, Default)]
pub struct State {
    pub initialised: bool,
    /// Context handles are `ordinal + 1` cast to a pointer; this maps ordinals to contexts.
    pub contexts: HashMap<i32, Context>,
    /// Device allocations: address to bytes.
    pub allocations: HashMap<u64, Box<[u8]>>,
    /// Bytes freed with `cuMemFreeAsync` that the stream-ordered pool keeps until trimmed (with
    /// `FAKE_CUDA_MEMORY_POOLS=1`): in use, as far as `cuMemGetInfo` tells.
    pub pool_cached: u64,
    /// What the driver keeps for good once something used it (`FAKE_CUDA_KEPT_ON_FIRST_USE`).
    pub kept: u64,
    /// Recorded events: handle to the context ordinal.
    pub events: HashMap<usize, i32>,
    pub streams: HashMap<usize, i32>,
    pub next_handle: usize,
    pub elapsed_calls: usize,
    /// How often each call with an injected failure has been made.
    pub calls: HashMap<String, usize>,
    /// How often each call that may hang has been made.
    pub hang_calls: HashMap<String, usize>,
}

pub fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    let lock = STATE.get_or_init(|| {
        Mutex::new(State {
            next_handle: 0x1000,
            ..State::default()
        })
    });
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    pub fn new_handle(&mut self) -> usize {
        self.next_handle += 16;
        self.next_handle
    }

    /// The allocation holding `[address, address + len)`, as a mutable slice.
    pub fn memory(&mut self, address: u64, len: usize) -> Option<&mut [u8]> {
        self.allocations.iter_mut().find_map(|(base, bytes)| {
            let offset = address.checked_sub(*base)? as usize;
            let end = offset.checked_add(len)?;
            (end <= bytes.len()).then(|| &mut bytes[offset..end])
        })
    }
}

thread_local! {
    /// The context current on this thread, as an ordinal.
    pub static CURRENT: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Appends a line to `FAKE_CUDA_LOG`, if set: `<pid> <event> <ordinal>`.
pub fn log(event: &str, ordinal: i32) {
    if let Some(path) = &config().log
        && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(file, "{} {event} {ordinal}", std::process::id());
    }
}
