use gpu_test_runtime::gpu_test;

#[gpu_test(devices = 65)]
fn more_than_gpu_test_reads() {}

fn main() {}
