//! RFC 8935 push delivery of security event tokens (issue 26): a push receiver gets every
//! change of its tenant as verifiable SETs in order, the same ones a poll receiver gets;
//! failures are retried with backoff while other receivers go on, mark the receiver
//! failing after a bounded time, and recover; a SET refused for good is parked; a receiver
//! that refuses our credentials holds its lane; endpoints cannot reach internal addresses,
//! not even through a name or a redirect.
//!
//! Retries follow the service's clock: the tests move it instead of waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::apps::issue_app;
use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_scim_error, issue, spawn_app_with, user};
use crate::sets::{SECRET, event_uri, in_order, jwks, poll, register, verified};
use scimbus::domain::Scope;
use scimbus_support::set_receiver::{PushReceiver, Received};

both_backends!(
    a_push_receiver_gets_every_change_in_order_as_the_poll_receiver_does,
    a_failing_receiver_is_retried_marked_failing_and_recovers_while_others_go_on,
    a_set_refused_for_good_is_parked_and_a_refusal_of_our_credentials_holds_the_lane,
    an_application_credential_receiver_gets_every_tenant_it_reads_and_follows_new_ones,
);

const AUTHORIZATION: &str = "Bearer push-secret-for-tests";

/// A TCP listener that counts the connections made to it (and answers none).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

async fn with_push(backend: Backend, allow_private: bool) -> TestApp {
    spawn_app_with(
        backend,
        &[
            ("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned()),
            (
                "SCIMBUS_SET_PUSH_ALLOW_PRIVATE",
                if allow_private { "on" } else { "off" }.to_owned(),
            ),
            ("SCIMBUS_SET_PUSH_FAILING_AFTER_SECONDS", "60".to_owned()),
        ],
    )
    .await
}

async fn register_push(app: &TestApp, receiver: &PushReceiver, extra: Value) -> Value {
    let mut body = json!({"name": "pushed", "signals": true, "after": 0,
                          "endpoint": receiver.url, "authorization": AUTHORIZATION});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app
        .admin(Method::POST, "/tenants/acme/receivers", Some(body))
        .await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    assert!(info.get("token").is_none(), "{info}");
    assert!(!info.to_string().contains(AUTHORIZATION), "{info}");
    assert_eq!(info["delivery"], "push");
    info
}

/// `GET /admin/v1/apps/{app_id}/receivers`.
pub(crate) async fn app_receivers(app: &TestApp, app_id: &str) -> Value {
    app.admin(Method::GET, &format!("/apps/{app_id}/receivers"), None)
        .await
        .json()
        .await
        .unwrap()
}

/// `GET …/receivers/{id}/parked` of acme.
async fn parked_of(app: &TestApp, id: &str) -> Value {
    app.admin(
        Method::GET,
        &format!("/tenants/acme/receivers/{id}/parked"),
        None,
    )
    .await
    .json()
    .await
    .unwrap()
}

async fn receiver_info(app: &TestApp, id: &str) -> Value {
    let listed: Value = app
        .admin(Method::GET, "/tenants/acme/receivers", None)
        .await
        .json()
        .await
        .unwrap();
    listed["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no receiver {id} in {listed}"))
}

/// Waits (up to 30 s) until `check` holds.
async fn until<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The jtis received, each once, in the order first received.
fn jtis(received: &[Received]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    received
        .iter()
        .map(|r| r.claims["jti"].as_str().unwrap().to_owned())
        .filter(|j| seen.insert(j.clone()))
        .collect()
}

async fn a_push_receiver_gets_every_change_in_order_as_the_poll_receiver_does(backend: Backend) {
    let app = with_push(backend, true).await;
    let receiver = PushReceiver::start().await.unwrap();
    let info = register_push(
        &app,
        &receiver,
        json!({"audience": "https://app.example/sets"}),
    )
    .await;
    let id = info["id"].as_str().unwrap().to_owned();
    let (_, token) = register(
        &app,
        json!({"name": "polled", "signals": true, "after": 0,
               "audience": "https://app.example/sets"}),
    )
    .await;

    let created = app.create_user(&user("bjensen")).await;
    let uid = created["id"].as_str().unwrap().to_owned();
    let group: Value = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Staff", "members": [{"value": uid}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let gid = group["id"].as_str().unwrap().to_owned();
    let deactivated = app
        .patch(
            &format!("/Users/{uid}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert_eq!(deactivated.status(), 200);
    assert_eq!(app.delete(&format!("/Users/{uid}")).await.status(), 204);
    assert_eq!(app.delete(&format!("/Groups/{gid}")).await.status(), 204);

    // The poll receiver's SETs, in event order, are what the push receiver must get.
    let keys = jwks(&app).await;
    let polled = poll(&app, &token, json!({"returnImmediately": true})).await;
    let expected: Vec<String> = in_order(&polled["sets"], &keys)
        .iter()
        .map(|c| c["jti"].as_str().unwrap().to_owned())
        .collect();
    assert!(expected.len() >= 10, "{polled}");
    until("every SET is pushed", async || {
        jtis(&receiver.accepted()).len() >= expected.len()
    })
    .await;
    let accepted = receiver.accepted();
    assert_eq!(jtis(&accepted), expected);
    for r in &accepted {
        assert_eq!(r.authorization.as_deref(), Some(AUTHORIZATION));
        assert_eq!(r.content_type.as_deref(), Some("application/secevent+jwt"));
        let (header, claims) = verified(&r.jws, &keys);
        assert_eq!(header["typ"], "secevent+jwt");
        assert_eq!(claims["aud"], "https://app.example/sets");
        assert_eq!(claims["iss"], format!("{}/scim/v2/acme", app.address));
    }
    let uris: Vec<String> = accepted.iter().map(|r| event_uri(&r.claims)).collect();
    assert!(uris.contains(&"urn:ietf:params:scim:event:prov:deactivate".to_owned()));
    assert!(uris.contains(
        &"https://schemas.openid.net/secevent/caep/event-type/session-revoked".to_owned()
    ));

    until("its position reaches the latest event", async || {
        let r = receiver_info(&app, &id).await;
        r["position"] == r["latest"]
    })
    .await;
    let r = receiver_info(&app, &id).await;
    assert_eq!(r["state"], "ok", "{r}");
    assert_eq!(r["parked"], 0);
    assert!(r["lastDeliveredAt"].is_string(), "{r}");
    assert_eq!(r["endpoint"], receiver.url);

    // Later changes follow, woken by their commit.
    app.create_user(&user("later")).await;
    until("the later change is pushed", async || {
        receiver
            .accepted()
            .iter()
            .any(|r| r.claims.to_string().contains("later"))
    })
    .await;
    // A replay sends again what follows the position it names.
    let before = receiver.accepted().len();
    let replay = app
        .admin(
            Method::POST,
            &format!("/tenants/acme/receivers/{id}/replay"),
            Some(json!({"after": 0})),
        )
        .await;
    assert_eq!(replay.status(), 200);
    until("the replay is pushed", async || {
        receiver.accepted().len() >= before + expected.len()
    })
    .await;
    let again: Vec<String> = receiver.accepted()[before..]
        .iter()
        .take(expected.len())
        .map(|r| r.claims["jti"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, expected);
}

async fn a_failing_receiver_is_retried_marked_failing_and_recovers_while_others_go_on(
    backend: Backend,
) {
    let app = with_push(backend, true).await;
    let down = PushReceiver::start().await.unwrap();
    down.answer(Arc::new(|_| {
        (
            503,
            Some(json!({"err": "temporarily_unavailable"})),
            vec![("Retry-After", "2".to_owned())],
        )
    }));
    let up = PushReceiver::start().await.unwrap();
    let failing = register_push(&app, &down, json!({"name": "down"})).await;
    let fid = failing["id"].as_str().unwrap().to_owned();
    register_push(&app, &up, json!({"name": "up"})).await;

    for name in ["one", "two", "three"] {
        app.create_user(&user(name)).await;
    }
    until("the healthy receiver gets all three", async || {
        jtis(&up.accepted()).len() >= 3
    })
    .await;
    until("the failing receiver's failure is recorded", async || {
        receiver_info(&app, &fid).await["lastError"].is_string()
    })
    .await;
    let r = receiver_info(&app, &fid).await;
    assert_eq!(r["state"], "ok", "not failing before its time: {r}");
    assert!(r["lastError"].as_str().unwrap().contains("503"), "{r}");
    assert!(r["retryAt"].is_string(), "{r}");
    assert!(r["position"].as_i64() < r["latest"].as_i64(), "{r}");

    // Retried when due, not before: `Retry-After: 2` holds it two seconds of the service's
    // clock (one is not enough); failing after a minute.
    let tried = down.attempts();
    app.clock.advance(chrono::TimeDelta::seconds(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(down.attempts(), tried, "retried before its backoff ran out");
    for _ in 0..3 {
        // Each attempt recorded before the clock moves (else it is recorded after, due
        // later than the new time).
        let before = down.attempts();
        until("the attempt is recorded", async || {
            receiver_info(&app, &fid).await["attempts"].as_u64() == Some(before as u64)
        })
        .await;
        app.clock.advance(chrono::TimeDelta::seconds(30));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while down.attempts() == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no retry: {}",
                receiver_info(&app, &fid).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    until("the receiver is marked failing", async || {
        receiver_info(&app, &fid).await["state"] == "failing"
    })
    .await;
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("scimbus_set_receivers_failing{tenant=\"acme\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("scimbus_set_push_deliveries_total{outcome=\"retry\"}"));
    // The healthy one went on meanwhile.
    app.create_user(&user("four")).await;
    until("the healthy receiver gets the fourth", async || {
        jtis(&up.accepted()).len() >= 4
    })
    .await;

    // The receiver is back: everything arrives, in the same order, and it is ok again.
    down.answer(Arc::new(|_| (202, None, vec![])));
    let tried = down.attempts();
    until("the last attempt is recorded", async || {
        receiver_info(&app, &fid).await["attempts"].as_u64() == Some(tried as u64)
    })
    .await;
    app.clock.advance(chrono::TimeDelta::minutes(10));
    until("the recovered receiver gets all four", async || {
        jtis(&down.accepted()).len() >= 4
    })
    .await;
    assert_eq!(jtis(&down.accepted()), jtis(&up.accepted()));
    until("it is ok again", async || {
        receiver_info(&app, &fid).await["state"] == "ok"
    })
    .await;
    let r = receiver_info(&app, &fid).await;
    assert_eq!(r["attempts"], 0);
    assert!(r.get("lastError").is_none(), "{r}");
    let metrics = app.metrics_text().await;
    assert!(
        !metrics.contains("scimbus_set_receivers_failing{"),
        "{metrics}"
    );
}

async fn a_set_refused_for_good_is_parked_and_a_refusal_of_our_credentials_holds_the_lane(
    backend: Backend,
) {
    let app = with_push(backend, true).await;
    let receiver = PushReceiver::start().await.unwrap();
    // It cannot process the creation of "poison" (400 invalid_request): parked.
    receiver.answer(Arc::new(|claims| {
        if claims.to_string().contains("\"poison\"") {
            (
                400,
                Some(json!({"err": "invalid_request", "description": "cannot process"})),
                vec![],
            )
        } else {
            (202, None, vec![])
        }
    }));
    let info = register_push(&app, &receiver, json!({"signals": false})).await;
    let id = info["id"].as_str().unwrap().to_owned();
    for name in ["one", "poison", "three"] {
        app.create_user(&user(name)).await;
    }
    until("the others are delivered", async || {
        receiver.accepted().len() >= 2
    })
    .await;
    until("its position reaches the latest event", async || {
        let r = receiver_info(&app, &id).await;
        r["position"] == r["latest"]
    })
    .await;
    let names: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.claims.to_string())
        .collect();
    assert!(names[0].contains("\"one\"") && names[1].contains("\"three\""));
    let r = receiver_info(&app, &id).await;
    assert_eq!(r["parked"], 1, "{r}");
    assert_eq!(r["state"], "ok");
    let parked = parked_of(&app, &id).await;
    assert_eq!(parked["parked"].as_array().unwrap().len(), 1, "{parked}");
    assert_eq!(parked["parked"][0]["err"], "invalid_request");
    assert_eq!(parked["parked"][0]["description"], "cannot process");

    // It refuses our audience: failing at once, nothing more is sent past that SET.
    receiver.answer(Arc::new(|_| {
        (
            400,
            Some(json!({"err": "invalid_audience", "description": "not us"})),
            vec![],
        )
    }));
    let position = receiver_info(&app, &id).await["position"].clone();
    app.create_user(&user("four")).await;
    app.create_user(&user("five")).await;
    until("it is marked failing", async || {
        receiver_info(&app, &id).await["state"] == "failing"
    })
    .await;
    let r = receiver_info(&app, &id).await;
    assert!(
        r["lastError"]
            .as_str()
            .unwrap()
            .contains("invalid_audience"),
        "{r}"
    );
    assert_eq!(r["position"], position, "a refused SET is not skipped");
    assert_eq!(r["parked"], 1);
    // Fixed on their side; a replay from its position retries at once.
    receiver.answer(Arc::new(|_| (202, None, vec![])));
    let replay = app
        .admin(
            Method::POST,
            &format!("/tenants/acme/receivers/{id}/replay"),
            Some(json!({"after": position})),
        )
        .await;
    assert_eq!(replay.status(), 200);
    until("four and five arrive", async || {
        receiver.accepted().len() >= 4
    })
    .await;
    let accepted = receiver.accepted();
    assert!(accepted[2].claims.to_string().contains("\"four\""));
    assert!(accepted[3].claims.to_string().contains("\"five\""));
    until("it is ok again", async || {
        receiver_info(&app, &id).await["state"] == "ok"
    })
    .await;

    // A 400 that is no RFC 8935 answer (a proxy's page): held, never parked.
    receiver.answer(Arc::new(|_| (400, None, vec![])));
    app.create_user(&user("six")).await;
    until("a bare 400 marks it failing", async || {
        receiver_info(&app, &id).await["state"] == "failing"
    })
    .await;
    let r = receiver_info(&app, &id).await;
    assert_eq!(r["parked"], 1, "{r}");
    assert!(r["position"].as_i64() < r["latest"].as_i64(), "{r}");

    // Retention takes a parked SET with its event (the count of parked SETs stays).
    app.clock.advance(chrono::TimeDelta::days(8));
    scimbus::service::maintenance::prune_once(&app.ctx)
        .await
        .unwrap();
    let parked = parked_of(&app, &id).await;
    assert_eq!(parked["parked"], json!([]), "{parked}");
    assert_eq!(receiver_info(&app, &id).await["parked"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_endpoints_cannot_reach_internal_addresses() {
    let app = with_push(Backend::Sqlite, false).await;
    let (port, connections) = counting_listener().await;
    for endpoint in [
        format!("http://127.0.0.1:{port}/"),
        format!("https://127.0.0.1:{port}/"),
        format!("https://localhost:{port}/"),
        "https://[::1]/".to_owned(),
        "https://[::ffff:127.0.0.1]/".to_owned(),
        "https://10.0.0.8/".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://0.0.0.0/".to_owned(),
        "http://receiver.example.com/".to_owned(),
        "https://user:secret@receiver.example.com/".to_owned(),
        "ftp://receiver.example.com/".to_owned(),
        "not a url".to_owned(),
    ] {
        let response = app
            .admin(
                Method::POST,
                "/tenants/acme/receivers",
                Some(json!({"name": "internal", "endpoint": endpoint})),
            )
            .await;
        assert_scim_error(response, 400, Some("invalidValue")).await;
    }
    // `authorization` belongs to push receivers.
    let response = app
        .admin(
            Method::POST,
            "/tenants/acme/receivers",
            Some(json!({"name": "poll", "authorization": "Bearer x"})),
        )
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let listed: Value = app
        .admin(Method::GET, "/tenants/acme/receivers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["receivers"], json!([]), "nothing registered");

    // A name is checked where the client connects: this machine's own name resolves to a
    // loopback or private address, so no connection is made.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .collect();
    assert!(
        resolved
            .iter()
            .all(|a| !scimbus::events::push::allowed(a.ip(), false)),
        "{host} resolves to {resolved:?}: the test needs a name of this machine"
    );
    let info = app
        .admin(
            Method::POST,
            "/tenants/acme/receivers",
            Some(
                json!({"name": "by-name", "endpoint": format!("https://{host}:{port}/"),
                        "after": 0}),
            ),
        )
        .await;
    assert_eq!(info.status(), 201);
    let id = info.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_user(&user("someone")).await;
    until("the attempt is refused", async || {
        receiver_info(&app, &id).await["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no address scimbus may connect to"))
    })
    .await;
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let app = with_push(Backend::Sqlite, true).await;
    let (port, connections) = counting_listener().await;
    let receiver = PushReceiver::start().await.unwrap();
    let target = format!("http://127.0.0.1:{port}/internal");
    receiver.answer(Arc::new(move |_| {
        (307, None, vec![("Location", target.clone())])
    }));
    let info = register_push(&app, &receiver, json!({})).await;
    let id = info["id"].as_str().unwrap().to_owned();
    app.create_user(&user("someone")).await;
    until("the redirect is refused", async || {
        receiver_info(&app, &id).await["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("redirects are not followed"))
    })
    .await;
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    let r = receiver_info(&app, &id).await;
    assert!(r["position"].as_i64() < r["latest"].as_i64(), "{r}");
}

async fn an_application_credential_receiver_gets_every_tenant_it_reads_and_follows_new_ones(
    backend: Backend,
) {
    let app = with_push(backend, true).await;
    let receiver = PushReceiver::start().await.unwrap();
    let issued = issue_app(&app, json!({"name": "billing", "all_tenants": true})).await;
    let app_id = issued["id"].as_str().unwrap().to_owned();
    // Refusals: `after`, an unknown credential.
    for (path, body, status) in [
        (
            format!("/apps/{app_id}/receivers"),
            json!({"name": "x", "endpoint": receiver.url, "after": 0}),
            400,
        ),
        (
            "/apps/nobody/receivers".to_owned(),
            json!({"name": "x", "endpoint": receiver.url}),
            404,
        ),
    ] {
        let response = app.admin(Method::POST, &path, Some(body)).await;
        assert_scim_error(response, status, (status == 400).then_some("invalidValue")).await;
    }
    // The refusals registered nothing.
    assert_eq!(app_receivers(&app, &app_id).await["receivers"], json!([]));
    let response = app
        .admin(
            Method::POST,
            &format!("/apps/{app_id}/receivers"),
            Some(json!({"name": "billing", "endpoint": receiver.url,
                        "authorization": AUTHORIZATION, "audience": "https://billing.example"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let group: Value = response.json().await.unwrap();
    let group_id = group["id"].as_str().unwrap().to_owned();
    // The test's two tenants.
    assert_eq!(group["lanes"].as_array().unwrap().len(), 2, "{group}");
    assert!(!group.to_string().contains(AUTHORIZATION));

    // A change in acme arrives, issued by acme.
    app.create_user(&user("in-acme")).await;
    until("acme's change arrives", async || {
        receiver
            .accepted()
            .iter()
            .any(|r| r.claims.to_string().contains("in-acme"))
    })
    .await;
    // A tenant created later gets a lane, from its first event.
    let created = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(created.status(), 201);
    let globex = issue(&app.ctx, "globex", vec![Scope::Scim]).await;
    let response = app
        .client
        .post(format!("{}/scim/v2/globex/Users", app.address))
        .bearer_auth(&globex)
        .header("Content-Type", "application/scim+json")
        .body(user("in-globex").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    until("globex's change arrives", async || {
        receiver
            .accepted()
            .iter()
            .any(|r| r.claims.to_string().contains("in-globex"))
    })
    .await;
    let accepted = receiver.accepted();
    let keys = jwks(&app).await;
    for r in &accepted {
        let (_, claims) = verified(&r.jws, &keys);
        assert_eq!(claims["aud"], "https://billing.example");
        assert_eq!(r.authorization.as_deref(), Some(AUTHORIZATION));
        let tenant = if claims.to_string().contains("in-globex") {
            "globex"
        } else {
            "acme"
        };
        assert_eq!(claims["iss"], format!("{}/scim/v2/{tenant}", app.address));
    }
    let listed = app_receivers(&app, &app_id).await;
    let lanes = listed["receivers"][0]["lanes"].as_array().unwrap();
    let mut tenants: Vec<&str> = lanes
        .iter()
        .map(|l| l["tenant"].as_str().unwrap())
        .collect();
    tenants.sort_unstable();
    assert_eq!(tenants, ["acme", "globex", "other"], "{listed}");
    assert!(lanes.iter().all(|l| l["group"] == group_id.as_str()));

    // A lane is removed with its receiver, not on its own.
    let lane = lanes[0]["id"].as_str().unwrap();
    let tenant = lanes[0]["tenant"].as_str().unwrap();
    let refused = app
        .admin(
            Method::DELETE,
            &format!("/tenants/{tenant}/receivers/{lane}"),
            None,
        )
        .await;
    assert_scim_error(refused, 400, Some("invalidValue")).await;

    // Removed: no lane is left, and reconciling brings none back.
    let removed = app
        .admin(
            Method::DELETE,
            &format!("/apps/{app_id}/receivers/{group_id}"),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    let listed = app_receivers(&app, &app_id).await;
    assert_eq!(listed["receivers"], json!([]));
    scimbus::service::set_groups::reconcile(&app.ctx)
        .await
        .unwrap();
    for tenant in ["acme", "other", "globex"] {
        let tenant_lanes: Value = app
            .admin(Method::GET, &format!("/tenants/{tenant}/receivers"), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tenant_lanes["receivers"], json!([]), "{tenant}");
    }

    // A credential of some tenants gets lanes in those alone, also after a reconcile with
    // more tenants about; its revocation ends them.
    let some: Value = app
        .admin(
            Method::POST,
            "/apps",
            Some(json!({"name": "crm", "tenants": ["acme"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let some_id = some["id"].as_str().unwrap().to_owned();
    let response = app
        .admin(
            Method::POST,
            &format!("/apps/{some_id}/receivers"),
            Some(json!({"name": "crm", "endpoint": receiver.url})),
        )
        .await;
    assert_eq!(response.status(), 201);
    scimbus::service::set_groups::reconcile(&app.ctx)
        .await
        .unwrap();
    let listed: Value = app
        .admin(Method::GET, &format!("/apps/{some_id}/receivers"), None)
        .await
        .json()
        .await
        .unwrap();
    let tenants: Vec<&Value> = listed["receivers"][0]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["tenant"])
        .collect();
    assert_eq!(tenants, [&json!("acme")], "{listed}");
    let revoked = app
        .admin(Method::DELETE, &format!("/apps/{some_id}"), None)
        .await;
    assert!(revoked.status().is_success());
    let tenant_lanes: Value = app
        .admin(Method::GET, "/tenants/acme/receivers", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tenant_lanes["receivers"], json!([]));
}
