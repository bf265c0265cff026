//! Checks a POST/PUT body against the registry and canonicalises it (DESIGN 4): the core
//! URN is required, attribute names are matched case-insensitively and written in their
//! registered spelling, readOnly attributes and `password` are dropped (RFC 7644 §3.3,
//! §3.5.1), registered attributes are type-checked, and anything unknown is kept as sent.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{AttrType, Attribute, Mutability, Registry, ResourceType};

/// Validates `body` as a full representation of `resource_type` and returns the document to
/// store: canonical names, registered values typed, no readOnly attributes, no password.
pub fn validate_resource(
    registry: &Registry,
    resource_type: &ResourceType,
    body: Value,
) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    let core = registry
        .schema(&resource_type.schema)
        .ok_or_else(|| ScimError::new(500, None, "resource type without a schema"))?;

    let mut schemas = schema_list(&body)?;
    if !schemas
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&resource_type.schema))
    {
        return Err(ScimError::invalid_syntax(format!(
            "`schemas` must contain {}",
            resource_type.schema
        )));
    }

    let mut out = Map::new();
    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if value.is_null() {
            // RFC 7643 §2.5: null is "unassigned".
            continue;
        }
        if let Some(attr) = registry
            .common_attribute(&key)
            .or_else(|| core.attribute(&key))
        {
            if matches!(
                attr.mutability,
                Mutability::ReadOnly | Mutability::WriteOnly
            ) {
                continue;
            }
            if let Some(v) = check_value(attr, value, &attr.name)? {
                insert_once(&mut out, attr.name.clone(), v)?;
            }
        } else if key.len() > 4 && super::starts_with_ci(&key, "urn:") {
            let registered = resource_type
                .extensions
                .iter()
                .find(|e| e.schema.eq_ignore_ascii_case(&key))
                .and_then(|e| registry.schema(&e.schema));
            match registered {
                Some(ext) => {
                    let Value::Object(fields) = value else {
                        return Err(ScimError::invalid_value(format!(
                            "extension {} must be an object",
                            ext.id
                        )));
                    };
                    let mut ext_out = Map::new();
                    for (k, v) in fields {
                        if v.is_null() {
                            continue;
                        }
                        match ext.attribute(&k) {
                            Some(attr) if attr.mutability == Mutability::ReadOnly => {}
                            Some(attr) => {
                                let path = format!("{}:{}", ext.id, attr.name);
                                if let Some(v) = check_value(attr, v, &path)? {
                                    insert_once(&mut ext_out, attr.name.clone(), v)?;
                                }
                            }
                            None => insert_once(&mut ext_out, k, v)?,
                        }
                    }
                    if !ext_out.is_empty() {
                        if !schemas.iter().any(|s| s.eq_ignore_ascii_case(&ext.id)) {
                            schemas.push(ext.id.clone());
                        }
                        insert_once(&mut out, ext.id.clone(), Value::Object(ext_out))?;
                    }
                }
                None => insert_once(&mut out, key, value)?,
            }
        } else {
            insert_once(&mut out, key, value)?;
        }
    }

    for attr in core.attributes.iter().filter(|a| a.required) {
        if !out.contains_key(&attr.name) {
            return Err(ScimError::invalid_value(format!(
                "required attribute `{}` is missing",
                attr.name
            )));
        }
    }

    // Canonical spelling of the registered URNs; extension URNs not sent as keys are left
    // out, unknown ones are kept as sent.
    let schemas: Vec<Value> = schemas
        .into_iter()
        .filter_map(|s| match registry.schema(&s) {
            Some(known) if known.id == resource_type.schema || out.contains_key(&known.id) => {
                Some(Value::String(known.id.clone()))
            }
            Some(_) => None,
            None => Some(Value::String(s)),
        })
        .collect();
    out.insert("schemas".to_owned(), Value::Array(dedup(schemas)));
    Ok(out)
}

fn dedup(values: Vec<Value>) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::with_capacity(values.len());
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

fn schema_list(body: &Map<String, Value>) -> Result<Vec<String>, ScimError> {
    let Some((_, value)) = body.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")) else {
        return Err(ScimError::invalid_syntax("`schemas` is missing"));
    };
    let Value::Array(items) = value else {
        return Err(ScimError::invalid_syntax(
            "`schemas` must be an array of URNs",
        ));
    };
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| ScimError::invalid_syntax("`schemas` must be an array of URNs"))
        })
        .collect()
}

fn insert_once(map: &mut Map<String, Value>, key: String, value: Value) -> Result<(), ScimError> {
    if map.keys().any(|k| k.eq_ignore_ascii_case(&key)) {
        return Err(ScimError::invalid_syntax(format!(
            "attribute `{key}` is given more than once"
        )));
    }
    map.insert(key, value);
    Ok(())
}

/// Checks one attribute value; `None` means "unassigned" (null or an empty list).
pub fn check_value(attr: &Attribute, value: Value, path: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi_valued {
        let items = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = check_single(attr, item, path)? {
                out.push(v);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    if value.is_array() {
        return Err(ScimError::invalid_value(format!(
            "`{path}` is single-valued, not an array"
        )));
    }
    check_single(attr, value, path)
}

/// Checks one element of a multi-valued attribute, as [`check_value`] checks each element
/// of its array (a group's members are checked one at a time as they are read).
pub fn check_item(attr: &Attribute, value: Value, path: &str) -> Result<Option<Value>, ScimError> {
    check_single(attr, value, path)
}

fn check_single(attr: &Attribute, value: Value, path: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |expected: &str| {
        Err(ScimError::invalid_value(format!(
            "`{path}` must be {expected}"
        )))
    };
    match (attr.ty, value) {
        (_, Value::Null) => Ok(None),
        (AttrType::Complex, Value::Object(fields)) => {
            let mut out = Map::new();
            for (k, v) in fields {
                if v.is_null() {
                    continue;
                }
                match attr.sub_attribute(&k) {
                    Some(sub) if sub.mutability == Mutability::ReadOnly => {}
                    Some(sub) => {
                        let sub_path = format!("{path}.{}", sub.name);
                        if let Some(v) = check_value(sub, v, &sub_path)? {
                            insert_once(&mut out, sub.name.clone(), v)?;
                        }
                    }
                    None => insert_once(&mut out, k, v)?,
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        (AttrType::Complex, _) => wrong("an object"),
        (AttrType::Boolean, Value::Bool(b)) => Ok(Some(Value::Bool(b))),
        // Entra sends booleans as "True"/"False".
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Some(Value::Bool(true)))
        }
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Some(Value::Bool(false)))
        }
        (AttrType::Boolean, _) => wrong("a boolean"),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(Value::Number(n)))
        }
        (AttrType::Integer, _) => wrong("an integer"),
        (AttrType::Decimal, Value::Number(n)) => Ok(Some(Value::Number(n))),
        (AttrType::Decimal, _) => wrong("a number"),
        (AttrType::DateTime, Value::String(s)) => {
            if super::time::parse(&s).is_some() {
                Ok(Some(Value::String(s)))
            } else {
                wrong("an RFC 3339 date-time")
            }
        }
        (AttrType::DateTime, _) => wrong("an RFC 3339 date-time string"),
        (AttrType::String | AttrType::Binary | AttrType::Reference, Value::String(s)) => {
            Ok(Some(Value::String(s)))
        }
        (AttrType::String | AttrType::Binary | AttrType::Reference, _) => wrong("a string"),
    }
}

/// Deepest nesting a body may have (a SCIM resource needs four or five levels).
const MAX_DEPTH: usize = 64;
/// Largest magnitude a number may have: beyond it PostgreSQL's `jsonb` keeps digits that
/// `f64` cannot read back.
const MAX_MAGNITUDE: f64 = 1e300;

/// Refuses what valid JSON allows and the databases cannot store or give back: NUL in a
/// string or a key (PostgreSQL text), numbers near the end of the `f64` range, and
/// nesting deeper than any SCIM body needs.
pub fn storable(value: &Value, depth: usize) -> Result<(), ScimError> {
    if depth > MAX_DEPTH {
        return Err(ScimError::invalid_value(format!(
            "the body nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let nul = |s: &str| {
        if s.contains('\0') {
            Err(ScimError::invalid_value(
                "NUL characters (\\u0000) are not accepted in strings or names",
            ))
        } else {
            Ok(())
        }
    };
    match value {
        Value::String(s) => nul(s),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.abs() <= MAX_MAGNITUDE => Ok(()),
            _ => Err(ScimError::invalid_value(format!(
                "the number {n} is out of range"
            ))),
        },
        Value::Array(items) => items.iter().try_for_each(|v| storable(v, depth + 1)),
        Value::Object(fields) => fields.iter().try_for_each(|(k, v)| {
            nul(k)?;
            storable(v, depth + 1)
        }),
        Value::Bool(_) | Value::Null => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER_URN, USER_URN};
    use serde_json::json;

    fn user(body: Value) -> Result<Map<String, Value>, ScimError> {
        let r = Registry::core();
        validate_resource(r, r.user(), body)
    }

    #[test]
    fn names_are_canonicalised_and_readonly_attributes_dropped() {
        let doc = user(json!({
            "schemas": [USER_URN],
            "UserName": "bjensen",
            "id": "client-id",
            "meta": {"version": "W/\"9\""},
            "groups": [{"value": "g"}],
            "password": "hunter2",
            "ACTIVE": "True",
            "emails": [{"VALUE": "b@example.com", "Primary": "false"}],
        }))
        .unwrap();
        assert_eq!(doc["userName"], "bjensen");
        assert_eq!(doc["active"], true);
        assert_eq!(doc["emails"][0]["value"], "b@example.com");
        assert_eq!(doc["emails"][0]["primary"], false);
        for gone in ["id", "meta", "groups", "password", "UserName"] {
            assert!(!doc.contains_key(gone), "{gone} kept");
        }
    }

    #[test]
    fn unknown_attributes_and_extensions_are_kept_as_sent() {
        let doc = user(json!({
            "schemas": [USER_URN, "urn:example:custom:1.0:User"],
            "userName": "b",
            "favouriteColour": "teal",
            "urn:example:custom:1.0:User": {"badge": 7},
            ENTERPRISE_USER_URN: {"Department": "R&D", "manager": {"value": "m1", "displayName": "x"}},
        }))
        .unwrap();
        assert_eq!(doc["favouriteColour"], "teal");
        assert_eq!(doc["urn:example:custom:1.0:User"]["badge"], 7);
        assert_eq!(doc[ENTERPRISE_USER_URN]["department"], "R&D");
        assert_eq!(doc[ENTERPRISE_USER_URN]["manager"], json!({"value": "m1"}));
        assert_eq!(
            doc["schemas"],
            json!([USER_URN, "urn:example:custom:1.0:User", ENTERPRISE_USER_URN])
        );
    }

    #[test]
    fn bad_bodies_are_rejected_with_the_right_scim_type() {
        use scim_v2::models::errors::ScimType;
        let cases = [
            (json!([]), ScimType::InvalidSyntax),
            (json!({"userName": "b"}), ScimType::InvalidSyntax),
            (
                json!({"schemas": USER_URN, "userName": "b"}),
                ScimType::InvalidSyntax,
            ),
            (json!({"schemas": [USER_URN]}), ScimType::InvalidValue),
            (
                json!({"schemas": [USER_URN], "userName": 5}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "b", "active": "yes"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "b", "name": "Barbara"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_URN], "userName": "b", "userNAME": "c"}),
                ScimType::InvalidSyntax,
            ),
        ];
        for (body, expected) in cases {
            let err = user(body.clone()).unwrap_err();
            assert_eq!(err.scim_type, Some(expected), "{body}");
            assert_eq!(err.status, 400);
        }
    }
}
