//! The request journal's rows made cheaper to write (docs/decisions.md, Request journal):
//! both bodies in one compressed `bodies` column, the primary key `(tenant_id, id)` as the
//! only index, and no foreign key to `tenants` (the purge deletes a tenant's entries
//! itself). The journal is diagnostics bounded in age; the table is recreated empty, so an
//! upgrade starts every tenant's journal afresh.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RequestJournal {
    Table,
    Id,
    TenantId,
    At,
    Method,
    Target,
    Status,
    ScimType,
    DurationMs,
    RequestId,
    TokenName,
    Subject,
    Bodies,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RequestJournal::Table).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RequestJournal::Table)
                    .col(
                        ColumnDef::new(RequestJournal::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ColumnDef::new(RequestJournal::Id).string_len(36).not_null())
                    .col(ColumnDef::new(RequestJournal::At).string_len(24).not_null())
                    .col(
                        ColumnDef::new(RequestJournal::Method)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(RequestJournal::Target).text().not_null())
                    .col(ColumnDef::new(RequestJournal::Status).integer().not_null())
                    .col(ColumnDef::new(RequestJournal::ScimType).text().null())
                    .col(
                        ColumnDef::new(RequestJournal::DurationMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RequestJournal::RequestId).text().not_null())
                    .col(ColumnDef::new(RequestJournal::TokenName).text().not_null())
                    .col(ColumnDef::new(RequestJournal::Subject).text().null())
                    .col(ColumnDef::new(RequestJournal::Bodies).blob().not_null())
                    .primary_key(
                        Index::create()
                            .name("request_journal_pkey")
                            .col(RequestJournal::TenantId)
                            .col(RequestJournal::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Back to the earlier layout, empty as well.
        manager
            .drop_table(Table::drop().table(RequestJournal::Table).to_owned())
            .await?;
        super::m20261209_000001_create_request_journal::Migration
            .up(manager)
            .await
    }
}
