//! GPU time measured by `Gpu::time`, aggregated per label and device.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One measured region.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// The label given to `time`.
    pub label: String,
    /// The device, as `device 0 NVIDIA H100`.
    pub device: String,
    /// The GPU time between the region's two events.
    pub elapsed: Duration,
}

/// The GPU time of the regions of one label on one device: what [`Gpu::time`](crate::Gpu::time)
/// measured, aggregated, as [`Gpu::timings`](crate::Gpu::timings) returns it and the report
/// carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timing {
    /// The label.
    pub label: String,
    /// The device, as `device 0 NVIDIA H100`.
    pub device: String,
    /// How many regions.
    pub count: usize,
    /// Their sum.
    pub total: Duration,
    /// The shortest.
    pub min: Duration,
    /// The median (the mean of the two middle ones for an even count).
    pub median: Duration,
    /// The longest.
    pub max: Duration,
}

/// Groups samples by (label, device), in the order each group first appeared.
pub(crate) fn summarise(samples: &[Sample]) -> Vec<Timing> {
    let mut groups: Vec<(&str, &str, Vec<Duration>)> = Vec::new();
    for sample in samples {
        match groups
            .iter_mut()
            .find(|(l, d, _)| *l == sample.label && *d == sample.device)
        {
            Some(group) => group.2.push(sample.elapsed),
            None => groups.push((&sample.label, &sample.device, vec![sample.elapsed])),
        }
    }
    groups
        .into_iter()
        .map(|(label, device, mut times)| {
            times.sort();
            let n = times.len();
            let median = if n % 2 == 1 {
                times[n / 2]
            } else {
                (times[n / 2 - 1] + times[n / 2]) / 2
            };
            Timing {
                label: label.to_string(),
                device: device.to_string(),
                count: n,
                total: times.iter().sum(),
                min: times[0],
                median,
                max: times[n - 1],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(value: f64) -> Duration {
        Duration::from_secs_f64(value * 1e-6)
    }

    fn sample(label: &str, device: &str, micros: f64) -> Sample {
        Sample {
            label: label.to_string(),
            device: device.to_string(),
            elapsed: us(micros),
        }
    }

    #[test]
    fn regions_aggregate_per_label_and_device() {
        let device = "device 0 NVIDIA H100";
        let samples: Vec<Sample> = [41.3, 40.9, 44.0, 41.0, 42.0]
            .iter()
            .map(|&t| sample("saxpy", device, t))
            .chain([
                sample("copy", device, 5.0),
                sample("saxpy", "device 1 NVIDIA H100", 90.0),
            ])
            .collect();
        let timings = summarise(&samples);
        assert_eq!(timings.len(), 3);
        let saxpy = &timings[0];
        assert_eq!(
            (saxpy.count, saxpy.min, saxpy.median, saxpy.max),
            (5, us(40.9), us(41.3), us(44.0))
        );
        assert!((saxpy.total.as_secs_f64() - 209.2e-6).abs() < 1e-9);
        assert_eq!(timings[2].device, "device 1 NVIDIA H100");
    }

    #[test]
    fn an_even_count_takes_the_middle_two() {
        let timings = summarise(&[sample("a", "d", 1.0), sample("a", "d", 3.0)]);
        assert_eq!(timings[0].median, us(2.0));
    }
}
