use gpu_test_runtime::gpu_test;

#[gpu_test]
struct NotATest;

fn main() {}
