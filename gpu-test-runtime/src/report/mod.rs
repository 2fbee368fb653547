//! What happened, told: the result model, the lines printed while tests run and the summary after
//! them, GitHub Actions output, and the JSON and JUnit report files. Only this module writes test
//! output.

pub(crate) mod console;
pub(crate) mod file;
pub(crate) mod github;
pub(crate) mod model;
pub(crate) mod outcomes;
pub(crate) mod state;

use std::sync::{Arc, OnceLock};

/// The test binary's name without cargo's hash (`gpu` for `gpu-0f26593203894dfd`): the suite its
/// tests are reported under.
pub(crate) fn suite_name() -> Arc<str> {
    static NAME: OnceLock<Arc<str>> = OnceLock::new();
    NAME.get_or_init(|| {
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
    })
    .clone()
}
