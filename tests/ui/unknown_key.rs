use gpu_test_runtime::gpu_test;

#[gpu_test(device = 2)]
fn two_gpus() {}

fn main() {}
