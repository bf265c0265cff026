//! Sorting: `sortBy` on userName, name.familyName and meta.created both ways, and refused
//! `sortOrder` values.

use std::cmp::Ordering;

use scimbus::scim::query::{eval, parse_sort};
use scimbus::scim::schema::Registry;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, assert_scim_error, spawn_app};

use super::{EVERYONE, Kind, ids, list_all, rfc_users};

both_backends!(
    sorting_by_user_name_folds_case_and_orders_by_code_point_both_ways,
    sorting_by_family_name_puts_users_without_one_last_ascending_and_first_descending,
    sorting_by_meta_created_follows_creation_order_and_pages_in_it,
    a_sort_order_outside_the_rfcs_two_values_answers_400_invalid_value,
);

/// The users listed with `sortBy`/`sortOrder`: in an order the evaluator's comparator
/// accepts (ties in any order), and every user exactly once.
async fn sorted(app: &TestApp, users: &[Value], sort_by: &str, order: Option<&str>) -> Vec<Value> {
    let mut query = vec![("sortBy", sort_by)];
    if let Some(order) = order {
        query.push(("sortOrder", order));
    }
    let listed = list_all(app, Kind::Users, &query)
        .await
        .unwrap_or_else(|e| panic!("sortBy={sort_by} sortOrder={order:?}: {e:?}"));
    assert_eq!(
        ids(&listed),
        ids(users),
        "sortBy={sort_by}: every user once"
    );
    assert_eq!(listed.len(), users.len());
    let registry = Registry::core();
    let sort = parse_sort(registry, registry.user(), sort_by, order).unwrap();
    for pair in listed.windows(2) {
        assert_ne!(
            eval::compare_for_sort(&sort, &pair[0], &pair[1]),
            Ordering::Greater,
            "sortBy={sort_by} sortOrder={order:?}: {} before {}",
            pair[0],
            pair[1]
        );
    }
    listed
}

fn user_names(listed: &[Value]) -> Vec<&str> {
    listed
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect()
}

async fn sorting_by_user_name_folds_case_and_orders_by_code_point_both_ways(backend: Backend) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    // RFC 7644 §3.4.2.3: case-insensitive, "Unicode alphabetic sort order with no specific
    // locale implied": `jsmith` < `jörg` because `s` (U+0073) < `ö` (U+00F6).
    let ascending = [
        "bjensen",
        "Jane.Doe",
        "JSmith",
        "Jörg",
        "kim",
        "mo'malley",
        "zed",
    ];
    for order in [None, Some("ascending")] {
        assert_eq!(
            user_names(&sorted(&app, &users, "userName", order).await),
            ascending
        );
    }
    let mut descending = ascending;
    descending.reverse();
    assert_eq!(
        user_names(&sorted(&app, &users, "USERNAME", Some("descending")).await),
        descending
    );
    let filtered = list_all(
        &app,
        Kind::Users,
        &[
            ("filter", r#"userName sw "j""#),
            ("sortBy", "userName"),
            ("sortOrder", "descending"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(user_names(&filtered), ["Jörg", "JSmith", "Jane.Doe"]);
}

async fn sorting_by_family_name_puts_users_without_one_last_ascending_and_first_descending(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    let family = |listed: &[Value]| -> Vec<Option<String>> {
        listed
            .iter()
            .map(|u| {
                u["name"]["familyName"]
                    .as_str()
                    .map(scimbus::scim::fold::fold)
            })
            .collect()
    };
    let s = |v: &str| Some(v.to_owned());
    // RFC 7644 §3.4.2.3: "if there is no data for the specified sortBy value, they are
    // sorted via the sortOrder parameter, i.e., they are ordered last if ascending and
    // first if descending".
    let ascending = vec![
        s("doe"),
        s("jensen"),
        s("o'malley"),
        s("o'malley"),
        None,
        None,
        None,
    ];
    assert_eq!(
        family(&sorted(&app, &users, "name.familyName", Some("ascending")).await),
        ascending
    );
    let mut descending = ascending;
    descending.reverse();
    assert_eq!(
        family(&sorted(&app, &users, "name.familyName", Some("descending")).await),
        descending
    );
}

async fn sorting_by_meta_created_follows_creation_order_and_pages_in_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let users = rfc_users(&app).await;
    let created = user_names(&users);
    assert_eq!(created, EVERYONE, "the default order is creation order");
    assert_eq!(
        user_names(&sorted(&app, &users, "meta.created", None).await),
        EVERYONE
    );
    let mut newest_first = EVERYONE.to_vec();
    newest_first.reverse();
    assert_eq!(
        user_names(&sorted(&app, &users, "meta.created", Some("descending")).await),
        newest_first
    );
    let page = app
        .list_users(&[
            ("sortBy", "meta.created"),
            ("sortOrder", "descending"),
            ("startIndex", "2"),
            ("count", "2"),
        ])
        .await;
    assert_eq!(page["totalResults"], 7);
    assert_eq!(
        user_names(page["Resources"].as_array().unwrap()),
        newest_first[1..3]
    );
}

/// `sortOrder` takes "ascending" or "descending" (RFC 7644 §3.4.2.3, and the enum of the
/// OpenAPI document): any other value answers 400 `invalidValue` on every list and search
/// endpoint, with or without `sortBy`, and the two values answer 200.
async fn a_sort_order_outside_the_rfcs_two_values_answers_400_invalid_value(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(&json!({"schemas": [USER_URN], "userName": "sorted"}))
        .await;
    for order in ["AAA", "Descending", " ascending", ""] {
        for path in ["/Users", "/Groups"] {
            for sort_by in [None, Some("meta.created")] {
                let mut query = vec![("sortOrder", order)];
                query.extend(sort_by.map(|by| ("sortBy", by)));
                let response = app
                    .client
                    .get(app.url(path))
                    .bearer_auth(&app.token)
                    .query(&query)
                    .send()
                    .await
                    .unwrap();
                assert_scim_error(response, 400, Some("invalidValue")).await;
            }
        }
        let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
        body["sortOrder"] = json!(order);
        for path in ["/Users/.search", "/.search"] {
            let response = app
                .client
                .post(app.url(path))
                .bearer_auth(&app.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_scim_error(response, 400, Some("invalidValue")).await;
        }
    }
    for order in ["ascending", "descending"] {
        let listed = app
            .list_users(&[("sortOrder", order), ("sortBy", "userName")])
            .await;
        assert_eq!(listed["totalResults"], 1, "{order}");
        assert_eq!(
            app.list_users(&[("sortOrder", order)]).await["totalResults"],
            1
        );
    }
}
