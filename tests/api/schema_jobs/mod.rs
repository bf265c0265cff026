//! Extensions that can be fixed: a change of a tenant's extension is previewed against the
//! stored resources (dry run), applied (register, update that only widens, removal) with
//! a 202 and a re-index job, and a wrong type is corrected without SQL. Jobs report their
//! progress, are superseded by a later change, resume after their process stops, and
//! never write a search document computed with a registry no longer in force.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, USER_URN};

mod changes;
mod reindex;

const EXT: &str = "urn:example:acme:2.0:User";

fn definition(badge: &str) -> Value {
    json!({
        "id": EXT,
        "name": "AcmeUser",
        "attributes": [
            {"name": "costCenter", "type": "string"},
            {"name": "badge", "type": badge}
        ]
    })
}

fn user_with(name: &str, custom: Value) -> Value {
    json!({"schemas": [USER_URN, EXT], "userName": name, EXT: custom})
}

/// How many users `filter` finds, or the SCIM error status it answers.
async fn found(app: &TestApp, filter: &str) -> Result<u64, u16> {
    let response = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", filter)])
        .send()
        .await
        .unwrap();
    if !response.status().is_success() {
        return Err(response.status().as_u16());
    }
    let body: Value = response.json().await.unwrap();
    Ok(body["totalResults"].as_u64().unwrap())
}

async fn schema_request(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    app.admin(method, &format!("/tenants/acme/schemas{path}"), body)
        .await
}

/// `PUT|DELETE /schemas/{EXT}` (`?dryRun=true` with `dry`).
fn at_ext(dry: bool) -> String {
    format!("/{EXT}{}", if dry { "?dryRun=true" } else { "" })
}

/// `GET /admin/v1{path}`, its JSON body.
async fn admin_get(app: &TestApp, path: &str) -> Value {
    app.admin(Method::GET, path, None)
        .await
        .json()
        .await
        .unwrap()
}

/// The string `field` of each element of the array `list`.
fn column<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap())
        .collect()
}

async fn registered_schemas(app: &TestApp) -> Value {
    admin_get(app, "/tenants/acme/schemas").await["schemas"].clone()
}
