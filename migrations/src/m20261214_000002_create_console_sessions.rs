//! Operator console sessions (docs/decisions.md, Operator console): one row per signed-in
//! browser, found by the SHA-256 of its cookie, naming the admin token it signed in with
//! (revoking the token ends its sessions) and the session's CSRF token.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    SessionHash,
    TokenId,
    Csrf,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .col(
                        ColumnDef::new(ConsoleSessions::SessionHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::TokenId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::Csrf)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ConsoleSessions::ExpiresAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConsoleSessions::Table).to_owned())
            .await
    }
}
