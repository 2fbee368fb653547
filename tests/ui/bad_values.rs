//! Values of the right type that say nothing gpu-test can use.
use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test(memory = "lots")]
fn unreadable_memory(_gpu: &Gpu) {}

#[gpu_test(min_free_memory = "8 gigs")]
fn unknown_unit(_gpu: &Gpu) {}

#[gpu_test(timeout = "500us")]
fn under_a_millisecond(_gpu: &Gpu) {}

#[gpu_test(timeout = "0s")]
fn no_time_at_all(_gpu: &Gpu) {}

#[gpu_test(timeout = "soon")]
fn not_a_duration(_gpu: &Gpu) {}

#[gpu_test(devices = 2u32)]
fn suffixed_count(_gpu: &Gpu) {}

#[gpu_test(feature = "")]
fn empty_feature(_gpu: &Gpu) {}

#[gpu_test(crate = ::elsewhere)]
fn unquoted_crate(_gpu: &Gpu) {}

#[gpu_test(timeout = "1500us")]
fn part_of_a_millisecond(_gpu: &Gpu) {}

#[gpu_test(min_cuda = "11.8"x)]
fn suffixed_string(_gpu: &Gpu) {}

#[gpu_test(crate = "my_crate::<T>")]
fn crate_with_generic_arguments(_gpu: &Gpu) {}

fn main() {}
