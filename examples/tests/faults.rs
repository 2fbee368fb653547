//! A kernel that writes out of bounds: its test fails naming CUDA_ERROR_ILLEGAL_ADDRESS, and a
//! later test in the same process is told the device was poisoned, and by which test. The two
//! run in a child process of their own, so that this binary's other tests are not affected.

use std::error::Error;

use gpu_test_examples::{scratch_dir, this_binary_again};
use gpu_test_runtime::cudarc::driver::{LaunchConfig, PushKernelArg};
use gpu_test_runtime::cudarc::nvrtc::compile_ptx;
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test(min_toolkit = "11.8")]
fn a_faulting_kernel_is_named_and_poisons_only_its_process(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let runtime = scratch_dir("faults");
    let device = gpu.info().uuid.clone().ok_or("the GPU has no UUID")?;
    let args = ["--ignored", "fault_", "--test-threads", "1"];
    let output = this_binary_again(&runtime, &device, &args).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(101), "{text}");
    assert!(text.contains("CUDA_ERROR_ILLEGAL_ADDRESS"), "{text}");
    assert!(
        text.contains("gpu-test: fault_b_after device 0 ")
            && text.contains("cannot be used: its CUDA context was poisoned by fault_a_out_of_bounds_write"),
        "{text}"
    );
    // This process's own context on the same GPU is untouched.
    assert_eq!(gpu.stream().clone_dtoh(&gpu.stream().clone_htod(&[7u8])?)?, [7]);
    // For the record of a GPU run, which shows what passing tests printed.
    println!("the faulting process ({}) said:\n{text}", output.status);
    let _ = std::fs::remove_dir_all(&runtime);
    Ok(())
}

#[gpu_test(min_toolkit = "11.8")]
#[ignore = "faults on purpose; run by a_faulting_kernel_is_named_and_poisons_only_its_process"]
fn fault_a_out_of_bounds_write(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let ptx = compile_ptx(gpu_test_examples::OUT_OF_BOUNDS_WRITE)?;
    let kernel = gpu.context().load_module(ptx)?.load_function("poke")?;
    let stream = gpu.stream();
    let mut data = stream.alloc_zeros::<i32>(1)?;
    let mut launch = stream.launch_builder(&kernel);
    launch.arg(&mut data);
    // SAFETY: the kernel takes one int pointer; it writes far past it on purpose.
    unsafe { launch.launch(LaunchConfig::for_num_elems(1)) }?;
    stream.synchronize()?;
    Ok(())
}

#[gpu_test]
#[ignore = "runs after the fault, in the same process"]
fn fault_b_after(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    gpu.stream().clone_htod(&[1u8])?;
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
