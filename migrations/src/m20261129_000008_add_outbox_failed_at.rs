//! Outbox: `failed_at` parks an event that can never be published (e.g. larger than the
//! broker accepts), and a partial index serves the relay's scan of unpublished events.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    FailedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::FailedAt).string_len(24).null())
                    .to_owned(),
            )
            .await?;
        // Partial indexes are not expressible with sea-query's builder; both backends
        // accept this statement as written.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX outbox_tenant_id_sequence_unpublished_idx ON outbox \
                 (tenant_id, sequence) WHERE published_at IS NULL AND failed_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX outbox_tenant_id_sequence_unpublished_idx")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::FailedAt)
                    .to_owned(),
            )
            .await
    }
}
