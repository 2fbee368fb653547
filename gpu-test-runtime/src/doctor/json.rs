//! The diagnosis for machines.

use serde_json::{Value, json};

use super::{ContextCheck, Diagnosis};
use crate::probe::{ComputeMode, Nvrtc, RECORDED};

impl Diagnosis<'_> {
    /// The diagnosis as a JSON document: driver, devices, toolkit, environment, device files,
    /// findings, and the number of usable devices.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_value()).unwrap_or_default();
        text.push('\n');
        text
    }

    fn to_value(&self) -> Value {
        let probe = self.probe;
        let driver = &probe.driver;
        let library = match &driver.library {
            Ok(library) => json!({
                "name": library.name,
                "path": library.path.as_ref().map(|p| p.display().to_string()),
            }),
            Err(_) => Value::Null,
        };
        let tried: Vec<Value> = match &driver.library {
            Err(tried) => tried
                .iter()
                .map(|a| json!({ "name": a.name, "error": a.error }))
                .collect(),
            Ok(_) => Vec::new(),
        };
        let init = match &driver.init {
            Some(Ok(())) => json!({ "ok": true }),
            Some(Err(error)) => json!({
                "ok": false,
                "code": error.code,
                "name": error.name,
                "message": error.message,
            }),
            None => Value::Null,
        };
        let devices: Vec<Value> = probe
            .devices
            .iter()
            .zip(&self.contexts)
            .map(|(d, context)| {
                let (context_ok, free, context_error) = match context {
                    ContextCheck::Opened { memory, .. } => (true, memory.map(|(free, _)| free), None),
                    ContextCheck::Failed(error) => (false, None, Some(error.clone())),
                };
                json!({
                    "ordinal": d.ordinal,
                    "name": d.name,
                    "compute_capability": d.compute_capability.to_string(),
                    "total_memory": d.total_memory,
                    "free_memory": free,
                    "multiprocessors": d.multiprocessors,
                    "uuid": d.uuid,
                    "pci_bus_id": d.pci_bus_id,
                    "compute_mode": d.compute_mode.map(ComputeMode::name),
                    "context_ok": context_ok,
                    "context_error": context_error,
                })
            })
            .collect();
        // What was found off the loader's path and not taken, and why.
        let passed_over: Vec<Value> = probe
            .toolkit()
            .passed_over
            .iter()
            .map(|p| json!({ "path": p.path.display().to_string(), "why": p.why }))
            .collect();
        let nvrtc = match &probe.toolkit().nvrtc {
            Nvrtc::Found { library, version } => json!({
                "found": true,
                "version": version.to_string(),
                "library": library.file_or_name(),
                "loaded_as": library.name,
                "outside_loader_path": probe.toolkit().outside_loader_path,
                "builtins": probe.toolkit().builtins.as_ref().map(|path| path.display().to_string()),
                "python_environment": probe
                    .toolkit()
                    .python_environment
                    .as_ref()
                    .map(|path| path.display().to_string()),
                "passed_over": passed_over,
            }),
            Nvrtc::NotFound { tried } => json!({
                "found": false,
                "tried": tried.iter().map(|a| json!({ "name": a.name, "error": a.error })).collect::<Vec<_>>(),
                "passed_over": passed_over,
            }),
            Nvrtc::Unrecognised { library } => json!({
                "found": false,
                "library": library.file_or_name(),
                "loaded_as": library.name,
                "error": "does not export nvrtcVersion",
                "passed_over": passed_over,
            }),
            Nvrtc::VersionFailed { library, failure } => json!({
                "found": false,
                "library": library.file_or_name(),
                "loaded_as": library.name,
                "error": format!("nvrtcVersion {failure}"),
                "passed_over": passed_over,
            }),
        };
        let nvcc = probe.nvcc().map(|nvcc| {
            json!({
                "path": nvcc.path.display().to_string(),
                "version": nvcc.version.map(|v| v.to_string()),
                "version_error": nvcc.version_error,
            })
        });
        let set = probe.environment.set_variables();
        let environment: serde_json::Map<String, Value> = RECORDED
            .iter()
            .map(|name| {
                let value = set.iter().find(|(n, _)| n == name).map(|(_, v)| v.to_string());
                (name.to_string(), json!(value))
            })
            .collect();
        let nodes: Vec<Value> = probe
            .device_nodes()
            .iter()
            .map(|n| json!({ "path": n.path.display().to_string(), "accessible": n.accessible }))
            .collect();
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| json!({ "severity": f.severity.as_str(), "text": f.text, "hint": f.hint }))
            .collect();
        json!({
            "gpu_test_version": env!("CARGO_PKG_VERSION"),
            "driver": {
                "library": library,
                "tried": tried,
                "missing_symbols": driver.missing_symbols,
                "kernel_module_release": probe.kernel_module.as_ref().and_then(|m| m.release.clone()),
                "release": probe.driver_release(),
                "cuda_version": driver.cuda_version.map(|v| v.to_string()),
                "init": init,
                "hung": driver.hung.as_ref().map(|hung| json!({
                    "call": hung.call,
                    "library": hung.library,
                    "limit_ms": hung.limit.as_millis() as u64,
                })),
            },
            "devices": devices,
            "toolkit": { "nvrtc": nvrtc, "nvcc": nvcc },
            "environment": environment,
            "device_nodes": nodes,
            "platform": {
                "container": probe.platform().container,
                "wsl": probe.platform().wsl,
            },
            "findings": findings,
            "usable_devices": self.usable_devices(),
            "gpu_test_slots": self.gpu_test_slots(),
        })
    }
}
