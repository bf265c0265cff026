//! Customer setup links (docs/decisions.md, Setup links): an operator's expiring, single-use link through which a
//! tenant's IdP admin takes the SCIM base URL, one token and the Okta or Entra steps. The
//! link and the session of the browser that used it are kept as SHA-256 hashes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SetupLinks {
    Table,
    Id,
    TenantId,
    LinkHash,
    CreatedAt,
    CreatedBy,
    ExpiresAt,
    UsedAt,
    SessionHash,
    TokenId,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let at = |c: SetupLinks| ColumnDef::new(c).string_len(24).null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(SetupLinks::Table)
                    .col(
                        ColumnDef::new(SetupLinks::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SetupLinks::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SetupLinks::LinkHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SetupLinks::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SetupLinks::CreatedBy).text().not_null())
                    .col(
                        ColumnDef::new(SetupLinks::ExpiresAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(at(SetupLinks::UsedAt))
                    .col(
                        ColumnDef::new(SetupLinks::SessionHash)
                            .string_len(64)
                            .null(),
                    )
                    .col(ColumnDef::new(SetupLinks::TokenId).string_len(36).null())
                    .col(at(SetupLinks::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("setup_links_tenant_id_fkey")
                            .from(SetupLinks::Table, SetupLinks::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setup_links_link_hash_key")
                    .table(SetupLinks::Table)
                    .col(SetupLinks::LinkHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setup_links_tenant_idx")
                    .table(SetupLinks::Table)
                    .col(SetupLinks::TenantId)
                    .col(SetupLinks::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SetupLinks::Table).to_owned())
            .await
    }
}
