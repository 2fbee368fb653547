//! What happened, told: the result model, the lines printed while tests run and the summary after
//! them, GitHub Actions output, and the JSON and JUnit report files. Only this module writes test
//! output.

pub(crate) mod console;
pub(crate) mod file;
pub(crate) mod github;
pub(crate) mod libtest;
pub(crate) mod model;
pub(crate) mod outcomes;
pub(crate) mod state;
pub(crate) mod store;

use std::sync::Arc;

use crate::settings::Settings;

/// The suite a test binary's tests are reported under: nextest's binary id when nextest runs
/// it, else `package::target` as the binary's tests name it (`from_tests`), else the binary's
/// file name without cargo's hash. Two test binaries of a workspace never share one.
pub(crate) fn suite_name(settings: &Settings, from_tests: Option<String>) -> Arc<str> {
    if let Some(id) = &settings.nextest.binary_id {
        return Arc::from(id.as_str());
    }
    if let Some(suite) = from_tests {
        return Arc::from(suite);
    }
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gpu-tests".to_string());
    let name = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => &stem,
    };
    Arc::from(name)
}
