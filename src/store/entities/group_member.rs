use sea_orm::entity::prelude::*;

use crate::domain::{ResourceId, TenantId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: ResourceId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: ResourceId,
    /// `User` or `Group`.
    pub member_type: String,
    pub created_at: Timestamp,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
