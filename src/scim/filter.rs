//! List filters. scim_v2 parses the RFC 7644 §3.4.2.2 grammar (with depth and term caps);
//! this module types the parsed filter against the registry. For now it accepts `eq` on the
//! attributes kept in hot columns, the lookups Okta and Entra start with; every other
//! filter is refused with 400 `invalidFilter`, never silently ignored.

use std::str::FromStr;

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter};

use super::error::ScimError;

/// An attribute kept in its own column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotAttribute {
    Id,
    UserName,
    ExternalId,
    DisplayName,
}

/// A filter the store can run: `<attribute> eq "<value>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EqFilter {
    pub attribute: HotAttribute,
    pub value: String,
}

/// Parses `raw` for a resource whose core schema is `schema_urn` and whose hot attributes
/// are `hot` (canonical names with their column).
pub fn parse_eq_filter(
    raw: &str,
    schema_urn: &str,
    hot: &[(&str, HotAttribute)],
) -> Result<EqFilter, ScimError> {
    let filter = Filter::from_str(raw)
        .map_err(|e| ScimError::invalid_filter(format!("the filter does not parse: {e}")))?;
    let Filter::Attr(AttrExp::Comparison(path, op, value)) = filter else {
        return Err(unsupported());
    };
    let attribute = resolve(&path, schema_urn, hot)?;
    if op != CompareOp::Eq {
        return Err(unsupported());
    }
    let CompValue::Str(value) = value else {
        return Err(ScimError::invalid_filter(format!(
            "`{path}` compares with a string"
        )));
    };
    Ok(EqFilter { attribute, value })
}

fn resolve(
    path: &AttrPath,
    schema_urn: &str,
    hot: &[(&str, HotAttribute)],
) -> Result<HotAttribute, ScimError> {
    let schema_ok = path
        .uri
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(schema_urn));
    let found = hot
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&path.name))
        .map(|(_, a)| *a);
    match found {
        Some(attribute) if schema_ok && path.sub_attr.is_none() => Ok(attribute),
        _ => Err(ScimError::invalid_filter(format!(
            "`{path}` is not an attribute this server can filter on"
        ))),
    }
}

fn unsupported() -> ScimError {
    ScimError::invalid_filter(
        "only `eq` on id, userName, externalId or displayName is supported for now",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER_URN;

    const HOT: &[(&str, HotAttribute)] = &[
        ("id", HotAttribute::Id),
        ("userName", HotAttribute::UserName),
        ("externalId", HotAttribute::ExternalId),
    ];

    #[test]
    fn eq_on_a_hot_attribute_parses_whatever_the_case() {
        let f = parse_eq_filter(r#"USERNAME Eq "Bjensen""#, USER_URN, HOT).unwrap();
        assert_eq!(f.attribute, HotAttribute::UserName);
        assert_eq!(f.value, "Bjensen");
        let f = parse_eq_filter(&format!(r#"{USER_URN}:userName eq "x""#), USER_URN, HOT).unwrap();
        assert_eq!(f.attribute, HotAttribute::UserName);
    }

    #[test]
    fn anything_else_is_an_invalid_filter() {
        for raw in [
            r#"userName co "b""#,
            r#"nickName eq "b""#,
            r#"userName eq "a" or userName eq "b""#,
            "userName eq",
            r#"name.familyName eq "J""#,
            "userName eq 5",
        ] {
            let err = parse_eq_filter(raw, USER_URN, HOT).unwrap_err();
            assert_eq!(
                err.scim_type,
                ScimError::invalid_filter("").scim_type,
                "{raw}"
            );
        }
    }
}
