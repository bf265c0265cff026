//! Discovery endpoints (RFC 7644 §4) per tenant, generated from the registry.

use serde_json::Value;

use crate::helpers::{Backend, assert_scim_error, spawn_app};

#[tokio::test]
async fn service_provider_config_tells_the_truth() {
    let app = spawn_app(Backend::Sqlite).await;
    let config = app.fetch("/ServiceProviderConfig").await;
    assert_eq!(
        config["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], true);
    assert_eq!(config["bulk"]["maxOperations"], 1000);
    assert_eq!(config["bulk"]["maxPayloadSize"], 8 * 1024 * 1024);
    assert_eq!(
        config["filter"],
        serde_json::json!({"supported": true, "maxResults": 1000})
    );
    assert_eq!(config["sort"]["supported"], true);
    assert_eq!(config["etag"]["supported"], true);
    assert_eq!(config["changePassword"]["supported"], false);
    assert_eq!(
        config["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
    let pagination = &config["pagination"];
    assert_eq!(pagination["cursor"], true);
    assert_eq!(pagination["index"], true);
    assert_eq!(pagination["defaultPaginationMethod"], "index");
    assert_eq!(pagination["defaultPageSize"], 100);
    assert_eq!(pagination["maxPageSize"], 1000);
    assert_eq!(pagination["cursorTimeout"], 3600);
    assert_eq!(
        config["meta"]["location"],
        format!("{}/ServiceProviderConfig", app.base)
    );
}

#[tokio::test]
async fn resource_types_list_users_with_the_enterprise_extension_and_groups() {
    let app = spawn_app(Backend::Sqlite).await;
    let list = app.fetch("/ResourceTypes").await;
    assert_eq!(list["totalResults"], 2);
    let user = app.fetch("/ResourceTypes/User").await;
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_eq!(
        user["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    assert_eq!(user["schemaExtensions"][0]["required"], false);
    let group = app.fetch("/ResourceTypes/Group").await;
    assert_eq!(group["endpoint"], "/Groups");
    assert_scim_error(app.get("/ResourceTypes/Printer").await, 404, None).await;
}

#[tokio::test]
async fn schemas_come_from_the_registry() {
    let app = spawn_app(Backend::Sqlite).await;
    let list = app.fetch("/Schemas").await;
    let ids: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ]
    );
    let group = app
        .fetch("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        .await;
    let display: &Value = &group["attributes"][0];
    assert_eq!(display["name"], "displayName");
    assert_eq!(display["uniqueness"], "server");
    let members = &group["attributes"][1];
    assert_eq!(members["name"], "members");
    assert_eq!(members["multiValued"], true);
    assert_scim_error(app.get("/Schemas/urn:nope").await, 404, None).await;
}

#[tokio::test]
async fn me_answers_501() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_scim_error(app.get("/Me").await, 501, None).await;
}
