use gpu_test_runtime::gpu_test;

#[gpu_test(min_cuda = "11")]
fn major_only() {}

#[gpu_test(min_compute = "sm_80")]
fn architecture_name() {}

#[gpu_test(min_toolkit = "12.10")]
fn two_digit_minor() {}

fn main() {}
