//! The groups a group belongs to, apart: the walk up from a user's groups follows only
//! group-typed membership rows. A partial index keeps that step an index lookup on both
//! backends and keeps PostgreSQL's estimate of the walk (by which it sizes its hash
//! tables) small. Partial indexes are not expressible with sea-query's builder; both
//! backends accept the statement as written.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX group_members_nested_up_idx ON group_members \
                 (tenant_id, member_id, group_id) WHERE member_type = 'Group'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX group_members_nested_up_idx")
            .await?;
        Ok(())
    }
}
