use gpu_test_runtime::gpu_test;

#[gpu_test]
fn generic<T: Default>() {
    let _ = T::default();
}

fn main() {}
