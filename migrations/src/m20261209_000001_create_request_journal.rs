//! The request journal (DESIGN 20): per tenant, its last SCIM requests with their redacted
//! bodies, written off the request path and bounded by count, body size and age. `id` is a
//! UUIDv7: in time order, so "newest first" and "keep the last N" read the primary key's
//! tenant index.

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
    RequestBody,
    ResponseBody,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RequestJournal::Table)
                    .col(
                        ColumnDef::new(RequestJournal::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RequestJournal::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
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
                    .col(ColumnDef::new(RequestJournal::RequestBody).text().null())
                    .col(ColumnDef::new(RequestJournal::ResponseBody).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("request_journal_tenant_id_fkey")
                            .from(RequestJournal::Table, RequestJournal::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_journal_tenant_id_id_idx")
                    .table(RequestJournal::Table)
                    .col(RequestJournal::TenantId)
                    .col(RequestJournal::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RequestJournal::Table).to_owned())
            .await
    }
}
