//! The filters' leaves: a pool of the population's values to draw literals from, spellings
//! of attribute names and literals, comparisons, presence and value-path elements.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use scimbus::scim::schema::ENTERPRISE_USER_URN;
use scimbus::scim::time;
use serde_json::Value;

use crate::helpers::USER_URN;

use super::population::STRING_ATTRS;
use super::text;

/// What literals are drawn from: the population's values per attribute.
#[derive(Debug)]
pub(super) struct Pool {
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
    pub(super) fn of(users: &[Value]) -> Self {
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
pub(super) struct Piece {
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
pub(super) enum Lit {
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
pub(super) struct Style {
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
pub(super) enum Leaf {
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
pub(super) enum Element {
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

pub(super) fn leaf() -> impl Strategy<Value = Leaf> {
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
    pub(super) fn render(&self, pool: &Pool) -> String {
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
