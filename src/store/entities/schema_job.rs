use sea_orm::entity::prelude::*;

use crate::domain::{TenantId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schema_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: TenantId,
    pub action: String,
    pub urn: String,
    pub resource_type: String,
    pub schema_version: i64,
    pub state: String,
    pub total: i64,
    pub processed: i64,
    pub after: Option<String>,
    pub non_conforming_count: i64,
    #[sea_orm(column_type = "Text")]
    pub non_conforming: String,
    pub error: Option<String>,
    pub actor: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
