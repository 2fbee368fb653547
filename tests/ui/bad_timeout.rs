use gpu_test_runtime::gpu_test;

#[gpu_test(timeout = "30")]
fn no_unit() {}

fn main() {}
