use gpu_test_runtime::gpu_test;

#[gpu_test]
#[test]
fn twice_a_test() {}

fn main() {}
