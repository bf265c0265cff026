//! Per-tenant schema extensions: values stored as sent before registration become typed,
//! filterable, sortable and PATCHable by URN path once the extension is registered; values
//! that do not fit are reported and kept; discovery shows the extension to its tenant only.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, assert_scim_error, issue, spawn_app};
use scimbus::domain::Scope;

both_backends!(
    registering_an_extension_types_indexes_and_reports_existing_values,
    registered_attributes_are_validated_patched_and_sorted,
    bad_or_repeated_registrations_are_refused_and_other_tenants_see_nothing,
    write_only_and_never_returned_extension_attributes_are_never_shown_or_published,
    a_multi_valued_attribute_stored_as_one_value_is_filtered_like_a_list,
    a_multi_valued_simple_attribute_matches_when_any_value_does,
);

const OKTA: &str = "urn:okta:acme_scimbus:1.0:user:custom";

fn definition() -> Value {
    json!({
        "id": OKTA,
        "name": "OktaCustom",
        "description": "Okta custom attributes of the acme app",
        "resourceType": "User",
        "attributes": [
            {"name": "costCenter", "type": "string", "description": "Cost center"},
            {"name": "badgeNumber", "type": "integer"},
            {"name": "skills", "type": "string", "multiValued": true}
        ]
    })
}

fn user_with(name: &str, custom: Value) -> Value {
    json!({"schemas": [USER_URN, OKTA], "userName": name, OKTA: custom})
}

async fn filter(app: &TestApp, expression: &str) -> reqwest::Response {
    app.client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", expression)])
        .send()
        .await
        .unwrap()
}

async fn register(app: &TestApp, definition: &Value) -> reqwest::Response {
    app.admin(
        Method::POST,
        "/tenants/acme/schemas",
        Some(definition.clone()),
    )
    .await
}

/// Registers `definition` and waits for its re-index: the finished job.
async fn registered(app: &TestApp, definition: &Value) -> Value {
    let job = app
        .change_schema(Method::POST, "", Some(definition.clone()))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

async fn registering_an_extension_types_indexes_and_reports_existing_values(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app
        .create_user(&user_with(
            "ada",
            json!({"costCenter": "CC-42", "badgeNumber": 7}),
        ))
        .await;
    let bob = app
        .create_user(&user_with(
            "bob",
            json!({"costCenter": "CC-7", "badgeNumber": "B-12"}),
        ))
        .await;
    // Before registration the URN is kept as sent, but it is not a known attribute.
    assert_eq!(bob[OKTA]["badgeNumber"], "B-12");
    let unknown = filter(&app, &format!("{OKTA}:costCenter eq \"CC-42\"")).await;
    assert_scim_error(unknown, 400, Some("invalidFilter")).await;

    let report = registered(&app, &definition()).await;
    assert_eq!(report["processed"], 2);
    assert_eq!(report["total"], 2);
    assert_eq!(report["action"], "register");
    assert_eq!(report["nonConformingCount"], 1);
    assert_eq!(report["nonConforming"][0]["id"], bob["id"]);
    assert!(
        report["nonConforming"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("badgeNumber")
    );
    assert_eq!(report["schema"], OKTA);

    // Existing values are now filterable, case-insensitively as strings are.
    let found: Value = filter(&app, &format!("{OKTA}:costCenter eq \"cc-42\""))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], ada["id"]);
    let found: Value = filter(&app, &format!("{OKTA}:badgeNumber gt 5"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 1, "{found}");
    // The value that does not fit is kept as it was.
    let id = bob["id"].as_str().unwrap();
    let stored: Value = app.get(&format!("/Users/{id}")).await.json().await.unwrap();
    assert_eq!(stored[OKTA]["badgeNumber"], "B-12");

    // Discovery shows the extension.
    let schema: Value = app
        .get(&format!("/Schemas/{OKTA}"))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["costCenter", "badgeNumber", "skills"]);
    let rt: Value = app.get("/ResourceTypes/User").await.json().await.unwrap();
    assert!(
        rt["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["schema"] == OKTA && e["required"] == false),
        "{rt}"
    );
    let listed: Value = app
        .admin(Method::GET, "/tenants/acme/schemas", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["schemas"][0]["id"], OKTA);
}

async fn registered_attributes_are_validated_patched_and_sorted(backend: Backend) {
    let app = spawn_app(backend).await;
    registered(&app, &definition()).await;
    // A value of the wrong type is refused on write, and nothing is stored.
    let refused = app
        .post(
            "/Users",
            &user_with("eve", json!({"badgeNumber": "not a number"})),
        )
        .await;
    assert_scim_error(refused, 400, Some("invalidValue")).await;
    assert_eq!(app.user_count().await, 0);

    let mut ids = Vec::new();
    for (name, cc) in [("carol", "B"), ("dave", "C"), ("erin", "A")] {
        let u = app
            .create_user(&user_with(
                name,
                json!({"costCenter": cc, "badgeNumber": 1}),
            ))
            .await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let sorted: Value = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("sortBy", format!("{OKTA}:costCenter").as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order: Vec<&str> = sorted["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["erin", "carol", "dave"]);

    // PATCH by URN path, Entra style.
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": format!("{OKTA}:costCenter"), "value": "Z"},
            {"op": "Add", "path": format!("{OKTA}:skills"), "value": ["rust", "scim"]}
        ]
    });
    let response = app
        .client
        .patch(app.url(&format!("/Users/{}", ids[0])))
        .bearer_auth(&app.token)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[OKTA]["costCenter"], "Z");
    assert_eq!(body[OKTA]["skills"], json!(["rust", "scim"]));
    let last = app.events().await.pop().unwrap();
    assert_eq!(last.event_type, "scimbus.user.updated");
    assert!(
        last.payload["data"]["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains("costCenter")),
        "{}",
        last.payload
    );
    // A PATCH with the wrong type is refused.
    let bad = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": format!("{OKTA}:badgeNumber"), "value": "x"}]
    });
    let response = app
        .client
        .patch(app.url(&format!("/Users/{}", ids[0])))
        .bearer_auth(&app.token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidValue")).await;
}

async fn bad_or_repeated_registrations_are_refused_and_other_tenants_see_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    registered(&app, &definition()).await;
    let again = register(&app, &definition()).await;
    assert_scim_error(again, 409, Some("uniqueness")).await;
    let bad = register(
        &app,
        &json!({"id": "not-a-urn", "attributes": [{"name": "a"}]}),
    )
    .await;
    assert_scim_error(bad, 400, Some("invalidValue")).await;
    let missing = app
        .admin(Method::POST, "/tenants/nope/schemas", Some(definition()))
        .await;
    assert_scim_error(missing, 404, None).await;
    // The refusals registered nothing.
    let listed: Value = app
        .admin(Method::GET, "/tenants/acme/schemas", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["schemas"].as_array().unwrap().len(), 1);

    // The other tenant's discovery does not have it, and its filters do not know it.
    let token = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    let response = app
        .client
        .get(format!("{}/scim/v2/other/Schemas/{OKTA}", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .client
        .get(format!("{}/scim/v2/other/Users", app.address))
        .bearer_auth(&token)
        .query(&[("filter", format!("{OKTA}:costCenter eq \"x\"").as_str())])
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidFilter")).await;
    // The registration is in the audit log.
    let log: Value = app
        .admin(Method::GET, "/audit?tenant=acme", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "schema.register" && e["target"] == OKTA)
    );
}

/// RFC 7643 §7: `writeOnly` values are never returned, `returned: never` ones neither —
/// in any answer, list, snapshot or event.
async fn write_only_and_never_returned_extension_attributes_are_never_shown_or_published(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let definition = json!({
        "id": OKTA,
        "name": "OktaCustom",
        "resourceType": "User",
        "attributes": [
            {"name": "costCenter", "type": "string"},
            {"name": "pin", "type": "string", "mutability": "writeOnly"},
            {"name": "internalNote", "type": "string", "returned": "never"}
        ]
    });
    registered(&app, &definition).await;
    let hidden = |body: &Value, context: &str| {
        let ext = &body[OKTA];
        assert!(ext.get("pin").is_none(), "{context}: {body}");
        assert!(ext.get("internalNote").is_none(), "{context}: {body}");
    };
    let created = app
        .create_user(&user_with(
            "ada",
            json!({"costCenter": "CC-1", "pin": "1234", "internalNote": "watch"}),
        ))
        .await;
    hidden(&created, "POST");
    assert_eq!(created[OKTA]["costCenter"], "CC-1");
    let id = created["id"].as_str().unwrap();
    let read: Value = app.get(&format!("/Users/{id}")).await.json().await.unwrap();
    hidden(&read, "GET");
    let asked: Value = app
        .get(&format!(
            "/Users/{id}?attributes={OKTA}:internalNote,{OKTA}:pin"
        ))
        .await
        .json()
        .await
        .unwrap();
    hidden(&asked, "GET asking for them");
    let list = app.list_users(&[]).await;
    hidden(&list["Resources"][0], "list");
    let replaced = app
        .put(
            &format!("/Users/{id}"),
            &user_with(
                "ada",
                json!({"costCenter": "CC-2", "pin": "5678", "internalNote": "trusted"}),
            ),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    hidden(&replaced.json().await.unwrap(), "PUT");
    for event in app.events().await {
        let data = &event.payload["data"];
        hidden(&data["resource"], &event.event_type);
        hidden(&data["previous"], &event.event_type);
        assert!(
            !event.payload.to_string().contains("watch")
                && !event.payload.to_string().contains("1234"),
            "{}",
            event.payload
        );
    }
    let reader = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let page: Value = app
        .events_api("acme", "/snapshot/Users", &reader)
        .await
        .json()
        .await
        .unwrap();
    let snapshots = page["events"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1);
    for snapshot in snapshots {
        hidden(&snapshot["data"]["resource"], "snapshot");
    }
}

/// A multi-valued extension attribute that an older row holds as a single value (stored
/// before the registration, as sent) is filtered like a one-element list: no 500.
async fn a_multi_valued_attribute_stored_as_one_value_is_filtered_like_a_list(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user_with("solo", json!({"badges": {"value": "Gold"}})))
        .await;
    let definition = json!({
        "id": OKTA,
        "name": "OktaCustom",
        "resourceType": "User",
        "attributes": [{
            "name": "badges", "type": "complex", "multiValued": true,
            "subAttributes": [{"name": "value", "type": "string"}]
        }]
    });
    registered(&app, &definition).await;
    app.create_user(&user_with(
        "listed",
        json!({"badges": [{"value": "gold"}, {"value": "silver"}]}),
    ))
    .await;
    for expression in [
        format!("{OKTA}:badges.value eq \"gold\""),
        format!("{OKTA}:badges[value eq \"gold\"]"),
    ] {
        let response = filter(&app, &expression).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{expression}: {body}");
        let mut names: Vec<&str> = body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["listed", "solo"], "{expression}");
    }
}

/// RFC 7644 §3.4.2.2: a comparison on a multi-valued attribute is true when any of its
/// values satisfies it; a multi-valued *simple* attribute (Okta's and Entra's string
/// arrays) has no `value` sub-attribute: its elements are the values.
async fn a_multi_valued_simple_attribute_matches_when_any_value_does(backend: Backend) {
    let app = spawn_app(backend).await;
    registered(&app, &definition()).await;
    for (name, skills) in [
        ("ann", json!(["Rust", "scim"])),
        ("bob", json!(["go"])),
        ("cid", json!([])),
    ] {
        app.create_user(&user_with(name, json!({"skills": skills})))
            .await;
    }
    let names = |expression: &'static str| {
        let app = &app;
        async move {
            let response = filter(app, expression).await;
            assert_eq!(response.status(), 200, "{expression}");
            let body: Value = response.json().await.unwrap();
            let mut names: Vec<String> = body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["userName"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    let skills = format!("{OKTA}:skills");
    let query =
        |rest: &str| -> &'static str { Box::leak(format!("{skills} {rest}").into_boxed_str()) };
    assert_eq!(
        names(query("eq \"rust\"")).await,
        vec!["ann"],
        "caseExact false"
    );
    assert_eq!(names(query("eq \"go\"")).await, vec!["bob"]);
    assert_eq!(names(query("sw \"s\"")).await, vec!["ann"]);
    assert_eq!(names(query("pr")).await, vec!["ann", "bob"]);
    assert_eq!(names(query("ne \"go\"")).await, vec!["ann"]);
    let not = Box::leak(format!("not ({skills} eq \"go\")").into_boxed_str());
    assert_eq!(names(not).await, vec!["ann", "cid"]);
}
