//! The one timestamp format of scimbus: UTC, millisecond precision, fixed width
//! (`2026-01-31T12:00:00.000Z`), so text order is time order on both backends (DESIGN 6).

use chrono::{DateTime, SecondsFormat, Utc};

/// Width of every stored timestamp.
pub const TIMESTAMP_WIDTH: usize = 24;

/// Formats an instant in the fixed-width form.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 instant (any offset, any precision) to UTC. Instants whose UTC year
/// falls outside 0000–9999 (`9999-12-31T23:30:00-01:00`) are refused: they have no
/// fixed-width form.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| (0..=9999).contains(&t.year()))
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

    #[test]
    fn instants_without_a_fixed_width_form_are_refused() {
        for text in ["9999-12-31T23:30:00-01:00", "0000-01-01T00:30:00+01:00"] {
            assert_eq!(parse(text), None, "{text}");
        }
        for text in ["9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z"] {
            assert_eq!(
                format(parse(text).unwrap()).len(),
                TIMESTAMP_WIDTH,
                "{text}"
            );
        }
    }
}
