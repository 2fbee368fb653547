//! Timing: runs variants interleaved (A, B, A, B, ...) so that drift on a busy machine hits all of
//! them alike, and reports medians.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The median of `samples` (the mean of the middle two for an even count).
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    assert!(n > 0, "no samples");
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Runs every closure `reps` times, interleaved, and returns each one's median.
pub fn interleaved(reps: usize, variants: &mut [&mut dyn FnMut() -> Duration]) -> Vec<Duration> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(reps); variants.len()];
    for _ in 0..reps {
        for (i, variant) in variants.iter_mut().enumerate() {
            samples[i].push(variant());
        }
    }
    samples.iter().map(|s| median(s)).collect()
}

/// How long `command` takes, with its output read through pipes as cargo and CI read it (a test
/// binary writing to /dev/null would be measured on a path no user takes). A failure stops the
/// benchmark: a number from a broken run would mean nothing.
pub fn run(command: &mut Command) -> Duration {
    command.stdin(Stdio::null());
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed with {}",
        output.status
    );
    elapsed
}

/// Runs `command` once and returns its standard output, failing loudly.
pub fn output(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub use gpu_test_tests::clean_command;

/// `cargo`, as the one running this benchmark, in `dir`.
pub fn cargo(dir: &Path) -> Command {
    let mut command = gpu_test_tests::cargo();
    command.current_dir(dir);
    command
}

/// A duration for a table cell, in a unit that suits it.
pub fn format(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1e-6 {
        format!("{:.1} ns", seconds * 1e9)
    } else if seconds < 1e-3 {
        format!("{:.1} us", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(median(&[ms(4), ms(1), ms(2), ms(3)]), Duration::from_micros(2500));
    }

    #[test]
    fn interleaving_calls_each_variant_in_turn() {
        let mut order = Vec::new();
        {
            let order = std::cell::RefCell::new(&mut order);
            let mut a = || {
                order.borrow_mut().push('a');
                Duration::from_millis(1)
            };
            let mut b = || {
                order.borrow_mut().push('b');
                Duration::from_millis(2)
            };
            let medians = interleaved(2, &mut [&mut a, &mut b]);
            assert_eq!(medians, [Duration::from_millis(1), Duration::from_millis(2)]);
        }
        assert_eq!(order, ['a', 'b', 'a', 'b']);
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(format(Duration::from_nanos(12)), "12.0 ns");
        assert_eq!(format(Duration::from_micros(41)), "41.0 us");
        assert_eq!(format(Duration::from_millis(250)), "250.0 ms");
        assert_eq!(format(Duration::from_secs(3)), "3.00 s");
    }
}
