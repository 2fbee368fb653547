//! Kernels compiled at run time with NVRTC, timed with CUDA events, and checked against a CPU
//! reference.

use std::error::Error;
use std::sync::Arc;

use gpu_test_examples::{KERNELS, input, matmul, max_difference, saxpy, vector_add};
use gpu_test_runtime::cudarc::driver::{CudaModule, LaunchConfig, PushKernelArg};
use gpu_test_runtime::cudarc::nvrtc::compile_ptx;
use gpu_test_runtime::{Gpu, gpu_test};

fn kernels(gpu: &Gpu) -> Result<Arc<CudaModule>, Box<dyn Error>> {
    Ok(gpu.context().load_module(compile_ptx(KERNELS)?)?)
}

#[gpu_test(min_toolkit = "11.8")]
fn vector_add_matches_the_cpu(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let n = 1 << 22;
    let (a, b) = (input(n, 1), input(n, 2));
    let kernel = kernels(gpu)?.load_function("vector_add")?;
    let stream = gpu.stream();
    let (a_dev, b_dev) = (stream.clone_htod(&a)?, stream.clone_htod(&b)?);
    let mut out = stream.alloc_zeros::<f32>(n)?;
    let n_arg = n as i32;
    for _ in 0..10 {
        gpu.time("vector_add", |stream| {
            let mut launch = stream.launch_builder(&kernel);
            launch.arg(&a_dev).arg(&b_dev).arg(&mut out).arg(&n_arg);
            // SAFETY: the arguments match the kernel's signature; every buffer holds n floats.
            unsafe { launch.launch(LaunchConfig::for_num_elems(n as u32)) }
        })?
        .value?;
    }
    let worst = max_difference(&stream.clone_dtoh(&out)?, &vector_add(&a, &b));
    assert!(worst == 0.0, "largest difference from the CPU reference: {worst}");
    Ok(())
}

#[gpu_test(min_toolkit = "11.8")]
fn saxpy_matches_the_cpu(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let n = 1 << 20;
    let (a, x, y) = (2.5f32, input(n, 3), input(n, 4));
    let kernel = kernels(gpu)?.load_function("saxpy")?;
    let stream = gpu.stream();
    let x_dev = stream.clone_htod(&x)?;
    let mut y_dev = stream.clone_htod(&y)?;
    let n_arg = n as i32;
    gpu.time("saxpy", |stream| {
        let mut launch = stream.launch_builder(&kernel);
        launch.arg(&a).arg(&x_dev).arg(&mut y_dev).arg(&n_arg);
        // SAFETY: the arguments match the kernel's signature; both buffers hold n floats.
        unsafe { launch.launch(LaunchConfig::for_num_elems(n as u32)) }
    })?
    .value?;
    let worst = max_difference(&stream.clone_dtoh(&y_dev)?, &saxpy(a, &x, &y));
    assert!(
        worst <= 1e-5,
        "largest difference from the CPU reference: {worst}"
    );
    Ok(())
}

#[gpu_test(min_toolkit = "11.8")]
fn matmul_matches_the_cpu(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let n = 256;
    let (a, b) = (input(n * n, 5), input(n * n, 6));
    let kernel = kernels(gpu)?.load_function("matmul")?;
    let stream = gpu.stream();
    let (a_dev, b_dev) = (stream.clone_htod(&a)?, stream.clone_htod(&b)?);
    let mut c_dev = stream.alloc_zeros::<f32>(n * n)?;
    let n_arg = n as i32;
    let tiles = (n as u32).div_ceil(16);
    let config = LaunchConfig {
        grid_dim: (tiles, tiles, 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    };
    for _ in 0..5 {
        gpu.time("matmul 256x256", |stream| {
            let mut launch = stream.launch_builder(&kernel);
            launch.arg(&a_dev).arg(&b_dev).arg(&mut c_dev).arg(&n_arg);
            // SAFETY: the arguments match the kernel's signature; every matrix holds n * n floats.
            unsafe { launch.launch(config) }
        })?
        .value?;
    }
    let worst = max_difference(&stream.clone_dtoh(&c_dev)?, &matmul(&a, &b, n));
    assert!(
        worst <= 1e-3,
        "largest difference from the CPU reference: {worst}"
    );
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
