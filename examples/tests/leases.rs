//! Device leases on a real GPU: named by the device's UUID, and a second test process wanting the
//! GPU (the only one either sees) waits for the first to be done with it.

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStderr, Stdio};

use gpu_test_examples::{scratch_dir, this_binary_again};
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test]
fn a_second_process_waits_for_the_gpu_the_first_holds(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let runtime = scratch_dir("leases");
    let log = runtime.join("holders.log");
    let uuid = gpu.info().uuid.clone().ok_or("the GPU has no UUID")?;
    let child = |args: &[&str]| {
        let mut command = this_binary_again(&runtime, &uuid, args);
        command
            .env("EXAMPLES_LEASE_LOG", &log)
            .env("GPU_TEST_TESTS_PER_DEVICE", "1")
            .env("GPU_TEST_LEASE_NOTICE", "0")
            // A second process that never gets the GPU fails in good time, saying so.
            .env("GPU_TEST_LEASE_TIMEOUT", "30s")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    // The first holds the GPU until this test writes to its standard input.
    let mut first = child(&["--ignored", "--exact", "holds_the_gpu_until_told"])
        .stdin(Stdio::piped())
        .spawn()?;
    let mut first_err = BufReader::new(first.stderr.take().ok_or("no stderr")?);
    let mut first_said = String::new();
    loop {
        let mut line = String::new();
        if first_err.read_line(&mut line)? == 0 {
            return Err(
                format!("the first process ended without holding the GPU; it said:\n{first_said}").into(),
            );
        }
        first_said.push_str(&line);
        if line.starts_with("holding the GPU") {
            break;
        }
    }
    // The second says at once that it waits, naming the first; then the first lets go.
    let mut second = child(&["--ignored", "--exact", "holds_the_gpu_until_told"])
        .stdin(Stdio::piped())
        .spawn()?;
    let mut second_err = BufReader::new(second.stderr.take().ok_or("no stderr")?);
    let mut waiting = String::new();
    second_err.read_line(&mut waiting)?;
    assert!(
        waiting.contains("is waiting for a device lease") && waiting.contains("holds_the_gpu_until_told"),
        // Not the rest: the second process may be waiting still, for the lease or to be told.
        "the second process said first:\n{waiting}"
    );
    first.stdin.take().ok_or("no stdin")?.write_all(b"done\n")?;
    let first_ended = first.wait()?;
    assert!(
        first_ended.success(),
        "the first process ({first_ended}) said:\n{first_said}{}",
        rest_of(first_err)
    );
    second.stdin.take().ok_or("no stdin")?.write_all(b"done\n")?;
    let second_ended = second.wait()?;
    assert!(
        second_ended.success(),
        "the second process ({second_ended}) said:\n{waiting}{}",
        rest_of(second_err)
    );

    let lines: Vec<String> = std::fs::read_to_string(&log)?
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[1], lines[0].replace("begin", "end"), "{lines:?}");
    assert_eq!(lines[3], lines[2].replace("begin", "end"), "{lines:?}");
    let leases: Vec<String> = std::fs::read_dir(runtime.join("leases"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Named after the UUID without its GPU- (or MIG-), which says only how a device was chosen.
    let key = uuid
        .strip_prefix("GPU-")
        .or_else(|| uuid.strip_prefix("MIG-"))
        .unwrap_or(&uuid);
    assert!(
        key.len() >= 32 && leases.iter().any(|name| name.starts_with(key)),
        "lease files {leases:?} are not named after {uuid}"
    );
    // For the record of a GPU run, which shows what passing tests printed.
    println!(
        "the second process said first: {waiting}the holders' log: {lines:?}\nthe lease files: {leases:?}"
    );
    let _ = std::fs::remove_dir_all(&runtime);
    Ok(())
}

/// What a child process still had to say on stderr, for a failure's message.
fn rest_of(mut stderr: BufReader<ChildStderr>) -> String {
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    rest
}

#[gpu_test]
#[ignore = "run by a_second_process_waits_for_the_gpu_the_first_holds"]
fn holds_the_gpu_until_told(_gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let path = std::env::var("EXAMPLES_LEASE_LOG")?;
    let me = std::process::id();
    let append = |line: String| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(line.as_bytes())
    };
    append(format!("begin {me}\n"))?;
    eprintln!("holding the GPU");
    let mut told = String::new();
    std::io::stdin().read_line(&mut told)?;
    append(format!("end {me}\n"))?;
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
