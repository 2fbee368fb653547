//! Parsing of the attribute's string values: versions, sizes and durations.
//!
//! Each parser returns the value or a message that says what was wrong and what is accepted; the
//! caller attaches the span of the offending literal.

/// A `major.minor` version, as CUDA releases and compute capabilities are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) major: u32,
    pub(crate) minor: u32,
}

/// Parses `"X.Y"` where both parts are decimal numbers, the major at least 1 and the minor 0 to 9
/// (the driver encodes versions as `1000 * major + 10 * minor`, so a minor of 10 cannot exist).
pub(crate) fn parse_version(text: &str, example: &str) -> Result<Version, String> {
    let accepted = format!("expected a version \"X.Y\" such as \"{example}\"");
    let trimmed = text.trim();
    let Some((major, minor)) = trimmed.split_once('.') else {
        return Err(format!("{accepted}, got \"{text}\""));
    };
    let number = |part: &str| -> Option<u32> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (Some(major), Some(minor)) = (number(major), number(minor)) else {
        return Err(format!("{accepted}, got \"{text}\""));
    };
    if major == 0 {
        return Err(format!(
            "{accepted}: the major version must be at least 1, got \"{text}\""
        ));
    }
    if minor > 9 {
        return Err(format!(
            "{accepted}: the minor version must be 0 to 9 (CUDA encodes it in one digit), got \"{text}\""
        ));
    }
    Ok(Version { major, minor })
}

/// The units `min_memory` accepts, with their size in bytes.
pub(crate) const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// `; did you mean "GiB"? ...` for a unit written in another case (`Gib`, `gb` for `GB`), a
/// prefix alone as Kubernetes writes sizes (`Gi` for `GiB`, `G` for `GiB` or `GB`), or a unit an
/// `i` away (`Gbi`); empty where nothing is near.
fn size_unit_suggestion(unit: &str) -> String {
    let names = || {
        SIZE_UNITS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| *name != "B")
    };
    let mut candidates: Vec<&str> = names().filter(|name| name.eq_ignore_ascii_case(unit)).collect();
    if candidates.is_empty() {
        // `Gi` is GiB's prefix; `G` is GiB's and GB's.
        candidates = names()
            .filter(|name| {
                let prefix = name.trim_end_matches('B');
                prefix.eq_ignore_ascii_case(unit)
                    || (unit.len() == 1 && prefix[..1].eq_ignore_ascii_case(unit))
            })
            .collect();
    }
    if candidates.is_empty() {
        // Without the `i` of the binary units, `gbi` and `GiB` meet.
        let without_i = |name: &str| name.to_ascii_lowercase().replace('i', "");
        candidates = names()
            .filter(|name| without_i(name) == without_i(unit))
            .collect();
    }
    if candidates.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = candidates.iter().map(|name| format!("\"{name}\"")).collect();
    let bits = if unit.ends_with('b') {
        ": a lowercase b would be bits"
    } else {
        ""
    };
    format!(
        "; did you mean {}? (units are case-sensitive{bits})",
        quoted.join(" or ")
    )
}

/// Parses a size such as `"16 GiB"`, `"1.5GiB"` or `"512 MB"` into bytes.
///
/// The unit is required and case-sensitive (`Gb` would read as gigabits); a decimal fraction is
/// allowed and rounded up to a whole byte.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let units: Vec<&str> = SIZE_UNITS.iter().map(|(unit, _)| *unit).collect();
    let accepted = format!(
        "expected a size such as \"16 GiB\" or \"512 MB\" (units: {})",
        units.join(", ")
    );
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = (&trimmed[..split], trimmed[split..].trim());
    if number.is_empty() {
        return Err(format!("{accepted}, got \"{text}\""));
    }
    if unit.is_empty() {
        return Err(format!("{accepted}: the unit is missing in \"{text}\""));
    }
    let Some(&(_, multiplier)) = SIZE_UNITS.iter().find(|(name, _)| *name == unit) else {
        // `1,5 GiB` or `1_000 MiB`: the number went on past where it could be read.
        let number_went_on =
            unit.starts_with([',', '_']) && unit[1..].starts_with(|c: char| c.is_ascii_digit());
        if number_went_on {
            return Err(format!(
                "{accepted}: \"{text}\" has a number with {:?} in it; write it with digits and a dot only, such \
                 as \"1.5 GiB\" or \"1000 MiB\"",
                &unit[..1]
            ));
        }
        return Err(format!(
            "{accepted}: unknown unit \"{unit}\"{}",
            size_unit_suggestion(unit)
        ));
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(format!("{accepted}, got \"{text}\""));
    }
    let too_large = || format!("\"{text}\" is too large: the most is 16 EiB");
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_large)?;
    bytes = bytes
        .checked_add(fraction_bytes(fraction, multiplier))
        .ok_or_else(too_large)?;
    if bytes == 0 {
        return Err(format!("the size must be more than zero, got \"{text}\""));
    }
    Ok(bytes)
}

/// `0.<digits>` of a unit of `multiplier` bytes, rounded up to a whole byte: exact for any number
/// of digits. The digits are multiplied by `multiplier` from the last one, as on paper, keeping
/// only the carry and whether any digit after the point of the product is not zero; the carry
/// never exceeds `multiplier`, so nothing overflows.
fn fraction_bytes(digits: &str, multiplier: u64) -> u64 {
    let mut carry = 0u64;
    let mut rest = false;
    for digit in digits.bytes().rev() {
        let product = u64::from(digit - b'0') * multiplier + carry;
        rest |= !product.is_multiple_of(10);
        carry = product / 10;
    }
    carry + u64::from(rest)
}

/// The units a duration may have, as the README lists them.
const UNITS: &str = "ms, s, m and h, or msec, sec, min and hours";

/// Parses a duration such as `"30s"`, `"500ms"`, `"2m"` or `"1h"` into milliseconds, by
/// humantime's grammar (the runtime reads `GPU_TEST_LEASE_TIMEOUT` by the same one).
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let accepted = "expected a duration such as \"30s\", \"500ms\", \"2m\" or \"1h\"";
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{accepted}: the unit is missing in \"{text}\""));
    }
    // humantime reads `5M` as five months, where five minutes was surely meant: units above hours
    // are refused, as the runtime refuses them in its variables.
    if let Some(unit) = trimmed.split(|c: char| !c.is_ascii_alphabetic()).find(|unit| {
        matches!(
            *unit,
            "d" | "day"
                | "days"
                | "w"
                | "wk"
                | "wks"
                | "week"
                | "weeks"
                | "M"
                | "month"
                | "months"
                | "y"
                | "yr"
                | "yrs"
                | "year"
                | "years"
        )
    }) {
        let note = if unit.starts_with('M') || unit.starts_with("month") {
            "M is months; minutes are m"
        } else {
            "give a day as 24h"
        };
        return Err(format!(
            "{accepted}, got \"{text}\": its unit \"{unit}\" is above hours, which are not taken ({note})"
        ));
    }
    let duration = humantime::parse_duration(trimmed).map_err(|error| match error {
        // humantime's own list names units above hours, which are refused above.
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("{accepted}, got \"{text}\": unknown unit \"{unit}\" (the units are {UNITS})")
        }
        error => format!("{accepted}, got \"{text}\" ({error})"),
    })?;
    if duration.is_zero() {
        return Err(format!("the duration must be more than zero, got \"{text}\""));
    }
    let ms = u64::try_from(duration.as_millis()).map_err(|_| format!("\"{text}\" is too large"))?;
    if ms == 0 {
        return Err(format!("the duration must be at least 1ms, got \"{text}\""));
    }
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "the duration is counted in whole milliseconds, got \"{text}\" (write it in ms, such as \"2ms\")"
        ));
    }
    Ok(ms)
}

/// Checks a cargo feature name as cargo does: a letter (Unicode's, as cargo allows), digit or `_`
/// first, then letters, digits, `_`, `-`, `+` or `.`.
pub(crate) fn check_feature_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a cargo feature name: give the name of a feature of this crate, such as \"cuda\" \
             (letters, digits, `_`, `-`, `+` and `.`, not starting with `-`, `+` or `.`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_follow_cargo() {
        for good in ["cuda", "cuda-12", "_x", "a+b", "v1.2", "grafikkarte-ä"] {
            assert_eq!(check_feature_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-cuda", "cu da", "dep:cuda", ".x"] {
            assert!(check_feature_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("11.8", "11.8"), Ok(Version { major: 11, minor: 8 }));
        assert_eq!(parse_version("12.0", "11.8"), Ok(Version { major: 12, minor: 0 }));
        assert_eq!(parse_version(" 9.0 ", "8.0"), Ok(Version { major: 9, minor: 0 }));
    }

    #[test]
    fn bad_versions_say_what_is_accepted() {
        for bad in ["11", "eleven", "11.", ".8", "11.8.1", "-1.0", "11.x", "", "1 1.8"] {
            let err = parse_version(bad, "11.8").unwrap_err();
            assert!(err.contains("\"X.Y\" such as \"11.8\""), "{bad}: {err}");
        }
        assert!(parse_version("0.9", "11.8").unwrap_err().contains("at least 1"));
        assert!(parse_version("11.10", "11.8").unwrap_err().contains("0 to 9"));
    }

    #[test]
    fn sizes_parse_in_every_unit() {
        assert_eq!(parse_size("16 GiB"), Ok(16 << 30));
        assert_eq!(parse_size("16GiB"), Ok(16 << 30));
        assert_eq!(parse_size("1 B"), Ok(1));
        assert_eq!(parse_size("3 KiB"), Ok(3 << 10));
        assert_eq!(parse_size("5 MiB"), Ok(5 << 20));
        assert_eq!(parse_size("2 TiB"), Ok(2 << 40));
        assert_eq!(parse_size("2 KB"), Ok(2_000));
        assert_eq!(parse_size("512 MB"), Ok(512_000_000));
        assert_eq!(parse_size("80 GB"), Ok(80_000_000_000));
        assert_eq!(parse_size("1 TB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("0.1 KB"), Ok(100));
        // Rounded up to whole bytes.
        assert_eq!(parse_size("0.001 KiB"), Ok(2));
    }

    #[test]
    fn bad_sizes_say_what_is_accepted() {
        assert!(parse_size("16").unwrap_err().contains("unit is missing"));
        for (unit, meant) in [
            (
                "gb",
                "\"GB\"? (units are case-sensitive: a lowercase b would be bits)",
            ),
            (
                "Gib",
                "\"GiB\"? (units are case-sensitive: a lowercase b would be bits)",
            ),
            ("Gi", "\"GiB\"? (units are case-sensitive)"),
            ("G", "\"GiB\" or \"GB\"? (units are case-sensitive)"),
            ("mi", "\"MiB\"? (units are case-sensitive)"),
            ("Gbi", "\"GiB\" or \"GB\"? (units are case-sensitive)"),
        ] {
            let error = parse_size(&format!("16 {unit}")).unwrap_err();
            assert!(
                error.ends_with(&format!("unknown unit \"{unit}\"; did you mean {meant}")),
                "{error}"
            );
        }
        assert!(
            parse_size("16 gigs")
                .unwrap_err()
                .ends_with("unknown unit \"gigs\"")
        );
        for (text, separator) in [("1,5 GiB", "\",\""), ("1_000 MiB", "\"_\"")] {
            let error = parse_size(text).unwrap_err();
            assert!(
                error.contains(&format!(
                    "has a number with {separator} in it; write it with digits and a dot only"
                )),
                "{error}"
            );
        }
        assert!(parse_size("16 Gb").unwrap_err().contains("units: B, KiB"));
        assert!(parse_size("GiB").unwrap_err().contains("got \"GiB\""));
        assert!(parse_size("1..5 GiB").is_err());
        assert!(parse_size("1. GiB").is_err());
        assert!(parse_size("0 GiB").unwrap_err().contains("more than zero"));
        assert!(parse_size("99999999999 TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn long_fractions_are_exact() {
        // Just under 1 TB: rounded up to exactly 1 TB.
        assert_eq!(
            parse_size("0.999999999999999999999999999 TB"),
            Ok(1_000_000_000_000)
        );
        assert_eq!(
            parse_size("0.99999999999999999999999999999999999999999999999999 TiB"),
            Ok(1 << 40)
        );
        // A tiny value written with more than 38 digits is a byte, not "too large".
        assert_eq!(parse_size("0.000000000000000000000000000000000000001 B"), Ok(1));
        assert_eq!(
            parse_size("0.000000000000000000000000000000000000000001 TiB"),
            Ok(1)
        );
        // Trailing zeros change nothing.
        assert_eq!(
            parse_size("1.5000000000000000000000000000000000000000000 GiB"),
            Ok(3 << 29)
        );
        // 2^-40 TiB is exactly one byte, 40 digits after the point.
        assert_eq!(
            parse_size("0.0000000000009094947017729282379150390625 TiB"),
            Ok(1)
        );
        assert_eq!(
            parse_size("0.00000000000090949470177292823791503906251 TiB"),
            Ok(2)
        );
        // The sum past 16 EiB is still an error, not an overflow.
        assert!(
            parse_size("16777215.99999999999999999999999999999 TiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(parse_size("16777215.999999999999 TiB"), Ok(u64::MAX));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms(" 5 s "), Ok(5_000));
        assert!(parse_duration_ms("30").unwrap_err().contains("unit is missing"));
        assert_eq!(parse_duration_ms("30 sec"), Ok(30_000));
        let error = parse_duration_ms("30 parsecs").unwrap_err();
        assert!(
            error.ends_with(
                "got \"30 parsecs\": unknown unit \"parsecs\" (the units are ms, s, m and h, or msec, sec, min and hours)"
            ),
            "{error}"
        );
        assert!(parse_duration_ms("500us").unwrap_err().contains("at least 1ms"));
        assert!(
            parse_duration_ms("1500us")
                .unwrap_err()
                .contains("whole milliseconds")
        );
        assert_eq!(parse_duration_ms("2000us"), Ok(2));
        for (above_hours, note) in [
            ("5M", "(M is months; minutes are m)"),
            ("2 months", "(M is months; minutes are m)"),
            ("1d", "(give a day as 24h)"),
            ("2 weeks", "(give a day as 24h)"),
            ("1y", "(give a day as 24h)"),
        ] {
            let error = parse_duration_ms(above_hours).unwrap_err();
            assert!(
                error.ends_with(&format!("is above hours, which are not taken {note}")),
                "{error}"
            );
        }
        assert!(parse_duration_ms("0s").unwrap_err().contains("more than zero"));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
    }
}
