//! Groups: the SCIM document (without members) as JSON with hot columns beside it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Groups {
    Table,
    TenantId,
    Id,
    DisplayName,
    DisplayNameCi,
    ExternalId,
    Resource,
    Version,
    CreatedAt,
    UpdatedAt,
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
                    .table(Groups::Table)
                    .col(ColumnDef::new(Groups::TenantId).string_len(36).not_null())
                    .col(ColumnDef::new(Groups::Id).string_len(36).not_null())
                    .col(ColumnDef::new(Groups::DisplayName).text().not_null())
                    .col(ColumnDef::new(Groups::DisplayNameCi).text().not_null())
                    .col(ColumnDef::new(Groups::ExternalId).text().null())
                    .col(ColumnDef::new(Groups::Resource).json_binary().not_null())
                    .col(ColumnDef::new(Groups::Version).big_integer().not_null())
                    .col(ColumnDef::new(Groups::CreatedAt).string_len(24).not_null())
                    .col(ColumnDef::new(Groups::UpdatedAt).string_len(24).not_null())
                    .primary_key(
                        Index::create()
                            .name("groups_pkey")
                            .col(Groups::TenantId)
                            .col(Groups::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("groups_tenant_id_fkey")
                            .from(Groups::Table, Groups::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Entra requires unique group names; /Schemas says `uniqueness: server`.
        manager
            .create_index(
                Index::create()
                    .name("groups_tenant_id_display_name_ci_key")
                    .table(Groups::Table)
                    .col(Groups::TenantId)
                    .col(Groups::DisplayNameCi)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("groups_tenant_id_external_id_idx")
                    .table(Groups::Table)
                    .col(Groups::TenantId)
                    .col(Groups::ExternalId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("groups_tenant_id_created_at_id_idx")
                    .table(Groups::Table)
                    .col(Groups::TenantId)
                    .col(Groups::CreatedAt)
                    .col(Groups::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Groups::Table).to_owned())
            .await
    }
}
