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

    let smi = Command::new("nvidia-smi")
        .args([
            "--query-gpu=uuid,name,memory.total,driver_version",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .map_err(|error| format!("nvidia-smi could not be run: {error}"))?;
    assert!(smi.status.success(), "{}", String::from_utf8_lossy(&smi.stderr));
    let smi = String::from_utf8(smi.stdout)?;
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
        assert_eq!(fields[1], device["name"], "{line}");
        let smi_mib: f64 = fields[2].parse()?;
        let mib = device["total_memory"].as_f64().ok_or("no memory")? / f64::from(1u32 << 20);
        assert!(
            (smi_mib - mib).abs() <= smi_mib * 0.01,
            "{mib} MiB, nvidia-smi says {smi_mib}"
        );
        assert_eq!(fields[3], json["driver"]["release"], "the driver release");
    }
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
