//! Users: the SCIM document as JSON with hot columns beside it (DESIGN 7).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    TenantId,
    Id,
    UserName,
    UserNameCi,
    ExternalId,
    Active,
    DisplayName,
    DisplayNameCi,
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
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::TenantId).string_len(36).not_null())
                    .col(ColumnDef::new(Users::Id).string_len(36).not_null())
                    .col(ColumnDef::new(Users::UserName).text().not_null())
                    .col(ColumnDef::new(Users::UserNameCi).text().not_null())
                    .col(ColumnDef::new(Users::ExternalId).text().null())
                    .col(ColumnDef::new(Users::Active).boolean().not_null())
                    .col(ColumnDef::new(Users::DisplayName).text().null())
                    .col(ColumnDef::new(Users::DisplayNameCi).text().null())
                    .col(ColumnDef::new(Users::Resource).json_binary().not_null())
                    .col(ColumnDef::new(Users::Version).big_integer().not_null())
                    .col(ColumnDef::new(Users::CreatedAt).string_len(24).not_null())
                    .col(ColumnDef::new(Users::UpdatedAt).string_len(24).not_null())
                    .primary_key(
                        Index::create()
                            .name("users_pkey")
                            .col(Users::TenantId)
                            .col(Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("users_tenant_id_fkey")
                            .from(Users::Table, Users::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_id_user_name_ci_key")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::UserNameCi)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_id_external_id_idx")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::ExternalId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_id_display_name_ci_idx")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::DisplayNameCi)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_id_created_at_id_idx")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::CreatedAt)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}
