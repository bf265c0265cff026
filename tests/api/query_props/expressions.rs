//! The filters' expressions (and, or, not over leaves) and the cases: a filter with an
//! optional sort and page size.

use proptest::prelude::*;
use proptest::sample::select;

use super::leaves::{Leaf, Pool, leaf};

/// A whole filter.
#[derive(Debug, Clone)]
pub(super) enum Expr {
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
    pub(super) fn render(&self, pool: &Pool) -> String {
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
pub(super) struct Case {
    pub(super) filter: Expr,
    sort: Option<(usize, bool)>,
    pub(super) page: usize,
}

pub(super) fn case() -> impl Strategy<Value = Case> {
    (
        expr(),
        prop::option::weighted(0.4, (0..SORT_KEYS.len(), any::<bool>())),
        select(&[1000_usize, 1000, 7][..]),
    )
        .prop_map(|(filter, sort, page)| Case { filter, sort, page })
}

impl Case {
    pub(super) fn sort(&self) -> Option<(&'static str, &'static str)> {
        self.sort.map(|(key, descending)| {
            let order = if descending {
                "descending"
            } else {
                "ascending"
            };
            (SORT_KEYS[key], order)
        })
    }

    pub(super) fn describe(&self, pool: &Pool) -> String {
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
