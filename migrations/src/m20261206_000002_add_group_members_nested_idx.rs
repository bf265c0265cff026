//! The group-typed members of a group, apart: the cycle check walks down through nested
//! groups only, and must not read a group's 100 000 user members to find its few groups.
//! Partial indexes are not expressible with sea-query's builder; both backends accept the
//! statement as written.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX group_members_nested_idx ON group_members \
                 (tenant_id, group_id, member_id) WHERE member_type = 'Group'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX group_members_nested_idx")
            .await?;
        Ok(())
    }
}
