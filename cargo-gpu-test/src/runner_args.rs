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
/// `--long=value`, `-S value` or `-Svalue`; the first, where it is given more than once.
pub(crate) fn option_value(words: &[String], long: &str, short: Option<&str>) -> Option<String> {
    option_values(words, long, short).into_iter().next()
}

/// Every value of option `long` (or `short`) among the runner's `words`, in order.
pub(crate) fn option_values(words: &[String], long: &str, short: Option<&str>) -> Vec<String> {
    let mut values = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == long || Some(word.as_str()) == short {
            values.extend(words.next().cloned());
        } else if let Some(value) = word.strip_prefix(long).and_then(|rest| rest.strip_prefix('=')) {
            values.push(value.to_string());
        } else if let Some(value) = short
            .and_then(|short| word.strip_prefix(short))
            .filter(|v| !v.is_empty())
        {
            values.push(value.trim_start_matches('=').to_string());
        }
    }
    values
}
