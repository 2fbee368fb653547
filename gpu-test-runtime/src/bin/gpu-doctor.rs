//! `gpu-doctor`: why this machine can or cannot run GPU tests.
//!
//! Exit status: 0 when at least one CUDA device is usable (driver initialised, a context opens,
//! compute mode allows it), 1 when none is, 2 for a usage error or a diagnosis that cannot be
//! written.

use std::process::ExitCode;

use gpu_test_runtime::Diagnosis;

const USAGE: &str = "usage: gpu-doctor [--json]

Prints this machine's CUDA diagnosis: driver, devices, toolkit, environment, and
each finding with a fix.

  --json      print the diagnosis as JSON
  --version   print gpu-doctor's version
  --help      print this help

Exit status: 0 if at least one CUDA device is usable, 1 if none is, 2 on bad usage
or when the diagnosis cannot be written.";

fn main() -> ExitCode {
    let mut json = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json = true,
            "-V" | "--version" => {
                println!("gpu-doctor {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("gpu-doctor: unknown argument `{other}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    Diagnosis::new(gpu_test_runtime::probe()).print_and_exit(json, "gpu-doctor")
}
