//! `spawn_app`: a scimbus on 127.0.0.1:0 over a fresh database, a tenant `acme` with a
//! `scim` token, a second tenant `other`, an admin token and a manual clock.

use scimbus::service::audit::Actor;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use reqwest::{Client, Response};
use scimbus::clock::ManualClock;
use scimbus::config::Settings;
use scimbus::domain::{Scope, TenantSlug};
use scimbus::service::Context;
use scimbus::service::tenants::{self, TokenRequest};
use scimbus::startup::Application;
use scimbus::store::{Store, outbox, tenants as tenant_store};
use scimbus_support::database;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::OnceCell;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// An HTTP client. The process's rustls provider is installed first: scimbus's trace
/// exporter makes reqwest build with rustls and no provider of its own.
/// A browser of its own: its own cookies, redirects not followed.
pub fn browser() -> Client {
    scimbus::telemetry::install_tls_provider();
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn client() -> Client {
    scimbus::telemetry::install_tls_provider();
    Client::new()
}

/// The `SCIMBUS_METRICS_TOKEN` of test servers.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(backend: Backend)` as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    /// The `SCIMBUS_ADMIN_LISTEN` listener's `http://127.0.0.1:<port>`, when set.
    pub admin_address: Option<String>,
    /// `<address>/scim/v2/acme`
    pub base: String,
    pub client: Client,
    pub token: String,
    pub tenant: String,
    pub ctx: Context,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

const TEMPLATE: &str = "scimbus_test_template";

/// A fresh PostgreSQL database, copied from a template migrated once per test process
/// (leftovers of earlier runs, `scimbus_test_…`, dropped first).
pub async fn fresh_postgres() -> String {
    static READY: OnceCell<()> = OnceCell::const_new();
    let server = database::Server::new(&database::test_admin_url());
    READY
        .get_or_init(|| async {
            server
                .prepare_template("scimbus_test_", TEMPLATE, async |url| {
                    let store = Store::connect(url).await?;
                    store.migrate().await?;
                    store.close().await?;
                    Ok(())
                })
                .await
                .expect("PostgreSQL answers and the template migrates");
        })
        .await;
    let name = format!("scimbus_test_{}", uuid::Uuid::new_v4().simple());
    server.create(&name, Some(TEMPLATE)).await.unwrap()
}

pub async fn database_for(backend: Backend, dir: &tempfile::TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/scimbus.db?mode=rwc", dir.path().display()),
        Backend::Postgres => fresh_postgres().await,
    }
}

pub fn settings(vars: &[(&str, String)]) -> Settings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned()).unwrap()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Like `spawn_app`, with extra `SCIMBUS_*` settings.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, String)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("SCIMBUS_DATABASE_URL", database_for(backend, &dir).await),
        ("SCIMBUS_LISTEN", "127.0.0.1:0".to_owned()),
        ("SCIMBUS_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        // Tests step retention and purges themselves (`service::maintenance`).
        ("SCIMBUS_MAINTENANCE", "off".to_owned()),
        // No relay runs in these tests: retention prunes by age alone on both backends.
        ("SCIMBUS_RETENTION_UNPUBLISHED", "prune".to_owned()),
        // Property tests and concurrency tests are bursts no IdP sends; the limit has its
        // own test.
        ("SCIMBUS_RATE_LIMIT", "off".to_owned()),
        ("SCIMBUS_METRICS_TOKEN", METRICS_TOKEN.to_owned()),
    ];
    vars.extend(extra.iter().cloned());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let app = Application::build_with_clock(settings(&vars), clock.clone())
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = app
        .admin_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let ctx = app.context().clone();
    tokio::spawn(app.run_until_stopped());

    tenants::create_tenant(&ctx, &Actor::system(), "acme")
        .await
        .unwrap();
    tenants::create_tenant(&ctx, &Actor::system(), "other")
        .await
        .unwrap();
    settle_creation_events(&ctx).await;
    let token = issue(&ctx, "acme", vec![Scope::Scim]).await;
    TestApp {
        base: format!("{address}/scim/v2/acme"),
        address,
        admin_address,
        client: client(),
        token,
        tenant: "acme".to_owned(),
        ctx,
        clock,
        _dir: dir,
    }
}

/// The fixture's tenants start as tenants with a settled history: their
/// `scimbus.tenant.created` (sequence 1, tested in `lifecycle`) is numbered and marked
/// published, so backlogs, relays and queues see only what a test writes.
async fn settle_creation_events(ctx: &Context) {
    scimbus::events::sequencer::number_all(&ctx.store)
        .await
        .unwrap();
    let mut ranges = Vec::new();
    for slug in ["acme", "other"] {
        let t = tenant_store::find(ctx.store.conn(), &TenantSlug::parse(slug).unwrap())
            .await
            .unwrap()
            .unwrap();
        ranges.push((t.id, 1, 1));
    }
    outbox::mark_published(ctx.store.conn(), &ranges, &ctx.now())
        .await
        .unwrap();
}

/// Issues a token of `tenant` with `scopes` and returns its secret.
pub async fn issue(ctx: &Context, tenant: &str, scopes: Vec<Scope>) -> String {
    let (_, secret) = tenants::issue_token(
        ctx,
        &Actor::system(),
        tenant,
        TokenRequest {
            name: "test".to_owned(),
            scopes,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    secret.expose_secret().to_owned()
}

pub fn user(user_name: &str) -> Value {
    serde_json::json!({"schemas": [USER_URN], "userName": user_name})
}

impl TestApp {
    /// The stored row of the test's tenant (`acme`).
    pub async fn tenant_row(&self) -> scimbus::domain::Tenant {
        scimbus::store::tenants::find(
            self.ctx.store.conn(),
            &scimbus::domain::TenantSlug::parse(&self.tenant).unwrap(),
        )
        .await
        .unwrap()
        .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A SCIM request with a JSON body, as the tenant's token.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::PUT, path, body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::PATCH, path, body).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a user and returns its representation.
    pub async fn create_user(&self, body: &Value) -> Value {
        let response = self.post("/Users", body).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// Users of `acme` with a raw filter, as the list body.
    pub async fn list_users(&self, query: &[(&str, &str)]) -> Value {
        self.list_at("/Users", query).await
    }

    /// A GET of a list (`/Users`, `/Groups`) with `query`, as the list body.
    pub async fn list_at(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Every event row a test wrote in a tenant, in sequence order: all but the tenant's
    /// `scimbus.tenant.created`, so the first written has sequence 2.
    pub async fn events_of(&self, tenant: &str) -> Vec<outbox::StoredEvent> {
        let slug = TenantSlug::parse(tenant).unwrap();
        let t = tenant_store::find(self.ctx.store.conn(), &slug)
            .await
            .unwrap()
            .unwrap();
        // Numbered first, as every reader of the outbox does (PostgreSQL writers leave
        // their events to the sequencer).
        scimbus::events::sequencer::number_tenant(&self.ctx.store, &t.id)
            .await
            .unwrap();
        outbox::list_after(self.ctx.store.conn(), &t.id, 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event_type != "scimbus.tenant.created")
            .collect()
    }

    pub async fn events(&self) -> Vec<outbox::StoredEvent> {
        self.events_of(&self.tenant).await
    }

    /// A request to `/admin/v1{path}` with the bootstrap admin token.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        self.admin_as(ADMIN_TOKEN, method, path, body).await
    }

    /// A request to `/admin/v1{path}` with the admin token `token`.
    pub async fn admin_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}/admin/v1{path}", self.address))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// A change of an extension of this app's tenant (`POST /schemas`, `PUT` or `DELETE
    /// /schemas/{urn}`): answered 202 with its re-index job at `Location`, which this
    /// follows to its end; returns the finished job.
    pub async fn change_schema(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let response = self
            .admin(
                method,
                &format!("/tenants/{}/schemas{path}", self.tenant),
                body,
            )
            .await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let accepted: Value = response.json().await.unwrap();
        let job = accepted["job"]["id"].as_str().unwrap();
        assert!(
            location.ends_with(&format!("/admin/v1/tenants/{}/jobs/{job}", self.tenant)),
            "{location}"
        );
        self.finished_job(job).await
    }

    /// The tenant's schema job `id` once it is over (waits up to a minute).
    pub async fn finished_job(&self, id: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..1200 {
            let job: Value = self
                .admin(
                    reqwest::Method::GET,
                    &format!("/tenants/{}/jobs/{id}", self.tenant),
                    None,
                )
                .await
                .json()
                .await
                .unwrap();
            if !matches!(job["state"].as_str(), Some("queued" | "running")) {
                return job;
            }
            last = job;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("schema job {id} did not finish within a minute: {last}");
    }

    /// `POST /scim/v2/{tenant}/Users` of `user(name)` with another tenant's `token`; 201.
    pub async fn create_user_in(&self, tenant: &str, token: &str, name: &str) {
        let response = self
            .client
            .post(format!("{}/scim/v2/{tenant}/Users", self.address))
            .bearer_auth(token)
            .json(&user(name))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    /// The tenant's journal once it holds at least `n` entries matching `query` (the writer
    /// runs off the request path: poll, up to 10 s).
    pub async fn journal_of(&self, tenant: &str, query: &str, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let page: Value = self
                .admin(
                    reqwest::Method::GET,
                    &format!("/tenants/{tenant}/journal{query}"),
                    None,
                )
                .await
                .json()
                .await
                .unwrap();
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            if entries.len() >= n {
                return entries;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{tenant}'s journal did not reach {n} entries for {query}");
    }

    /// The audit entries (`GET /admin/v1/audit{query}`) whose action starts with `prefix`.
    pub async fn audit_of(&self, query: &str, prefix: &str) -> Vec<Value> {
        let audit: Value = self
            .admin(reqwest::Method::GET, &format!("/audit{query}"), None)
            .await
            .json()
            .await
            .unwrap();
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().unwrap().starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET /events/v1/{tenant}{path}` with `token`.
    pub async fn events_api(&self, tenant: &str, path: &str, token: &str) -> Response {
        self.client
            .get(format!("{}/events/v1/{tenant}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn user_count(&self) -> u64 {
        self.list_users(&[]).await["totalResults"].as_u64().unwrap()
    }
}

/// Asserts a SCIM error body with `status` and `scim_type`, and returns it.
pub async fn assert_scim_error(response: Response, status: u16, scim_type: Option<&str>) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/scim+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["schemas"], serde_json::json!([ERROR_URN]), "{body}");
    assert_eq!(body["status"], status.to_string(), "{body}");
    match scim_type {
        Some(t) => assert_eq!(body["scimType"], t, "{body}"),
        None => assert!(body.get("scimType").is_none(), "{body}"),
    }
    body
}

/// A `FROM` item of the integers 1…n as column `g` (alias `s`), for seeding by SQL.
pub fn series(backend: sea_orm::DbBackend, n: u64) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => format!("(SELECT g FROM generate_series(1, {n}) AS g) s"),
        _ => format!(
            "(WITH RECURSIVE r(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM r WHERE g < {n}) \
             SELECT g FROM r) s"
        ),
    }
}
