use gpu_test_runtime::gpu_test;

#[gpu_test(device = 2)]
fn two_gpus() {}

#[gpu_test(each_devce)]
fn misspelt_without_a_value() {}

#[gpu_test(colour = "red")]
fn nothing_like_a_key() {}

fn main() {}
