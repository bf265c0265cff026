//! Customer setup links (issue 27): an operator creates an expiring, single-use link for a
//! tenant; its page shows the SCIM base URL, reveals one token once, fills the Okta and
//! Entra steps in, and checks the connection from the request journal. Expired, revoked,
//! reused and unknown links are refused and change nothing; a link shows nothing of other
//! tenants.

use std::time::Duration;

use chrono::TimeDelta;
use reqwest::Method;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, browser, spawn_app, user};
use scimbus::service::tenants;

both_backends!(
    a_setup_link_shows_its_tenant_reveals_one_token_once_and_checks_the_connection,
    expired_revoked_unknown_and_malformed_links_are_refused_and_change_nothing,
    concurrent_reveals_of_one_link_issue_one_token,
);

/// A link for `tenant`: its id and address.
async fn create_link(app: &TestApp, tenant: &str, body: Value) -> (String, String) {
    let response = app
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/setup-links"),
            Some(body),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let url = created["url"].as_str().unwrap().to_owned();
    (created["id"].as_str().unwrap().to_owned(), url)
}

async fn links(app: &TestApp, tenant: &str) -> Vec<Value> {
    let list: Value = app
        .admin(Method::GET, &format!("/tenants/{tenant}/setup-links"), None)
        .await
        .json()
        .await
        .unwrap();
    list["setupLinks"].as_array().unwrap().clone()
}

async fn token_count(app: &TestApp, tenant: &str) -> usize {
    tenants::list_tokens(&app.ctx, tenant).await.unwrap().len()
}

async fn reveal(client: &reqwest::Client, url: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = client.post(format!("{url}/token"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

/// The connection check once its state is `state` (the journal's writer runs off the
/// request path: poll, up to 10 s).
async fn check_until(client: &reqwest::Client, url: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let response = client.get(format!("{url}/check")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        last = response.json().await.unwrap();
        if last["state"] == state {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the connection check did not become {state}: {last}");
}

fn token_in(page: &str) -> String {
    let start = page.find("scimbus_t_").expect("a token on the page");
    page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

async fn a_setup_link_shows_its_tenant_reveals_one_token_once_and_checks_the_connection(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (id, url) = create_link(&app, "acme", json!({})).await;
    assert!(
        url.starts_with(&format!("{}/setup/scimbus_s_", app.address)),
        "{url}"
    );
    let listed = links(&app, "acme").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "open");
    assert_eq!(listed[0]["createdBy"], "admin:bootstrap");
    // 72 hours from now (the test clock moves a millisecond a reading).
    let expires = listed[0]["expiresAt"].as_str().unwrap();
    assert!(expires.starts_with("2026-01-04T00:00:00."), "{expires}");
    let secret = url.rsplit('/').next().unwrap();
    assert!(!serde_json::to_string(&listed).unwrap().contains(secret));
    assert!(links(&app, "other").await.is_empty());
    // The link's secret is no credential anywhere else.
    for path in [
        "/admin/v1/tenants",
        "/scim/v2/acme/Users",
        "/events/v1/acme",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }

    // The page: this tenant's SCIM URL, filled into both IdPs' steps, and nothing of the
    // other tenant; strict headers.
    let alice = browser();
    let response = alice.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    // Its referrer (the link) goes to itself only, so that its form carries its origin.
    assert_eq!(headers[REFERRER_POLICY], "same-origin");
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let page = response.text().await.unwrap();
    let scim = format!("{}/scim/v2/acme", app.address);
    assert!(page.contains(&format!("value=\"{scim}\"")), "{page}");
    assert!(
        page.contains(&format!("{scim}?aadOptscim062020")),
        "Entra's Tenant URL"
    );
    assert!(page.contains("Reveal the token") && !page.contains("scimbus_t_"));
    assert!(!page.contains("/scim/v2/other"));
    assert!(page.contains("Okta") && page.contains("Microsoft Entra ID"));

    // A form sent from another site is refused; the link stays open.
    let response = reveal(&alice, &url, Some("https://evil.example")).await;
    assert_eq!(response.status(), 403);
    assert_eq!(links(&app, "acme").await[0]["state"], "open");

    // Revealed once, with the session cookie of this browser.
    let before = token_count(&app, "acme").await;
    let response = reveal(&alice, &url, Some(&app.address)).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("scimbus_setup="), "{cookie}");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path=/setup/{secret}"),
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Secure"), "loopback: {cookie}");
    let page = response.text().await.unwrap();
    let token = token_in(&page);
    assert_eq!(token_count(&app, "acme").await, before + 1);
    assert!(
        page.matches(&token).count() >= 3,
        "the field and both IdPs' steps"
    );

    // The token is the tenant's, for SCIM, and only the tenant's.
    let scim_get = |tenant: &str| {
        app.client
            .get(format!("{}/scim/v2/{tenant}/Users", app.address))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(scim_get("other").await.unwrap().status(), 401);

    // Never again: not to this browser, not to another.
    assert_eq!(reveal(&alice, &url, None).await.status(), 410);
    let bob = browser();
    assert_eq!(reveal(&bob, &url, None).await.status(), 410);
    let response = bob.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert!(!response.text().await.unwrap().contains(&scim));
    assert_scim_error(
        bob.get(format!("{url}/check")).send().await.unwrap(),
        410,
        None,
    )
    .await;
    assert_eq!(token_count(&app, "acme").await, before + 1);
    // The browser that used it sees the page, without the token.
    let page = alice.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("token-used") && !page.contains(&token));

    // The connection check: waiting, then failing, then connected.
    let check = check_until(&alice, &url, "waiting").await;
    assert_eq!(check["requests"], json!([]));
    let response = app
        .client
        .post(format!("{}/scim/v2/acme/Users", app.address))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A request with another token of the tenant is not this connection's.
    assert_eq!(
        app.post("/Users", &user("not-via-the-link")).await.status(),
        201
    );
    let check = check_until(&alice, &url, "failing").await;
    let requests = check["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{check}");
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(requests[0]["status"], 400);
    assert!(
        requests[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("userName")),
        "{check}"
    );
    assert_eq!(scim_get("acme").await.unwrap().status(), 200);
    let check = check_until(&alice, &url, "connected").await;
    assert_eq!(check["requests"].as_array().unwrap().len(), 2, "{check}");
    assert_eq!(check["requests"][1]["status"], 200);

    // Listed as used, with its token; the audit names the operator and the link.
    let listed = links(&app, "acme").await;
    assert_eq!(listed[0]["state"], "used");
    let tokens = tenants::list_tokens(&app.ctx, "acme").await.unwrap();
    let issued = tokens
        .iter()
        .find(|t| t.name.starts_with("setup-"))
        .unwrap();
    assert_eq!(listed[0]["tokenId"], issued.id.as_str());
    let audit: Value = app
        .admin(Method::GET, "/audit?tenant=acme", None)
        .await
        .json()
        .await
        .unwrap();
    let actors = |action: &str| -> Vec<String> {
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["actor"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(actors("setup_link.create"), ["admin:bootstrap"]);
    assert_eq!(actors("setup_link.use"), [format!("setup-link:{id}")]);
}

async fn expired_revoked_unknown_and_malformed_links_are_refused_and_change_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let tokens = token_count(&app, "acme").await;

    // Bodies a link cannot be made from: nothing is made.
    for (body, scim_type) in [
        (json!({"expiresInHours": 0}), "invalidValue"),
        (json!({"expiresInHours": 721}), "invalidValue"),
        // Not a whole number: refused as SET receivers' `after` is.
        (json!({"expiresInHours": "soon"}), "invalidValue"),
        (json!({"expiresInHours": 1.5}), "invalidValue"),
        (json!({"lifetime": 3}), "invalidSyntax"),
    ] {
        let response = app
            .admin(
                Method::POST,
                "/tenants/acme/setup-links",
                Some(body.clone()),
            )
            .await;
        assert_scim_error(response, 400, Some(scim_type)).await;
    }
    let response = app
        .admin(Method::POST, "/tenants/nobody/setup-links", Some(json!({})))
        .await;
    assert_scim_error(response, 404, None).await;
    assert!(links(&app, "acme").await.is_empty());
    // A whole number written as a float is a whole number (JSON Schema's `integer`).
    let (id, _) = create_link(&app, "acme", json!({"expiresInHours": 161.0})).await;
    let response = app
        .admin(
            Method::DELETE,
            &format!("/tenants/acme/setup-links/{id}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);

    // Expired: refused, and no token is issued.
    let (_, expiring) = create_link(&app, "acme", json!({"expiresInHours": 1})).await;
    let client = browser();
    assert_eq!(client.get(&expiring).send().await.unwrap().status(), 200);
    app.clock.advance(TimeDelta::minutes(61));
    let response = client.get(&expiring).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert!(response.text().await.unwrap().contains("expired"));
    assert_eq!(reveal(&client, &expiring, None).await.status(), 410);
    assert_eq!(links(&app, "acme").await[0]["state"], "expired");

    // Revoked: refused; only through its own tenant.
    let (id, revoked) = create_link(&app, "acme", json!({})).await;
    let response = app
        .admin(
            Method::DELETE,
            &format!("/tenants/other/setup-links/{id}"),
            None,
        )
        .await;
    assert_scim_error(response, 404, None).await;
    assert_eq!(client.get(&revoked).send().await.unwrap().status(), 200);
    let response = app
        .admin(
            Method::DELETE,
            &format!("/tenants/acme/setup-links/{id}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    let response = client.get(&revoked).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert!(response.text().await.unwrap().contains("revoked"));
    assert_eq!(reveal(&client, &revoked, None).await.status(), 410);
    let response = app
        .admin(
            Method::DELETE,
            "/tenants/acme/setup-links/no-such-link",
            None,
        )
        .await;
    assert_scim_error(response, 404, None).await;

    // Unknown or malformed secrets.
    for path in [
        "/setup/scimbus_s_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/setup/scimbus_t_not-a-link",
        "/setup/%E2%9C%93",
    ] {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let response = client
            .post(format!("{}{path}/token", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(token_count(&app, "acme").await, tokens);

    // A deleted tenant's link is gone with it.
    let (_, of_other) = create_link(&app, "other", json!({})).await;
    let response = app.admin(Method::DELETE, "/tenants/other", None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(client.get(&of_other).send().await.unwrap().status(), 404);
}

async fn concurrent_reveals_of_one_link_issue_one_token(backend: Backend) {
    let app = spawn_app(backend).await;
    for round in 0..5 {
        let before = token_count(&app, "acme").await;
        let (_, url) = create_link(&app, "acme", json!({})).await;
        let answers = futures_util::future::join_all((0..8).map(|_| {
            let url = url.clone();
            async move { reveal(&browser(), &url, None).await.status().as_u16() }
        }))
        .await;
        let won = answers.iter().filter(|s| **s == 200).count();
        assert_eq!(won, 1, "round {round}: {answers:?}");
        assert!(
            answers.iter().all(|s| *s == 200 || *s == 410),
            "{answers:?}"
        );
        assert_eq!(token_count(&app, "acme").await, before + 1);
    }
}
