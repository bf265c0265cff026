//! IdP dialects of PATCH (DESIGN 5), normalised here so that the engine speaks RFC 7644:
//! op spellings (`Add`, `REMOVE`), blank paths, and bare strings for complex values (Entra's
//! `manager`). The other dialects need the registry or the document and are marked `DESIGN 5`
//! in the engine: path-less values keyed by paths or URNs, a value list on `remove members`,
//! a value filter that matches nothing, Okta's own `id` in a rename.

use scim_v2::filter::PatchPath;
use serde_json::{Map, Value};

use super::{Op, Operation, invalid_path, no_target, remove_ci};
use crate::scim::error::ScimError;
use crate::scim::schema::{AttrType, Attribute};

/// Reads operation number `n` (from 1) of a PatchOp body.
pub(super) fn operation(n: usize, raw: Value) -> Result<Operation, ScimError> {
    let Value::Object(mut fields) = raw else {
        return Err(ScimError::invalid_syntax(format!(
            "operation {n} must be a JSON object"
        )));
    };
    // RFC 7644 §3.5.2 spells the ops in lower case; Entra sends `Add`, `Replace`, `Remove`.
    let op = match remove_ci(&mut fields, "op")
        .as_ref()
        .and_then(Value::as_str)
    {
        Some(s) if s.eq_ignore_ascii_case("add") => Op::Add,
        Some(s) if s.eq_ignore_ascii_case("remove") => Op::Remove,
        Some(s) if s.eq_ignore_ascii_case("replace") => Op::Replace,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {n}: `op` must be add, remove or replace"
            )));
        }
    };
    let path =
        match remove_ci(&mut fields, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.parse::<PatchPath>().map_err(|e| {
                invalid_path(format!("operation {n}: `{s}` is not a valid path: {e}"))
            })?),
            Some(_) => {
                return Err(invalid_path(format!(
                    "operation {n}: `path` must be a string"
                )));
            }
        };
    let value = remove_ci(&mut fields, "value");
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(no_target(format!(
            "operation {n}: `remove` needs a `path` (RFC 7644 §3.5.2.2)"
        ))),
        (Op::Add | Op::Replace, _, None) => Err(ScimError::invalid_syntax(format!(
            "operation {n}: `add` and `replace` need a `value` (RFC 7644 §3.5.2.1, §3.5.2.3)"
        ))),
        (Op::Add | Op::Replace, None, Some(v)) if !v.is_object() => {
            Err(ScimError::invalid_syntax(format!(
                "operation {n}: without `path`, `value` must be an object of attributes \
                 (RFC 7644 §3.5.2.1, §3.5.2.3)"
            )))
        }
        _ => Ok(Operation { op, path, value }),
    }
}

/// Entra sends `manager` as a bare id (`"value": "123"`) where the schema has a single-valued
/// complex attribute with a `value` sub-attribute: the string becomes `{"value": "123"}`. Any
/// other value is returned unchanged for the type check to judge.
pub(super) fn bare_value(attr: &Attribute, value: Value) -> Value {
    match value {
        Value::String(s)
            if attr.ty == AttrType::Complex
                && !attr.multi_valued
                && attr.sub_attribute("value").is_some() =>
        {
            let mut object = Map::new();
            object.insert("value".to_owned(), Value::String(s));
            Value::Object(object)
        }
        other => other,
    }
}
