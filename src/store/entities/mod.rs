//! SeaORM entities, one per table. They never leave the store: services get domain values.

pub mod admin_token;
pub mod app_credential;
pub mod app_credential_tenant;
pub mod audit;
pub mod group;
pub mod group_member;
pub mod outbox;
pub mod schema_job;
pub mod tenant;
pub mod tenant_schema;
pub mod token;
pub mod user;
