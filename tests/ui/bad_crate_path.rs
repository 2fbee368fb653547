use gpu_test_runtime::gpu_test;

#[gpu_test(crate = "not a path")]
fn bad_path() {}

fn main() {}
