//! Filters: every RFC 7644 §3.4.2.2 example, date-time comparisons, refused filters, empty
//! results, group filters and pages of a filter on a multi-valued attribute.

use std::collections::BTreeSet;

use scimbus::scim::schema::ENTERPRISE_USER_URN;
use serde_json::{Value, json};

use crate::both_backends;
use crate::groups::group;
use crate::helpers::{Backend, TestApp, USER_URN, assert_scim_error, spawn_app};

use super::{EVERYONE, Kind, expected_ids, list_all, mismatch, mismatch_sorted, rfc_users};

both_backends!(
    every_rfc_7644_filter_example_returns_what_the_reference_evaluator_says,
    date_time_comparisons_are_chronological_at_the_millisecond,
    unknown_attributes_type_mismatches_and_bad_literals_answer_400_invalid_filter,
    a_filter_matching_nothing_answers_200_with_no_resources,
    pages_of_a_filter_on_a_multi_valued_attribute_list_each_match_once,
    group_filters_on_display_name_and_members_match_the_reference_evaluator,
);

/// The ids of the users named `names`.
fn named(population: &[Value], names: &[&str]) -> BTreeSet<String> {
    names
        .iter()
        .map(|n| {
            population
                .iter()
                .find(|r| r["userName"] == *n)
                .and_then(|r| r["id"].as_str())
                .unwrap_or_else(|| panic!("no user {n}"))
                .to_owned()
        })
        .collect()
}

fn all_but(names: &[&str]) -> Vec<&'static str> {
    EVERYONE
        .iter()
        .copied()
        .filter(|n| !names.contains(n))
        .collect()
}

async fn every_rfc_7644_filter_example_returns_what_the_reference_evaluator_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    let before = all_but(&["bjensen"]);
    let core_user_name = format!("{USER_URN}:userName sw \"J\"");
    let department = format!("{ENTERPRISE_USER_URN}:department eq \"tour operations\"");
    let table: Vec<(&str, Vec<&str>)> = vec![
        // RFC 7644 §3.4.2.2, in its order.
        (r#"userName eq "bjensen""#, vec!["bjensen"]),
        (
            r#"name.familyName co "O'Malley""#,
            vec!["JSmith", "mo'malley"],
        ),
        (r#"userName sw "J""#, vec!["JSmith", "Jane.Doe", "Jörg"]),
        (core_user_name.as_str(), vec!["JSmith", "Jane.Doe", "Jörg"]),
        ("title pr", vec!["bjensen", "Jörg"]),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            before.clone(),
        ),
        (
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            before.clone(),
        ),
        (
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            vec!["bjensen"],
        ),
        (
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            vec!["bjensen"],
        ),
        (r#"title pr and userType eq "Employee""#, vec!["bjensen"]),
        (
            r#"title pr or userType eq "Intern""#,
            vec!["bjensen", "JSmith", "Jörg"],
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            vec!["bjensen", "Jane.Doe"],
        ),
        // zed and Jörg have no userType, so `ne` is false for them (eval.rs, rule 2).
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            vec!["kim"],
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            vec!["bjensen"],
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            vec!["bjensen"],
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            vec!["bjensen", "JSmith", "mo'malley"],
        ),
        // Entra's value path with a sub-attribute comparison after the brackets.
        (
            r#"emails[type eq "work"].value eq "bjensen@example.com""#,
            vec!["bjensen"],
        ),
        (
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            vec![],
        ),
        (
            r#"emails[type eq "work"].value eq "MO@example.com""#,
            vec!["mo'malley"],
        ),
        // Missing attributes, empty strings and negation (eval.rs, rules 1 to 3).
        ("not (title pr)", all_but(&["bjensen", "Jörg"])),
        ("not(title pr)", all_but(&["bjensen", "Jörg"])),
        ("title eq null", all_but(&["bjensen", "Jörg"])),
        ("title ne null", vec!["bjensen", "Jörg"]),
        (r#"title eq """#, vec!["mo'malley"]),
        (
            r#"userType ne "Employee""#,
            vec!["JSmith", "mo'malley", "kim"],
        ),
        (
            r#"not (userType eq "Employee")"#,
            all_but(&["bjensen", "Jane.Doe"]),
        ),
        ("active eq false", vec!["Jörg"]),
        ("not (active eq true)", before.clone()),
        // Non-ASCII, folded by the one rule of DESIGN 6.
        (r#"userName eq "JÖRG""#, vec!["Jörg"]),
        (r#"title co "GÉNIEUR""#, vec!["Jörg"]),
        (
            r#"userName gt "jsmith""#,
            vec!["Jörg", "mo'malley", "kim", "zed"],
        ),
        (department.as_str(), vec!["bjensen"]),
    ];
    let mut failures = Vec::new();
    for (raw, by_hand) in &table {
        if let Some(m) = mismatch(&app, Kind::Users, raw, &users).await {
            failures.push(m);
            continue;
        }
        assert_eq!(
            expected_ids(Kind::Users, raw, &users),
            named(&users, by_hand),
            "the evaluator disagrees with the RFC reading of {raw}"
        );
    }
    // `schemas` is not an attribute of the registry: refused, not ignored (resolve.rs).
    let schemas = format!("schemas eq \"{ENTERPRISE_USER_URN}\"");
    if let Err(m) = expect_invalid_filter(&app, &schemas).await {
        failures.push(m);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

async fn date_time_comparisons_are_chronological_at_the_millisecond(backend: Backend) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    let jsmith = users.iter().find(|u| u["userName"] == "JSmith").unwrap();
    let at = jsmith["meta"]["created"].as_str().unwrap();
    let instant = scimbus::scim::time::parse(at).unwrap();
    let in_paris = instant
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    let later: Vec<&str> = users
        .iter()
        .filter(|u| u["meta"]["created"].as_str().unwrap() > at)
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    let mut failures = Vec::new();
    for (raw, by_hand) in [
        (format!(r#"meta.created eq "{at}""#), vec!["JSmith"]),
        (format!(r#"meta.created eq "{in_paris}""#), vec!["JSmith"]),
        (
            format!(r#"meta.lastModified ne "{in_paris}""#),
            all_but(&["JSmith"]),
        ),
        (format!(r#"meta.created gt "{at}""#), later.clone()),
        (format!(r#"meta.created ge "{in_paris}""#), {
            let mut v = later.clone();
            v.push("JSmith");
            v
        }),
        (
            format!(r#"meta.created le "{at}" and meta.created gt "2011-05-13T04:42:34Z""#),
            vec!["JSmith"],
        ),
    ] {
        assert_eq!(
            expected_ids(Kind::Users, &raw, &users),
            named(&users, &by_hand),
            "{raw}"
        );
        if let Some(m) = mismatch(&app, Kind::Users, &raw, &users).await {
            failures.push(m);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Ok when `raw` answers 400 `invalidFilter`, else a description of the answer.
async fn expect_invalid_filter(app: &TestApp, raw: &str) -> Result<(), String> {
    let response = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .query(&[("filter", raw)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == 400 && body["scimType"] == "invalidFilter" && body["status"] == "400" {
        Ok(())
    } else {
        Err(format!(
            "filter {raw}\n  answered {status} {body}, not 400 invalidFilter"
        ))
    }
}

async fn unknown_attributes_type_mismatches_and_bad_literals_answer_400_invalid_filter(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    let events = app.events().await.len();
    let mut failures = Vec::new();
    for raw in [
        // Unknown attributes, and attributes that cannot be filtered on.
        r#"nickname2 eq "x""#,
        r#"name.middle eq "x""#,
        r#"urn:example:custom:1.0:User:badge eq "x""#,
        r#"favouriteColour eq "teal""#,
        r#"meta.version eq "W/\"1\"""#,
        r#"members.value eq "x""#,
        // Type mismatches.
        r#"active eq "true""#,
        "active gt true",
        "userName eq 5",
        "userName eq true",
        r#"name eq "x""#,
        r#"meta.created co "2011""#,
        "title gt null",
        // Bad literals and bad syntax.
        r#"meta.created gt "yesterday""#,
        r#"meta.lastModified eq "2011-13-45T00:00:00Z""#,
        "userName eq",
        "userName xx \"a\"",
        r#"userName eq "unterminated"#,
        "((((",
        r#"emails[type eq "work""#,
        r#"emails[nope eq "x"]"#,
    ] {
        if let Err(m) = expect_invalid_filter(&app, raw).await {
            failures.push(m);
        }
    }
    assert_scim_error(
        app.client
            .get(app.url("/Users"))
            .bearer_auth(&app.token)
            .query(&[("filter", "userName pr and (")])
            .send()
            .await
            .unwrap(),
        400,
        Some("invalidFilter"),
    )
    .await;
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert_eq!(
        list_all(&app, Kind::Users, &[]).await.unwrap(),
        users,
        "nothing changed"
    );
    assert_eq!(app.events().await.len(), events, "nothing emitted");
}

async fn a_filter_matching_nothing_answers_200_with_no_resources(backend: Backend) {
    let app = spawn_app(backend).await;
    rfc_users(&app).await;
    for raw in [
        r#"userName eq "nobody""#,
        r#"userName sw "%""#,
        r#"userName co "_""#,
        r#"title ew "\\""#,
        r#"emails[type eq "work" and value ew "example.org" and primary eq true]"#,
    ] {
        let list = app.list_users(&[("filter", raw)]).await;
        assert_eq!(list["totalResults"], 0, "{raw}: {list}");
        assert_eq!(list["Resources"], json!([]), "{raw}: {list}");
        assert_eq!(
            list["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
    }
}

async fn group_filters_on_display_name_and_members_match_the_reference_evaluator(backend: Backend) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    let by_name = |n: &str| users.iter().find(|u| u["userName"] == n).unwrap();
    let staff = app
        .create_group(&group("Staff", &[by_name("bjensen"), by_name("Jörg")]))
        .await;
    let ops = app
        .create_group(&group(
            "Tour Operations",
            &[by_name("JSmith"), &staff, by_name("bjensen")],
        ))
        .await;
    app.create_group(&group("Élite", &[])).await;
    app.create_group(&group("100%_real", &[by_name("zed")]))
        .await;
    let groups = list_all(&app, Kind::Groups, &[]).await.unwrap();
    let users = list_all(&app, Kind::Users, &[]).await.unwrap();
    let staff_id = staff["id"].as_str().unwrap();
    let ops_id = ops["id"].as_str().unwrap();
    let bjensen = by_name("bjensen")["id"].as_str().unwrap().to_owned();
    let mut failures = Vec::new();
    for raw in [
        r#"displayName eq "staff""#.to_owned(),
        r#"displayName sw "TOUR""#.to_owned(),
        r#"displayName co "%_""#.to_owned(),
        r#"displayName eq "élite""#.to_owned(),
        "members pr".to_owned(),
        "not (members pr)".to_owned(),
        format!(r#"members eq "{bjensen}""#),
        format!(r#"members.value eq "{staff_id}""#),
        r#"members[type eq "Group"]"#.to_owned(),
        r#"members[type eq "user" and display sw "j"]"#.to_owned(),
        r#"members.display eq "zed""#.to_owned(),
        r#"displayName sw "t" or members.display co "ö""#.to_owned(),
    ] {
        if let Some(m) = mismatch(&app, Kind::Groups, &raw, &groups).await {
            failures.push(m);
        }
    }
    // A user's `groups` lists direct and indirect memberships (RFC 7643 §4.1.2): Jörg is in
    // Tour Operations through Staff; bjensen is in it directly and through Staff, listed once
    // as `direct`, so `groups[type eq "indirect"]` is Jörg's only.
    let through = format!(r#"groups eq "{ops_id}""#);
    assert_eq!(
        expected_ids(Kind::Users, &through, &users),
        named(&users, &["JSmith", "bjensen", "Jörg"])
    );
    assert_eq!(
        expected_ids(Kind::Users, r#"groups[type eq "indirect"]"#, &users),
        named(&users, &["Jörg"])
    );
    for raw in [
        through,
        format!(r#"groups[value eq "{staff_id}" and type eq "direct"]"#),
        r#"groups.display eq "tour operations""#.to_owned(),
        r#"groups[type eq "indirect"]"#.to_owned(),
        "not (groups pr)".to_owned(),
    ] {
        if let Some(m) = mismatch(&app, Kind::Users, &raw, &users).await {
            failures.push(m);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

async fn pages_of_a_filter_on_a_multi_valued_attribute_list_each_match_once(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..20 {
        let mut body = json!({"schemas": [USER_URN], "userName": format!("u{i:02}")});
        if i % 3 != 0 {
            // Two elements pass `emails.value pr`: a page must still count users, not emails.
            body["emails"] = json!([{"value": format!("{i}@a.example")}, {"value": "x@b.example"}]);
        }
        app.create_user(&body).await;
    }
    let users = list_all(&app, Kind::Users, &[]).await.unwrap();
    let mut failures = Vec::new();
    for raw in [
        "emails.value pr",
        r#"emails co "example""#,
        r#"userName sw "u""#,
    ] {
        for sort in [
            None,
            Some(("userName", "descending")),
            Some(("meta.created", "ascending")),
        ] {
            if let Some(m) = mismatch_sorted(&app, Kind::Users, raw, sort, 7, &users).await {
                failures.push(m);
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
