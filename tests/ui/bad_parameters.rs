use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test]
fn takes_a_number(n: u32) {
    let _ = n;
}

#[gpu_test]
fn takes_mut(gpu: &mut Gpu) {
    let _ = gpu;
}

#[gpu_test]
fn takes_by_value(gpu: Gpu) {
    let _ = gpu;
}

#[gpu_test]
fn takes_two(a: &Gpu, b: &Gpu) {
    let _ = (a, b);
}

#[gpu_test]
fn takes_a_reference_to_a_number(n: &u32) {
    let _ = n;
}

#[gpu_test]
fn takes_a_string(s: &String) {
    let _ = s;
}

fn main() {}
