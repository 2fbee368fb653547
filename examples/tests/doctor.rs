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
    gpu_test_runtime::main()
}
