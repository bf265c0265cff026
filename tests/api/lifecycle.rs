//! Tenant lifecycle, retention, erasure, token rotation and the audit log (DESIGN 13, 15),
//! stepping `service::maintenance` directly so nothing waits on time.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, spawn_app, spawn_app_with, user};
use crate::outbox::schema_for;
use scimbus::domain::{Scope, TenantSlug};
use scimbus::service::maintenance::{self, PurgeStep};
use scimbus::store::{outbox, tenants};

both_backends!(
    a_new_tenants_first_event_is_tenant_created,
    deleting_a_tenant_revokes_at_once_purges_in_batches_then_emits_tenant_deleted,
    a_deleted_tenant_slug_is_never_reused,
    a_63_character_slug_is_purged_and_a_failing_purge_holds_up_no_other,
    retention_prunes_old_events_and_the_pull_api_answers_410_before_the_mark,
    with_a_relay_retention_keeps_unpublished_events_whatever_their_age,
    unpublished_events_are_kept_by_default_on_postgres_and_pruned_on_a_lone_sqlite,
    erasure_redacts_a_subjects_payloads_and_keeps_the_envelopes,
    several_live_tokens_rotate_with_overlap_and_last_use_is_sampled,
    every_admin_action_is_in_the_audit_log_with_its_actor,
);

async fn create_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let u = app.create_user(&user(&format!("user{i}"))).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    ids
}

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

async fn tenant_row(app: &TestApp, slug: &str) -> Option<scimbus::domain::Tenant> {
    tenants::find(app.ctx.store.conn(), &TenantSlug::parse(slug).unwrap())
        .await
        .unwrap()
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

async fn retention_prunes_old_events_and_the_pull_api_answers_410_before_the_mark(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        &[("SCIMBUS_EVENT_RETENTION_HOURS", "1".to_owned())],
    )
    .await;
    let token = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    create_users(&app, 3).await;
    app.clock.advance(TimeDelta::minutes(61));
    create_users(&app, 0).await;
    let fresh = app.create_user(&user("fresh")).await;
    assert!(fresh["id"].is_string());

    // acme's tenant.created and three users, and other's tenant.created.
    assert_eq!(maintenance::prune_once(&app.ctx).await.unwrap(), 5);
    let sequences: Vec<i64> = app.events().await.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, vec![5]);
    assert_eq!(
        tenant_row(&app, "acme")
            .await
            .unwrap()
            .events_pruned_through,
        4
    );
    // Nothing more to prune; the mark holds.
    assert_eq!(maintenance::prune_once(&app.ctx).await.unwrap(), 0);

    for after in ["0", "3"] {
        let response = app
            .events_api("acme", &format!("?after={after}"), &token)
            .await;
        let body = assert_scim_error(response, 410, None).await;
        assert!(body["detail"].as_str().unwrap().contains("snapshot"));
    }
    let response = app.events_api("acme", "?after=4", &token).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["events"][0]["sequence"], "0000000000000000005");
    // Each tenant has its own mark: other's covers its own tenant.created only.
    let other = tenant_row(&app, "other").await.unwrap();
    assert_eq!(other.events_pruned_through, 1);
}

async fn with_a_relay_retention_keeps_unpublished_events_whatever_their_age(backend: Backend) {
    let app = spawn_app(backend).await;
    create_users(&app, 3).await;
    app.clock.advance(TimeDelta::days(30));
    let mut ctx = app.ctx.clone();
    ctx.keep_unpublished = true;
    // Only the fixture's published tenant.created events (acme's and other's) go.
    assert_eq!(maintenance::prune_once(&ctx).await.unwrap(), 2);
    let tenant = tenant_row(&app, "acme").await.unwrap();
    scimbus::events::sequencer::number_all(&ctx.store)
        .await
        .unwrap();
    // The first two users are published; the third is not: only the first two may go.
    outbox::mark_published(ctx.store.conn(), &[(tenant.id.clone(), 2, 3)], &ctx.now())
        .await
        .unwrap();
    assert_eq!(maintenance::prune_once(&ctx).await.unwrap(), 2);
    let left: Vec<i64> = app.events().await.iter().map(|e| e.sequence).collect();
    assert_eq!(left, vec![4]);
}

async fn erasure_redacts_a_subjects_payloads_and_keeps_the_envelopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = create_users(&app, 2).await;
    let erased = format!("/Users/{}", ids[0]);
    let mut body = user("user0");
    body["name"] = json!({"givenName": "Barbara", "familyName": "Jensen"});
    assert_eq!(app.put(&erased, &body).await.status(), 200);
    assert_eq!(app.delete(&erased).await.status(), 204);
    let before = app.events().await;

    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": format!("Users/{}", ids[0])})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["redacted"], 3);

    let after = app.events().await;
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.id, new.id);
        assert_eq!(old.sequence, new.sequence);
        assert_eq!(new.payload["id"], old.payload["id"]);
        if new.subject == format!("Users/{}", ids[0]) {
            assert_eq!(new.payload["data"], json!({"redacted": true}));
            assert!(!new.payload.to_string().contains("Barbara"));
            let validator = jsonschema::validator_for(&schema_for(&new.event_type)).unwrap();
            assert!(validator.is_valid(&new.payload), "{}", new.payload);
        } else {
            assert_eq!(new.payload, old.payload, "other subjects untouched");
        }
    }
    // Again: nothing left to redact.
    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": format!("Users/{}", ids[0])})),
        )
        .await;
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["redacted"], 0);
    // A subject that is not a resource path is refused, and changes nothing.
    let before_refusal = app.events().await;
    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": "everything"})),
        )
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let after_refusal = app.events().await;
    assert!(
        before_refusal
            .iter()
            .zip(&after_refusal)
            .all(|(a, b)| a.payload == b.payload)
    );
}

async fn several_live_tokens_rotate_with_overlap_and_last_use_is_sampled(backend: Backend) {
    let app = spawn_app(backend).await;
    let issue_named = |name: &'static str| {
        app.admin(
            Method::POST,
            "/tenants/acme/tokens",
            Some(json!({"name": name, "scopes": ["scim"]})),
        )
    };
    let old: Value = issue_named("okta-2026").await.json().await.unwrap();
    let new: Value = issue_named("okta-2027").await.json().await.unwrap();
    let get = |token: String| app.client.get(app.url("/Users")).bearer_auth(token).send();
    let old_secret = old["token"].as_str().unwrap().to_owned();
    let new_secret = new["token"].as_str().unwrap().to_owned();
    // Both work during the overlap.
    assert_eq!(get(old_secret.clone()).await.unwrap().status(), 200);
    assert_eq!(get(new_secret.clone()).await.unwrap().status(), 200);

    let last_used = || async {
        let list: Value = app
            .admin(Method::GET, "/tenants/acme/tokens", None)
            .await
            .json()
            .await
            .unwrap();
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == old["id"])
            .unwrap()["last_used_at"]
            .clone()
    };
    let first = last_used().await;
    assert!(first.is_string(), "the first use is recorded");
    // A use within the sampling interval writes nothing.
    app.clock.advance(TimeDelta::seconds(30));
    assert_eq!(get(old_secret.clone()).await.unwrap().status(), 200);
    assert_eq!(last_used().await, first);
    // Past it, the next use is recorded.
    app.clock.advance(TimeDelta::seconds(31));
    assert_eq!(get(old_secret.clone()).await.unwrap().status(), 200);
    let later = last_used().await;
    assert!(later.as_str().unwrap() > first.as_str().unwrap());

    // Retire the old one: it fails at once, the new one goes on.
    let path = format!("/tenants/acme/tokens/{}", old["id"].as_str().unwrap());
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(get(old_secret).await.unwrap().status(), 401);
    assert_eq!(get(new_secret).await.unwrap().status(), 200);
}

async fn every_admin_action_is_in_the_audit_log_with_its_actor(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = create_users(&app, 1).await;
    let created = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(created.status(), 201);
    let token: Value = app
        .admin(
            Method::POST,
            "/tenants/globex/tokens",
            Some(json!({"name": "entra"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/tenants/globex/tokens/{}", token["id"].as_str().unwrap());
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    let purge = app
        .admin(
            Method::POST,
            "/tenants/acme/events/purge",
            Some(json!({"subject": format!("Users/{}", ids[0])})),
        )
        .await;
    assert_eq!(purge.status(), 200);
    assert_eq!(
        app.admin(Method::DELETE, "/tenants/globex", None)
            .await
            .status(),
        204
    );
    // A refused action records nothing.
    let refused = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(refused.status(), 409);

    let log: Value = app
        .admin(Method::GET, "/audit?tenant=globex", None)
        .await
        .json()
        .await
        .unwrap();
    let entries: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("admin:bootstrap", "tenant.create"),
            ("admin:bootstrap", "token.issue"),
            ("admin:bootstrap", "token.revoke"),
            ("admin:bootstrap", "tenant.delete"),
        ]
    );
    let all: Value = app
        .admin(Method::GET, "/audit?limit=1000", None)
        .await
        .json()
        .await
        .unwrap();
    let purge_entry = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "events.purge")
        .unwrap();
    assert_eq!(purge_entry["tenant"], "acme");
    assert_eq!(purge_entry["target"], format!("Users/{}", ids[0]));
    assert_eq!(purge_entry["detail"]["redacted"], 1);
    // Paging by the last id seen.
    let first: Value = app
        .admin(Method::GET, "/audit?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    let next = first["next"].as_str().unwrap();
    let rest: Value = app
        .admin(
            Method::GET,
            &format!("/audit?after={next}&limit=1000"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rest["entries"].as_array().unwrap().len() + 1,
        all["entries"].as_array().unwrap().len()
    );
    let response = app.admin(Method::GET, "/audit?limit=0", None).await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
}

async fn unpublished_events_are_kept_by_default_on_postgres_and_pruned_on_a_lone_sqlite(
    backend: Backend,
) {
    // Unset (empty counts as unset): the default for this backend without a broker.
    let app = spawn_app_with(backend, &[("SCIMBUS_RETENTION_UNPUBLISHED", String::new())]).await;
    create_users(&app, 2).await;
    app.clock.advance(TimeDelta::days(8));
    let pruned = maintenance::prune_once(&app.ctx).await.unwrap();
    // The fixture's tenant.created events (acme's and other's) are published.
    match backend {
        // Another process (`scimbus relay`) may be publishing the users'.
        Backend::Postgres => assert_eq!(pruned, 2),
        // One process, no broker: nothing will ever publish them.
        Backend::Sqlite => assert_eq!(pruned, 4),
    }
}
