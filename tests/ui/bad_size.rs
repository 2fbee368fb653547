use gpu_test_runtime::gpu_test;

#[gpu_test(min_memory = "16 gigs")]
fn unknown_unit() {}

#[gpu_test(min_memory = "16")]
fn no_unit() {}

#[gpu_test(min_memory = "0 GiB")]
fn zero() {}

fn main() {}
