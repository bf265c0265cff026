//! A tenant's registered schema extensions (definitions as sent; `scim::extension` parses).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::Value;

use super::StoreError;
use super::entities::tenant_schema;
use crate::domain::{TenantId, Timestamp};

/// A stored definition.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub urn: String,
    pub resource_type: String,
    pub definition: Value,
    pub created_at: Timestamp,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    schema: StoredSchema,
) -> Result<(), StoreError> {
    tenant_schema::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        urn: Set(schema.urn),
        resource_type: Set(schema.resource_type),
        definition: Set(schema.definition),
        created_at: Set(schema.created_at),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The tenant's definitions in registration order.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<Vec<StoredSchema>, StoreError> {
    Ok(tenant_schema::Entity::find()
        .filter(tenant_schema::Column::TenantId.eq(tenant_id))
        .order_by_asc(tenant_schema::Column::CreatedAt)
        .order_by_asc(tenant_schema::Column::Urn)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| StoredSchema {
            urn: m.urn,
            resource_type: m.resource_type,
            definition: m.definition,
            created_at: m.created_at,
        })
        .collect())
}

/// One definition of the tenant (the URN compared exactly, as registered).
pub async fn find(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    urn: &str,
) -> Result<Option<StoredSchema>, StoreError> {
    Ok(list(conn, tenant_id)
        .await?
        .into_iter()
        .find(|s| s.urn.eq_ignore_ascii_case(urn)))
}

/// Replaces a definition (same URN and resource type).
pub async fn replace(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    urn: &str,
    definition: Value,
) -> Result<(), StoreError> {
    tenant_schema::Entity::update_many()
        .col_expr(
            tenant_schema::Column::Definition,
            sea_orm::sea_query::Expr::value(definition),
        )
        .filter(tenant_schema::Column::TenantId.eq(tenant_id))
        .filter(tenant_schema::Column::Urn.eq(urn))
        .exec(conn)
        .await?;
    Ok(())
}

/// Removes a definition.
pub async fn delete(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    urn: &str,
) -> Result<(), StoreError> {
    tenant_schema::Entity::delete_many()
        .filter(tenant_schema::Column::TenantId.eq(tenant_id))
        .filter(tenant_schema::Column::Urn.eq(urn))
        .exec(conn)
        .await?;
    Ok(())
}
