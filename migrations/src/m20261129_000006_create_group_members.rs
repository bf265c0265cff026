//! Group membership as rows, never a JSON array: one member added costs one row.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    TenantId,
    GroupId,
    MemberId,
    MemberType,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    TenantId,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(
                        ColumnDef::new(GroupMembers::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMembers::GroupId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMembers::MemberId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMembers::MemberType)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(GroupMembers::CreatedAt)
                            .string_len(24)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .name("group_members_pkey")
                            .col(GroupMembers::TenantId)
                            .col(GroupMembers::GroupId)
                            .col(GroupMembers::MemberId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("group_members_group_fkey")
                            .from(
                                GroupMembers::Table,
                                (GroupMembers::TenantId, GroupMembers::GroupId),
                            )
                            .to(Groups::Table, (Groups::TenantId, Groups::Id))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("group_members_tenant_id_member_id_idx")
                    .table(GroupMembers::Table)
                    .col(GroupMembers::TenantId)
                    .col(GroupMembers::MemberId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GroupMembers::Table).to_owned())
            .await
    }
}
