//! The doctor on a healthy GPU machine: no false alarm, and the same facts as `nvidia-smi`.

use std::error::Error;
use std::process::Command;

use gpu_test_runtime::{Diagnosis, Gpu, gpu_test, probe};

#[gpu_test]
fn the_doctor_raises_no_false_alarm_and_agrees_with_nvidia_smi(_gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let json: serde_json::Value = serde_json::from_str(&Diagnosis::new(probe()).to_json())?;
    let alarms: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .ok_or("the doctor's JSON has no findings")?
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(alarms.is_empty(), "a healthy machine, yet: {alarms:#?}");

    let smi = nvidia_smi(&[
        "--query-gpu=uuid,name,memory.total,driver_version,compute_cap",
        "--format=csv,noheader,nounits",
    ])?;
    let devices = json["devices"]
        .as_array()
        .ok_or("no devices in the doctor's JSON")?;
    let visible: Vec<&str> = smi.lines().filter(|l| !l.trim().is_empty()).collect();
    if std::env::var_os("CUDA_VISIBLE_DEVICES").is_none() {
        assert_eq!(
            devices.len(),
            visible.len(),
            "the doctor's devices against nvidia-smi:\n{smi}"
        );
    }
    for device in devices {
        let uuid = device["uuid"].as_str().ok_or("a device without a UUID")?;
        let line = visible
            .iter()
            .find(|line| line.starts_with(uuid))
            .ok_or_else(|| format!("nvidia-smi does not list {uuid}:\n{smi}"))?;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[1], device["name"], "{line}");
        // nvidia-smi's total includes what the driver and firmware reserve, which CUDA's
        // does not: CUDA's is at most nvidia-smi's, and within a few percent of it.
        let smi_mib: f64 = fields[2].parse()?;
        let mib = device["total_memory"].as_f64().ok_or("no memory")? / f64::from(1u32 << 20);
        assert!(
            mib <= smi_mib + 1.0 && mib >= smi_mib * 0.97,
            "{mib} MiB, nvidia-smi says {smi_mib}"
        );
        assert_eq!(fields[3], json["driver"]["release"], "the driver release");
        assert_eq!(fields[4], device["compute_capability"], "{line}");
    }
    // The CUDA version the driver supports, as nvidia-smi's banner shows it.
    let banner = nvidia_smi(&[])?;
    let cuda = banner
        .split("CUDA Version:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| format!("nvidia-smi shows no CUDA version:\n{banner}"))?;
    assert_eq!(cuda, json["driver"]["cuda_version"], "the CUDA version");
    Ok(())
}

/// `CUDA_VISIBLE_DEVICES` as gpu-test reads it (an index is an entry's leading digits, a list is
/// of UUIDs or of indices, an entry listed twice shows no device): on this machine's driver, each
/// value shows as many devices as that reading says, and the doctor says why. Each value is tried
/// in a child process of this binary (the driver reads the variable once, as it starts), which
/// prints the doctor's JSON.
#[gpu_test]
fn cuda_visible_devices_is_read_as_the_driver_reads_it(_gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let uuid = probe().devices()[0].uuid.clone().ok_or("device 0 has no UUID")?;
    let runtime = gpu_test_examples::scratch_dir("visible-devices");
    let cases = [
        (
            "0,0".to_string(),
            0,
            Some("lists 0 twice, with which the driver shows no device at all"),
        ),
        (
            format!("{uuid},{uuid}"),
            0,
            Some("twice, with which the driver shows no device at all"),
        ),
        (
            "0;1".to_string(),
            1,
            Some("the driver reads an entry's leading number, so \"0;1\" is 0"),
        ),
        ("+0".to_string(), 1, None),
        (
            format!("{uuid},0"),
            1,
            Some("\"0\" is not a GPU-... UUID, as the first entry is"),
        ),
        (
            format!("0,{uuid}"),
            1,
            Some("is a UUID where the first entry is an index"),
        ),
    ];
    // Every value is tried and printed before any is judged: a real run's record then has them all.
    let mut wrong = Vec::new();
    for (value, shown, finding) in cases {
        let output = gpu_test_examples::this_binary_again(&runtime, &value, &[])
            .env(DOCTOR_JSON, "1")
            .output()?;
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("CUDA_VISIBLE_DEVICES={value}: no doctor's JSON ({error})"))?;
        let devices = json["devices"].as_array().map_or(0, Vec::len);
        let texts: Vec<&str> = json["findings"]
            .as_array()
            .ok_or("the doctor's JSON has no findings")?
            .iter()
            .filter_map(|finding| finding["text"].as_str())
            .collect();
        // The evidence, for the record of a real run.
        println!("CUDA_VISIBLE_DEVICES={value}: the driver shows {devices} device(s); the doctor: {texts:?}");
        if devices != shown {
            wrong.push(format!(
                "CUDA_VISIBLE_DEVICES={value}: {devices} device(s), where gpu-test reads {shown}"
            ));
        }
        if let Some(finding) = finding.filter(|finding| !texts.iter().any(|text| text.contains(finding))) {
            wrong.push(format!(
                "CUDA_VISIBLE_DEVICES={value}: no finding with {finding:?} in {texts:?}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&runtime);
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

/// Set in a child process of this binary: it prints the doctor's JSON and ends, running no test.
const DOCTOR_JSON: &str = "EXAMPLES_DOCTOR_JSON";

/// What `nvidia-smi ARGS` printed; an error when it could not run or failed.
fn nvidia_smi(args: &[&str]) -> Result<String, Box<dyn Error>> {
    let output = Command::new("nvidia-smi")
        .args(args)
        .output()
        .map_err(|error| format!("nvidia-smi could not be run: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "nvidia-smi {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn main() {
    if std::env::var_os(DOCTOR_JSON).is_some() {
        print!("{}", Diagnosis::new(probe()).to_json());
        return;
    }
    gpu_test_runtime::main()
}
