//! The driver API entry points the probe, gpu-test's `Gpu` handle and cudarc's context, stream,
//! event, memory and module calls use.
//!
//! Contexts, streams and events are bookkeeping; device memory is host memory, so copies are
//! real; kernels do not run (a launch is recorded and returns its injected result).

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::state::config;
use crate::state::{self, CURRENT, state};

const SUCCESS: c_int = 0;
const INVALID_VALUE: c_int = 1;
const NOT_INITIALIZED: c_int = 3;
const NO_DEVICE: c_int = 100;
const INVALID_DEVICE: c_int = 101;
const INVALID_CONTEXT: c_int = 201;
const INVALID_HANDLE: c_int = 400;
const NOT_SUPPORTED: c_int = 801;

type Handle = *mut c_void;

/// Writes `value` through `out` unless it is null.
fn put<T>(out: *mut T, value: T) -> c_int {
    if out.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: the caller (the code under test) passes a valid out-pointer, as the CUDA API
    // requires; null is rejected above.
    unsafe { out.write(value) };
    SUCCESS
}

/// A call configured to hang never returns; one configured to crash takes the process down with
/// SIGSEGV, as a driver that dereferences a bad pointer would.
pub(crate) fn misbehave(call: &str) {
    let config = config();
    if config.crash.iter().any(|c| c == call) {
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSEGV) };
    }
    let Some(after) = config
        .hang
        .iter()
        .find(|(c, _)| c == call)
        .map(|(_, after)| *after)
    else {
        return;
    };
    if nth_call(&mut state().hang_calls, call) < after {
        return;
    }
    HUNG.store(true, Ordering::SeqCst);
    loop {
        std::thread::park();
    }
}

/// Whether a call has not returned (`FAKE_CUDA_HANG`).
static HUNG: AtomicBool = AtomicBool::new(false);

/// With `FAKE_CUDA_EXIT_WAITS=1`, registered at `cuInit`: the process's exit waits for a call
/// that never returned.
extern "C" fn wait_for_hung_calls() {
    if HUNG.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// The injected result for this call, counting calls per name.
fn injected(call: &str, ordinal: Option<i32>) -> Option<c_int> {
    misbehave(call);
    let nth = nth_call(&mut state().calls, call);
    config().failure(call, ordinal, nth)
}

/// Which call of its name this is (0 for the first), counted in `counts`.
fn nth_call(counts: &mut std::collections::HashMap<String, usize>, call: &str) -> usize {
    let count = counts.entry(call.to_string()).or_insert(0);
    *count += 1;
    *count - 1
}

/// The checks every call after `cuInit` makes: initialised, then any injected failure.
fn ready(call: &str, ordinal: Option<i32>) -> Result<(), c_int> {
    if let Some(code) = injected(call, ordinal) {
        return Err(code);
    }
    if !state().initialised {
        return Err(NOT_INITIALIZED);
    }
    Ok(())
}

fn device(ordinal: c_int) -> Result<&'static crate::config::Device, c_int> {
    usize::try_from(ordinal)
        .ok()
        .and_then(|i| config().devices.get(i))
        .ok_or(INVALID_DEVICE)
}

/// The current context's ordinal, or its sticky error.
fn current_context(call: &str) -> Result<i32, c_int> {
    let ordinal = CURRENT.with(|c| c.get()).ok_or(INVALID_CONTEXT)?;
    // Counted before taking the state's lock, which `injected` takes too.
    let injected = injected(call, Some(ordinal));
    let mut state = state();
    if !state.initialised {
        return Err(NOT_INITIALIZED);
    }
    let context = state.contexts.get_mut(&ordinal).ok_or(INVALID_CONTEXT)?;
    if let Some(code) = context.sticky {
        return Err(code);
    }
    if let Some(code) = injected {
        if crate::is_sticky(code) {
            context.sticky = Some(code);
        }
        return Err(code);
    }
    Ok(ordinal)
}

fn result(outcome: Result<(), c_int>) -> c_int {
    outcome.err().unwrap_or(SUCCESS)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDriverGetVersion(version: *mut c_int) -> c_int {
    misbehave("cuDriverGetVersion");
    let config = config();
    if config.version_result != 0 {
        return config.version_result;
    }
    put(version, config.driver_version)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuInit(_flags: c_uint) -> c_int {
    misbehave("cuInit");
    let config = config();
    static AT_EXIT: Once = Once::new();
    if config.exit_waits {
        // SAFETY: a plain extern "C" function that never unwinds.
        AT_EXIT.call_once(|| unsafe {
            libc::atexit(wait_for_hung_calls);
        });
    }
    if config.init_result != 0 {
        return config.init_result;
    }
    if config.devices.is_empty() {
        return NO_DEVICE;
    }
    state().initialised = true;
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetCount(count: *mut c_int) -> c_int {
    if let Err(code) = ready("cuDeviceGetCount", None) {
        return code;
    }
    let config = config();
    put(
        count,
        config.device_count.unwrap_or(config.devices.len() as c_int),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGet(out: *mut c_int, ordinal: c_int) -> c_int {
    if let Err(code) = ready("cuDeviceGet", Some(ordinal)).and_then(|()| device(ordinal).map(|_| ())) {
        return code;
    }
    put(out, ordinal)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, ordinal: c_int) -> c_int {
    let found = ready("cuDeviceGetName", Some(ordinal)).and_then(|()| device(ordinal));
    let device = match found {
        Ok(device) => device,
        Err(code) => return code,
    };
    if name.is_null() || len <= 0 {
        return INVALID_VALUE;
    }
    let bytes = device.name.as_bytes();
    let n = bytes.len().min(len as usize - 1);
    // SAFETY: `name` points to at least `len` writable bytes, as the API requires.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), name.cast::<u8>(), n);
        name.add(n).write(0);
    }
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetAttribute(value: *mut c_int, attribute: c_int, ordinal: c_int) -> c_int {
    let found = ready("cuDeviceGetAttribute", Some(ordinal)).and_then(|()| device(ordinal));
    let device = match found {
        Ok(device) => device,
        Err(code) => return code,
    };
    let answer = match attribute {
        16 => 132,                          // multiprocessors
        20 => device.compute_mode,          // compute mode
        33 => device.physical_index as i32, // PCI bus id
        75 => device.major,
        76 => device.minor,
        // Memory pools: with them cudarc allocates with cuMemAllocAsync, else cuMemAlloc_v2.
        115 => i32::from(config().memory_pools),
        _ => 0,
    };
    put(value, answer)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, ordinal: c_int) -> c_int {
    match ready("cuDeviceTotalMem_v2", Some(ordinal)).and_then(|()| device(ordinal)) {
        Ok(device) => put(bytes, device.memory as usize),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetUuid(uuid: *mut [u8; 16], ordinal: c_int) -> c_int {
    match ready("cuDeviceGetUuid", Some(ordinal)).and_then(|()| device(ordinal)) {
        Ok(device) => put(uuid, device.uuid),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetUuid_v2(uuid: *mut [u8; 16], ordinal: c_int) -> c_int {
    cuDeviceGetUuid(uuid, ordinal)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetPCIBusId(bus: *mut c_char, len: c_int, ordinal: c_int) -> c_int {
    let device = match ready("cuDeviceGetPCIBusId", Some(ordinal)).and_then(|()| device(ordinal)) {
        Ok(device) => device,
        Err(code) => return code,
    };
    let text = format!("0000:{:02x}:00.0\0", device.physical_index + 1);
    if bus.is_null() || (len as usize) < text.len() {
        return INVALID_VALUE;
    }
    // SAFETY: `bus` points to at least `len` writable bytes and the text fits.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), bus.cast::<u8>(), text.len()) };
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuGetErrorName(code: c_int, out: *mut *const c_char) -> c_int {
    match crate::error_name(code) {
        Some((name, _)) => put(out, name.as_ptr().cast()),
        None => INVALID_VALUE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuGetErrorString(code: c_int, out: *mut *const c_char) -> c_int {
    match crate::error_name(code) {
        Some((_, message)) => put(out, message.as_ptr().cast()),
        None => INVALID_VALUE,
    }
}

/// The driver's private table of internal entry points, which NVIDIA's own libraries (NVRTC
/// among them, when it compiles) ask `libcuda.so.1` for. The fake has none to give; a real NVRTC
/// handles the refusal, but not a missing symbol.
#[unsafe(no_mangle)]
pub extern "C" fn cuGetExportTable(table: *mut *const c_void, _id: *const c_void) -> c_int {
    if !table.is_null() {
        // SAFETY: a valid out-pointer when not null, as the driver API requires.
        unsafe { table.write(std::ptr::null()) };
    }
    NOT_SUPPORTED
}

fn context_handle(ordinal: i32) -> Handle {
    (ordinal as usize + 1) as Handle
}

fn context_ordinal(handle: Handle) -> Option<i32> {
    (!handle.is_null()).then(|| handle as usize as i32 - 1)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxRetain(out: *mut Handle, ordinal: c_int) -> c_int {
    if let Err(code) =
        ready("cuDevicePrimaryCtxRetain", Some(ordinal)).and_then(|()| device(ordinal).map(|_| ()))
    {
        return code;
    }
    {
        let mut state = state();
        let context = state.contexts.entry(ordinal).or_insert(state::Context {
            retained: 0,
            sticky: None,
        });
        context.retained += 1;
    }
    state::log("retain", ordinal);
    put(out, context_handle(ordinal))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(ordinal: c_int) -> c_int {
    if let Some(code) = injected("cuDevicePrimaryCtxRelease_v2", Some(ordinal)) {
        return code;
    }
    {
        let mut state = state();
        let Some(context) = state.contexts.get_mut(&ordinal) else {
            drop(state);
            state::log("release-unretained", ordinal);
            return INVALID_CONTEXT;
        };
        context.retained = context.retained.saturating_sub(1);
        if context.retained == 0 {
            state.contexts.remove(&ordinal);
        }
    }
    state::log("release", ordinal);
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxGetCurrent(out: *mut Handle) -> c_int {
    if let Some(code) = injected("cuCtxGetCurrent", None) {
        return code;
    }
    let current = CURRENT.with(|c| c.get());
    put(out, current.map_or(std::ptr::null_mut(), context_handle))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSetCurrent(handle: Handle) -> c_int {
    let ordinal = context_ordinal(handle);
    if let Some(code) = injected("cuCtxSetCurrent", ordinal) {
        return code;
    }
    if let Some(ordinal) = ordinal
        && !state().contexts.contains_key(&ordinal)
    {
        return INVALID_CONTEXT;
    }
    CURRENT.with(|c| c.set(ordinal));
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxGetDevice(out: *mut c_int) -> c_int {
    match current_context("cuCtxGetDevice") {
        Ok(ordinal) => put(out, ordinal),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSynchronize() -> c_int {
    result(current_context("cuCtxSynchronize").map(|_| ()))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> c_int {
    let ordinal = match current_context("cuMemGetInfo_v2") {
        Ok(ordinal) => ordinal,
        Err(code) => return code,
    };
    let memory = device(ordinal).map(|d| d.memory as usize).unwrap_or(0);
    let state = state();
    let used: usize = state.allocations.values().map(|a| a.len()).sum::<usize>()
        + state.pool_cached as usize
        + state.kept as usize
        + config().used_elsewhere as usize;
    let reported = config().reported_free.map(|bytes| bytes as usize);
    put(free, reported.unwrap_or(memory.saturating_sub(used)));
    put(total, memory)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamCreate(out: *mut Handle, _flags: c_uint) -> c_int {
    let ordinal = match current_context("cuStreamCreate") {
        Ok(ordinal) => ordinal,
        Err(code) => return code,
    };
    let mut state = state();
    let handle = state.new_handle();
    state.streams.insert(handle, ordinal);
    put(out, handle as Handle)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamCreateWithPriority(out: *mut Handle, flags: c_uint, _priority: c_int) -> c_int {
    cuStreamCreate(out, flags)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamDestroy_v2(handle: Handle) -> c_int {
    match state().streams.remove(&(handle as usize)) {
        Some(_) => SUCCESS,
        None => INVALID_HANDLE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamSynchronize(_stream: Handle) -> c_int {
    result(current_context("cuStreamSynchronize").map(|_| ()))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamQuery(_stream: Handle) -> c_int {
    result(current_context("cuStreamQuery").map(|_| ()))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamWaitEvent(_stream: Handle, _event: Handle, _flags: c_uint) -> c_int {
    result(current_context("cuStreamWaitEvent").map(|_| ()))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventCreate(out: *mut Handle, _flags: c_uint) -> c_int {
    let ordinal = match current_context("cuEventCreate") {
        Ok(ordinal) => ordinal,
        Err(code) => return code,
    };
    let mut state = state();
    let handle = state.new_handle();
    state.events.insert(handle, ordinal);
    put(out, handle as Handle)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventRecord(event: Handle, _stream: Handle) -> c_int {
    if let Err(code) = current_context("cuEventRecord") {
        return code;
    }
    match state().events.contains_key(&(event as usize)) {
        true => SUCCESS,
        false => INVALID_HANDLE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventSynchronize(_event: Handle) -> c_int {
    result(current_context("cuEventSynchronize").map(|_| ()))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventQuery(_event: Handle) -> c_int {
    result(current_context("cuEventQuery").map(|_| ()))
}

/// Returns the configured elapsed times in turn (`FAKE_CUDA_EVENT_MS`), cycling.
#[unsafe(no_mangle)]
pub extern "C" fn cuEventElapsedTime(ms: *mut f32, _start: Handle, _end: Handle) -> c_int {
    if let Err(code) = current_context("cuEventElapsedTime") {
        return code;
    }
    let times = &config().event_ms;
    let mut state = state();
    let value = times[state.elapsed_calls % times.len()];
    state.elapsed_calls += 1;
    put(ms, value)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventElapsedTime_v2(ms: *mut f32, start: Handle, end: Handle) -> c_int {
    cuEventElapsedTime(ms, start, end)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventDestroy_v2(event: Handle) -> c_int {
    match state().events.remove(&(event as usize)) {
        Some(_) => SUCCESS,
        None => INVALID_HANDLE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemAlloc_v2(out: *mut u64, bytes: usize) -> c_int {
    let ordinal = match current_context("cuMemAlloc_v2") {
        Ok(ordinal) => ordinal,
        Err(code) => return code,
    };
    let capacity = device(ordinal).map(|d| d.memory).unwrap_or(0);
    let mut state = state();
    let used: u64 =
        state.allocations.values().map(|a| a.len() as u64).sum::<u64>() + state.pool_cached + state.kept;
    if bytes > (1 << 31) || used.saturating_add(bytes as u64) > capacity {
        return 2; // CUDA_ERROR_OUT_OF_MEMORY
    }
    let buffer = vec![0u8; bytes.max(1)].into_boxed_slice();
    let address = buffer.as_ptr() as u64;
    state.allocations.insert(address, buffer);
    put(out, address)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemAllocAsync(out: *mut u64, bytes: usize, _stream: Handle) -> c_int {
    {
        let mut state = state();
        if state.kept == 0 {
            state.kept = config().kept_on_first_use;
        }
    }
    cuMemAlloc_v2(out, bytes)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFree_v2(address: u64) -> c_int {
    if let Some(code) = injected("cuMemFree_v2", None) {
        return code;
    }
    match state().allocations.remove(&address) {
        Some(_) => SUCCESS,
        None => INVALID_VALUE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFreeAsync(address: u64, _stream: Handle) -> c_int {
    if !config().memory_pools {
        return cuMemFree_v2(address);
    }
    // The pool keeps the memory for reuse: still in use until trimmed.
    let mut state = state();
    match state.allocations.remove(&address) {
        Some(bytes) => {
            state.pool_cached += bytes.len() as u64;
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDeviceGetDefaultMemPool(pool: *mut Handle, ordinal: c_int) -> c_int {
    match ready("cuDeviceGetDefaultMemPool", Some(ordinal)).and_then(|()| device(ordinal)) {
        Ok(_) => put(pool, (0x7000 + ordinal as usize) as Handle),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemPoolTrimTo(_pool: Handle, keep: usize) -> c_int {
    let mut state = state();
    state.pool_cached = state.pool_cached.min(keep as u64);
    SUCCESS
}

fn copy_to_device(call: &str, device: u64, host: *const c_void, bytes: usize) -> c_int {
    if let Err(code) = current_context(call) {
        return code;
    }
    let mut state = state();
    let Some(target) = state.memory(device, bytes) else {
        return INVALID_VALUE;
    };
    if bytes > 0 {
        // SAFETY: `host` points to `bytes` readable bytes, as the API requires.
        let source = unsafe { std::slice::from_raw_parts(host.cast::<u8>(), bytes) };
        target.copy_from_slice(source);
    }
    SUCCESS
}

fn copy_to_host(call: &str, host: *mut c_void, device: u64, bytes: usize) -> c_int {
    if let Err(code) = current_context(call) {
        return code;
    }
    let mut state = state();
    let Some(source) = state.memory(device, bytes) else {
        return INVALID_VALUE;
    };
    if bytes > 0 {
        // SAFETY: `host` points to `bytes` writable bytes, as the API requires.
        let target = unsafe { std::slice::from_raw_parts_mut(host.cast::<u8>(), bytes) };
        target.copy_from_slice(source);
    }
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyHtoD_v2(device: u64, host: *const c_void, bytes: usize) -> c_int {
    copy_to_device("cuMemcpyHtoD_v2", device, host, bytes)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyHtoDAsync_v2(
    device: u64,
    host: *const c_void,
    bytes: usize,
    _stream: Handle,
) -> c_int {
    copy_to_device("cuMemcpyHtoDAsync_v2", device, host, bytes)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoH_v2(host: *mut c_void, device: u64, bytes: usize) -> c_int {
    copy_to_host("cuMemcpyDtoH_v2", host, device, bytes)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoHAsync_v2(
    host: *mut c_void,
    device: u64,
    bytes: usize,
    _stream: Handle,
) -> c_int {
    copy_to_host("cuMemcpyDtoHAsync_v2", host, device, bytes)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoDAsync_v2(target: u64, source: u64, bytes: usize, _stream: Handle) -> c_int {
    if let Err(code) = current_context("cuMemcpyDtoDAsync_v2") {
        return code;
    }
    let mut state = state();
    let Some(from) = state.memory(source, bytes).map(|s| s.to_vec()) else {
        return INVALID_VALUE;
    };
    match state.memory(target, bytes) {
        Some(to) => {
            to.copy_from_slice(&from);
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

/// Device memory is host memory here, so a copy between devices is a plain copy.
#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyPeerAsync(
    target: u64,
    _target_context: Handle,
    source: u64,
    _source_context: Handle,
    bytes: usize,
    stream: Handle,
) -> c_int {
    cuMemcpyDtoDAsync_v2(target, source, bytes, stream)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8Async(device: u64, value: u8, count: usize, _stream: Handle) -> c_int {
    if let Err(code) = current_context("cuMemsetD8Async") {
        return code;
    }
    match state().memory(device, count) {
        Some(target) => {
            target.fill(value);
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD8_v2(device: u64, value: u8, count: usize) -> c_int {
    cuMemsetD8Async(device, value, count, std::ptr::null_mut())
}

#[unsafe(no_mangle)]
pub extern "C" fn cuModuleLoadData(out: *mut Handle, _image: *const c_void) -> c_int {
    if let Err(code) = current_context("cuModuleLoadData") {
        return code;
    }
    let handle = state().new_handle();
    put(out, handle as Handle)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuModuleUnload(_module: Handle) -> c_int {
    SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuModuleGetFunction(out: *mut Handle, _module: Handle, _name: *const c_char) -> c_int {
    if let Err(code) = current_context("cuModuleGetFunction") {
        return code;
    }
    let handle = state().new_handle();
    put(out, handle as Handle)
}

/// Records the launch and returns its injected result; a sticky code poisons the context.
#[unsafe(no_mangle)]
pub extern "C" fn cuLaunchKernel(
    _function: Handle,
    _grid_x: c_uint,
    _grid_y: c_uint,
    _grid_z: c_uint,
    _block_x: c_uint,
    _block_y: c_uint,
    _block_z: c_uint,
    _shared: c_uint,
    _stream: Handle,
    _params: *mut *mut c_void,
    _extra: *mut *mut c_void,
) -> c_int {
    result(current_context("cuLaunchKernel").map(|_| ()))
}
