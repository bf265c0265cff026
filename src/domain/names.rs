//! Newtypes with a private field and a fallible constructor (parse, don't validate).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A tenant slug: `[a-z0-9-]{1,63}`, safe in URLs and AMQP routing keys (DESIGN 15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(value: &str) -> Result<Self, String> {
        let ok = !value.is_empty()
            && value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "tenant slug `{value}` must match [a-z0-9-]{{1,63}}"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TenantSlug {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Most bytes a case-insensitive name (`userName`, `displayName`) may take as sent.
pub const MAX_NAME_BYTES: usize = 1024;
/// Most bytes it may take once folded: NFKC can make a string many times longer (one
/// character, U+FDFA, becomes 18), and the folded form is an index key, which PostgreSQL
/// caps at about 2 700 bytes.
pub const MAX_FOLDED_NAME_BYTES: usize = 2048;

/// Checks that `attribute`'s `value` fits the case-insensitive indexes, as sent and folded.
pub fn check_name_length(attribute: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_NAME_BYTES {
        return Err(format!(
            "`{attribute}` is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if crate::scim::fold::fold(value).len() > MAX_FOLDED_NAME_BYTES {
        return Err(format!(
            "`{attribute}` is longer than {MAX_FOLDED_NAME_BYTES} bytes once case-folded (NFKC)"
        ));
    }
    Ok(())
}

/// A SCIM `userName`: a non-empty string that is not only white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.trim().is_empty() {
            Err("`userName` must not be empty".to_owned())
        } else {
            check_name_length("userName", value)?;
            Ok(Self(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The comparison key of DESIGN 6.
    pub fn folded(&self) -> String {
        crate::scim::fold::fold(&self.0)
    }
}

/// A client-issued `externalId` (case-exact, RFC 7643 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.len() > 1024 {
            Err("`externalId` is longer than 1024 bytes".to_owned())
        } else {
            Ok(Self(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a token, for lists and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 100 {
            Err("token name must be 1 to 100 characters".to_owned())
        } else if trimmed.contains('\0') {
            // No database stores it (PostgreSQL refuses NUL in text).
            Err("token name must not contain NUL".to_owned())
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a tenant token may do (DESIGN 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The SCIM API of its tenant.
    Scim,
    /// The pull API of its tenant's events.
    EventsRead,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Scim, Scope::EventsRead];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::EventsRead => "events:read",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| format!("unknown scope `{value}` (known: scim, events:read)"))
    }

    /// Parses the space-separated form stored in the database.
    pub fn parse_list(value: &str) -> Vec<Scope> {
        value
            .split_whitespace()
            .filter_map(|s| Scope::parse(s).ok())
            .collect()
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_digits_and_dashes_up_to_63() {
        assert!(TenantSlug::parse("acme-2").is_ok());
        assert!(TenantSlug::parse(&"a".repeat(63)).is_ok());
        for bad in ["", "Acme", "a.b", "a_b", "a b", "é", &"a".repeat(64)] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_names_are_trimmed_and_never_blank_long_or_with_nul() {
        assert_eq!(TokenName::parse(" okta ").unwrap().as_str(), "okta");
        for bad in ["", "  ", "a\0b", &"a".repeat(101)] {
            assert!(TokenName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_names_must_not_be_blank() {
        assert!(UserName::parse("  ").is_err());
        assert_eq!(UserName::parse("BJensen").unwrap().folded(), "bjensen");
    }

    #[test]
    fn scopes_round_trip_through_their_stored_form() {
        let s = Scope::join(&[Scope::Scim, Scope::EventsRead]);
        assert_eq!(s, "scim events:read");
        assert_eq!(Scope::parse_list(&s), vec![Scope::Scim, Scope::EventsRead]);
        assert!(Scope::parse("admin").is_err());
    }
}

/// Names deserialize through their constructors: a request body that names a tenant, a
/// token or a scope is checked as it is read, by the same rule as everywhere else. The
/// constructor's message is the error's (a request maps it to 400 `invalidValue`).
macro_rules! deserialize_by_parse {
    ($($name:ty),*) => {$(
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                <$name>::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_by_parse!(TenantSlug, UserName, TokenName, Scope);

#[cfg(test)]
mod deserialize_tests {
    use super::*;

    #[test]
    fn names_deserialize_through_their_constructors() {
        let slug: TenantSlug = serde_json::from_str("\"acme-1\"").unwrap();
        assert_eq!(slug.as_str(), "acme-1");
        let bad = serde_json::from_str::<TenantSlug>("\"Acme\"").unwrap_err();
        assert!(
            bad.to_string().contains("must match [a-z0-9-]{1,63}"),
            "{bad}"
        );
        let name: TokenName = serde_json::from_str("\"  okta  \"").unwrap();
        assert_eq!(name.as_str(), "okta", "kept trimmed");
        assert!(serde_json::from_str::<TokenName>("\"   \"").is_err());
        let scopes: Vec<Scope> = serde_json::from_str("[\"scim\", \"events:read\"]").unwrap();
        assert_eq!(scopes, Scope::ALL);
        assert!(serde_json::from_str::<Scope>("\"admin\"").is_err());
        assert!(serde_json::from_str::<UserName>("\" \"").is_err());
    }
}
