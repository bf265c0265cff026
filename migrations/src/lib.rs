//! Database migrations of scimbus, one change per file and append-only. Each migration is
//! self-contained (its own `DeriveIden` enums); timestamps are fixed-width UTC text and ids
//! are UUID text, so both backends store and compare them the same way.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_create_tenants;
mod m20261129_000002_create_admin_tokens;
mod m20261129_000003_create_tokens;
mod m20261129_000004_create_users;
mod m20261129_000005_create_groups;
mod m20261129_000006_create_group_members;
mod m20261129_000007_create_outbox;
mod m20261129_000008_add_outbox_failed_at;
mod m20261129_000009_add_search_documents;
mod m20261129_000010_add_tenant_lifecycle;
mod m20261129_000011_create_audit_log;
mod m20261129_000012_create_tenant_schemas;
mod m20261129_000013_add_tenant_schema_version;
mod m20261206_000001_cover_group_members_by_member;
mod m20261206_000002_add_group_members_nested_idx;
mod m20261206_000003_create_outbox_pending;
mod m20261206_000004_add_group_members_nested_up_idx;
mod m20261207_000001_tenant_tombstones_and_lengths;
mod m20261208_000001_create_app_credentials;
mod m20261208_000002_create_tenant_brakes;
mod m20261209_000001_create_request_journal;
mod m20261210_000001_create_schema_jobs;
mod m20261211_000001_compact_request_journal;
mod m20261211_000002_create_security_event_tables;
mod m20261212_000001_add_set_push;
mod m20261213_000001_add_group_poll;
mod m20261214_000001_create_setup_links;
mod m20261214_000002_create_console_sessions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_tenants::Migration),
            Box::new(m20261129_000002_create_admin_tokens::Migration),
            Box::new(m20261129_000003_create_tokens::Migration),
            Box::new(m20261129_000004_create_users::Migration),
            Box::new(m20261129_000005_create_groups::Migration),
            Box::new(m20261129_000006_create_group_members::Migration),
            Box::new(m20261129_000007_create_outbox::Migration),
            Box::new(m20261129_000008_add_outbox_failed_at::Migration),
            Box::new(m20261129_000009_add_search_documents::Migration),
            Box::new(m20261129_000010_add_tenant_lifecycle::Migration),
            Box::new(m20261129_000011_create_audit_log::Migration),
            Box::new(m20261129_000012_create_tenant_schemas::Migration),
            Box::new(m20261129_000013_add_tenant_schema_version::Migration),
            Box::new(m20261206_000001_cover_group_members_by_member::Migration),
            Box::new(m20261206_000002_add_group_members_nested_idx::Migration),
            Box::new(m20261206_000003_create_outbox_pending::Migration),
            Box::new(m20261206_000004_add_group_members_nested_up_idx::Migration),
            Box::new(m20261207_000001_tenant_tombstones_and_lengths::Migration),
            Box::new(m20261208_000001_create_app_credentials::Migration),
            Box::new(m20261208_000002_create_tenant_brakes::Migration),
            Box::new(m20261209_000001_create_request_journal::Migration),
            Box::new(m20261210_000001_create_schema_jobs::Migration),
            Box::new(m20261211_000001_compact_request_journal::Migration),
            Box::new(m20261211_000002_create_security_event_tables::Migration),
            Box::new(m20261212_000001_add_set_push::Migration),
            Box::new(m20261213_000001_add_group_poll::Migration),
            Box::new(m20261214_000001_create_setup_links::Migration),
            Box::new(m20261214_000002_create_console_sessions::Migration),
        ]
    }
}
