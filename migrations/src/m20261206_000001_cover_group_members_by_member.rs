//! A member's own membership rows come from one index that also holds the group id:
//! `(tenant_id, member_id, group_id)` replaces `(tenant_id, member_id)`. Without the group
//! id in it, SQLite preferred the covering primary key and read the tenant's whole
//! membership table for a user's groups.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "CREATE INDEX group_members_tenant_id_member_id_group_id_idx ON group_members \
             (tenant_id, member_id, group_id)",
        )
        .await?;
        conn.execute_unprepared("DROP INDEX group_members_tenant_id_member_id_idx")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "CREATE INDEX group_members_tenant_id_member_id_idx ON group_members \
             (tenant_id, member_id)",
        )
        .await?;
        conn.execute_unprepared("DROP INDEX group_members_tenant_id_member_id_group_id_idx")
            .await?;
        Ok(())
    }
}
