//! Schema jobs (`service::jobs` runs them): one row per re-index, holding its whole state.
//! A worker holds a job by its lease (`lease_owner`, `lease_until`), renewed with every
//! batch; a lease that ran out (its process stopped) lets another worker take the job up
//! from its committed cursor.

use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::StoreError;
use super::entities::schema_job;
use crate::domain::{TenantId, Timestamp};

/// Not yet taken by a worker.
pub const QUEUED: &str = "queued";
/// Taken: batches are committing.
pub const RUNNING: &str = "running";
/// Every resource re-indexed.
pub const SUCCEEDED: &str = "succeeded";
/// A later change of the same resource type's schemas re-indexes instead.
pub const SUPERSEDED: &str = "superseded";
/// Stopped for good (the tenant was deleted).
pub const FAILED: &str = "failed";

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    pub id: String,
    pub tenant_id: TenantId,
    /// `register`, `update` or `remove`.
    pub action: String,
    pub urn: String,
    pub resource_type: String,
    /// The tenant's schema version the job indexes for.
    pub schema_version: i64,
    pub state: String,
    pub total: i64,
    pub processed: i64,
    /// The last resource id indexed.
    pub after: Option<String>,
    pub non_conforming_count: i64,
    /// JSON array of the first non-conforming resources.
    pub non_conforming: String,
    pub error: Option<String>,
    pub actor: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

impl From<schema_job::Model> for StoredJob {
    fn from(m: schema_job::Model) -> Self {
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            action: m.action,
            urn: m.urn,
            resource_type: m.resource_type,
            schema_version: m.schema_version,
            state: m.state,
            total: m.total,
            processed: m.processed,
            after: m.after,
            non_conforming_count: m.non_conforming_count,
            non_conforming: m.non_conforming,
            error: m.error,
            actor: m.actor,
            created_at: m.created_at,
            updated_at: m.updated_at,
            finished_at: m.finished_at,
        }
    }
}

/// Inserts a queued job and supersedes the tenant's unfinished jobs of the same resource
/// type: the new one re-indexes every resource with the newer registry.
pub async fn insert(conn: &impl ConnectionTrait, job: StoredJob) -> Result<(), StoreError> {
    schema_job::Entity::update_many()
        .col_expr(schema_job::Column::State, Expr::value(SUPERSEDED))
        .col_expr(schema_job::Column::UpdatedAt, Expr::value(&job.created_at))
        .col_expr(schema_job::Column::FinishedAt, Expr::value(&job.created_at))
        .col_expr(schema_job::Column::LeaseOwner, Expr::value(None::<String>))
        .col_expr(schema_job::Column::LeaseUntil, Expr::value(None::<String>))
        .filter(schema_job::Column::TenantId.eq(&job.tenant_id))
        .filter(schema_job::Column::ResourceType.eq(&job.resource_type))
        .filter(schema_job::Column::State.is_in([QUEUED, RUNNING]))
        .exec(conn)
        .await?;
    schema_job::ActiveModel {
        id: Set(job.id),
        tenant_id: Set(job.tenant_id),
        action: Set(job.action),
        urn: Set(job.urn),
        resource_type: Set(job.resource_type),
        schema_version: Set(job.schema_version),
        state: Set(job.state),
        total: Set(job.total),
        processed: Set(job.processed),
        after: Set(job.after),
        non_conforming_count: Set(job.non_conforming_count),
        non_conforming: Set(job.non_conforming),
        error: Set(job.error),
        actor: Set(job.actor),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(job.created_at),
        updated_at: Set(job.updated_at),
        finished_at: Set(job.finished_at),
    }
    .insert(conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<StoredJob>, StoreError> {
    Ok(schema_job::Entity::find_by_id(id.to_owned())
        .filter(schema_job::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?
        .map(StoredJob::from))
}

/// The tenant's jobs, newest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
    limit: u64,
) -> Result<Vec<StoredJob>, StoreError> {
    Ok(schema_job::Entity::find()
        .filter(schema_job::Column::TenantId.eq(tenant_id))
        .order_by_desc(schema_job::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(StoredJob::from)
        .collect())
}

/// A job no worker holds: unfinished, its lease free or run out at `now`.
fn free(now: &Timestamp) -> Condition {
    Condition::all()
        .add(schema_job::Column::State.is_in([QUEUED, RUNNING]))
        .add(
            Condition::any()
                .add(schema_job::Column::LeaseUntil.is_null())
                .add(schema_job::Column::LeaseUntil.lt(now)),
        )
}

/// The oldest job no worker holds.
pub async fn next_free(
    conn: &impl ConnectionTrait,
    now: &Timestamp,
) -> Result<Option<StoredJob>, StoreError> {
    Ok(schema_job::Entity::find()
        .filter(free(now))
        .order_by_asc(schema_job::Column::Id)
        .one(conn)
        .await?
        .map(StoredJob::from))
}

/// Takes the job for `owner` until `until` if no other worker holds it; says whether it did.
pub async fn claim(
    conn: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    now: &Timestamp,
    until: &Timestamp,
) -> Result<bool, StoreError> {
    let result = schema_job::Entity::update_many()
        .col_expr(schema_job::Column::State, Expr::value(RUNNING))
        .col_expr(schema_job::Column::LeaseOwner, Expr::value(owner))
        .col_expr(schema_job::Column::LeaseUntil, Expr::value(until))
        .col_expr(schema_job::Column::UpdatedAt, Expr::value(now))
        .filter(schema_job::Column::Id.eq(id))
        .filter(
            Condition::any().add(free(now)).add(
                Condition::all()
                    .add(schema_job::Column::State.eq(RUNNING))
                    .add(schema_job::Column::LeaseOwner.eq(owner)),
            ),
        )
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// What one batch did, committed with the batch's search documents.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub after: Option<&'a str>,
    pub processed: i64,
    pub total: i64,
    pub non_conforming_count: i64,
    pub non_conforming: &'a str,
    pub lease_until: &'a Timestamp,
    pub now: &'a Timestamp,
}

/// Records a batch's progress and renews the lease, if `owner` still holds the job; says
/// whether it did (if not, the batch must roll back: another worker took the job, or a
/// newer job superseded it).
pub async fn advance(
    conn: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    progress: Progress<'_>,
) -> Result<bool, StoreError> {
    let result = schema_job::Entity::update_many()
        .col_expr(schema_job::Column::After, Expr::value(progress.after))
        .col_expr(
            schema_job::Column::Processed,
            Expr::value(progress.processed),
        )
        .col_expr(schema_job::Column::Total, Expr::value(progress.total))
        .col_expr(
            schema_job::Column::NonConformingCount,
            Expr::value(progress.non_conforming_count),
        )
        .col_expr(
            schema_job::Column::NonConforming,
            Expr::value(progress.non_conforming),
        )
        .col_expr(
            schema_job::Column::LeaseUntil,
            Expr::value(progress.lease_until),
        )
        .col_expr(schema_job::Column::UpdatedAt, Expr::value(progress.now))
        .filter(schema_job::Column::Id.eq(id))
        .filter(schema_job::Column::State.eq(RUNNING))
        .filter(schema_job::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Ends the job held by `owner` in `state` (with `error` for a failure).
pub async fn finish(
    conn: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    state: &str,
    error: Option<String>,
    now: &Timestamp,
) -> Result<bool, StoreError> {
    let result = schema_job::Entity::update_many()
        .col_expr(schema_job::Column::State, Expr::value(state))
        .col_expr(schema_job::Column::Error, Expr::value(error))
        .col_expr(schema_job::Column::LeaseOwner, Expr::value(None::<String>))
        .col_expr(schema_job::Column::LeaseUntil, Expr::value(None::<String>))
        .col_expr(schema_job::Column::UpdatedAt, Expr::value(now))
        .col_expr(schema_job::Column::FinishedAt, Expr::value(now))
        .filter(schema_job::Column::Id.eq(id))
        .filter(schema_job::Column::State.eq(RUNNING))
        .filter(schema_job::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives up `owner`'s leases (a process stopping): its jobs are free at once.
pub async fn release(conn: &impl ConnectionTrait, owner: &str) -> Result<(), StoreError> {
    schema_job::Entity::update_many()
        .col_expr(schema_job::Column::LeaseOwner, Expr::value(None::<String>))
        .col_expr(schema_job::Column::LeaseUntil, Expr::value(None::<String>))
        .filter(schema_job::Column::LeaseOwner.eq(owner))
        .filter(schema_job::Column::State.eq(RUNNING))
        .exec(conn)
        .await?;
    Ok(())
}

/// Removes the tenant's jobs (tenant purge).
pub async fn delete_all(
    conn: &impl ConnectionTrait,
    tenant_id: &TenantId,
) -> Result<(), StoreError> {
    schema_job::Entity::delete_many()
        .filter(schema_job::Column::TenantId.eq(tenant_id))
        .exec(conn)
        .await?;
    Ok(())
}
