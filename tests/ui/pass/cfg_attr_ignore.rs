//! `#[cfg_attr(predicate, ignore)]` ignores a test when the predicate holds, under gpu-test's own
//! harness (`harness = false`) as under libtest, and puts `ignore` on no item where it would be an
//! unused attribute.
#![deny(warnings)]

use gpu_test_runtime::{gpu_test, Gpu};

#[gpu_test]
#[cfg_attr(all(), ignore = "holds")]
fn ignored_with_a_reason(_gpu: &Gpu) {}

#[gpu_test]
#[cfg_attr(all(), allow(unused_variables), cfg_attr(not(any()), ignore))]
fn ignored_in_a_nested_cfg_attr() -> Result<(), String> {
    let unused = 1;
    Ok(())
}

#[gpu_test]
#[cfg_attr(any(), ignore = "does not hold")]
fn not_ignored(_gpu: &Gpu) {}

fn main() {
    // Run as the test binary of a `harness = false` target, by the check below.
    if std::env::var_os("CFG_ATTR_IGNORE_AS_HARNESS").is_some() {
        gpu_test_runtime::main();
    }
    assert!(__GPU_TEST_DEF_ignored_with_a_reason.ignored);
    assert_eq!(__GPU_TEST_DEF_ignored_with_a_reason.ignore_reason, Some("holds"));
    assert!(__GPU_TEST_DEF_ignored_in_a_nested_cfg_attr.ignored);
    assert_eq!(__GPU_TEST_DEF_ignored_in_a_nested_cfg_attr.ignore_reason, None);
    assert!(!__GPU_TEST_DEF_not_ignored.ignored);
    assert_eq!(__GPU_TEST_DEF_not_ignored.ignore_reason, None);

    // The harness lists exactly those as ignored (strict, so that a test unmet on this machine is
    // not listed as ignored too).
    let listed = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--list", "--format", "terse", "--ignored"])
        .env("CFG_ATTR_IGNORE_AS_HARNESS", "1")
        .env("GPU_TEST_STRICT", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    let mut names: Vec<&str> = stdout.lines().filter_map(|l| l.strip_suffix(": test")).collect();
    names.sort();
    assert_eq!(names, ["ignored_in_a_nested_cfg_attr", "ignored_with_a_reason"], "{stdout}");
}
