use gpu_test_runtime::gpu_test;

#[gpu_test(devices = 0)]
fn no_gpus() {}

fn main() {}
