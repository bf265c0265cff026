//! The exact contract (issue 23): what the OpenAPI document states the server does, and the
//! server behaviour the all-checks schemathesis run (`scripts/api-fuzz`) found it lacking.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_scim_error, spawn_app};

both_backends!(
    a_search_request_of_the_wrong_types_answers_400_and_message_urns_match_in_any_case,
    a_cursor_beside_a_negative_count_answers_invalid_count_on_the_root_search_too,
    whole_numbers_written_with_a_fraction_are_integers,
    an_extension_definition_with_a_non_string_type_answers_400,
);

const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

fn doc() -> Value {
    serde_json::from_str(&scimbus::http::openapi::document_json().unwrap()).unwrap()
}

#[test]
fn message_bodies_must_contain_their_urn_in_any_case() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    for (component, urn_end) in [
        ("UserRequest", "[Uu][Ss][Ee][Rr]$"),
        ("GroupRequest", "[Gg][Rr][Oo][Uu][Pp]$"),
        ("PatchOp", "[Pp][Aa][Tt][Cc][Hh][Oo][Pp]$"),
        ("SearchRequest", "[Rr][Ee][Qq][Uu][Ee][Ss][Tt]$"),
        ("BulkRequest", "[Rr][Ee][Qq][Uu][Ee][Ss][Tt]$"),
    ] {
        let pattern = schemas[component]["properties"]["schemas"]["contains"]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{component}: no `contains`"));
        assert!(pattern.ends_with(urn_end), "{component}: {pattern}");
    }
    // A SearchRequest may leave `schemas` out; the others may not.
    let required = |c: &str| {
        schemas[c]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(!required("SearchRequest").contains(&json!("schemas")));
    assert!(required("UserRequest").contains(&json!("userName")));
    assert!(required("GroupRequest").contains(&json!("displayName")));
}

#[test]
fn every_string_the_server_reads_refuses_nul_and_count_has_no_minimum() {
    let doc = doc();
    // Query parameters: no NUL; `count` accepts negative values (RFC 7644 §3.4.2.4).
    let list = &doc["paths"]["/scim/v2/{tenant}/Users"]["get"]["parameters"];
    for p in list.as_array().unwrap() {
        let schema = &p["schema"];
        if schema["type"] == "string" && schema.get("enum").is_none() {
            // The tenant's own pattern (`[a-z0-9-]`) has no NUL; the others say so.
            let pattern = schema["pattern"].as_str().unwrap_or_default();
            assert!(
                p["name"] == "tenant" || pattern.contains("\\u0000"),
                "{}: {pattern}",
                p["name"]
            );
        }
        if p["name"] == "count" {
            assert!(schema.get("minimum").is_none(), "{schema}");
        }
    }
    // Open values are storable JSON: no NUL in strings or names, bounded numbers.
    let any = &doc["components"]["schemas"]["JsonValue"]["anyOf"];
    assert!(any[0]["pattern"].as_str().unwrap().contains("\\u0000"));
    assert_eq!(any[1]["maximum"], json!(1e300));
    let patch_value = &doc["components"]["schemas"]["PatchOperation"]["properties"]["value"];
    assert_eq!(patch_value["$ref"], "#/components/schemas/JsonValue");
    // The events filter names the event types.
    let pull = &doc["paths"]["/events/v1/{tenant}"]["get"]["parameters"];
    let types = pull
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "types")
        .unwrap();
    assert!(
        types["schema"]["pattern"]
            .as_str()
            .unwrap()
            .contains("scimbus\\.user\\.created")
    );
}

async fn a_search_request_of_the_wrong_types_answers_400_and_message_urns_match_in_any_case(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    for body in [
        json!({"schemas": [SEARCH_URN], "startIndex": {}}),
        json!({"schemas": [SEARCH_URN], "count": "five"}),
        json!({"schemas": [SEARCH_URN], "filter": 5}),
        json!({"schemas": [SEARCH_URN], "attributes": [1]}),
        json!({"schemas": [SEARCH_URN], "cursor": "", "startIndex": -9_223_372_036_854_775_809.0}),
    ] {
        let response = app.post("/Users/.search", &body).await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
    let upper = SEARCH_URN.to_uppercase();
    let response = app
        .post("/Users/.search", &json!({"schemas": [upper], "count": 1.0}))
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:bulkrequest"],
                "failOnErrors": 1.0,
                "Operations": [],
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn a_cursor_beside_a_negative_count_answers_invalid_count_on_the_root_search_too(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let body = json!({"schemas": [SEARCH_URN], "cursor": "", "count": -1});
    for path in ["/.search", "/Users/.search"] {
        let response = app.post(path, &body).await;
        assert_scim_error(response, 400, Some("invalidCount")).await;
    }
    // Without a cursor, a negative count is 0 (RFC 7644 §3.4.2.4).
    let response = app
        .post("/.search", &json!({"schemas": [SEARCH_URN], "count": -1}))
        .await;
    assert_eq!(response.status(), 200);
}

async fn whole_numbers_written_with_a_fraction_are_integers(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/tenants/{}/brake", app.tenant);
    let view: Value = app
        .admin(Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    let mut settings = view["settings"].clone();
    settings["window_seconds"] = json!(600.0);
    settings["users"]["count"] = json!(2601.0);
    let response = app.admin(Method::PUT, &path, Some(settings)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["settings"]["window_seconds"], 600);
    assert_eq!(view["settings"]["users"]["count"], 2601);
    let mut settings = view["settings"].clone();
    settings["window_seconds"] = json!(600.5);
    let response = app.admin(Method::PUT, &path, Some(settings)).await;
    assert_scim_error(response, 400, Some("invalidSyntax")).await;
    // Nothing changed.
    let view: Value = app
        .admin(Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["settings"]["window_seconds"], 600);
}

async fn an_extension_definition_with_a_non_string_type_answers_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/tenants/{}/schemas", app.tenant);
    let definition = json!({
        "id": "urn:example:exact:1.0:User",
        "attributes": [{"name": "level", "type": 5}],
    });
    let response = app.admin(Method::POST, &path, Some(definition)).await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    // Nothing was registered: the user schema has no such extension.
    let response = app.get("/Schemas/urn:example:exact:1.0:User").await;
    assert_eq!(response.status(), 404);
}
