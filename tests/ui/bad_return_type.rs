use gpu_test_runtime::gpu_test;

#[gpu_test]
fn returns_a_number() -> u32 {
    4
}

fn main() {}
