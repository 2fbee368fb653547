//! A crate that denies unsafe code can still have GPU tests.
#![deny(unsafe_code)]

use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test]
fn in_a_crate_without_unsafe(_gpu: &Gpu) {}

fn main() {}
