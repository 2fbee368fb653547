//! The environment variables that decide what CUDA sees, and nothing else from the environment.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::util::format::escape_control;

/// The names of the variables gpu-test records. Only these are printed or reported; `PATH` is also
/// read, to find `nvcc` and the Python environments whose NVRTC wheels the loader does not see.
pub(crate) const RECORDED: &[&str] = &[
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_PATH",
];

/// The CUDA-related environment of this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Environment {
    /// `CUDA_VISIBLE_DEVICES`: which devices the driver exposes, and in which order.
    pub cuda_visible_devices: Option<String>,
    /// `CUDA_DEVICE_ORDER`: `FASTEST_FIRST` (the default) or `PCI_BUS_ID`.
    pub cuda_device_order: Option<String>,
    /// `LD_LIBRARY_PATH`: where the loader looks first for libcuda and libnvrtc.
    pub ld_library_path: Option<String>,
    /// `CUDA_HOME`: a CUDA toolkit installation.
    pub cuda_home: Option<String>,
    /// `CUDA_PATH`: a CUDA toolkit installation (the Windows convention, also used on Linux).
    pub cuda_path: Option<String>,
    /// `PATH`, never printed or reported: where `nvcc` is, and which Python environments are
    /// active (their wheels may hold NVRTC).
    pub path: Option<OsString>,
}

impl Environment {
    /// Reads the recorded variables from this process's environment.
    pub(crate) fn from_process() -> Environment {
        Environment::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the recorded variables through `lookup` (for tests).
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Environment {
        let get = |name: &str| lookup(name).map(|value| value.to_string_lossy().into_owned());
        Environment {
            cuda_visible_devices: get("CUDA_VISIBLE_DEVICES"),
            cuda_device_order: get("CUDA_DEVICE_ORDER"),
            ld_library_path: get("LD_LIBRARY_PATH"),
            cuda_home: get("CUDA_HOME"),
            cuda_path: get("CUDA_PATH"),
            path: lookup("PATH"),
        }
    }

    /// `(name, value)` for each recorded variable that is set, with control characters escaped.
    pub(crate) fn set_variables(&self) -> Vec<(&'static str, String)> {
        let values = [
            &self.cuda_visible_devices,
            &self.cuda_device_order,
            &self.ld_library_path,
            &self.cuda_home,
            &self.cuda_path,
        ];
        RECORDED
            .iter()
            .zip(values)
            .filter_map(|(name, value)| value.as_deref().map(|v| (*name, escape_control(v))))
            .collect()
    }

    /// Whether `LD_LIBRARY_PATH` has an empty element (a leading, trailing or doubled `:`), which
    /// the loader reads as the current directory.
    pub(crate) fn library_path_has_empty_element(&self) -> bool {
        self.ld_library_path
            .as_deref()
            .is_some_and(|path| !path.is_empty() && path.split(':').any(str::is_empty))
    }

    /// `PATH`'s directories, in order, empty elements left out.
    pub(crate) fn path_dirs(&self) -> Vec<PathBuf> {
        self.path
            .as_deref()
            .map(|path| std::env::split_paths(path).filter(|dir| !dir.as_os_str().is_empty()).collect())
            .unwrap_or_default()
    }

    /// The directories of `LD_LIBRARY_PATH`, in order, without empty elements.
    pub(crate) fn library_path_dirs(&self) -> impl Iterator<Item = &str> {
        self.ld_library_path
            .as_deref()
            .unwrap_or_default()
            .split(':')
            .filter(|dir| !dir.is_empty())
    }

    /// How the driver will read `CUDA_VISIBLE_DEVICES`.
    pub(crate) fn visible_devices(&self) -> VisibleDevices {
        VisibleDevices::parse(self.cuda_visible_devices.as_deref())
    }

    /// `LD_LIBRARY_PATH=...` or `LD_LIBRARY_PATH is unset`, for reasons that name where a library
    /// was looked for. The directories cargo and nextest add for every test (the target directory
    /// and the toolchain's) are left out, since they never hold a CUDA library.
    pub(crate) fn describe_library_path(&self) -> String {
        if self.ld_library_path.is_none() {
            return "LD_LIBRARY_PATH is unset".to_string();
        }
        let dirs: Vec<&str> = self.library_path_dirs().collect();
        if dirs.is_empty() {
            return "LD_LIBRARY_PATH is empty".to_string();
        }
        let exe_dirs = test_binary_dirs();
        let theirs: Vec<&str> = dirs
            .iter()
            .copied()
            .filter(|dir| !is_toolchain_dir(dir, &exe_dirs))
            .collect();
        let shown = escape_control(&theirs.join(":"));
        if theirs.is_empty() {
            "LD_LIBRARY_PATH holds only cargo's own directories".to_string()
        } else if theirs.len() == dirs.len() {
            format!("LD_LIBRARY_PATH={shown}")
        } else {
            format!("LD_LIBRARY_PATH={shown} (besides cargo's own directories)")
        }
    }
}

/// The directory of the running binary and its parent: cargo adds `<target>/debug/deps` and
/// `<target>/debug` to LD_LIBRARY_PATH for every test it runs.
fn test_binary_dirs() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    exe.ancestors()
        .skip(1)
        .take(2)
        .filter_map(|dir| std::fs::canonicalize(dir).ok())
        .collect()
}

/// Whether `dir` is one cargo or nextest adds: the test binary's directories, or the Rust
/// toolchain's library directories.
fn is_toolchain_dir(dir: &str, exe_dirs: &[PathBuf]) -> bool {
    if dir.contains("/rustlib/") || (dir.contains("/toolchains/") && dir.ends_with("/lib")) {
        return true;
    }
    std::fs::canonicalize(dir).is_ok_and(|dir| exe_dirs.contains(&dir))
}

/// `CUDA_VISIBLE_DEVICES` as the driver reads it, comma-separated entries, each trimmed: where the
/// first entry is a UUID (`GPU-...`, `MIG-...`), UUIDs of that kind, up to the first entry that
/// is not one; else device indices, each read from an entry's leading digits (`1gpu` is 1, as
/// `strtoul` reads it), up to the first entry with none. An entry listed twice makes the driver
/// show no device at all. (This is how the driver was observed to read it, which PyTorch's own
/// reading of the variable follows.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VisibleDevices {
    /// Not set: every device is visible.
    Unset,
    /// Set: `valid` are the entries before the first invalid one, `invalid` that entry.
    Set {
        /// The variable's value as given.
        raw: String,
        /// The entries the driver uses (an index as the number it reads), up to a duplicate.
        valid: Vec<String>,
        /// The first entry the driver cannot read; it and everything after it are ignored.
        invalid: Option<String>,
        /// The first entry listed again, with which the driver shows no device.
        duplicate: Option<String>,
        /// The first entry of which the driver reads only the leading number (`0;1`, `1gpu`),
        /// and that number.
        cut_short: Option<(String, String)>,
    },
}

/// Which kind of UUID `entry` starts as (`GPU-` or `MIG-`), if it is one: the first entry of
/// `CUDA_VISIBLE_DEVICES` makes the list one of that kind.
fn uuid_kind(entry: &str) -> Option<&'static str> {
    ["GPU-", "MIG-"].into_iter().find(|kind| entry.starts_with(kind))
}

impl VisibleDevices {
    /// Parses the variable's value (`None` when unset).
    pub(crate) fn parse(value: Option<&str>) -> VisibleDevices {
        let Some(raw) = value else {
            return VisibleDevices::Unset;
        };
        let mut valid: Vec<String> = Vec::new();
        let mut invalid = None;
        let mut duplicate = None;
        let mut cut_short = None;
        let uuids = uuid_kind(raw.trim_start());
        if !raw.trim().is_empty() {
            for entry in raw.split(',') {
                let entry = entry.trim();
                let read = match uuids {
                    Some(kind) => is_uuid_entry(entry, kind).then(|| entry.to_string()),
                    None => leading_index(entry),
                };
                let Some(read) = read else {
                    invalid = Some(escape_control(entry));
                    break;
                };
                if valid.contains(&read) {
                    duplicate = Some(read);
                    break;
                }
                // More after the number (`0;1`, not `007` or `+0`): the driver reads no further.
                let after_the_number = uuids.is_none()
                    && !entry
                        .trim_start_matches('+')
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .is_empty();
                if after_the_number && cut_short.is_none() {
                    cut_short = Some((escape_control(entry), read.clone()));
                }
                valid.push(read);
            }
        }
        VisibleDevices::Set {
            raw: escape_control(raw),
            valid,
            invalid,
            duplicate,
            cut_short,
        }
    }

    /// Why the driver cannot read the entry `invalid` names (after its text): by the kind of list
    /// the first entry makes it.
    pub(crate) fn why_invalid(&self) -> String {
        let (first, invalid) = match self {
            VisibleDevices::Set { valid, invalid, .. } => (valid.first(), invalid.as_deref()),
            VisibleDevices::Unset => (None, None),
        };
        match (first.and_then(|first| uuid_kind(first)), first, invalid.and_then(uuid_kind)) {
            (Some(kind), _, _) => format!(
                "is not a {kind}... UUID, as the first entry is (the driver reads a list of UUIDs or one of \
                 indices, not both)"
            ),
            (None, Some(_), Some(_)) => "is a UUID where the first entry is an index (the driver reads a list of \
                                          UUIDs or one of indices, not both)"
                .to_string(),
            _ => "is not a device index or UUID (GPU-..., MIG-...)".to_string(),
        }
    }

    /// Whether the variable hides every device whatever the machine has: set but empty, with no
    /// entry the driver can read before the first it cannot, or with an entry listed twice.
    pub(crate) fn hides_every_device(&self) -> bool {
        matches!(self, VisibleDevices::Set { valid, duplicate, .. } if valid.is_empty() || duplicate.is_some())
    }

    /// The entries the driver shows devices for, in order: none where one is listed twice.
    #[cfg(test)]
    fn shown(&self) -> &[String] {
        match self {
            VisibleDevices::Set { duplicate: Some(_), .. } | VisibleDevices::Unset => &[],
            VisibleDevices::Set { valid, .. } => valid,
        }
    }

    /// Whether the first entry, where the driver starts, is an index below `count` (so it names a
    /// GPU of a machine with `count` of them) and the variable does not hide every device;
    /// `false` for a UUID, which only the driver can match.
    pub(crate) fn first_within(&self, count: usize) -> bool {
        match self {
            VisibleDevices::Unset => true,
            VisibleDevices::Set { valid, duplicate, .. } => {
                duplicate.is_none()
                    && valid
                        .first()
                        .is_some_and(|entry| entry.parse::<usize>().is_ok_and(|index| index < count))
            }
        }
    }

    /// Why the variable leaves fewer devices than `needed` visible, when the driver reported
    /// `found`, if it does: the text that goes in parentheses after a device count.
    pub(crate) fn explain_shortfall(&self, needed: usize, found: usize) -> Option<String> {
        self.shortfall(needed, found).map(|(why, _)| why)
    }

    /// [`explain_shortfall`](Self::explain_shortfall), with the fix for that cause.
    pub(crate) fn shortfall(&self, needed: usize, found: usize) -> Option<(String, String)> {
        let VisibleDevices::Set {
            raw,
            valid,
            invalid,
            duplicate,
            cut_short,
        } = self
        else {
            return None;
        };
        if let Some(entry) = duplicate {
            // A driver that shows the GPU twice still gives it once.
            let what = match found {
                0 => "with which the driver shows no device at all",
                _ => "and one GPU cannot serve as two",
            };
            return Some((
                format!("CUDA_VISIBLE_DEVICES={raw} lists {entry} twice, {what}"),
                format!("list {needed} different GPUs in CUDA_VISIBLE_DEVICES, each once, or unset it"),
            ));
        }
        if raw.trim().is_empty() {
            return Some((
                format!("CUDA_VISIBLE_DEVICES=\"{raw}\" is set but empty, which hides every device"),
                format!("list {needed} devices in CUDA_VISIBLE_DEVICES or unset it"),
            ));
        }
        // An invalid entry explains a shortfall only when the entries before it are too few.
        if let Some(invalid) = invalid.as_ref().filter(|_| valid.len() < needed) {
            let what = if invalid.is_empty() {
                "an empty entry".to_string()
            } else {
                format!("\"{invalid}\"")
            };
            let visible = match valid.len() {
                0 => "hides every device".to_string(),
                1 => "leaves at most 1 device visible".to_string(),
                n => format!("leaves at most {n} devices visible"),
            };
            return Some((
                format!(
                    "CUDA_VISIBLE_DEVICES=\"{raw}\" {visible}: {what} {}, and the driver ignores everything from \
                     the first invalid entry on",
                    self.why_invalid()
                ),
                format!(
                    "correct or remove {what} in CUDA_VISIBLE_DEVICES (device indices or UUIDs such as 0,1 or \
                     GPU-...), or unset it"
                ),
            ));
        }
        // CUDA shows a process one MIG instance, however many the variable lists.
        if found == 1 && valid.len() > 1 && valid[0].starts_with("MIG-") && found < needed {
            return Some((
                format!(
                    "CUDA_VISIBLE_DEVICES={raw} lists {} MIG instances, and CUDA shows a process only the first",
                    valid.len()
                ),
                format!(
                    "run a test that needs {needed} devices on whole GPUs: no process sees more than one MIG \
                     instance"
                ),
            ));
        }
        // The driver stops at the first entry that matches no device: an index past the last
        // GPU, or a UUID no GPU has (another machine's, or a GPU since replaced).
        if found < valid.len() && found < needed {
            let entry = &valid[found];
            let what = if entry.bytes().all(|b| b.is_ascii_digit()) {
                "no GPU has that index"
            } else {
                "no GPU or MIG instance has that UUID"
            };
            let rest = if found + 1 < valid.len() {
                " and every entry after it"
            } else {
                ""
            };
            return Some((
                format!(
                    "CUDA_VISIBLE_DEVICES={raw} lists {entry}, which matches no device ({what}), so the driver \
                     ignores it{rest}"
                ),
                format!(
                    "remove {entry} from CUDA_VISIBLE_DEVICES or list a device this machine has (nvidia-smi -L \
                     lists them), or unset it"
                ),
            ));
        }
        // An entry the driver reads only the start of: `0;1` is 0, not 0 and 1.
        if let Some((entry, read)) = cut_short.as_ref().filter(|_| valid.len() < needed) {
            return Some((
                format!(
                    "CUDA_VISIBLE_DEVICES=\"{raw}\" leaves at most {} visible: the driver reads an entry's leading \
                     number, so \"{entry}\" is {read}",
                    count_devices(valid.len())
                ),
                format!("separate devices with commas in CUDA_VISIBLE_DEVICES (such as 0,1), {needed} of them, or unset it"),
            ));
        }
        (valid.len() < needed).then(|| {
            (
                format!("CUDA_VISIBLE_DEVICES={raw} hides the others"),
                format!("list {needed} devices in CUDA_VISIBLE_DEVICES or unset it"),
            )
        })
    }
}

/// `1 device`, `2 devices`.
fn count_devices(n: usize) -> String {
    match n {
        1 => "1 device".to_string(),
        n => format!("{n} devices"),
    }
}

/// The index the driver reads from `entry`: its leading digits, after an optional `+`, as
/// `strtoul` reads them; `None` where it starts with none.
fn leading_index(entry: &str) -> Option<String> {
    let digits = entry.strip_prefix('+').unwrap_or(entry);
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    let digits = &digits[..end];
    if digits.is_empty() {
        return None;
    }
    // `007` is 7; a number past any index stays as written, and matches no device.
    Some(digits.parse::<u64>().map_or_else(|_| digits.to_string(), |index| index.to_string()))
}

/// A UUID or UUID prefix of `kind` (`GPU-5f0c...`, `MIG-...`).
fn is_uuid_entry(entry: &str, kind: &str) -> bool {
    entry.strip_prefix(kind).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recorded_variables_are_read() {
        let env = Environment::from_lookup(|name| match name {
            "CUDA_VISIBLE_DEVICES" => Some("0".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        });
        assert_eq!(
            env.set_variables(),
            vec![("CUDA_VISIBLE_DEVICES", "0".to_string())]
        );
        assert_eq!(env.describe_library_path(), "LD_LIBRARY_PATH is unset");
    }

    #[test]
    fn cargo_directories_are_left_out_of_the_library_path() {
        let deps = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .display()
            .to_string();
        let describe = |value: &str| {
            Environment {
                ld_library_path: Some(value.to_string()),
                ..Environment::default()
            }
            .describe_library_path()
        };
        let toolchain = "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib";
        assert_eq!(
            describe(&format!("{deps}:{toolchain}")),
            "LD_LIBRARY_PATH holds only cargo's own directories"
        );
        assert_eq!(
            describe(&format!("/usr/local/cuda/lib64:{deps}")),
            "LD_LIBRARY_PATH=/usr/local/cuda/lib64 (besides cargo's own directories)"
        );
        assert_eq!(describe("/opt/cuda/lib64"), "LD_LIBRARY_PATH=/opt/cuda/lib64");
        assert_eq!(describe(""), "LD_LIBRARY_PATH is empty");
    }

    /// How many entries the driver uses (`None`: unset, every device).
    fn limit(value: Option<&str>) -> Option<usize> {
        match VisibleDevices::parse(value) {
            VisibleDevices::Unset => None,
            VisibleDevices::Set { valid, .. } => Some(valid.len()),
        }
    }

    #[test]
    fn visible_devices_read_like_the_driver() {
        assert_eq!(VisibleDevices::parse(None), VisibleDevices::Unset);
        assert_eq!(limit(Some("0,1")), Some(2));
        assert_eq!(limit(Some("MIG-GPU-5f0c/1/0")), Some(1));
        assert_eq!(limit(Some("")), Some(0));
        assert_eq!(limit(Some("garbage")), Some(0));
        assert_eq!(limit(Some("-1")), Some(0));
        assert_eq!(limit(Some("0,x,1")), Some(1));
        // A list of UUIDs or one of indices, not both.
        assert_eq!(limit(Some("GPU-5f0c2a9d,1")), Some(1));
        assert_eq!(limit(Some("1,GPU-5f0c2a9d")), Some(1));
        assert_eq!(limit(Some(" GPU-5f0c2a9d , GPU-77")), Some(2));
        // An index is an entry's leading digits.
        let read = VisibleDevices::parse(Some(" 1gpu2, +02 ,0;1"));
        assert_eq!(read.shown(), ["1", "2", "0"]);
        let VisibleDevices::Set { cut_short, .. } = &read else { unreachable!() };
        assert_eq!(cut_short, &Some(("1gpu2".to_string(), "1".to_string())));
        // A number written with a sign or leading zeros is read whole.
        let whole = VisibleDevices::parse(Some("+0,007"));
        assert_eq!(whole.shown(), ["0", "7"]);
        let VisibleDevices::Set { cut_short, .. } = &whole else { unreachable!() };
        assert_eq!(cut_short, &None);
        // An entry listed twice hides every device.
        let twice = VisibleDevices::parse(Some("0,1,0"));
        assert!(twice.hides_every_device() && twice.shown().is_empty());
        assert!(!twice.first_within(4));
        assert!(VisibleDevices::parse(Some("GPU-aa,GPU-aa")).hides_every_device());
        assert!(!VisibleDevices::parse(Some("0,1")).hides_every_device());
    }

    #[test]
    fn shortfalls_are_explained() {
        let explain = |value: &str, needed: usize| {
            VisibleDevices::parse(Some(value)).explain_shortfall(needed, needed.min(value.split(',').count()))
        };
        assert_eq!(
            explain("0", 2).unwrap(),
            "CUDA_VISIBLE_DEVICES=0 hides the others"
        );
        assert_eq!(explain("0,1", 2), None);
        assert!(
            explain("", 1)
                .unwrap()
                .contains("set but empty, which hides every device")
        );
        let garbage = explain("garbage", 1).unwrap();
        assert!(
            garbage.contains("CUDA_VISIBLE_DEVICES=\"garbage\" hides every device"),
            "{garbage}"
        );
        assert!(garbage.contains("not a device index or UUID"), "{garbage}");
        assert!(explain("0,,1", 2).unwrap().contains("an empty entry"));
        // A trailing comma after enough entries is not why: the entry that matched nothing is.
        let trailing = VisibleDevices::parse(Some("0,1,")).explain_shortfall(2, 1).unwrap();
        assert!(trailing.contains("lists 1, which matches no device"), "{trailing}");
        assert_eq!(VisibleDevices::Unset.explain_shortfall(4, 1), None);
        // Entries that match nothing: the first of them is named.
        let absent = VisibleDevices::parse(Some("GPU-deadbeef,GPU-0a")).explain_shortfall(1, 0).unwrap();
        assert_eq!(
            absent,
            "CUDA_VISIBLE_DEVICES=GPU-deadbeef,GPU-0a lists GPU-deadbeef, which matches no device (no GPU or MIG \
             instance has that UUID), so the driver ignores it and every entry after it"
        );
        let two_instances = VisibleDevices::parse(Some("MIG-aa,MIG-bb")).explain_shortfall(2, 1).unwrap();
        assert!(two_instances.ends_with("lists 2 MIG instances, and CUDA shows a process only the first"), "{two_instances}");
        let beyond = VisibleDevices::parse(Some("0,7")).explain_shortfall(2, 1).unwrap();
        assert!(beyond.contains("lists 7, which matches no device (no GPU has that index), so the driver ignores it"), "{beyond}");
        let twice = |found: usize| VisibleDevices::parse(Some("0,0")).explain_shortfall(2, found).unwrap();
        assert_eq!(
            twice(0),
            "CUDA_VISIBLE_DEVICES=0,0 lists 0 twice, with which the driver shows no device at all"
        );
        assert_eq!(
            twice(2),
            "CUDA_VISIBLE_DEVICES=0,0 lists 0 twice, and one GPU cannot serve as two"
        );
        assert_eq!(
            explain("0;1", 2).unwrap(),
            "CUDA_VISIBLE_DEVICES=\"0;1\" leaves at most 1 device visible: the driver reads an entry's leading \
             number, so \"0;1\" is 0"
        );
        let uuid_after = explain("0,GPU-aa", 2).unwrap();
        assert!(
            uuid_after.contains("\"GPU-aa\" is a UUID where the first entry is an index"),
            "{uuid_after}"
        );
        let mixed = explain("GPU-aa,1", 2).unwrap();
        assert!(
            mixed.contains("\"1\" is not a GPU-... UUID, as the first entry is (the driver reads a list of UUIDs or one of indices, not both)"),
            "{mixed}"
        );
        assert!(explain("0\n::error::x", 2).unwrap().contains("0\\n::error::x"));
    }

    #[test]
    fn each_shortfall_has_its_own_fix() {
        let fix = |value: &str, needed: usize, found: usize| {
            VisibleDevices::parse(Some(value)).shortfall(needed, found).unwrap().1
        };
        assert_eq!(fix("0", 2, 1), "list 2 devices in CUDA_VISIBLE_DEVICES or unset it");
        assert_eq!(
            fix("0,0", 2, 2),
            "list 2 different GPUs in CUDA_VISIBLE_DEVICES, each once, or unset it"
        );
        assert!(fix("MIG-aa,MIG-bb", 2, 1).starts_with("run a test that needs 2 devices on whole GPUs"));
        assert!(fix("0,7", 2, 1).starts_with("remove 7 from CUDA_VISIBLE_DEVICES"));
        assert!(fix("0,x", 2, 1).starts_with("correct or remove \"x\" in CUDA_VISIBLE_DEVICES"));
    }
}
