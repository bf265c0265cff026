//! A page of groups carries at most a budget of members (`service::groups::MEMBER_BUDGET`):
//! RFC 7644 §3.4.2.4 lets a page hold fewer resources than asked, so the page stops at
//! the budget and paging continues; a group larger than the budget comes alone on its
//! page, so every page makes progress. The same holds for group snapshots.

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, issue, series, spawn_app};
use scimbus::domain::Scope;
use scimbus::service::groups::MEMBER_BUDGET;

both_backends!(
    group_pages_stop_at_the_member_budget_and_paging_reaches_every_group,
    group_snapshot_pages_stop_at_the_member_budget,
);

/// Groups `g1…g5` of 6 000 members each and `big` of 30 000, seeded by SQL.
const SIZES: [(&str, u64); 6] = [
    ("g1", 6_000),
    ("g2", 6_000),
    ("big", 30_000),
    ("g3", 6_000),
    ("g4", 6_000),
    ("g5", 6_000),
];

async fn seed(app: &TestApp) {
    let tenant_id = app.tenant_row().await.id;
    let conn = app.ctx.store.conn();
    let backend = conn.get_database_backend();
    let ts = "'2026-01-01T00:00:00.000Z'";
    let t = format!("'{tenant_id}'");
    let user_doc = r#"'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}'"#;
    conn.execute_unprepared(&format!(
        "INSERT INTO users (tenant_id, id, user_name, user_name_ci, active, resource, version, \
         created_at, updated_at) SELECT {t}, 'u' || g, 'user' || g, 'user' || g, true, \
         {user_doc}, 1, {ts}, {ts} FROM {}",
        series(backend, 30_000)
    ))
    .await
    .unwrap();
    for (i, (name, size)) in SIZES.iter().enumerate() {
        let group_doc = format!(
            r#"'{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"{name}"}}'"#
        );
        // Created one millisecond apart: the default order is creation.
        let created = format!("'2026-01-01T00:00:00.00{i}Z'");
        conn.execute_unprepared(&format!(
            "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, resource, \
             version, created_at, updated_at) VALUES ({t}, '{name}', '{name}', '{name}', \
             {group_doc}, 1, {created}, {created})"
        ))
        .await
        .unwrap();
        conn.execute_unprepared(&format!(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, \
             created_at) SELECT {t}, '{name}', 'u' || g, 'User', {ts} FROM {}",
            series(backend, *size)
        ))
        .await
        .unwrap();
    }
}

fn members_of(group: &Value) -> u64 {
    group["members"].as_array().map_or(0, |m| m.len() as u64)
}

async fn group_pages_stop_at_the_member_budget_and_paging_reaches_every_group(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut start = 1u64;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 20, "paging makes progress");
        let page = app
            .list_at(
                "/Groups",
                &[("startIndex", &start.to_string()), ("count", "1000")],
            )
            .await;
        assert_eq!(page["totalResults"], 6);
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        assert_eq!(page["itemsPerPage"], resources.len());
        if resources.is_empty() {
            break;
        }
        let carried: u64 = resources.iter().map(members_of).sum();
        assert!(
            carried <= MEMBER_BUDGET || resources.len() == 1,
            "a page of {} groups carries {carried} members",
            resources.len()
        );
        for group in &resources {
            let id = group["id"].as_str().unwrap().to_owned();
            assert!(
                seen.insert(id, members_of(group)).is_none(),
                "a group twice"
            );
        }
        start += resources.len() as u64;
    }
    let expected: HashMap<String, u64> = SIZES.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect();
    assert_eq!(seen, expected, "every group once, with all its members");
    // Cursor paging continues after what the page held, not after what was asked.
    let mut cursor = String::new();
    let mut walked = Vec::new();
    for _ in 0..20 {
        let page = app
            .list_at("/Groups", &[("cursor", &cursor), ("count", "1000")])
            .await;
        for group in page["Resources"].as_array().cloned().unwrap_or_default() {
            walked.push(group["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    walked.sort();
    let mut names: Vec<String> = SIZES.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(walked, names);
}

async fn group_snapshot_pages_stop_at_the_member_budget(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let reader = issue(&app.ctx, "acme", vec![Scope::EventsRead]).await;
    let mut after = String::new();
    let mut seen = Vec::new();
    for _ in 0..20 {
        let query = if after.is_empty() {
            "/snapshot/Groups?limit=1000".to_owned()
        } else {
            format!("/snapshot/Groups?limit=1000&after={after}")
        };
        let page: Value = app
            .events_api("acme", &query, &reader)
            .await
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().cloned().unwrap();
        let carried: u64 = events
            .iter()
            .map(|e| {
                e["data"]["members"]
                    .as_array()
                    .map_or(0, |m| m.len() as u64)
            })
            .sum();
        assert!(carried <= MEMBER_BUDGET || events.len() == 1, "{carried}");
        for e in &events {
            seen.push(e["data"]["resource"]["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) if page["hasMore"] == true => after = next.to_owned(),
            _ => break,
        }
    }
    seen.sort();
    let mut names: Vec<String> = SIZES.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(seen, names);
}
