//! Tenant removal that no value can wedge:
//! - `outbox.subject` holds `Tenants/<slug>` (71 characters for a 63-character slug):
//!   `varchar(64)` made every purge of such a tenant fail on PostgreSQL (SQLite does not
//!   enforce lengths). Widening a `varchar` is a catalog change, not a rewrite.
//! - `tenants.purge_failures` orders the purge queue: a tenant whose purge keeps failing
//!   goes behind the others instead of blocking every tenant deleted after it.
//! - `retired_slugs` keeps the slug of every removed tenant: consumers and routing keys
//!   know tenants by slug, so a slug is never given to another tenant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    PurgeFailures,
}

#[derive(DeriveIden)]
enum RetiredSlugs {
    Table,
    Slug,
    RetiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE outbox ALTER COLUMN subject TYPE varchar(255)")
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(
                        ColumnDef::new(Tenants::PurgeFailures)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RetiredSlugs::Table)
                    .col(
                        ColumnDef::new(RetiredSlugs::Slug)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RetiredSlugs::RetiredAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RetiredSlugs::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .drop_column(Tenants::PurgeFailures)
                    .to_owned(),
            )
            .await
    }
}
