use chrono::{TimeDelta, Utc};

use crate::both_backends;
use crate::helpers::{
    ADMIN_TOKEN, Backend, METRICS_TOKEN, TestApp, spawn_app, spawn_app_with, user,
};
use scimbus::domain::Scope;
use scimbus::service::audit::Actor;
use scimbus::service::tenants::{self, TokenRequest};

both_backends!(
    healthz_and_readyz_answer_200_once_up,
    metrics_count_requests_by_route_template_and_tenant_and_read_the_outbox,
    metrics_need_their_token_unless_on_the_admin_listener,
    an_admin_listener_takes_the_admin_api_and_metrics_off_the_main_one,
    readyz_tolerates_newer_migrations_and_reports_missing_ones,
    readyz_reads_the_backlog_at_most_once_per_refresh,
);

async fn readyz_status(app: &TestApp) -> u16 {
    app.client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn readyz_tolerates_newer_migrations_and_reports_missing_ones(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let app = spawn_app(backend).await;
    let conn = app.ctx.store.conn();
    // A newer replica applied a migration this binary does not know: still ready (rolling
    // upgrades keep the old replicas in the pool).
    conn.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_future', 0)",
    )
    .await
    .unwrap();
    assert_eq!(readyz_status(&app).await, 200);
    // A migration this binary needs is missing: not ready.
    conn.execute_unprepared(
        "DELETE FROM seaql_migrations WHERE version = 'm20261129_000011_create_audit_log'",
    )
    .await
    .unwrap();
    assert_eq!(readyz_status(&app).await, 503);
}

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_count_requests_by_route_template_and_tenant_and_read_the_outbox(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_user(&user("bjensen")).await;
    let id = created["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(app.get(&format!("/Users/{id}")).await.status(), 200);
    }
    assert_eq!(app.get("/Users/nope").await.status(), 404);
    // Made-up methods (any token is a valid method) share one label value.
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        app.client
            .request(method, app.url("/Users"))
            .send()
            .await
            .unwrap();
    }
    let (_, _) = tenants::issue_token(
        &app.ctx,
        &Actor::system(),
        "acme",
        TokenRequest {
            name: "soon".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: Some(Utc::now() + TimeDelta::days(3)),
        },
    )
    .await
    .unwrap();
    // The manual clock starts in 2026-01-01; tokens expiring within 7 days of it count.
    let (_, _) = tenants::issue_token(
        &app.ctx,
        &Actor::system(),
        "other",
        TokenRequest {
            name: "soon".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: Some(app.ctx.clock.now() + TimeDelta::days(2)),
        },
    )
    .await
    .unwrap();

    let response = scrape(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let route = "route=\"/scim/v2/{tenant}/Users/{id}\"";
    assert_eq!(
        sample(
            &text,
            &format!("scimbus_http_requests_total{{{route},method=\"GET\",status=\"200\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("scimbus_http_requests_total{{{route},method=\"GET\",status=\"404\"}}")
        ),
        Some(1.0)
    );
    assert!(!text.contains(id), "ids never become labels");
    assert!(
        !text.contains("MADEUP"),
        "made-up methods never become labels"
    );
    assert!(text.contains("method=\"other\""), "{text}");
    assert_eq!(
        sample(
            &text,
            "scimbus_tenant_requests_total{tenant=\"acme\",class=\"2xx\"}"
        ),
        Some(3.0)
    );
    assert!(text.contains("scimbus_http_request_duration_seconds_bucket"));
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("scimbus_http_request_duration") && l.contains("tenant=")),
        "no tenant label on histograms"
    );
    assert_eq!(sample(&text, "scimbus_outbox_backlog_events "), Some(1.0));
    // The relay's counts are counters (no relay runs here: 0).
    assert!(
        text.contains("# TYPE scimbus_relay_published_events counter"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "scimbus_relay_published_events_total "),
        Some(0.0)
    );
    // The journal's queue kept up: nothing dropped, and the count is exposed.
    assert_eq!(
        sample(&text, "scimbus_journal_dropped_entries_total "),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "scimbus_tokens_expiring_soon{tenant=\"other\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "scimbus_tokens_expiring_soon{tenant=\"acme\"}"),
        None,
        "acme's token expires years after the test clock's week"
    );
}

async fn metrics_need_their_token_unless_on_the_admin_listener(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(scrape(&app, None).await.status(), 401);
    assert_eq!(
        scrape(&app, Some("wrong-token-value-xyz")).await.status(),
        401
    );
    assert_eq!(scrape(&app, Some(&app.token)).await.status(), 401);
    assert_eq!(scrape(&app, Some(METRICS_TOKEN)).await.status(), 200);

    // Without a metrics token, the main listener does not serve /metrics at all (it names
    // every tenant); the separate admin listener does, to whoever reaches it.
    let app = spawn_app_with(backend, &[("SCIMBUS_METRICS_TOKEN", String::new())]).await;
    let response = scrape(&app, None).await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("SCIMBUS_METRICS_TOKEN"),
        "{body}"
    );
    let app = spawn_app_with(
        backend,
        &[
            ("SCIMBUS_METRICS_TOKEN", String::new()),
            ("SCIMBUS_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ],
    )
    .await;
    let admin = app.admin_address.clone().unwrap();
    let response = app
        .client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("scimbus_"));
}

async fn an_admin_listener_takes_the_admin_api_and_metrics_off_the_main_one(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("SCIMBUS_ADMIN_LISTEN", "127.0.0.1:0".to_owned())],
    )
    .await;
    let admin = app.admin_address.clone().unwrap();
    let get = |url: String, token: &'static str| {
        let client = app.client.clone();
        async move {
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            response.status().as_u16()
        }
    };
    // The admin listener: admin API, metrics (with the token, which is set) and health.
    assert_eq!(
        get(format!("{admin}/admin/v1/tenants"), ADMIN_TOKEN).await,
        200
    );
    assert_eq!(get(format!("{admin}/metrics"), METRICS_TOKEN).await, 200);
    assert_eq!(
        get(format!("{admin}/metrics"), "wrong-token-value-xyz").await,
        401
    );
    assert_eq!(get(format!("{admin}/healthz"), "").await, 200);
    assert_eq!(get(format!("{admin}/readyz"), "").await, 200);
    // ... and nothing else: no SCIM, no events, no documents.
    let scim_token: &'static str = Box::leak(app.token.clone().into_boxed_str());
    assert_eq!(
        get(format!("{admin}/scim/v2/acme/Users"), scim_token).await,
        404
    );
    assert_eq!(get(format!("{admin}/openapi.json"), "").await, 404);
    // The main listener: SCIM and health, no admin API and no metrics.
    assert_eq!(get(format!("{}/Users", app.base), scim_token).await, 200);
    assert_eq!(get(format!("{}/healthz", app.address), "").await, 200);
    assert_eq!(
        get(format!("{}/admin/v1/tenants", app.address), ADMIN_TOKEN).await,
        404
    );
    // The router decodes the path: `/%61dmin/…` is `/admin/…`, and is refused as well.
    assert_eq!(
        get(format!("{}/%61dmin/v1/tenants", app.address), ADMIN_TOKEN).await,
        404
    );
    assert_eq!(
        get(format!("{}/metrics", app.address), METRICS_TOKEN).await,
        404
    );
}

async fn healthz_and_readyz_answer_200_once_up(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let ready = readyz(&app).await;
    assert_eq!(ready["database"], true);
    assert_eq!(ready["migrations"], true);
    assert_eq!(ready["relay"]["backlog"], 0);
    assert_eq!(ready["relay"]["published"], 0);
}

async fn readyz(app: &TestApp) -> serde_json::Value {
    app.client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn readyz_backlog(app: &TestApp) -> serde_json::Value {
    readyz(app).await["relay"]["backlog"].clone()
}

/// `/readyz` needs no token: however often it is called, the backlog is read at most once
/// per refresh period (by the service clock), not counted on every call.
async fn readyz_reads_the_backlog_at_most_once_per_refresh(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&user("first")).await;
    assert_eq!(readyz_backlog(&app).await, 1);
    app.create_user(&user("second")).await;
    app.create_user(&user("third")).await;
    for _ in 0..20 {
        assert_eq!(readyz_backlog(&app).await, 1, "answered from the last read");
    }
    app.clock.advance(scimbus::service::readiness::REFRESH);
    assert_eq!(readyz_backlog(&app).await, 3);
}
