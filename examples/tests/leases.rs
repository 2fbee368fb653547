//! Device leases on a real GPU: named by the device's UUID, and two test processes wanting one
//! GPU (the only one they see) take turns.

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use gpu_test_examples::{scratch_dir, this_binary_again};
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test]
fn two_processes_on_one_gpu_take_turns(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let runtime = scratch_dir("leases");
    let log = runtime.join("holders.log");
    let uuid = gpu.info().uuid.clone().ok_or("the GPU has no UUID")?;
    // Both at once: each holds the GPU for a moment, long enough to overlap were they allowed to.
    let children = (0..2)
        .map(|_| {
            this_binary_again(
                &runtime,
                &uuid,
                &["--ignored", "--exact", "holds_the_gpu_for_a_moment"],
            )
            .env("GPU_TEST_EXAMPLES_LOG", &log)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for child in children {
        let output = child.wait_with_output()?;
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let lines: Vec<String> = std::fs::read_to_string(&log)?
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    // One holder at a time: every begin is followed by its own end.
    for pair in lines.chunks(2) {
        let begin = pair[0].strip_prefix("begin ").expect("a begin");
        assert_eq!(pair[1], format!("end {begin}"), "{lines:?}");
    }
    let leases: Vec<String> = std::fs::read_dir(runtime.join("leases"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        leases.iter().any(|name| name.starts_with(&uuid)),
        "lease files {leases:?} are not named after {uuid}"
    );
    let _ = std::fs::remove_dir_all(&runtime);
    Ok(())
}

#[gpu_test]
#[ignore = "run twice at once by two_processes_on_one_gpu_take_turns"]
fn holds_the_gpu_for_a_moment(_gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let path = std::env::var("GPU_TEST_EXAMPLES_LOG")?;
    let me = std::process::id();
    let append = |line: String| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(line.as_bytes())
    };
    append(format!("begin {me}\n"))?;
    std::thread::sleep(Duration::from_millis(300));
    append(format!("end {me}\n"))?;
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
