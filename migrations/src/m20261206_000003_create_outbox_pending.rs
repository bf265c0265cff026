//! Events written but not yet numbered (PostgreSQL): writers insert here without touching
//! the tenant's counter, so one tenant's writes commit in parallel; the sequencer moves
//! them to `outbox` with their gap-free sequence (docs/decisions.md, Events). `position`
//! is the order of insertion, which a resource's writers take under its row lock. SQLite
//! writers number their events directly (one writer at a time) and leave it empty.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let position = match manager.get_database_backend() {
            DbBackend::Sqlite => "position INTEGER NOT NULL",
            _ => "position BIGINT GENERATED ALWAYS AS IDENTITY",
        };
        let conn = manager.get_connection();
        conn.execute_unprepared(&format!(
            "CREATE TABLE outbox_pending ( \
               tenant_id varchar(36) NOT NULL, \
               {position}, \
               id varchar(36) NOT NULL, \
               event_type text NOT NULL, \
               routing_key text NOT NULL, \
               subject text NOT NULL, \
               payload text NOT NULL, \
               created_at varchar(24) NOT NULL, \
               CONSTRAINT outbox_pending_pkey PRIMARY KEY (tenant_id, position), \
               CONSTRAINT outbox_pending_tenant_id_fkey FOREIGN KEY (tenant_id) \
                 REFERENCES tenants (id) ON DELETE CASCADE \
             )"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE outbox_pending")
            .await?;
        Ok(())
    }
}
