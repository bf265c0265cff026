//! Groups: the SCIM document (without members) with hot columns beside it.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::Value;

use super::StoreError;
use super::entities::group;
use super::resources::Lock;
use crate::domain::{NewGroup, ResourceId, StoredGroup, TenantId, Timestamp};
use crate::scim::fold::fold;

pub(super) fn to_domain(m: group::Model) -> Result<StoredGroup, StoreError> {
    let Value::Object(document) = m.resource else {
        return Err(StoreError::Corrupt(format!(
            "group {} is not an object",
            m.id
        )));
    };
    Ok(StoredGroup {
        id: m.id,
        display_name: m.display_name,
        document,
        version: m.version,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn active_model(tenant_id: &TenantId, id: &ResourceId, new: NewGroup) -> group::ActiveModel {
    group::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        id: Set(id.to_owned()),
        display_name_ci: Set(fold(&new.hot.display_name)),
        display_name: Set(new.hot.display_name),
        external_id: Set(new.hot.external_id.map(|e| e.as_str().to_owned())),
        resource: Set(Value::Object(new.document)),
        search: Set(Some(new.search)),
        ..Default::default()
    }
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    new: NewGroup,
    now: &Timestamp,
) -> Result<StoredGroup, StoreError> {
    let mut model = active_model(tenant_id, id, new);
    model.version = Set(1);
    model.created_at = Set(now.to_owned());
    model.updated_at = Set(now.to_owned());
    to_domain(model.insert(conn).await?)
}

/// Reads one group, locked as `lock` says.
pub async fn find(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    lock: Lock,
) -> Result<Option<StoredGroup>, StoreError> {
    super::resources::by_key::<group::Entity>(tenant_id, id, lock)?
        .one(conn)
        .await?
        .map(to_domain)
        .transpose()
}

/// Writes a group's document and hot columns with `version`.
pub async fn update(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    new: NewGroup,
    version: i64,
    now: &Timestamp,
) -> Result<StoredGroup, StoreError> {
    let mut model = active_model(tenant_id, id, new);
    model.version = Set(version);
    model.updated_at = Set(now.to_owned());
    let model = model.update(conn).await.map_err(|e| match e {
        sea_orm::DbErr::RecordNotUpdated => StoreError::NotFound,
        other => other.into(),
    })?;
    to_domain(model)
}

/// Bumps only the version and `updated_at` (a membership change).
pub async fn touch(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &ResourceId,
    version: i64,
    now: &Timestamp,
) -> Result<(), StoreError> {
    group::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        id: Set(id.to_owned()),
        version: Set(version),
        updated_at: Set(now.to_owned()),
        ..Default::default()
    }
    .update(conn)
    .await?;
    Ok(())
}

/// A page of the tenant's groups in id order after `after` (snapshots for resync; with
/// `for_change`, locked for the re-index that rewrites their search documents).
pub async fn page_by_id(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    after: Option<&ResourceId>,
    limit: u64,
    for_change: bool,
) -> Result<Vec<StoredGroup>, StoreError> {
    super::resources::page_by_id::<group::Entity>(tenant_id, after, limit, for_change)?
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect()
}
