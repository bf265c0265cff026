//! Tenancy and credentials (DESIGN 15): token secrets and their hashes, and the checks that
//! turn a bearer token into an authenticated tenant or admin before any routing.

pub mod auth;
pub mod token;
