//! Tenant bearer tokens with scopes, optional expiry and revocation; stored as SHA-256.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tokens {
    Table,
    TenantId,
    Id,
    Name,
    TokenHash,
    Scopes,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
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
                    .table(Tokens::Table)
                    .col(ColumnDef::new(Tokens::TenantId).string_len(36).not_null())
                    .col(ColumnDef::new(Tokens::Id).string_len(36).not_null())
                    .col(ColumnDef::new(Tokens::Name).string_len(100).not_null())
                    .col(ColumnDef::new(Tokens::TokenHash).string_len(64).not_null())
                    .col(ColumnDef::new(Tokens::Scopes).string_len(200).not_null())
                    .col(ColumnDef::new(Tokens::CreatedAt).string_len(24).not_null())
                    .col(ColumnDef::new(Tokens::ExpiresAt).string_len(24).null())
                    .col(ColumnDef::new(Tokens::RevokedAt).string_len(24).null())
                    .col(ColumnDef::new(Tokens::LastUsedAt).string_len(24).null())
                    .primary_key(
                        Index::create()
                            .name("tokens_pkey")
                            .col(Tokens::TenantId)
                            .col(Tokens::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tokens_tenant_id_fkey")
                            .from(Tokens::Table, Tokens::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_tenant_id_token_hash_key")
                    .table(Tokens::Table)
                    .col(Tokens::TenantId)
                    .col(Tokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tokens::Table).to_owned())
            .await
    }
}
