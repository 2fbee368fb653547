//! `major.minor` versions: CUDA releases, NVRTC releases and compute capabilities.

use std::fmt;

/// A `major.minor` version such as CUDA 11.8 or compute capability 8.0.
///
/// Ordered by major, then minor, so `Version::new(12, 0) > Version::new(11, 8)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The major part: 11 in 11.8.
    pub major: u32,
    /// The minor part: 8 in 11.8.
    pub minor: u32,
}

impl Version {
    /// A version from its two parts.
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }

    /// Decodes the driver's integer form, `1000 * major + 10 * minor` (12040 is CUDA 12.4), as
    /// `cuDriverGetVersion` returns it. Zero and negative values are not versions.
    pub fn from_cuda_int(encoded: i32) -> Option<Version> {
        let encoded = u32::try_from(encoded).ok().filter(|&v| v >= 1000)?;
        Some(Version::new(encoded / 1000, (encoded % 1000) / 10))
    }

    /// The compute capability written as an architecture: `sm_80` for 8.0.
    pub fn sm(self) -> String {
        format!("sm_{}{}", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_integers_decode() {
        assert_eq!(Version::from_cuda_int(12040), Some(Version::new(12, 4)));
        assert_eq!(Version::from_cuda_int(11080), Some(Version::new(11, 8)));
        assert_eq!(Version::from_cuda_int(13000), Some(Version::new(13, 0)));
        assert_eq!(Version::from_cuda_int(0), None);
        assert_eq!(Version::from_cuda_int(-5), None);
    }

    #[test]
    fn versions_order_and_print() {
        assert!(Version::new(12, 0) > Version::new(11, 8));
        assert!(Version::new(11, 8) > Version::new(11, 4));
        assert_eq!(Version::new(7, 5).to_string(), "7.5");
        assert_eq!(Version::new(7, 5).sm(), "sm_75");
    }
}
