//! The typed filter: every attribute resolved against the registry to its canonical path,
//! type and case sensitivity; literals checked against the type.

use serde_json::Number;

use crate::scim::schema::AttrType;

/// A resolved attribute: its canonical path in the representation (`["userName"]`,
/// `["name", "givenName"]`, `[<extension URN>, "department"]`, `["meta", "created"]`),
/// relative to an element inside [`Filter::Any`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub path: Vec<String>,
    pub ty: AttrType,
    pub case_exact: bool,
}

impl Attr {
    /// The dotted name, for messages.
    pub fn name(&self) -> String {
        self.path.join(".")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value, already of the attribute's type (dateTime literals normalised to
/// the fixed-width form; strings of case-insensitive attributes are compared folded).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Num(Number),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `pr`: present, not null, not empty.
    Present,
    Cmp(CmpOp, Literal),
}

/// Where a multi-valued relation lives outside the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// A group's `members`.
    Members,
    /// A user's `groups` (direct memberships).
    Groups,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// Always true (e.g. the element test of `emails pr`).
    True,
    /// A test on a singular attribute.
    Test(Attr, Op),
    /// Some element of the multi-valued attribute at `path` passes `filter`, whose
    /// attributes are relative to the element.
    Any {
        path: Vec<String>,
        filter: Box<Filter>,
    },
    /// Some member (or group) passes `filter` over `value`, `display` and `type`.
    Related {
        relation: Relation,
        filter: Box<Filter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

/// `sortBy` and `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub attr: Attr,
    pub order: SortOrder,
}
