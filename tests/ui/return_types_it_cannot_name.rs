//! Return types the harness cannot name, and lifetimes it cannot call through, said by the
//! attribute rather than by errors in the code it generates.
use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test]
fn returns_impl_debug(_gpu: &Gpu) -> impl std::fmt::Debug {}

#[gpu_test]
fn returns_a_result_of_impl() -> Result<(), impl std::fmt::Debug> {
    Ok::<(), u8>(())
}

#[gpu_test]
fn never_returns(_gpu: &Gpu) -> ! {
    loop {}
}

#[gpu_test]
fn declares_a_lifetime<'a>(_gpu: &'a Gpu) {}

fn main() {}
