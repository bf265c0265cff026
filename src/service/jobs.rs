//! Schema jobs (docs/decisions.md, "Schema extensions"): the re-index that follows a
//! change of a tenant's extensions. Each job recomputes the search documents of the
//! tenant's resources of one type, batch by batch, and checks each against the registry
//! (the values that do not fit are counted and the first listed, never changed). Every
//! batch is one transaction that locks its rows and the tenant's schema version and
//! commits the documents with the job's cursor, so a job resumes exactly where it stopped,
//! and never writes a document computed with a registry other than the one in force: a
//! write that went first is what is read, one that comes later waits for the batch.
//!
//! Every `serve` runs a worker; a worker holds a job by a lease renewed with each batch,
//! so a job whose process stopped is taken up by another (at once after a clean stop, when
//! the lease runs out after a crash). The CLI runs the job it queued itself, with a
//! progress bar, unless a server already holds it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::audit::Actor;
use super::schemas::{MAX_REPORTED, NonConforming, build, check, page};
use super::{Context, ServiceError};
use crate::domain::{ResourceId, ResourceKind, Tenant, Timestamp};
use crate::scim::query::search_document;
use crate::scim::schema::Registry;
use crate::store::jobs::{self, Progress, StoredJob};
use crate::store::{resources, schemas, tenants};

/// Resources re-indexed per transaction.
const BATCH: u64 = 500;
/// How long a worker holds a job without committing a batch before another may take it.
const LEASE: Duration = Duration::from_secs(60);
/// How often an idle worker looks for jobs queued by other processes (its own wake it).
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Most jobs the admin API lists.
pub const MAX_LISTED: u64 = 100;

/// A job as the admin API and CLI show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: String,
    /// What queued it: `register`, `update` or `remove` (of `schema`).
    pub action: String,
    /// The extension's URN.
    pub schema: String,
    /// `User` or `Group`: the resources it re-indexes.
    pub resource_type: String,
    /// `queued`, `running`, `succeeded`, `superseded` (a later change of the same resource
    /// type's extensions re-indexes instead) or `failed`.
    pub state: String,
    /// Resources to re-index (counted when queued; the count processed once finished).
    pub total: i64,
    /// Resources re-indexed so far.
    pub processed: i64,
    /// How many hold values that do not fit (kept as they are, left out of filters).
    pub non_conforming_count: i64,
    /// The first of those, with the reason.
    pub non_conforming: Vec<NonConforming>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who changed the extension.
    pub actor: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl JobView {
    /// Whether the job will do no more.
    pub fn finished(&self) -> bool {
        !matches!(self.state.as_str(), jobs::QUEUED | jobs::RUNNING)
    }
}

fn view(job: StoredJob) -> JobView {
    JobView {
        non_conforming: serde_json::from_str(&job.non_conforming).unwrap_or_default(),
        id: job.id,
        action: job.action,
        schema: job.urn,
        resource_type: job.resource_type,
        state: job.state,
        total: job.total,
        processed: job.processed,
        non_conforming_count: job.non_conforming_count,
        error: job.error,
        actor: job.actor,
        created_at: job.created_at,
        updated_at: job.updated_at,
        finished_at: job.finished_at,
    }
}

/// Queues the re-index of the tenant's resources of `kind`, in the transaction
/// of the change that calls for it (superseding the tenant's unfinished jobs of that type).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn queue(
    conn: &impl sea_orm::ConnectionTrait,
    ctx: &Context,
    actor: &Actor,
    tenant: &Tenant,
    action: &str,
    urn: &str,
    kind: ResourceKind,
    schema_version: i64,
) -> Result<JobView, ServiceError> {
    let now = ctx.now();
    let job = StoredJob {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.id.clone(),
        action: action.to_owned(),
        urn: urn.to_owned(),
        resource_type: kind.as_str().to_owned(),
        schema_version,
        state: jobs::QUEUED.to_owned(),
        total: resources::count(conn, &tenant.id, kind).await?,
        processed: 0,
        after: None,
        non_conforming_count: 0,
        non_conforming: "[]".to_owned(),
        error: None,
        actor: actor.as_str().to_owned(),
        created_at: now.clone(),
        updated_at: now,
        finished_at: None,
    };
    jobs::insert(conn, job.clone()).await?;
    Ok(view(job))
}

/// One job of the tenant.
pub async fn get(ctx: &Context, slug: &str, id: &str) -> Result<JobView, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    jobs::find(ctx.store.conn(), &tenant.id, id)
        .await?
        .map(view)
        .ok_or_else(|| ServiceError::NotFound(format!("job {id} not found")))
}

/// The tenant's jobs, newest first.
pub async fn list(ctx: &Context, slug: &str) -> Result<Vec<JobView>, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    Ok(jobs::list(ctx.store.conn(), &tenant.id, MAX_LISTED)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// How a worker's turn at a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The job is over (succeeded, or failed for good).
    Finished,
    /// Another worker took it, or a newer job superseded it.
    Lost,
    /// The process is stopping: the job waits for the next worker.
    Stopped,
}

fn lease_until(ctx: &Context) -> Timestamp {
    let lease = chrono::TimeDelta::from_std(LEASE).unwrap_or(chrono::TimeDelta::MAX);
    Timestamp::at(ctx.clock.now() + lease)
}

/// Runs a job `owner` has claimed, batch by batch, from its committed cursor; `progress`
/// is told after each batch, `stopping` asked before each.
pub async fn process(
    ctx: &Context,
    job: StoredJob,
    owner: &str,
    progress: &mut (dyn FnMut(&JobView) + Send),
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<Turn, ServiceError> {
    let kind = super::schemas::kind_of(&job.resource_type)?;
    let mut registry: Option<(i64, Arc<Registry>)> = None;
    let mut after = job.after.clone().map(ResourceId::from);
    let mut processed = job.processed;
    let mut bad_count = job.non_conforming_count;
    let mut bad: Vec<NonConforming> = serde_json::from_str(&job.non_conforming).unwrap_or_default();
    loop {
        if stopping() {
            return Ok(Turn::Stopped);
        }
        crate::failpoints::point("reindex.batch", &format!("{}:{processed}", job.tenant_id)).await;
        let txn = ctx.store.begin_write().await?;
        let now = ctx.now();
        // Locked as writes lock it: a change of the extensions waits for this batch, and
        // this batch for one in hand.
        let Some(version) = tenants::schema_version_for_write(&txn, &job.tenant_id).await? else {
            let error = Some("the tenant was deleted".to_owned());
            jobs::finish(&txn, &job.id, owner, jobs::FAILED, error, &now).await?;
            txn.commit().await?;
            return Ok(Turn::Finished);
        };
        // A change of the other resource type's extensions since the last batch leaves
        // this type's documents as they were; one of this type supersedes the job (and
        // `advance` below finds it so).
        let registry = match &registry {
            Some((built_for, registry)) if *built_for == version => registry.clone(),
            _ => {
                let built = Arc::new(build(&schemas::list(&txn, &job.tenant_id).await?)?);
                registry = Some((version, built.clone()));
                built
            }
        };
        let documents = page(&txn, &job.tenant_id, kind, after.as_ref(), BATCH, true).await?;
        let rt = kind.resource_type(&registry);
        let mut searches = Vec::with_capacity(documents.len());
        for (id, document) in &documents {
            processed += 1;
            if let Some(detail) = check(&registry, kind, document) {
                bad_count += 1;
                if bad.len() < MAX_REPORTED {
                    bad.push(NonConforming {
                        id: id.clone(),
                        detail,
                    });
                }
            }
            searches.push((id.clone(), search_document(&registry, rt, document)));
        }
        resources::set_search_many(&txn, &job.tenant_id, kind, searches).await?;
        if let Some((last, _)) = documents.last() {
            after = Some(last.clone());
        }
        let listed = serde_json::to_string(&bad).map_err(anyhow::Error::from)?;
        let until = lease_until(ctx);
        let total = job.total.max(processed);
        let done = (documents.len() as u64) < BATCH;
        let held = jobs::advance(
            &txn,
            &job.id,
            owner,
            Progress {
                after: after.as_ref().map(ResourceId::as_str),
                processed,
                total: if done { processed } else { total },
                non_conforming_count: bad_count,
                non_conforming: &listed,
                lease_until: &until,
                now: &now,
            },
        )
        .await?;
        if !held {
            txn.rollback().await?;
            return Ok(Turn::Lost);
        }
        if done {
            jobs::finish(&txn, &job.id, owner, jobs::SUCCEEDED, None, &now).await?;
        }
        txn.commit().await?;
        // What was just committed, told without reading it back.
        progress(&view(StoredJob {
            state: (if done { jobs::SUCCEEDED } else { jobs::RUNNING }).to_owned(),
            total: if done { processed } else { total },
            processed,
            after: after.clone().map(ResourceId::into_string),
            non_conforming_count: bad_count,
            non_conforming: listed,
            updated_at: now.clone(),
            finished_at: done.then(|| now.clone()),
            ..job.clone()
        }));
        if done {
            return Ok(Turn::Finished);
        }
    }
}

/// Takes `job` for `owner` if no other worker holds it, and runs it.
async fn take(
    ctx: &Context,
    job: StoredJob,
    owner: &str,
    progress: &mut (dyn FnMut(&JobView) + Send),
    stopping: &(dyn Fn() -> bool + Sync),
) -> Result<Option<Turn>, ServiceError> {
    let now = ctx.now();
    if !jobs::claim(ctx.store.conn(), &job.id, owner, &now, &lease_until(ctx)).await? {
        return Ok(None);
    }
    tracing::info!(job = %job.id, tenant = %job.tenant_id, schema = %job.urn, "schema job taken");
    let turn = process(ctx, job, owner, progress, stopping).await?;
    Ok(Some(turn))
}

/// The worker of a `serve` process: runs the jobs no one holds, oldest first, until
/// `stop`; then gives up its lease so another process resumes at once.
pub async fn run(ctx: Context, mut stop: watch::Receiver<bool>) {
    let owner = format!("serve-{}", uuid::Uuid::new_v4());
    loop {
        if *stop.borrow() {
            break;
        }
        let stopping = {
            let stop = stop.clone();
            move || *stop.borrow()
        };
        let next = jobs::next_free(ctx.store.conn(), &ctx.now()).await;
        let busy = match next {
            Ok(Some(job)) => {
                let id = job.id.clone();
                match take(&ctx, job, &owner, &mut |_| {}, &stopping).await {
                    Ok(turn) => turn.is_some(),
                    Err(error) => {
                        tracing::warn!(job = %id, %error, "schema job batch failed; retried");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        false
                    }
                }
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "looking for schema jobs failed; retried");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(IDLE_POLL) => {}
            () = ctx.jobs_wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
    if let Err(error) = jobs::release(ctx.store.conn(), &owner).await {
        tracing::warn!(%error, "giving up schema job leases failed; they run out");
    }
}

/// Follows a job to its end (the CLI): runs it here when no server holds it, else watches
/// the server run it; `progress` is told of each step.
pub async fn follow(
    ctx: &Context,
    slug: &str,
    id: &str,
    progress: &mut (dyn FnMut(&JobView) + Send),
) -> Result<JobView, ServiceError> {
    let tenant = super::tenants::live_tenant(ctx, slug).await?;
    let owner = format!("cli-{}", uuid::Uuid::new_v4());
    loop {
        let job = jobs::find(ctx.store.conn(), &tenant.id, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("job {id} not found")))?;
        let shown = view(job.clone());
        progress(&shown);
        if shown.finished() {
            return Ok(shown);
        }
        match take(ctx, job, &owner, progress, &|| false).await? {
            Some(_) => {}
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
