use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test(each_device, devices = 2)]
fn per_device_pairs(_gpu: &Gpu) {}

fn main() {}
