//! A SET receiver of an application credential that polls (RFC 8936): one credential, one
//! poll for every tenant the credential reads, each tenant's SETs in its order and issued by
//! it, acknowledged across tenants, a long poll woken by any of them, lanes that share a
//! small `maxEvents`, a tenant gained later, and a revoked credential's receiver refused.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::apps::issue_app;
use crate::both_backends;
use crate::helpers::{Backend, TestApp, issue, spawn_app_with};
use crate::sets::{SECRET, jwks, poll, verified};
use crate::sets_push::app_receivers;
use scimbus::domain::Scope;

both_backends!(
    an_application_credential_receiver_polls_every_tenant_it_reads_with_one_credential,
    a_group_poll_signs_each_set_it_answers_once,
    a_waiting_group_poll_wakes_for_its_tenants_events,
    acknowledging_touches_the_lanes_whose_events_it_names_only,
);

/// The SETs of a poll answer, verified, as (tenant slug from `iss`, user name, claims), in
/// the answer's order.
fn tenants_of(app: &TestApp, answer: &Value, keys: &Value) -> Vec<(String, String, Value)> {
    let prefix = format!("{}/scim/v2/", app.address);
    answer["sets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(jti, jws)| {
            let (_, claims) = verified(jws.as_str().unwrap(), keys);
            assert_eq!(claims["jti"], jti.as_str());
            assert_eq!(claims["aud"], "https://billing.example");
            let tenant = claims["iss"]
                .as_str()
                .unwrap()
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{claims}"))
                .to_owned();
            let event = claims["events"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap();
            let name = event["data"]["userName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (tenant, name, claims)
        })
        .collect()
}

/// (tenant, user name) of each SET, for failure messages.
fn summary(got: &[(String, String, Value)]) -> Vec<(&str, &str)> {
    got.iter()
        .map(|(t, n, _)| (t.as_str(), n.as_str()))
        .collect()
}

/// Acknowledges `acked` and whatever follows until a poll answers nothing.
async fn drain(app: &TestApp, token: &str, mut acked: Vec<String>) {
    loop {
        let next = poll(app, token, json!({"ack": acked, "returnImmediately": true})).await;
        if next["sets"] == json!({}) {
            return;
        }
        acked = acks(&next);
    }
}

fn acks(answer: &Value) -> Vec<String> {
    answer["sets"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

async fn an_application_credential_receiver_polls_every_tenant_it_reads_with_one_credential(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &[("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned())]).await;
    let issued = issue_app(&app, json!({"name": "billing", "all_tenants": true})).await;
    let app_id = issued["id"].as_str().unwrap().to_owned();
    let response = app
        .admin(
            Method::POST,
            &format!("/apps/{app_id}/receivers"),
            Some(json!({"name": "billing", "audience": "https://billing.example"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let group: Value = response.json().await.unwrap();
    assert_eq!(group["delivery"], "poll", "{group}");
    let token = group["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("scimbus_r_"), "{group}");
    assert_eq!(group["lanes"].as_array().unwrap().len(), 2, "{group}");
    // The credential is shown once: never in the listing.
    let listed = app_receivers(&app, &app_id).await.to_string();
    assert!(
        !listed.contains(&token) && listed.contains("\"poll\""),
        "{listed}"
    );

    let other = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    let acme = issue(&app.ctx, "acme", vec![Scope::Scim]).await;
    for n in 0..3 {
        app.create_user_in("acme", &acme, &format!("acme-{n}"))
            .await;
        app.create_user_in("other", &other, &format!("other-{n}"))
            .await;
    }
    let keys = jwks(&app).await;
    let first = poll(&app, &token, json!({"returnImmediately": true})).await;
    let got = tenants_of(&app, &first, &keys);
    // Each tenant's SETs, issued by it, in its order.
    for tenant in ["acme", "other"] {
        let names: Vec<&str> = got
            .iter()
            .filter(|(t, _, _)| t == tenant)
            .map(|(_, n, _)| n.as_str())
            .collect();
        let want: Vec<String> = (0..3).map(|n| format!("{tenant}-{n}")).collect();
        assert_eq!(names, want, "{:?}", summary(&got));
    }
    assert_eq!(got.len(), 6, "{:?}", summary(&got));
    // Not acknowledged: delivered again.
    let again = poll(&app, &token, json!({"returnImmediately": true})).await;
    assert_eq!(acks(&again).len(), 6);

    // Acknowledged across both tenants: nothing more, every lane at its tenant's latest.
    let done = poll(
        &app,
        &token,
        json!({"ack": acks(&first), "returnImmediately": true}),
    )
    .await;
    assert_eq!(acks(&done), Vec::<String>::new());
    let listed = app_receivers(&app, &app_id).await;
    for lane in listed["receivers"][0]["lanes"].as_array().unwrap() {
        assert_eq!(lane["position"], lane["latest"], "{listed}");
        assert_eq!(lane["delivery"], "poll", "{listed}");
    }

    // A long poll is woken by a change in any of the tenants.
    let waiting = {
        let (client, address, token) = (app.client.clone(), app.address.clone(), token.clone());
        tokio::spawn(async move {
            client
                .post(format!("{address}/sets/v1/poll"))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.create_user_in("other", &other, "other-late").await;
    let woken = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .expect("the long poll answers when a tenant changes")
        .unwrap();
    let got = tenants_of(&app, &woken, &keys);
    assert!(
        got.iter()
            .any(|(t, n, _)| t == "other" && n == "other-late"),
        "{:?}",
        summary(&got)
    );
    poll(&app, &token, json!({"ack": acks(&woken), "maxEvents": 0})).await;

    // A small `maxEvents` is shared: one busy tenant does not hold back the other.
    for n in 0..25 {
        app.create_user_in("acme", &acme, &format!("busy-{n}"))
            .await;
    }
    for n in 0..5 {
        app.create_user_in("other", &other, &format!("quiet-{n}"))
            .await;
    }
    let shared = poll(
        &app,
        &token,
        json!({"maxEvents": 20, "returnImmediately": true}),
    )
    .await;
    let got = tenants_of(&app, &shared, &keys);
    assert_eq!(got.len(), 20, "{:?}", summary(&got));
    assert_eq!(shared["moreAvailable"], true);
    let per_tenant: HashMap<&str, usize> = got.iter().fold(HashMap::new(), |mut m, (t, _, _)| {
        *m.entry(t.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per_tenant.get("other"), Some(&5), "{:?}", summary(&got));
    drain(&app, &token, acks(&shared)).await;

    // A tenant the credential gains gets a lane from its first event.
    let created = app
        .admin(Method::POST, "/tenants", Some(json!({"slug": "globex"})))
        .await;
    assert_eq!(created.status(), 201);
    let globex = issue(&app.ctx, "globex", vec![Scope::Scim]).await;
    app.create_user_in("globex", &globex, "in-globex").await;
    scimbus::service::set_groups::reconcile(&app.ctx)
        .await
        .unwrap();
    let gained = poll(&app, &token, json!({"returnImmediately": true})).await;
    let got = tenants_of(&app, &gained, &keys);
    assert!(
        got.iter()
            .any(|(t, n, _)| t == "globex" && n == "in-globex"),
        "{:?}",
        summary(&got)
    );
    assert!(
        got.iter().all(|(t, _, _)| t == "globex"),
        "{:?}",
        summary(&got)
    );

    // More lanes behind than one answer holds (3 lanes, 10 SETs each at least, 20 at most):
    // the lane left out goes first in the next poll.
    drain(&app, &token, acks(&gained)).await;
    for n in 0..15 {
        app.create_user_in("acme", &acme, &format!("a3-{n}")).await;
        app.create_user_in("other", &other, &format!("o3-{n}"))
            .await;
        app.create_user_in("globex", &globex, &format!("g3-{n}"))
            .await;
    }
    // (The service's clock moves between polls, as it does between real ones.)
    let mut turns = Vec::new();
    for _ in 0..2 {
        app.clock.advance(chrono::TimeDelta::seconds(1));
        let answer = poll(
            &app,
            &token,
            json!({"maxEvents": 20, "returnImmediately": true}),
        )
        .await;
        turns.push(tenants_of(&app, &answer, &keys));
    }
    let (first, second) = (&turns[0], &turns[1]);
    let served = |got: &[(String, String, Value)]| -> std::collections::BTreeSet<String> {
        got.iter().map(|(t, _, _)| t.clone()).collect()
    };
    assert_eq!(first.len(), 20, "{:?}", summary(first));
    assert_eq!(served(first).len(), 2, "{:?}", summary(first));
    let all: std::collections::BTreeSet<String> =
        served(first).union(&served(second)).cloned().collect();
    assert_eq!(
        all.len(),
        3,
        "first {:?}, second {:?}",
        summary(first),
        summary(second)
    );

    // Revoked: the credential's receiver polls no more.
    let revoked = app
        .admin(Method::DELETE, &format!("/apps/{app_id}"), None)
        .await;
    assert_eq!(revoked.status(), 204);
    let refused = app
        .client
        .post(format!("{}/sets/v1/poll", app.address))
        .bearer_auth(&token)
        .json(&json!({"returnImmediately": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["err"], "authentication_failed", "{body}");
}

/// The poll credential of a receiver (audience `https://billing.example`) of a new
/// application credential issued with `credential`.
async fn polling_receiver(app: &TestApp, credential: Value) -> String {
    let issued = issue_app(app, credential).await;
    let app_id = issued["id"].as_str().unwrap().to_owned();
    let response = app
        .admin(
            Method::POST,
            &format!("/apps/{app_id}/receivers"),
            Some(json!({"name": "receiver", "audience": "https://billing.example"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let group: Value = response.json().await.unwrap();
    group["token"].as_str().unwrap().to_owned()
}

/// `scimbus_sets_signed_total` now.
async fn signed(app: &TestApp) -> u64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix("scimbus_sets_signed_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// When one tenant's lane has more than its share of a poll and another's less, the busy
/// lane gets the room left: the SETs answered are signed once each, not its share signed
/// and then signed again with the rest (signing is the feed's main CPU cost).
async fn a_group_poll_signs_each_set_it_answers_once(backend: Backend) {
    let app = spawn_app_with(backend, &[("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned())]).await;
    let token = polling_receiver(&app, json!({"name": "billing", "all_tenants": true})).await;
    let acme = issue(&app.ctx, "acme", vec![Scope::Scim]).await;
    let other = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    for n in 0..3 {
        app.create_user_in("acme", &acme, &format!("acme-{n}"))
            .await;
    }
    for n in 0..30 {
        app.create_user_in("other", &other, &format!("other-{n}"))
            .await;
    }
    let before = signed(&app).await;
    let answer = poll(
        &app,
        &token,
        json!({"maxEvents": 20, "returnImmediately": true}),
    )
    .await;
    let got = tenants_of(&app, &answer, &jwks(&app).await);
    assert_eq!(got.len(), 20, "{:?}", summary(&got));
    assert_eq!(got.iter().filter(|(t, _, _)| t == "acme").count(), 3);
    assert_eq!(answer["moreAvailable"], true);
    assert_eq!(
        signed(&app).await - before,
        20,
        "SETs signed for a poll answering 20"
    );
}

/// A receiver of a credential that reads acme only: its waiting poll (no
/// `returnImmediately`) is woken by acme's event, not answered by another tenant's, and
/// answers with acme's SET.
async fn a_waiting_group_poll_wakes_for_its_tenants_events(backend: Backend) {
    let app = spawn_app_with(backend, &[("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned())]).await;
    let token = polling_receiver(&app, json!({"name": "crm", "tenants": ["acme"]})).await;
    let acme = issue(&app.ctx, "acme", vec![Scope::Scim]).await;
    let other = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    // Nothing yet: drained.
    let empty = poll(&app, &token, json!({"returnImmediately": true})).await;
    let acked: Vec<String> = empty["sets"].as_object().unwrap().keys().cloned().collect();
    poll(
        &app,
        &token,
        json!({"ack": acked, "returnImmediately": true}),
    )
    .await;
    let waiting = {
        let client = app.client.clone();
        let url = format!("{}/sets/v1/poll", app.address);
        let token = token.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let answer: Value = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"maxEvents": 10}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // It waits on its credential's tenants, not on every tenant.
    assert_eq!(app.ctx.event_waiters.sets_watched(), 1);
    app.create_user_in("other", &other, "elsewhere").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "another tenant's event answered the wait"
    );
    app.create_user_in("acme", &acme, "woken").await;
    let (answer, waited) = waiting.await.unwrap();
    let got = tenants_of(&app, &answer, &jwks(&app).await);
    assert_eq!(summary(&got), [("acme", "woken")], "{answer}");
    assert!(
        waited < std::time::Duration::from_secs(20),
        "woken, not timed out: {waited:?}"
    );
}

/// A group poll acknowledging SETs of one tenant records them in that tenant's lane and
/// leaves the other lanes that are behind as they were (not even their last poll time,
/// which orders whose turn comes first when `maxEvents` is short).
async fn acknowledging_touches_the_lanes_whose_events_it_names_only(backend: Backend) {
    let app = spawn_app_with(backend, &[("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned())]).await;
    let issued = issue_app(&app, json!({"name": "crm", "all_tenants": true})).await;
    let app_id = issued["id"].as_str().unwrap().to_owned();
    let response = app
        .admin(
            Method::POST,
            &format!("/apps/{app_id}/receivers"),
            Some(json!({"name": "crm", "audience": "https://billing.example"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let group: Value = response.json().await.unwrap();
    let token = group["token"].as_str().unwrap().to_owned();
    let group_id = group["id"].as_str().unwrap().to_owned();
    let acme = issue(&app.ctx, "acme", vec![Scope::Scim]).await;
    let other = issue(&app.ctx, "other", vec![Scope::Scim]).await;
    app.create_user_in("acme", &acme, "acme-0").await;
    app.create_user_in("other", &other, "other-0").await;
    let answer = poll(&app, &token, json!({"returnImmediately": true})).await;
    let keys = jwks(&app).await;
    let got = tenants_of(&app, &answer, &keys);
    assert_eq!(got.len(), 2, "{:?}", summary(&got));
    let acme_jti: Vec<String> = answer["sets"]
        .as_object()
        .unwrap()
        .keys()
        .zip(&got)
        .filter(|(_, (tenant, _, _))| tenant == "acme")
        .map(|(jti, _)| jti.clone())
        .collect();
    let lanes = || async {
        scimbus::store::sets::group_lanes(app.ctx.store.conn(), &group_id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.tenant_id.to_string(), (l.position, l.last_polled_at)))
            .collect::<HashMap<_, _>>()
    };
    let before = lanes().await;
    let other_id = scimbus::store::tenants::find(
        app.ctx.store.conn(),
        &scimbus::domain::TenantSlug::parse("other").unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
    .id
    .to_string();
    // Acknowledge acme's SET alone, asking for nothing more.
    let done = poll(&app, &token, json!({"ack": acme_jti, "maxEvents": 0})).await;
    assert_eq!(done["sets"], json!({}), "{done}");
    let after = lanes().await;
    assert_eq!(
        after[&other_id], before[&other_id],
        "other's lane untouched"
    );
    assert!(
        after
            .iter()
            .any(|(t, (position, _))| *t != other_id && *position > before[t].0)
    );
}
