//! The reference evaluator: a typed filter over a resource's JSON representation, written
//! from RFC 7644 §3.4.2.2 alone. It is the specification the SQL compilation is tested
//! against (property tests on both backends); no list endpoint uses it.

// The rules, which the SQL compilation follows (each cites the text that decides it).
//
// 1. Two-valued logic. Every expression is true or false, never "unknown": `not` matches
//    when its expression "evaluates to false" (RFC 7644 §3.4.2.2, `not`). In SQL a NULL
//    must never reach a `NOT`: write `NOT COALESCE(e, FALSE)` or `(e) IS NOT TRUE`.
// 2. Missing attributes. An attribute is missing when its key is absent or its value is
//    null (RFC 7643 §2.5: null, an empty array and "unassigned" are one state). An
//    attribute operator is a test of the attribute's values, and a filter on a
//    multi-valued attribute "matches if any of the values of the specified attribute match"
//    (RFC 7644 §3.4.2.2); a missing attribute has no value, so EVERY comparison on it is
//    false — `eq`, `co`, `sw`, `ew`, `gt`, `ge`, `lt`, `le` and also `ne` ("the attribute
//    and operator values are not identical" needs an attribute value) — and `not` of such a
//    comparison is true. Hence `title ne "x"` excludes users without a title while
//    `not (title eq "x")` includes them. (`title ne null` and `title eq null` are
//    `title pr` and `not (title pr)`, typed so by the resolver.) A value of the wrong JSON
//    type for the attribute counts as missing for comparisons.
// 3. `pr` (RFC 7644 §3.4.2.2: "a non-empty value, or ... a non-empty node"): true unless the
//    value is missing, an empty string, an empty array or an empty object. On a
//    multi-valued attribute (`emails pr`), true when it has at least one element.
// 4. Strings (`string`, `reference`): when the attribute is not `caseExact`, both sides are
//    folded by `crate::scim::fold::fold` (DESIGN 6; RFC 7644 §3.4.2.2 defers case to
//    `caseExact`), then: `eq`/`ne` equality, `co`/`sw`/`ew` substring/prefix/suffix (an
//    empty literal matches every present string), `gt`/`ge`/`lt`/`le` byte order of the
//    UTF-8 strings (PostgreSQL: `COLLATE "C"`; SQLite's BINARY collation already is).
//    `binary` values compare exactly, whatever `caseExact` says (RFC 7643 §2.3.6).
// 5. `dateTime`: both sides in the one fixed-width UTC form (`crate::scim::time`), then
//    compared as strings, which is chronological order. An unparsable value is missing.
// 6. `boolean`: `eq`/`ne` with a JSON boolean. Numbers: numerically (1 eq 1.0).
// 7. Multi-valued attributes (`Filter::Any`): true when some element passes the element
//    filter, whose paths are relative to the element, so both halves of
//    `emails[type eq "work" and value co "x"]` must hold for the same element; no element,
//    no match. `emails.value ne "x"` is "some email has a value other than x".
// 8. `members` of a Group and `groups` of a User (`Filter::Related`): as 7, over the array of
//    the representation, whose elements have `value`, `display`, `type` and `$ref`. A
//    user's `groups` lists direct and indirect memberships (RFC 7643 §4.1.2), so
//    `groups eq "<id>"` also matches members of a group nested in `<id>`; each group is
//    listed once, `direct` when the user is a direct member (whatever other paths exist),
//    so `groups[type eq "indirect"]` tests that one element, not every path.
// 9. Attribute names, URNs included, are looked up case-insensitively (RFC 7643 §2.1).
//
// Sorting (RFC 7644 §3.4.2.3, [`compare_for_sort`]): by the value of a singular attribute,
// folded unless `caseExact`, in byte order; resources without a value (missing or null)
// come last in ascending order and first in descending order — as if the missing value
// were greater than every value: PostgreSQL's default `NULLS LAST`/`NULLS FIRST`, which
// SQLite must be told. An empty string is a value. Ties are left to the caller.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::ast::{Attr, CmpOp, Filter, Literal, Op, Relation, Sort, SortOrder};
use crate::scim::fold::fold;
use crate::scim::schema::AttrType;
use crate::scim::time;

/// Whether `resource` (its JSON representation as the API returns it) passes `filter`.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::And(items) => items.iter().all(|f| matches(f, resource)),
        Filter::Or(items) => items.iter().any(|f| matches(f, resource)),
        Filter::Not(inner) => !matches(inner, resource),
        Filter::True => true,
        Filter::Test(attr, op) => test(attr, op, lookup(resource, &attr.path)),
        Filter::Any { path, filter } => {
            elements(lookup(resource, path)).any(|element| matches(filter, element))
        }
        Filter::Related { relation, filter } => {
            let key = match relation {
                Relation::Members => "members",
                Relation::Groups => "groups",
            };
            elements(lookup(resource, &[key])).any(|element| matches(filter, element))
        }
    }
}

/// Orders two representations by `sort` (RFC 7644 §3.4.2.3): missing values last when
/// ascending, first when descending. `Equal` for ties.
pub fn compare_for_sort(sort: &Sort, a: &Value, b: &Value) -> Ordering {
    let ascending = match (
        sort_key(&sort.attr, lookup(a, &sort.attr.path)),
        sort_key(&sort.attr, lookup(b, &sort.attr.path)),
    ) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.compare(&y),
    };
    match sort.order {
        SortOrder::Ascending => ascending,
        SortOrder::Descending => ascending.reverse(),
    }
}

fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// The value at `path`, `None` when missing or null.
fn lookup<'a, S: AsRef<str>>(resource: &'a Value, path: &[S]) -> Option<&'a Value> {
    path.iter()
        .try_fold(resource, |at, name| match at {
            Value::Object(object) => member(object, name.as_ref()),
            _ => None,
        })
        .filter(|value| !value.is_null())
}

/// The elements of a multi-valued attribute (a lone value counts as one).
fn elements(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match value {
        Some(Value::Array(items)) => items,
        Some(single) => std::slice::from_ref(single),
        None => &[],
    };
    items.iter().filter(|item| !item.is_null())
}

fn test(attr: &Attr, op: &Op, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match op {
        Op::Present => present(value),
        Op::Cmp(op, literal) => compare(attr, *op, literal, value),
    }
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(attr: &Attr, op: CmpOp, literal: &Literal, value: &Value) -> bool {
    match (literal, value) {
        (Literal::Str(lit), Value::String(actual)) => {
            match (comparable(attr, actual), comparable(attr, lit)) {
                (Some(actual), Some(lit)) => compare_strings(op, &actual, &lit),
                _ => false,
            }
        }
        (Literal::Bool(lit), Value::Bool(actual)) => match op {
            CmpOp::Eq => actual == lit,
            CmpOp::Ne => actual != lit,
            _ => false,
        },
        (Literal::Num(lit), Value::Number(actual)) => {
            compare_numbers(actual, lit).is_some_and(|ordering| ordered(op, ordering))
        }
        _ => false,
    }
}

/// A string in the form it is compared in: fixed-width for dateTime, folded when the
/// attribute is case-insensitive, as is otherwise. `None` for an unparsable dateTime.
fn comparable(attr: &Attr, s: &str) -> Option<String> {
    match attr.ty {
        AttrType::DateTime => time::parse(s).map(time::format),
        AttrType::Binary => Some(s.to_owned()),
        _ if attr.case_exact => Some(s.to_owned()),
        _ => Some(fold(s)),
    }
}

fn compare_strings(op: CmpOp, actual: &str, lit: &str) -> bool {
    match op {
        CmpOp::Co => actual.contains(lit),
        CmpOp::Sw => actual.starts_with(lit),
        CmpOp::Ew => actual.ends_with(lit),
        // `str`'s order is the byte order of its UTF-8.
        _ => ordered(op, actual.cmp(lit)),
    }
}

fn ordered(op: CmpOp, ordering: Ordering) -> bool {
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Co | CmpOp::Sw | CmpOp::Ew => false,
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

enum SortKey {
    Bool(bool),
    Num(Number),
    Str(String),
}

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Num(_) => 1,
            SortKey::Str(_) => 2,
        }
    }

    fn compare(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Num(a), SortKey::Num(b)) => compare_numbers(a, b).unwrap_or(Ordering::Equal),
            (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

fn sort_key(attr: &Attr, value: Option<&Value>) -> Option<SortKey> {
    match value? {
        Value::Bool(b) => Some(SortKey::Bool(*b)),
        Value::Number(n) => Some(SortKey::Num(n.clone())),
        Value::String(s) => comparable(attr, s).map(SortKey::Str),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::query::{parse_filter, parse_sort};
    use crate::scim::schema::{ENTERPRISE_USER_URN, Registry};

    fn user_filter(raw: &str) -> Filter {
        let r = Registry::core();
        parse_filter(r, r.user(), raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"))
    }

    fn user_matches(raw: &str, resource: &Value) -> bool {
        matches(&user_filter(raw), resource)
    }

    fn bjensen() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Ext-1",
            "userName": "BJensen@Example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "displayName": "Babs Jensen",
            "title": "",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            ENTERPRISE_USER_URN: {"department": "Tour Operations", "manager": {"value": "M-1"}},
            "meta": {
                "resourceType": "User",
                "created": "2026-01-01T00:00:00.000Z",
                "lastModified": "2026-01-02T00:00:00.000Z"
            }
        })
    }

    #[test]
    fn every_comparison_on_a_missing_attribute_is_false_and_its_negation_true() {
        let u = json!({"userName": "x", "nickName": null});
        for attr in ["nickName", "title", "name.familyName"] {
            for op in ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
                let raw = format!(r#"{attr} {op} "a""#);
                assert!(!user_matches(&raw, &u), "{raw}");
                assert!(user_matches(&format!("not ({raw})"), &u), "not ({raw})");
            }
            assert!(!user_matches(&format!("{attr} pr"), &u));
            assert!(user_matches(&format!("{attr} eq null"), &u));
            assert!(!user_matches(&format!("{attr} ne null"), &u));
        }
        assert!(!user_matches("active eq true", &u));
        assert!(!user_matches("active ne true", &u));
        assert!(user_matches("not (active eq true)", &u));
        assert!(!user_matches(
            r#"meta.created gt "2000-01-01T00:00:00Z""#,
            &u
        ));
    }

    #[test]
    fn ne_is_the_negation_of_eq_only_when_the_attribute_is_present() {
        let u = bjensen();
        assert!(user_matches(r#"userType ne "Intern""#, &u));
        assert!(!user_matches(r#"userType ne "employee""#, &u));
        assert!(!user_matches(r#"nickName ne "Babs""#, &u));
        assert!(user_matches(r#"not (nickName eq "Babs")"#, &u));
    }

    #[test]
    fn pr_needs_a_non_empty_value() {
        let u = bjensen();
        assert!(user_matches("userName pr", &u));
        assert!(!user_matches("title pr", &u), "an empty string");
        assert!(user_matches(r#"title eq """#, &u), "but it is a value");
        assert!(user_matches("name pr", &u));
        assert!(user_matches("emails pr", &u));
        assert!(user_matches("active pr", &json!({"active": false})));
        assert!(!user_matches("name pr", &json!({"name": {}})));
        assert!(!user_matches("emails pr", &json!({"emails": []})));
        assert!(!user_matches("emails pr", &json!({"emails": null})));
        assert!(user_matches("emails.type pr", &u));
        assert!(!user_matches("emails.display pr", &u));
    }

    #[test]
    fn case_insensitive_strings_compare_folded_and_case_exact_ones_as_they_are() {
        let u = bjensen();
        assert!(user_matches(r#"userName eq "bjensen@EXAMPLE.COM""#, &u));
        assert!(user_matches(r#"USERNAME SW "BJ""#, &u));
        assert!(user_matches(r#"displayName co "S JEN""#, &u));
        assert!(user_matches(r#"name.familyName ew "SEN""#, &u));
        assert!(user_matches(r#"externalId eq "Ext-1""#, &u));
        assert!(!user_matches(r#"externalId eq "ext-1""#, &u));
        assert!(!user_matches(r#"externalId sw "EXT""#, &u));
        assert!(!user_matches(
            r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
            &u
        ));
        // Non-ASCII literals are spelt as JSON escapes, so the filter text itself is ASCII.
        let e = json!({"userName": "Élodie", "nickName": "ﬁnn", "title": "Straße"});
        assert!(user_matches(r#"userName eq "\u00e9LODIE""#, &e));
        assert!(
            user_matches(r#"nickName eq "FINN""#, &e),
            "NFKC then lowercase"
        );
        assert!(user_matches(r#"title co "\u00df""#, &e));
        assert!(
            !user_matches(r#"title co "ss""#, &e),
            "ß is not folded to ss"
        );
        assert!(user_matches(r#"userName eq "\u00c9lodie""#, &e));
    }

    #[test]
    fn substring_operators_take_the_literal_literally() {
        let u = json!({"userName": "a%b_c\\d"});
        assert!(user_matches(r#"userName co "%b_""#, &u));
        assert!(!user_matches(r#"userName co "%x""#, &u));
        assert!(!user_matches(r#"userName sw "a_""#, &u), "_ is no wildcard");
        assert!(!user_matches(r#"userName sw "%""#, &u), "% is no wildcard");
        assert!(user_matches(r#"userName ew "\\d""#, &u));
        assert!(user_matches(r#"userName sw "A%B""#, &u));
        assert!(user_matches(r#"userName co """#, &u), "the empty literal");
        assert!(
            user_matches(r#"userName sw "a%b_c\\d""#, &u),
            "whole string"
        );
        assert!(
            user_matches(r#"userName ew "a%b_c\\d""#, &u),
            "whole string"
        );
        assert!(!user_matches(r#"userName co "a%b_c\\dx""#, &u));
    }

    #[test]
    fn strings_order_by_the_bytes_of_their_utf8() {
        let u = json!({"userName": "B", "externalId": "B", "title": "é"});
        assert!(user_matches(r#"userName gt "a""#, &u), "folded: b > a");
        assert!(user_matches(r#"externalId lt "a""#, &u), "exact: B < a");
        assert!(user_matches(r#"externalId ge "B""#, &u));
        assert!(user_matches(r#"externalId le "B""#, &u));
        assert!(!user_matches(r#"externalId gt "B""#, &u));
        assert!(user_matches(r#"title gt "z""#, &u), "é (C3 A9) > z (7A)");
        assert!(user_matches(r#"title lt "\u00fc""#, &u));
        assert!(user_matches(
            r#"title gt "\u00c9""#,
            &json!({"title": "éa"})
        ));
    }

    #[test]
    fn date_times_compare_chronologically_whatever_their_written_form() {
        let u = json!({"meta": {"created": "2011-05-13T06:42:34+02:00"}});
        assert!(user_matches(
            r#"meta.created eq "2011-05-13T04:42:34Z""#,
            &u
        ));
        assert!(user_matches(
            r#"meta.created ge "2011-05-13T04:42:34.000Z""#,
            &u
        ));
        assert!(user_matches(
            r#"meta.created lt "2011-05-13T04:42:34.001Z""#,
            &u
        ));
        assert!(user_matches(
            r#"meta.created gt "2011-05-13T05:42:34+02:00""#,
            &u
        ));
        assert!(!user_matches(
            r#"meta.created gt "2011-05-13T04:42:34Z""#,
            &u
        ));
        assert!(user_matches(
            r#"meta.created ne "2011-05-13T04:42:35Z""#,
            &u
        ));
        let bad = json!({"meta": {"created": "yesterday"}});
        assert!(!user_matches(
            r#"meta.created ne "2011-05-13T04:42:35Z""#,
            &bad
        ));
    }

    #[test]
    fn booleans_compare_by_equality() {
        let u = bjensen();
        assert!(user_matches("active eq true", &u));
        assert!(!user_matches("active eq false", &u));
        assert!(user_matches("active ne false", &u));
        assert!(user_matches("emails[primary eq true]", &u));
        assert!(!user_matches("emails[primary ne true]", &u));
        assert!(!user_matches("active eq true", &json!({"active": "true"})));
    }

    #[test]
    fn numbers_compare_numerically() {
        let attr = Attr {
            path: vec!["n".into()],
            ty: AttrType::Integer,
            case_exact: false,
        };
        let cmp = |op, n: Value| {
            let Value::Number(n) = n else { panic!() };
            Filter::Test(attr.clone(), Op::Cmp(op, Literal::Num(n)))
        };
        let u = json!({"n": 10});
        assert!(matches(&cmp(CmpOp::Gt, json!(9)), &u));
        assert!(matches(&cmp(CmpOp::Eq, json!(10.0)), &u));
        assert!(matches(&cmp(CmpOp::Lt, json!(10.5)), &u));
        assert!(matches(&cmp(CmpOp::Ge, json!(-3)), &u));
        assert!(!matches(&cmp(CmpOp::Ne, json!(10)), &u));
        assert!(!matches(&cmp(CmpOp::Eq, json!(10)), &json!({"n": "10"})));
    }

    #[test]
    fn binary_values_compare_exactly() {
        let u = json!({"x509Certificates": [{"value": "TUlJRA=="}]});
        assert!(user_matches(r#"x509Certificates.value eq "TUlJRA==""#, &u));
        assert!(!user_matches(r#"x509Certificates.value eq "tuljra==""#, &u));
    }

    #[test]
    fn a_value_path_needs_one_element_to_pass_every_part() {
        let u = bjensen();
        assert!(user_matches(
            r#"emails[type eq "work" and value co "@example.com"]"#,
            &u
        ));
        assert!(!user_matches(
            r#"emails[type eq "home" and value co "@example.com"]"#,
            &u
        ));
        assert!(user_matches(
            r#"emails[type eq "home"] and emails[value co "@example.com"]"#,
            &u
        ));
        assert!(user_matches(r#"emails[not (type eq "work")]"#, &u));
        assert!(user_matches(
            r#"emails[type eq "work"].value eq "BJENSEN@example.com""#,
            &u
        ));
        assert!(!user_matches(
            r#"emails[type eq "home"].value eq "bjensen@example.com""#,
            &u
        ));
        assert!(
            user_matches(r#"emails co "jensen.org""#, &u),
            "value by default"
        );
        assert!(user_matches(r#"emails.type eq "WORK""#, &u));
    }

    #[test]
    fn ne_on_a_multi_valued_attribute_asks_for_some_other_value() {
        let one = json!({"emails": [{"value": "x@a"}]});
        let two = json!({"emails": [{"value": "x@a"}, {"value": "y@a"}]});
        let untyped = json!({"emails": [{"type": "work"}]});
        let none = json!({"userName": "n"});
        let raw = r#"emails.value ne "x@a""#;
        assert!(!user_matches(raw, &one));
        assert!(user_matches(raw, &two));
        assert!(!user_matches(raw, &untyped), "an element without value");
        assert!(!user_matches(raw, &none));
        assert!(user_matches(&format!("not ({raw})"), &none));
    }

    #[test]
    fn extension_attributes_live_under_their_urn() {
        let u = bjensen();
        assert!(user_matches(
            &format!(r#"{ENTERPRISE_USER_URN}:department eq "tour operations""#),
            &u
        ));
        assert!(user_matches(
            &format!(r#"{ENTERPRISE_USER_URN}:manager.value eq "M-1""#),
            &u
        ));
        assert!(!user_matches(
            &format!(r#"{ENTERPRISE_USER_URN}:manager.value eq "m-1""#),
            &u
        ));
        let odd_case = json!({ENTERPRISE_USER_URN.to_uppercase(): {"Department": "R&D"}});
        assert!(user_matches(
            &format!(r#"{ENTERPRISE_USER_URN}:department eq "r&d""#),
            &odd_case
        ));
    }

    #[test]
    fn members_and_groups_are_tested_by_value_display_and_type() {
        let r = Registry::core();
        let g = json!({
            "displayName": "Admins",
            "members": [
                {"value": "u-1", "display": "Babs", "type": "User", "$ref": "https://x/Users/u-1"},
                {"value": "g-2", "display": "Ops", "type": "Group"}
            ]
        });
        let group = |raw: &str| {
            let f = parse_filter(r, r.group(), raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
            matches(&f, &g)
        };
        assert!(group(r#"members eq "u-1""#));
        assert!(group(r#"members.value eq "g-2""#));
        assert!(
            !group(r#"members.value eq "U-1""#),
            "member ids are case-exact"
        );
        assert!(group(r#"members[type eq "group" and display sw "op"]"#));
        assert!(!group(r#"members[type eq "user" and display sw "op"]"#));
        assert!(group("members pr"));
        assert!(!matches(
            &parse_filter(r, r.group(), "members pr").unwrap(),
            &json!({"displayName": "Empty"})
        ));
        let u = json!({"userName": "b", "groups": [
            {"value": "g-1", "display": "Admins", "type": "direct"},
            {"value": "g-0", "display": "Staff", "type": "indirect"}
        ]});
        assert!(user_matches(r#"groups eq "g-0""#, &u));
        assert!(user_matches(
            r#"groups[type eq "direct" and display eq "admins"]"#,
            &u
        ));
        assert!(!user_matches(r#"groups.display eq "nobody""#, &u));
    }

    #[test]
    fn and_or_not_and_grouping_combine_as_usual() {
        let u = bjensen();
        assert!(user_matches(r#"title pr or userType eq "Employee""#, &u));
        assert!(!user_matches(r#"title pr and userType eq "Employee""#, &u));
        assert!(user_matches(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            &u
        ));
        assert!(!user_matches(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            &u
        ));
        assert!(user_matches(r#"not (not (userName pr))"#, &u));
        assert!(user_matches(
            r#"userName eq "nobody" or active eq true and displayName sw "babs""#,
            &u
        ));
    }

    #[test]
    fn sorting_puts_missing_values_last_ascending_and_first_descending() {
        let r = Registry::core();
        let by = |attr: &str, order: &str| parse_sort(r, r.user(), attr, Some(order)).unwrap();
        let a = json!({"userName": "alice", "name": {"familyName": "b"}});
        let b = json!({"userName": "Bob", "name": {"familyName": "A"}});
        let c = json!({"userName": "carol"});
        let empty = json!({"userName": "dave", "name": {"familyName": ""}});
        let asc = by("name.familyName", "ascending");
        let desc = by("name.familyName", "descending");
        let mut people = vec![&c, &a, &empty, &b];
        people.sort_by(|x, y| compare_for_sort(&asc, x, y));
        assert_eq!(people, vec![&empty, &b, &a, &c]);
        people.sort_by(|x, y| compare_for_sort(&desc, x, y));
        assert_eq!(people, vec![&c, &a, &b, &empty]);
        let names = by("userName", "ascending");
        assert_eq!(compare_for_sort(&names, &a, &b), Ordering::Less, "folded");
        let ids = by("externalId", "ascending");
        let (x, y) = (json!({"externalId": "a"}), json!({"externalId": "B"}));
        assert_eq!(compare_for_sort(&ids, &x, &y), Ordering::Greater, "exact");
    }
}
