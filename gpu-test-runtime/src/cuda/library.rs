//! Loading a shared library by a list of names, keeping every attempt for the reason text.
//!
//! Two search modes: `System` asks the dynamic loader by name (LD_LIBRARY_PATH, the ld.so cache,
//! the default directories), exactly as cudarc does; `Only` looks in the given directories alone,
//! by absolute path, so that tests of gpu-test itself cannot pick up a driver installed on the host.

use std::ffi::{CStr, c_void};
use std::ptr::NonNull;
use std::path::{Path, PathBuf};

use crate::util::format::escape_control;

/// Where to look for a library.
#[derive(Debug, Clone)]
pub(crate) enum Search {
    /// The dynamic loader's own search, by file name.
    System,
    /// Only these directories, by absolute path.
    Only(Vec<PathBuf>),
}

/// One name that was tried and why it did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadAttempt {
    /// The name or path given to the loader.
    pub name: String,
    /// The loader's message (`dlerror`).
    pub error: String,
}

impl LoadAttempt {
    /// Whether the loader simply found no such file, as opposed to finding one it could not use
    /// (permissions, wrong architecture, a missing dependency), which is worth reporting. The
    /// loader says `<file>: cannot open shared object file: No such file or directory` for the
    /// file it was asked for and for each library that file needs alike: only the first is "not
    /// found".
    pub fn is_not_found(&self) -> bool {
        self.error.contains("No such file or directory") && self.missing_dependency().is_none()
    }

    /// The library this one needs and the loader could not find, when that is why it failed.
    pub fn missing_dependency(&self) -> Option<&str> {
        let (file, rest) = self.error.split_once(": ")?;
        if !rest.starts_with("cannot open shared object file") {
            return None;
        }
        let asked = Path::new(&self.name).file_name()?.to_str()?;
        (file != self.name && file != asked).then_some(file)
    }
}

/// A loaded library, kept loaded for the life of the process.
#[derive(Debug)]
pub(crate) struct Library {
    library: std::mem::ManuallyDrop<libloading::Library>,
    /// The loader's handle, as an address: one per loaded object.
    handle: usize,
    /// The name it was loaded by.
    pub(crate) name: String,
}

impl Library {
    /// The address of `symbol`, when it has one other than null.
    pub(crate) fn address(&self, symbol: &str) -> Option<NonNull<c_void>> {
        // SAFETY: the symbol is read as an address only, never called or dereferenced.
        let found = unsafe { self.library.get::<*mut c_void>(symbol) }.ok()?;
        NonNull::new(*found)
    }

    /// Looks up `symbol` and returns it as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be the function pointer type matching the symbol's C declaration.
    pub(crate) unsafe fn function<F: Copy>(&self, symbol: &str) -> Option<F> {
        // Only a type that cannot be null makes `Option<F>` one pointer, read as the symbol's
        // address: a function pointer, as the contract says.
        const { assert!(size_of::<Option<F>>() == size_of::<*mut c_void>()) };
        // SAFETY: the caller guarantees `F` matches the symbol's type; the library outlives the
        // returned pointer because it is never unloaded (see `load`). A symbol may resolve to a
        // null address (libloading then succeeds), which no function pointer may hold: read as
        // `Option<F>`, it is `None`, as a missing symbol is.
        unsafe { self.library.get::<Option<F>>(symbol).ok().and_then(|symbol| *symbol) }
    }

    /// Whether `other` is the same loaded object: one file loaded under two names is one object,
    /// and the loader gives one handle per object.
    pub(crate) fn same_object(&self, other: &Library) -> bool {
        self.handle == other.handle
    }

    /// The first of `names` under which the loader, asked by name as cudarc asks it, now hands out
    /// this library. A library loaded by its full path answers to the name in its `SONAME`, so a
    /// later `dlopen("libnvrtc.so.13")` gets it wherever it lies.
    pub(crate) fn answers_to<'a>(&self, names: &'a [String]) -> Option<&'a str> {
        names.iter().map(String::as_str).find(|name| {
            // RTLD_NOLOAD: only an object already loaded is returned and nothing new is mapped,
            // so no initialiser runs. The loader returns one handle per object, so equal handles
            // are the same library. Closing gives back only the reference this call took.
            // SAFETY: see above; the handle is compared, then closed once.
            unsafe {
                libloading::os::unix::Library::open(Some(*name), libc::RTLD_NOW | libc::RTLD_NOLOAD)
                    .is_ok_and(|found| {
                        let handle = found.into_raw() as usize;
                        let _ = libloading::os::unix::Library::from_raw(handle as *mut c_void).close();
                        handle == self.handle
                    })
            }
        })
    }

    /// The file the loader mapped for this library, found from the address of one of its symbols.
    pub(crate) fn path_of_symbol(&self, symbol: &str) -> Option<PathBuf> {
        file_containing(self.address(symbol)?.as_ptr())
    }
}

/// The names cudarc loads library `name` by (`nvrtc`, `cuda`), in its order, each once: its list
/// names its own CUDA major's libraries twice (`libnvrtc.so.12` with the CUDA 12 bindings).
pub(crate) fn cudarc_names(name: &str) -> Vec<String> {
    let mut names = cudarc::get_lib_name_candidates(name);
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    names
}

/// Tries `names` in order and returns the first library that loads, or every attempt.
pub(crate) fn load_first(names: &[String], search: &Search) -> Result<Library, Vec<LoadAttempt>> {
    let mut attempts = Vec::new();
    for name in names {
        let candidates: Vec<String> = match search {
            Search::System => vec![name.clone()],
            Search::Only(dirs) => dirs
                .iter()
                .map(|dir| dir.join(name).to_string_lossy().into_owned())
                .collect(),
        };
        for candidate in candidates {
            match load(&candidate) {
                Ok(library) => return Ok(library),
                Err(error) => attempts.push(LoadAttempt {
                    name: candidate,
                    error,
                }),
            }
        }
    }
    Err(attempts)
}

/// Loads one library by name or path. A library that loads is never unloaded again: unloading a
/// CUDA driver while anything may still hold one of its pointers is not safe.
pub(crate) fn load(name: &str) -> Result<Library, String> {
    // SAFETY: loading runs the library's initialisers. For the CUDA libraries these are the
    // vendor's own, which every CUDA program runs the same way.
    match unsafe { libloading::os::unix::Library::new(name) } {
        Ok(library) => {
            let handle = library.into_raw();
            // SAFETY: `handle` came from `into_raw` just above and is taken back once.
            let library = unsafe { libloading::os::unix::Library::from_raw(handle) };
            Ok(Library {
                library: std::mem::ManuallyDrop::new(library.into()),
                handle: handle as usize,
                name: name.to_string(),
            })
        }
        Err(error) => Err(escape_control(&loader_message(&error))),
    }
}

fn loader_message(error: &libloading::Error) -> String {
    use std::error::Error;
    match error.source() {
        Some(source) => source.to_string(),
        None => error.to_string(),
    }
}

fn file_containing(address: *const c_void) -> Option<PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: `info` is a valid, writable Dl_info; dladdr only reads the address.
    let found = unsafe { libc::dladdr(address, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated path owned by the loader for the object's lifetime.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = Path::new(&*name.to_string_lossy()).to_path_buf();
    Some(std::fs::canonicalize(&path).unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_reports_every_attempt() {
        let names = vec![
            "libgpu-test-does-not-exist.so.1".to_string(),
            "libgpu-test-nope.so".to_string(),
        ];
        let attempts = load_first(&names, &Search::System).unwrap_err();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].name, "libgpu-test-does-not-exist.so.1");
        assert!(attempts.iter().all(LoadAttempt::is_not_found), "{attempts:?}");
    }

    #[test]
    fn directory_search_uses_absolute_paths() {
        let dirs = vec![PathBuf::from("/nonexistent-a"), PathBuf::from("/nonexistent-b")];
        let attempts = load_first(&["libx.so".to_string()], &Search::Only(dirs)).unwrap_err();
        let names: Vec<&str> = attempts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["/nonexistent-a/libx.so", "/nonexistent-b/libx.so"]);
    }

    #[test]
    fn a_missing_dependency_is_not_a_missing_library() {
        let attempt = |name: &str, error: &str| LoadAttempt {
            name: name.to_string(),
            error: error.to_string(),
        };
        let missing = attempt(
            "/lib/libcuda.so.1",
            "/lib/libcuda.so.1: cannot open shared object file: No such file or directory",
        );
        assert!(missing.is_not_found() && missing.missing_dependency().is_none());
        let by_name = attempt(
            "libcuda.so.1",
            "libcuda.so.1: cannot open shared object file: No such file or directory",
        );
        assert!(by_name.is_not_found());
        let dependency = attempt(
            "/lib/libcuda.so.1",
            "libnvidia-ptxjitcompiler.so.1: cannot open shared object file: No such file or directory",
        );
        assert!(!dependency.is_not_found());
        assert_eq!(
            dependency.missing_dependency(),
            Some("libnvidia-ptxjitcompiler.so.1")
        );
    }

    #[test]
    fn a_loaded_library_knows_its_file() {
        let libc = load("libc.so.6").expect("glibc is loaded in every test process");
        let path = libc.path_of_symbol("malloc").expect("malloc is in libc");
        assert!(path.to_string_lossy().contains("libc"), "{}", path.display());
    }
}
