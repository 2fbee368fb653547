use gpu_test_runtime::gpu_test;

#[gpu_test(devices)]
fn no_value() {}

fn main() {}
