//! Adversarial bodies at the size limit, one entry point at a time: many distinct
//! attributes (top level, nested, in a registered and in an unknown extension), long
//! `schemas` arrays, deep nesting, long strings, many PATCH operations, wide /Bulk data,
//! long projection lists. Each must be answered well within the request timeout: a body
//! that costs quadratic work would pin a worker for minutes and, with a few of them, stop
//! the API for every tenant.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, spawn_app, user};

both_backends!(adversarial_bodies_at_the_size_limit_are_answered_quickly);

const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Bodies are built up to this size: just under the default limit (8 MiB).
const BUDGET: usize = 7 * 1024 * 1024 + 512 * 1024;
/// A fifth of the default request timeout (50 s), on a debug build while the rest of the
/// suite runs beside it: a linear pass over a body at the limit takes 0.01–2.6 s there
/// alone and up to 5.6 s under the suite's load; quadratic work took minutes.
const WITHIN: Duration = Duration::from_secs(10);

/// `"k0":0,"k1":0,…` filling about `bytes` (no braces).
fn wide_fields(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 32);
    let mut i = 0usize;
    while out.len() < bytes {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"k{i}\":0"));
        i += 1;
    }
    out
}

/// `[x,x,…]` of `item` filling about `bytes`.
fn many(item: &str, bytes: usize) -> String {
    let n = (bytes / (item.len() + 1)).max(1);
    format!("[{}]", vec![item; n].join(","))
}

fn numbered(prefix: &str, bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < bytes {
        let s = format!("{prefix}{i}");
        len += s.len() + 4;
        out.push(s);
        i += 1;
    }
    out
}

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    body: Option<String>,
    /// Answers a correct server may give.
    allowed: &'static [u16],
}

/// A SearchRequest case: `field` set to `value`.
fn search(
    name: &'static str,
    path: &str,
    field: &str,
    value: impl Into<Value>,
    allowed: &'static [u16],
) -> Case {
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    body[field] = value.into();
    Case {
        name,
        method: reqwest::Method::POST,
        path: path.to_owned(),
        body: Some(body.to_string()),
        allowed,
    }
}

async fn send(app: &TestApp, case: &Case) -> Result<(u16, Duration), String> {
    let started = Instant::now();
    let mut request = app
        .client
        .request(case.method.clone(), app.url(&case.path))
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

    let fields = wide_fields(BUDGET);
    let post = reqwest::Method::POST;
    let user_with =
        |extra: &str| format!("{{\"schemas\":[\"{USER_URN}\"],\"userName\":\"wide\",{extra}}}");
    let group_with =
        |extra: &str| format!("{{\"schemas\":[\"{GROUP_URN}\"],\"displayName\":\"wide\",{extra}}}");
    let patch_of = |ops: String| format!("{{\"schemas\":[\"{PATCH_URN}\"],\"Operations\":{ops}}}");
    let long_names = numbered("attr", BUDGET).join(",");
    let name_list: Value = numbered("attr", BUDGET).into();
    let path_ops: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "add", "path": format!("x{i}"), "value": "v".repeat(BUDGET / 1000 - 60)}))
        .collect();
    let email_ops: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"op": "add", "path": "emails", "value": (0..250).map(|j| json!({"value": format!("{i}.{j}@x")})).collect::<Vec<_>>()})
        })
        .collect();
    let bulk_wide = json!({
        "schemas": [BULK_URN],
        // Each operation's data is past the attribute limit: refused one by one.
        "Operations": (0..700).map(|i| json!({
            "method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
            "data": serde_json::from_str::<Value>(&user_with(&wide_fields(BUDGET / 700))).unwrap()
                .as_object().map(|o| { let mut o = o.clone(); o.insert("userName".into(), format!("bulk{i}").into()); Value::Object(o) }).unwrap(),
        })).collect::<Vec<_>>(),
    });
    let bulk_one = format!(
        "{{\"schemas\":[\"{BULK_URN}\"],\"Operations\":[{{\"method\":\"POST\",\"path\":\"/Users\",\"bulkId\":\"one\",\"data\":{}}}]}}",
        user_with(&fields)
    );
    let cases = vec![
        Case {
            name: "POST /Users, many top-level attributes",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&fields)),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, many sub-attributes of name",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!("\"name\":{{{fields}}}"))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, many attributes in the enterprise extension",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!("\"{ENTERPRISE_URN}\":{{{fields}}}"))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, many attributes in an unknown extension",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!(
                "\"urn:example:x:1.0:User\":{{{fields}}}"
            ))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, a large unknown extension value",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!(
                "\"urn:example:x:1.0:User\":{{\"blob\":\"{}\"}}",
                "b".repeat(BUDGET)
            ))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, many emails",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!(
                "\"emails\":{}",
                many("{\"value\":\"a@b\"}", BUDGET)
            ))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, a long schemas array",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(format!(
                "{{\"userName\":\"wide\",\"schemas\":{}}}",
                serde_json::to_string(
                    &std::iter::once(USER_URN.to_owned())
                        .chain(numbered("urn:example:s:", BUDGET))
                        .collect::<Vec<_>>()
                )
                .unwrap()
            )),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, the same schema many times",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(format!(
                "{{\"userName\":\"wide\",\"schemas\":{}}}",
                many(&format!("\"{USER_URN}\""), BUDGET)
            )),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, deep nesting",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!(
                "\"deep\":{}{}",
                "[".repeat(BUDGET / 2),
                "]".repeat(BUDGET / 2)
            ))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, nesting at the limit, many times",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!(
                "\"deep\":{}",
                many(&format!("{}{}", "[".repeat(60), "]".repeat(60)), BUDGET)
            ))),
            allowed: &[400],
        },
        Case {
            name: "POST /Users, a long string",
            method: post.clone(),
            path: "/Users".into(),
            body: Some(user_with(&format!("\"title\":\"{}\"", "t".repeat(BUDGET)))),
            allowed: &[201, 400],
        },
        Case {
            name: "PUT /Users/{id}, many top-level attributes",
            method: reqwest::Method::PUT,
            path: format!("/Users/{user_id}"),
            body: Some(user_with(&fields).replace("\"wide\"", "\"target\"")),
            allowed: &[400],
        },
        Case {
            name: "POST /Groups, many top-level attributes",
            method: post.clone(),
            path: "/Groups".into(),
            body: Some(group_with(&fields)),
            allowed: &[400],
        },
        Case {
            name: "PUT /Groups/{id}, many top-level attributes",
            method: reqwest::Method::PUT,
            path: format!("/Groups/{group_id}"),
            body: Some(group_with(&fields).replace("\"wide\"", "\"target\"")),
            allowed: &[400],
        },
        Case {
            name: "PATCH /Users/{id} without a path, many attributes",
            method: reqwest::Method::PATCH,
            path: format!("/Users/{user_id}"),
            body: Some(patch_of(format!(
                "[{{\"op\":\"add\",\"value\":{{{fields}}}}}]"
            ))),
            allowed: &[400],
        },
        Case {
            name: "PATCH /Groups/{id} without a path, many attributes",
            method: reqwest::Method::PATCH,
            path: format!("/Groups/{group_id}"),
            body: Some(patch_of(format!(
                "[{{\"op\":\"add\",\"value\":{{{fields}}}}}]"
            ))),
            allowed: &[400],
        },
        Case {
            name: "PATCH /Users/{id}, 1000 operations with paths and long values",
            method: reqwest::Method::PATCH,
            path: format!("/Users/{user_id}"),
            body: Some(patch_of(serde_json::to_string(&path_ops).unwrap())),
            allowed: &[200, 400],
        },
        Case {
            name: "PATCH /Users/{id}, 1000 operations adding emails",
            method: reqwest::Method::PATCH,
            path: format!("/Users/{user_id}"),
            body: Some(patch_of(serde_json::to_string(&email_ops).unwrap())),
            allowed: &[400],
        },
        Case {
            name: "POST /Bulk, one operation with many attributes",
            method: post.clone(),
            path: "/Bulk".into(),
            body: Some(bulk_one),
            allowed: &[200, 400],
        },
        Case {
            name: "POST /Bulk, 700 operations with data past the attribute limit",
            method: post.clone(),
            path: "/Bulk".into(),
            body: Some(bulk_wide.to_string()),
            allowed: &[200, 400],
        },
        search(
            "POST /Users/.search, a long attributes list",
            "/Users/.search",
            "attributes",
            name_list.clone(),
            &[200, 400],
        ),
        search(
            "POST /Users/.search, a long excludedAttributes list",
            "/Users/.search",
            "excludedAttributes",
            name_list.clone(),
            &[200, 400],
        ),
        search(
            "POST /.search, a long attributes list",
            "/.search",
            "attributes",
            name_list.clone(),
            &[200, 400],
        ),
        search(
            "POST /Users/.search, a long filter value",
            "/Users/.search",
            "filter",
            format!("userName co \"{}\"", "x".repeat(BUDGET)),
            &[200, 400],
        ),
        search(
            "POST /Users/.search, a long filter of many terms",
            "/Users/.search",
            "filter",
            vec!["userName pr"; BUDGET / 16].join(" and "),
            &[400],
        ),
        Case {
            name: "GET /Users, a long attributes parameter",
            method: reqwest::Method::GET,
            path: format!("/Users?attributes={}", &long_names[..60_000]),
            body: None,
            allowed: &[200, 400, 414, 431],
        },
        Case {
            name: "GET /Users/{id}, a long excludedAttributes parameter",
            method: reqwest::Method::GET,
            path: format!(
                "/Users/{user_id}?excludedAttributes={}",
                &long_names[..60_000]
            ),
            body: None,
            allowed: &[200, 400, 414, 431],
        },
    ];

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
