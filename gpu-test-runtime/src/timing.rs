//! GPU time measured by `Gpu::time`, aggregated per label and device, and the lines printed
//! after each test.

use std::time::Duration;

use crate::json::Json;

/// One measured region.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The label given to `time`.
    pub label: String,
    /// The device, as `device 0 NVIDIA H100`.
    pub device: String,
    /// The GPU time between the region's two events.
    pub elapsed: Duration,
}

/// The regions of one label on one device.
#[derive(Debug, Clone, PartialEq)]
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
pub fn summarise(samples: &[Sample]) -> Vec<Timing> {
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

impl Timing {
    /// `gpu-test: timing vector_add::large: saxpy 10 x median 41.3 us (min 40.9, max 44.0), device 0 NVIDIA H100`
    pub fn line(&self, test: &str) -> String {
        let (unit, scale) = unit_for(self.median);
        format!(
            "gpu-test: timing {test}: {} {} x median {} {unit} (min {}, max {}), {}",
            self.label,
            self.count,
            number(self.median, scale),
            number(self.min, scale),
            number(self.max, scale),
            self.device
        )
    }

    /// The numbers, in milliseconds, for reports.
    pub fn to_json(&self, test: &str) -> Json {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Json::object()
            .with("label", self.label.as_str())
            .with("device", self.device.as_str())
            .with("count", self.count)
            .with("total_ms", ms(self.total))
            .with("min_ms", ms(self.min))
            .with("median_ms", ms(self.median))
            .with("max_ms", ms(self.max))
            .with("line", self.line(test))
    }
}

/// The unit a duration reads best in, and its size in seconds.
fn unit_for(duration: Duration) -> (&'static str, f64) {
    let seconds = duration.as_secs_f64();
    if seconds < 1e-3 {
        ("us", 1e-6)
    } else if seconds < 1.0 {
        ("ms", 1e-3)
    } else {
        ("s", 1.0)
    }
}

/// Three significant digits or so: `41.3`, `4.13`, `413`.
fn number(duration: Duration, scale: f64) -> String {
    let value = duration.as_secs_f64() / scale;
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
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
        assert_eq!(
            saxpy.line("vector_add::large"),
            "gpu-test: timing vector_add::large: saxpy 5 x median 41.3 us (min 40.9, max 44.0), device 0 NVIDIA H100"
        );
        assert_eq!(timings[2].device, "device 1 NVIDIA H100");
    }

    #[test]
    fn an_even_count_takes_the_middle_two() {
        let timings = summarise(&[sample("a", "d", 1.0), sample("a", "d", 3.0)]);
        assert_eq!(timings[0].median, us(2.0));
    }

    #[test]
    fn units_follow_the_median() {
        let line = |micros: f64| summarise(&[sample("k", "d", micros)])[0].line("t");
        assert!(line(4.25).contains("median 4.25 us"), "{}", line(4.25));
        assert!(
            line(1_250.0).contains("median 1.25 ms (min 1.25, max 1.25)"),
            "{}",
            line(1_250.0)
        );
        assert!(
            line(2_500_000.0).contains("median 2.50 s"),
            "{}",
            line(2_500_000.0)
        );
    }
}
