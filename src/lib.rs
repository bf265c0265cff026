//! scimbus: a multi-tenant SCIM 2.0 service provider that turns every change into a
//! lifecycle event through a transactional outbox. Layers point one way:
//! `http → service → {store, events} → domain`; `scim` is pure protocol used by all.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod events;
pub mod failpoints;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod scim;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenancy;
