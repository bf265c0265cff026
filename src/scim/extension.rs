//! Custom schema extensions a tenant registers (Okta's and Entra's custom attributes): the
//! definition is RFC 7643 §7's own format, the one `/Schemas` serves, parsed and checked
//! here before it joins the tenant's registry.

use serde_json::{Map, Value};

use super::schema::{AttrType, Attribute, Mutability, Returned, Schema, Uniqueness};
use super::schema::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

/// Most attributes one extension may define.
pub const MAX_ATTRIBUTES: usize = 200;

/// A checked extension definition: the schema and the resource type it extends.
#[derive(Debug, Clone)]
pub struct ExtensionDefinition {
    pub schema: Schema,
    /// `User` or `Group`.
    pub resource_type: String,
}

/// A string member: absent or null is `None`; any other type is refused.
fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

fn flag(object: &Map<String, Value>, name: &str) -> Result<bool, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("`{name}` must be a boolean")),
    }
}

/// RFC 7643 §2.1 ATTRNAME: ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 128
}

fn attribute(value: &Value, nested: bool) -> Result<Attribute, String> {
    let object = value
        .as_object()
        .ok_or("each attribute must be a JSON object")?;
    let name = text(object, "name")?.ok_or("each attribute needs a `name`")?;
    if !valid_name(name) {
        return Err(format!(
            "`{name}` is not an attribute name (a letter, then letters, digits, `-` or `_`)"
        ));
    }
    let ty = match text(object, "type")?.unwrap_or("string") {
        "string" => AttrType::String,
        "boolean" => AttrType::Boolean,
        "decimal" => AttrType::Decimal,
        "integer" => AttrType::Integer,
        "dateTime" => AttrType::DateTime,
        "binary" => AttrType::Binary,
        "reference" => AttrType::Reference,
        "complex" => AttrType::Complex,
        other => return Err(format!("`{name}`: type `{other}` is not an RFC 7643 type")),
    };
    let mutability = match text(object, "mutability")?.unwrap_or("readWrite") {
        "readWrite" => Mutability::ReadWrite,
        "readOnly" => Mutability::ReadOnly,
        "immutable" => Mutability::Immutable,
        "writeOnly" => Mutability::WriteOnly,
        other => return Err(format!("`{name}`: mutability `{other}` is not known")),
    };
    let returned = match text(object, "returned")?.unwrap_or("default") {
        "default" => Returned::Default,
        "always" => Returned::Always,
        "never" => Returned::Never,
        "request" => Returned::Request,
        other => return Err(format!("`{name}`: returned `{other}` is not known")),
    };
    let uniqueness = match text(object, "uniqueness")?.unwrap_or("none") {
        "none" => Uniqueness::None,
        // Uniqueness of extension values is not enforced: say so rather than pretend.
        other => {
            return Err(format!(
                "`{name}`: uniqueness `{other}` is not supported on extension attributes"
            ));
        }
    };
    let strings = |field: &str| -> Result<Vec<String>, String> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("`{name}`: `{field}` must list strings"))
                })
                .collect(),
            Some(_) => Err(format!("`{name}`: `{field}` must be an array")),
        }
    };
    let sub_attributes = match (ty, object.get("subAttributes")) {
        (AttrType::Complex, Some(Value::Array(items))) if !nested && !items.is_empty() => items
            .iter()
            .map(|v| attribute(v, true))
            .collect::<Result<Vec<_>, _>>()?,
        (AttrType::Complex, _) if nested => {
            return Err(format!(
                "`{name}`: a sub-attribute cannot be complex (RFC 7643 §2.3.8)"
            ));
        }
        (AttrType::Complex, _) => {
            return Err(format!(
                "`{name}`: a complex attribute needs `subAttributes`"
            ));
        }
        (_, None | Some(Value::Null)) => Vec::new(),
        (_, Some(_)) => {
            return Err(format!(
                "`{name}`: only complex attributes have subAttributes"
            ));
        }
    };
    Ok(Attribute {
        name: name.to_owned(),
        ty,
        multi_valued: flag(object, "multiValued").map_err(|e| format!("`{name}`: {e}"))?,
        required: flag(object, "required").map_err(|e| format!("`{name}`: {e}"))?,
        case_exact: flag(object, "caseExact").map_err(|e| format!("`{name}`: {e}"))?,
        mutability,
        returned,
        uniqueness,
        description: text(object, "description")?.unwrap_or_default().to_owned(),
        canonical_values: strings("canonicalValues")?,
        reference_types: strings("referenceTypes")?,
        sub_attributes,
    })
}

/// Parses `{"id": "urn:…", "name", "description", "resourceType": "User", "attributes":
/// [RFC 7643 §7 attribute definitions]}`.
pub fn parse_definition(value: &Value) -> Result<ExtensionDefinition, String> {
    let object = value
        .as_object()
        .ok_or("a schema definition must be a JSON object")?;
    let id = text(object, "id")?.ok_or("a schema definition needs an `id` (its URN)")?;
    let lower = id.to_ascii_lowercase();
    if !lower.starts_with("urn:") || id.len() > 300 || id.chars().any(char::is_whitespace) {
        return Err(format!("`{id}` is not a URN"));
    }
    if [USER_URN, GROUP_URN, ENTERPRISE_USER_URN]
        .iter()
        .any(|u| u.eq_ignore_ascii_case(id))
    {
        return Err(format!("`{id}` is a built-in schema"));
    }
    let resource_type = match text(object, "resourceType")?.unwrap_or("User") {
        rt @ ("User" | "Group") => rt.to_owned(),
        other => return Err(format!("resourceType `{other}` is not User or Group")),
    };
    let items = object
        .get("attributes")
        .and_then(Value::as_array)
        .ok_or("a schema definition needs `attributes`")?;
    if items.is_empty() || items.len() > MAX_ATTRIBUTES {
        return Err(format!("define 1 to {MAX_ATTRIBUTES} attributes"));
    }
    let attributes = items
        .iter()
        .map(|v| attribute(v, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: Vec<String> = attributes.iter().map(|a| a.name.to_lowercase()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("attribute names must differ (they compare case-insensitively)".to_owned());
    }
    if attributes.iter().any(|a| a.required) {
        // Resources written before the registration would all be invalid.
        return Err("extension attributes cannot be required".to_owned());
    }
    Ok(ExtensionDefinition {
        schema: Schema {
            id: id.to_owned(),
            name: text(object, "name")?.unwrap_or(id).to_owned(),
            description: text(object, "description")?.unwrap_or_default().to_owned(),
            attributes,
        },
        resource_type,
    })
}

/// Whether every value of type `from` is a value of type `to` as validation reads it: the
/// same type, an integer as a decimal, or a date-time, binary or reference as a string.
fn widens(from: AttrType, to: AttrType) -> bool {
    from == to
        || matches!(
            (from, to),
            (AttrType::Integer, AttrType::Decimal)
                | (
                    AttrType::DateTime | AttrType::Binary | AttrType::Reference,
                    AttrType::String
                )
        )
}

fn widened_attributes(old: &[Attribute], new: &[Attribute], within: &str) -> Result<(), String> {
    for before in old {
        let path = format!("{within}{}", before.name);
        let Some(after) = new
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&before.name))
        else {
            return Err(format!("`{path}` is left out"));
        };
        if !widens(before.ty, after.ty) {
            return Err(format!(
                "`{path}` would change from {} to {}, which not every stored value fits",
                before.ty.name(),
                after.ty.name()
            ));
        }
        if before.multi_valued && !after.multi_valued {
            return Err(format!(
                "`{path}` would change from multi-valued to single-valued"
            ));
        }
        widened_attributes(
            &before.sub_attributes,
            &after.sub_attributes,
            &format!("{path}."),
        )?;
    }
    Ok(())
}

/// Checks that `new` only widens `old` (an update of a registered extension): it keeps the
/// resource type and every attribute, adds attributes or sub-attributes, changes a type
/// only to one every old value fits, single-valued to multi-valued, and anything else
/// (description, mutability, returned, caseExact, canonical values) freely — so a value
/// that fit before fits after. Any other change is a removal and a new registration.
pub fn check_widening(old: &ExtensionDefinition, new: &ExtensionDefinition) -> Result<(), String> {
    if old.resource_type != new.resource_type {
        return Err(format!(
            "the resource type would change from {} to {}",
            old.resource_type, new.resource_type
        ));
    }
    widened_attributes(&old.schema.attributes, &new.schema.attributes, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_rfc_7643_definition_parses_and_bad_ones_name_the_problem() {
        let ok = parse_definition(&json!({
            "id": "urn:okta:acme:1.0:user:custom",
            "name": "Custom",
            "attributes": [
                {"name": "costCenter", "type": "string"},
                {"name": "badgeNumber", "type": "integer"},
                {"name": "skills", "type": "string", "multiValued": true},
                {"name": "office", "type": "complex", "subAttributes": [
                    {"name": "building", "type": "string"}, {"name": "floor", "type": "integer"}
                ]}
            ]
        }))
        .unwrap();
        assert_eq!(ok.resource_type, "User");
        assert_eq!(ok.schema.attributes.len(), 4);
        assert_eq!(ok.schema.attributes[1].ty, AttrType::Integer);
        for (bad, why) in [
            (json!({"id": "acme", "attributes": [{"name": "a"}]}), "URN"),
            (
                json!({"id": USER_URN, "attributes": [{"name": "a"}]}),
                "built-in",
            ),
            (json!({"id": "urn:x", "attributes": []}), "1 to"),
            (
                json!({"id": "urn:x", "attributes": [{"name": "1a"}]}),
                "attribute name",
            ),
            (
                json!({"id": "urn:x", "attributes": [{"name": "a", "type": "float"}]}),
                "type",
            ),
            (
                json!({"id": "urn:x", "attributes": [{"name": "a"}, {"name": "A"}]}),
                "differ",
            ),
            (
                json!({"id": "urn:x", "attributes": [{"name": "a", "required": true}]}),
                "required",
            ),
            (
                json!({"id": "urn:x", "attributes": [{"name": "a", "type": "complex"}]}),
                "subAttributes",
            ),
            (
                json!({"id": "urn:x", "resourceType": "Device", "attributes": [{"name": "a"}]}),
                "resourceType",
            ),
            (
                json!({"id": "urn:x", "attributes": [{"name": "a", "uniqueness": "server"}]}),
                "uniqueness",
            ),
        ] {
            let e = parse_definition(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn an_update_may_add_and_widen_but_never_narrow() {
        let old = parse_definition(&json!({
            "id": "urn:x",
            "attributes": [
                {"name": "badge", "type": "integer"},
                {"name": "hired", "type": "dateTime"},
                {"name": "skills", "type": "string", "multiValued": true},
                {"name": "office", "type": "complex", "subAttributes": [
                    {"name": "floor", "type": "integer"}
                ]}
            ]
        }))
        .unwrap();
        let with = |badge: &str, skills_multi: bool, floor: &str, extra: bool| {
            let mut attributes = vec![
                json!({"name": "Badge", "type": badge}),
                json!({"name": "hired", "type": "string"}),
                json!({"name": "skills", "type": "string", "multiValued": skills_multi}),
                json!({"name": "office", "type": "complex", "subAttributes": [
                    {"name": "floor", "type": floor}, {"name": "room", "type": "string"}
                ]}),
            ];
            if extra {
                attributes.push(json!({"name": "costCenter"}));
            }
            parse_definition(&json!({"id": "urn:x", "attributes": attributes})).unwrap()
        };
        assert_eq!(
            check_widening(&old, &with("decimal", true, "integer", true)),
            Ok(())
        );
        assert_eq!(
            check_widening(&old, &with("integer", true, "decimal", false)),
            Ok(())
        );
        for (new, why) in [
            (
                with("string", true, "integer", false),
                "`badge` would change from integer to string",
            ),
            (
                with("integer", false, "integer", false),
                "multi-valued to single-valued",
            ),
            (with("integer", true, "string", false), "`office.floor`"),
        ] {
            let e = check_widening(&old, &new).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let fewer = parse_definition(
            &json!({"id": "urn:x", "attributes": [{"name": "badge", "type": "integer"}]}),
        )
        .unwrap();
        assert!(
            check_widening(&old, &fewer)
                .unwrap_err()
                .contains("`hired` is left out")
        );
        let group = parse_definition(&json!({"id": "urn:x", "resourceType": "Group", "attributes": [{"name": "badge", "type": "integer"}]})).unwrap();
        assert!(
            check_widening(&fewer, &group)
                .unwrap_err()
                .contains("resource type")
        );
    }
}
