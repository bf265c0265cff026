//! The population: random people (names, emails, user types, enterprise attributes, dates)
//! and their creation over HTTP.

use chrono::TimeDelta;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use scimbus::scim::schema::ENTERPRISE_USER_URN;
use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, USER_URN};
use crate::query::{Kind, list_all};

use super::text;

#[derive(Debug, Clone)]
struct Email {
    value: Option<String>,
    kind: Option<String>,
    primary: Option<bool>,
}

#[derive(Debug, Clone)]
pub(super) struct Person {
    user_name: String,
    strings: [Option<String>; 7],
    active: Option<bool>,
    emails: Vec<Email>,
    department: Option<String>,
    /// Milliseconds the clock moves before the user is created.
    gap: i64,
    /// Whether a later PUT moves `meta.lastModified` past `meta.created`.
    touched: bool,
}

/// The optional string attributes of a [`Person`], in `strings` order.
pub(super) const STRING_ATTRS: [&str; 7] = [
    "displayName",
    "title",
    "userType",
    "nickName",
    "name.givenName",
    "name.familyName",
    "externalId",
];

fn maybe(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 2 => s.prop_map(Some)]
}

fn user_type() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "Employee",
                "employee",
                "EMPLOYEE",
                "Intern",
                "Contractor",
                ""
            ][..]
        )
        .prop_map(str::to_owned),
        text(0..=3),
    ]
}

fn email(first: bool) -> impl Strategy<Value = Email> {
    let kind = prop_oneof![
        select(&["work", "Work", "home", "other", ""][..]).prop_map(str::to_owned),
        text(1..=2),
    ];
    let primary = if first {
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))].boxed()
    } else {
        prop_oneof![Just(None), Just(Some(false))].boxed()
    };
    (maybe(text(0..=4)), maybe(kind), primary).prop_map(|(value, kind, primary)| Email {
        value,
        kind,
        primary,
    })
}

pub(super) fn person() -> impl Strategy<Value = Person> {
    let strings = (
        maybe(text(0..=4)),
        maybe(text(0..=4)),
        maybe(user_type()),
        maybe(text(0..=4)),
        maybe(text(0..=4)),
        maybe(text(0..=4)),
        maybe(text(1..=4)),
    )
        .prop_map(|(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g]);
    let emails = prop_oneof![
        Just(Vec::new()),
        email(true).prop_map(|e| vec![e]),
        (email(true), vec(email(false), 1..=2)).prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            rest
        }),
    ];
    let gap = select(&[0_i64, 1, 999, 1_000, 3_600_000][..]);
    (
        text(1..=4),
        strings,
        prop_oneof![Just(None), any::<bool>().prop_map(Some)],
        emails,
        maybe(text(0..=4)),
        gap,
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(user_name, strings, active, emails, department, gap, touched)| Person {
                user_name,
                strings,
                active,
                emails,
                department,
                gap,
                touched,
            },
        )
}

impl Person {
    fn body(&self, user_name: &str) -> Value {
        let mut body = Map::new();
        let mut schemas = vec![json!(USER_URN)];
        body.insert("userName".into(), json!(user_name));
        let mut name = Map::new();
        for (attr, value) in STRING_ATTRS.iter().zip(&self.strings) {
            let Some(value) = value else { continue };
            match attr.strip_prefix("name.") {
                Some(sub) => {
                    name.insert(sub.into(), json!(value));
                }
                None => {
                    body.insert((*attr).into(), json!(value));
                }
            }
        }
        if !name.is_empty() {
            body.insert("name".into(), Value::Object(name));
        }
        if let Some(active) = self.active {
            body.insert("active".into(), json!(active));
        }
        let emails: Vec<Value> = self
            .emails
            .iter()
            .map(|e| {
                let mut m = Map::new();
                if let Some(v) = &e.value {
                    m.insert("value".into(), json!(v));
                }
                if let Some(t) = &e.kind {
                    m.insert("type".into(), json!(t));
                }
                if let Some(p) = e.primary {
                    m.insert("primary".into(), json!(p));
                }
                Value::Object(m)
            })
            .collect();
        if !emails.is_empty() {
            body.insert("emails".into(), Value::Array(emails));
        }
        if let Some(d) = &self.department {
            schemas.push(json!(ENTERPRISE_USER_URN));
            body.insert(ENTERPRISE_USER_URN.into(), json!({"department": d}));
        }
        body.insert("schemas".into(), Value::Array(schemas));
        Value::Object(body)
    }
}

/// Creates `people` over HTTP (a taken userName gets a suffix) and returns their
/// representations as the list endpoint gives them.
pub(super) async fn populate(app: &TestApp, people: &[Person]) -> Vec<Value> {
    let mut touched = Vec::new();
    for (i, p) in people.iter().enumerate() {
        app.clock.advance(TimeDelta::milliseconds(p.gap));
        let mut user_name = p.user_name.clone();
        if user_name.trim().is_empty() {
            // A blank userName is refused (400), and is not what this test is about.
            user_name.push('a');
        }
        let created = loop {
            let response = app.post("/Users", &p.body(&user_name)).await;
            match response.status().as_u16() {
                201 => break response.json::<Value>().await.unwrap(),
                409 => user_name = format!("{user_name}{i}"),
                status => panic!("{status}: {:?}", response.text().await),
            }
        };
        if p.touched {
            touched.push((
                created["id"].as_str().unwrap().to_owned(),
                p.body(&user_name),
            ));
        }
    }
    for (id, mut body) in touched {
        app.clock.advance(TimeDelta::seconds(1));
        body["preferredLanguage"] = json!("fr");
        let response = app.put(&format!("/Users/{id}"), &body).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    list_all(app, Kind::Users, &[]).await.unwrap()
}
