//! The fake driver's answers, read from environment variables when it is first called.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `FAKE_CUDA_DRIVER_VERSION` | what `cuDriverGetVersion` reports (`12080` = CUDA 12.8) | `12080` |
//! | `FAKE_CUDA_VERSION_RESULT` | the result code of `cuDriverGetVersion` | `0` |
//! | `FAKE_CUDA_INIT_RESULT` | the result code of `cuInit`, any integer | `0` |
//! | `FAKE_CUDA_DEVICES` | `;`-separated devices, each `name|major.minor|memory[|compute mode]` | one `NVIDIA Fake H100|9.0|80GiB` |
//! | `FAKE_CUDA_FAIL` | `,`-separated `call[@ordinal][+n]=code`: that call (on that device, after its first `n` calls) returns `code` | none |
//! | `FAKE_CUDA_HANG` | `,`-separated `call[+n]`: that call (after its first `n` calls) never returns (a wedged GPU) | none |
//! | `FAKE_CUDA_EXIT_WAITS` | `1`: the process's exit waits for a call that never returned, as a driver's teardown waiting on its own lock would | none |
//! | `FAKE_CUDA_CRASH` | `,`-separated calls that crash the process with SIGSEGV | none |
//! | `FAKE_CUDA_DEVICE_COUNT` | what `cuDeviceGetCount` reports, whatever the devices | their number |
//! | `FAKE_CUDA_EVENT_MS` | `,`-separated elapsed times `cuEventElapsedTime` returns in turn | `0.5` |
//! | `FAKE_CUDA_LOG` | a file each context retain and release (`release-unretained`: of a context not retained) is appended to | none |
//! | `FAKE_CUDA_USED_ELSEWHERE` | memory other processes hold on each device (`12GiB`), which `cuMemGetInfo` does not report free | `0` |
//! | `FAKE_CUDA_FREE` | what `cuMemGetInfo_v2` reports free (`100GiB`), whatever is allocated: a driver's answer that may not be right | none |
//! | `FAKE_CUDA_KEPT_ON_FIRST_USE` | device memory (`2MiB`) the first stream-ordered allocation of the process makes the driver keep for good, as a real driver keeps what it sets up on first use | `0` |
//! | `FAKE_CUDA_MEMORY_POOLS` | `1`: devices have stream-ordered memory pools, which keep what `cuMemFreeAsync` frees until `cuMemPoolTrimTo` | none |
//! | `FAKE_CUDA_SHOWS_REPEATS` | `1`: a GPU `CUDA_VISIBLE_DEVICES` lists twice is shown twice, as a driver might (gpu-test tells them apart by UUID), rather than hiding every device | none |
//! | `FAKE_NVML_RELEASE` | the driver release NVML's `nvmlSystemGetDriverVersion` gives; unset, `nvmlInit_v2` fails | none |
//! | `FAKE_NVRTC_VERSION` | what `nvrtcVersion` reports | `12.8` |
//! | `FAKE_NVRTC_BUILTINS` | `1`: compiling asks the loader for `libnvrtc-builtins.so.X.Y` by name, as NVRTC does, and fails with `NVRTC_ERROR_BUILTIN_OPERATION_FAILURE` without it | none |
//!
//! `CUDA_VISIBLE_DEVICES` is applied as the real driver was observed to apply it: UUID prefixes
//! of the first entry's kind (`GPU-`, `MIG-`), else indices read from each entry's leading digits
//! (`1gpu` is 1), up to the first entry that is neither or matches nothing; an entry listed twice
//! hides every device. With no device left, `cuInit` returns 100. A `MIG-<uuid>` entry selects
//! the device of that UUID as a MIG instance would be selected.

use std::path::PathBuf;

/// One fake device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub name: String,
    pub major: i32,
    pub minor: i32,
    pub memory: u64,
    pub compute_mode: i32,
    pub uuid: [u8; 16],
    pub physical_index: usize,
}

/// An injected failure: `call` (on device `ordinal`, if given; after its first `after` calls)
/// returns `code`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub call: String,
    pub ordinal: Option<i32>,
    pub after: usize,
    pub code: i32,
}

/// Everything the fake answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub driver_version: i32,
    pub version_result: i32,
    pub init_result: i32,
    pub devices: Vec<Device>,
    pub failures: Vec<Failure>,
    pub event_ms: Vec<f32>,
    /// Calls that never return: the call, and how many of its calls return first.
    pub hang: Vec<(String, usize)>,
    pub exit_waits: bool,
    pub crash: Vec<String>,
    pub device_count: Option<i32>,
    pub log: Option<PathBuf>,
    pub nvrtc_version: (i32, i32),
    pub nvrtc_builtins: bool,
    pub used_elsewhere: u64,
    /// `FAKE_CUDA_FREE`: the free memory `cuMemGetInfo_v2` reports, whatever is allocated.
    pub reported_free: Option<u64>,
    pub kept_on_first_use: u64,
    pub memory_pools: bool,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let int = |name: &str, default: i32| -> Result<i32, String> {
            match lookup(name) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={value:?} is not an integer")),
            }
        };
        let physical = match lookup("FAKE_CUDA_DEVICES") {
            None => vec![parse_device("NVIDIA Fake H100|9.0|80GiB", 0)?],
            Some(spec) if spec.trim().is_empty() => Vec::new(),
            Some(spec) => spec
                .split(';')
                .enumerate()
                .map(|(i, device)| parse_device(device, i))
                .collect::<Result<_, _>>()?,
        };
        let shows_repeats = lookup("FAKE_CUDA_SHOWS_REPEATS").as_deref() == Some("1");
        let devices = apply_visible_devices(
            &physical,
            lookup("CUDA_VISIBLE_DEVICES").as_deref(),
            shows_repeats,
        );
        let failures = match lookup("FAKE_CUDA_FAIL") {
            None => Vec::new(),
            Some(spec) => spec
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_failure)
                .collect::<Result<_, _>>()?,
        };
        let event_ms = match lookup("FAKE_CUDA_EVENT_MS") {
            None => vec![0.5],
            Some(spec) => spec
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .map_err(|_| format!("FAKE_CUDA_EVENT_MS: {v:?} is not a number"))
                })
                .collect::<Result<_, _>>()?,
        };
        let nvrtc_version = match lookup("FAKE_NVRTC_VERSION") {
            None => (12, 8),
            Some(v) => parse_version(&v).ok_or_else(|| format!("FAKE_NVRTC_VERSION={v:?} is not X.Y"))?,
        };
        let calls = |name: &str| -> Vec<String> {
            lookup(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|call| !call.is_empty())
                .map(str::to_string)
                .collect()
        };
        let device_count = match lookup("FAKE_CUDA_DEVICE_COUNT") {
            None => None,
            Some(value) => Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("FAKE_CUDA_DEVICE_COUNT={value:?} is not an integer"))?,
            ),
        };
        let used_elsewhere = match lookup("FAKE_CUDA_USED_ELSEWHERE") {
            None => 0,
            Some(value) => parse_memory(&value)
                .ok_or_else(|| format!("FAKE_CUDA_USED_ELSEWHERE={value:?} is not a size such as 12GiB"))?,
        };
        let reported_free = match lookup("FAKE_CUDA_FREE") {
            None => None,
            Some(value) => Some(
                parse_memory(&value)
                    .ok_or_else(|| format!("FAKE_CUDA_FREE={value:?} is not a size such as 100GiB"))?,
            ),
        };
        let kept_on_first_use = match lookup("FAKE_CUDA_KEPT_ON_FIRST_USE") {
            None => 0,
            Some(value) => parse_memory(&value)
                .ok_or_else(|| format!("FAKE_CUDA_KEPT_ON_FIRST_USE={value:?} is not a size such as 2MiB"))?,
        };
        Ok(Config {
            used_elsewhere,
            reported_free,
            kept_on_first_use,
            memory_pools: lookup("FAKE_CUDA_MEMORY_POOLS").as_deref() == Some("1"),
            hang: calls("FAKE_CUDA_HANG")
                .iter()
                .map(|spec| match spec.split_once('+') {
                    Some((call, after)) => after
                        .parse()
                        .map(|after| (call.to_string(), after))
                        .map_err(|_| format!("FAKE_CUDA_HANG: {spec:?} is not call+n")),
                    None => Ok((spec.clone(), 0)),
                })
                .collect::<Result<_, _>>()?,
            exit_waits: lookup("FAKE_CUDA_EXIT_WAITS").as_deref() == Some("1"),
            crash: calls("FAKE_CUDA_CRASH"),
            device_count,
            driver_version: int("FAKE_CUDA_DRIVER_VERSION", 12080)?,
            version_result: int("FAKE_CUDA_VERSION_RESULT", 0)?,
            init_result: int("FAKE_CUDA_INIT_RESULT", 0)?,
            devices,
            failures,
            event_ms,
            log: lookup("FAKE_CUDA_LOG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            nvrtc_version,
            nvrtc_builtins: lookup("FAKE_NVRTC_BUILTINS").is_some_and(|v| v == "1"),
        })
    }

    /// The injected result for the `nth` (0-based) call of `call` on device `ordinal`, if any.
    pub fn failure(&self, call: &str, ordinal: Option<i32>, nth: usize) -> Option<i32> {
        self.failures
            .iter()
            .find(|f| f.call == call && (f.ordinal.is_none() || f.ordinal == ordinal) && nth >= f.after)
            .map(|f| f.code)
    }
}

fn parse_version(text: &str) -> Option<(i32, i32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn parse_device(spec: &str, index: usize) -> Result<Device, String> {
    let fields: Vec<&str> = spec.split('|').map(str::trim).collect();
    if !(3..=4).contains(&fields.len()) {
        return Err(format!(
            "FAKE_CUDA_DEVICES: {spec:?} is not name|major.minor|memory[|compute mode]"
        ));
    }
    let (major, minor) = parse_version(fields[1])
        .ok_or_else(|| format!("FAKE_CUDA_DEVICES: {:?} is not major.minor", fields[1]))?;
    let memory =
        parse_memory(fields[2]).ok_or_else(|| format!("FAKE_CUDA_DEVICES: {:?} is not a size", fields[2]))?;
    let compute_mode = match fields.get(3) {
        None => 0,
        Some(mode) => mode
            .parse()
            .map_err(|_| format!("FAKE_CUDA_DEVICES: compute mode {mode:?} is not an integer"))?,
    };
    let mut uuid = [0u8; 16];
    uuid[0] = 0xfa;
    uuid[1] = 0x4e;
    uuid[15] = index as u8;
    Ok(Device {
        name: fields[0].to_string(),
        major,
        minor,
        memory,
        compute_mode,
        uuid,
        physical_index: index,
    })
}

fn parse_memory(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let value: u64 = text[..split].parse().ok()?;
    let unit = match text[split..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    value.checked_mul(unit)
}

fn parse_failure(spec: &str) -> Result<Failure, String> {
    let (target, code) = spec
        .split_once('=')
        .ok_or_else(|| format!("FAKE_CUDA_FAIL: {spec:?} is not call[@ordinal]=code"))?;
    let code: i32 = code
        .trim()
        .parse()
        .map_err(|_| format!("FAKE_CUDA_FAIL: {code:?} is not an integer"))?;
    let (target, after) = match target.split_once('+') {
        Some((target, after)) => (
            target,
            after
                .parse()
                .map_err(|_| format!("FAKE_CUDA_FAIL: {after:?} is not a number of calls"))?,
        ),
        None => (target, 0),
    };
    let (call, ordinal) = match target.split_once('@') {
        Some((call, ordinal)) => (
            call,
            Some(
                ordinal
                    .parse()
                    .map_err(|_| format!("FAKE_CUDA_FAIL: {ordinal:?} is not an ordinal"))?,
            ),
        ),
        None => (target, None),
    };
    Ok(Failure {
        call: call.trim().to_string(),
        ordinal,
        after,
        code,
    })
}

/// `GPU-` and 8-4-4-4-12 hex digits, as the real driver's UUIDs are written.
pub fn uuid_string(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The devices `CUDA_VISIBLE_DEVICES` leaves, in its order (see the module's documentation);
/// `shows_repeats`: a device listed twice is shown twice rather than hiding every device.
fn apply_visible_devices(physical: &[Device], visible: Option<&str>, shows_repeats: bool) -> Vec<Device> {
    let Some(visible) = visible else {
        return physical.to_vec();
    };
    let kind = ["GPU-", "MIG-"]
        .into_iter()
        .find(|kind| visible.trim_start().starts_with(kind));
    let mut devices: Vec<Device> = Vec::new();
    for entry in visible.split(',') {
        let entry = entry.trim();
        let found = match kind {
            // A MIG- entry names a MIG instance by its UUID: any fake device stands for one.
            Some(kind) if entry.starts_with(kind) && entry.len() > 4 => physical
                .iter()
                .find(|d| uuid_string(&d.uuid)[4..].starts_with(&entry[4..])),
            Some(_) => None,
            None => {
                let digits = entry.strip_prefix('+').unwrap_or(entry);
                let end = digits
                    .bytes()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(digits.len());
                digits[..end].parse::<usize>().ok().and_then(|i| physical.get(i))
            }
        };
        match found {
            Some(device)
                if devices.iter().any(|d| d.physical_index == device.physical_index) && !shows_repeats =>
            {
                return Vec::new();
            }
            Some(device) => devices.push(device.clone()),
            None => break,
        }
    }
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_describe_one_h100() {
        let config = config(&[]).unwrap();
        assert_eq!(config.driver_version, 12080);
        assert_eq!(config.devices.len(), 1);
        assert_eq!(config.devices[0].memory, 80 << 30);
    }

    #[test]
    fn devices_and_failures_parse() {
        let config = config(&[
            ("FAKE_CUDA_DEVICES", "NVIDIA T4|7.5|16GiB;NVIDIA A100|8.0|40GiB|2"),
            (
                "FAKE_CUDA_FAIL",
                "cuDeviceGetName@1=999,cuLaunchKernel=700,cuCtxSynchronize+1=9999",
            ),
        ])
        .unwrap();
        assert_eq!(config.failure("cuCtxSynchronize", Some(0), 0), None);
        assert_eq!(config.failure("cuCtxSynchronize", Some(0), 1), Some(9999));
        assert_eq!(config.devices[1].compute_mode, 2);
        assert_eq!(config.failure("cuDeviceGetName", Some(1), 0), Some(999));
        assert_eq!(config.failure("cuDeviceGetName", Some(0), 0), None);
        assert_eq!(config.failure("cuLaunchKernel", None, 0), Some(700));
    }

    #[test]
    fn visible_devices_filter_like_the_driver() {
        let two = "A|8.0|1GiB;B|8.0|1GiB";
        let names = |visible: &str| -> Vec<String> {
            config(&[("FAKE_CUDA_DEVICES", two), ("CUDA_VISIBLE_DEVICES", visible)])
                .unwrap()
                .devices
                .into_iter()
                .map(|d| d.name)
                .collect()
        };
        assert_eq!(names("1,0"), ["B", "A"]);
        assert_eq!(names("1,x,0"), ["B"]);
        assert!(names("").is_empty());
        assert!(names("garbage").is_empty());
        assert_eq!(names("GPU-fa4e"), ["A"]);
        // Leading digits, as strtoul reads them; a list of one kind; a repeat hides all.
        assert_eq!(names("1gpu, 0;1"), ["B", "A"]);
        assert_eq!(names("GPU-fa4e,1"), ["A"]);
        assert_eq!(names("1,GPU-fa4e"), ["B"]);
        assert!(names("0,1,0").is_empty());
        let repeated = config(&[
            ("FAKE_CUDA_DEVICES", two),
            ("CUDA_VISIBLE_DEVICES", "0,0"),
            ("FAKE_CUDA_SHOWS_REPEATS", "1"),
        ])
        .unwrap();
        assert_eq!(repeated.devices.len(), 2);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(config(&[("FAKE_CUDA_INIT_RESULT", "x")]).is_err());
        assert!(config(&[("FAKE_CUDA_DEVICES", "only-a-name")]).is_err());
        assert!(config(&[("FAKE_CUDA_FAIL", "cuInit")]).is_err());
    }
}
