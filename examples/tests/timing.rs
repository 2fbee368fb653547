//! GPU time as CUDA events measure it is real time of real work: positive, below the wall time
//! of the timed region, and growing with the work.

use std::error::Error;
use std::time::Instant;

use gpu_test_examples::input;
use gpu_test_runtime::cudarc::driver::{CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use gpu_test_runtime::cudarc::nvrtc::compile_ptx;
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test(min_toolkit = "11.8")]
fn event_time_is_below_wall_time_and_scales_with_the_work(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let kernel = gpu
        .context()
        .load_module(compile_ptx(gpu_test_examples::BUSY)?)?
        .load_function("busy")?;
    let stream = gpu.stream();
    let (small_n, large_n) = (1usize << 20, 1usize << 22);
    let mut small_data = stream.clone_htod(&input(small_n, 3))?;
    let mut large_data = stream.clone_htod(&input(large_n, 3))?;
    let launch = |stream: &CudaStream, data: &mut CudaSlice<f32>, n: usize| {
        let n_arg = n as i32;
        let mut launch = stream.launch_builder(&kernel);
        launch.arg(data).arg(&n_arg);
        // SAFETY: the kernel takes a float buffer of n elements and n.
        unsafe { launch.launch(LaunchConfig::for_num_elems(n as u32)) }.map(|_| ())
    };
    // An idle GPU runs at a fraction of its clock until work has kept it busy for a while: a
    // few hundred launches of the large size (about 0.2 s on an H200) bring it up, so that the
    // sizes are not compared at different clocks.
    for _ in 0..800 {
        launch(stream, &mut large_data, large_n)?;
    }
    stream.synchronize()?;
    // Event and wall time of one run of each size, in turn, so that both see the same clocks;
    // the medians of six pairs, after a first pair left out.
    let mut samples: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for run in 0..7 {
        for (size, (data, n)) in [(&mut small_data, small_n), (&mut large_data, large_n)]
            .into_iter()
            .enumerate()
        {
            let started = Instant::now();
            let timed = gpu.time(&format!("busy {n}"), |stream| launch(stream, data, n))?;
            let wall = started.elapsed();
            timed.value?;
            if run > 0 {
                samples[size].push((timed.elapsed.as_secs_f64(), wall.as_secs_f64()));
            }
        }
    }
    let [(small, small_wall), (large, large_wall)] = samples.map(|mut times| {
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        times[times.len() / 2]
    });
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
