//! Pure SCIM protocol: the schema registry, request validation, case folding, time format,
//! filters, wire types and the RFC 7644 §3.12 error vocabulary. Imports nothing of scimbus.

pub mod discovery;
pub mod error;
pub mod extension;
pub mod fold;
pub mod patch;
pub mod projection;
pub mod query;
pub mod resource;
pub mod schema;
pub mod time;
pub mod validate;

/// Whether `text` starts with `prefix`, ASCII case-insensitively, without slicing inside a
/// character (`text` is client input and may hold any UTF-8).
pub fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod prefix_tests {
    use super::starts_with_ci;

    #[test]
    fn prefixes_compare_without_splitting_characters() {
        assert!(starts_with_ci("URN:x", "urn:"));
        assert!(!starts_with_ci("0\u{10000}", "urn:"));
        assert!(!starts_with_ci("Useé", "User"));
        assert!(!starts_with_ci("ur", "urn:"));
    }
}
