//! Application credentials: one secret that reads the events of a chosen set of tenants,
//! or of all (one app, many customer tenants; DESIGN 21). Stored as SHA-256 like tokens.
//! Also an index on tenant tokens' hash alone, so a tenant token can be recognised without
//! its tenant (the pull API's tenant listing).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AppCredentials {
    Table,
    Id,
    Name,
    TokenHash,
    AllTenants,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum AppCredentialTenants {
    Table,
    CredentialId,
    TenantId,
    TenantSlug,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    TokenHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AppCredentials::Table)
                    .col(
                        ColumnDef::new(AppCredentials::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::Name)
                            .string_len(100)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::AllTenants)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::ExpiresAt)
                            .string_len(24)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::RevokedAt)
                            .string_len(24)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AppCredentials::LastUsedAt)
                            .string_len(24)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AppCredentialTenants::Table)
                    .col(
                        ColumnDef::new(AppCredentialTenants::CredentialId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AppCredentialTenants::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    // A tenant's slug never changes: kept here, the listing of a
                    // credential's tenants pages one index in slug order.
                    .col(
                        ColumnDef::new(AppCredentialTenants::TenantSlug)
                            .string_len(63)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .name("app_credential_tenants_pkey")
                            .col(AppCredentialTenants::CredentialId)
                            .col(AppCredentialTenants::TenantId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("app_credential_tenants_credential_id_fkey")
                            .from(
                                AppCredentialTenants::Table,
                                AppCredentialTenants::CredentialId,
                            )
                            .to(AppCredentials::Table, AppCredentials::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("app_credential_tenants_tenant_id_fkey")
                            .from(AppCredentialTenants::Table, AppCredentialTenants::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("app_credential_tenants_credential_id_tenant_slug_key")
                    .table(AppCredentialTenants::Table)
                    .col(AppCredentialTenants::CredentialId)
                    .col(AppCredentialTenants::TenantSlug)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Removing a tenant deletes its grants through this index, not a scan.
        manager
            .create_index(
                Index::create()
                    .name("app_credential_tenants_tenant_id_idx")
                    .table(AppCredentialTenants::Table)
                    .col(AppCredentialTenants::TenantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tokens_token_hash_idx")
                    .table(Tokens::Table)
                    .col(Tokens::TokenHash)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("tokens_token_hash_idx")
                    .table(Tokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(AppCredentialTenants::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AppCredentials::Table).to_owned())
            .await
    }
}
