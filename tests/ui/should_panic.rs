use gpu_test_runtime::gpu_test;

#[gpu_test]
#[should_panic]
fn expects_a_panic() {
    panic!();
}

fn main() {}
