//! What the operating system says about the NVIDIA driver: the kernel module and its release, and
//! the `/dev/nvidia*` device files with their permissions.
//!
//! Every path is read under a root, `/` unless `GPU_TEST_SYSTEM_ROOT` names another, so that tests
//! of gpu-test can describe a machine in a directory.

use std::path::{Path, PathBuf};

use crate::util::format::escape_control;
use crate::util::os::may_read_and_write;

/// The NVIDIA kernel module, as `/proc/driver/nvidia/version` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelModule {
    /// The driver release, e.g. `550.54.14`, if the file names one.
    pub release: Option<String>,
    /// The first line of the file, for the doctor.
    pub description: String,
}

/// A `/dev/nvidia*` file and whether this process may open it for reading and writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// The path (under the root).
    pub path: PathBuf,
    /// Whether `access(R_OK | W_OK)` allows it.
    pub accessible: bool,
}

/// The directories `/etc/ld.so.conf` and the files it includes name (under `root`): those that
/// `ldconfig` puts in the loader's cache. A library there that the loader does not find by name
/// was added after `ldconfig` last ran.
pub(super) fn ld_so_conf_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut read = Vec::new();
    read_ld_so_conf(root, &root.join("etc/ld.so.conf"), &mut read, &mut dirs);
    dirs
}

fn read_ld_so_conf(root: &Path, file: &Path, read: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    // Each file once, so that files including each other end; only regular files, since
    // reading a FIFO would block; and no more than ldconfig itself would bother with.
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    if read.contains(&canonical) || read.len() >= 256 || !file.is_file() {
        return;
    }
    read.push(canonical);
    let Ok(bytes) = std::fs::read(file) else {
        return;
    };
    // A comment in another encoding (Latin-1, say) must not hide the file's directories.
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include").filter(|rest| rest.starts_with([' ', '\t'])) {
            for pattern in pattern.split_whitespace() {
                // A relative pattern is relative to the including file's directory.
                let pattern = match pattern.strip_prefix('/') {
                    Some(absolute) => root.join(absolute),
                    None => file.parent().unwrap_or(root).join(pattern),
                };
                for included in glob_file_names(&pattern) {
                    read_ld_so_conf(root, &included, read, dirs);
                }
            }
        } else if let Some(dir) = line.strip_prefix('/') {
            // `hwcap` lines and anything else that is not a directory are not the loader's path.
            let dir = root.join(dir);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
}

/// The files `pattern` matches, where only its last component may hold `*` wildcards (as
/// `include /etc/ld.so.conf.d/*.conf` does), sorted as ldconfig reads them.
fn glob_file_names(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    if !name.contains('*') {
        return vec![pattern.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            // glob(3), which ldconfig uses, leaves out hidden files.
            entry
                .file_name()
                .to_str()
                .is_some_and(|candidate| !candidate.starts_with('.') && wildcard_match(name, candidate))
        })
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Reads the NVIDIA kernel module's state under `root`.
pub(super) fn kernel_module(root: &Path) -> Option<KernelModule> {
    let text = std::fs::read_to_string(root.join("proc/driver/nvidia/version")).ok()?;
    let first = escape_control(text.lines().next().unwrap_or_default().trim());
    Some(KernelModule {
        release: parse_release(&first),
        description: first,
    })
}

/// The release in a line such as
/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024` or
/// `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build ...`.
pub(super) fn parse_release(line: &str) -> Option<String> {
    line.split_whitespace()
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() >= 2
                && parts[0].len() >= 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// The `/dev/nvidia*` files under `root`, sorted, with their accessibility.
pub(super) fn device_nodes(root: &Path) -> Vec<DeviceNode> {
    let dev = root.join("dev");
    let Ok(entries) = std::fs::read_dir(&dev) else {
        return Vec::new();
    };
    let mut nodes: Vec<DeviceNode> = entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("nvidia"))
        .filter(|entry| entry.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|entry| {
            let path = entry.path();
            DeviceNode {
                accessible: may_read_and_write(&path),
                path,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    nodes
}

/// Where the process runs, when that explains a missing GPU: a container, or WSL2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Platform {
    /// The container the process runs in, described with the evidence (`Docker (/.dockerenv)`).
    pub container: Option<String>,
    /// Whether this is WSL2, where the Windows driver provides `libcuda`.
    pub wsl: bool,
    /// Whether this is WSL 1, which has no GPU support at all (CUDA runs only in WSL 2).
    pub wsl1: bool,
    /// `/usr/lib/wsl/lib/libcuda.so.1`, when it exists (WSL2's driver library).
    pub wsl_libcuda: Option<PathBuf>,
    /// The directory of [`MOUNTED_DRIVER_DIRS`] (GPU containers' and sandboxes' mount of the
    /// driver's libraries) that holds `libcuda.so.1`, as an absolute path, when one does.
    pub mounted_driver_dir: Option<String>,
}

impl Platform {
    /// `Docker (/.dockerenv)`, `WSL2`, or `not a container` for the doctor.
    pub(crate) fn describe(&self) -> String {
        match (&self.container, self.wsl) {
            (Some(container), true) => format!("{container}, on WSL2"),
            (Some(container), false) => container.clone(),
            (None, true) => "WSL2".to_string(),
            (None, false) if self.wsl1 => "WSL 1 (no GPU support)".to_string(),
            (None, false) => "not a container, not WSL2".to_string(),
        }
    }
}

/// The GPUs in MIG mode, by `nvidia-smi` index, as `nvidia-smi --query-gpu=index,mig.mode.current`
/// reports them; `None` when nvidia-smi cannot tell (not installed, failed, did not answer within
/// `limit`).
pub(super) fn gpus_in_mig_mode(limit: std::time::Duration) -> Option<Vec<u32>> {
    let mut command = std::process::Command::new("nvidia-smi");
    command.args(["--query-gpu=index,mig.mode.current", "--format=csv,noheader"]);
    let text = crate::util::process::stdout_within(&mut command, limit).ok()?;
    Some(parse_mig_modes(&text))
}

/// The indices whose MIG mode is `Enabled` in nvidia-smi's `index, mode` lines.
fn parse_mig_modes(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let (index, mode) = line.split_once(',')?;
            (mode.trim() == "Enabled").then(|| index.trim().parse().ok())?
        })
        .collect()
}

/// Where WSL2 mounts the Windows driver's Linux libraries.
pub(crate) const WSL_LIB_DIR: &str = "usr/lib/wsl/lib";

/// Where GPU containers and sandboxes mount the host driver's libraries, off the loader's usual
/// path: GKE's nodes, gVisor's GPU support and older NVIDIA container setups use
/// `/usr/local/nvidia/lib64`, and their CUDA images add it to `LD_LIBRARY_PATH`.
pub(crate) const MOUNTED_DRIVER_DIRS: &[&str] = &["usr/local/nvidia/lib64"];

/// Where Kubernetes mounts a pod's service account: in every pod that does not turn it off, also
/// where the cgroup of process 1 says nothing (cgroup v2 with a namespace of its own: `0::/`).
const KUBERNETES_SECRETS: &str = "var/run/secrets/kubernetes.io";

/// Reads the platform under `root`: container markers (`/.dockerenv`, `/run/.containerenv`, a
/// Kubernetes service account, the cgroup of process 1) and WSL's kernel release and WSL2's
/// library directory.
pub(super) fn platform(root: &Path) -> Platform {
    let container = if root.join(".dockerenv").exists() {
        Some("Docker (/.dockerenv)".to_string())
    } else if root.join("run/.containerenv").exists() {
        Some("Podman (/run/.containerenv)".to_string())
    } else if root.join(KUBERNETES_SECRETS).exists() {
        Some(format!("a Kubernetes pod (/{KUBERNETES_SECRETS})"))
    } else {
        std::fs::read_to_string(root.join("proc/1/cgroup"))
            .ok()
            .and_then(|cgroup| container_in_cgroup(&cgroup))
            .map(|engine| format!("{engine} (/proc/1/cgroup)"))
    };
    let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    // WSL2's kernels are `...-microsoft-standard[-WSL2]`; WSL 1 reports a `...-Microsoft` release
    // of its own and has no /dev/dxg.
    let wsl = root.join("dev/dxg").exists() || release.contains("microsoft-standard") || release.contains("wsl2");
    let wsl1 = !wsl && release.contains("microsoft");
    let libcuda = root.join(WSL_LIB_DIR).join("libcuda.so.1");
    let mounted_driver_dir = MOUNTED_DRIVER_DIRS
        .iter()
        .find(|dir| root.join(dir).join("libcuda.so.1").exists())
        .map(|dir| format!("/{dir}"));
    Platform {
        container,
        wsl,
        wsl1,
        wsl_libcuda: (wsl && libcuda.exists()).then_some(libcuda),
        mounted_driver_dir,
    }
}

/// The container engine process 1's cgroup names, if any.
fn container_in_cgroup(cgroup: &str) -> Option<&'static str> {
    const ENGINES: [(&str, &str); 5] = [
        ("kubepods", "a Kubernetes pod"),
        ("docker", "a Docker container"),
        ("libpod", "a Podman container"),
        ("containerd", "a containerd container"),
        ("lxc", "an LXC container"),
    ];
    ENGINES
        .iter()
        .find(|(marker, _)| cgroup.contains(marker))
        .map(|(_, engine)| *engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_from_both_module_flavours() {
        assert_eq!(
            parse_release(
                "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024"
            )
            .as_deref(),
            Some("550.54.14")
        );
        assert_eq!(
            parse_release(
                "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build"
            )
            .as_deref(),
            Some("570.86.15")
        );
        assert_eq!(
            parse_release("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.82.01  ").as_deref(),
            Some("470.82.01")
        );
        assert_eq!(parse_release("garbage 1.2"), None);
    }

    #[test]
    fn a_described_machine_is_read_from_its_root() {
        let root = crate::util::files::scratch_dir("system");
        std::fs::create_dir_all(root.join("proc/driver/nvidia")).unwrap();
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(
            root.join("proc/driver/nvidia/version"),
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version: gcc 12\n",
        )
        .unwrap();
        std::fs::write(root.join("dev/nvidia0"), "").unwrap();
        std::fs::write(root.join("dev/nvidiactl"), "").unwrap();
        std::fs::write(root.join("dev/null"), "").unwrap();

        let module = kernel_module(&root).unwrap();
        assert_eq!(module.release.as_deref(), Some("535.104.05"));
        let nodes = device_nodes(&root);
        let names: Vec<String> = nodes
            .iter()
            .map(|n| n.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["nvidia0", "nvidiactl"]);
        assert!(nodes.iter().all(|n| n.accessible));
        assert_eq!(kernel_module(&root.join("nowhere")), None);
        assert_eq!(platform(&root), Platform::default());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn mig_modes_are_read_from_nvidia_smi_lines() {
        assert_eq!(parse_mig_modes("0, Enabled\n1, Disabled\n2, [N/A]\n3, Enabled\n"), [0, 3]);
        assert!(parse_mig_modes("garbage\n").is_empty());
    }

    #[test]
    fn containers_and_wsl_are_recognised_by_their_marks() {
        let root = crate::util::files::scratch_dir("platform");
        std::fs::create_dir_all(root.join("proc/1")).unwrap();
        std::fs::write(root.join("proc/1/cgroup"), "0::/kubepods/besteffort/pod1234\n").unwrap();
        assert_eq!(platform(&root).container.as_deref(), Some("a Kubernetes pod (/proc/1/cgroup)"));
        // cgroup v2 in a namespace of its own says nothing; the pod's service account does.
        std::fs::write(root.join("proc/1/cgroup"), "0::/\n").unwrap();
        assert_eq!(platform(&root).container, None);
        std::fs::create_dir_all(root.join(KUBERNETES_SECRETS).join("serviceaccount")).unwrap();
        assert_eq!(
            platform(&root).container.as_deref(),
            Some("a Kubernetes pod (/var/run/secrets/kubernetes.io)")
        );
        std::fs::write(root.join(".dockerenv"), "").unwrap();
        assert_eq!(platform(&root).container.as_deref(), Some("Docker (/.dockerenv)"));

        std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
        std::fs::write(root.join("proc/sys/kernel/osrelease"), "5.15.167.4-microsoft-standard-WSL2\n").unwrap();
        let wsl = platform(&root);
        assert!(wsl.wsl && !wsl.wsl1 && wsl.wsl_libcuda.is_none());
        // WSL 1: no GPU support, and not WSL2.
        std::fs::write(root.join("proc/sys/kernel/osrelease"), "4.4.0-19041-Microsoft\n").unwrap();
        let wsl1 = platform(&root);
        assert!(!wsl1.wsl && wsl1.wsl1, "{wsl1:?}");
        std::fs::write(root.join("proc/sys/kernel/osrelease"), "4.19.128-microsoft-standard\n").unwrap();
        assert!(platform(&root).wsl);
        std::fs::write(root.join("proc/sys/kernel/osrelease"), "5.15.167.4-microsoft-standard-WSL2\n").unwrap();
        std::fs::create_dir_all(root.join(WSL_LIB_DIR)).unwrap();
        std::fs::write(root.join(WSL_LIB_DIR).join("libcuda.so.1"), "").unwrap();
        assert!(platform(&root).wsl_libcuda.is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_cached_directories_come_from_ld_so_conf_and_its_includes() {
        let root = crate::util::files::scratch_dir("ld-so-conf");
        let conf_d = root.join("etc/ld.so.conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::write(
            root.join("etc/ld.so.conf"),
            "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/lib # trailing\nhwcap 0 nosegneg\n",
        )
        .unwrap();
        // A comment in Latin-1 (\xe9 is not UTF-8) before the directory.
        std::fs::write(
            conf_d.join("988_cuda-13.conf"),
            b"# install\xe9 by the toolkit\n/usr/local/cuda-13.0/targets/x86_64-linux/lib\n",
        )
        .unwrap();
        std::fs::write(conf_d.join("000_cuda.conf"), "/usr/local/cuda/lib64\ninclude loop.conf\n").unwrap();
        std::fs::write(conf_d.join("loop.conf"), "include loop.conf 000_cuda.conf\n").unwrap();
        std::fs::write(conf_d.join("notes.txt"), "/not/read\n").unwrap();
        std::fs::write(conf_d.join(".hidden.conf"), "/not/read/either\n").unwrap();
        let dirs = ld_so_conf_dirs(&root);
        let expected: Vec<PathBuf> = [
            "usr/local/cuda/lib64",
            "usr/local/cuda-13.0/targets/x86_64-linux/lib",
            "opt/lib",
        ]
        .iter()
        .map(|d| root.join(d))
        .collect();
        assert_eq!(dirs, expected);
        assert!(wildcard_match("*.conf", "x.conf") && !wildcard_match("*.conf", "x.confx"));
        assert!(wildcard_match("a*b*c", "abc") && !wildcard_match("a*bc*c", "abc"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
