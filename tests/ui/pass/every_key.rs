use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test(
    devices = 2,
    min_cuda = "11.8",
    min_compute = "8.0",
    min_memory = "1.5 GiB",
    min_toolkit = "12.0",
    timeout = "30s",
    crate = "::gpu_test_runtime",
)]
fn everything(gpu: &Gpu) -> Result<(), String> {
    assert_eq!(gpu.devices().len(), 2);
    Ok(())
}

#[gpu_test]
fn nothing() {}

// Rounded up to exactly 1 TB.
#[gpu_test(min_memory = "0.999999999999999999999999999 TB", each_device = false)]
fn a_long_fraction() {}

#[gpu_test(devices = 64)]
fn as_many_devices_as_gpu_test_reads() {}

#[gpu_test]
#[ignore = "slow"]
#[allow(unused_variables)]
fn ignored(_: &gpu_test_runtime::Gpu) -> Result<(), Box<dyn std::error::Error>> {
    let unused = 1;
    Ok(())
}

fn main() {}
