//! Pure SCIM protocol: the schema registry, request validation, case folding, time format,
//! filters, wire types and the RFC 7644 §3.12 error vocabulary. Imports nothing of scimbus.

pub mod discovery;
pub mod error;
pub mod extension;
pub mod fold;
pub mod patch;
pub mod projection;
pub mod query;
pub mod resource;
pub mod schema;
pub mod time;
pub mod validate;
