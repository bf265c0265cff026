//! SCIM queries (RFC 7644 §3.4.2): filters typed against the schema registry, sort keys and
//! a reference evaluator. The store compiles the same typed filter to SQL; the reference
//! evaluator over plain JSON is the specification the SQL is tested against.

mod ast;
pub mod eval;
mod normalize;
mod resolve;
mod search;

pub use ast::{Attr, CmpOp, Filter, Literal, Op, Relation, Sort, SortOrder};
pub use resolve::{parse_filter, parse_sort, parse_sort_order};
pub use search::search_document;
