// A crate that re-exports gpu-test-runtime under another path points the macro at it.
mod my_gpu {
    pub use gpu_test_runtime as rt;
}

use my_gpu::rt::gpu_test;

#[gpu_test(crate = "crate::my_gpu::rt")]
fn through_a_reexport(gpu: &my_gpu::rt::Gpu) {
    let _ = gpu.info();
}

fn main() {}
