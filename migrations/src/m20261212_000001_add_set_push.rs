//! Push delivery of security event tokens (RFC 8935): a receiver is polled or pushed to.
//! A push receiver has an endpoint, an optional `Authorization` value (sealed like the
//! signing keys), and the state of its lane: consecutive failures, when the next attempt
//! is due, since when it fails, the last error, a lease (until when, and the token of the
//! batch that holds it) that keeps one process on its lane,
//! and how many SETs it refused for good (parked, listed in `set_parked`). A receiver
//! registered for an application credential is a row of `set_receiver_groups` and a lane
//! per tenant the credential reads (`group_id`, `app_id`; one per group and tenant).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SetReceivers {
    Table,
    TenantId,
    Delivery,
    Endpoint,
    AuthSealed,
    State,
    Attempts,
    RetryAt,
    FailingSince,
    LastError,
    LeaseUntil,
    LeaseOwner,
    DeliveredAt,
    Parked,
    GroupId,
    AppId,
}

/// A receiver of an application credential: what its lanes share (name, form, events,
/// signals, algorithm, audience, endpoint as JSON; the sealed authorization); its lanes
/// are rows of `set_receivers` with its id as `group_id`.
#[derive(DeriveIden)]
enum SetReceiverGroups {
    Table,
    Id,
    AppId,
    Settings,
    AuthSealed,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SetParked {
    Table,
    ReceiverId,
    Jti,
    Sequence,
    Err,
    Description,
    ParkedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        let columns = [
            ColumnDef::new(SetReceivers::Delivery)
                .string_len(8)
                .not_null()
                .default("poll")
                .to_owned(),
            ColumnDef::new(SetReceivers::Endpoint)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::AuthSealed)
                .blob()
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::State)
                .string_len(8)
                .not_null()
                .default("ok")
                .to_owned(),
            ColumnDef::new(SetReceivers::Attempts)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(SetReceivers::RetryAt)
                .string_len(24)
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::FailingSince)
                .string_len(24)
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::LastError)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::LeaseUntil)
                .string_len(24)
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::LeaseOwner)
                .string_len(36)
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::DeliveredAt)
                .string_len(24)
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::Parked)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(SetReceivers::GroupId)
                .string_len(36)
                .null()
                .to_owned(),
            ColumnDef::new(SetReceivers::AppId)
                .string_len(36)
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(SetReceivers::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // One lane per group and tenant, whatever replicas reconcile at once (a tenant
        // receiver's NULL group never collides).
        manager
            .create_index(
                Index::create()
                    .name("set_receivers_group_tenant_key")
                    .table(SetReceivers::Table)
                    .col(SetReceivers::GroupId)
                    .col(SetReceivers::TenantId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SetReceiverGroups::Table)
                    .col(
                        ColumnDef::new(SetReceiverGroups::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SetReceiverGroups::AppId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SetReceiverGroups::Settings)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SetReceiverGroups::AuthSealed).blob().null())
                    .col(
                        ColumnDef::new(SetReceiverGroups::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("set_receiver_groups_app_id_idx")
                    .table(SetReceiverGroups::Table)
                    .col(SetReceiverGroups::AppId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SetParked::Table)
                    .col(
                        ColumnDef::new(SetParked::ReceiverId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SetParked::Jti).string_len(64).not_null())
                    .col(ColumnDef::new(SetParked::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(SetParked::Err).string_len(64).not_null())
                    .col(ColumnDef::new(SetParked::Description).text().null())
                    .col(
                        ColumnDef::new(SetParked::ParkedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .name("set_parked_pkey")
                            .col(SetParked::ReceiverId)
                            .col(SetParked::Jti),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SetParked::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SetReceiverGroups::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("set_receivers_group_tenant_key")
                    .table(SetReceivers::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            SetReceivers::GroupId,
            SetReceivers::AppId,
            SetReceivers::Delivery,
            SetReceivers::Endpoint,
            SetReceivers::AuthSealed,
            SetReceivers::State,
            SetReceivers::Attempts,
            SetReceivers::RetryAt,
            SetReceivers::FailingSince,
            SetReceivers::LastError,
            SetReceivers::LeaseUntil,
            SetReceivers::LeaseOwner,
            SetReceivers::DeliveredAt,
            SetReceivers::Parked,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SetReceivers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
