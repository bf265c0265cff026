//! Receivers of an application credential that poll (RFC 8936): the group holds the
//! receiver's credential (its hash, unique like a tenant receiver's), and its lanes, one
//! per tenant, are polled together through it. A push group has none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SetReceiverGroups {
    Table,
    TokenHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SetReceiverGroups::Table)
                    .add_column(
                        ColumnDef::new(SetReceiverGroups::TokenHash)
                            .string_len(64)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("set_receiver_groups_token_hash_key")
                    .table(SetReceiverGroups::Table)
                    .col(SetReceiverGroups::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("set_receiver_groups_token_hash_key")
                    .table(SetReceiverGroups::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SetReceiverGroups::Table)
                    .drop_column(SetReceiverGroups::TokenHash)
                    .to_owned(),
            )
            .await
    }
}
