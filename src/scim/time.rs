//! The one timestamp format of scimbus: UTC, millisecond precision, fixed width
//! (`2026-01-31T12:00:00.000Z`), so text order is time order on both backends (DESIGN 6).

use chrono::{DateTime, SecondsFormat, Utc};

/// Width of every stored timestamp.
pub const TIMESTAMP_WIDTH: usize = 24;

/// Formats an instant in the fixed-width form.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 instant (any offset, any precision) to UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_utc_milliseconds() {
        let at = parse("2026-01-02T03:04:05+02:00").unwrap();
        assert_eq!(format(at), "2026-01-02T01:04:05.000Z");
        assert_eq!(format(at).len(), TIMESTAMP_WIDTH);
    }
}
