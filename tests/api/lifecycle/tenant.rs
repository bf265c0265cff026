//! Tenants: the first event, deletion (revoked at once, purged in batches, announced), slugs
//! never reused, long slugs and failing purges.

use chrono::TimeDelta;
use reqwest::Method;
use scimbus::domain::Scope;
use scimbus::service::maintenance::{self, PurgeStep};
use scimbus::store::outbox;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, spawn_app, user};
use crate::outbox::schema_for;

use super::{create_users, tenant_row};

both_backends!(
    a_new_tenants_first_event_is_tenant_created,
    deleting_a_tenant_revokes_at_once_purges_in_batches_then_emits_tenant_deleted,
    a_deleted_tenant_slug_is_never_reused,
    a_63_character_slug_is_purged_and_a_failing_purge_holds_up_no_other,
);

async fn a_new_tenants_first_event_is_tenant_created(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(response.status(), 201);
    let events = app.events_of("globex").await;
    assert!(events.is_empty(), "events_of leaves tenant.created out");
    let t = tenant_row(&app, "globex").await.unwrap();
    let rows = outbox::list_after(app.ctx.store.conn(), &t.id, 0)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let created = &rows[0];
    assert_eq!(created.sequence, 1);
    assert_eq!(created.event_type, "scimbus.tenant.created");
    assert_eq!(created.routing_key, "globex.tenant.created");
    assert_eq!(created.subject, "Tenants/globex");
    assert_eq!(created.payload["data"], json!({"tenant": "globex"}));
    assert_eq!(created.payload["time"], json!(t.created_at));
    let validator = jsonschema::validator_for(&schema_for("scimbus.tenant.created")).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&created.payload)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // A refused creation (slug taken) writes no event.
    let response = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_scim_error(response, 409, Some("uniqueness")).await;
    let rows = outbox::list_after(app.ctx.store.conn(), &t.id, 0)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

async fn count(app: &TestApp, table: &str, tenant_id: &scimbus::domain::TenantId) -> i64 {
    use sea_orm::ConnectionTrait;
    let backend = app.ctx.store.db_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table} WHERE tenant_id = $1")
        }
        _ => format!("SELECT COUNT(*) AS n FROM {table} WHERE tenant_id = ?"),
    };
    let row = app
        .ctx
        .store
        .conn()
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [tenant_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn deleting_a_tenant_revokes_at_once_purges_in_batches_then_emits_tenant_deleted(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let ids = create_users(&app, 3).await;
    let group = app
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Staff",
                "members": [{"value": ids[0]}, {"value": ids[1]}],
            }),
        )
        .await;
    assert_eq!(group.status(), 201);
    let events_before = app.events().await.len();
    let other_users = {
        let token = issue(&app.ctx, "other", vec![Scope::Scim]).await;
        let response = app
            .client
            .post(format!("{}/scim/v2/other/Users", app.address))
            .bearer_auth(&token)
            .json(&user("kept"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        token
    };

    let response = app.admin(Method::DELETE, "/tenants/acme", None).await;
    assert_eq!(response.status(), 204);
    // Revoked at once: the very next request fails, before any purge ran.
    assert_eq!(app.get("/Users").await.status(), 401);
    let tenant = tenant_row(&app, "acme").await.unwrap();
    assert!(tenant.deleted_at.is_some() && tenant.purged_at.is_none());
    assert_eq!(count(&app, "users", &tenant.id).await, 3);

    let mut steps = Vec::new();
    loop {
        let step = maintenance::purge_once(&app.ctx).await.unwrap();
        if step == PurgeStep::Idle {
            break;
        }
        steps.push(step);
    }
    assert_eq!(
        steps,
        vec![
            PurgeStep::Deleted {
                tenant: "acme".into(),
                rows: 2
            },
            PurgeStep::Deleted {
                tenant: "acme".into(),
                rows: 3
            },
            PurgeStep::Deleted {
                tenant: "acme".into(),
                rows: 1
            },
            PurgeStep::Completed {
                tenant: "acme".into()
            },
        ]
    );
    for table in ["users", "groups", "group_members"] {
        assert_eq!(count(&app, table, &tenant.id).await, 0, "{table}");
    }
    let events = app.events().await;
    assert_eq!(
        events.len(),
        events_before + 1,
        "no per-resource events for a purge"
    );
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "scimbus.tenant.deleted");
    assert_eq!(last.routing_key, "acme.tenant.deleted");
    assert_eq!(last.payload["data"], json!({"tenant": "acme"}));
    let validator = jsonschema::validator_for(&schema_for("scimbus.tenant.deleted")).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&last.payload)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(tenant_row(&app, "acme").await.unwrap().purged_at.is_some());
    // A second pass emits nothing more.
    assert_eq!(
        maintenance::purge_once(&app.ctx).await.unwrap(),
        PurgeStep::Idle
    );
    assert_eq!(app.events().await.len(), events_before + 1);
    // The other tenant is untouched.
    let response = app
        .client
        .get(format!("{}/scim/v2/other/Users", app.address))
        .bearer_auth(&other_users)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["totalResults"], 1);
    // Deleting it again: it is gone for the API.
    let response = app.admin(Method::DELETE, "/tenants/acme", None).await;
    assert_scim_error(response, 404, None).await;
}

async fn a_deleted_tenant_slug_is_never_reused(backend: Backend) {
    let app = spawn_app(backend).await;
    create_users(&app, 2).await;
    assert_eq!(
        app.admin(Method::DELETE, "/tenants/acme", None)
            .await
            .status(),
        204
    );
    while maintenance::purge_once(&app.ctx).await.unwrap() != PurgeStep::Idle {}
    let retake = || app.admin(Method::POST, "/tenants", Some(json!({"slug": "acme"})));
    assert_scim_error(retake().await, 409, Some("uniqueness")).await;
    // Within retention nothing is pruned.
    assert_eq!(maintenance::prune_once(&app.ctx).await.unwrap(), 0);
    assert_scim_error(retake().await, 409, Some("uniqueness")).await;
    app.clock.advance(TimeDelta::days(8));
    // acme's four (tenant.created, two users, tenant.deleted) and other's tenant.created.
    assert_eq!(maintenance::prune_once(&app.ctx).await.unwrap(), 5);
    assert!(tenant_row(&app, "acme").await.is_none());
    // Removed, and still never given to another tenant: consumers and routing keys know
    // tenants by slug.
    assert_scim_error(retake().await, 409, Some("uniqueness")).await;
}

/// Makes every purge of `tenant_id` fail, as a database fault would.
async fn refuse_purges_of(app: &TestApp, tenant_id: &scimbus::domain::TenantId) {
    use sea_orm::ConnectionTrait;
    let conn = app.ctx.store.conn();
    let statements = match app.ctx.store.db_backend() {
        sea_orm::DbBackend::Postgres => vec![
            "CREATE FUNCTION refuse_purge() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'injected purge failure'; END $$ LANGUAGE plpgsql"
                .to_owned(),
            format!(
                "CREATE TRIGGER refuse_purge BEFORE DELETE ON users FOR EACH ROW \
                 WHEN (OLD.tenant_id = '{tenant_id}') EXECUTE FUNCTION refuse_purge()"
            ),
        ],
        _ => vec![format!(
            "CREATE TRIGGER refuse_purge BEFORE DELETE ON users \
             WHEN OLD.tenant_id = '{tenant_id}' \
             BEGIN SELECT RAISE(ABORT, 'injected purge failure'); END"
        )],
    };
    for sql in statements {
        conn.execute_unprepared(&sql).await.unwrap();
    }
}

async fn a_63_character_slug_is_purged_and_a_failing_purge_holds_up_no_other(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = format!("l{}", "x".repeat(62));
    let slugs = [long.as_str(), "stuck", "later"];
    for slug in slugs {
        let created = app
            .admin(Method::POST, "/tenants", Some(json!({"slug": slug})))
            .await;
        assert_eq!(created.status(), 201, "{slug}");
        let token = issue(&app.ctx, slug, vec![Scope::Scim]).await;
        let response = app
            .client
            .post(format!("{}/scim/v2/{slug}/Users", app.address))
            .bearer_auth(&token)
            .header("Content-Type", "application/scim+json")
            .body(user("someone").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    refuse_purges_of(&app, &tenant_row(&app, "stuck").await.unwrap().id).await;
    // Deleted in this order: the long slug first, the stuck one before `later`.
    for slug in slugs {
        let deleted = app
            .admin(Method::DELETE, &format!("/tenants/{slug}"), None)
            .await;
        assert_eq!(deleted.status(), 204);
    }
    let mut failures = 0;
    for _ in 0..40 {
        match maintenance::purge_once(&app.ctx).await {
            Ok(PurgeStep::Idle) => break,
            Ok(_) => {}
            Err(_) => failures += 1,
        }
    }
    assert!(
        failures > 0,
        "the injected fault fails the stuck tenant's purge"
    );
    for slug in [long.as_str(), "later"] {
        assert!(
            tenant_row(&app, slug).await.unwrap().purged_at.is_some(),
            "{slug} is purged"
        );
        let events = app.events_of(slug).await;
        let last = events.last().unwrap();
        assert_eq!(last.event_type, "scimbus.tenant.deleted");
        assert_eq!(last.subject, format!("Tenants/{slug}"));
    }
    assert!(tenant_row(&app, "stuck").await.unwrap().purged_at.is_none());
}
