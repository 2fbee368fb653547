//! The CUDA toolkit as a test sees it: NVRTC (which compiles kernels at run time) and `nvcc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::LoadedLibrary;
use crate::cuda::library::{self, LoadAttempt, Search};
use crate::cuda::nvrtc::{NvrtcVersion, nvrtc_version};
use crate::cuda::version::Version;
use crate::util::process::stdout_within;

/// What was found of the CUDA toolkit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Toolkit {
    /// NVRTC, the run-time compiler tests use to build kernels.
    pub nvrtc: Nvrtc,
    /// When NVRTC could not be loaded: NVRTC libraries on this machine that the loader was not
    /// asked for, under a name cudarc does not try or in a directory the loader does not search.
    pub elsewhere: Vec<PathBuf>,
}

/// Where CUDA toolkits put NVRTC outside the loader's own directories, relative to the root.
const NVRTC_HOMES: &[&str] = &["usr/local/cuda/lib64", "opt/conda/lib"];

/// NVRTC libraries (`libnvrtc.so*`, not its builtins, and not links to nothing) where toolkits
/// and Python wheels put them but the loader does not look: `/usr/local/cuda/lib64`,
/// `/usr/local/cuda-*/lib64`, a conda environment and `.../site-packages/nvidia/cuda_nvrtc/lib`,
/// under `root`; directories in `searched` (the loader's path) are left out, since the loader's
/// own message says why a library there did not load.
pub(crate) fn nvrtc_elsewhere(root: &Path, searched: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = NVRTC_HOMES.iter().map(|home| root.join(home)).collect();
    for versioned in subdirs(&root.join("usr/local")) {
        if versioned
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("cuda-"))
        {
            dirs.push(versioned.join("lib64"));
        }
    }
    for lib in ["usr/lib", "usr/local/lib", "opt/conda/lib"] {
        for python in subdirs(&root.join(lib)) {
            if !python
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
            {
                continue;
            }
            for packages in ["site-packages", "dist-packages"] {
                dirs.push(python.join(packages).join("nvidia/cuda_nvrtc/lib"));
            }
        }
    }
    let mut found: Vec<PathBuf> = Vec::new();
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    for dir in dirs {
        if searched.iter().any(|s| same(s, &dir)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.exists()
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
    /// `nvrtcVersion` failed with this `nvrtcResult`.
    VersionFailed {
        /// The library.
        library: LoadedLibrary,
        /// The raw result.
        code: i32,
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
}

/// Loads NVRTC and asks its version.
pub(super) fn probe_nvrtc(search: &Search) -> Nvrtc {
    let names = cudarc::get_lib_name_candidates("nvrtc");
    let library = match library::load_first(&names, search) {
        Ok(library) => library,
        Err(tried) => return Nvrtc::NotFound { tried },
    };
    let loaded = LoadedLibrary {
        path: library.path_of_symbol("nvrtcVersion"),
        name: library.name.clone(),
    };
    match nvrtc_version(&library) {
        NvrtcVersion::Missing => Nvrtc::Unrecognised { library: loaded },
        NvrtcVersion::Failed(code) => Nvrtc::VersionFailed {
            library: loaded,
            code,
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
pub(super) fn find_nvcc(path_var: Option<&str>, cuda_dirs: &[Option<&str>], root: &Path) -> Option<Nvcc> {
    let mut candidates: Vec<PathBuf> = path_var
        .unwrap_or_default()
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join("nvcc"))
        .collect();
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
    fn nvcc_release_is_read_from_its_banner() {
        let banner = "nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2024 NVIDIA Corporation\n\
                      Built on Tue_Feb_27_16:19:38_PST_2024\nCuda compilation tools, release 12.4, V12.4.99\n\
                      Build cuda_12.4.r12.4/compiler.33961263_0\n";
        assert_eq!(parse_nvcc_release(banner), Some(Version::new(12, 4)));
        assert_eq!(parse_nvcc_release("no banner"), None);
    }

    #[test]
    fn nvrtc_absence_lists_cudarc_names() {
        let empty = std::env::temp_dir().join(format!("gpu-test-nvrtc-none-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let Nvrtc::NotFound { tried } = probe_nvrtc(&Search::Only(vec![empty.clone()])) else {
            panic!("an empty directory holds no NVRTC");
        };
        assert!(
            tried.iter().any(|a| a.name.ends_with("/libnvrtc.so")),
            "{tried:?}"
        );
        assert_eq!(tried.len(), cudarc::get_lib_name_candidates("nvrtc").len());
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
