use gpu_test_runtime::{gpu_test, Gpu};

mod other {
    pub struct Gpu;
}

#[gpu_test]
fn takes_another_crates_gpu(gpu: &other::Gpu) {
    let _ = gpu;
}

#[gpu_test]
fn takes_a_static_gpu(gpu: &'static Gpu) {
    let _ = gpu;
}

#[gpu_test]
fn returns_a_result(gpu: &other::Gpu) -> Result<(), String> {
    let _ = gpu;
    Ok(())
}

/// A name that could have been `Gpu` imported under it: the signature check says it is not.
#[gpu_test]
fn takes_a_path(path: &std::path::Path) {
    let _ = path;
}

fn main() {}
