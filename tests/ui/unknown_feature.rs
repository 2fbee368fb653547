// A feature the crate does not have: rustc's check of cfg names points at the name as written,
// with its own advice, not at the macro's crate.
#![deny(unexpected_cfgs)]

use gpu_test_runtime::gpu_test;

#[gpu_test(feature = "nonexistent")]
fn with_a_misspelt_feature() {}

fn main() {}
