//! The runner's command line as `cargo gpu-test run` reads it: the words before `--` (after it
//! they are the test binaries') and the values of its options.

use std::ffi::OsString;

/// The runner's arguments before `--` (after it they are the test binaries'), as text.
pub(crate) fn runner_words(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|word| word != "--")
        .collect()
}

/// The value of option `long` (or `short`) among the runner's `words`: `--long value`,
/// `--long=value`, `-S value` or `-Svalue`.
pub(crate) fn option_value(words: &[String], long: &str, short: Option<&str>) -> Option<String> {
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == long || Some(word.as_str()) == short {
            return words.next().cloned();
        }
        if let Some(value) = word.strip_prefix(long).and_then(|rest| rest.strip_prefix('=')) {
            return Some(value.to_string());
        }
        if let Some(value) = short
            .and_then(|short| word.strip_prefix(short))
            .filter(|v| !v.is_empty())
        {
            return Some(value.trim_start_matches('=').to_string());
        }
    }
    None
}
