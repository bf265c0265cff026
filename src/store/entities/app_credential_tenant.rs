use sea_orm::entity::prelude::*;

use crate::domain::TenantId;

/// A tenant an application credential (not covering all tenants) may read.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_credential_tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub credential_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: TenantId,
    /// The tenant's slug (never changes), for the listing in slug order.
    pub tenant_slug: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
