//! The reference evaluator: a typed filter over a resource's JSON representation, written
//! from RFC 7644 §3.4.2.2 alone. It is the specification the SQL compilation is tested
//! against (property tests on both backends); no list endpoint uses it.
