//! What the handlers' annotations cannot state, added to the generated document so that it
//! says exactly what the server accepts (issue 23; docs/api.md "The contract"):
//!
//! - the bodies of Users and Groups are the schema registry's (DESIGN 3), attribute by
//!   attribute, with the leniency `scim::validate` applies (null is unassigned, a single
//!   value stands for a one-element list, Entra's `"True"`/`"False"` for booleans);
//! - a SCIM message's `schemas` must contain its URN (compared without regard to case),
//!   written as JSON Schema's `contains`;
//! - what no database can store is refused everywhere (`validate::storable`, the URL check
//!   of `context::security_headers`): a NUL character in any string, name, path or query
//!   parameter, and numbers beyond ±1e300.
//!
//! utoipa's schema model has no `contains` or `propertyNames`, so this works on the
//! document as JSON, after utoipa has built it.

use serde_json::{Map, Value, json};

use crate::scim::schema::{AttrType, Attribute, Mutability, Registry, ResourceType};

/// A string without NUL characters.
pub const NO_NUL: &str = "^[^\\u0000]*$";
/// A string without NUL characters that is not only white space.
pub const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";
/// Largest magnitude of a number a body may hold (`validate::storable`).
const MAX_MAGNITUDE: f64 = 1e300;

/// The component every open part of a body refers to: any JSON the server can store.
pub const JSON_VALUE: &str = "JsonValue";
/// The request bodies of POST and PUT on /Users and /Groups.
pub const USER_REQUEST: &str = "UserRequest";
pub const GROUP_REQUEST: &str = "GroupRequest";

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A pattern matching exactly `text` in any case (JSON Schema patterns have no flags).
pub fn any_case(text: &str) -> String {
    let mut out = String::from("^");
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            out.push('[');
            out.push(c.to_ascii_uppercase());
            out.push(c.to_ascii_lowercase());
            out.push(']');
        } else if c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out.push('$');
    out
}

/// An array of URNs that must contain `urn` (in any case).
pub fn schemas_containing(urn: &str) -> Value {
    json!({
        "type": "array",
        "items": { "type": "string" },
        "contains": { "type": "string", "pattern": any_case(urn) },
        "description": format!("Must contain `{urn}` (in any case)."),
    })
}

/// Sets the `schemas` of each named message component to an array that must contain its URN.
pub fn messages(doc: &mut Value, messages: &[(&str, &str)]) {
    for (name, urn) in messages {
        if let Some(schemas) =
            doc.pointer_mut(&format!("/components/schemas/{name}/properties/schemas"))
        {
            *schemas = schemas_containing(urn);
        }
    }
}

/// Adds the keywords of `rules` to component `name` (what an annotation cannot state: `if`,
/// `then`, `oneOf` across properties).
pub fn rules(doc: &mut Value, name: &str, rules: Value) {
    let component = doc.pointer_mut(&format!("/components/schemas/{name}"));
    if let (Some(Value::Object(component)), Value::Object(rules)) = (component, rules) {
        component.extend(rules);
    }
}

/// Sets `key` of the schema of query parameter `name` of operation `operation_id`.
pub fn parameter(doc: &mut Value, operation_id: &str, name: &str, key: &str, value: Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|op| op.get("operationId").and_then(Value::as_str) == Some(operation_id));
    for op in operations {
        let parameters = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in parameters.into_iter().flatten() {
            if p.get("name").and_then(Value::as_str) != Some(name) {
                continue;
            }
            if let Some(schema) = p.get_mut("schema").and_then(Value::as_object_mut) {
                schema.insert(key.to_owned(), value.clone());
            }
        }
    }
}

/// Any JSON value the databases can store.
fn json_value() -> Value {
    json!({
        "description": "Any JSON value the databases can store: no NUL character in a string \
                        or a member name, numbers within ±1e300, at most 64 levels deep.",
        "anyOf": [
            { "type": "string" },
            { "type": "number" },
            { "type": "boolean" },
            { "type": "null" },
            { "type": "array", "items": reference(JSON_VALUE) },
            { "type": "object", "additionalProperties": reference(JSON_VALUE) },
        ],
    })
}

/// Applies everything this module owns to the document `utoipa` generated.
pub fn refine(doc: &mut Value) {
    let registry = Registry::core();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert(JSON_VALUE.to_owned(), json_value());
        schemas.insert(
            USER_REQUEST.to_owned(),
            resource_input(registry, registry.user()),
        );
        schemas.insert(
            GROUP_REQUEST.to_owned(),
            resource_input(registry, registry.group()),
        );
    }
    storable_everywhere(doc);
}

/// States `validate::storable` in every schema of the document: its components, its
/// operations' parameters and request bodies.
pub fn storable_everywhere(doc: &mut Value) {
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            storable(schema);
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                if let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                {
                    for p in parameters {
                        if let Some(schema) = p.get_mut("schema") {
                            storable(schema);
                        }
                    }
                }
                if let Some(content) = operation
                    .get_mut("requestBody")
                    .and_then(|body| body.get_mut("content"))
                    .and_then(Value::as_object_mut)
                {
                    for media in content.values_mut() {
                        if let Some(schema) = media.get_mut("schema") {
                            storable(schema);
                        }
                    }
                }
            }
        }
    }
}

/// States `validate::storable` in `schema` and every schema inside it: strings without a
/// pattern, format or value list refuse NUL; numbers are bounded; open objects' names
/// refuse NUL and their values are [`JSON_VALUE`]s; the empty schema (any value) becomes
/// one.
fn storable(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    if map.is_empty() {
        map.insert("$ref".to_owned(), reference(JSON_VALUE)["$ref"].clone());
        return;
    }
    let only_description = map.keys().all(|k| k == "description");
    if only_description {
        map.insert("$ref".to_owned(), reference(JSON_VALUE)["$ref"].clone());
        return;
    }
    let types: Vec<String> = match map.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let has = |t: &str| types.iter().any(|x| x == t);
    if has("string")
        && !["pattern", "format", "enum", "const"]
            .iter()
            .any(|k| map.contains_key(*k))
    {
        map.insert("pattern".to_owned(), Value::String(NO_NUL.to_owned()));
    }
    if has("number") {
        map.entry("minimum").or_insert(json!(-MAX_MAGNITUDE));
        map.entry("maximum").or_insert(json!(MAX_MAGNITUDE));
    }
    if has("object") {
        map.entry("propertyNames")
            .or_insert(json!({ "pattern": NO_NUL }));
        if !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".to_owned(), reference(JSON_VALUE));
        }
    }
    for key in ["items", "additionalProperties", "contains", "not"] {
        if let Some(inner) = map.get_mut(key) {
            storable(inner);
        }
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = map.get_mut(key) {
            props.values_mut().for_each(storable);
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(branches)) = map.get_mut(key) {
            branches.iter_mut().for_each(storable);
        }
    }
}

/// The body of a POST or PUT of `resource_type`, as `validate::resource` reads it.
fn resource_input(registry: &Registry, resource_type: &ResourceType) -> Value {
    let mut properties = Map::new();
    let mut required = vec![Value::String("schemas".to_owned())];
    properties.insert(
        "schemas".to_owned(),
        schemas_containing(&resource_type.schema),
    );
    let core = registry.schema(&resource_type.schema);
    let attributes = registry
        .common
        .iter()
        .chain(core.into_iter().flat_map(|s| s.attributes.iter()));
    let name_attribute = match resource_type.name.as_str() {
        "User" => "userName",
        _ => "displayName",
    };
    for attr in attributes {
        if attr.required || attr.name == name_attribute {
            required.push(Value::String(attr.name.clone()));
        }
        let input = if attr.name == name_attribute {
            // `domain::UserName`, `service::groups::hot`: the name the resource is found by.
            json!({
                "type": "string",
                "pattern": NOT_BLANK,
                "description": format!(
                    "Not only white space; at most {} bytes of UTF-8, {} once case-folded.",
                    crate::domain::MAX_NAME_BYTES,
                    crate::domain::MAX_FOLDED_NAME_BYTES
                ),
            })
        } else {
            attribute_input(attr, true)
        };
        properties.insert(attr.name.clone(), input);
    }
    for extension in &resource_type.extensions {
        let Some(schema) = registry.schema(&extension.schema) else {
            continue;
        };
        let object = complex_input(&schema.attributes, true);
        properties.insert(
            schema.id.clone(),
            json!({ "anyOf": [object, { "type": "null" }], "description": schema.description }),
        );
    }
    if resource_type.schema == crate::scim::schema::GROUP_URN {
        group_members(registry, &mut properties);
    }
    json!({
        "type": "object",
        "description": format!(
            "A {} as POST and PUT take it, from the schema registry (`/Schemas`). Attribute \
             names are matched without regard to case; `null` leaves an attribute \
             unassigned; a single value stands for a one-element list; readOnly attributes \
             (`id`, `meta`, `groups`) and `password` are ignored. Unknown attributes and \
             extensions are kept as sent, at most 64 KiB of JSON per resource, and a body \
             holds at most 1 000 values.",
            resource_type.name
        ),
        "required": required,
        "properties": properties,
    })
}

/// One attribute as a body may give it; `top` when it is a resource's (or an extension's)
/// own attribute, whose readOnly and writeOnly values are ignored (a complex value's
/// sub-attributes ignore only readOnly ones).
fn attribute_input(attr: &Attribute, top: bool) -> Value {
    let ignored = attr.mutability == Mutability::ReadOnly
        || (top && attr.mutability == Mutability::WriteOnly);
    if ignored {
        return json!({ "description": format!("`{}`: ignored in requests.", attr.name) });
    }
    let single = match attr.ty {
        AttrType::Complex => complex_input(&attr.sub_attributes, false),
        AttrType::Boolean => json!({ "anyOf": [
            { "type": "boolean" },
            { "type": "string", "pattern": format!("{}|{}", any_case("true"), any_case("false")) },
        ] }),
        AttrType::Integer => json!({
            "type": "integer",
            "minimum": i64::MIN,
            "maximum": u64::MAX,
        }),
        AttrType::Decimal => json!({ "type": "number" }),
        AttrType::DateTime => json!({ "type": "string", "format": "date-time" }),
        AttrType::String | AttrType::Binary | AttrType::Reference => json!({ "type": "string" }),
    };
    if attr.required {
        return single;
    }
    if attr.multi_valued {
        json!({ "anyOf": [
            { "type": "array", "items": { "anyOf": [single.clone(), { "type": "null" }] } },
            single,
            { "type": "null" },
        ] })
    } else {
        json!({ "anyOf": [single, { "type": "null" }] })
    }
}

/// A complex value (or an extension's object): its sub-attributes, and anything else kept
/// as sent.
fn complex_input(attributes: &[Attribute], top: bool) -> Value {
    let properties: Map<String, Value> = attributes
        .iter()
        .map(|a| (a.name.clone(), attribute_input(a, top)))
        .collect();
    json!({ "type": "object", "properties": properties })
}

/// A group's `members` (`service::groups::parse_group`): each element needs a string `value`
/// (the member's id) and a `type`, if any, of `User` or `Group` in any case; an element whose
/// values are all null or readOnly is skipped.
fn group_members(registry: &Registry, properties: &mut Map<String, Value>) {
    let Some(attr) = registry
        .schema(crate::scim::schema::GROUP_URN)
        .and_then(|s| s.attribute("members"))
    else {
        return;
    };
    let mut member = complex_input(&attr.sub_attributes, false);
    member["required"] = json!(["value"]);
    member["properties"]["value"] =
        json!({ "type": "string", "description": "The member's id, in this tenant." });
    member["properties"]["type"] = json!({ "anyOf": [
        { "type": "string", "pattern": format!("{}|{}", any_case("User"), any_case("Group")) },
        { "type": "null" },
    ] });
    let ignored: Map<String, Value> = attr
        .sub_attributes
        .iter()
        .filter(|a| a.mutability == Mutability::ReadOnly)
        .map(|a| (a.name.clone(), json!({})))
        .collect();
    let skipped = json!({ "type": "object", "properties": ignored, "additionalProperties": { "type": "null" } });
    let item = json!({ "anyOf": [member, skipped] });
    properties.insert(
        "members".to_owned(),
        json!({ "anyOf": [
            { "type": "array", "items": { "anyOf": [item.clone(), { "type": "null" }] } },
            item,
            { "type": "null" },
        ] }),
    );
}
