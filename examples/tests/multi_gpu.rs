//! Tests that need more than one device.

use gpu_test_examples::input;
use gpu_test_runtime::{Gpu, gpu_test};

#[gpu_test(devices = 2)]
fn copies_between_two_devices(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
    let [first, second] = gpu.devices() else {
        return Err("expected exactly two devices".into());
    };
    let data = input(1 << 16, 3);
    let on_first = first.stream().clone_htod(&data)?;
    let back_on_host = first.stream().clone_dtoh(&on_first)?;
    let on_second = second.stream().clone_htod(&back_on_host)?;
    assert_eq!(second.stream().clone_dtoh(&on_second)?, data);
    Ok(())
}

fn main() {
    gpu_test_runtime::main()
}
