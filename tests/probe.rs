//! The probe and the doctor on described machines: no driver, the fake driver in each state the
//! issue names, and the environment mistakes the seed articles describe.

use gpu_test_tests::{Machine, assert_finding, assert_nvrtc_loaded_from, finding_texts, has_finding};

#[test]
fn no_driver_names_what_was_tried_and_that_no_module_is_loaded() {
    let machine = Machine::without_driver();
    let run = machine.doctor(&["--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(1), "{}", run.all());
    let json = run.json();
    assert!(json["driver"]["library"].is_null());
    let tried: Vec<&str> = json["driver"]["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tried.len(), 2, "{tried:?}");
    assert!(
        tried[0].ends_with("/libcuda.so.1") && tried[1].ends_with("/libcuda.so"),
        "{tried:?}"
    );
    assert_finding(
        &json,
        "error",
        "no CUDA driver: libcuda could not be loaded (tried",
    );
    assert_finding(&json, "error", "the NVIDIA kernel module is not loaded either");
    assert_eq!(json["usable_devices"], 0);

    let text = machine.doctor(&[]);
    assert!(text.stdout.contains("No usable CUDA device"), "{}", text.stdout);
    assert!(
        text.stdout.contains("kernel module  not loaded"),
        "{}",
        text.stdout
    );
}

/// Where /proc/driver/nvidia/version cannot be read (some containers and sandboxes), the release
/// comes from the driver library's file name, as the driver installs it.
#[test]
fn the_driver_release_with_and_without_the_kernel_module_file() {
    let machine = Machine::with_fake_driver()
        .without_kernel_module()
        .driver_file("libcuda.so.580.95.05");
    let json = machine.doctor(&["--json"]).json();
    assert_eq!(json["driver"]["kernel_module_release"], serde_json::Value::Null);
    assert_eq!(json["driver"]["release"], "580.95.05", "{json:#}");
    // A working driver is healthy without the file (sandboxes such as gVisor have none).
    let alarms: Vec<String> = finding_texts(&json)
        .into_iter()
        .filter(|f| !f.starts_with("info: "))
        .collect();
    assert!(alarms.is_empty(), "{alarms:#?}");
    let text = machine.doctor(&[]).stdout;
    assert!(
        text.contains("  release        580.95.05 (from the library's file name)"),
        "{text}"
    );
    let json = Machine::with_fake_driver()
        .without_kernel_module()
        .doctor(&["--json"])
        .json();
    assert_eq!(json["driver"]["release"], serde_json::Value::Null);
    // The kernel module's release, which nvidia-smi shows, comes first.
    let json = Machine::with_fake_driver()
        .kernel_module("570.86.15")
        .driver_file("libcuda.so.580.95.05")
        .doctor(&["--json"])
        .json();
    assert_eq!(json["driver"]["release"], "570.86.15");
    // A forward-compatibility library's release is not the driver's that nvidia-smi shows.
    let json = Machine::with_fake_driver()
        .without_kernel_module()
        .driver_file("compat/libcuda.so.575.57.08")
        .doctor(&["--json"])
        .json();
    assert_eq!(json["driver"]["cuda_version"], "12.8", "{json:#}");
    assert_eq!(json["driver"]["release"], serde_json::Value::Null);
}

/// libcuda.so and libcuda.so.1 as two files: a warning when they are different drivers, a note
/// when they are two copies of one release (containers often mount the driver twice).
#[test]
fn two_driver_files_conflict_only_when_their_releases_differ() {
    let json = Machine::with_fake_driver()
        .driver_file("libcuda.so.580.95.05")
        .dev_link_file("other/libcuda.so.570.86.15")
        .doctor(&["--json"])
        .json();
    assert_finding(&json, "warning", "are different files; tests load libcuda.so");
    let json = Machine::with_fake_driver()
        .driver_file("libcuda.so.580.95.05")
        .dev_link_file("other/libcuda.so.580.95.05")
        .doctor(&["--json"])
        .json();
    assert!(
        has_finding(
            &json,
            "info",
            "are two copies of driver 580.95.05; tests load libcuda.so"
        ) && !finding_texts(&json).iter().any(|f| f.contains("different files")),
        "{:#?}",
        finding_texts(&json)
    );
    let json = Machine::with_fake_driver().doctor(&["--json"]).json();
    assert!(
        !finding_texts(&json).iter().any(|f| f.contains("libcuda.so (")),
        "{:#?}",
        finding_texts(&json)
    );
}

#[test]
fn a_loaded_module_without_its_library_says_where_to_look() {
    let run = Machine::without_driver()
        .kernel_module("550.54.14")
        .doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert_finding(
        &json,
        "error",
        "the NVIDIA kernel module 550.54.14 is loaded, so the driver is installed but its library is not where the loader looks",
    );
    assert_finding(
        &json,
        "error",
        "add the directory holding libcuda.so.1 to LD_LIBRARY_PATH",
    );
    // With a module present, the probe also tries cudarc's other names, each once.
    let tried: Vec<&str> = json["driver"]["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["name"].as_str().unwrap())
        .collect();
    assert!(tried.len() > 2, "{tried:?}");
    let distinct: std::collections::HashSet<&&str> = tried.iter().collect();
    assert_eq!(distinct.len(), tried.len(), "a name tried twice: {tried:?}");
}

/// Where neither `/proc/driver/nvidia/version` nor the driver library's file name gives the
/// driver's release (WSL2, some sandboxes), NVML does; the kernel module's comes first.
#[test]
fn the_release_comes_from_nvml_where_nothing_else_tells_it() {
    let release = |machine: Machine| machine.doctor(&["--json"]).json()["driver"]["release"].clone();
    let no_module = || Machine::with_fake_driver().without_kernel_module();
    assert_eq!(release(no_module()), serde_json::Value::Null);
    assert_eq!(
        release(no_module().env("FAKE_NVML_RELEASE", "580.95.05")),
        "580.95.05"
    );
    // What is not a release is not taken for one.
    assert_eq!(
        release(no_module().env("FAKE_NVML_RELEASE", "not a release")),
        serde_json::Value::Null
    );
    assert_eq!(
        release(Machine::with_fake_driver().env("FAKE_NVML_RELEASE", "580.95.05")),
        "570.86.15"
    );
    let text = no_module().env("FAKE_NVML_RELEASE", "580.95.05").doctor(&[]);
    assert!(
        text.stdout.contains("  release        580.95.05 (from NVML)\n"),
        "{}",
        text.stdout
    );
}

#[test]
fn one_device_that_works() {
    let run = Machine::with_fake_driver().doctor(&["--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());
    let json = run.json();
    assert_eq!(json["driver"]["cuda_version"], "12.8");
    assert_eq!(json["driver"]["kernel_module_release"], "570.86.15");
    assert_eq!(json["driver"]["release"], "570.86.15");
    assert_eq!(json["driver"]["init"]["ok"], true);
    let device = &json["devices"][0];
    assert_eq!(device["name"], "NVIDIA Fake H100");
    assert_eq!(device["compute_capability"], "9.0");
    assert_eq!(device["total_memory"], 80u64 << 30);
    assert_eq!(device["uuid"], "GPU-fa4e0000-0000-0000-0000-000000000000");
    assert_eq!(device["pci_bus_id"], "0000:01:00.0");
    assert_eq!(device["context_ok"], true);
    assert_eq!(json["toolkit"]["nvrtc"]["version"], "12.8");
    assert_eq!(json["usable_devices"], 1);
    assert!(
        !finding_texts(&json).iter().any(|f| f.starts_with("error")),
        "{:#?}",
        finding_texts(&json)
    );
}

#[test]
fn cuinit_failures_are_named_with_their_fix() {
    let cases: &[(i32, &str, &str)] = &[
        (
            100,
            r#"cuInit failed: CUDA_ERROR_NO_DEVICE (100) "no CUDA-capable device is detected""#,
            "no GPU is visible",
        ),
        (
            34,
            r#"cuInit failed: CUDA_ERROR_STUB_LIBRARY (34) "CUDA driver is a stub library""#,
            // The fake driver's directory is on LD_LIBRARY_PATH: that is where it was found.
            "/lib from LD_LIBRARY_PATH, so that the driver's libcuda.so.1 is found",
        ),
        (
            999,
            r#"cuInit failed: CUDA_ERROR_UNKNOWN (999) "unknown error""#,
            "reload the nvidia kernel module or reboot",
        ),
    ];
    for (code, text, hint) in cases {
        let run = Machine::with_fake_driver().init_result(*code).doctor(&["--json"]);
        run.assert_clean();
        assert_eq!(run.code, Some(1));
        let json = run.json();
        assert_eq!(json["driver"]["init"]["code"], *code);
        assert_finding(&json, "error", text);
        assert_finding(&json, "error", hint);
    }
}

#[test]
fn codes_cudarc_does_not_know_stay_numbers() {
    let run = Machine::with_fake_driver().init_result(35).doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert!(json["driver"]["init"]["name"].is_null());
    assert_finding(
        &json,
        "error",
        "cuInit failed: unknown CUDA error code 35 (not a driver API code; in the CUDA runtime API it is cudaErrorInsufficientDriver",
    );

    let run = Machine::with_fake_driver().init_result(9999).doctor(&["--json"]);
    run.assert_clean();
    assert!(
        has_finding(
            &run.json(),
            "error",
            "cuInit failed: unknown CUDA error code 9999 (not a code this driver or gpu-test knows)"
        ),
        "{}",
        run.all()
    );
}

#[test]
fn a_missing_driver_symbol_is_named() {
    // Missing, or found at address 0 (which no function pointer may hold): the same. One the probe
    // calls, and one only the leak check and a body's cudarc call (zeroed allocations).
    for (machine, symbol) in [
        (
            Machine::with_fake_driver().without_symbol("cuDeviceTotalMem_v2"),
            "cuDeviceTotalMem_v2",
        ),
        (
            Machine::with_fake_driver().null_symbol("cuDeviceTotalMem_v2"),
            "cuDeviceTotalMem_v2",
        ),
        (
            Machine::with_fake_driver().null_symbol("cuMemsetD8Async"),
            "cuMemsetD8Async",
        ),
    ] {
        a_missing_driver_symbol_is_named_on(machine, symbol);
    }
}

fn a_missing_driver_symbol_is_named_on(machine: Machine, symbol: &str) {
    let run = machine.doctor(&["--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(1));
    let json = run.json();
    assert_eq!(
        json["driver"]["missing_symbols"],
        serde_json::json!([symbol]),
        "{json:#}"
    );
    assert!(has_finding(
        &json,
        "error",
        &format!("lacks {symbol} (it is too old, or not a real driver library)")
    ));
    assert!(
        json["driver"]["init"].is_null(),
        "cuInit must not be called on an incomplete driver"
    );
}

#[test]
fn cuda_visible_devices_empty_or_garbage_is_explained() {
    let run = Machine::with_fake_driver()
        .env("CUDA_VISIBLE_DEVICES", "")
        .doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert_finding(&json, "error", "CUDA_ERROR_NO_DEVICE (100)");
    assert!(has_finding(
        &json,
        "error",
        r#"CUDA_VISIBLE_DEVICES="" is set but empty, which hides every device"#
    ));
    assert!(has_finding(
        &json,
        "warning",
        "CUDA_VISIBLE_DEVICES is set but empty"
    ));

    let run = Machine::with_fake_driver()
        .env("CUDA_VISIBLE_DEVICES", "garbage")
        .doctor(&["--json"]);
    let json = run.json();
    assert_finding(
        &json,
        "error",
        r#"CUDA_VISIBLE_DEVICES="garbage" hides every device: "garbage" is not a device index or UUID"#,
    );
    assert!(has_finding(
        &json,
        "error",
        "unset CUDA_VISIBLE_DEVICES, or set it to device indices or UUIDs"
    ));
}

#[test]
fn nvrtc_missing_too_old_and_newer_than_the_driver() {
    let json = Machine::with_fake_driver()
        .without_nvrtc()
        .doctor(&["--json"])
        .json();
    assert_eq!(json["toolkit"]["nvrtc"]["found"], false);
    assert!(has_finding(&json, "warning", "NVRTC could not be loaded"));
    // Each name cudarc looks for, once, with the loader's answer: fields, not a Rust dump.
    let tried: Vec<&str> = json["toolkit"]["nvrtc"]["tried"]
        .as_array()
        .unwrap_or_else(|| panic!("no tried names: {json:#}"))
        .iter()
        .map(|attempt| {
            assert!(
                attempt["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{attempt}"
            );
            attempt["name"].as_str().unwrap()
        })
        .collect();
    assert!(tried[0].ends_with("/libnvrtc.so"), "{tried:?}");
    let distinct: std::collections::HashSet<&&str> = tried.iter().collect();
    assert_eq!(distinct.len(), tried.len(), "a name tried twice: {tried:?}");

    let json = Machine::with_fake_driver()
        .nvrtc_version("11.8")
        .doctor(&["--json"])
        .json();
    assert_eq!(json["toolkit"]["nvrtc"]["version"], "11.8");
    assert_eq!(json["toolkit"]["nvrtc"]["outside_loader_path"], false);
    // A negative part is no version: said so, not read as a failure with code 0.
    let json = Machine::with_fake_driver()
        .nvrtc_version("-1.0")
        .doctor(&["--json"])
        .json();
    assert_eq!(json["toolkit"]["nvrtc"]["found"], false, "{json:#}");
    assert_eq!(
        json["toolkit"]["nvrtc"]["error"], "nvrtcVersion answered major -1, minor 0, which is no version",
        "{json:#}"
    );

    // A toolkit's NVRTC off the loader's path is loaded by its full path: a note, not a warning.
    let machine = Machine::with_fake_driver().without_nvrtc();
    let lib64 = machine.dir().join("root/usr/local/cuda/lib64");
    machine.nvrtc_in(&lib64, &["libnvrtc.so.12"]);
    let builtins = lib64.join("libnvrtc-builtins.so.12.8");
    machine.nvrtc_file(&builtins, "libnvrtc-builtins.so.12.8");
    let json = machine.doctor(&["--json"]).json();
    assert_nvrtc_loaded_from(&json, &lib64, "libnvrtc.so.12", "12.8");
    // A directory /etc/ld.so.conf names, added after ldconfig ran: the fix is ldconfig.
    let listed = Machine::with_fake_driver()
        .without_nvrtc()
        .file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")
        .file("etc/ld.so.conf.d/cuda.conf", "/usr/local/cuda/lib64\n");
    let listed_lib64 = listed.dir().join("root/usr/local/cuda/lib64");
    listed.nvrtc_in(&listed_lib64, &["libnvrtc.so.12", "libnvrtc-builtins.so.12.8"]);
    let json = listed.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "info",
        &format!(
            "/ run ldconfig as root: /etc/ld.so.conf names {}, but the loader's cache does not have it yet",
            listed_lib64.display()
        ),
    );

    std::fs::remove_file(&builtins).unwrap();
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "warning",
        &format!(
            "NVRTC's builtins could not be loaded with it ({}: NVRTC's builtins are neither beside it nor on the \
                 loader's path",
            builtins.display()
        ),
    );
    assert_eq!(
        json["toolkit"]["nvrtc"]["passed_over"][0]["path"],
        builtins.display().to_string()
    );
    let text = machine.doctor(&[]);
    assert!(
        text.stdout
            .contains(&format!("12.8 ({}/libnvrtc.so.12)", lib64.display())),
        "{}",
        text.all()
    );

    let json = Machine::with_fake_driver()
        .driver_version(12040, "550.54.14")
        .doctor(&["--json"])
        .json();
    assert_finding(&json, "warning", "NVRTC 12.8");
    assert_finding(
        &json,
        "warning",
        "cannot load (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)",
    );
    assert_finding(&json, "warning", "update the driver to 570.26 or newer");
}

#[test]
fn devices_that_cannot_be_used_are_findings() {
    let run = Machine::with_fake_driver()
        .devices("NVIDIA A100|8.0|40GiB|2")
        .doctor(&["--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(1), "a Prohibited device is not usable");
    assert!(has_finding(
        &run.json(),
        "error",
        "device 0 NVIDIA A100 is in compute mode Prohibited"
    ));
    // The fix names the GPU as nvidia-smi knows it, not by CUDA's ordinal: with the second GPU
    // the one visible, `nvidia-smi -i 0` would change the first.
    let two = Machine::with_fake_driver()
        .devices("NVIDIA H100|9.0|80GiB;NVIDIA A100|8.0|40GiB|2;NVIDIA L4|8.9|24GiB|3")
        .env("CUDA_VISIBLE_DEVICES", "1,2");
    let json = two.doctor(&["--json"]).json();
    let hints: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|finding| finding["hint"].as_str())
        .collect();
    for (finding, fix) in [
        (
            "Prohibited",
            "allow processes on it again, as root: `nvidia-smi -i GPU-fa4e0000-0000-0000-0000-000000000001 -c DEFAULT`",
        ),
        (
            "Exclusive_Process",
            "to share it, as root: `nvidia-smi -i GPU-fa4e0000-0000-0000-0000-000000000002 -c DEFAULT`",
        ),
    ] {
        assert!(hints.iter().any(|hint| hint.contains(fix)), "{finding}: {json:#}");
    }
    let run = two.run("harness-basic", "gpu", &["--exact", "two_devices"]);
    assert!(
        run.all()
            .contains("to run them: allow processes on it again, as root: `nvidia-smi -i GPU-fa4e0000-0000-0000-0000-000000000001"),
        "{}",
        run.all()
    );

    let run = Machine::with_fake_driver()
        .env("FAKE_CUDA_FAIL", "cuDevicePrimaryCtxRetain=2")
        .doctor(&["--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(1));
    let json = run.json();
    assert_eq!(json["devices"][0]["context_ok"], false);
    assert!(has_finding(
        &json,
        "error",
        "no CUDA context could be created: CUDA_ERROR_OUT_OF_MEMORY (2)"
    ));

    // A context that opens but cannot be made current (a sticky or ECC error on the device) runs
    // no test either: the device is not counted as usable.
    let run = Machine::with_fake_driver()
        .env("FAKE_CUDA_FAIL", "cuCtxSetCurrent=999")
        .doctor(&["--json"]);
    run.assert_clean();
    assert_eq!(run.code, Some(1), "{}", run.all());
    let json = run.json();
    assert_eq!(json["devices"][0]["context_ok"], false);
    assert_finding(
        &json,
        "error",
        "device 0 NVIDIA Fake H100: its CUDA context could not be made current: CUDA_ERROR_UNKNOWN (999)",
    );
    // One whose memory cannot be read runs tests that do not ask for it: a warning.
    let run = Machine::with_fake_driver()
        .env("FAKE_CUDA_FAIL", "cuMemGetInfo_v2=999")
        .doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert_eq!(json["devices"][0]["context_ok"], true);
    assert_finding(
        &json,
        "warning",
        "device 0 NVIDIA Fake H100: its free memory could not be read: CUDA_ERROR_UNKNOWN (999)",
    );

    // More free than there is: a bad answer, named, not a device with nothing in use.
    let run = Machine::with_fake_driver()
        .env("FAKE_CUDA_FREE", "100GiB")
        .doctor(&["--json"]);
    run.assert_clean();
    assert_finding(
        &run.json(),
        "warning",
        "device 0 NVIDIA Fake H100: its free memory could not be read: cuMemGetInfo_v2 gave 107374182400 bytes \
         free of 85899345920, more than there is",
    );

    // Memory figures no device has are printed, not multiplied past what a u64 holds.
    let run = Machine::with_fake_driver()
        .devices("X|9.0|18446744073709551615")
        .doctor(&[]);
    run.assert_clean();
    assert_eq!(run.code, Some(0), "{}", run.all());

    let run = Machine::with_fake_driver()
        .env("FAKE_CUDA_FAIL", "cuDeviceGetName@1=999")
        .devices("A|8.0|1GiB;B|8.0|1GiB")
        .doctor(&["--json"]);
    run.assert_clean();
    let json = run.json();
    assert_eq!(json["devices"].as_array().unwrap().len(), 1);
    assert!(has_finding(
        &json,
        "error",
        "device 1 could not be read: cuDeviceGetName failed: CUDA_ERROR_UNKNOWN (999)"
    ));

    // A compute capability no device has is a bad answer, not an sm_00 device.
    for capability in ["-1.0", "0.5"] {
        let json = Machine::with_fake_driver()
            .devices(&format!("A|8.0|1GiB;B|{capability}|1GiB"))
            .doctor(&["--json"])
            .json();
        assert_eq!(json["devices"].as_array().unwrap().len(), 1, "{json:#}");
        assert_finding(
            &json,
            "error",
            &format!(
                "device 1 could not be read: cuDeviceGetAttribute failed: the driver gave the compute capability \
                 as {capability}, which no device has"
            ),
        );
    }
}

#[test]
fn two_devices_without_a_device_order_get_an_info() {
    let json = Machine::with_fake_driver()
        .devices("NVIDIA H100|9.0|80GiB;NVIDIA L4|8.9|24GiB")
        .doctor(&["--json"])
        .json();
    assert_eq!(json["usable_devices"], 2);
    assert!(has_finding(&json, "info", "CUDA_DEVICE_ORDER is unset"));
    // Empty is unset; a value CUDA does not document is a warning; PCI_BUS_ID is neither.
    let two = || Machine::with_fake_driver().devices("NVIDIA H100|9.0|80GiB;NVIDIA L4|8.9|24GiB");
    let json = two().env("CUDA_DEVICE_ORDER", "").doctor(&["--json"]).json();
    assert!(
        has_finding(&json, "info", "CUDA_DEVICE_ORDER is unset"),
        "{json:#}"
    );
    let json = two()
        .env("CUDA_DEVICE_ORDER", "pci_bus_id")
        .doctor(&["--json"])
        .json();
    assert_finding(
        &json,
        "warning",
        "CUDA_DEVICE_ORDER=\"pci_bus_id\" is neither of the values CUDA documents (FASTEST_FIRST, PCI_BUS_ID)",
    );
    let json = two()
        .env("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        .doctor(&["--json"])
        .json();
    let findings = json["findings"].to_string();
    assert!(!findings.contains("CUDA_DEVICE_ORDER"), "{json:#}");
}

#[test]
fn stub_directories_on_the_library_path_are_a_warning() {
    let machine = Machine::with_fake_driver();
    let lib = machine.dir().join("lib");
    let path = format!("{}:/usr/local/cuda/lib64/stubs", lib.display());
    let json = Machine::doctor(&machine.env("LD_LIBRARY_PATH", &path), &["--json"]).json();
    assert_finding(
        &json,
        "warning",
        "LD_LIBRARY_PATH contains /usr/local/cuda/lib64/stubs",
    );
    // Only a directory named `stubs` is the toolkit's stubs, not one whose name has the word.
    let machine = Machine::with_fake_driver();
    let lib = machine.dir().join("lib");
    let grpc = machine.dir().join("grpc-stubs");
    std::fs::create_dir_all(&grpc).unwrap();
    let path = format!("{}:{}", lib.display(), grpc.display());
    let json = Machine::doctor(&machine.env("LD_LIBRARY_PATH", &path), &["--json"]).json();
    assert!(
        !finding_texts(&json).join("\n").contains("link-time stubs"),
        "{json:#}"
    );
}

/// A directory on `LD_LIBRARY_PATH` that does not exist is named, but not those NVIDIA's CUDA
/// images put there for the container runtime, which leaves them empty where it mounts the
/// driver elsewhere: on a healthy machine run from such an image, the doctor has nothing to say.
#[test]
fn a_missing_library_directory_is_named_unless_nvidias_images_put_it_there() {
    let machine = Machine::with_fake_driver();
    let lib = machine.dir().join("lib");
    let missing = machine.dir().join("no-such-directory");
    let path = format!(
        "{}:/usr/local/nvidia/lib:/usr/local/nvidia/lib64:{}",
        lib.display(),
        missing.display()
    );
    let json = Machine::doctor(&machine.env("LD_LIBRARY_PATH", &path), &["--json"]).json();
    assert_finding(
        &json,
        "info",
        &format!(
            "LD_LIBRARY_PATH names {}, which does not exist",
            missing.display()
        ),
    );
    assert!(!has_finding(&json, "info", "/usr/local/nvidia/"), "{json:#}");
}

#[test]
fn bad_gpu_test_variables_are_findings() {
    let json = Machine::with_fake_driver()
        .env("GPU_TEST_STRICT", "yes")
        .doctor(&["--json"])
        .json();
    assert!(has_finding(
        &json,
        "error",
        r#"GPU_TEST_STRICT="yes" is not valid: accepted values are unset, empty, 0, 1, true, false"#
    ));
    let json = Machine::with_fake_driver()
        .env("GPU_TEST_STIRCT", "1")
        .doctor(&["--json"])
        .json();
    assert!(has_finding(
        &json,
        "warning",
        "GPU_TEST_STIRCT is set but is not a gpu-test variable; did you mean GPU_TEST_STRICT?"
    ));
}

#[test]
fn the_doctor_rejects_unknown_arguments() {
    let run = Machine::without_driver().doctor(&["--verbose"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("unknown argument `--verbose`"),
        "{}",
        run.stderr
    );
}

/// The ways a GPU goes missing in containers and WSL2, each a named reason with its fix, in the
/// skip reason and the doctor alike.
#[test]
fn containers_and_wsl_explain_a_missing_driver() {
    let cases: [(Machine, &str, &str); 8] = [
        (
            Machine::without_driver().file(".dockerenv", ""),
            "this is a container (Docker (/.dockerenv)) started without GPU access: it has no /dev/nvidia* device files",
            "`docker run --gpus all`",
        ),
        // NVIDIA's control devices, without a GPU's: still no GPU access, and on a machine without
        // an NVIDIA GPU the skip is expected.
        (
            Machine::without_driver()
                .file(".dockerenv", "")
                .device_node("nvidiactl", 0o666)
                .device_node("nvidia-uvm", 0o666),
            "this is a container (Docker (/.dockerenv)) started without GPU access: it has no GPU's device file \
             (nvidia0, ...), only NVIDIA's control devices (nvidia-uvm, nvidiactl)",
            "on a host without an NVIDIA GPU this skip is expected",
        ),
        (
            Machine::without_driver().file("proc/1/cgroup", "0::/kubepods/burstable/pod42/abc\n"),
            "this is a container (a Kubernetes pod (/proc/1/cgroup)) started without GPU access",
            "request `nvidia.com/gpu` in the pod's resources",
        ),
        (
            Machine::without_driver()
                .file("run/.containerenv", "")
                .kernel_module("570.86.15")
                .device_node("nvidia0", 0o666)
                .device_node("nvidiactl", 0o666),
            "this is a container (Podman (/run/.containerenv)) with the GPU device files but without the driver \
             library: the NVIDIA Container Toolkit did not mount libcuda into it",
            "nvidia-ctk runtime configure",
        ),
        (
            Machine::without_driver().file(
                "proc/sys/kernel/osrelease",
                "5.15.167.4-microsoft-standard-WSL2\n",
            ),
            "this is WSL2, where libcuda comes from the Windows NVIDIA driver (/usr/lib/wsl/lib/libcuda.so.1), and it \
             is not there",
            "install or update the NVIDIA driver on Windows",
        ),
        (
            Machine::without_driver().file("proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n"),
            "this is WSL 1, which has no GPU support: CUDA runs only in WSL 2",
            "wsl --set-version <name> 2",
        ),
        (
            Machine::without_driver().file("var/run/secrets/kubernetes.io/serviceaccount/token", ""),
            "this is a container (a Kubernetes pod (/var/run/secrets/kubernetes.io)) started without GPU access",
            "request `nvidia.com/gpu`",
        ),
        (
            Machine::without_driver()
                .file(
                    "proc/sys/kernel/osrelease",
                    "5.15.167.4-microsoft-standard-WSL2\n",
                )
                .file("usr/lib/wsl/lib/libcuda.so.1", ""),
            "this is WSL2, and its libcuda.so.1 (from the Windows NVIDIA driver) is in /usr/lib/wsl/lib, where the \
             loader does not look",
            "add /usr/lib/wsl/lib to LD_LIBRARY_PATH",
        ),
    ];
    for (machine, reason, hint) in cases {
        let run = machine.doctor(&["--json"]);
        run.assert_clean();
        let json = run.json();
        assert_finding(&json, "error", reason);
        assert_finding(&json, "error", hint);
        // WSL2 has no NVIDIA kernel module to speak of: the Windows driver serves the GPU.
        let findings = finding_texts(&json).join("\n");
        assert!(
            !reason.contains("WSL2") || !findings.contains("kernel module"),
            "{findings}"
        );
        let text = machine.doctor(&[]);
        assert!(text.stdout.contains("  platform "), "{}", text.stdout);
        // The same reason skips a test.
        let run = machine.run("harness-basic", "gpu", &["--exact", "round_trip"]);
        assert!(run.stdout.contains(reason), "{}", run.all());
    }
    // WSL2 whose Windows driver's libcuda loads but finds no GPU: not a loader problem.
    let wsl = Machine::with_fake_driver()
        .init_result(100)
        .without_device_node("nvidia0")
        .without_device_node("nvidiactl")
        .without_kernel_module()
        .file(
            "proc/sys/kernel/osrelease",
            "5.15.167.4-microsoft-standard-WSL2\n",
        );
    let json = wsl.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "error",
        "this is WSL2, where CUDA reaches the GPU through the Windows NVIDIA driver, and that driver shows CUDA \
         no GPU",
    );
    assert_finding(&json, "error", "update the NVIDIA driver on Windows");
    assert!(
        !finding_texts(&json)
            .join("\n")
            .contains("where the loader does not look"),
        "{:#?}",
        finding_texts(&json)
    );
    // There, with no device files to count GPUs by, an index past 0 is still named.
    let json = wsl.env("CUDA_VISIBLE_DEVICES", "1").doctor(&["--json"]).json();
    assert_finding(
        &json,
        "error",
        "CUDA_VISIBLE_DEVICES=1 lists 1, which matches no device",
    );

    // Without any mark, none of it is said.
    let plain = Machine::without_driver().doctor(&["--json"]);
    let json = plain.json();
    let findings = finding_texts(&json).join("\n");
    assert!(
        !findings.contains("container") && !findings.contains("WSL2"),
        "{findings}"
    );
    assert_eq!(
        json["platform"],
        serde_json::json!({ "container": null, "wsl": false })
    );
}

/// The driver's libraries mounted where GKE and gVisor put them, off the loader's path: the
/// reason names the directory and the fix, and says nothing of a kernel module that a sandbox's
/// `/proc` does not show, nor of a container toolkit that did mount the library. Without the
/// GPUs' device files, or with the directory on `LD_LIBRARY_PATH`, the mount is not the story.
#[test]
fn a_driver_mounted_off_the_loaders_path_is_named() {
    let reason = "; libcuda.so.1 is in /usr/local/nvidia/lib64, where GPU containers and sandboxes (GKE, gVisor) \
                  mount the driver's libraries, and the loader does not look there";
    let hint = "add /usr/local/nvidia/lib64 to LD_LIBRARY_PATH";
    let mounted = || Machine::without_driver().file("usr/local/nvidia/lib64/libcuda.so.1", "");
    let sandbox = || {
        mounted()
            .device_node("nvidiactl", 0o666)
            .device_node("nvidia0", 0o666)
    };
    for machine in [sandbox(), sandbox().file(".dockerenv", "")] {
        let json = machine.doctor(&["--json"]).json();
        assert_finding(&json, "error", reason);
        assert_finding(&json, "error", hint);
        let findings = finding_texts(&json).join("\n");
        assert!(
            !findings.contains("kernel module") && !findings.contains("Container Toolkit"),
            "{findings}"
        );
        let run = machine.run("harness-basic", "gpu", &["--exact", "round_trip"]);
        assert!(run.stdout.contains(reason), "{}", run.all());
    }
    // A node whose kernel module shows (GKE without a sandbox): both are said.
    let json = sandbox().kernel_module("580.95.05").doctor(&["--json"]).json();
    for text in ["the NVIDIA kernel module 580.95.05 is loaded", reason, hint] {
        assert_finding(&json, "error", text);
    }
    // A container started without the GPUs is that, whatever its image holds.
    let json = mounted().file(".dockerenv", "").doctor(&["--json"]).json();
    assert_finding(&json, "error", "started without GPU access");
    assert!(
        !has_finding(&json, "error", reason),
        "{:#?}",
        finding_texts(&json)
    );
    // With the directory on LD_LIBRARY_PATH, the loader did look there.
    let json = sandbox()
        .env("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")
        .doctor(&["--json"])
        .json();
    assert!(
        !has_finding(&json, "error", reason),
        "{:#?}",
        finding_texts(&json)
    );
}

/// NVIDIA's control devices without a GPU's own device file, and cuInit finding no device: in a
/// container, one given no GPU (the NVIDIA Container Toolkit with none selected); on a host, a
/// kernel module that found none.
#[test]
fn control_devices_without_a_gpus_device_file_are_named() {
    let container = Machine::with_fake_driver()
        .init_result(100)
        .without_device_node("nvidia0")
        .device_node("nvidia-uvm", 0o666)
        .file(".dockerenv", "");
    let json = container.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "error",
        "; /dev has nvidia-uvm, nvidiactl but no GPU's device file (nvidia0, ...)",
    );
    assert_finding(
        &json,
        "error",
        "this container (Docker (/.dockerenv)) was given NVIDIA's control devices but no GPU: start it with \
             the GPUs selected (`docker run --gpus all`",
    );
    // The same reason skips a test.
    let run = container.run("harness-basic", "gpu", &["--exact", "round_trip"]);
    assert!(run.stdout.contains("but no GPU's device file"), "{}", run.all());

    // On a host: the files were never made, or there is no kernel module to make them. A valid
    // CUDA_VISIBLE_DEVICES changes nothing.
    let host = Machine::with_fake_driver()
        .init_result(100)
        .without_device_node("nvidia0")
        .env("CUDA_VISIBLE_DEVICES", "0");
    let json = host.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "error",
        "the GPU's device file was never made: run `sudo nvidia-smi` once",
    );
    let json = Machine::with_fake_driver()
        .init_result(100)
        .without_device_node("nvidia0")
        .without_kernel_module()
        .doctor(&["--json"])
        .json();
    assert_finding(
        &json,
        "error",
        "the NVIDIA kernel module is not loaded (no /proc/driver/nvidia/version): load it",
    );
    // With a GPU's device file, the cause is elsewhere.
    let json = Machine::with_fake_driver()
        .init_result(100)
        .file(".dockerenv", "")
        .doctor(&["--json"])
        .json();
    assert!(
        !finding_texts(&json)
            .iter()
            .any(|f| f.contains("no GPU's device file")),
        "{:#?}",
        finding_texts(&json)
    );
}

/// The doctor's JSON names NVRTC's file as it is, as it names the driver's: JSON escapes what
/// it must itself, and a path escaped for a terminal would name no file.
#[test]
fn the_json_names_nvrtcs_file_as_it_is() {
    let (machine, _) = Machine::with_fake_driver().without_nvrtc().python_env("venv");
    let home = machine.dir().join("root/opt/cuda\t12.8/lib64");
    machine.nvrtc_in(&home, &["libnvrtc.so.12"]);
    let cuda_home = home.parent().unwrap().display().to_string();
    let json = machine.env("CUDA_HOME", &cuda_home).doctor(&["--json"]).json();
    assert_eq!(
        json["toolkit"]["nvrtc"]["library"],
        home.join("libnvrtc.so.12").display().to_string(),
        "{json:#}"
    );
}

/// Of several NVRTCs off the loader's path: the one in `CUDA_HOME` first, since the user named
/// it; then the name cudarc asks for first; never one of a newer major release than the driver
/// (cudarc, asking for the newest name first, would get it rather than one that works).
#[test]
fn of_several_nvrtcs_the_named_toolkit_then_cudarcs_order_and_never_one_too_new() {
    let (machine, site_packages) = Machine::with_fake_driver().without_nvrtc().python_env("venv");
    let wheel = site_packages.join("nvidia/cuda_nvrtc/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.12", "libnvrtc-builtins.so.12.8"]);
    let home = machine.dir().join("root/opt/cuda-11.8/lib64");
    machine.nvrtc_in(&home, &["libnvrtc.so.11", "libnvrtc-builtins.so.12.8"]);
    let library = |machine: &Machine| {
        let json = machine.doctor(&["--json"]).json();
        json["toolkit"]["nvrtc"]["library"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // cudarc asks for libnvrtc.so.12 before libnvrtc.so.11.
    assert_eq!(
        library(&machine),
        wheel.join("libnvrtc.so.12").display().to_string()
    );
    let cuda_home = home.parent().unwrap().display().to_string();
    let machine = machine.env("CUDA_HOME", &cuda_home);
    assert_eq!(
        library(&machine),
        home.join("libnvrtc.so.11").display().to_string()
    );

    // A wheel's NVRTC of a later minor release than the driver's (12.9 beside a driver of 12.8),
    // told by the builtins beside it, is passed over before it is loaded for a toolkit's of 12.8.
    let (machine, site_packages) = Machine::with_fake_driver().without_nvrtc().python_env("venv");
    let wheel = site_packages.join("nvidia/cuda_nvrtc/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.12", "libnvrtc-builtins.so.12.9"]);
    let toolkit = machine.dir().join("root/usr/local/cuda-12.8/lib64");
    machine.nvrtc_in(&toolkit, &["libnvrtc.so.12", "libnvrtc-builtins.so.12.8"]);
    assert_eq!(
        library(&machine),
        toolkit.join("libnvrtc.so.12").display().to_string()
    );
    // Alone, it is named with the reason and the fix, and not loaded.
    std::fs::remove_file(toolkit.join("libnvrtc.so.12")).unwrap();
    let json = machine.doctor(&["--json"]).json();
    assert_eq!(json["toolkit"]["nvrtc"]["found"], false, "{json:#}");
    assert_finding(
        &json,
        "warning",
        "NVRTC 12.9 (as the builtins beside it say) makes PTX that the driver (CUDA 12.8) cannot load",
    );
    assert_finding(
        &json,
        "warning",
        &format!(
            "/ update the driver to 575.51.03 or newer, or install the NVRTC wheel of CUDA 12.8 into the Python \
             environment it came from ({}): pip install \"nvidia-cuda-nvrtc-cu12<12.9\"",
            machine.dir().join("venv").display()
        ),
    );

    // A driver of CUDA 11.8: the CUDA 12 NVRTC is passed over, saying why, for an older one.
    let (machine, site_packages) = Machine::with_fake_driver()
        .without_nvrtc()
        .driver_version(11080, "520.61.05")
        .nvrtc_version("11.8")
        .python_env("venv");
    let wheel = site_packages.join("nvidia/cuda_nvrtc/lib");
    machine.nvrtc_in(&wheel, &["libnvrtc.so.12"]);
    let toolkit = machine.dir().join("root/usr/local/cuda-11.8/lib64");
    machine.nvrtc_in(&toolkit, &["libnvrtc.so.11", "libnvrtc-builtins.so.11.8"]);
    let json = machine.doctor(&["--json"]).json();
    let nvrtc = &json["toolkit"]["nvrtc"];
    assert_eq!(
        nvrtc["library"],
        toolkit.join("libnvrtc.so.11").display().to_string(),
        "{json:#}"
    );
    assert_eq!(
        nvrtc["passed_over"][0]["path"],
        wheel.join("libnvrtc.so.12").display().to_string()
    );
    assert_eq!(
        nvrtc["passed_over"][0]["why"],
        "not loaded: NVRTC of CUDA 12 makes PTX that the driver (CUDA 11.8) cannot load"
    );
    // Without the older one: the reason says why the newer one was not taken, and the fix.
    std::fs::remove_file(toolkit.join("libnvrtc.so.11")).unwrap();
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "warning",
        "NVRTC of CUDA 12 makes PTX that the driver (CUDA 11.8) cannot load",
    );
    assert_finding(
        &json,
        "warning",
        "/ update the driver to one of CUDA 12 (525.60.13 or newer for 12.0, newer for a later 12.x), or install an \
         NVRTC of CUDA 11.8 or older",
    );
}

/// `CUDA_VISIBLE_DEVICES` naming a UUID no GPU has, or an index past the last GPU: the driver
/// stops at that entry, and the reason names it.
#[test]
fn visible_devices_that_match_nothing_are_named() {
    let absent = Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", "GPU-deadbeef");
    let run = absent.doctor(&["--json"]);
    let json = run.json();
    assert_finding(
        &json,
        "error",
        "CUDA_VISIBLE_DEVICES=GPU-deadbeef lists GPU-deadbeef, which matches no device (no GPU or MIG instance \
             has that UUID), so the driver ignores it",
    );
    let beyond = Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", "0,5");
    let json = beyond.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "warning",
        "CUDA_VISIBLE_DEVICES=0,5 lists 5, which matches no device",
    );
    let run = beyond.run("harness-basic", "gpu", &["--exact", "two_devices"]);
    assert!(
        run.stdout.contains(
            "ignored (needs 2 CUDA devices, found 1 (CUDA_VISIBLE_DEVICES=0,5 lists 5, which matches no device (no \
             GPU has that index), so the driver ignores it))"
        ),
        "{}",
        run.all()
    );
}

/// `CUDA_VISIBLE_DEVICES` is blamed for a driver that finds no device only where it is the
/// cause: always when it hides every device, never for an index that a GPU's device file shows to
/// exist, and not where no GPU is there at all.
#[test]
fn visible_devices_are_blamed_only_where_they_are_the_cause() {
    let finding = |machine: Machine| {
        let json = machine.init_result(100).doctor(&["--json"]).json();
        finding_texts(&json).join("\n")
    };
    // Empty, or nothing the driver can read: whatever the machine has, it sees nothing.
    let all = finding(Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", "none"));
    assert!(
        all.contains("CUDA_VISIBLE_DEVICES=\"none\" hides every device"),
        "{all}"
    );
    // An index past the GPUs /dev shows: the variable.
    let past = finding(Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", "3"));
    assert!(
        past.contains("CUDA_VISIBLE_DEVICES=3 lists 3, which matches no device"),
        "{past}"
    );
    // An index /dev shows a GPU for: not the variable, whatever follows it (the driver starts
    // with the first entry).
    for value in ["0", "0,5"] {
        let present = finding(Machine::with_fake_driver().env("CUDA_VISIBLE_DEVICES", value));
        assert!(!present.contains("matches no device"), "{value}: {present}");
    }
    // No device files at all (a container started without GPUs): that, not the variable.
    let none = finding(
        Machine::with_fake_driver()
            .without_device_node("nvidia0")
            .without_device_node("nvidiactl")
            .env("CUDA_VISIBLE_DEVICES", "0"),
    );
    assert!(none.contains("there are no /dev/nvidia* device files"), "{none}");
    assert!(!none.contains("matches no device"), "{none}");
}

/// A GPU device file this user may not open (here one that leads nowhere, which no user can open,
/// root included) is named: as the cause of a driver that finds no device, whatever
/// `CUDA_VISIBLE_DEVICES` says, and beside a count of devices that falls short.
#[test]
fn device_files_this_user_cannot_open_are_named() {
    let blocked = |machine: &Machine, name: &str| {
        // The machine's files are written on its first command.
        let _ = machine.command("true").status();
        let node = machine.dir().join("root/dev").join(name);
        let _ = std::fs::remove_file(&node);
        std::os::unix::fs::symlink(machine.dir().join("nowhere"), &node).unwrap();
        node
    };
    let machine = Machine::with_fake_driver()
        .init_result(100)
        .env("CUDA_VISIBLE_DEVICES", "0");
    let node = blocked(&machine, "nvidia0");
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "error",
        &format!("this user may not read and write {}", node.display()),
    );
    assert_finding(
        &json,
        "error",
        "give this user read and write access to /dev/nvidia*",
    );

    let machine = Machine::with_fake_driver();
    let node = blocked(&machine, "nvidia1");
    // A device file that is not a GPU's is not why a GPU is missing.
    let other = blocked(&machine, "nvidia-uvm-tools");
    let run = machine.run("harness-basic", "gpu", &["--exact", "two_devices"]);
    assert!(
        !run.stdout.contains(&other.display().to_string()),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(&format!(
            "needs 2 CUDA devices, found 1; this user may not read and write {}",
            node.display()
        )),
        "{}",
        run.all()
    );
}

/// A GPU in MIG mode without an instance visible to CUDA: the driver shows no device, and
/// nvidia-smi says why.
#[test]
fn mig_mode_without_an_instance_is_explained() {
    let machine = Machine::with_fake_driver().init_result(100);
    let bin = machine.dir().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let smi = bin.join("nvidia-smi");
    std::fs::write(
        &smi,
        "#!/bin/sh\ncase \"$*\" in *mig.mode.current*) echo '0, Enabled'; echo '1, Disabled';; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let machine = machine.env("PATH", &path);
    let json = machine.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "error",
        "GPU 0 is in MIG mode (nvidia-smi), and CUDA sees no MIG instance",
    );
    assert_finding(&json, "error", "CUDA_VISIBLE_DEVICES=MIG-<uuid>");
    let run = machine.run("harness-basic", "gpu", &["--exact", "round_trip"]);
    assert!(run.stdout.contains("GPU 0 is in MIG mode"), "{}", run.all());
    // A machine whose other GPU shows: the one in MIG mode is named, not silently missing.
    let mixed = Machine::with_fake_driver().env("PATH", &path);
    let json = mixed.doctor(&["--json"]).json();
    assert_finding(
        &json,
        "info",
        "GPU 0 is in MIG mode (nvidia-smi): CUDA shows it only as a MIG instance",
    );
    // Without MIG mode, nothing of it is said.
    let plain = Machine::with_fake_driver()
        .init_result(100)
        .doctor(&["--json"])
        .json();
    assert!(
        !finding_texts(&plain).join("\n").contains("MIG mode"),
        "{:#?}",
        finding_texts(&plain)
    );
    // A CUDA_VISIBLE_DEVICES that names GPU 0 (set by a cluster's scheduler, say) is not the
    // cause: the GPU it names is there, in MIG mode.
    let json = machine
        .env("CUDA_VISIBLE_DEVICES", "0")
        .doctor(&["--json"])
        .json();
    assert_finding(
        &json,
        "error",
        "GPU 0 is in MIG mode (nvidia-smi), and CUDA sees no MIG instance",
    );
    assert!(
        !finding_texts(&json).join("\n").contains("matches no device"),
        "{:#?}",
        finding_texts(&json)
    );
}

/// `CUDA_VISIBLE_DEVICES=MIG-<uuid>`: the instance is a device with its own memory, named by its
/// MIG UUID as nvidia-smi names it, and tests run on it.
#[test]
fn a_mig_instance_selected_by_uuid_is_a_device_of_its_own() {
    let machine = Machine::with_fake_driver()
        .devices("NVIDIA Fake A100 MIG 3g.40gb|8.0|40GiB;NVIDIA Fake A100 MIG 1g.10gb|8.0|10GiB")
        .env("CUDA_VISIBLE_DEVICES", "MIG-fa4e0000-0000-0000-0000-000000000001");
    let json = machine.doctor(&["--json"]).json();
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{json:#}");
    assert_eq!(devices[0]["name"], "NVIDIA Fake A100 MIG 1g.10gb");
    assert_eq!(devices[0]["uuid"], "MIG-fa4e0000-0000-0000-0000-000000000001");
    assert_eq!(devices[0]["total_memory"], 10u64 << 30);
    let run = machine.run("harness-basic", "gpu", &["--exact", "round_trip"]);
    assert!(
        run.stderr.contains(
            "gpu-test: round_trip ran on device 0 NVIDIA Fake A100 MIG 1g.10gb (MIG-fa4e0000-0000-0000-0000-000000000001)"
        ),
        "{}",
        run.all()
    );
}

/// A driver older than CUDA 11.2, the oldest gpu-test runs tests on, skips every GPU test (with
/// or without `min_cuda`) naming that floor, and the doctor counts no device usable; a newer
/// `min_cuda` keeps its own reason.
#[test]
fn a_driver_older_than_gpu_test_runs_on_skips_every_test() {
    let old = Machine::with_fake_driver().driver_version(11000, "450.51.05");
    let run = old.run("harness-basic", "gpu", &["--exact", "round_trip"]);
    assert!(
        run.stdout.contains(
            "ignored (needs CUDA >= 11.2, driver 450.51.05 supports CUDA 11.0; CUDA 11.2 needs driver >= 460.27.03 \
             (CUDA 11.2 is the oldest gpu-test runs tests on"
        ),
        "{}",
        run.all()
    );
    let run = old.run("harness-basic", "gpu", &["--exact", "needs_cuda_11_8"]);
    assert!(
        run.stdout
            .contains("ignored (needs CUDA >= 11.8, driver 450.51.05 supports CUDA 11.0;")
            && !run.stdout.contains("oldest gpu-test runs tests on"),
        "{}",
        run.all()
    );
    let json = old.doctor(&["--json"]).json();
    assert_eq!(json["usable_devices"], 0, "{json:#}");
    assert_finding(&json, "error", "CUDA 11.2 is the oldest gpu-test runs tests on");
}
