//! "Did you mean ...?" for misspelt names.

/// The candidate closest to `name`, if one is within two edits of it.
pub(crate) fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::levenshtein(name, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_name_within_two_edits_is_suggested() {
        let known = ["GPU_TEST_STRICT", "GPU_TEST_REPORT"];
        assert_eq!(nearest("GPU_TEST_STIRCT", &known), Some("GPU_TEST_STRICT"));
        assert_eq!(nearest("GPU_TEST_REPROT", &known), Some("GPU_TEST_REPORT"));
        assert_eq!(nearest("GPU_TEST_OTHER", &known), None);
    }
}
