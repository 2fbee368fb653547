//! Kernels compiled at run time with NVRTC and checked against a CPU reference.

use gpu_test_examples::{SAXPY_KERNEL, input, saxpy};
use gpu_test_runtime::cudarc::driver::{LaunchConfig, PushKernelArg};
use gpu_test_runtime::cudarc::nvrtc::compile_ptx;
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test(min_toolkit = "11.8")]
fn saxpy_matches_the_cpu(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
    let n = 1 << 20;
    let (a, x, y) = (2.5f32, input(n, 1), input(n, 2));
    let module = gpu.context().load_module(compile_ptx(SAXPY_KERNEL)?)?;
    let kernel = module.load_function("saxpy")?;
    let stream = gpu.stream();
    let x_dev = stream.clone_htod(&x)?;
    let mut y_dev = stream.clone_htod(&y)?;
    let n_arg = n as i32;
    let mut launch = stream.launch_builder(&kernel);
    launch.arg(&a).arg(&x_dev).arg(&mut y_dev).arg(&n_arg);
    // SAFETY: the arguments match the kernel's signature and both buffers hold n floats.
    unsafe { launch.launch(LaunchConfig::for_num_elems(n as u32)) }?;
    let result = stream.clone_dtoh(&y_dev)?;
    let expected = saxpy(a, &x, &y);
    let worst = result
        .iter()
        .zip(&expected)
        .map(|(gpu, cpu)| (gpu - cpu).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-5,
        "largest difference from the CPU reference: {worst}"
    );
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
