//! Schema extensions a tenant registered (custom attributes of Okta and Entra): the
//! RFC 7643 §7 definition as sent, keyed by tenant and URN.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TenantSchemas {
    Table,
    TenantId,
    Urn,
    ResourceType,
    Definition,
    CreatedAt,
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
                    .table(TenantSchemas::Table)
                    .col(
                        ColumnDef::new(TenantSchemas::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TenantSchemas::Urn)
                            .string_len(300)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TenantSchemas::ResourceType)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TenantSchemas::Definition)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TenantSchemas::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .name("tenant_schemas_pkey")
                            .col(TenantSchemas::TenantId)
                            .col(TenantSchemas::Urn),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tenant_schemas_tenant_id_fkey")
                            .from(TenantSchemas::Table, TenantSchemas::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantSchemas::Table).to_owned())
            .await
    }
}
