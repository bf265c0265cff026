//! Security event tokens (RFC 9967): the signing keys (private keys sealed with
//! `SCIMBUS_SET_KEY_SECRET`, public JWKs as published), the receivers of a tenant's SETs
//! with their poll credential (SHA-256, like tokens) and acknowledged position in the
//! tenant's event sequence, and the acknowledgements received beyond that position.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SetKeys {
    Table,
    Kid,
    Alg,
    PublicJwk,
    SealedKey,
    CreatedAt,
    ReplacedAt,
    UnpublishAt,
}

#[derive(DeriveIden)]
enum SetReceivers {
    Table,
    Id,
    TenantId,
    Name,
    Form,
    Events,
    Signals,
    Alg,
    Audience,
    TokenHash,
    Position,
    CreatedAt,
    LastPolledAt,
}

#[derive(DeriveIden)]
enum SetAcks {
    Table,
    ReceiverId,
    Jti,
    Sequence,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

fn text(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SetKeys::Table)
                    .col(text(SetKeys::Kid, 32).primary_key())
                    .col(text(SetKeys::Alg, 8))
                    .col(ColumnDef::new(SetKeys::PublicJwk).text().not_null())
                    .col(ColumnDef::new(SetKeys::SealedKey).blob().not_null())
                    .col(text(SetKeys::CreatedAt, 24))
                    .col(ColumnDef::new(SetKeys::ReplacedAt).string_len(24).null())
                    .col(ColumnDef::new(SetKeys::UnpublishAt).string_len(24).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SetReceivers::Table)
                    .col(text(SetReceivers::Id, 36).primary_key())
                    .col(text(SetReceivers::TenantId, 36))
                    .col(text(SetReceivers::Name, 100))
                    .col(text(SetReceivers::Form, 8))
                    .col(ColumnDef::new(SetReceivers::Events).text().not_null())
                    .col(ColumnDef::new(SetReceivers::Signals).boolean().not_null())
                    .col(text(SetReceivers::Alg, 8))
                    .col(ColumnDef::new(SetReceivers::Audience).text().not_null())
                    .col(text(SetReceivers::TokenHash, 64))
                    .col(
                        ColumnDef::new(SetReceivers::Position)
                            .big_integer()
                            .not_null(),
                    )
                    .col(text(SetReceivers::CreatedAt, 24))
                    .col(
                        ColumnDef::new(SetReceivers::LastPolledAt)
                            .string_len(24)
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("set_receivers_tenant_id_fkey")
                            .from(SetReceivers::Table, SetReceivers::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("set_receivers_token_hash_key")
                    .table(SetReceivers::Table)
                    .col(SetReceivers::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("set_receivers_tenant_id_idx")
                    .table(SetReceivers::Table)
                    .col(SetReceivers::TenantId)
                    .col(SetReceivers::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SetAcks::Table)
                    .col(text(SetAcks::ReceiverId, 36))
                    .col(ColumnDef::new(SetAcks::Jti).string_len(64).not_null())
                    .col(ColumnDef::new(SetAcks::Sequence).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .name("set_acks_pkey")
                            .col(SetAcks::ReceiverId)
                            .col(SetAcks::Jti),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("set_acks_receiver_id_sequence_idx")
                    .table(SetAcks::Table)
                    .col(SetAcks::ReceiverId)
                    .col(SetAcks::Sequence)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SetAcks::Table.into_iden(),
            SetReceivers::Table.into_iden(),
            SetKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
