//! Black-box conformance: these tests speak only HTTP to a tenant's SCIM base URL with a
//! bearer token. With `SCIMBUS_CONFORMANCE_URL` (e.g. `https://host/scim/v2/acme`) and
//! `SCIMBUS_CONFORMANCE_TOKEN` set they run against that server; otherwise each test starts
//! its own in-process server on a fresh SQLite database. userNames are unique per test, so
//! the tests share an external tenant safely.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dialects;
mod round_trips;
mod users;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use scimbus::service::audit::Actor;
use secrecy::ExposeSecret;
use serde_json::Value;

use scimbus::config::Settings;
use scimbus::domain::Scope;
use scimbus::service::tenants::{TokenRequest, create_tenant, issue_token};
use scimbus::startup::Application;

const URL_VAR: &str = "SCIMBUS_CONFORMANCE_URL";
const TOKEN_VAR: &str = "SCIMBUS_CONFORMANCE_TOKEN";
const SCIM_JSON: &str = "application/scim+json";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The server under test: a SCIM base URL and a token for it.
struct Target {
    base: String,
    token: String,
    client: reqwest::Client,
    /// Keeps the in-process server's database directory alive for the test.
    _data: Option<tempfile::TempDir>,
}

async fn target() -> Target {
    let client = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::new()
    };
    if let (Ok(base), Ok(token)) = (std::env::var(URL_VAR), std::env::var(TOKEN_VAR)) {
        return Target {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client,
            _data: None,
        };
    }
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/c.db?mode=rwc", data.path().display());
    let settings = Settings::from_lookup(|name| match name {
        "SCIMBUS_DATABASE_URL" => Some(database_url.clone()),
        "SCIMBUS_LISTEN" => Some("127.0.0.1:0".to_owned()),
        _ => None,
    })
    .unwrap();
    let app = Application::build(settings).await.unwrap();
    let slug = "conformance";
    create_tenant(app.context(), &Actor::system(), slug)
        .await
        .unwrap();
    let (_, secret) = issue_token(
        app.context(),
        &Actor::system(),
        slug,
        TokenRequest {
            name: "conformance".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}/scim/v2/{slug}", app.port());
    tokio::spawn(app.run_until_stopped());
    Target {
        base,
        token: secret.expose_secret().to_owned(),
        client,
        _data: Some(data),
    }
}

/// A response read whole: status, headers and the JSON body (`Null` when empty).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Target {
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.bearer_auth(&self.token).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    fn user_url(&self, id: &str) -> String {
        format!("{}/Users/{id}", self.base)
    }

    async fn post_user(&self, body: &Value) -> Reply {
        let request = self
            .client
            .post(format!("{}/Users", self.base))
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(body.to_string());
        self.send(request).await
    }

    async fn get_user(&self, id: &str) -> Reply {
        self.send(self.client.get(self.user_url(id))).await
    }

    async fn put_user(&self, id: &str, body: &Value) -> Reply {
        let request = self
            .client
            .put(self.user_url(id))
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(body.to_string());
        self.send(request).await
    }

    async fn delete_user(&self, id: &str) -> Reply {
        self.send(self.client.delete(self.user_url(id))).await
    }

    async fn find_by_user_name(&self, user_name: &str) -> Reply {
        let filter = format!("userName eq \"{user_name}\"");
        let request = self
            .client
            .get(format!("{}/Users", self.base))
            .query(&[("filter", filter.as_str())]);
        self.send(request).await
    }

    /// POSTs `body`, checks the 201 and returns the id.
    async fn create(&self, body: &Value) -> (String, Reply) {
        let created = self.post_user(body).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "POST /Users: {}",
            created.body
        );
        let id = created.body["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| panic!("POST /Users answered without an id: {}", created.body))
            .to_owned();
        (id, created)
    }
}
