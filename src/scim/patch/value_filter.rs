//! Value filters of PATCH paths (`emails[type eq "work"]`, RFC 7644 §3.5.2): evaluated on
//! one element of a multi-valued attribute, typed by the attribute's sub-attributes, and read
//! back as the element they describe when they match nothing (DESIGN 5).

use std::cmp::Ordering;

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, ValFilter};
use serde_json::{Map, Value};

use super::{get_ci, key_ci};
use crate::scim::fold::fold;
use crate::scim::schema::{AttrType, Attribute};

/// Whether `element` (one value of the multi-valued `attr`, unknown when `None`) matches.
pub(super) fn matches(filter: &ValFilter, element: &Value, attr: Option<&Attribute>) -> bool {
    match filter {
        ValFilter::Attr(AttrExp::Present(path)) => {
            let (value, _) = lookup(element, path, attr);
            value.is_some_and(is_present)
        }
        ValFilter::Attr(AttrExp::Comparison(path, op, expected)) => {
            let (value, def) = lookup(element, path, attr);
            compare(value, op, expected, def)
        }
        ValFilter::Not(inner) => !matches(inner, element, attr),
        ValFilter::And(items) => items.iter().all(|f| matches(f, element, attr)),
        ValFilter::Or(items) => items.iter().any(|f| matches(f, element, attr)),
    }
}

/// The element a filter describes: `eq` terms joined by `and` (`type eq "work"` gives
/// `{"type": "work"}`). `None` for any other filter, which describes no single element.
pub(super) fn seed(filter: &ValFilter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let terms: &[ValFilter] = match filter {
        ValFilter::And(items) => items,
        single => std::slice::from_ref(single),
    };
    for term in terms {
        let ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value)) = term else {
            return None;
        };
        if path.sub_attr.is_some() {
            return None;
        }
        let value = match value {
            CompValue::Str(s) => Value::String(s.clone()),
            CompValue::True => Value::Bool(true),
            CompValue::False => Value::Bool(false),
            CompValue::Number(n) => Value::Number(n.clone()),
            CompValue::Null => return None,
        };
        match key_ci(&out, &path.name) {
            Some(k) if out.get(k) != Some(&value) => return None,
            Some(_) => {}
            None => {
                out.insert(path.name.clone(), value);
            }
        }
    }
    Some(out)
}

/// The member ids a `members[…]` filter names: `value eq "id"`, possibly joined by `or`.
/// Other filters would need the membership table, which PATCH does not load.
pub(super) fn member_ids(filter: &ValFilter) -> Option<Vec<String>> {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(id)))
            if path.name.eq_ignore_ascii_case("value") && path.sub_attr.is_none() =>
        {
            Some(vec![id.clone()])
        }
        ValFilter::Or(items) => {
            let mut ids = Vec::new();
            for item in items.iter() {
                ids.extend(member_ids(item)?);
            }
            Some(ids)
        }
        _ => None,
    }
}

fn lookup<'v, 'a>(
    element: &'v Value,
    path: &AttrPath,
    attr: Option<&'a Attribute>,
) -> (Option<&'v Value>, Option<&'a Attribute>) {
    match element {
        Value::Object(fields) => {
            let value = get_ci(fields, &path.name);
            let def = attr.and_then(|a| a.sub_attribute(&path.name));
            match &path.sub_attr {
                None => (value, def),
                Some(sub) => (
                    value
                        .and_then(Value::as_object)
                        .and_then(|inner| get_ci(inner, sub)),
                    def.and_then(|d| d.sub_attribute(sub)),
                ),
            }
        }
        // A multi-valued attribute of simple values: `value` is the element itself.
        simple if path.name.eq_ignore_ascii_case("value") && path.sub_attr.is_none() => {
            (Some(simple), attr)
        }
        _ => (None, None),
    }
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => true,
    }
}

/// RFC 7644 §3.4.2.2 comparison of an element's value with a filter literal.
fn compare(
    actual: Option<&Value>,
    op: &CompareOp,
    expected: &CompValue,
    def: Option<&Attribute>,
) -> bool {
    let actual = actual.filter(|v| is_present(v));
    match (actual, expected) {
        (None, CompValue::Null) => *op == CompareOp::Eq,
        (Some(_), CompValue::Null) => *op == CompareOp::Ne,
        (None, _) => *op == CompareOp::Ne,
        (Some(Value::Array(items)), _) => items
            .iter()
            .any(|item| compare(Some(item), op, expected, def)),
        (Some(actual), _) => compare_one(actual, op, expected, def),
    }
}

fn compare_one(
    actual: &Value,
    op: &CompareOp,
    expected: &CompValue,
    def: Option<&Attribute>,
) -> bool {
    match expected {
        CompValue::True | CompValue::False => {
            let expected = *expected == CompValue::True;
            as_bool(actual).is_some_and(|b| equality(op, b == expected))
        }
        CompValue::Number(n) => match (actual.as_f64(), n.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b).is_some_and(|o| ordering(op, o)),
            _ => false,
        },
        CompValue::Str(s) => match actual {
            // Entra writes booleans as strings, in filters too (`primary eq "True"`).
            Value::Bool(b) => {
                as_bool(&Value::String(s.clone())).is_some_and(|e| equality(op, *b == e))
            }
            Value::String(a) => compare_strings(a, op, s, def),
            _ => false,
        },
        CompValue::Null => false,
    }
}

fn compare_strings(actual: &str, op: &CompareOp, expected: &str, def: Option<&Attribute>) -> bool {
    if def.is_some_and(|d| d.ty == AttrType::DateTime)
        && let (Some(a), Some(e)) = (
            crate::scim::time::parse(actual),
            crate::scim::time::parse(expected),
        )
    {
        return ordering(op, a.cmp(&e));
    }
    // RFC 7643 §2.2: caseExact defaults to false, so unknown sub-attributes compare folded.
    let (a, e) = if def.is_some_and(|d| d.case_exact) {
        (actual.to_owned(), expected.to_owned())
    } else {
        (fold(actual), fold(expected))
    };
    match op {
        CompareOp::Co => a.contains(&e),
        CompareOp::Sw => a.starts_with(&e),
        CompareOp::Ew => a.ends_with(&e),
        other => ordering(other, a.cmp(&e)),
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn equality(op: &CompareOp, equal: bool) -> bool {
    match op {
        CompareOp::Eq => equal,
        CompareOp::Ne => !equal,
        _ => false,
    }
}

fn ordering(op: &CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
