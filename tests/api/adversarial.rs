//! Adversarial bodies at the size limit, one entry point at a time: many distinct
//! attributes (top level, nested, in a registered and in an unknown extension), long
//! `schemas` arrays, deep nesting, long strings, many PATCH operations, wide /Bulk data,
//! long projection lists (`scimbus::fuzzing::adversarial`, shared with the bench). Each
//! must be answered well within the request timeout: a body
//! that costs quadratic work would pin a worker for minutes and, with a few of them, stop
//! the API for every tenant.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, spawn_app, user};
use scimbus::fuzzing::adversarial::{self, Case};

both_backends!(adversarial_bodies_at_the_size_limit_are_answered_quickly);

const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// A fifth of the default request timeout (50 s), on a debug build while the rest of the
/// suite runs beside it: a linear pass over a body at the limit takes 0.01–2.6 s there
/// alone and up to 5.6 s under the suite's load; quadratic work took minutes.
const WITHIN: Duration = Duration::from_secs(10);

async fn send(app: &TestApp, case: &Case) -> Result<(u16, Duration), String> {
    let started = Instant::now();
    let mut request = app
        .client
        .request(
            reqwest::Method::from_bytes(case.method.as_bytes()).unwrap(),
            app.url(&case.path),
        )
        .bearer_auth(&app.token)
        .timeout(Duration::from_secs(30));
    if let Some(body) = &case.body {
        request = request
            .header("Content-Type", "application/scim+json")
            .body(body.clone());
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    Ok((status, started.elapsed()))
}

async fn adversarial_bodies_at_the_size_limit_are_answered_quickly(backend: Backend) {
    let app = spawn_app(backend).await;
    // Listings and projections have resources to work on.
    for i in 0..20 {
        app.create_user(&user(&format!("present{i}"))).await;
    }
    let target = app.create_user(&user("target")).await;
    let user_id = target["id"].as_str().unwrap().to_owned();
    let group = app
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "target"}),
        )
        .await;
    assert_eq!(group.status(), 201);
    let group: Value = group.json().await.unwrap();
    let group_id = group["id"].as_str().unwrap().to_owned();

    let cases = adversarial::cases(&user_id, &group_id);

    let mut failures = Vec::new();
    for case in &cases {
        match send(&app, case).await {
            Ok((status, took)) => {
                eprintln!("{:>8.3} s  {status}  {}", took.as_secs_f64(), case.name);
                if !case.allowed.contains(&status) {
                    failures.push(format!("{}: answered {status}", case.name));
                }
                if took > WITHIN {
                    failures.push(format!("{}: took {took:?}", case.name));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    // Nothing refused was stored: the tenant holds the users created above and perhaps the
    // long-string user, never a wide one.
    let listed = app.list_users(&[("filter", "userName sw \"wide\"")]).await;
    assert!(
        listed["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.as_object().unwrap().len() < 50),
        "a wide resource was stored"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

both_backends!(names_too_long_for_an_index_are_refused_and_change_nothing);

/// `userName` and `displayName` are index keys once folded: a name that folds past the
/// index's size limit (PostgreSQL: about 2 700 bytes) is a 400, not a 500 from the index.
async fn names_too_long_for_an_index_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    // U+FDFA is 3 bytes and folds (NFKC) to 18 characters, 33 bytes.
    let grows = "\u{FDFA}".repeat(300);
    let long = "n".repeat(3000);
    let cases = [
        ("/Users", json!({"schemas": [USER_URN], "userName": grows})),
        ("/Users", json!({"schemas": [USER_URN], "userName": long})),
        (
            "/Users",
            json!({"schemas": [USER_URN], "userName": "ok", "displayName": grows}),
        ),
        (
            "/Groups",
            json!({"schemas": [GROUP_URN], "displayName": grows}),
        ),
        (
            "/Groups",
            json!({"schemas": [GROUP_URN], "displayName": long}),
        ),
    ];
    for (path, body) in cases {
        let response = app.post(path, &body).await;
        crate::helpers::assert_scim_error(response, 400, Some("invalidValue")).await;
    }
    assert_eq!(app.user_count().await, 0);
    let groups = app.get("/Groups").await.json::<Value>().await.unwrap();
    assert_eq!(groups["totalResults"], 0);
}
