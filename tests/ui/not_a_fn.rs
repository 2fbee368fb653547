use gpu_test_runtime::gpu_test;

#[gpu_test]
struct NotATest;

#[gpu_test]
/// Documented, with attributes and a visibility before its keyword.
#[derive(Debug)]
pub(crate) enum NeitherIsThis {}

/// A `fn` type is not a function.
#[gpu_test]
type Handler = fn();

fn main() {}
