use sea_orm::entity::prelude::*;

use crate::domain::{ResourceId, TenantId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ResourceId,
    pub display_name: String,
    pub display_name_ci: String,
    pub external_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub resource: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub search: Option<Json>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
