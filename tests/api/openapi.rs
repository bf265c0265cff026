//! The OpenAPI contract: `openapi/openapi.json` is what the code generates (regenerate with
//! `cargo run -q -- openapi > openapi/openapi.json`), the server serves it, and Swagger UI
//! comes from the binary.

use crate::helpers::{Backend, spawn_app};

#[test]
fn the_committed_openapi_document_is_what_the_code_generates() {
    let path = format!("{}/openapi/openapi.json", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = scimbus::http::openapi::document_json().unwrap();
    assert!(
        committed == generated,
        "openapi/openapi.json differs from the code: run `cargo run -q -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn the_committed_console_document_is_what_the_code_generates() {
    let path = format!("{}/openapi/console.json", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = scimbus::http::console::document_json().unwrap();
    assert!(
        committed == generated,
        "openapi/console.json differs from the code: run `cargo run -q -- openapi --console > openapi/console.json`"
    );
}

/// An application credential's receiver refuses `after` (its lanes start at each tenant's
/// latest event): its body's schema does not offer it, a tenant's receiver's does.
#[test]
fn an_application_credentials_receiver_body_has_no_after() {
    let doc = scimbus::http::openapi::document().unwrap();
    let schema_of = |path: &str| {
        let reference = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        doc["components"]["schemas"][reference.as_str()].clone()
    };
    let app = schema_of("/admin/v1/apps/{id}/receivers");
    let tenant = schema_of("/admin/v1/tenants/{slug}/receivers");
    assert!(app["properties"].get("after").is_none(), "{app}");
    assert_eq!(app["additionalProperties"], false);
    assert!(app["properties"].get("endpoint").is_some(), "{app}");
    assert!(tenant["properties"].get("after").is_some(), "{tenant}");
}

#[test]
fn every_route_is_documented_with_the_scim_error_and_the_bearer_scheme() {
    let doc: serde_json::Value =
        serde_json::from_str(&scimbus::http::openapi::document_json().unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/scim/v2/{tenant}/Users",
        "/scim/v2/{tenant}/Users/{id}",
        "/scim/v2/{tenant}/Users/.search",
        "/scim/v2/{tenant}/Groups",
        "/scim/v2/{tenant}/Groups/{id}",
        "/scim/v2/{tenant}/Groups/.search",
        "/scim/v2/{tenant}/.search",
        "/scim/v2/{tenant}/ServiceProviderConfig",
        "/scim/v2/{tenant}/ResourceTypes",
        "/scim/v2/{tenant}/ResourceTypes/{name}",
        "/scim/v2/{tenant}/Schemas",
        "/scim/v2/{tenant}/Schemas/{urn}",
        "/scim/v2/{tenant}/Me",
        "/events/v1/{tenant}",
        "/events/v1/{tenant}/snapshot/{kind}",
        "/events/v1/{tenant}/snapshot/{kind}/{id}",
        "/admin/v1/tenants",
        "/admin/v1/tenants/{slug}",
        "/admin/v1/tenants/{slug}/tokens",
        "/admin/v1/tenants/{slug}/tokens/{id}",
        "/admin/v1/tenants/{slug}/events/purge",
        "/admin/v1/audit",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["ScimError"].is_object());
    let users = &paths["/scim/v2/{tenant}/Users"]["post"];
    assert!(
        users["requestBody"]["content"]["application/scim+json"].is_object(),
        "{users}"
    );
}

#[tokio::test]
async fn the_server_serves_its_document_and_swagger_ui_offline() {
    let app = spawn_app(Backend::Sqlite).await;
    let served: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&scimbus::http::openapi::document_json().unwrap()).unwrap();
    assert_eq!(served, generated);
    let ui = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "assets come from the binary, not a CDN"
    );
}
