//! CPU references and kernel sources for the example GPU tests in `tests/`.

/// `out[i] = a[i] + b[i]`, the reference the vector-add kernel is checked against.
pub fn vector_add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

/// `y[i] = a * x[i] + y[i]`, the reference the SAXPY kernel is checked against.
pub fn saxpy(a: f32, x: &[f32], y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(x, y)| a * x + y).collect()
}

/// `c = a * b` for row-major `n x n` matrices, the reference for the matmul kernel.
pub fn matmul(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; n * n];
    for row in 0..n {
        for k in 0..n {
            let a_rk = a[row * n + k];
            for col in 0..n {
                c[row * n + col] += a_rk * b[k * n + col];
            }
        }
    }
    c
}

/// The kernels, compiled at run time with NVRTC.
pub const KERNELS: &str = r#"
extern "C" __global__ void vector_add(const float *a, const float *b, float *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = a[i] + b[i];
    }
}

extern "C" __global__ void saxpy(float a, const float *x, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}

extern "C" __global__ void matmul(const float *a, const float *b, float *c, int n) {
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (row < n && col < n) {
        float sum = 0.0f;
        for (int k = 0; k < n; ++k) {
            sum += a[row * n + k] * b[k * n + col];
        }
        c[row * n + col] = sum;
    }
}
"#;

/// A fixed amount of arithmetic per element, so that the work is proportional to `n` (the
/// timing test).
pub const BUSY: &str = r#"
extern "C" __global__ void busy(float *v, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = v[i];
        for (int k = 0; k < 2048; ++k) {
            x = x * 0.999f + 0.001f;
        }
        v[i] = x;
    }
}
"#;

/// A write far outside any allocation (the fault test), which the GPU reports as
/// CUDA_ERROR_ILLEGAL_ADDRESS. It lands 2^61 bytes past the buffer, beyond any address a page
/// table can map (a GPU's reach 57 bits at most, a process's 47 or 56): where the GPU may reach
/// the process's own memory (HMM), a nearer miss could land in a mapping and not fault at all.
pub const OUT_OF_BOUNDS_WRITE: &str = r#"extern "C" __global__ void poke(int *p) { p[1LL << 59] = 1; }"#;

/// Every kernel source above with its entry points, so that each can be compiled with a real
/// NVRTC where no GPU is (gpu-test's own tests do).
pub const SOURCES: &[(&str, &[&str])] = &[
    (KERNELS, &["vector_add", "saxpy", "matmul"]),
    (BUSY, &["busy"]),
    (OUT_OF_BOUNDS_WRITE, &["poke"]),
];

/// Deterministic test input: `n` values in [-1, 1).
pub fn input(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The largest absolute difference between two equally long slices.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// This test binary run again as a child process, for tests about what happens across
/// processes: it sees none of the parent's run (no report, no nextest phase), keeps its device
/// leases in `runtime_dir`, apart from the lease the parent's own test holds, and sees only the
/// GPU `device` (a UUID), so that what it does on one GPU cannot move to another.
pub fn this_binary_again(
    runtime_dir: &std::path::Path,
    device: &str,
    args: &[&str],
) -> std::process::Command {
    let exe = std::env::current_exe().expect("a test binary knows its own path");
    let mut command = std::process::Command::new(exe);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("NEXTEST") || name == "GPU_TEST_REPORT" || name == "GITHUB_ACTIONS" {
            command.env_remove(name.as_ref());
        }
    }
    command
        .env("GPU_TEST_RUNTIME_DIR", runtime_dir)
        .env("CUDA_VISIBLE_DEVICES", device)
        .args(args)
        .stdin(std::process::Stdio::null());
    command
}

/// A fresh private directory under the system's temporary directory, for one test: made here,
/// mode 0700, under a name no one can guess, so that another user cannot have made it first.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    use std::hash::{BuildHasher, Hasher};
    use std::os::unix::fs::DirBuilderExt;
    // Keyed from the operating system's randomness.
    let unguessable = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let dir = std::env::temp_dir().join(format!(
        "gpu-test-examples-{name}-{}-{unguessable:016x}",
        std::process::id()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|error| panic!("cannot make {}: {error}", dir.display()));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(vector_add(&[1.0, 2.0], &[0.5, -2.0]), [1.5, 0.0]);
        assert_eq!(saxpy(2.0, &[1.0, -1.0], &[0.5, 0.5]), [2.5, -1.5]);
        let identity = [1.0, 0.0, 0.0, 1.0];
        assert_eq!(matmul(&[1.0, 2.0, 3.0, 4.0], &identity, 2), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            matmul(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2),
            [19.0, 22.0, 43.0, 50.0]
        );
        assert_eq!(max_difference(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
    }

    #[test]
    fn inputs_are_deterministic_and_in_range() {
        let a = input(1000, 7);
        assert_eq!(a, input(1000, 7));
        assert_ne!(a, input(1000, 8));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
