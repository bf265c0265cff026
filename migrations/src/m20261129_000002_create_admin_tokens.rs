//! Named admin tokens for `/admin/v1`; the secret is stored only as its SHA-256.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminTokens {
    Table,
    Id,
    Name,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AdminTokens::Table)
                    .col(
                        ColumnDef::new(AdminTokens::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AdminTokens::Name).string_len(100).not_null())
                    .col(
                        ColumnDef::new(AdminTokens::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AdminTokens::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AdminTokens::ExpiresAt).string_len(24).null())
                    .col(ColumnDef::new(AdminTokens::RevokedAt).string_len(24).null())
                    .col(
                        ColumnDef::new(AdminTokens::LastUsedAt)
                            .string_len(24)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("admin_tokens_token_hash_key")
                    .table(AdminTokens::Table)
                    .col(AdminTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AdminTokens::Table).to_owned())
            .await
    }
}
