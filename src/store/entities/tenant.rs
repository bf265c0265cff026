use sea_orm::entity::prelude::*;

use crate::domain::TenantId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TenantId,
    pub slug: String,
    pub event_seq: i64,
    pub created_at: String,
    pub deleted_at: Option<String>,
    pub events_pruned_through: i64,
    pub purged_at: Option<String>,
    pub schema_version: i64,
    pub purge_failures: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
