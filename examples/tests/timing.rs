//! GPU time as CUDA events measure it is real time of real work: positive, below the wall time
//! of the timed region, and growing with the work.

use std::error::Error;
use std::time::Instant;

use gpu_test_examples::input;
use gpu_test_runtime::cudarc::driver::{LaunchConfig, PushKernelArg};
use gpu_test_runtime::cudarc::nvrtc::compile_ptx;
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test(min_toolkit = "11.8")]
fn event_time_is_below_wall_time_and_scales_with_the_work(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let kernel = gpu
        .context()
        .load_module(compile_ptx(gpu_test_examples::BUSY)?)?
        .load_function("busy")?;
    let stream = gpu.stream();
    // The median of several runs of each size, after a warm-up run.
    let time = |n: usize| -> Result<(f64, f64), Box<dyn Error>> {
        let mut data = stream.clone_htod(&input(n, 3))?;
        let n_arg = n as i32;
        let mut samples = Vec::new();
        for run in 0..6 {
            let started = Instant::now();
            let timed = gpu.time(&format!("busy {n}"), |stream| {
                let mut launch = stream.launch_builder(&kernel);
                launch.arg(&mut data).arg(&n_arg);
                // SAFETY: the kernel takes a float buffer of n elements and n.
                unsafe { launch.launch(LaunchConfig::for_num_elems(n as u32)) }
            })?;
            let wall = started.elapsed();
            timed.value?;
            if run > 0 {
                samples.push((timed.elapsed.as_secs_f64(), wall.as_secs_f64()));
            }
        }
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(samples[samples.len() / 2])
    };
    let (small, small_wall) = time(1 << 20)?;
    let (large, large_wall) = time(1 << 22)?;
    assert!(small > 0.0 && large > 0.0, "event times {small} s and {large} s");
    assert!(
        small <= small_wall,
        "event time {small} s above the region's wall time {small_wall} s"
    );
    assert!(
        large <= large_wall,
        "event time {large} s above the region's wall time {large_wall} s"
    );
    let ratio = large / small;
    assert!(
        (2.0..=8.0).contains(&ratio),
        "4x the elements took {ratio:.2}x the GPU time ({small} s, then {large} s)"
    );
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
