//! The audit log of admin actions (tenants, tokens, event purges): who did what, when, to
//! which tenant. Not tenant-owned: it outlives the tenants it names, so it keys on time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Tenant,
    Target,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    // UUIDv7: text order is time order, so the key pages the log.
                    .col(
                        ColumnDef::new(AuditLog::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditLog::At).string_len(24).not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string_len(200).not_null())
                    .col(ColumnDef::new(AuditLog::Action).string_len(64).not_null())
                    .col(ColumnDef::new(AuditLog::Tenant).string_len(63).null())
                    .col(ColumnDef::new(AuditLog::Target).string_len(300).null())
                    .col(ColumnDef::new(AuditLog::Detail).json_binary().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_log_tenant_id_idx")
                    .table(AuditLog::Table)
                    .col(AuditLog::Tenant)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}
