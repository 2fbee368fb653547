//! CPU references and kernel sources for the example GPU tests in `tests/`.

/// `y[i] = a * x[i] + y[i]`, the reference the SAXPY kernel is checked against.
pub fn saxpy(a: f32, x: &[f32], y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(x, y)| a * x + y).collect()
}

/// The SAXPY kernel, compiled at run time with NVRTC.
pub const SAXPY_KERNEL: &str = r#"
extern "C" __global__ void saxpy(float a, const float *x, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}
"#;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saxpy_reference() {
        assert_eq!(saxpy(2.0, &[1.0, -1.0], &[0.5, 0.5]), [2.5, -1.5]);
    }

    #[test]
    fn inputs_are_deterministic_and_in_range() {
        let a = input(1000, 7);
        assert_eq!(a, input(1000, 7));
        assert_ne!(a, input(1000, 8));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
