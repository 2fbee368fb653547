use gpu_test_runtime::gpu_test;

#[gpu_test(devices = "2")]
fn devices_as_string() {}

#[gpu_test(min_cuda = 11.8)]
fn version_as_float() {}

const N: u32 = 2;

#[gpu_test(devices = N)]
fn devices_as_constant() {}

fn main() {}
