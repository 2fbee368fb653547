//! The minimum Linux driver release for each CUDA release (NVIDIA's CUDA release notes, table 3),
//! so that a reason can say which driver a required CUDA version needs.

use crate::cuda::version::Version;

/// `(CUDA release, minimum Linux driver release)`, oldest first.
pub(crate) const MIN_LINUX_DRIVER: &[(Version, &str)] = &[
    (Version::new(10, 0), "410.48"),
    (Version::new(10, 1), "418.39"),
    (Version::new(10, 2), "440.33"),
    (Version::new(11, 0), "450.51.05"),
    (Version::new(11, 1), "455.23"),
    (Version::new(11, 2), "460.27.03"),
    (Version::new(11, 3), "465.19.01"),
    (Version::new(11, 4), "470.42.01"),
    (Version::new(11, 5), "495.29.05"),
    (Version::new(11, 6), "510.39.01"),
    (Version::new(11, 7), "515.43.04"),
    (Version::new(11, 8), "520.61.05"),
    (Version::new(12, 0), "525.60.13"),
    (Version::new(12, 1), "530.30.02"),
    (Version::new(12, 2), "535.54.03"),
    (Version::new(12, 3), "545.23.06"),
    (Version::new(12, 4), "550.54.14"),
    (Version::new(12, 5), "555.42.02"),
    (Version::new(12, 6), "560.28.03"),
    (Version::new(12, 8), "570.26"),
    (Version::new(12, 9), "575.51.03"),
    (Version::new(13, 0), "580.65.06"),
    (Version::new(13, 1), "590.44.01"),
    (Version::new(13, 2), "595.45.04"),
];

/// The oldest driver release that supports `cuda`: the entry for that release, or for the next
/// release in the table when `cuda` itself is not one (12.7 was never released, so 12.8's).
/// `None` when `cuda` is older or newer than every release the table knows: the next release's
/// driver would ask for more than an older release needs.
pub(crate) fn min_driver_for(cuda: Version) -> Option<&'static str> {
    if older_than_known(cuda) {
        return None;
    }
    MIN_LINUX_DRIVER
        .iter()
        .find(|(release, _)| *release >= cuda)
        .map(|(_, driver)| *driver)
}

/// Whether `cuda` is older than every release the table knows.
pub(crate) fn older_than_known(cuda: Version) -> bool {
    MIN_LINUX_DRIVER.first().is_some_and(|(oldest, _)| cuda < *oldest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_releases_map_to_their_driver() {
        assert_eq!(min_driver_for(Version::new(11, 8)), Some("520.61.05"));
        assert_eq!(min_driver_for(Version::new(12, 4)), Some("550.54.14"));
        assert_eq!(min_driver_for(Version::new(13, 0)), Some("580.65.06"));
    }

    #[test]
    fn gaps_use_the_next_release_and_the_future_is_unknown() {
        assert_eq!(min_driver_for(Version::new(12, 7)), Some("570.26"));
        assert_eq!(min_driver_for(Version::new(10, 2)), Some("440.33"));
        assert_eq!(min_driver_for(Version::new(9, 2)), None);
        assert!(older_than_known(Version::new(9, 2)));
        assert!(!older_than_known(Version::new(99, 0)));
        assert_eq!(min_driver_for(Version::new(14, 0)), None);
    }

    #[test]
    fn the_table_is_sorted() {
        assert!(MIN_LINUX_DRIVER.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
