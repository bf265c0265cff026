use sea_orm::entity::prelude::*;

use crate::domain::{TenantId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TenantId,
    pub slug: String,
    pub event_seq: i64,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub events_pruned_through: i64,
    pub purged_at: Option<Timestamp>,
    pub schema_version: i64,
    pub purge_failures: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
