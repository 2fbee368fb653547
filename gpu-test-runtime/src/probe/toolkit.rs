//! The CUDA toolkit as a test sees it: NVRTC (which compiles kernels at run time) and `nvcc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::LoadedLibrary;
use crate::cuda::library::{self, Library, LoadAttempt, Search};
use crate::cuda::nvrtc::{NvrtcVersion, nvrtc_version};
use crate::cuda::version::Version;
use crate::util::files::{self, NotTrusted};
use crate::util::process::stdout_within;

/// What was found of the CUDA toolkit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Toolkit {
    /// NVRTC, the run-time compiler tests use to build kernels.
    pub nvrtc: Nvrtc,
    /// When NVRTC was not on the loader's path: NVRTC libraries on this machine that the loader
    /// was not asked for, in a directory it does not search or under a name cudarc does not try.
    pub elsewhere: Vec<PathBuf>,
    /// Whether [`nvrtc`](Self::nvrtc) is one of [`elsewhere`](Self::elsewhere), loaded by its
    /// full path: cudarc, which asks the loader by name, then gets it under the name its
    /// `SONAME` gives.
    pub outside_loader_path: bool,
    /// When NVRTC came from outside the loader's path, its builtins library
    /// (`libnvrtc-builtins.so.X.Y`, which NVRTC asks the loader for by name when it first
    /// compiles): the file loaded from beside NVRTC, or the name the loader found it by. `None`
    /// there means compiling would fail, and [`passed_over`](Self::passed_over) says why.
    pub builtins: Option<PathBuf>,
    /// Files in `elsewhere`, and builtins beside them, that gpu-test did not use, and why (some
    /// were loaded to find that out, and stay loaded, as every library gpu-test loads does).
    pub passed_over: Vec<PassedOver>,
    /// When NVRTC is an NVIDIA wheel's (`<environment>/lib/python3.12/site-packages/nvidia/...`)
    /// of a virtual or conda environment: that environment, where pip would put another.
    pub python_environment: Option<PathBuf>,
}

/// An NVRTC library, or its builtins, outside the loader's path that gpu-test did not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedOver {
    /// The file.
    pub path: PathBuf,
    /// Why, in words.
    pub why: String,
    /// What stood in the way, which decides the fix.
    pub obstacle: Obstacle,
}

/// What kept gpu-test from using an NVRTC library it found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Obstacle {
    /// Another user owns, or group or others may write to, this place on the way to the file.
    Untrusted {
        /// The place.
        place: PathBuf,
    },
    /// The loader refused the file (a missing dependency, the wrong architecture), or it is not
    /// NVRTC.
    Unusable,
    /// gpu-test could not hand it to cudarc, but the loader would find it by name from its
    /// directory (its SONAME is another, or its path is not UTF-8).
    NeedsLoaderPath,
    /// NVRTC's builtins are neither beside it nor on the loader's path.
    BuiltinsMissing,
    /// NVRTC of a newer CUDA release than the driver's (`libnvrtc.so.13` beside a driver of CUDA
    /// 12.8, or builtins of 13.5 beside it and a driver of 13.0), whose PTX that driver cannot
    /// load. It is not loaded: once loaded it keeps its name, and cudarc, asking for it, would get
    /// it rather than an older NVRTC that works.
    NewerThanDriver {
        /// Its major release, from its name.
        cuda_major: u32,
        /// Its release, where the builtins beside it name one.
        release: Option<Version>,
    },
}

impl Toolkit {
    /// NVRTC as the loader found it by name (or did not, and nothing else was looked for).
    pub(super) fn on_loader_path(nvrtc: Nvrtc) -> Toolkit {
        Toolkit {
            python_environment: nvrtc.library_path().and_then(python_environment_of),
            nvrtc,
            elsewhere: Vec::new(),
            outside_loader_path: false,
            builtins: None,
            passed_over: Vec::new(),
        }
    }

    /// What was found off the loader's path (`elsewhere`), and what of it was `loaded`; `by_name`
    /// is what the loader said, kept when nothing was.
    pub(super) fn from_elsewhere(by_name: Nvrtc, elsewhere: Vec<PathBuf>, loaded: FromElsewhere) -> Toolkit {
        let outside_loader_path = loaded.nvrtc.is_some();
        let nvrtc = loaded.nvrtc.unwrap_or(by_name);
        Toolkit {
            python_environment: nvrtc.library_path().and_then(python_environment_of),
            nvrtc,
            elsewhere,
            outside_loader_path,
            builtins: loaded.builtins,
            passed_over: loaded.passed_over,
        }
    }

    /// When NVRTC was loaded from off the loader's path but its builtins were not: why, so that
    /// compiling would fail (NVRTC_ERROR_BUILTIN_OPERATION_FAILURE).
    pub(crate) fn missing_builtins(&self) -> Option<&PassedOver> {
        if !self.outside_loader_path || self.builtins.is_some() {
            return None;
        }
        self.passed_over.iter().find(|p| p.is_builtins())
    }
}

impl PassedOver {
    /// Whether this is NVRTC's builtins library rather than NVRTC.
    pub fn is_builtins(&self) -> bool {
        self.path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("libnvrtc-builtins"))
    }
}

/// Where toolkits put NVRTC outside the loader's own directories, relative to the root.
const NVRTC_HOMES: &[&str] = &["usr/local/cuda/lib64", "opt/conda/lib"];

/// Where Python environments keep their packages, relative to the root.
const PYTHON_PREFIXES: &[&str] = &["usr/lib", "usr/local/lib", "opt/conda/lib"];

/// NVRTC libraries (`libnvrtc.so*` files, not its builtins) where toolkits
/// and Python wheels put them but the loader does not look, in this order:
/// - `named` (the `lib64` of `CUDA_HOME` and `CUDA_PATH`), `/usr/local/cuda/lib64`,
///   `/opt/conda/lib`, `/usr/local/cuda-*/lib64`, then the `lib` of each conda environment whose
///   `bin` is on `PATH` (`path_dirs`);
/// - the NVIDIA wheels of each Python environment (`nvidia/cuda_nvrtc/lib` up to CUDA 12,
///   `nvidia/cu13/lib` from CUDA 13): the system's under `root`, and those of the virtual or
///   conda environments whose `bin` is on `PATH` (`path_dirs`).
///
/// Directories in `searched` (the loader's path) are left out, since the loader's own message
/// says why a library there did not load.
pub(crate) fn nvrtc_elsewhere(
    root: &Path,
    searched: &[PathBuf],
    named: &[PathBuf],
    path_dirs: &[PathBuf],
) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = named.to_vec();
    dirs.extend(NVRTC_HOMES.iter().map(|home| root.join(home)));
    dirs.extend(
        subdirs(&root.join("usr/local"))
            .into_iter()
            .filter(|dir| name_starts_with(dir, "cuda-"))
            .map(|dir| dir.join("lib64")),
    );
    let mut python_prefixes: Vec<PathBuf> = PYTHON_PREFIXES.iter().map(|p| root.join(p)).collect();
    for bin in path_dirs {
        let Some(environment) = bin.parent() else {
            continue;
        };
        let is_venv = environment.join("pyvenv.cfg").is_file();
        let is_conda = environment.join("conda-meta").is_dir();
        if is_conda {
            dirs.push(environment.join("lib"));
        }
        if is_venv || is_conda {
            python_prefixes.push(environment.join("lib"));
        }
    }
    for prefix in &python_prefixes {
        for python in subdirs(prefix).into_iter().filter(|dir| name_starts_with(dir, "python3")) {
            for packages in ["site-packages", "dist-packages"] {
                let nvidia = python.join(packages).join("nvidia");
                dirs.push(nvidia.join("cuda_nvrtc/lib"));
                dirs.extend(
                    subdirs(&nvidia)
                        .into_iter()
                        .filter(|dir| is_cuda_release_dir(dir))
                        .map(|dir| dir.join("lib")),
                );
            }
        }
    }
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        if searched.iter().any(|s| files::same_place(s, &dir)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                // A file (through links): opening a FIFO or a device would block or worse.
                path.is_file()
                    && path.file_name().is_some_and(|name| {
                        let name = name.to_string_lossy();
                        name.starts_with("libnvrtc.so") && !name.starts_with("libnvrtc-builtins")
                    })
            })
            .collect();
        here.sort();
        for path in here {
            if !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// The virtual or conda environment whose NVIDIA wheel holds `library`: the folder above
/// `lib/python3.X/site-packages/nvidia/`, if it has a `pyvenv.cfg` or a `conda-meta`. (A user's
/// or the system's site-packages is no environment to install into with a plain `pip install`.)
pub(crate) fn python_environment_of(library: &Path) -> Option<PathBuf> {
    let nvidia = library
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "nvidia"))?;
    let packages = nvidia.parent()?;
    if !packages
        .file_name()
        .is_some_and(|name| name == "site-packages" || name == "dist-packages")
    {
        return None;
    }
    let environment = packages.parent()?.parent()?.parent()?;
    (environment.join("pyvenv.cfg").is_file() || environment.join("conda-meta").is_dir())
        .then(|| environment.to_path_buf())
}

fn name_starts_with(path: &Path, prefix: &str) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
}

/// `cu13`, `cu14`: the directory where the NVIDIA wheels of that CUDA release put their
/// libraries.
fn is_cuda_release_dir(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("cu"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// What was loaded from outside the loader's path.
#[derive(Debug, Default)]
pub(super) struct FromElsewhere {
    /// NVRTC, as cudarc will get it.
    pub nvrtc: Option<Nvrtc>,
    /// Its builtins library.
    pub builtins: Option<PathBuf>,
    /// What was not used, and why.
    pub passed_over: Vec<PassedOver>,
}

/// Loads, by its full path, the first NVRTC in `elsewhere` that cudarc will then get when it
/// asks the loader by one of `names`, and the builtins library beside it. Only a file under a
/// versioned name cudarc asks for (`libnvrtc.so.12`) is tried, since such a file answers to its
/// own name; the bare `libnvrtc.so` of a toolkit answers to its release's name, which these
/// bindings may not ask for.
///
/// The order: first the files in `named` (the `lib64` of `CUDA_HOME` and `CUDA_PATH`, which the
/// user chose), then the rest in the order of `names`, as cudarc would find them were their
/// directories on the loader's path (with the CUDA 13 bindings, a CUDA 13 wheel's
/// `libnvrtc.so.13` before a CUDA 12 wheel's `libnvrtc.so.12` in the same environment); within
/// one name, the order of the search. A file of a newer major release than `driver_cuda`, or one
/// another user could have put there, is not loaded.
pub(super) fn load_from_elsewhere(
    elsewhere: &[PathBuf],
    named: &[PathBuf],
    names: &[String],
    driver_cuda: Option<Version>,
    search: &Search,
) -> FromElsewhere {
    let mut loaded = FromElsewhere::default();
    let mut asked_for: Vec<(bool, usize, &PathBuf)> = elsewhere
        .iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let preference = names.iter().position(|n| n == name)?;
            let chosen = path.parent().is_some_and(|dir| named.iter().any(|n| n == dir));
            name.contains(".so.").then_some((!chosen, preference, path))
        })
        .collect();
    asked_for.sort_by_key(|(not_chosen, preference, _)| (*not_chosen, *preference));
    for (_, _, path) in asked_for {
        let major = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("libnvrtc.so."))
            .and_then(|version| version.split('.').next()?.parse::<u32>().ok());
        if let (Some(cuda_major), Some(driver)) = (major, driver_cuda)
            && cuda_major > driver.major
        {
            loaded.passed_over.push(PassedOver {
                path: path.clone(),
                why: format!(
                    "not loaded: NVRTC of CUDA {cuda_major} makes PTX that the driver (CUDA {driver}) cannot load"
                ),
                obstacle: Obstacle::NewerThanDriver {
                    cuda_major,
                    release: None,
                },
            });
            continue;
        }
        // Its builtins beside it name its release (`libnvrtc-builtins.so.13.5`): one of a later
        // minor release than the driver's is passed over before it is loaded, since a library
        // once loaded keeps its name, and cudarc would get it rather than an older one that works.
        if let (Some(release), Some(driver)) = (release_beside(path), driver_cuda)
            && release > driver
        {
            loaded.passed_over.push(PassedOver {
                path: path.clone(),
                why: format!(
                    "not loaded: NVRTC {release} (as the builtins beside it say) makes PTX that the driver (CUDA \
                     {driver}) cannot load"
                ),
                obstacle: Obstacle::NewerThanDriver {
                    cuda_major: release.major,
                    release: Some(release),
                },
            });
            continue;
        }
        let library = match load_trusted(path) {
            Ok(library) => library,
            Err(passed_over) => {
                loaded.passed_over.push(passed_over);
                continue;
            }
        };
        let Some(name) = library.answers_to(names) else {
            loaded.passed_over.push(PassedOver {
                path: path.clone(),
                why: "it loaded, but the loader hands it out under none of the names cudarc asks for (its \
                      SONAME is another)"
                    .to_string(),
                obstacle: Obstacle::NeedsLoaderPath,
            });
            continue;
        };
        // Named by the path it was loaded from, whose directory is the one to put on the
        // loader's path, rather than by the file the links lead to.
        let nvrtc = describe_nvrtc(&library, name, Some(path));
        if let Some(version) = nvrtc.version() {
            match load_builtins(path, version, search) {
                Ok(builtins) => loaded.builtins = Some(builtins),
                Err(passed_over) => loaded.passed_over.push(passed_over),
            }
        }
        loaded.nvrtc = Some(nvrtc);
        break;
    }
    loaded
}

/// The release the NVRTC builtins beside `nvrtc` name (`libnvrtc-builtins.so.13.5`), where
/// exactly one release is there: a toolkit's lib64 and a wheel's lib hold NVRTC with its own.
fn release_beside(nvrtc: &Path) -> Option<Version> {
    let mut releases: Vec<Version> = std::fs::read_dir(nvrtc.parent()?)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let (major, minor) = name.to_str()?.strip_prefix("libnvrtc-builtins.so.")?.split_once('.')?;
            Some(Version::new(major.parse().ok()?, minor.parse().ok()?))
        })
        .collect();
    releases.sort();
    releases.dedup();
    match releases.as_slice() {
        [release] => Some(*release),
        _ => None,
    }
}

/// NVRTC asks the loader for `libnvrtc-builtins.so.X.Y` by name when it first compiles, and a
/// toolkit's NVRTC does not look beside itself: with NVRTC off the loader's path, the builtins
/// beside it are loaded by their full path too, or else they must be on the loader's path.
fn load_builtins(nvrtc: &Path, version: Version, search: &Search) -> Result<PathBuf, PassedOver> {
    let name = format!("libnvrtc-builtins.so.{}.{}", version.major, version.minor);
    let beside = nvrtc.with_file_name(&name);
    if beside.is_file() {
        let library = load_trusted(&beside)?;
        return match library.answers_to(std::slice::from_ref(&name)) {
            Some(_) => Ok(beside),
            None => Err(PassedOver {
                path: beside,
                why: format!("it loaded, but the loader does not hand it out as {name} (its SONAME is another)"),
                obstacle: Obstacle::NeedsLoaderPath,
            }),
        };
    }
    match library::load_first(std::slice::from_ref(&name), search) {
        Ok(_) => Ok(PathBuf::from(name)),
        Err(tried) => Err(PassedOver {
            path: beside,
            why: format!(
                "NVRTC's builtins are neither beside it nor on the loader's path ({})",
                tried.first().map(|attempt| attempt.error.as_str()).unwrap_or("not looked for")
            ),
            obstacle: Obstacle::BuiltinsMissing,
        }),
    }
}

/// Loads `path` if no other user could have put it there.
fn load_trusted(path: &Path) -> Result<Library, PassedOver> {
    let passed_over = |why: String, obstacle: Obstacle| PassedOver {
        path: path.to_path_buf(),
        why,
        obstacle,
    };
    if let Err(error) = files::trusted_to_load(path) {
        return Err(match error {
            NotTrusted::Others { ref place, .. } => passed_over(
                format!("not loaded, since another user could have put it there: {error}"),
                Obstacle::Untrusted { place: place.clone() },
            ),
            NotTrusted::Unreadable(_) => passed_over(format!("not loaded: {error}"), Obstacle::Unusable),
        });
    }
    // The path checked must be the path loaded, byte for byte.
    let Some(text) = path.to_str() else {
        return Err(passed_over(
            "not loaded: its path is not UTF-8, which gpu-test does not load from".to_string(),
            Obstacle::NeedsLoaderPath,
        ));
    };
    library::load(text).map_err(|error| passed_over(format!("the loader refused it: {error}"), Obstacle::Unusable))
}

/// NVRTC, looked up by the names cudarc's own loader tries, so that what the probe finds is
/// what a test's `cudarc::nvrtc` calls will load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nvrtc {
    /// No name loaded.
    NotFound {
        /// Every name or path tried, with the loader's message.
        tried: Vec<LoadAttempt>,
    },
    /// A library loaded but does not export `nvrtcVersion`.
    Unrecognised {
        /// The library.
        library: LoadedLibrary,
    },
    /// `nvrtcVersion` failed, or answered what is no version.
    VersionFailed {
        /// The library.
        library: LoadedLibrary,
        /// What went wrong, after the call's name: `failed with code 7`.
        failure: String,
    },
    /// NVRTC loaded and reported its version.
    Found {
        /// The library.
        library: LoadedLibrary,
        /// Its version, e.g. 12.8.
        version: Version,
    },
}

impl Nvrtc {
    /// The version, when NVRTC was found.
    pub fn version(&self) -> Option<Version> {
        match self {
            Nvrtc::Found { version, .. } => Some(*version),
            _ => None,
        }
    }

    /// The file of the library that loaded, if one did and its file is known.
    pub(crate) fn library_path(&self) -> Option<&Path> {
        match self {
            Nvrtc::NotFound { .. } => None,
            Nvrtc::Unrecognised { library }
            | Nvrtc::VersionFailed { library, .. }
            | Nvrtc::Found { library, .. } => library.path.as_deref(),
        }
    }
}

/// Loads NVRTC by the names cudarc tries, and asks its version.
pub(super) fn probe_nvrtc(search: &Search) -> Nvrtc {
    match library::load_first(&library::cudarc_names("nvrtc"), search) {
        Ok(library) => describe_nvrtc(&library, &library.name, None),
        Err(tried) => Nvrtc::NotFound { tried },
    }
}

/// What `library`, which cudarc loads as `name`, says of itself; `loaded_from` is the path it
/// was loaded by, when not by name.
fn describe_nvrtc(library: &Library, name: &str, loaded_from: Option<&Path>) -> Nvrtc {
    let loaded = LoadedLibrary {
        path: match loaded_from {
            Some(path) => Some(path.to_path_buf()),
            None => library.path_of_symbol("nvrtcVersion"),
        },
        name: name.to_string(),
    };
    match nvrtc_version(library) {
        NvrtcVersion::Missing => Nvrtc::Unrecognised { library: loaded },
        NvrtcVersion::Failed(code) => Nvrtc::VersionFailed {
            library: loaded,
            failure: format!("failed with code {code}"),
        },
        NvrtcVersion::NoVersion(major, minor) => Nvrtc::VersionFailed {
            library: loaded,
            failure: format!("answered major {major}, minor {minor}, which is no version"),
        },
        NvrtcVersion::Found(major, minor) => Nvrtc::Found {
            library: loaded,
            version: Version::new(major, minor),
        },
    }
}

/// `nvcc`, the toolkit's compiler, if one is installed where people usually look for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nvcc {
    /// Where it was found.
    pub path: PathBuf,
    /// The release it reports (`nvcc --version`), if it ran.
    pub version: Option<Version>,
    /// Why there is no version, when there is none.
    pub version_error: Option<String>,
}

/// Looks for `nvcc` on `PATH`, then under `CUDA_HOME`, `CUDA_PATH` and `/usr/local/cuda` (the
/// last under `root`), and runs the first one found with `--version`.
pub(super) fn find_nvcc(path_dirs: &[PathBuf], cuda_dirs: &[Option<&str>], root: &Path) -> Option<Nvcc> {
    let mut candidates: Vec<PathBuf> = path_dirs.iter().map(|dir| dir.join("nvcc")).collect();
    candidates.extend(
        cuda_dirs
            .iter()
            .flatten()
            .map(|dir| Path::new(dir).join("bin/nvcc")),
    );
    candidates.push(root.join("usr/local/cuda/bin/nvcc"));
    let path = candidates.into_iter().find(|candidate| candidate.is_file())?;
    let limit = crate::settings::probe_timeout();
    let (version, version_error) = match stdout_within(Command::new(&path).arg("--version"), limit) {
        Ok(output) => match parse_nvcc_release(&output) {
            Some(version) => (Some(version), None),
            None => (None, Some("nvcc --version printed no release".to_string())),
        },
        Err(error) => (None, Some(format!("nvcc --version {error}"))),
    };
    Some(Nvcc {
        path,
        version,
        version_error,
    })
}

/// The release in `nvcc --version`'s line `Cuda compilation tools, release 12.4, V12.4.131`.
pub(super) fn parse_nvcc_release(output: &str) -> Option<Version> {
    let after = output.split("release ").nth(1)?;
    let number = after.split(',').next()?.trim();
    let (major, minor) = number.split_once('.')?;
    Some(Version::new(major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wheels_environment_is_a_virtual_or_conda_environment_above_site_packages() {
        let root = crate::util::files::scratch_dir("toolkit");
        let venv = root.join("venv");
        let conda = root.join("conda");
        let user = root.join("home/.local");
        std::fs::create_dir_all(&venv).unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::create_dir_all(conda.join("conda-meta")).unwrap();
        std::fs::create_dir_all(&user).unwrap();
        let of = |prefix: &Path, rest: &str| python_environment_of(&prefix.join(rest));
        let wheel = "lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13";
        assert_eq!(of(&venv, wheel), Some(venv.clone()));
        assert_eq!(
            of(&conda, "lib/python3.10/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"),
            Some(conda.clone())
        );
        // A user's site-packages (pip install --user), and a toolkit's lib64, are none.
        assert_eq!(of(&user, wheel), None);
        assert_eq!(of(&venv, "lib64/libnvrtc.so.12"), None);
        assert_eq!(of(&venv, "lib/python3.12/site-packages/other/libnvrtc.so.12"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nvcc_release_is_read_from_its_banner() {
        let banner = "nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2024 NVIDIA Corporation\n\
                      Built on Tue_Feb_27_16:19:38_PST_2024\nCuda compilation tools, release 12.4, V12.4.99\n\
                      Build cuda_12.4.r12.4/compiler.33961263_0\n";
        assert_eq!(parse_nvcc_release(banner), Some(Version::new(12, 4)));
        assert_eq!(parse_nvcc_release("no banner"), None);
    }

    #[test]
    fn nvrtc_absence_lists_cudarc_names() {
        let empty = crate::util::files::scratch_dir("nvrtc-none");
        let Nvrtc::NotFound { tried } = probe_nvrtc(&Search::Only(vec![empty.clone()])) else {
            panic!("an empty directory holds no NVRTC");
        };
        assert!(
            tried.iter().any(|a| a.name.ends_with("/libnvrtc.so")),
            "{tried:?}"
        );
        let mut names = cudarc::get_lib_name_candidates("nvrtc");
        names.sort();
        names.dedup();
        assert_eq!(tried.len(), names.len(), "each name once: {tried:?}");
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn nvrtc_is_looked_for_where_toolkits_and_environments_keep_it() {
        let root = crate::util::files::scratch_dir("nvrtc-homes");
        let put = |dir: &str, name: &str| {
            let dir = root.join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), "").unwrap();
            dir.join(name)
        };
        let home = put("opt/cuda-home/lib64", "libnvrtc.so.12");
        let toolkit = put("usr/local/cuda-12.8/lib64", "libnvrtc.so.12");
        put("usr/local/cuda-12.8/lib64", "libnvrtc-builtins.so.12.8");
        let conda = put("envs/ml/lib", "libnvrtc.so.12");
        std::fs::create_dir_all(root.join("envs/ml/conda-meta")).unwrap();
        let cu13 = put("venv/lib/python3.12/site-packages/nvidia/cu13/lib", "libnvrtc.so.13");
        std::fs::write(root.join("venv/pyvenv.cfg"), "").unwrap();
        put("venv/lib/python3.12/site-packages/nvidia/cublas/lib", "libnvrtc.so.12");
        let searched = put("on-path", "libnvrtc.so.12");

        let found = nvrtc_elsewhere(
            &root,
            &[searched.parent().unwrap().to_path_buf()],
            &[root.join("opt/cuda-home/lib64")],
            &[root.join("envs/ml/bin"), root.join("venv/bin"), root.join("on-path")],
        );
        assert_eq!(found, [home, toolkit, conda, cu13]);
        assert!(is_cuda_release_dir(Path::new("nvidia/cu13")));
        assert!(!is_cuda_release_dir(Path::new("nvidia/cublas")) && !is_cuda_release_dir(Path::new("nvidia/cu")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
