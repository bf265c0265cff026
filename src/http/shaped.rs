//! Counted parsing of the bodies whose size legitimately depends on member lists: a
//! group's PatchOp and a BulkRequest. Every JSON value is counted against a budget while
//! it is parsed, except a group's members (they are rows, bounded by the body size only),
//! so a body stuffed with attributes is refused (400 `invalidValue`) after at most the
//! budget's worth of work, while a 100 000-member change still goes through.
//!
//! A PatchOp operation's `value` and a Bulk operation's `data` are read raw first (a linear
//! scan, no values built) and parsed once the operation's other members say what they are
//! (a member `path`, a `/Groups` operation): JSON objects are unordered, so `value` may
//! come before `path`.

use std::cell::Cell;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest};
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::body::{
    Counted, Extracted, TOO_MANY, USER_BODY_VALUES, USER_PATCH_VALUES, extract, malformed, value_of,
};
use super::error::ApiError;
use crate::scim::error::ScimError;
use crate::service::bulk::MAX_OPERATIONS;

/// Values a BulkRequest may carry in all, members of groups aside: 100 per operation at
/// `maxOperations` (a user as Okta or Entra send it has 20 to 60).
pub const BULK_VALUES: usize = 100_000;

const TOO_MANY_OPERATIONS: &str = "scimbus: too many operations";

/// Parses all of `raw` as an array (`seq`) or an object with `visitor`.
fn whole<'de, V: Visitor<'de, Value = Value>>(
    raw: &'de str,
    seq: bool,
    visitor: V,
) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let value = if seq {
        serde::Deserializer::deserialize_seq(&mut de, visitor)?
    } else {
        serde::Deserializer::deserialize_map(&mut de, visitor)?
    };
    de.end()?;
    Ok(value)
}

fn counted(raw: &str, left: &Cell<usize>) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let value = Counted(left).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// `path` names the members (`members`, `members[value eq "…"]`, `members.value`).
fn is_members_path(path: &str) -> bool {
    let path = path.trim_start();
    path.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("members"))
        && !path[7..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn get<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// An object whose top-level `members` is built uncounted; anything else counted.
fn members_exempt(raw: &str, left: &Cell<usize>) -> Result<Value, serde_json::Error> {
    struct Fields<'a>(&'a Cell<usize>);
    impl<'de> Visitor<'de> for Fields<'_> {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut fields = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = if key.eq_ignore_ascii_case("members") {
                    map.next_value::<Value>()?
                } else {
                    Counted(self.0).take()?;
                    map.next_value_seed(Counted(self.0))?
                };
                fields.insert(key, value);
            }
            Ok(Value::Object(fields))
        }
    }
    if !raw.trim_start().starts_with('{') {
        return counted(raw, left);
    }
    whole(raw, false, Fields(left))
}

/// One object whose member `raw_key` is kept raw and parsed by `finish` once the object's
/// other (counted) members are known.
struct WithRaw<'a, F> {
    left: &'a Cell<usize>,
    raw_key: &'static str,
    finish: F,
}

impl<'de, F> Visitor<'de> for WithRaw<'_, F>
where
    F: FnOnce(&Map<String, Value>, Box<RawValue>) -> Result<Value, serde_json::Error>,
{
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        let mut raw = None;
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case(self.raw_key) && raw.is_none() {
                raw = Some((key, map.next_value::<Box<RawValue>>()?));
            } else {
                Counted(self.left).take()?;
                let value = map.next_value_seed(Counted(self.left))?;
                fields.insert(key, value);
            }
        }
        if let Some((key, raw)) = raw {
            let parsed = (self.finish)(&fields, raw).map_err(A::Error::custom)?;
            fields.insert(key, parsed);
        }
        Ok(Value::Object(fields))
    }
}

impl<'de, F> DeserializeSeed<'de> for WithRaw<'_, F>
where
    F: FnOnce(&Map<String, Value>, Box<RawValue>) -> Result<Value, serde_json::Error>,
{
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// The elements of an `Operations` array, each parsed by the seed `element` makes, counted,
/// and at most `max` of them ([`TOO_MANY_OPERATIONS`] past it).
struct Elements<'a, M> {
    left: &'a Cell<usize>,
    max: usize,
    element: M,
}

impl<'de, M, S> Visitor<'de> for Elements<'_, M>
where
    M: Fn() -> S,
    S: DeserializeSeed<'de, Value = Value>,
{
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of operations")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            if items.len() == self.max {
                // One more element is past the limit; the end of the array is not.
                return match seq.next_element::<serde::de::IgnoredAny>()? {
                    Some(_) => Err(A::Error::custom(TOO_MANY_OPERATIONS)),
                    None => Ok(Value::Array(items)),
                };
            }
            Counted(self.left).take()?;
            match seq.next_element_seed((self.element)())? {
                Some(item) => items.push(item),
                None => {
                    self.left.set(self.left.get() + 1); // the last `take` counted no element
                    return Ok(Value::Array(items));
                }
            }
        }
    }
}

/// A JSON object whose `Operations` array is parsed by `operations`, anything else counted.
fn with_operations(
    raw: &str,
    left: &Cell<usize>,
    operations: impl FnOnce(&str) -> Result<Value, serde_json::Error>,
) -> Result<Value, serde_json::Error> {
    if !raw.trim_start().starts_with('{') {
        return counted(raw, left);
    }
    let visitor = WithRaw {
        left,
        raw_key: "Operations",
        finish: |_: &Map<String, Value>, raw: Box<RawValue>| {
            if raw.get().trim_start().starts_with('[') {
                operations(raw.get())
            } else {
                counted(raw.get(), left) // not an array: the PatchOp or Bulk parser answers
            }
        },
    };
    whole(raw, false, visitor)
}

/// A PatchOp: `Operations` elements counted, their `value` parsed once `path` is known. On
/// a group, a member path's value (and a path-less value's `members`) is not counted.
fn patch_op(raw: &str, left: &Cell<usize>, group: bool) -> Result<Value, serde_json::Error> {
    let element = || WithRaw {
        left,
        raw_key: "value",
        finish: move |fields: &Map<String, Value>, raw: Box<RawValue>| {
            let path = get(fields, "path").and_then(Value::as_str);
            if group && path.is_some_and(is_members_path) {
                serde_json::from_str::<Value>(raw.get()) // members: rows
            } else if group && path.is_none() {
                members_exempt(raw.get(), left)
            } else {
                counted(raw.get(), left)
            }
        },
    };
    with_operations(raw, left, |ops| {
        whole(
            ops,
            true,
            Elements {
                left,
                max: usize::MAX,
                element,
            },
        )
    })
}

/// The errors of a counted parse as the API answers them.
fn answer(e: &serde_json::Error) -> Option<ApiError> {
    let text = e.to_string();
    if text.starts_with(TOO_MANY) {
        return Some(ApiError::Scim(crate::scim::validate::too_many_attributes()));
    }
    if text.starts_with(TOO_MANY_OPERATIONS) {
        return Some(ApiError::Scim(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
            None,
            format!("more operations than maxOperations ({MAX_OPERATIONS})"),
        )));
    }
    None
}

fn finish(
    bytes: &[u8],
    parse: impl FnOnce(&str) -> Result<Value, serde_json::Error>,
) -> Result<Value, ApiError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return value_of(bytes); // the same answer as any other body that is not UTF-8 JSON
    };
    if !text.trim_start().starts_with('{') {
        return value_of(bytes); // malformed, or not an object: answered like every other body
    }
    let value = parse(text).map_err(|e| answer(&e).unwrap_or_else(|| malformed(e)))?;
    crate::scim::validate::storable(&value, 0).map_err(ApiError::Scim)?;
    Ok(value)
}

/// A group's PatchOp, counted but for its members.
#[derive(Debug)]
pub struct GroupPatchJson(pub Value);

impl FromRequest for GroupPatchJson {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |bytes| {
            let left = Cell::new(USER_PATCH_VALUES);
            finish(bytes, |text| patch_op(text, &left, true)).map(GroupPatchJson)
        })
    }
}

/// A BulkRequest: at most `maxOperations` operations (413 past it, found while parsing),
/// each operation's `data` counted by what it is (a user body or PatchOp; a group's, its
/// members aside) and all of them within [`BULK_VALUES`].
#[derive(Debug)]
pub struct BulkJson(pub Value);

fn bulk(raw: &str, global: &Cell<usize>) -> Result<Value, serde_json::Error> {
    let element = || WithRaw {
        left: global,
        raw_key: "data",
        finish: |fields: &Map<String, Value>, raw: Box<RawValue>| {
            let method = get(fields, "method").and_then(Value::as_str).unwrap_or("");
            let path = get(fields, "path").and_then(Value::as_str).unwrap_or("");
            let path = path.trim_start_matches('/');
            let groups = path
                .get(..6)
                .is_some_and(|p| p.eq_ignore_ascii_case("Groups"));
            let patch = method.eq_ignore_ascii_case("PATCH");
            let limit = if patch {
                USER_PATCH_VALUES
            } else {
                USER_BODY_VALUES
            };
            // This operation's budget: its own limit, within what the request has left.
            let left = Cell::new(limit.min(global.get()));
            let start = left.get();
            let parsed = match (groups, patch) {
                (true, true) => patch_op(raw.get(), &left, true),
                (true, false) => members_exempt(raw.get(), &left),
                (false, true) => patch_op(raw.get(), &left, false),
                (false, false) => counted(raw.get(), &left),
            }?;
            global.set(global.get() - (start - left.get()));
            Ok(parsed)
        },
    };
    with_operations(raw, global, |ops| {
        whole(
            ops,
            true,
            Elements {
                left: global,
                max: MAX_OPERATIONS,
                element,
            },
        )
    })
}

impl FromRequest for BulkJson {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |bytes| {
            let global = Cell::new(BULK_VALUES);
            finish(bytes, |text| bulk(text, &global)).map(BulkJson)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group_patch(body: &Value, budget: usize) -> Result<Value, serde_json::Error> {
        patch_op(&body.to_string(), &Cell::new(budget), true)
    }

    #[test]
    fn a_group_patch_is_rebuilt_as_it_was_sent_whatever_the_member_order() {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"value": [{"value": "u1"}, {"value": "u2"}], "op": "add", "path": "members"},
            {"op": "replace", "path": "displayName", "value": "Eng"},
            {"op": "add", "value": {"displayName": "x", "members": [{"value": "u3"}]}},
            {"op": "remove", "path": "members[value eq \"u1\"]"},
        ]});
        assert_eq!(group_patch(&body, 100).unwrap(), body);
    }

    #[test]
    fn member_values_are_not_counted_and_everything_else_is() {
        let members: Vec<Value> = (0..5000)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect();
        let big = json!({"Operations": [
            {"value": members.clone(), "op": "add", "path": "Members"},
            {"op": "add", "value": {"members": members}},
        ]});
        assert!(group_patch(&big, 50).is_ok());
        let wide: Map<String, Value> = (0..60).map(|i| (format!("x{i}"), json!(i))).collect();
        let stuffed = json!({"Operations": [{"op": "add", "value": wide}]});
        let error = group_patch(&stuffed, 50).unwrap_err();
        assert!(error.to_string().starts_with(TOO_MANY), "{error}");
        let attribute_named_like_members = json!({"Operations": [{"op": "add", "path": "membersCount", "value": (0..60).collect::<Vec<_>>()}]});
        assert!(group_patch(&attribute_named_like_members, 50).is_err());
    }

    #[test]
    fn bulk_operations_are_counted_by_what_they_are_and_limited_in_number() {
        let members: Vec<Value> = (0..5000)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"data": {"displayName": "g", "members": members}, "method": "POST", "path": "/Groups", "bulkId": "g"},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "a"}},
            {"method": "DELETE", "path": "/Users/x"},
        ]});
        assert_eq!(
            bulk(&body.to_string(), &Cell::new(BULK_VALUES)).unwrap(),
            body
        );

        let wide: Map<String, Value> = (0..USER_BODY_VALUES + 1)
            .map(|i| (format!("x{i}"), json!(i)))
            .collect();
        let one = json!({"Operations": [{"data": wide, "method": "POST", "path": "/Users"}]});
        assert!(
            bulk(&one.to_string(), &Cell::new(BULK_VALUES))
                .unwrap_err()
                .to_string()
                .starts_with(TOO_MANY)
        );

        let small: Map<String, Value> = (0..50).map(|i| (format!("x{i}"), json!(i))).collect();
        let many: Vec<Value> = (0..30)
            .map(|_| json!({"method": "POST", "path": "/Users", "data": small}))
            .collect();
        let error = bulk(&json!({"Operations": many}).to_string(), &Cell::new(1000)).unwrap_err();
        assert!(
            error.to_string().starts_with(TOO_MANY),
            "the request's budget: {error}"
        );

        let ops: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        let error = bulk(
            &json!({"Operations": ops}).to_string(),
            &Cell::new(BULK_VALUES),
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with(TOO_MANY_OPERATIONS),
            "{error}"
        );
    }
}
