use gpu_test_runtime::gpu_test;

#[gpu_test(leak_check = "yes")]
fn not_a_bool() {}

fn main() {}
