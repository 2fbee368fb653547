use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test]
async fn asynchronous(gpu: &Gpu) {
    let _ = gpu;
}

fn main() {}
