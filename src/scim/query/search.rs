//! The search document: the stored document with every string of a case-insensitive
//! attribute folded by the one rule of DESIGN 6. Stored beside the document, it lets both
//! databases compare and sort case-insensitive attributes by plain byte equality and order.

use serde_json::{Map, Value};

use crate::scim::fold::fold;
use crate::scim::schema::{AttrType, Attribute, Registry, ResourceType};

/// Folds the strings of case-insensitive attributes of `document`; unknown attributes are
/// kept as they are (they cannot be filtered on).
pub fn search_document(
    registry: &Registry,
    resource_type: &ResourceType,
    document: &Map<String, Value>,
) -> Value {
    let core = registry.schema(&resource_type.schema);
    let mut out = Map::with_capacity(document.len());
    for (key, value) in document {
        let def = registry
            .common_attribute(key)
            .or_else(|| core.and_then(|c| c.attribute(key)));
        let folded = match def {
            Some(def) => fold_value(def, value),
            None => match (
                resource_type
                    .extensions
                    .iter()
                    .find(|e| e.schema == *key)
                    .and_then(|e| registry.schema(&e.schema)),
                value,
            ) {
                (Some(ext), Value::Object(fields)) => Value::Object(
                    fields
                        .iter()
                        .map(|(k, v)| {
                            let v = ext
                                .attribute(k)
                                .map_or_else(|| v.clone(), |d| fold_value(d, v));
                            (k.clone(), v)
                        })
                        .collect(),
                ),
                _ => value.clone(),
            },
        };
        out.insert(key.clone(), folded);
    }
    Value::Object(out)
}

fn fold_value(def: &Attribute, value: &Value) -> Value {
    match value {
        Value::Array(items) if def.multi_valued => {
            Value::Array(items.iter().map(|v| fold_single(def, v)).collect())
        }
        // A multi-valued attribute stored as one value (sent before its extension was
        // registered) is searched as a list of one: filters walk the elements of a list.
        Value::Null => Value::Null,
        other if def.multi_valued => Value::Array(vec![fold_single(def, other)]),
        other => fold_single(def, other),
    }
}

fn fold_single(def: &Attribute, value: &Value) -> Value {
    match (def.ty, value) {
        (AttrType::Complex, Value::Object(fields)) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let v = def
                        .sub_attribute(k)
                        .map_or_else(|| v.clone(), |d| fold_value(d, v));
                    (k.clone(), v)
                })
                .collect(),
        ),
        (AttrType::String, Value::String(s)) if !def.case_exact => Value::String(fold(s)),
        (
            AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime,
            Value::String(_),
        )
        | (AttrType::Boolean, Value::Bool(_))
        | (AttrType::Decimal, Value::Number(_))
        | (_, Value::Null) => value.clone(),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => value.clone(),
        // A value that does not fit its type (stored before its extension was registered)
        // is kept in the document but left out of the search document: no filter or sort
        // can trip over it.
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::ENTERPRISE_USER_URN;
    use serde_json::json;

    #[test]
    fn case_insensitive_strings_are_folded_and_case_exact_ones_kept() {
        let r = Registry::core();
        let doc = json!({
            "userName": "BJensen", "externalId": "EXT-1", "active": true,
            "name": {"familyName": "JENSEN"},
            "emails": [{"value": "B@X.COM", "type": "Work", "primary": true}],
            ENTERPRISE_USER_URN: {"department": "Tours", "manager": {"value": "ABC"}},
            "unknown": "KeepMe"
        });
        let search = search_document(r, r.user(), doc.as_object().unwrap());
        assert_eq!(search["userName"], "bjensen");
        assert_eq!(search["externalId"], "EXT-1");
        assert_eq!(search["name"]["familyName"], "jensen");
        assert_eq!(
            search["emails"][0],
            json!({"value": "b@x.com", "type": "work", "primary": true})
        );
        assert_eq!(search[ENTERPRISE_USER_URN]["department"], "tours");
        assert_eq!(search[ENTERPRISE_USER_URN]["manager"]["value"], "ABC");
        assert_eq!(search["unknown"], "KeepMe");
    }
}
