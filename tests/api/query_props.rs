//! Property tests of `GET /Users?filter=…` on both backends: a random population created
//! over HTTP, random filters from a grammar over its attributes (sometimes with `sortBy` and
//! small pages); the server must list exactly the users the reference evaluator
//! (`scim::query::eval`) accepts, in an order its comparator accepts.

// CI runs one fixed seed: 64 cases over one population of 40 users per backend, after the
// committed regressions (query_props.proptest-regressions). A long random run:
//
//     SCIMBUS_PROPTEST_CASES=2000 SCIMBUS_PROPTEST_SEED=random \
//         cargo test --test api query_props -- --nocapture
//
// The seed in use is printed and named in every failure; `SCIMBUS_PROPTEST_SEED=<u64>`
// replays it (population and filters). A failure shows the shrunk case, both id sets and
// the users on which they differ.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, Utc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRng,
    TestRunner,
};
use scimbus::scim::schema::ENTERPRISE_USER_URN;
use scimbus::scim::time;
use serde_json::{Map, Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, USER_URN, spawn_app};
use crate::query::{Kind, list_all, mismatch_sorted};

both_backends!(listed_users_are_exactly_those_the_reference_evaluator_accepts);

const DEFAULT_SEED: u64 = 7644;
const DEFAULT_CASES: u32 = 64;
const POPULATION: usize = 40;
const REGRESSIONS: &str = "tests/api/query_props.proptest-regressions";

/// Case variants, non-ASCII (folding: É/é, ß has no one-letter upper case, ﬁ is NFKC "fi"),
/// and LIKE's metacharacters.
const ALPHABET: &[&str] = &["a", "A", "b", "B", "É", "é", "ß", "ﬁ", "%", "_", "\\", " "];

fn seed() -> u64 {
    match std::env::var("SCIMBUS_PROPTEST_SEED").as_deref() {
        Ok("random") => rand::random(),
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("SCIMBUS_PROPTEST_SEED={n}: a u64 or `random`")),
        Err(_) => DEFAULT_SEED,
    }
}

fn cases() -> u32 {
    std::env::var("SCIMBUS_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn text(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> + Clone {
    vec(select(ALPHABET), len).prop_map(|chars| chars.concat())
}

// ---------------------------------------------------------------------------------------
// The population.

#[derive(Debug, Clone)]
struct Email {
    value: Option<String>,
    kind: Option<String>,
    primary: Option<bool>,
}

#[derive(Debug, Clone)]
struct Person {
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
const STRING_ATTRS: [&str; 7] = [
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

fn person() -> impl Strategy<Value = Person> {
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
async fn populate(app: &TestApp, people: &[Person]) -> Vec<Value> {
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

// ---------------------------------------------------------------------------------------
// The filters.

/// What literals are drawn from: the population's values per attribute.
#[derive(Debug)]
struct Pool {
    strings: Vec<Vec<String>>,
    email_values: Vec<String>,
    email_types: Vec<String>,
    departments: Vec<String>,
    user_names: Vec<String>,
    ids: Vec<String>,
    resource_types: Vec<String>,
    times: Vec<DateTime<Utc>>,
}

impl Pool {
    fn of(users: &[Value]) -> Self {
        let collect = |f: &dyn Fn(&Value) -> Vec<Value>| -> Vec<String> {
            let mut out: Vec<String> = users
                .iter()
                .flat_map(f)
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            out.push("a".to_owned());
            out
        };
        let at = |path: &'static str| {
            move |u: &Value| vec![path.split('.').fold(u, |v, k| &v[k]).clone()]
        };
        let emails = |key: &'static str| {
            move |u: &Value| {
                u["emails"]
                    .as_array()
                    .map(|a| a.iter().map(|e| e[key].clone()).collect())
                    .unwrap_or_default()
            }
        };
        let mut times: Vec<DateTime<Utc>> = users
            .iter()
            .flat_map(|u| [&u["meta"]["created"], &u["meta"]["lastModified"]])
            .filter_map(|v| v.as_str().and_then(time::parse))
            .collect();
        times.sort();
        Pool {
            strings: STRING_ATTRS.iter().map(|a| collect(&at(a))).collect(),
            email_values: collect(&emails("value")),
            email_types: collect(&emails("type")),
            departments: collect(&|u: &Value| vec![u[ENTERPRISE_USER_URN]["department"].clone()]),
            user_names: collect(&at("userName")),
            ids: collect(&at("id")),
            resource_types: ["User", "user", "USER", "Group"]
                .map(str::to_owned)
                .to_vec(),
            times,
        }
    }
}

/// A random piece of `values`: a substring, in its case, upper case or lower case.
#[derive(Debug, Clone)]
struct Piece {
    which: Index,
    from: Index,
    to: Index,
    case: u8,
}

impl Piece {
    fn of(&self, values: &[String]) -> String {
        let chars: Vec<char> = self.which.get(values).chars().collect();
        let (mut a, mut b) = (
            self.from.index(chars.len() + 1),
            self.to.index(chars.len() + 1),
        );
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let piece: String = chars[a..b].iter().collect();
        match self.case {
            0 => piece.to_uppercase(),
            1 => piece.to_lowercase(),
            _ => piece,
        }
    }
}

/// A string literal: random text, or a piece of the population's values.
#[derive(Debug, Clone)]
enum Lit {
    Text(String),
    Piece(Piece),
}

fn lit() -> impl Strategy<Value = Lit> {
    prop_oneof![
        1 => text(0..=3).prop_map(Lit::Text),
        3 => (any::<Index>(), any::<Index>(), any::<Index>(), 0_u8..4).prop_map(
            |(which, from, to, case)| Lit::Piece(Piece { which, from, to, case })
        ),
    ]
}

/// Spelling of a name, operator or literal.
#[derive(Debug, Clone, Copy)]
struct Style {
    case: u8,
    escape: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (0_u8..6, any::<bool>()).prop_map(|(case, escape)| Style { case, escape })
}

impl Style {
    /// A name or operator as written: mostly as registered, sometimes in another case.
    fn word(self, w: &str) -> String {
        match self.case {
            0 => w.to_uppercase(),
            1 => w.to_lowercase(),
            _ => w.to_owned(),
        }
    }

    /// A JSON string literal; non-ASCII raw or as `\u` escapes.
    fn quote(self, s: &str) -> String {
        if !self.escape {
            return serde_json::to_string(s).unwrap();
        }
        let mut out = String::from("\"");
        for c in s.chars() {
            if c.is_ascii() {
                let q = serde_json::to_string(&c.to_string()).unwrap();
                out.push_str(&q[1..q.len() - 1]);
            } else {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out.push('"');
        out
    }
}

const STRING_OPS: [&str; 9] = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
const ORDER_OPS: [&str; 6] = ["eq", "ne", "gt", "ge", "lt", "le"];

/// Where a string attribute's literal comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Attr(usize),
    UserName,
    Department,
    EmailValue,
    EmailType,
    Id,
    ResourceType,
}

impl Source {
    fn values(self, pool: &Pool) -> &[String] {
        match self {
            Source::Attr(i) => &pool.strings[i],
            Source::UserName => &pool.user_names,
            Source::Department => &pool.departments,
            Source::EmailValue => &pool.email_values,
            Source::EmailType => &pool.email_types,
            Source::Id => &pool.ids,
            Source::ResourceType => &pool.resource_types,
        }
    }
}

/// One attribute expression.
#[derive(Debug, Clone)]
enum Leaf {
    /// `<attr> <op> "<literal>"`; `qualify` writes a core attribute with its URN.
    Str {
        attr: usize,
        op: usize,
        lit: Lit,
        qualify: bool,
        style: Style,
    },
    /// `<attr> pr`, `<attr> eq null` or `<attr> ne null`.
    Presence {
        attr: usize,
        how: u8,
        style: Style,
        qualify: bool,
    },
    Active {
        op: usize,
        value: bool,
        style: Style,
    },
    Time {
        last_modified: bool,
        op: usize,
        at: Index,
        shift_ms: i64,
        form: u8,
        style: Style,
    },
    /// `emails <op> "x"`, `emails.value <op> "x"` or `emails.type <op> "x"`.
    Email {
        sub: u8,
        op: usize,
        lit: Lit,
        style: Style,
    },
    EmailPrimary {
        op: usize,
        value: bool,
        style: Style,
    },
    /// `emails[<element filter>]`, or Entra's `emails[<element filter>].value <op> "x"`.
    ValuePath {
        inner: Element,
        then: Option<(usize, Lit)>,
        style: Style,
    },
}

/// The attributes a `Leaf::Str` may compare: the seven optional strings of a [`Person`],
/// then `userName`, the enterprise `department`, `id` and `meta.resourceType`. A
/// `Leaf::Presence` may also name `name` and `emails` (`pr` only), `active` and
/// `meta.created`.
const STR_ATTRS: usize = STRING_ATTRS.len() + 4;
const PRESENCE_ATTRS: usize = STR_ATTRS + 4;

fn attr_name(i: usize) -> &'static str {
    match i {
        i if i < STRING_ATTRS.len() => STRING_ATTRS[i],
        7 => "userName",
        8 => "department",
        9 => "id",
        10 => "meta.resourceType",
        11 => "name",
        12 => "emails",
        13 => "active",
        _ => "meta.created",
    }
}

fn source(i: usize) -> Source {
    match i {
        i if i < STRING_ATTRS.len() => Source::Attr(i),
        7 => Source::UserName,
        8 => Source::Department,
        9 => Source::Id,
        _ => Source::ResourceType,
    }
}

fn written_attr(i: usize, qualify: bool, style: Style) -> String {
    let name = style.word(attr_name(i));
    let core = i < STRING_ATTRS.len() && i != 6 || i == 7 || (11..14).contains(&i);
    if i == 8 {
        format!("{ENTERPRISE_USER_URN}:{name}")
    } else if qualify && core {
        format!("{USER_URN}:{name}")
    } else {
        name
    }
}

/// An element filter inside `emails[…]`.
#[derive(Debug, Clone)]
enum Element {
    Value { op: usize, lit: Lit },
    Type { op: usize, lit: Lit },
    Primary { op: usize, value: bool },
    Present { sub: u8 },
    Null { sub: u8, eq: bool },
    Not(Box<Element>),
    And(Box<Element>, Box<Element>),
    Or(Box<Element>, Box<Element>, bool),
}

fn element() -> impl Strategy<Value = Element> {
    let leaf = prop_oneof![
        (0..STRING_OPS.len(), lit()).prop_map(|(op, lit)| Element::Value { op, lit }),
        (0..STRING_OPS.len(), lit()).prop_map(|(op, lit)| Element::Type { op, lit }),
        (0..2_usize, any::<bool>()).prop_map(|(op, value)| Element::Primary { op, value }),
        (0_u8..4).prop_map(|sub| Element::Present { sub }),
        (0_u8..3, any::<bool>()).prop_map(|(sub, eq)| Element::Null { sub, eq }),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Element::Not(Box::new(e))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Element::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner, any::<bool>()).prop_map(|(a, b, p)| Element::Or(
                Box::new(a),
                Box::new(b),
                p
            )),
        ]
    })
}

const ELEMENT_SUBS: [&str; 4] = ["value", "type", "primary", "display"];

impl Element {
    fn render(&self, pool: &Pool, style: Style) -> String {
        match self {
            Element::Value { op, lit } => format!(
                "{} {} {}",
                style.word("value"),
                style.word(STRING_OPS[*op]),
                style.quote(&lit.resolve(Source::EmailValue, pool))
            ),
            Element::Type { op, lit } => format!(
                "{} {} {}",
                style.word("type"),
                STRING_OPS[*op],
                style.quote(&lit.resolve(Source::EmailType, pool))
            ),
            Element::Primary { op, value } => {
                format!("primary {} {value}", ["eq", "ne"][*op])
            }
            Element::Present { sub } => format!("{} pr", ELEMENT_SUBS[*sub as usize]),
            Element::Null { sub, eq } => format!(
                "{} {} null",
                ELEMENT_SUBS[*sub as usize],
                if *eq { "eq" } else { "ne" }
            ),
            Element::Not(e) => format!("not ({})", e.render(pool, style)),
            Element::And(a, b) => {
                format!("{} and {}", a.render(pool, style), b.render(pool, style))
            }
            Element::Or(a, b, parens) => {
                let s = format!("{} or {}", a.render(pool, style), b.render(pool, style));
                if *parens { format!("({s})") } else { s }
            }
        }
    }
}

impl Lit {
    fn resolve(&self, source: Source, pool: &Pool) -> String {
        match self {
            Lit::Text(s) => s.clone(),
            Lit::Piece(p) => p.of(source.values(pool)),
        }
    }
}

fn leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        6 => (0..STR_ATTRS, 0..STRING_OPS.len(), lit(), prop::bool::weighted(0.1), style())
            .prop_map(|(attr, op, lit, qualify, style)| Leaf::Str { attr, op, lit, qualify, style }),
        2 => (0..PRESENCE_ATTRS, 0_u8..3, style(), prop::bool::weighted(0.1))
            .prop_map(|(attr, how, style, qualify)| Leaf::Presence { attr, how, style, qualify }),
        1 => (0..2_usize, any::<bool>(), style())
            .prop_map(|(op, value, style)| Leaf::Active { op, value, style }),
        2 => (
            any::<bool>(),
            0..ORDER_OPS.len(),
            any::<Index>(),
            select(&[-1_000_i64, -1, 0, 0, 1, 1_000][..]),
            0_u8..3,
            style(),
        )
            .prop_map(|(last_modified, op, at, shift_ms, form, style)| Leaf::Time {
                last_modified, op, at, shift_ms, form, style,
            }),
        2 => (0_u8..3, 0..STRING_OPS.len(), lit(), style())
            .prop_map(|(sub, op, lit, style)| Leaf::Email { sub, op, lit, style }),
        1 => (0..2_usize, any::<bool>(), style())
            .prop_map(|(op, value, style)| Leaf::EmailPrimary { op, value, style }),
        2 => (element(), prop::option::weighted(0.3, (0..STRING_OPS.len(), lit())), style())
            .prop_map(|(inner, then, style)| Leaf::ValuePath { inner, then, style }),
    ]
}

impl Leaf {
    fn render(&self, pool: &Pool) -> String {
        match self {
            Leaf::Str {
                attr,
                op,
                lit,
                qualify,
                style,
            } => format!(
                "{} {} {}",
                written_attr(*attr, *qualify, *style),
                style.word(STRING_OPS[*op]),
                style.quote(&lit.resolve(source(*attr), pool))
            ),
            Leaf::Presence {
                attr,
                how,
                style,
                qualify,
            } => {
                let name = written_attr(*attr, *qualify, *style);
                match how {
                    0 => format!("{name} {}", style.word("pr")),
                    // `emails eq null` types as "some email without a value" (resolve.rs),
                    // and a complex attribute has no null of its own: `pr` only.
                    _ if *attr == 11 || *attr == 12 => format!("{name} pr"),
                    1 => format!("{name} eq null"),
                    _ => format!("{name} ne null"),
                }
            }
            Leaf::Active { op, value, style } => {
                format!("{} {} {value}", style.word("active"), ["eq", "ne"][*op])
            }
            Leaf::Time {
                last_modified,
                op,
                at,
                shift_ms,
                form,
                style,
            } => {
                let attr = if *last_modified {
                    "meta.lastModified"
                } else {
                    "meta.created"
                };
                let t = *at.get(&pool.times) + TimeDelta::milliseconds(*shift_ms);
                let written = match form {
                    0 => time::format(t),
                    1 => t
                        .with_timezone(&FixedOffset::east_opt(5 * 3600 + 1800).unwrap())
                        .to_rfc3339_opts(SecondsFormat::Millis, false),
                    _ => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                };
                format!("{} {} \"{written}\"", style.word(attr), ORDER_OPS[*op])
            }
            Leaf::Email {
                sub,
                op,
                lit,
                style,
            } => {
                let (attr, source) = match sub {
                    0 => ("emails", Source::EmailValue),
                    1 => ("emails.value", Source::EmailValue),
                    _ => ("emails.type", Source::EmailType),
                };
                format!(
                    "{} {} {}",
                    style.word(attr),
                    style.word(STRING_OPS[*op]),
                    style.quote(&lit.resolve(source, pool))
                )
            }
            Leaf::EmailPrimary { op, value, style } => {
                format!(
                    "{} {} {value}",
                    style.word("emails.primary"),
                    ["eq", "ne"][*op]
                )
            }
            Leaf::ValuePath { inner, then, style } => {
                let path = format!("{}[{}]", style.word("emails"), inner.render(pool, *style));
                match then {
                    None => path,
                    Some((op, lit)) => format!(
                        "{path}.value {} {}",
                        STRING_OPS[*op],
                        style.quote(&lit.resolve(Source::EmailValue, pool))
                    ),
                }
            }
        }
    }
}

/// A whole filter.
#[derive(Debug, Clone)]
enum Expr {
    Leaf(Leaf),
    /// `not (…)`, or `not(…)` without the space when the flag is set.
    Not(Box<Expr>, bool),
    /// The flag puts the expression in parentheses.
    And(Box<Expr>, Box<Expr>, bool),
    Or(Box<Expr>, Box<Expr>, bool),
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf()
        .prop_map(Expr::Leaf)
        .prop_recursive(3, 10, 2, |inner| {
            prop_oneof![
                (inner.clone(), prop::bool::weighted(0.2))
                    .prop_map(|(e, tight)| Expr::Not(Box::new(e), tight)),
                (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(a, b, p)| Expr::And(
                    Box::new(a),
                    Box::new(b),
                    p
                )),
                (inner.clone(), inner, any::<bool>()).prop_map(|(a, b, p)| Expr::Or(
                    Box::new(a),
                    Box::new(b),
                    p
                )),
            ]
        })
}

impl Expr {
    fn render(&self, pool: &Pool) -> String {
        let group = |s: String, parens: bool| if parens { format!("({s})") } else { s };
        match self {
            Expr::Leaf(leaf) => leaf.render(pool),
            Expr::Not(e, true) => format!("not({})", e.render(pool)),
            Expr::Not(e, false) => format!("not ({})", e.render(pool)),
            Expr::And(a, b, p) => group(format!("{} and {}", a.render(pool), b.render(pool)), *p),
            Expr::Or(a, b, p) => group(format!("{} or {}", a.render(pool), b.render(pool)), *p),
        }
    }
}

/// The sort keys a case may ask for (RFC 7644 §3.4.2.3).
const SORT_KEYS: [&str; 13] = [
    "userName",
    "displayName",
    "title",
    "userType",
    "nickName",
    "name.givenName",
    "name.familyName",
    "externalId",
    "id",
    "active",
    "meta.created",
    "meta.lastModified",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
];

/// One request: a filter, maybe a sort key and order, and a page size (a small one checks
/// that pages neither overlap nor skip, so ties must be broken the same way each time).
#[derive(Debug, Clone)]
struct Case {
    filter: Expr,
    sort: Option<(usize, bool)>,
    page: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        expr(),
        prop::option::weighted(0.4, (0..SORT_KEYS.len(), any::<bool>())),
        select(&[1000_usize, 1000, 7][..]),
    )
        .prop_map(|(filter, sort, page)| Case { filter, sort, page })
}

impl Case {
    fn sort(&self) -> Option<(&'static str, &'static str)> {
        self.sort.map(|(key, descending)| {
            let order = if descending {
                "descending"
            } else {
                "ascending"
            };
            (SORT_KEYS[key], order)
        })
    }

    fn describe(&self, pool: &Pool) -> String {
        let mut out = self.filter.render(pool);
        if let Some((by, order)) = self.sort() {
            out.push_str(&format!("  [sortBy={by} sortOrder={order}]"));
        }
        if self.page != 1000 {
            out.push_str(&format!("  [count={}]", self.page));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------

async fn listed_users_are_exactly_those_the_reference_evaluator_accepts(backend: Backend) {
    let seed = seed();
    let cases = cases();
    println!("{backend:?}: SCIMBUS_PROPTEST_SEED={seed} SCIMBUS_PROPTEST_CASES={cases}");
    let app = spawn_app(backend).await;

    let mut seeder = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
    );
    let people = vec(person(), POPULATION)
        .new_tree(&mut seeder)
        .unwrap()
        .current();
    let users = populate(&app, &people).await;
    let pool = Pool::of(&users);

    let config = Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        max_shrink_iters: 512,
        ..Config::default()
    };
    let app = Arc::new(app);
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking({
        let app = app.clone();
        move || {
            let mut runner = TestRunner::new(config);
            let result = runner.run(&case(), |c| {
                let raw = c.filter.render(&pool);
                let checked = mismatch_sorted(&app, Kind::Users, &raw, c.sort(), c.page, &users);
                match handle.block_on(checked) {
                    None => Ok(()),
                    Some(m) => Err(TestCaseError::fail(m)),
                }
            });
            result.map_err(|e| match e {
                TestError::Fail(why, c) => format!("{why}\n(shrunk case: {})", c.describe(&pool)),
                TestError::Abort(why) => format!("aborted: {why}"),
            })
        }
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!(
            "{backend:?}, SCIMBUS_PROPTEST_SEED={seed}: the server and the reference evaluator \
             disagree\n{failure}"
        );
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0_u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    bytes
}
