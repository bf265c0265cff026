//! Checks a POST/PUT body against the registry and canonicalises it (DESIGN 4): the core
//! URN is required, attribute names are matched case-insensitively and written in their
//! registered spelling, readOnly attributes and `password` are dropped (RFC 7644 §3.3,
//! §3.5.1), registered attributes are type-checked, and anything unknown is kept as sent.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{AttrType, Attribute, Mutability, Registry, ResourceType};

/// Most attribute values one resource may hold: every attribute and sub-attribute name,
/// every value of a multi-valued attribute and every entry of `schemas` counts; a group's
/// `members` do not (they are rows, DESIGN 7). A body past it is refused before any work
/// proportional to it is done.
pub const MAX_ATTRIBUTES: usize = 1_000;

/// Most bytes of JSON that what the registry does not describe (unknown attributes, and
/// extensions no schema is registered for) may take in one resource.
pub const MAX_UNREGISTERED_BYTES: usize = 64 * 1024;

/// Counts the attribute values of `value` (object members and array elements, at every
/// depth), stopping as soon as the count passes `limit`.
pub fn count_values(value: &Value, limit: usize) -> usize {
    fn walk(value: &Value, count: &mut usize, limit: usize) {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(fields) => Box::new(fields.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => return,
        };
        for child in children {
            *count += 1;
            if *count > limit {
                return;
            }
            walk(child, count, limit);
        }
    }
    let mut count = 0;
    walk(value, &mut count, limit);
    count
}

/// Refuses a resource body with more than [`MAX_ATTRIBUTES`] attribute values (`members`
/// of a group excluded).
fn check_size(body: &Map<String, Value>, group: bool) -> Result<(), ScimError> {
    let mut count = 0;
    for (key, value) in body {
        if group && key.eq_ignore_ascii_case("members") {
            continue;
        }
        count += 1 + count_values(value, MAX_ATTRIBUTES);
        if count > MAX_ATTRIBUTES {
            return Err(too_many_attributes());
        }
    }
    Ok(())
}

/// The error for a resource past [`MAX_ATTRIBUTES`].
pub fn too_many_attributes() -> ScimError {
    ScimError::invalid_value(format!(
        "the resource holds more than {MAX_ATTRIBUTES} attribute values (sub-attributes, the \
         values of multi-valued attributes and `schemas` entries count; a group's members do \
         not)"
    ))
}

/// The length of `value` as compact JSON.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// A map whose keys are unique regardless of case, checked in constant time per key.
struct CaseFoldedMap {
    map: Map<String, Value>,
    seen: HashSet<String>,
}

impl CaseFoldedMap {
    fn new() -> Self {
        Self {
            map: Map::new(),
            seen: HashSet::new(),
        }
    }

    /// Inserts `key`, refusing one already given in any case (400 `invalidSyntax`).
    fn insert_once(&mut self, key: String, value: Value) -> Result<(), ScimError> {
        if !self.seen.insert(key.to_ascii_lowercase()) {
            return Err(ScimError::invalid_syntax(format!(
                "attribute `{key}` is given more than once"
            )));
        }
        self.map.insert(key, value);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

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
    check_size(
        &body,
        resource_type
            .schema
            .eq_ignore_ascii_case(super::schema::GROUP_URN),
    )?;
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

    let mut out = CaseFoldedMap::new();
    let mut unregistered = 0usize;
    let mut unknown = |key: &str, value: &Value| {
        unregistered += key.len() + json_len(value);
        if unregistered > MAX_UNREGISTERED_BYTES {
            Err(ScimError::invalid_value(format!(
                "unknown attributes and unregistered extensions may take at most \
                 {MAX_UNREGISTERED_BYTES} bytes of JSON per resource"
            )))
        } else {
            Ok(())
        }
    };
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
                out.insert_once(attr.name.clone(), v)?;
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
                    let mut ext_out = CaseFoldedMap::new();
                    for (k, v) in fields {
                        if v.is_null() {
                            continue;
                        }
                        match ext.attribute(&k) {
                            // As for the core schema: readOnly values are the server's,
                            // writeOnly ones are never returned, so never kept.
                            Some(attr)
                                if matches!(
                                    attr.mutability,
                                    Mutability::ReadOnly | Mutability::WriteOnly
                                ) => {}
                            Some(attr) => {
                                let path = format!("{}:{}", ext.id, attr.name);
                                if let Some(v) = check_value(attr, v, &path)? {
                                    ext_out.insert_once(attr.name.clone(), v)?;
                                }
                            }
                            None => {
                                unknown(&k, &v)?;
                                ext_out.insert_once(k, v)?;
                            }
                        }
                    }
                    if !ext_out.is_empty() {
                        if !schemas.iter().any(|s| s.eq_ignore_ascii_case(&ext.id)) {
                            schemas.push(ext.id.clone());
                        }
                        out.insert_once(ext.id.clone(), Value::Object(ext_out.map))?;
                    }
                }
                None => {
                    unknown(&key, &value)?;
                    out.insert_once(key, value)?;
                }
            }
        } else {
            unknown(&key, &value)?;
            out.insert_once(key, value)?;
        }
    }
    let mut out = out.map;

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
    let mut seen = HashSet::with_capacity(values.len());
    values
        .into_iter()
        .filter(|v| seen.insert(v.as_str().map(str::to_owned)))
        .collect()
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
            let mut out = CaseFoldedMap::new();
            for (k, v) in fields {
                if v.is_null() {
                    continue;
                }
                match attr.sub_attribute(&k) {
                    Some(sub) if sub.mutability == Mutability::ReadOnly => {}
                    Some(sub) => {
                        let sub_path = format!("{path}.{}", sub.name);
                        if let Some(v) = check_value(sub, v, &sub_path)? {
                            out.insert_once(sub.name.clone(), v)?;
                        }
                    }
                    None => out.insert_once(k, v)?,
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out.map)))
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
        // `2.0` is the integer 2 (JSON does not tell them apart).
        (AttrType::Integer, value @ Value::Number(_)) if whole_number(&value).is_some() => {
            Ok(whole_number(&value).map(Value::from))
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

/// A whole number within `i64`, however the JSON writes it (`2`, `2.0`, `2e0`): JSON, and
/// JSON Schema's `integer`, do not tell them apart.
pub fn whole_number(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(63))
            .map(|f| f as i64)
    })
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

/// Deserializes a JSON integer, or a number with no fractional part (`5.0`: JSON Schema's
/// `integer` admits it).
pub fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    whole_number(&value)
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not an integer")))
}

/// [`whole`], or `null`.
pub fn whole_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match <serde_json::Value as serde::Deserialize>::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        value => whole_number(&value)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not an integer"))),
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
