//! The NVRTC entry points cudarc's `compile_ptx` uses. Compiling returns a stand-in PTX text that
//! holds the source, so a test can see what was compiled; nothing is really compiled.

use std::ffi::{CStr, c_char, c_int};
use std::sync::Mutex;

use crate::state::config;

const NVRTC_SUCCESS: c_int = 0;
const NVRTC_ERROR_INVALID_INPUT: c_int = 3;
const NVRTC_ERROR_BUILTIN_OPERATION_FAILURE: c_int = 7;

struct Program {
    ptx: Vec<u8>,
}

static PROGRAMS: Mutex<Vec<(usize, Program)>> = Mutex::new(Vec::new());

fn put<T>(out: *mut T, value: T) -> c_int {
    if out.is_null() {
        return NVRTC_ERROR_INVALID_INPUT;
    }
    // SAFETY: NVRTC's contract: `out` is a valid out-pointer; null is rejected above.
    unsafe { out.write(value) };
    NVRTC_SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcVersion(major: *mut c_int, minor: *mut c_int) -> c_int {
    let (ma, mi) = config().nvrtc_version;
    put(major, ma);
    put(minor, mi)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcGetErrorString(code: c_int) -> *const c_char {
    let text: &'static [u8] = match code {
        0 => b"NVRTC_SUCCESS\0",
        3 => b"NVRTC_ERROR_INVALID_INPUT\0",
        6 => b"NVRTC_ERROR_COMPILATION\0",
        7 => b"NVRTC_ERROR_BUILTIN_OPERATION_FAILURE\0",
        _ => b"NVRTC_ERROR unknown\0",
    };
    text.as_ptr().cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcCreateProgram(
    out: *mut usize,
    source: *const c_char,
    _name: *const c_char,
    _headers: c_int,
    _header_sources: *const *const c_char,
    _header_names: *const *const c_char,
) -> c_int {
    if source.is_null() {
        return NVRTC_ERROR_INVALID_INPUT;
    }
    // SAFETY: NVRTC's contract: `source` is a NUL-terminated string.
    let source = unsafe { CStr::from_ptr(source) }.to_bytes();
    let mut ptx = b"// fake-cuda PTX for:\n".to_vec();
    ptx.extend_from_slice(source);
    ptx.push(0);
    let mut programs = PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    let handle = 0x7000 + programs.len() * 16;
    programs.push((handle, Program { ptx }));
    put(out, handle)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcCompileProgram(
    _program: usize,
    _count: c_int,
    _options: *const *const c_char,
) -> c_int {
    let config = config();
    if config.nvrtc_builtins && !builtins_load(config.nvrtc_version) {
        return NVRTC_ERROR_BUILTIN_OPERATION_FAILURE;
    }
    config
        .failure("nvrtcCompileProgram", None, 0)
        .unwrap_or(NVRTC_SUCCESS)
}

/// Loads the builtins as NVRTC does: by name, so only the loader's path, or an object already
/// loaded under that `SONAME`, provides it.
fn builtins_load((major, minor): (i32, i32)) -> bool {
    let Ok(name) = std::ffi::CString::new(format!("libnvrtc-builtins.so.{major}.{minor}")) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated name; the handle is kept, as NVRTC keeps it.
    !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) }.is_null()
}

fn with_ptx(program: usize, f: impl FnOnce(&[u8]) -> c_int) -> c_int {
    let programs = PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    match programs.iter().find(|(h, _)| *h == program) {
        Some((_, p)) => f(&p.ptx),
        None => NVRTC_ERROR_INVALID_INPUT,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcGetPTXSize(program: usize, size: *mut usize) -> c_int {
    with_ptx(program, |ptx| put(size, ptx.len()))
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcGetPTX(program: usize, out: *mut c_char) -> c_int {
    with_ptx(program, |ptx| {
        if out.is_null() {
            return NVRTC_ERROR_INVALID_INPUT;
        }
        // SAFETY: NVRTC's contract: `out` holds nvrtcGetPTXSize bytes.
        unsafe { std::ptr::copy_nonoverlapping(ptx.as_ptr(), out.cast::<u8>(), ptx.len()) };
        NVRTC_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcGetProgramLogSize(_program: usize, size: *mut usize) -> c_int {
    put(size, 1)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcGetProgramLog(_program: usize, log: *mut c_char) -> c_int {
    put(log, 0)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvrtcDestroyProgram(program: *mut usize) -> c_int {
    if program.is_null() {
        return NVRTC_ERROR_INVALID_INPUT;
    }
    // SAFETY: NVRTC's contract: `program` points to a program handle.
    let handle = unsafe { program.read() };
    PROGRAMS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(h, _)| *h != handle);
    NVRTC_SUCCESS
}
