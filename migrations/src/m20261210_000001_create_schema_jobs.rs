//! Schema jobs (docs/decisions.md, "Schema extensions"): the re-index that follows a
//! registration, update or removal of a tenant's schema extension, run in the background
//! in batches. The row is the job's whole state — its cursor (`after`) and counts commit
//! with each batch — so a job resumes where it stopped after a restart, on whichever
//! replica takes its lease.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SchemaJobs {
    Table,
    Id,
    TenantId,
    Action,
    Urn,
    ResourceType,
    SchemaVersion,
    State,
    Total,
    Processed,
    After,
    NonConformingCount,
    NonConforming,
    Error,
    Actor,
    LeaseOwner,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SchemaJobs::Table)
                    .col(
                        ColumnDef::new(SchemaJobs::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SchemaJobs::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SchemaJobs::Action).string_len(16).not_null())
                    .col(ColumnDef::new(SchemaJobs::Urn).text().not_null())
                    .col(
                        ColumnDef::new(SchemaJobs::ResourceType)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SchemaJobs::SchemaVersion)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SchemaJobs::State).string_len(16).not_null())
                    .col(ColumnDef::new(SchemaJobs::Total).big_integer().not_null())
                    .col(
                        ColumnDef::new(SchemaJobs::Processed)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SchemaJobs::After).text().null())
                    .col(
                        ColumnDef::new(SchemaJobs::NonConformingCount)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SchemaJobs::NonConforming).text().not_null())
                    .col(ColumnDef::new(SchemaJobs::Error).text().null())
                    .col(ColumnDef::new(SchemaJobs::Actor).text().not_null())
                    .col(ColumnDef::new(SchemaJobs::LeaseOwner).text().null())
                    .col(ColumnDef::new(SchemaJobs::LeaseUntil).string_len(24).null())
                    .col(
                        ColumnDef::new(SchemaJobs::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SchemaJobs::UpdatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SchemaJobs::FinishedAt).string_len(24).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("schema_jobs_tenant_id_fkey")
                            .from(SchemaJobs::Table, SchemaJobs::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A tenant's jobs newest first (the admin API's list); `id` is a UUIDv7.
        manager
            .create_index(
                Index::create()
                    .name("schema_jobs_tenant_id_id_idx")
                    .table(SchemaJobs::Table)
                    .col(SchemaJobs::TenantId)
                    .col(SchemaJobs::Id)
                    .to_owned(),
            )
            .await?;
        // The workers' poll: the few unfinished jobs, without reading the finished ones.
        manager
            .create_index(
                Index::create()
                    .name("schema_jobs_state_idx")
                    .table(SchemaJobs::Table)
                    .col(SchemaJobs::State)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SchemaJobs::Table).to_owned())
            .await
    }
}
