//! A test written by a `macro_rules!` macro (whose `$t:ty` arrives as an invisible group), and
//! tests beside items whose names the generated code must not use.
use gpu_test_runtime::{gpu_test, Gpu};

macro_rules! gpu_test_taking {
    ($name:ident, $handle:ty) => {
        #[gpu_test]
        fn $name(_gpu: $handle) -> Result<(), String> {
            Ok(())
        }
    };
}

gpu_test_taking!(written_by_a_macro, &Gpu);

#[allow(non_upper_case_globals)]
static gpu: u8 = 0;

#[gpu_test]
fn beside_a_static_named_gpu(_gpu: &Gpu) -> Result<(), String> {
    Ok(())
}

#[gpu_test]
fn without_the_handle_beside_a_static_named_gpu() -> Result<(), String> {
    let _ = gpu;
    Ok(())
}

macro_rules! error_of {
    (impl) => {
        String
    };
}

/// `impl` in a macro's input is not `impl Trait`, and a parenthesised handle is a handle.
#[allow(unused_parens)]
#[gpu_test]
fn returns_an_error_type_made_by_a_macro(_gpu: (&Gpu)) -> Result<(), error_of!(impl)> {
    Ok(())
}

mod renamed {
    use gpu_test_runtime::gpu_test;
    use gpu_test_runtime::Gpu as Device;

    /// `Gpu` imported under another name is the handle all the same.
    #[gpu_test]
    fn takes_the_gpu_under_another_name(_device: &Device) {}

    #[gpu_test]
    fn returns_a_result_taking_it_so(_device: &Device) -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
