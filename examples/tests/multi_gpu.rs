//! Tests that need more than one device, or more than any device has.

use std::error::Error;

use gpu_test_examples::input;
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test(devices = 2)]
fn copies_between_two_devices(gpu: &Gpu) -> Result<(), Box<dyn Error>> {
    let [first, second] = gpu.devices() else {
        return Err("expected exactly two devices".into());
    };
    let data = input(1 << 22, 7);
    let on_first = first.stream().clone_htod(&data)?;
    // A device-to-device copy between contexts: cudarc uses cuMemcpyPeerAsync.
    let on_second = second
        .time("peer copy 16 MiB", |stream| stream.clone_dtod(&on_first))?
        .value?;
    assert_eq!(second.stream().clone_dtoh(&on_second)?, data);
    Ok(())
}

/// No GPU made so far has this much memory: this test shows the skip reason on every machine.
#[gpu_test(min_memory = "4 TiB")]
fn needs_more_memory_than_any_gpu_has(gpu: &Gpu) {
    assert!(gpu.info().total_memory >= 4 << 40);
}

fn main() {
    gpu_test_runtime::main()
}
