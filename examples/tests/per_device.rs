//! Per-device runs, the leak check and declared memory on real GPUs: each GPU runs the body on
//! its own, a test that frees what it allocates passes the leak check (no false alarm from the
//! driver's own allocations) while one that leaks fails it, and declared memory admits tests.

use std::error::Error;

use gpu_test_examples::{scratch_dir, this_binary_again};
use gpu_test_runtime::{Gpu, gpu_test};

/// 64 MiB of f32s.
const ELEMENTS: usize = 16 << 20;

#[gpu_test(each_device)]
fn every_gpu_round_trips_a_buffer(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    assert_eq!(gpu.devices().len(), 1, "each run has its one device");
    let host: Vec<f32> = (0..ELEMENTS).map(|i| i as f32).collect();
    let stream = gpu.stream();
    let on_device = stream.clone_htod(&host)?;
    assert_eq!(stream.clone_dtoh(&on_device)?, host);
    Ok(())
}

#[gpu_test(leak_check = true)]
fn a_test_that_frees_what_it_allocates_passes_the_leak_check(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let stream = gpu.stream();
    for _ in 0..4 {
        let buffer = stream.alloc_zeros::<f32>(ELEMENTS)?;
        assert_eq!(stream.clone_dtoh(&buffer)?.len(), ELEMENTS);
    }
    Ok(())
}

#[gpu_test(leak_check = true)]
#[ignore = "leaks on purpose; run by a_leak_fails_the_leak_check"]
fn leaks_64_mib(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    std::mem::forget(gpu.stream().alloc_zeros::<f32>(ELEMENTS)?);
    Ok(())
}

#[gpu_test]
fn a_leak_fails_the_leak_check(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let uuid = gpu.info().uuid.clone().ok_or("the GPU has no UUID")?;
    let output = this_binary_again(
        &scratch_dir("leak-check"),
        &uuid,
        &["--ignored", "--exact", "leaks_64_mib"],
    )
    .output()?;
    let text =
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the leaking test passed:\n{text}");
    // The bytes named are at least what leaked (the driver may round an allocation up).
    let bytes: u64 = text
        .split_once("left device memory allocated: ")
        .and_then(|(_, rest)| rest.split_once(" bytes"))
        .and_then(|(number, _)| number.parse().ok())
        .ok_or_else(|| format!("no leak named:\n{text}"))?;
    assert!(
        bytes >= (ELEMENTS * 4) as u64,
        "{bytes} bytes named for a 64 MiB leak:\n{text}"
    );
    // For the record of a GPU run, which shows what passing tests printed.
    println!("the leaking process ({}) said:\n{text}", output.status);
    Ok(())
}

#[gpu_test(memory = "1 GiB")]
fn a_test_that_declares_its_memory_runs_within_it(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let buffer = gpu.stream().alloc_zeros::<u8>(512 << 20)?;
    assert_eq!(buffer.len(), 512 << 20);
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
