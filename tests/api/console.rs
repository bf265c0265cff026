//! The operator console (issue 27), over HTTP as a browser uses it: off unless enabled;
//! sign-in with a named operator token and a session cookie; a tripped brake released from
//! the tenant's page (audited as the operator), a failed Entra PATCH found in the journal
//! with its body; forms without the session's CSRF token or from another origin refused
//! and changing nothing; sign-out and a revoked token end the session.

use reqwest::Method;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, browser, spawn_app, spawn_app_with};

both_backends!(
    the_console_is_off_unless_enabled,
    an_operator_signs_in_releases_a_tripped_brake_and_reads_a_failed_patch,
    forged_forms_and_ended_sessions_change_nothing,
    the_console_is_on_the_admin_listener_when_there_is_one,
    a_hold_is_discarded_only_when_confirmed_and_restored,
    the_tenant_page_shows_extensions_jobs_audit_and_event_charts,
    no_console_page_of_a_tenant_shows_or_changes_another_tenants_data,
    every_route_of_the_console_document_is_served_as_documented,
    the_audit_page_offers_older_entries_only_when_there_are_some,
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

/// Posts a console form of `page` (its CSRF token added) from the console's origin.
async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let token = csrf(page);
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    let response = client
        .post(format!("{}{path}", app.address))
        .header("origin", &app.address)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Discarding a hold from the tenant's page: refused (400) unless the operator types the
/// tenant's slug, refused (409) while the held deactivations are of users still inactive,
/// and done once the IdP reactivated them; audited as the operator. Nothing changes on a
/// refusal.
async fn a_hold_is_discarded_only_when_confirmed_and_restored(backend: Backend) {
    let app = console(backend).await;
    let alice = browser();
    sign_in(&app, &alice, ADMIN_TOKEN).await;
    trip(&app).await;
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    assert!(page.contains("id=\"discard\""), "{page}");
    assert!(page.contains("user.deactivated"), "what is held: {page}");
    let discard = "/console/tenants/acme/brake/discard";
    for wrong in ["", "acm", "globex", "ACME "] {
        let (status, body) = post_form(&app, &alice, &page, discard, &[("confirm", wrong)]).await;
        assert_eq!(status, 400, "{wrong:?}: {body}");
        assert!(body.contains("nothing was discarded"), "{body}");
        assert!(held(&app).await);
    }
    // Confirmed, but the users are still deactivated: the service refuses.
    let (status, body) = post_form(&app, &alice, &page, discard, &[("confirm", "acme")]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("still deprovisioned"), "{body}");
    assert!(held(&app).await);
    // The IdP corrects itself: every user active again; the hold is discarded.
    let users: Value = app.get("/Users?count=100").await.json().await.unwrap();
    for user in users["Resources"].as_array().unwrap() {
        let id = user["id"].as_str().unwrap();
        let response = app
            .patch(
                &format!("/Users/{id}"),
                &json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": true}]
                }),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let (status, body) = post_form(&app, &alice, &page, discard, &[("confirm", " acme ")]).await;
    assert_eq!(status, 303, "{body}");
    assert!(!held(&app).await);
    let audited = app.audit_of("?tenant=acme", "brake.discard").await;
    let discarded = audited.first().expect("the discard audited");
    assert_eq!(discarded["actor"], "admin:bootstrap");
    // The brake tripped on the sixth deactivation: that one was held, and is discarded.
    assert_eq!(discarded["detail"]["discarded"], 1, "{discarded}");
    // Nothing held now: the page still says why a discard did nothing.
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    let (status, body) = post_form(&app, &alice, &page, discard, &[("confirm", "no")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("nothing was discarded"), "{body}");
    let (status, body) = post_form(&app, &alice, &page, discard, &[("confirm", "acme")]).await;
    assert_eq!(status, 409);
    assert!(body.contains("holds nothing"), "{body}");
}

/// The tenant's page lists its extension schemas and re-index jobs with their progress,
/// the newest audit entries (the whole log a page away, another tenant's never), and links
/// to its events chart: events per minute and relay lag as SVG, counting this tenant's
/// events of the window only.
async fn the_tenant_page_shows_extensions_jobs_audit_and_event_charts(backend: Backend) {
    // As where a relay runs (unpublished events kept for it): the backlog and the relay's
    // lag are shown. The test app runs no relay, so every event stays unpublished.
    let app = spawn_app_with(
        backend,
        &[
            ("SCIMBUS_CONSOLE", "on".to_owned()),
            ("SCIMBUS_RETENTION_UNPUBLISHED", "keep".to_owned()),
        ],
    )
    .await;
    assert!(app.ctx.keep_unpublished);
    let alice = browser();
    sign_in(&app, &alice, ADMIN_TOKEN).await;
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    assert!(
        page.contains("the core User and Group schemas only"),
        "{page}"
    );
    const URN: &str = "urn:okta:acme_scimbus:1.0:user:custom";
    let job = app
        .change_schema(
            Method::POST,
            "",
            Some(json!({
                "id": URN, "name": "OktaCustom", "resourceType": "User",
                "attributes": [{"name": "costCenter", "type": "string"}]
            })),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    for i in 0..3 {
        app.create_user(&crate::helpers::user(&format!("chart{i}")))
            .await;
    }
    let response = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(response.status(), 201);
    let response = app
        .admin(
            Method::POST,
            "/tenants/globex/tokens",
            Some(json!({"name": "globex-only"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let globex: Value = response.json().await.unwrap();
    let globex_token = globex["token"].as_str().unwrap().to_owned();
    let (status, page) = get(&app, &alice, "/console/tenants/acme").await;
    assert_eq!(status, 200);
    assert!(page.contains(URN), "{page}");
    let row = &page[page
        .find(&format!("data-job=\"{}\"", job["id"].as_str().unwrap()))
        .expect("the job's row")..];
    assert!(row.contains("succeeded"), "{row}");
    assert!(row.contains("<progress"), "{row}");
    assert!(row.contains("register <code>"), "{row}");
    // The audit log: the registration, by the operator; nothing of globex.
    let audit = &page[page.find("id=\"audit\"").unwrap()..];
    assert!(audit.contains("admin:bootstrap"), "{audit}");
    assert!(!page.contains("globex-only"), "{page}");
    let (status, whole) = get(&app, &alice, "/console/tenants/acme/audit").await;
    assert_eq!(status, 200);
    assert!(
        whole.contains("admin:bootstrap") && !whole.contains("globex-only"),
        "{whole}"
    );
    // The events chart: every event of acme in the window, none of globex.
    app.create_user_in("globex", &globex_token, "elsewhere")
        .await;
    let acme = app.tenant_row().await;
    let view = app.admin(Method::GET, "/tenants/acme/brake", None).await;
    assert_eq!(view.status(), 200, "numbers acme's events");
    let events: i64 = app
        .ctx
        .store
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            app.ctx.store.conn().get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = '{}'",
                acme.id
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap();
    assert!(events >= 4, "the registration's users: {events}");
    let (status, chart) = get(&app, &alice, "/console/tenants/acme/events?hours=1").await;
    assert_eq!(status, 200, "{chart}");
    assert!(chart.contains("<svg id=\"events-per-minute\""), "{chart}");
    assert!(chart.contains("<svg id=\"relay-lag\""), "{chart}");
    assert!(
        chart.contains(&format!("{events} events in the last 1 h")),
        "{chart}"
    );
    // The journal's time filter: the last 15 minutes hold the users just created (the
    // clock stands still); any other span is refused.
    app.journal_of("acme", "?method=POST", 3).await;
    let (status, recent) = get(&app, &alice, "/console/tenants/acme?within=15&method=POST").await;
    assert_eq!(status, 200);
    assert!(recent.contains("/Users"), "{recent}");
    let (status, _) = get(&app, &alice, "/console/tenants/acme?within=7").await;
    assert_eq!(status, 400);
    // The tenants list: acme's backlog and the age of its oldest unpublished event.
    let (_, list) = get(&app, &alice, "/console/tenants").await;
    let row = &list[list.find("data-tenant=\"acme\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    {
        // No relay runs in the test app: acme's events wait, the oldest written at the
        // test clock's instant (it stands still).
        let unpublished = scimbus::store::console::tenant_health(
            app.ctx.store.conn(),
            Some("acme"),
            "",
            &scimbus::domain::Timestamp::from("2000-01-01T00:00:00.000Z"),
            1,
        )
        .await
        .unwrap()[0]
            .backlog;
        assert!(unpublished > 0);
        assert!(
            row.contains(&format!("class=\"backlog\">{unpublished}<")),
            "{row}"
        );
        assert!(row.contains("0 s old"), "{row}");
    }
    // Another tenant's page shows its own events only; an unknown tenant is 404.
    let (status, _) = get(&app, &alice, "/console/tenants/nope/events").await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, &alice, "/console/tenants/nope/audit").await;
    assert_eq!(status, 404);
}

/// The console in the isolation matrix: with another tenant holding a token, a setup link,
/// an extension, journaled failures and audit entries, no page of acme shows any of them,
/// and acme's paths naming their ids neither show nor change them (404).
async fn no_console_page_of_a_tenant_shows_or_changes_another_tenants_data(backend: Backend) {
    let app = console(backend).await;
    let alice = browser();
    sign_in(&app, &alice, ADMIN_TOKEN).await;
    let issued: Value = app
        .admin(
            Method::POST,
            "/tenants/other/tokens",
            Some(json!({"name": "their-token-name"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let (their_token, their_token_id) = (
        issued["token"].as_str().unwrap().to_owned(),
        issued["id"].as_str().unwrap().to_owned(),
    );
    let link: Value = app
        .admin(Method::POST, "/tenants/other/setup-links", Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    let their_link = link["id"].as_str().unwrap().to_owned();
    let job = app
        .admin(
            Method::POST,
            "/tenants/other/schemas",
            Some(json!({
                "id": "urn:their:secret:extension", "name": "TheirSecret", "resourceType": "User",
                "attributes": [{"name": "theirAttribute", "type": "string"}]
            })),
        )
        .await;
    assert!(job.status().is_success(), "{}", job.text().await.unwrap());
    // Their IdP: a user, and a failed PATCH journaled with its body.
    app.create_user_in("other", &their_token, "their-user-name")
        .await;
    let failed = app
        .client
        .patch(format!("{}/scim/v2/other/Users/no-such-user", app.address))
        .bearer_auth(&their_token)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "displayName", "value": "their-patch-value"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 404);
    let their_entry = app.journal_of("other", "?status=4xx", 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // acme's own activity, so that its pages are not empty.
    app.create_user(&crate::helpers::user("our-user")).await;

    let markers = [
        "their-token-name",
        "urn:their:secret:extension",
        "their-user-name",
        "their-patch-value",
        their_link.as_str(),
        their_token_id.as_str(),
        their_entry.as_str(),
    ];
    // The test app prunes unpublished events (no relay anywhere): no backlog, no lag.
    assert!(!app.ctx.keep_unpublished);
    let (_, list) = get(&app, &alice, "/console/tenants").await;
    assert!(list.contains("class=\"backlog\">no relay<"), "{list}");
    let (_, events) = get(&app, &alice, "/console/tenants/acme/events").await;
    assert!(
        events.contains("id=\"no-relay\"") && !events.contains("relay-lag"),
        "{events}"
    );
    for path in [
        "/console/tenants/acme",
        "/console/tenants/acme?status=4xx",
        "/console/tenants/acme/audit",
        "/console/tenants/acme/events?hours=24",
    ] {
        let (status, page) = get(&app, &alice, path).await;
        assert_eq!(status, 200, "{path}");
        for marker in markers {
            assert!(!page.contains(marker), "{path} shows {marker}: {page}");
        }
    }
    // Their journal entry, read through acme's path: 404, nothing of it.
    let (status, page) = get(
        &app,
        &alice,
        &format!("/console/tenants/acme/journal/{their_entry}"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(!page.contains("their-patch-value"), "{page}");
    // Their token and link, revoked through acme's path: 404, both still live.
    let (_, acme_page) = get(&app, &alice, "/console/tenants/acme").await;
    for path in [
        format!("/console/tenants/acme/tokens/{their_token_id}/revoke"),
        format!("/console/tenants/acme/setup-links/{their_link}/revoke"),
    ] {
        let (status, _) = post_form(&app, &alice, &acme_page, &path, &[]).await;
        assert_eq!(status, 404, "{path}");
    }
    let users = app
        .client
        .get(format!("{}/scim/v2/other/Users", app.address))
        .bearer_auth(&their_token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200, "their token still works");
    let links: Value = app
        .admin(Method::GET, "/tenants/other/setup-links", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(links["setupLinks"][0]["state"], "open");
}

/// Every path and method of `openapi/console.json` is a route of the console, answering a
/// signed-in browser one of the statuses it documents, as HTML (or CSS, or a redirect);
/// and the console serves nothing the document lacks (its pages link only to its routes).
async fn every_route_of_the_console_document_is_served_as_documented(backend: Backend) {
    let app = console(backend).await;
    let alice = browser();
    sign_in(&app, &alice, ADMIN_TOKEN).await;
    let (_, page) = get(&app, &alice, "/console/tenants/acme").await;
    let token = csrf(&page);
    let doc: Value =
        serde_json::from_str(&scimbus::http::console::document_json().unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 14, "{}", paths.len());
    // Sign-out last: it ends the session the others use.
    let mut routes: Vec<(&String, &Value)> = paths.iter().collect();
    routes.sort_by_key(|(template, _)| template.ends_with("/sign-out"));
    for (template, operations) in routes {
        for (method, operation) in operations.as_object().unwrap() {
            let path = template
                .replace("{slug}", "acme")
                .replace("{id}", "no-such-id")
                .replace("{kind}", "tokens");
            let url = format!("{}{path}", app.address);
            let request = match method.as_str() {
                "get" => alice.get(url),
                "post" => {
                    // The fields the form's schema names, each with a value it accepts.
                    let form = operation["requestBody"]["content"]
                        ["application/x-www-form-urlencoded"]["schema"]["$ref"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap();
                    let fields: Vec<(String, String)> =
                        doc["components"]["schemas"][form]["properties"]
                            .as_object()
                            .unwrap()
                            .keys()
                            .map(|field| {
                                let value = match field.as_str() {
                                    "csrf" => token.clone(),
                                    "token" => "scimbus_a_wrong".to_owned(),
                                    "confirm" => "acme".to_owned(),
                                    "name" => "documented".to_owned(),
                                    other => panic!("{template}: field {other}"),
                                };
                                (field.clone(), value)
                            })
                            .collect();
                    alice.post(url).header("origin", &app.address).form(&fields)
                }
                other => panic!("{other} {template}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let documented = &operation["responses"];
            let listed = documented.get(status.to_string());
            assert!(
                listed.is_some() || (status >= 400 && documented.get("default").is_some()),
                "{method} {template}: {status} is not documented"
            );
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            if status != 303 {
                let media = content_type.clone().unwrap_or_default();
                let media = media.split(';').next().unwrap();
                let entry = listed.or_else(|| documented.get("default")).unwrap();
                assert!(
                    entry["content"].get(media).is_some(),
                    "{method} {template}: {status} as {media:?}"
                );
            }
        }
    }
    // The sign-out came last, and ended the session.
    let response = alice
        .get(format!("{}/console/tenants", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

/// The audit page holds 100 entries: "Older entries" appears when more than a page exists,
/// not when the last page happens to be full, and the older page ends the log.
async fn the_audit_page_offers_older_entries_only_when_there_are_some(backend: Backend) {
    let app = console(backend).await;
    let alice = browser();
    sign_in(&app, &alice, ADMIN_TOKEN).await;
    let conn = app.ctx.store.conn();
    let audited = |n: usize| scimbus::store::audit::AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: scimbus::domain::Timestamp::from("2026-01-01T00:00:00.000Z"),
        actor: "admin:bootstrap".to_owned(),
        action: format!("test.entry-{n}"),
        tenant: Some("acme".to_owned()),
        target: None,
        detail: serde_json::json!({}),
    };
    let existing = scimbus::store::audit::newest(conn, "acme", None, 1_000)
        .await
        .unwrap()
        .len();
    assert!(existing < 100, "{existing}");
    for n in existing..100 {
        scimbus::store::audit::insert(conn, audited(n))
            .await
            .unwrap();
    }
    let (status, page) = get(&app, &alice, "/console/tenants/acme/audit").await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("id=\"older\""),
        "exactly a page: nothing older"
    );
    scimbus::store::audit::insert(conn, audited(100))
        .await
        .unwrap();
    let (_, page) = get(&app, &alice, "/console/tenants/acme/audit").await;
    assert!(page.contains("test.entry-100"), "the newest first");
    let needle = "id=\"older\" href=\"";
    let at = page.find(needle).expect("a link to older entries") + needle.len();
    let older = page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&");
    let (status, rest) = get(&app, &alice, &older).await;
    assert_eq!(status, 200);
    assert_eq!(rest.matches("<tr").count() - 1, 1, "the one left: {rest}");
    assert!(!rest.contains("id=\"older\""), "the end of the log");
}
