//! The one case-folding rule of scimbus (DESIGN 6): NFKC, then Unicode lowercase.
//! Computed in Rust and stored in `*_ci` columns, so uniqueness, `eq` and sorting agree on
//! PostgreSQL and SQLite whatever their collations.

use unicode_normalization::UnicodeNormalization;

/// Folds a case-insensitive value (`userName`, group `displayName`, …) to its comparison key.
pub fn fold(value: &str) -> String {
    value.nfkc().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folding_ignores_case_and_compatibility_forms() {
        assert_eq!(fold("BJensen@Example.COM"), "bjensen@example.com");
        assert_eq!(fold("ÅNGSTRÖM"), fold("ångström"));
        assert_eq!(fold("\u{212B}"), fold("\u{00E5}"));
        assert_eq!(fold("ﬁnn"), "finn");
    }
}
