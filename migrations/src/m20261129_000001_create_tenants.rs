//! Tenants: the slug of the SCIM base URL and the per-tenant event counter.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Slug,
    EventSeq,
    CreatedAt,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(
                        ColumnDef::new(Tenants::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Tenants::Slug).string_len(63).not_null())
                    .col(
                        ColumnDef::new(Tenants::EventSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Tenants::CreatedAt).string_len(24).not_null())
                    .col(ColumnDef::new(Tenants::DeletedAt).string_len(24).null())
                    .to_owned(),
            )
            .await?;
        // A deleted tenant keeps its row (and so its slug) while its events are retained.
        manager
            .create_index(
                Index::create()
                    .name("tenants_slug_key")
                    .table(Tenants::Table)
                    .col(Tenants::Slug)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tenants::Table).to_owned())
            .await
    }
}
