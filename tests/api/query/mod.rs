//! `GET /Users?filter=…` and `GET /Groups?filter=…` with `sortBy`/`sortOrder`: every RFC
//! 7644 §3.4.2.2 example over HTTP, each answer checked against the reference evaluator
//! (`scim::query::eval`) and, for the examples, against what a reader of the RFC expects.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use scimbus::scim::query::{eval, parse_filter, parse_sort};
use scimbus::scim::schema::{ENTERPRISE_USER_URN, Registry};
use serde_json::{Value, json};

use crate::helpers::{TestApp, USER_URN};

mod filters;
mod sorting;

/// Which resource type a list endpoint serves.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Users => "/Users",
            Kind::Groups => "/Groups",
        }
    }
}

/// Every resource listed with `query` (plus `count=1000`), all pages, in order; or the
/// status and body of the first answer that is not 200.
pub async fn list_all(
    app: &TestApp,
    kind: Kind,
    query: &[(&str, &str)],
) -> Result<Vec<Value>, (u16, String)> {
    list_in_pages(app, kind, query, 1000).await
}

/// Like [`list_all`], `page` resources at a time.
pub async fn list_in_pages(
    app: &TestApp,
    kind: Kind,
    query: &[(&str, &str)],
    page: usize,
) -> Result<Vec<Value>, (u16, String)> {
    let count = page.to_string();
    let mut out: Vec<Value> = Vec::new();
    loop {
        let start = (out.len() + 1).to_string();
        let mut params: Vec<(&str, &str)> = query.to_vec();
        params.push(("count", &count));
        params.push(("startIndex", &start));
        let response = app
            .client
            .get(app.url(kind.endpoint()))
            .bearer_auth(&app.token)
            .query(&params)
            .send()
            .await
            .map_err(|e| (0, format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err((status, text));
        }
        let body: Value =
            serde_json::from_str(&text).map_err(|e| (status, format!("{e}: {text}")))?;
        let total = body["totalResults"].as_u64().unwrap_or(0) as usize;
        let resources = body["Resources"].as_array().cloned().unwrap_or_default();
        let empty = resources.is_empty();
        out.extend(resources);
        if out.len() >= total || empty {
            if out.len() != total {
                return Err((
                    status,
                    format!("totalResults {total} but {} resources listed", out.len()),
                ));
            }
            return Ok(out);
        }
    }
}

/// The ids of `resources`.
pub fn ids(resources: &[Value]) -> BTreeSet<String> {
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The ids of the resources of `population` that the reference evaluator says pass `raw`.
pub fn expected_ids(kind: Kind, raw: &str, population: &[Value]) -> BTreeSet<String> {
    let registry = Registry::core();
    let resource_type = match kind {
        Kind::Users => registry.user(),
        Kind::Groups => registry.group(),
    };
    let filter = parse_filter(registry, resource_type, raw)
        .unwrap_or_else(|e| panic!("the filter `{raw}` does not type: {e:?}"));
    population
        .iter()
        .filter(|r| eval::matches(&filter, r))
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A readable name of the resource `id` in `population`.
fn label(population: &[Value], id: &str) -> String {
    population
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["userName"].as_str().or(r["displayName"].as_str()))
        .map_or_else(|| id.to_owned(), |name| format!("{name} ({id})"))
}

/// Checks one filter: the server's ids must be the evaluator's. `None` when they agree,
/// else a description of the mismatch with the resources concerned.
pub async fn mismatch(
    app: &TestApp,
    kind: Kind,
    raw: &str,
    population: &[Value],
) -> Option<String> {
    mismatch_sorted(app, kind, raw, None, 1000, population).await
}

/// Like [`mismatch`], with `sortBy`/`sortOrder` (the order must be one the evaluator's
/// comparator accepts) and `page` resources per request.
pub async fn mismatch_sorted(
    app: &TestApp,
    kind: Kind,
    raw: &str,
    sort: Option<(&str, &str)>,
    page: usize,
    population: &[Value],
) -> Option<String> {
    let mut query = vec![("filter", raw)];
    if let Some((by, order)) = sort {
        query.push(("sortBy", by));
        query.push(("sortOrder", order));
    }
    let answer = list_in_pages(app, kind, &query, page).await;
    let expected = match std::panic::catch_unwind(|| expected_ids(kind, raw, population)) {
        Ok(expected) => expected,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            return Some(format!(
                "filter {raw}\n  parse_filter panics: {why}\n  server: {:?}",
                answer.map(|listed| names(population, &ids(&listed)))
            ));
        }
    };
    let listed = match answer {
        Ok(listed) => listed,
        Err((status, body)) => {
            return Some(format!(
                "filter {raw}\n  answered {status}: {body}\n  evaluator: {:?}",
                names(population, &expected)
            ));
        }
    };
    let got = ids(&listed);
    if got.len() != listed.len() {
        let order: Vec<String> = listed
            .iter()
            .map(|r| label(population, r["id"].as_str().unwrap_or_default()))
            .collect();
        return Some(format!(
            "filter {raw} sort {sort:?} count={page}\n  a resource is listed twice: {order:?}"
        ));
    }
    if got == expected {
        return sort.and_then(|(by, order)| misordered(kind, raw, by, order, &listed));
    }
    let extra: BTreeSet<String> = got.difference(&expected).cloned().collect();
    let missing: BTreeSet<String> = expected.difference(&got).cloned().collect();
    let show = |set: &BTreeSet<String>| {
        set.iter()
            .map(|id| {
                population
                    .iter()
                    .find(|r| r["id"] == id.as_str())
                    .map_or_else(|| id.clone(), Value::to_string)
            })
            .collect::<Vec<_>>()
            .join("\n      ")
    };
    Some(format!(
        "filter {raw}\n  server:    {:?}\n  evaluator: {:?}\n  listed but not matching:\n      {}\n  matching but not listed:\n      {}",
        names(population, &got),
        names(population, &expected),
        show(&extra),
        show(&missing),
    ))
}

/// `None` when `listed` is in an order the evaluator's comparator accepts.
fn misordered(kind: Kind, raw: &str, by: &str, order: &str, listed: &[Value]) -> Option<String> {
    let registry = Registry::core();
    let resource_type = match kind {
        Kind::Users => registry.user(),
        Kind::Groups => registry.group(),
    };
    let sort = parse_sort(registry, resource_type, by, Some(order))
        .unwrap_or_else(|e| panic!("sortBy={by}: {e:?}"));
    listed.windows(2).find_map(|pair| {
        let wrong = eval::compare_for_sort(&sort, &pair[0], &pair[1]) == Ordering::Greater;
        wrong.then(|| {
            format!(
                "filter {raw} sortBy={by} sortOrder={order}\n  listed\n      {}\n  before\n      {}",
                pair[0], pair[1]
            )
        })
    })
}

fn names(population: &[Value], ids: &BTreeSet<String>) -> Vec<String> {
    ids.iter().map(|id| label(population, id)).collect()
}

/// Moves the manual clock so that its next reading is `at`.
fn set_clock(app: &TestApp, at: chrono::DateTime<Utc>) {
    use scimbus::clock::Clock;
    let now = app.clock.now();
    app.clock
        .advance(at - now - chrono::TimeDelta::milliseconds(1));
}

/// The users of the RFC examples; `bjensen` was last modified before
/// 2011-05-13T04:42:34Z, everyone else after.
async fn rfc_users(app: &TestApp) -> Vec<Value> {
    set_clock(app, Utc.with_ymd_and_hms(2011, 5, 13, 4, 42, 33).unwrap());
    app.create_user(&json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN],
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        ENTERPRISE_USER_URN: {"department": "Tour Operations"}
    }))
    .await;
    app.clock.advance(chrono::TimeDelta::seconds(5));
    for body in [
        json!({
            "schemas": [USER_URN], "userName": "JSmith",
            "name": {"familyName": "O'Malley"}, "userType": "Intern",
            "emails": [{"value": "jsmith@example.org", "type": "work"}],
            "ims": [{"value": "js@foo.com", "type": "xmpp"}]
        }),
        json!({
            "schemas": [USER_URN], "userName": "Jane.Doe",
            "name": {"familyName": "Doe"}, "userType": "Employee",
            "emails": [{"value": "jane@example.com", "type": "home"}]
        }),
        json!({
            "schemas": [USER_URN], "userName": "mo'malley",
            "name": {"familyName": "o'malley"}, "userType": "Contractor", "title": "",
            "emails": [{"value": "mo@EXAMPLE.com", "type": "work"}]
        }),
        json!({
            "schemas": [USER_URN], "userName": "kim", "userType": "Contractor",
            "emails": [{"value": "kim@kim.net", "type": "work"}]
        }),
        json!({"schemas": [USER_URN], "userName": "Jörg", "title": "Ingénieur", "active": false}),
        json!({"schemas": [USER_URN], "userName": "zed"}),
    ] {
        app.create_user(&body).await;
    }
    list_all(app, Kind::Users, &[]).await.unwrap()
}

const EVERYONE: &[&str] = &[
    "bjensen",
    "JSmith",
    "Jane.Doe",
    "mo'malley",
    "kim",
    "Jörg",
    "zed",
];
