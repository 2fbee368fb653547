//! gpu-test's benchmark suite: `cargo run --release -p gpu-test-bench`.
//!
//! It generates crates of many small tests, builds them, and measures what gpu-test adds to a
//! test run next to the floors (a statically ignored test, a passing test, cudarc's own library
//! search) and the alternatives. Every number is a median of interleaved runs, and every target is
//! a ratio against a baseline measured in the same run. It prints a Markdown table.
//!
//! `--quick` runs fewer repetitions; `--only N` runs one section (1 to 7).

mod fixtures;
mod measure;
mod sections;

use std::time::Duration;

/// What a measured line is held to.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// `ours / baseline` at most this.
    Ratio(f64),
    /// `ours` at most this.
    Absolute(Duration),
    /// Reported, not held to a number.
    None,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: u8,
    pub what: String,
    pub ours: Duration,
    pub baseline: Option<(String, Duration)>,
    pub goal: Goal,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        let (_, baseline) = self.baseline.as_ref()?;
        Some(self.ours.as_secs_f64() / baseline.as_secs_f64())
    }

    fn verdict(&self) -> String {
        match (self.goal, self.ratio()) {
            (Goal::Ratio(limit), Some(ratio)) => {
                format!("<= {limit}x: {}", if ratio <= limit { "met" } else { "missed" })
            }
            (Goal::Absolute(limit), _) => format!(
                "<= {}: {}",
                measure::format(limit),
                if self.ours <= limit { "met" } else { "missed" }
            ),
            _ => "-".to_string(),
        }
    }
}

/// Options from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Repetitions for process-level measurements.
    pub reps: usize,
    /// Run only this section.
    pub only: Option<u8>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options { reps: 11, only: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.reps = 3,
            "--only" => {
                let value = args.next().ok_or("--only needs a section number from 1 to 7")?;
                let n: u8 = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=7).contains(n))
                    .ok_or_else(|| format!("--only {value}: expected a section number from 1 to 7"))?;
                options.only = Some(n);
            }
            "-h" | "--help" => {
                println!("usage: cargo run --release -p gpu-test-bench [-- --quick] [-- --only N]");
                std::process::exit(0);
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}` (expected --quick, --only N, --help)"
                ));
            }
        }
    }
    Ok(options)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rustc = measure::clean_command("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpus} CPUs ({cpu}), {}, {rustc}", std::env::consts::ARCH)
}

fn main() {
    // Section 1 runs this binary again to time one first call in a fresh process.
    if let Some(which) = std::env::args()
        .nth(1)
        .and_then(|a| a.strip_prefix("--first-call=").map(str::to_string))
    {
        sections::first_call(&which);
        return;
    }
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("gpu-test-bench: {message}");
            std::process::exit(2);
        }
    };
    let sections: [(u8, &dyn Fn() -> Vec<Row>); 7] = [
        (1, &sections::probe),
        (2, &|| sections::suites(&options)),
        (3, &|| sections::nextest(&options)),
        (4, &|| sections::per_process(&options)),
        (5, &|| sections::builds(&options)),
        (6, &sections::timing),
        (7, &|| sections::report(&options)),
    ];
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (number, section) in sections {
        if options.only.is_some_and(|only| only != number) {
            continue;
        }
        // A broken section is reported, and the others' numbers are kept.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(section)) {
            Ok(section_rows) => rows.extend(section_rows),
            Err(_) => failed.push(number),
        }
    }
    println!("gpu-test benchmarks: {}", machine());
    println!(
        "Medians of interleaved runs ({} repetitions per process measurement, {} for the 5,000-test suites); \
         ratios are ours / baseline, measured in this run.\n",
        options.reps,
        options.reps * 3
    );
    println!("| # | measurement | gpu-test | baseline | ratio | target |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        let (baseline, ratio) = match (&row.baseline, row.ratio()) {
            (Some((name, time)), Some(ratio)) => (
                format!("{name}: {}", measure::format(*time)),
                format!("{ratio:.2}x"),
            ),
            _ => ("-".to_string(), "-".to_string()),
        };
        println!(
            "| {} | {} | {} | {baseline} | {ratio} | {} |",
            row.section,
            row.what,
            measure::format(row.ours),
            row.verdict()
        );
    }
    if !failed.is_empty() {
        eprintln!("gpu-test-bench: sections {failed:?} failed (see the messages above)");
        std::process::exit(1);
    }
}
