//! The operator console (issue 27), over HTTP as a browser uses it: off unless enabled;
//! sign-in with a named operator token and a session cookie; a tripped brake released from
//! the tenant's page (audited as the operator), a failed Entra PATCH found in the journal
//! with its body; forms without the session's CSRF token or from another origin refused
//! and changing nothing; sign-out and a revoked token end the session.

use reqwest::Method;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, browser, spawn_app, spawn_app_with};

both_backends!(
    the_console_is_off_unless_enabled,
    an_operator_signs_in_releases_a_tripped_brake_and_reads_a_failed_patch,
    forged_forms_and_ended_sessions_change_nothing,
    the_console_is_on_the_admin_listener_when_there_is_one,
);

async fn console(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("SCIMBUS_CONSOLE", "on".to_owned())]).await
}

/// Signs `client` in with `token`: the session cookie's header.
async fn sign_in(app: &TestApp, client: &reqwest::Client, token: &str) -> String {
    let response = client
        .post(format!("{}/console/sign-in", app.address))
        .header("origin", &app.address)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/console/tenants");
    response.headers()[SET_COOKIE].to_str().unwrap().to_owned()
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let response = client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The hidden CSRF field of a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].chars().take_while(|c| *c != '"').collect()
}

/// Trips acme's brake: six deactivations over a threshold of five.
async fn trip(app: &TestApp) {
    let brake = json!({
        "enabled": true,
        "window_seconds": 3600,
        "users": {"count": 5, "percent": 100.0, "min": 1_000_000},
        "members": {"count": 1000, "percent": 100.0, "min": 1_000_000},
        "groups": {"count": 1000, "percent": 100.0, "min": 1_000_000},
        "auto_release_seconds": null
    });
    let response = app
        .admin(Method::PUT, "/tenants/acme/brake", Some(brake))
        .await;
    assert_eq!(response.status(), 200);
    for i in 0..6 {
        let created = app
            .create_user(&crate::helpers::user(&format!("staff{i}")))
            .await;
        let id = created["id"].as_str().unwrap();
        let response = app
            .patch(
                &format!("/Users/{id}"),
                &json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
                }),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
}

async fn held(app: &TestApp) -> bool {
    let view: Value = app
        .admin(Method::GET, "/tenants/acme/brake", None)
        .await
        .json()
        .await
        .unwrap();
    !view["hold"].is_null()
}

async fn the_console_is_off_unless_enabled(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/console/", "/console/tenants"] {
        let (status, _) = get(&app, &browser(), path).await;
        assert_eq!(status, 404, "{path}");
    }
}

async fn an_operator_signs_in_releases_a_tripped_brake_and_reads_a_failed_patch(backend: Backend) {
    let app = console(backend).await;
    let alice = browser();
    // Not signed in: the sign-in form, strict headers; a wrong token is refused.
    let response = alice
        .get(format!("{}/console/tenants", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let response = alice
        .get(format!("{}/console/", app.address))
        .send()
        .await
        .unwrap();
    let csp = response.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(response.text().await.unwrap().contains("Operator token"));
    let response = alice
        .post(format!("{}/console/sign-in", app.address))
        .header("origin", &app.address)
        .form(&[("token", "scimbus_a_not-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let cookie = sign_in(&app, &alice, ADMIN_TOKEN).await;
    for part in [
        "scimbus_console=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    let (status, page) = get(&app, &alice, "/console/tenants").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-tenant=\"acme\"") && page.contains("data-tenant=\"other\""));
    assert!(page.contains("bootstrap"), "the operator's name");

    // A token issued from the tenant's page, shown once, then revoked there.
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    let token = csrf(&page);
    let response = alice
        .post(format!("{}/console/tenants/acme/tokens", app.address))
        .header("origin", &app.address)
        .form(&[("csrf", token.as_str()), ("name", "okta-prod")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let at = page.find("scimbus_t_").expect("the secret, once");
    let secret: String = page[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let scim = |secret: String| {
        app.client
            .get(format!("{}/scim/v2/acme/Users", app.address))
            .bearer_auth(secret)
            .send()
    };
    assert_eq!(scim(secret.clone()).await.unwrap().status(), 200);
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    assert!(
        page.contains("okta-prod") && !page.contains(&secret),
        "shown once"
    );
    let id = scimbus::service::tenants::list_tokens(&app.ctx, "acme")
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "okta-prod")
        .unwrap()
        .id;
    let response = alice
        .post(format!(
            "{}/console/tenants/acme/tokens/{id}/revoke",
            app.address
        ))
        .header("origin", &app.address)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(scim(secret).await.unwrap().status(), 401);

    // A setup link made from the tenant's page: its address shown once.
    let response = alice
        .post(format!("{}/console/tenants/acme/setup-links", app.address))
        .header("origin", &app.address)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains(&format!("{}/setup/scimbus_s_", app.address)));
    let links: Value = app
        .admin(Method::GET, "/tenants/acme/setup-links", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(links["setupLinks"][0]["createdBy"], "admin:bootstrap");

    // A tripped brake, seen in the list and released from the tenant's page.
    trip(&app).await;
    assert!(held(&app).await);
    let (_, page) = get(&app, &alice, "/console/tenants").await;
    assert!(page.contains("holding since"), "{page}");
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    assert!(page.contains("Holding its events since"), "{page}");
    let token = csrf(&page);
    let response = alice
        .post(format!(
            "{}/console/tenants/acme/brake/release",
            app.address
        ))
        .header("origin", &app.address)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(!held(&app).await);
    let audit: Value = app
        .admin(Method::GET, "/audit?tenant=acme", None)
        .await
        .json()
        .await
        .unwrap();
    let release = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "brake.release")
        .cloned()
        .unwrap_or_default();
    assert_eq!(release["actor"], "admin:bootstrap", "{audit}");
    for action in ["token.issue", "token.revoke"] {
        let entry = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action && e["target"] == id.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(entry["actor"], "admin:bootstrap", "{action}: {audit}");
    }

    // A failed Entra PATCH, found through the filter, its bodies side by side.
    let response = app
        .patch(
            "/Users/no-such-user",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "displayName", "value": "Zed"}]
            }),
        )
        .await;
    assert_eq!(response.status(), 404);
    let mut entry_link = None;
    for _ in 0..100 {
        let (_, page) = get(
            &app,
            &alice,
            "/console/tenants/acme?status=4xx&method=PATCH",
        )
        .await;
        if let Some(at) = page.find("/console/tenants/acme/journal/") {
            entry_link = Some(
                page[at..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect::<String>(),
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let link = entry_link.expect("the failed PATCH in the journal");
    let (status, page) = get(&app, &alice, &link).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("PATCH /scim/v2/acme/Users/no-such-user"),
        "{page}"
    );
    assert!(page.contains("Zed") && page.contains("404"), "{page}");
    assert!(!page.contains(&app.token), "no bearer token in a body");
    // An unknown tenant or entry: 404.
    let (status, _) = get(&app, &alice, "/console/tenants/nobody").await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, &alice, "/console/tenants/acme/journal/nothing").await;
    assert_eq!(status, 404);
}

async fn forged_forms_and_ended_sessions_change_nothing(backend: Backend) {
    let app = console(backend).await;
    trip(&app).await;
    let alice = browser();
    sign_in(&app, &alice, ADMIN_TOKEN).await;
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    let token = csrf(&page);
    let release = |origin: &str, csrf: &str| {
        alice
            .post(format!(
                "{}/console/tenants/acme/brake/release",
                app.address
            ))
            .header("origin", origin.to_owned())
            .form(&[("csrf", csrf.to_owned())])
            .send()
    };
    // Without the session's token, or from another site: refused, still held.
    assert_eq!(release(&app.address, "forged").await.unwrap().status(), 403);
    assert_eq!(
        release("https://evil.example", &token)
            .await
            .unwrap()
            .status(),
        403
    );
    assert!(held(&app).await);
    // Another browser, not signed in, is sent to sign in.
    let bob = browser();
    let response = bob
        .post(format!(
            "{}/console/tenants/acme/brake/release",
            app.address
        ))
        .header("origin", &app.address)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(held(&app).await);

    // Other credentials are no operator's: a tenant's token, a used setup link's browser.
    let response = bob
        .post(format!("{}/console/sign-in", app.address))
        .header("origin", &app.address)
        .form(&[("token", app.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let created: Value = app
        .admin(Method::POST, "/tenants/acme/setup-links", Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    let link = created["url"].as_str().unwrap();
    let response = bob.post(format!("{link}/token")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(get(&app, &bob, "/console/tenants").await.0, 303);
    assert_eq!(get(&app, &bob, "/console/tenants/acme").await.0, 303);

    // Sign-out ends the session.
    let response = alice
        .post(format!("{}/console/sign-out", app.address))
        .header("origin", &app.address)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (status, _) = get(&app, &alice, "/console/tenants").await;
    assert_eq!(status, 303);

    // A revoked operator token ends its sessions at once.
    let issued: Value = app
        .admin(Method::POST, "/operators", Some(json!({"name": "carol"})))
        .await
        .json()
        .await
        .unwrap();
    let carol = browser();
    sign_in(&app, &carol, issued["token"].as_str().unwrap()).await;
    assert_eq!(get(&app, &carol, "/console/tenants").await.0, 200);
    let response = app
        .admin(
            Method::DELETE,
            &format!("/operators/{}", issued["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(get(&app, &carol, "/console/tenants").await.0, 303);
    assert!(held(&app).await);
}

async fn the_console_is_on_the_admin_listener_when_there_is_one(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("SCIMBUS_CONSOLE", "on".to_owned()),
            ("SCIMBUS_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ],
    )
    .await;
    let admin = app.admin_address.clone().unwrap();
    // Not on the public port; setup links stay there.
    assert_eq!(get(&app, &browser(), "/console/").await.0, 404);
    // On the admin port, whose address is not the public URL: its own origin is accepted.
    let alice = browser();
    let response = alice
        .post(format!("{admin}/console/sign-in"))
        .header("origin", &admin)
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let page = alice
        .get(format!("{admin}/console/tenants/acme"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf(&page);
    let response = alice
        .post(format!("{admin}/console/tenants/acme/setup-links"))
        .header("origin", &admin)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Another origin is still refused.
    let response = alice
        .post(format!("{admin}/console/tenants/acme/setup-links"))
        .header("origin", "http://127.0.0.1:1")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}
