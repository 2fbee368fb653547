//! The `#[gpu_test]` attribute macro.
//!
//! Use it through `gpu-test-runtime`, which re-exports it and holds everything the generated code
//! calls: `use gpu_test_runtime::gpu_test;`. The attribute is only parsed and checked here; nothing
//! is probed at expansion time, because test binaries are often built on one machine and run on
//! another.

#![warn(unreachable_pub, missing_docs)]

mod args;
mod errors;
mod expand;
mod item;
mod values;

use proc_macro::TokenStream;

/// Marks a function as a GPU test. See the `gpu-test-runtime` crate for the keys and behaviour.
#[proc_macro_attribute]
pub fn gpu_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::gpu_test(attr.into(), item.into()).into()
}
