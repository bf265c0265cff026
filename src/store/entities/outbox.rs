use sea_orm::entity::prelude::*;

use crate::domain::{TenantId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    pub id: String,
    pub event_type: String,
    pub routing_key: String,
    pub subject: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub created_at: Timestamp,
    pub published_at: Option<Timestamp>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: Option<Timestamp>,
    /// Discarded by an operator from a brake's hold: never published nor served.
    pub discarded_at: Option<Timestamp>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
