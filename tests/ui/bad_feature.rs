use gpu_test_runtime::gpu_test;

#[gpu_test(feature = "dep:cudarc")]
fn not_a_feature_name() {}

fn main() {}
