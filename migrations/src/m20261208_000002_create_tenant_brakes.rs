//! The mass-deprovisioning brake (DESIGN 20): per tenant, its settings, the sliding-window
//! counters of deprovisioning events (updated when events are numbered, O(1) each), the
//! share denominators, and the hold (`held_from`: the first sequence no consumer may see
//! before an operator releases). Discarded events are marked in the outbox.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TenantBrakes {
    Table,
    TenantId,
    Settings,
    WindowStart,
    UsersCur,
    UsersPrev,
    MembersCur,
    MembersPrev,
    GroupsCur,
    GroupsPrev,
    BaseUsers,
    BaseMembers,
    BaseGroups,
    BaseAt,
    HeldFrom,
    HeldAt,
    Tripped,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    DiscardedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let counter = |c: TenantBrakes| {
            ColumnDef::new(c)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned()
        };
        manager
            .create_table(
                Table::create()
                    .table(TenantBrakes::Table)
                    .col(
                        ColumnDef::new(TenantBrakes::TenantId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TenantBrakes::Settings).text().null())
                    .col(counter(TenantBrakes::WindowStart))
                    .col(counter(TenantBrakes::UsersCur))
                    .col(counter(TenantBrakes::UsersPrev))
                    .col(counter(TenantBrakes::MembersCur))
                    .col(counter(TenantBrakes::MembersPrev))
                    .col(counter(TenantBrakes::GroupsCur))
                    .col(counter(TenantBrakes::GroupsPrev))
                    .col(counter(TenantBrakes::BaseUsers))
                    .col(counter(TenantBrakes::BaseMembers))
                    .col(counter(TenantBrakes::BaseGroups))
                    .col(counter(TenantBrakes::BaseAt))
                    .col(ColumnDef::new(TenantBrakes::HeldFrom).big_integer().null())
                    .col(ColumnDef::new(TenantBrakes::HeldAt).string_len(24).null())
                    .col(ColumnDef::new(TenantBrakes::Tripped).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("tenant_brakes_tenant_id_fkey")
                            .from(TenantBrakes::Table, TenantBrakes::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::DiscardedAt).string_len(24).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::DiscardedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(TenantBrakes::Table).to_owned())
            .await
    }
}
