//! A crate that forbids unsafe code can still have GPU tests.
#![forbid(unsafe_code)]

use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test]
fn in_a_crate_that_forbids_unsafe(_gpu: &Gpu) {}

fn main() {}
