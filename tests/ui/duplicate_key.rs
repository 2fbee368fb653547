use gpu_test_runtime::gpu_test;

#[gpu_test(devices = 1, min_cuda = "11.8", devices = 2)]
fn two_gpus() {}

#[gpu_test(each_device = false, each_device)]
fn off_then_on() {}

fn main() {}
