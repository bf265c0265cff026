//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz) and of the test that replays
//! their committed corpus and crash inputs (`tests/fuzz_corpus.rs`). Each takes arbitrary
//! bytes and must return — an error is fine, a panic or a hang is a bug.

use serde_json::{Map, Value, json};

use crate::scim::patch;
use crate::scim::query::{parse_filter, parse_sort};
use crate::scim::schema::{Registry, USER_URN};
use crate::scim::validate::validate_resource;

/// The stored document PATCH targets apply to: a full Okta/Entra-style user.
fn base_user() -> Map<String, Value> {
    let doc = json!({
        "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "bjensen@example.com",
        "externalId": "00u1",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-0100", "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Tour", "manager": {"value": "m1"}
        }
    });
    match doc {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The filter parser and its typing against the User schema, then the sort parser.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = Registry::core();
    let _ = parse_filter(registry, registry.user(), text);
    let _ = parse_filter(registry, registry.group(), text);
    let _ = parse_sort(registry, registry.user(), text, Some("descending"));
}

/// The PATCH path parser, through a one-operation PatchOp applied to a user.
pub fn patch_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": path, "value": "x"}]
    });
    if let Ok(ops) = patch::parse_patch(body) {
        let registry = Registry::core();
        let _ = patch::apply(registry, registry.user(), &base_user(), "u1", &ops);
    }
}

/// A whole PatchOp body (any JSON): the dialect step, then the engine, on a user.
pub fn patch_apply(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(ops) = patch::parse_patch(body) {
        let registry = Registry::core();
        let _ = patch::apply(registry, registry.user(), &base_user(), "u1", &ops);
        let _ = patch::apply(registry, registry.group(), &Map::new(), "g1", &ops);
    }
}

/// Resource validation of any JSON body as a User and as a Group.
pub fn validate(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let registry = Registry::core();
    let _ = validate_resource(registry, registry.user(), body.clone());
    let _ = validate_resource(registry, registry.group(), body);
}
