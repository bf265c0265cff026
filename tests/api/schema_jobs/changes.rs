//! Schema changes: dry runs, updates that add and widen, refused narrowings, wrong types
//! corrected by removing and registering again.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, USER_URN, assert_scim_error, spawn_app};

use super::{
    EXT, admin_get, at_ext, column, definition, found, registered_schemas, schema_request,
    user_with,
};

both_backends!(
    a_dry_run_reports_what_a_change_would_find_and_stores_nothing,
    an_update_adds_and_widens_and_a_narrowing_is_refused_leaving_everything_as_it_was,
    a_wrong_type_is_corrected_by_removing_and_registering_again,
);

async fn a_dry_run_reports_what_a_change_would_find_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app
        .create_user(&user_with("ada", json!({"costCenter": "CC-1", "badge": 7})))
        .await;
    let bob = app
        .create_user(&user_with("bob", json!({"badge": "B-12"})))
        .await;
    app.create_user(&json!({"schemas": [USER_URN], "userName": "cy"}))
        .await;

    let response = schema_request(
        &app,
        Method::POST,
        "?dryRun=true",
        Some(definition("integer")),
    )
    .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["action"], "register");
    assert_eq!(report["schema"]["id"], EXT);
    assert_eq!(report["resourceType"], "User");
    assert_eq!(report["checked"], 3);
    assert_eq!(report["withValues"], 2);
    assert_eq!(report["nonConformingCount"], 1);
    assert_eq!(report["nonConforming"][0]["id"], bob["id"]);
    assert!(
        report["nonConforming"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("badge")
    );
    // Nothing was stored: no registration, no job, no audit entry, filters do not know it.
    assert_eq!(registered_schemas(&app).await, json!([]));
    let jobs: Value = admin_get(&app, "/tenants/acme/jobs").await;
    assert_eq!(jobs["jobs"], json!([]));
    assert!(app.audit_of("", "schema.register").await.is_empty());
    assert_eq!(found(&app, &format!("{EXT}:badge gt 5")).await, Err(400));
    // An unknown query parameter is refused, not read as a change without a dry run; so
    // are those of the journal beside it.
    for path in [
        "/tenants/acme/schemas?dryrun=true",
        "/tenants/acme/journal?bogus=1",
    ] {
        let method = if path.contains("schemas") {
            Method::POST
        } else {
            Method::GET
        };
        let refused = app.admin(method, path, Some(definition("integer"))).await;
        assert_scim_error(refused, 400, Some("invalidValue")).await;
    }
    assert_eq!(registered_schemas(&app).await, json!([]));
    // A dry run checks the definition as the change would.
    let bad = schema_request(
        &app,
        Method::POST,
        "?dryRun=true",
        Some(json!({"id": "nope", "attributes": [{"name": "a"}]})),
    )
    .await;
    assert_scim_error(bad, 400, Some("invalidValue")).await;

    // Registered, then a dry run of its removal says how many resources it would untype.
    let job = app
        .change_schema(Method::POST, "", Some(definition("integer")))
        .await;
    assert_eq!(job["nonConformingCount"], 1);
    let response = schema_request(&app, Method::DELETE, &at_ext(true), None).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["action"], "remove");
    assert!(report.get("schema").is_none(), "{report}");
    assert_eq!(
        (report["checked"].as_u64(), report["withValues"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        registered_schemas(&app).await[0]["id"],
        EXT,
        "still registered"
    );
    assert_eq!(found(&app, &format!("{EXT}:badge eq 7")).await, Ok(1));
    let stored: Value = app
        .get(&format!("/Users/{}", ada["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored[EXT]["badge"], 7);
}

async fn an_update_adds_and_widens_and_a_narrowing_is_refused_leaving_everything_as_it_was(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user(&user_with("ada", json!({"badge": 7, "level": 2.5})))
        .await;
    app.change_schema(Method::POST, "", Some(definition("integer")))
        .await;
    // A decimal badge does not fit yet, and `level` is not a known attribute.
    let refused = app
        .post("/Users", &user_with("bob", json!({"badge": 7.5})))
        .await;
    assert_scim_error(refused, 400, Some("invalidValue")).await;
    assert_eq!(found(&app, &format!("{EXT}:level gt 2")).await, Err(400));

    let mut widened = definition("decimal");
    widened["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "level", "type": "decimal"}));
    let response = schema_request(&app, Method::PUT, &at_ext(true), Some(widened.clone())).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (
            report["action"].as_str(),
            report["withValues"].as_u64(),
            report["nonConformingCount"].as_u64()
        ),
        (Some("update"), Some(1), Some(0))
    );

    let job = app
        .change_schema(Method::PUT, &at_ext(false), Some(widened))
        .await;
    assert_eq!(job["action"], "update");
    assert_eq!(job["state"], "succeeded");
    assert_eq!(
        (job["processed"].as_u64(), job["total"].as_u64()),
        (Some(1), Some(1))
    );
    // The stored value of the added attribute is filterable; the widened type takes 7.5.
    assert_eq!(found(&app, &format!("{EXT}:level gt 2")).await, Ok(1));
    assert_eq!(
        app.post("/Users", &user_with("bob", json!({"badge": 7.5})))
            .await
            .status(),
        201
    );
    assert_eq!(found(&app, &format!("{EXT}:badge gt 7")).await, Ok(1));
    let schema: Value = admin_get(&app, &format!("/tenants/acme/schemas/{EXT}")).await;
    let types = column(&schema["attributes"], "type");
    assert_eq!(types, ["string", "decimal", "decimal"]);

    // Narrowing, leaving an attribute out, another id, another resource type: refused,
    // and nothing changes (the schema, the jobs, the audit log).
    let before = (
        registered_schemas(&app).await,
        admin_get(&app, "/tenants/acme/jobs").await,
    );
    let mut other_type = definition("decimal");
    other_type["resourceType"] = json!("Group");
    let mut other_id = definition("decimal");
    other_id["id"] = json!("urn:example:other:1.0:User");
    for (bad, why) in [
        (definition("string"), "from decimal to string"),
        (definition("decimal"), "`level` is left out"),
        (other_type, "resource type"),
        (other_id, "is not the URN it updates"),
    ] {
        let body = assert_scim_error(
            schema_request(&app, Method::PUT, &at_ext(false), Some(bad)).await,
            400,
            Some("invalidValue"),
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    let after = (
        registered_schemas(&app).await,
        admin_get(&app, "/tenants/acme/jobs").await,
    );
    assert_eq!(before, after);
    assert_eq!(app.audit_of("", "schema.update").await.len(), 1);
    // Unknown ones are 404.
    let missing = schema_request(
        &app,
        Method::PUT,
        "/urn:example:none:1.0:User",
        Some(definition("decimal")),
    )
    .await;
    assert_scim_error(missing, 404, None).await;
    assert_scim_error(
        schema_request(&app, Method::DELETE, "/urn:example:none:1.0:User", None).await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        schema_request(&app, Method::GET, "/urn:example:none:1.0:User", None).await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        app.admin(Method::GET, "/tenants/acme/jobs/nope", None)
            .await,
        404,
        None,
    )
    .await;
    // Another tenant sees neither the extension nor its jobs.
    let job_id = job["id"].as_str().unwrap();
    assert_scim_error(
        app.admin(Method::GET, &format!("/tenants/other/jobs/{job_id}"), None)
            .await,
        404,
        None,
    )
    .await;
    assert_scim_error(
        app.admin(Method::GET, &format!("/tenants/other/schemas/{EXT}"), None)
            .await,
        404,
        None,
    )
    .await;
}

/// The story of the issue: the badge was registered as an integer, but Entra sends it as a
/// string, and every such request fails. The operator corrects it without SQL.
async fn a_wrong_type_is_corrected_by_removing_and_registering_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user_with("ada", json!({"badge": 7})))
        .await;
    app.change_schema(Method::POST, "", Some(definition("integer")))
        .await;
    let refused = app
        .post("/Users", &user_with("bob", json!({"badge": "B-12"})))
        .await;
    assert_scim_error(refused, 400, Some("invalidValue")).await;
    // Integer to string is not a widening (7 is not a string): an update says what to do.
    let body = assert_scim_error(
        schema_request(
            &app,
            Method::PUT,
            &at_ext(false),
            Some(definition("string")),
        )
        .await,
        400,
        Some("invalidValue"),
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("remove the extension and register"),
        "{body}"
    );

    let removed = app
        .change_schema(Method::DELETE, &at_ext(false), None)
        .await;
    assert_eq!(
        (removed["action"].as_str(), removed["state"].as_str()),
        (Some("remove"), Some("succeeded"))
    );
    // Unregistered: values are kept as sent and are not filterable.
    assert_eq!(registered_schemas(&app).await, json!([]));
    assert_eq!(found(&app, &format!("{EXT}:badge eq 7")).await, Err(400));
    let discovery = app.get(&format!("/Schemas/{EXT}")).await;
    assert_eq!(discovery.status(), 404);
    assert_eq!(
        app.post("/Users", &user_with("bob", json!({"badge": "B-12"})))
            .await
            .status(),
        201
    );

    // A dry run of the corrected registration shows the one value that will not fit.
    let report: Value = schema_request(
        &app,
        Method::POST,
        "?dryRun=true",
        Some(definition("string")),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (
            report["withValues"].as_u64(),
            report["nonConformingCount"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let job = app
        .change_schema(Method::POST, "", Some(definition("string")))
        .await;
    assert_eq!(job["nonConformingCount"], 1);
    assert_eq!(
        found(&app, &format!("{EXT}:badge eq \"b-12\"")).await,
        Ok(1)
    );
    assert_eq!(
        app.post("/Users", &user_with("cy", json!({"badge": "C-3"})))
            .await
            .status(),
        201
    );
    // Each step is audited with its operator.
    for action in ["schema.register", "schema.remove"] {
        let entries = app.audit_of("", action).await;
        assert!(
            entries
                .iter()
                .all(|e| e["actor"].as_str().unwrap().starts_with("admin:")),
            "{entries:?}"
        );
    }
    assert_eq!(app.audit_of("", "schema.register").await.len(), 2);
    let jobs: Value = admin_get(&app, "/tenants/acme/jobs").await;
    let actions = column(&jobs["jobs"], "action");
    assert_eq!(actions, ["register", "remove", "register"], "newest first");
}
