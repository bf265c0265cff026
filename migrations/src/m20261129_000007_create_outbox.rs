//! The transactional outbox: one row per event, numbered by the tenant's gap-free sequence.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    TenantId,
    Sequence,
    Id,
    EventType,
    RoutingKey,
    Subject,
    Payload,
    CreatedAt,
    PublishedAt,
    Attempts,
    LastError,
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
                    .table(Outbox::Table)
                    .col(ColumnDef::new(Outbox::TenantId).string_len(36).not_null())
                    .col(ColumnDef::new(Outbox::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(Outbox::Id).string_len(36).not_null())
                    .col(ColumnDef::new(Outbox::EventType).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Outbox::RoutingKey)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Outbox::Subject).string_len(64).not_null())
                    .col(ColumnDef::new(Outbox::Payload).json_binary().not_null())
                    .col(ColumnDef::new(Outbox::CreatedAt).string_len(24).not_null())
                    .col(ColumnDef::new(Outbox::PublishedAt).string_len(24).null())
                    .col(
                        ColumnDef::new(Outbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Outbox::LastError).text().null())
                    .primary_key(
                        Index::create()
                            .name("outbox_pkey")
                            .col(Outbox::TenantId)
                            .col(Outbox::Sequence),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("outbox_tenant_id_fkey")
                            .from(Outbox::Table, Outbox::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_tenant_id_id_key")
                    .table(Outbox::Table)
                    .col(Outbox::TenantId)
                    .col(Outbox::Id)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The relay's scan: a tenant's unpublished events in sequence order.
        manager
            .create_index(
                Index::create()
                    .name("outbox_tenant_id_published_at_sequence_idx")
                    .table(Outbox::Table)
                    .col(Outbox::TenantId)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::Sequence)
                    .to_owned(),
            )
            .await?;
        // Retention prunes by age.
        manager
            .create_index(
                Index::create()
                    .name("outbox_tenant_id_created_at_idx")
                    .table(Outbox::Table)
                    .col(Outbox::TenantId)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
