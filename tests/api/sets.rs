//! Security event tokens (issue 26): a tenant's changes as RFC 9967 SETs, signed, polled
//! over RFC 8936 by a registered receiver, acknowledged one by one; the JWKS verifies
//! them (here with ring; `examples/fastapi-app/tests/test_sets.py` with PyJWT); keys
//! rotate with overlap; bad requests change nothing.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use ring::signature;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{
    Backend, TestApp, USER_URN, assert_scim_error, spawn_app, spawn_app_with, user,
};

both_backends!(
    a_receiver_polls_every_change_as_verifiable_sets_in_order_and_acknowledges_them,
    acknowledgements_out_of_order_hold_the_position_and_a_replay_delivers_again,
    a_long_poll_answers_when_a_change_commits,
    a_rotation_signs_with_the_new_key_and_keeps_the_old_one_published,
    bad_receiver_and_poll_requests_change_nothing,
    retention_keeps_what_a_receiver_has_not_acknowledged_up_to_the_cap,
    a_receiver_that_filters_moves_past_what_it_does_not_receive,
);

pub(crate) const SECRET: &str = "set-key-secret-for-tests-0123456789abcdef";

const CREATE_FULL: &str = "urn:ietf:params:scim:event:prov:create:full";
const PUT_FULL: &str = "urn:ietf:params:scim:event:prov:put:full";
const PATCH_FULL: &str = "urn:ietf:params:scim:event:prov:patch:full";
const DEACTIVATE: &str = "urn:ietf:params:scim:event:prov:deactivate";
const DELETE: &str = "urn:ietf:params:scim:event:prov:delete";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

async fn with_sets(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned())]).await
}

/// Registers a receiver from the start of the tenant's sequence; returns it and its token.
pub(crate) async fn register(app: &TestApp, body: Value) -> (Value, String) {
    let response = app
        .admin(Method::POST, "/tenants/acme/receivers", Some(body))
        .await;
    assert_eq!(response.status(), 201);
    let info: Value = response.json().await.unwrap();
    let token = info["token"].as_str().unwrap().to_owned();
    (info, token)
}

async fn poll_raw(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/sets/v1/poll", app.address))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn poll(app: &TestApp, token: &str, body: Value) -> Value {
    let response = poll_raw(app, token, &body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub(crate) async fn jwks(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/sets/v1/jwks.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// The committed JSON Schema of a SET's claims (`openapi/sets/`).
fn claims_schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openapi/sets/security-event-token.json"
        );
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    })
}

/// The claims of `jws` once its signature verifies with the JWKS key its header names and
/// they match the committed JSON Schema.
pub(crate) fn verified(jws: &str, jwks: &Value) -> (Value, Value) {
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3, "{jws}");
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    assert_eq!(header["typ"], "secevent+jwt");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("no key {} in {jwks}", header["kid"]));
    let input = format!("{}.{}", parts[0], parts[1]);
    let sig = b64(parts[2]);
    let field = |n: &str| b64(key[n].as_str().unwrap());
    let ok = match header["alg"].as_str().unwrap() {
        "RS256" => signature::RsaPublicKeyComponents {
            n: field("n"),
            e: field("e"),
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig,
        )
        .is_ok(),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &sig)
                .is_ok()
        }
        other => panic!("alg {other}"),
    };
    assert!(ok, "signature of {jws}");
    let errors: Vec<String> = claims_schema()
        .iter_errors(&claims)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{claims}: {errors:?}");
    (header, claims)
}

/// `sets` (jti → SET) verified, in event order (jti: the event's UUIDv7, then `-n`).
pub(crate) fn in_order(sets: &Value, jwks: &Value) -> Vec<Value> {
    let mut all: Vec<(String, Value)> = sets
        .as_object()
        .unwrap()
        .iter()
        .map(|(jti, jws)| {
            let (_, claims) = verified(jws.as_str().unwrap(), jwks);
            assert_eq!(claims["jti"], jti.as_str());
            (jti.clone(), claims)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.into_iter().map(|(_, c)| c).collect()
}

pub(crate) fn event_uri(claims: &Value) -> String {
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "{claims}");
    events.keys().next().unwrap().clone()
}

async fn a_receiver_polls_every_change_as_verifiable_sets_in_order_and_acknowledges_them(
    backend: Backend,
) {
    let app = with_sets(backend).await;
    let (info, token) = register(
        &app,
        json!({"name": "app", "signals": true, "audience": "https://app.example/sets", "after": 0}),
    )
    .await;
    assert!(token.starts_with("scimbus_r_"));
    assert_eq!(info["form"], "full");
    assert_eq!(info["issuer"], format!("{}/scim/v2/acme", app.address));
    // The configuration advertises the feature (RFC 9967 §4).
    let config: Value = app
        .get("/ServiceProviderConfig")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(config["securityEvents"]["asyncRequest"], "none");
    assert!(
        config["securityEvents"]["eventUris"]
            .as_array()
            .unwrap()
            .contains(&json!(DEACTIVATE))
    );

    let created: Value = app
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "bjensen", "externalId": "00u1"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let uid = created["id"].as_str().unwrap().to_owned();
    let group: Value = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Staff"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let gid = group["id"].as_str().unwrap().to_owned();
    let added = app
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}),
        )
        .await;
    assert!(added.status().is_success());
    let deactivated = app
        .patch(
            &format!("/Users/{uid}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert_eq!(deactivated.status(), 200);
    assert_eq!(app.delete(&format!("/Users/{uid}")).await.status(), 204);

    let keys = jwks(&app).await;
    let answer = poll(&app, &token, json!({"returnImmediately": true})).await;
    assert_eq!(answer["moreAvailable"], false);
    let sets = in_order(&answer["sets"], &keys);
    let uris: Vec<String> = sets.iter().map(event_uri).collect();
    let user_uri = format!("/Users/{uid}");
    assert_eq!(
        uris.iter()
            .zip(&sets)
            .filter(|(_, c)| c["sub_id"]["uri"] == user_uri.as_str()
                || c["sub_id"]["sub"] == uid.as_str())
            .map(|(u, _)| u.as_str())
            .collect::<Vec<_>>(),
        [
            CREATE_FULL,
            PUT_FULL,
            DEACTIVATE,
            SESSION_REVOKED,
            "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
            DELETE,
            SESSION_REVOKED,
            "https://schemas.openid.net/secevent/risc/event-type/account-purged",
        ]
    );
    for claims in &sets {
        assert_eq!(claims["iss"], format!("{}/scim/v2/acme", app.address));
        assert_eq!(claims["aud"], "https://app.example/sets");
        assert!(claims["iat"].is_i64() && claims["txn"].is_string());
        assert!(claims.get("sub").is_none() && claims.get("exp").is_none());
    }
    let create = &sets[uris.iter().position(|u| u == CREATE_FULL).unwrap()];
    assert_eq!(
        create["sub_id"],
        json!({"format": "scim", "uri": user_uri, "id": uid, "externalId": "00u1"})
    );
    assert_eq!(create["events"][CREATE_FULL]["data"]["userName"], "bjensen");
    // The membership change is a PATCH of the group; the deletion's removal of the user
    // from it another, in the same transaction as the deletion.
    let patches: Vec<&Value> = sets.iter().filter(|c| event_uri(c) == PATCH_FULL).collect();
    assert_eq!(patches.len(), 2, "{sets:?}");
    assert_eq!(
        patches[0]["events"][PATCH_FULL]["data"]["Operations"][0],
        json!({"op": "add", "path": "members", "value": [{"value": uid}]})
    );
    let deletion = sets
        .iter()
        .find(|c| event_uri(c) == DELETE && c["sub_id"]["uri"] == user_uri.as_str())
        .unwrap();
    assert_eq!(patches[1]["txn"], deletion["txn"]);
    // The deactivation's SETs share one transaction; jtis are unique.
    let deactivation: Vec<&Value> = sets
        .iter()
        .filter(|c| {
            [DEACTIVATE, PUT_FULL].contains(&event_uri(c).as_str())
                && c["sub_id"]["uri"] == user_uri.as_str()
        })
        .collect();
    assert_eq!(deactivation.len(), 2);
    assert_eq!(deactivation[0]["txn"], deactivation[1]["txn"]);
    let jtis: std::collections::HashSet<&str> =
        sets.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), sets.len());

    // Nothing acknowledged: the same SETs again. Everything acknowledged: nothing left.
    let again = poll(&app, &token, json!({"returnImmediately": true})).await;
    assert_eq!(
        again["sets"].as_object().unwrap().len(),
        answer["sets"].as_object().unwrap().len()
    );
    let all: Vec<&String> = answer["sets"].as_object().unwrap().keys().collect();
    let after = poll(&app, &token, json!({"ack": all, "returnImmediately": true})).await;
    assert!(after["sets"].as_object().unwrap().is_empty(), "{after}");
    let listed = receivers(&app).await;
    let receiver = &listed["receivers"][0];
    assert_eq!(receiver["position"], receiver["latest"], "{listed}");
    assert!(receiver.get("token").is_none());

    // maxEvents bounds an answer and says more are available.
    app.post("/Users", &user("second")).await;
    app.post("/Users", &user("third")).await;
    let one = poll(
        &app,
        &token,
        json!({"maxEvents": 1, "returnImmediately": true}),
    )
    .await;
    assert_eq!(one["sets"].as_object().unwrap().len(), 1);
    assert_eq!(one["moreAvailable"], true);
}

/// `GET /admin/v1/tenants/acme/receivers`.
pub(crate) async fn receivers(app: &TestApp) -> Value {
    app.admin(Method::GET, "/tenants/acme/receivers", None)
        .await
        .json()
        .await
        .unwrap()
}

async fn position(app: &TestApp) -> i64 {
    receivers(app).await["receivers"][0]["position"]
        .as_i64()
        .unwrap()
}

async fn acknowledgements_out_of_order_hold_the_position_and_a_replay_delivers_again(
    backend: Backend,
) {
    let app = with_sets(backend).await;
    let (info, token) = register(&app, json!({"name": "app", "form": "notice"})).await;
    let start = info["position"].as_i64().unwrap();
    for name in ["a", "b", "c"] {
        assert_eq!(app.post("/Users", &user(name)).await.status(), 201);
    }
    let answer = poll(&app, &token, json!({"returnImmediately": true})).await;
    let keys = jwks(&app).await;
    let sets = in_order(&answer["sets"], &keys);
    assert_eq!(sets.len(), 3);
    for claims in &sets {
        let payload = &claims["events"]["urn:ietf:params:scim:event:prov:create:notice"];
        assert!(
            payload["attributes"].is_array() && payload.get("data").is_none(),
            "{claims}"
        );
    }
    let jti = |i: usize| sets[i]["jti"].as_str().unwrap().to_owned();
    // The second and third acknowledged, not the first: only the first comes back, and
    // the position stays before it.
    let rest = poll(
        &app,
        &token,
        json!({"ack": [jti(1)], "setErrs": {jti(2): {"err": "invalid_request", "description": "bad"}},
               "returnImmediately": true}),
    )
    .await;
    let left: Vec<&String> = rest["sets"].as_object().unwrap().keys().collect();
    assert_eq!(left, [&jti(0)]);
    assert_eq!(position(&app).await, start);
    // The first acknowledged: the position passes all three.
    let done = poll(
        &app,
        &token,
        json!({"ack": [jti(0)], "returnImmediately": true}),
    )
    .await;
    assert!(done["sets"].as_object().unwrap().is_empty());
    assert_eq!(position(&app).await, start + 3);
    // Replay from the start: all three again, same jtis. Beyond the latest sequence, or
    // of an unknown receiver: refused, the position unchanged.
    let id = info["id"].as_str().unwrap();
    let beyond = app
        .admin(
            Method::POST,
            &format!("/tenants/acme/receivers/{id}/replay"),
            Some(json!({"after": start + 1000})),
        )
        .await;
    assert_scim_error(beyond, 400, Some("invalidValue")).await;
    let unknown = app
        .admin(
            Method::POST,
            "/tenants/acme/receivers/nobody/replay",
            Some(json!({"after": start})),
        )
        .await;
    assert_scim_error(unknown, 404, None).await;
    assert_eq!(position(&app).await, start + 3);
    let replayed = app
        .admin(
            Method::POST,
            &format!("/tenants/acme/receivers/{id}/replay"),
            Some(json!({"after": start})),
        )
        .await;
    assert_eq!(replayed.status(), 200);
    let again = poll(&app, &token, json!({"returnImmediately": true})).await;
    let mut jtis: Vec<&String> = again["sets"].as_object().unwrap().keys().collect();
    jtis.sort();
    assert_eq!(jtis, [&jti(0), &jti(1), &jti(2)]);
    // Removed: its credential no longer works.
    assert_eq!(
        app.admin(
            Method::DELETE,
            &format!("/tenants/acme/receivers/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    let refused = poll_raw(&app, &token, &json!({})).await;
    assert_eq!(refused.status(), 401);
}

async fn a_long_poll_answers_when_a_change_commits(backend: Backend) {
    let app = with_sets(backend).await;
    let (_, token) = register(&app, json!({"name": "app", "alg": "ES256"})).await;
    let request = app
        .client
        .post(format!("{}/sets/v1/poll", app.address))
        .bearer_auth(&token)
        .json(&json!({}))
        .send();
    let waiting = tokio::spawn(async move {
        let response = request.await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a long poll with nothing to say waits"
    );
    assert_eq!(app.post("/Users", &user("late")).await.status(), 201);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap();
    let sets = in_order(&answer["sets"], &jwks(&app).await);
    assert_eq!(sets.len(), 1);
    assert_eq!(event_uri(&sets[0]), CREATE_FULL);
}

async fn a_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(backend: Backend) {
    let app = with_sets(backend).await;
    let (_, token) = register(&app, json!({"name": "app"})).await;
    app.post("/Users", &user("one")).await;
    let first = poll(&app, &token, json!({"returnImmediately": true})).await;
    let jws = first["sets"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = verified(&jws, &jwks(&app).await).0["kid"].clone();
    let rotated = app
        .admin(
            Method::POST,
            "/set-keys/rotate",
            Some(json!({"alg": "RS256"})),
        )
        .await;
    assert_eq!(rotated.status(), 201);
    let new_kid = rotated.json::<Value>().await.unwrap()["kid"].clone();
    assert_ne!(old_kid, new_kid);
    let keys = jwks(&app).await;
    let kids: Vec<&Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert!(
        kids.contains(&&old_kid) && kids.contains(&&new_kid),
        "{keys}"
    );
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none() && k.get("p").is_none())
    );
    // The unacknowledged SET comes again, signed by the new key.
    let again = poll(&app, &token, json!({"returnImmediately": true})).await;
    let jws = again["sets"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(verified(jws, &keys).0["kid"], new_kid);
    // The listing shows which key signs and until when the old one is published.
    let listed: Value = app
        .admin(Method::GET, "/set-keys", None)
        .await
        .json()
        .await
        .unwrap();
    let old = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old_kid)
        .unwrap();
    assert!(
        old["replacedAt"].is_string() && old["unpublishAt"].is_string(),
        "{listed}"
    );
    assert!(!listed.to_string().contains("sealed"), "{listed}");
    // The schema the SETs matched above refuses what is not one.
    let (_, mut claims) = verified(jws, &keys);
    claims["events"]["urn:ietf:params:scim:event:prov:delete"] = json!({});
    assert!(!claims_schema().is_valid(&claims), "two events in one SET");
}

async fn bad_receiver_and_poll_requests_change_nothing(backend: Backend) {
    // Without the secret: no SETs at all.
    let off = spawn_app(backend).await;
    let refused = off
        .admin(
            Method::POST,
            "/tenants/acme/receivers",
            Some(json!({"name": "app"})),
        )
        .await;
    assert_scim_error(refused, 409, None).await;
    let config: Value = off
        .get("/ServiceProviderConfig")
        .await
        .json()
        .await
        .unwrap();
    assert!(config.get("securityEvents").is_none());
    assert_eq!(jwks(&off).await, json!({"keys": []}));

    let app = with_sets(backend).await;
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (
            json!({"name": "x", "events": ["urn:example:nope"]}),
            400,
            Some("invalidValue"),
        ),
        (
            json!({"name": "x", "form": "notice", "events": [CREATE_FULL]}),
            400,
            Some("invalidValue"),
        ),
        (
            json!({"name": "x", "events": [SESSION_REVOKED]}),
            400,
            Some("invalidValue"),
        ),
        (
            json!({"name": "x", "form": "summary"}),
            400,
            Some("invalidSyntax"),
        ),
        (
            json!({"name": "x", "alg": "HS256"}),
            400,
            Some("invalidSyntax"),
        ),
        (json!({"name": "x", "after": 99}), 400, Some("invalidValue")),
        (json!({"name": "x", "after": -1}), 400, Some("invalidValue")),
        (json!({"name": "  "}), 400, Some("invalidValue")),
        (
            json!({"name": "x", "colour": "red"}),
            400,
            Some("invalidSyntax"),
        ),
        (
            json!({"name": "x", "audience": ""}),
            400,
            Some("invalidValue"),
        ),
    ];
    for (body, status, scim_type) in cases {
        let response = app
            .admin(Method::POST, "/tenants/acme/receivers", Some(body.clone()))
            .await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_scim_error(response, status, scim_type).await;
    }
    let unknown = app
        .admin(
            Method::POST,
            "/tenants/nope/receivers",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_scim_error(unknown, 404, None).await;
    assert_eq!(
        receivers(&app).await["receivers"],
        json!([]),
        "nothing registered"
    );
    let bad_rotation = app
        .admin(
            Method::POST,
            "/set-keys/rotate",
            Some(json!({"alg": "none"})),
        )
        .await;
    assert_scim_error(bad_rotation, 400, Some("invalidSyntax")).await;

    // Poll: no credential, a tenant token, a wrong body: RFC 8936 errors.
    let (_, token) = register(&app, json!({"name": "app"})).await;
    let mut errors: HashMap<&str, (u16, Value)> = HashMap::new();
    let none = app
        .client
        .post(format!("{}/sets/v1/poll", app.address))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    errors.insert("none", (none.status().as_u16(), none.json().await.unwrap()));
    let tenant_token = poll_raw(&app, &app.token, &json!({})).await;
    errors.insert(
        "tenant token",
        (
            tenant_token.status().as_u16(),
            tenant_token.json().await.unwrap(),
        ),
    );
    let garbage = app
        .client
        .post(format!("{}/sets/v1/poll", app.address))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    errors.insert(
        "garbage",
        (garbage.status().as_u16(), garbage.json().await.unwrap()),
    );
    let nul = poll_raw(&app, &token, &json!({"ack": ["a\u{0}b"]})).await;
    errors.insert("nul", (nul.status().as_u16(), nul.json().await.unwrap()));
    let err_without_err = poll_raw(&app, &token, &json!({"setErrs": {"x": {}}})).await;
    errors.insert(
        "setErrs without err",
        (
            err_without_err.status().as_u16(),
            err_without_err.json().await.unwrap(),
        ),
    );
    // Acknowledgements of what scimbus never sent are ignored; a null body polls.
    let strange = poll_raw(
        &app,
        &token,
        &json!({"ack": ["0193c1f2-7f3a-7b4c-9d2e-3f4a5b6c7d8e-garbage", "x"], "returnImmediately": true}),
    )
    .await;
    assert_eq!(strange.status(), 200);
    let null = app
        .client
        .post(format!("{}/sets/v1/poll", app.address))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(null.status(), 200);
    let negative = poll_raw(&app, &token, &json!({"maxEvents": -1})).await;
    errors.insert(
        "negative",
        (negative.status().as_u16(), negative.json().await.unwrap()),
    );
    assert_eq!(errors["none"].0, 401);
    assert_eq!(errors["none"].1["err"], "authentication_failed");
    assert_eq!(errors["tenant token"].0, 401);
    assert_eq!(errors["garbage"].0, 400);
    assert_eq!(errors["garbage"].1["err"], "invalid_request");
    for case in ["nul", "setErrs without err"] {
        assert_eq!(errors[case].0, 400, "{case}");
        assert_eq!(errors[case].1["err"], "invalid_request", "{case}");
    }
    assert_eq!(errors["negative"].0, 400);
    assert_eq!(errors["negative"].1["err"], "invalid_request");
    let get = app
        .client
        .get(format!("{}/sets/v1/poll", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

async fn retention_keeps_what_a_receiver_has_not_acknowledged_up_to_the_cap(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("SCIMBUS_SET_KEY_SECRET", SECRET.to_owned()),
            ("SCIMBUS_EVENT_RETENTION_HOURS", "1".to_owned()),
            ("SCIMBUS_SET_RETENTION_CAP_HOURS", "48".to_owned()),
        ],
    )
    .await;
    let (_, token) = register(&app, json!({"name": "app"})).await;
    for name in ["a", "b"] {
        assert_eq!(app.post("/Users", &user(name)).await.status(), 201);
    }
    let prune = || scimbus::service::maintenance::prune_once(&app.ctx);
    // Past the retention, not past the cap: what the receiver has not acknowledged stays.
    app.clock.advance(chrono::TimeDelta::hours(2));
    prune().await.unwrap();
    let answer = poll(&app, &token, json!({"returnImmediately": true})).await;
    let jtis: Vec<String> = answer["sets"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(jtis.len(), 2);
    // Acknowledged: retention takes them.
    poll(&app, &token, json!({"ack": jtis, "maxEvents": 0})).await;
    assert_eq!(prune().await.unwrap(), 2);
    // Not acknowledged past the cap: pruned, and the receiver is told to resync.
    assert_eq!(app.post("/Users", &user("c")).await.status(), 201);
    app.clock.advance(chrono::TimeDelta::hours(49));
    assert_eq!(prune().await.unwrap(), 1);
    let gone = poll_raw(&app, &token, &json!({"returnImmediately": true})).await;
    assert_eq!(gone.status(), 410);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["err"], "invalid_request");
    assert!(
        body["description"].as_str().unwrap().contains("resync"),
        "{body}"
    );
}

async fn a_receiver_that_filters_moves_past_what_it_does_not_receive(backend: Backend) {
    let app = with_sets(backend).await;
    let (_, token) = register(&app, json!({"name": "revocations", "events": [DEACTIVATE]})).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let created: Value = app.post("/Users", &user(name)).await.json().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    // Nothing for it: its position passes the creations, so retention keeps nothing for it.
    let nothing = poll(&app, &token, json!({"returnImmediately": true})).await;
    assert!(nothing["sets"].as_object().unwrap().is_empty(), "{nothing}");
    let nothing = poll(&app, &token, json!({"returnImmediately": true})).await;
    assert!(nothing["sets"].as_object().unwrap().is_empty());
    let listed = receivers(&app).await;
    assert_eq!(
        listed["receivers"][0]["position"], listed["receivers"][0]["latest"],
        "{listed}"
    );
    // A deactivation: its SET alone (the event's second, hence `-1`).
    let deactivated = app
        .patch(
            &format!("/Users/{}", ids[1]),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .await;
    assert_eq!(deactivated.status(), 200);
    let answer = poll(&app, &token, json!({"returnImmediately": true})).await;
    let sets = in_order(&answer["sets"], &jwks(&app).await);
    assert_eq!(sets.len(), 1);
    assert_eq!(event_uri(&sets[0]), DEACTIVATE);
    assert!(sets[0]["jti"].as_str().unwrap().ends_with("-1"));
    let jti = sets[0]["jti"].clone();
    poll(&app, &token, json!({"ack": [jti], "maxEvents": 0})).await;
    let listed = receivers(&app).await;
    assert_eq!(
        listed["receivers"][0]["position"], listed["receivers"][0]["latest"],
        "{listed}"
    );
}
