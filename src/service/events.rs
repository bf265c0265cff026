//! The events side of the API (DESIGN 13): the pull API over the outbox, snapshots for
//! resync, and erasure of a subject's payloads.

use serde::Serialize;
use serde_json::{Value, json};

use super::audit::{self, Actor};
use super::{Context, ServiceError};
use crate::domain::{ResourceId, ResourceKind, Tenant, TenantSlug, Timestamp};
use crate::events::{Envelope, EventType, PendingEvent};
use crate::scim::error::ScimError;
use crate::store::resources::Lock;
use crate::store::{groups, members, outbox, tenants, users};

/// Most events or snapshots one page returns.
pub const MAX_PAGE: u64 = 1000;
/// Events or snapshots per page when the client does not say.
pub const DEFAULT_PAGE: u64 = 100;

/// A page of the pull API.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// Envelopes exactly as published, in `sequence` order.
    pub events: Vec<Value>,
    /// The `after` of the next request: the last sequence returned, or `after` itself.
    pub next: i64,
    pub has_more: bool,
}

/// Committed events of the tenant after `after`, whatever their publish state.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug, after), err(level = "debug"))]
pub async fn pull(
    ctx: &Context,
    tenant: &Tenant,
    after: i64,
    limit: u64,
    types: &[String],
) -> Result<EventPage, ServiceError> {
    if after < 0 {
        return Err(ServiceError::invalid_value("`after` must not be negative"));
    }
    for t in types {
        if EventType::from_name(t).is_none() {
            return Err(ServiceError::invalid_value(format!(
                "`{t}` is not an event type"
            )));
        }
    }
    let limit = limit.clamp(1, MAX_PAGE);
    let conn = ctx.store.conn();
    let gone = |pruned: i64| -> ServiceError {
        ScimError::new(
            410,
            None,
            format!(
                "events up to sequence {pruned} are past retention; resync from the snapshot \
                 endpoint and continue after its sequence"
            ),
        )
        .into()
    };
    // The mark as authentication read it with the tenant row, at the start of this request.
    if after < tenant.events_pruned_through {
        return Err(gone(tenant.events_pruned_through));
    }
    crate::failpoints::point("pull.page", &tenant.id).await;
    // Every event committed before this request, numbered (PostgreSQL writers leave
    // theirs to the sequencer): a consumer reads its own writes.
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    // A brake's hold: nothing from its first held sequence on is served before release.
    let mut rows = outbox::page(conn, &tenant.id, after, types, limit + 1).await?;
    // Read again after the page: retention deletes events and moves the mark in one
    // transaction, so a prune that committed before the page was read shows here, and the
    // page cannot silently start after events the consumer never saw.
    let pruned = tenants::events_pruned_through(conn, &tenant.id).await?;
    if after < pruned {
        return Err(gone(pruned));
    }
    let has_more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = rows.last().map_or(after, |(sequence, _)| *sequence);
    Ok(EventPage {
        events: rows.into_iter().map(|(_, payload)| payload).collect(),
        next,
        has_more,
    })
}

/// Longest a pull request may wait for an event (`wait`).
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Like [`pull`], but when no event follows `after`, waits up to `wait` for one of the
/// tenant's to commit (here or on another replica) and answers as soon as it does. No
/// database connection is held while waiting (`events::waiters`). An empty page at the
/// deadline, or at once when the server is stopping.
pub async fn pull_waiting(
    ctx: &Context,
    tenant: &Tenant,
    after: i64,
    limit: u64,
    types: &[String],
    wait: std::time::Duration,
) -> Result<EventPage, ServiceError> {
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        // Before the read: a commit between the read and the wait still wakes it.
        let mut woken = ctx.event_waiters.subscribe(tenant.id.as_str());
        let page = pull(ctx, tenant, after, limit, types).await?;
        if !page.events.is_empty() || ctx.event_waiters.is_closed() {
            return Ok(page);
        }
        match tokio::time::timeout_at(deadline, woken.changed()).await {
            // Woken: read again (the new events may all be of other types, then wait on).
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Ok(page),
        }
    }
}

/// Snapshots show the current state, held changes included: while a brake holds the
/// tenant's lane they answer 503 (with `Retry-After`), so neither a bootstrap nor gap
/// repair can reveal what the hold keeps back. Checked before the read and after it,
/// each time once every committed event is numbered (and so counted by the brake).
async fn refuse_if_held(ctx: &Context, tenant: &Tenant) -> Result<(), ServiceError> {
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    match crate::store::brake::held_from(ctx.store.conn(), &tenant.id).await? {
        Some(from) => Err(ServiceError::Unavailable(format!(
            "tenant {}'s events from sequence {from} are held by the mass-deprovisioning \
             brake until an operator releases them: no snapshot meanwhile",
            tenant.slug
        ))),
        None => Ok(()),
    }
}

/// A page of snapshots.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPage {
    /// `scimbus.user.snapshot` / `scimbus.group.snapshot` envelopes, in id order.
    pub events: Vec<Value>,
    /// The `after` of the next page (the last id returned), `null` at the end.
    pub next: Option<ResourceId>,
    pub has_more: bool,
    /// The tenant's latest committed sequence when the read began: after applying every
    /// page, continue the pull API (or the queue) after it.
    pub sequence: i64,
}

fn snapshot_envelope(
    tenant: &Tenant,
    sequence: i64,
    now: &Timestamp,
    event: PendingEvent,
) -> Result<Value, ServiceError> {
    // A snapshot is not a change a request made (docs/events.md): the read that asked for
    // it is not what made the resource so; it has no correlation id and is in no trace.
    let envelope = Envelope::new(tenant.slug.as_str(), sequence, now, None, event);
    serde_json::to_value(envelope).map_err(|e| ServiceError::Internal(e.into()))
}

async fn group_snapshot(
    ctx: &Context,
    tenant: &Tenant,
    group: &crate::domain::StoredGroup,
) -> Result<PendingEvent, ServiceError> {
    let list = members::list(ctx.store.conn(), &tenant.id, &group.id).await?;
    let members: Vec<Value> = list
        .into_iter()
        .map(|m| json!({"value": m.id, "type": m.member_type.as_str()}))
        .collect();
    Ok(PendingEvent {
        event_type: EventType::GroupSnapshot,
        subject: format!("Groups/{}", group.id),
        data: json!({
            "resource": super::groups::snapshot(tenant, &ctx.scim_base(&tenant.slug), group),
            "version": group.version,
            "members": members,
        }),
    })
}

fn user_snapshot(ctx: &Context, tenant: &Tenant, user: &crate::domain::StoredUser) -> PendingEvent {
    PendingEvent {
        event_type: EventType::UserSnapshot,
        subject: format!("Users/{}", user.id),
        data: json!({
            "resource": super::users::represent(ctx, tenant, user),
            "version": user.version,
        }),
    }
}

/// Current users or groups of the tenant in id order after `after`, as snapshot events.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug), err(level = "debug"))]
pub async fn snapshot_page(
    ctx: &Context,
    tenant: &Tenant,
    kind: ResourceKind,
    after: Option<&ResourceId>,
    limit: u64,
) -> Result<SnapshotPage, ServiceError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let conn = ctx.store.conn();
    refuse_if_held(ctx, tenant).await?;
    crate::failpoints::point("snapshot.read", &tenant.id).await;
    let sequence = tenants::event_sequence(conn, &tenant.id).await?;
    let now = ctx.now();
    let mut events = Vec::new();
    let mut ids = Vec::new();
    let most = usize::try_from(limit).unwrap_or(usize::MAX);
    // How many of the resources read (one more than the limit, to know if more follow)
    // this page returns.
    let fit = match kind {
        ResourceKind::User => {
            for user in users::page_by_id(conn, &tenant.id, after, limit + 1, false).await? {
                ids.push(user.id.clone());
                events.push(user_snapshot(ctx, tenant, &user));
            }
            most.min(ids.len())
        }
        ResourceKind::Group => {
            let page = groups::page_by_id(conn, &tenant.id, after, limit + 1, false).await?;
            ids = page.iter().map(|g| g.id.clone()).collect();
            // A page stops at the member budget, like a list of groups.
            let fit =
                super::groups::within_member_budget(conn, tenant, &ids[..most.min(ids.len())])
                    .await?;
            for group in page.iter().take(fit) {
                events.push(group_snapshot(ctx, tenant, group).await?);
            }
            fit
        }
    };
    let has_more = ids.len() > fit;
    events.truncate(fit);
    ids.truncate(fit);
    // The state read includes every write committed before the read; those writes' events
    // are numbered (and counted by the brake) now: if one of them tripped it, this page
    // would reveal what the hold keeps back.
    refuse_if_held(ctx, tenant).await?;
    Ok(SnapshotPage {
        events: events
            .into_iter()
            .map(|e| snapshot_envelope(tenant, sequence, &now, e))
            .collect::<Result<_, _>>()?,
        next: if has_more { ids.pop() } else { None },
        has_more,
        sequence,
    })
}

/// One resource's snapshot (a consumer repairing a gap); 404 when it no longer exists.
pub async fn snapshot_one(
    ctx: &Context,
    tenant: &Tenant,
    kind: ResourceKind,
    id: &ResourceId,
) -> Result<Value, ServiceError> {
    let conn = ctx.store.conn();
    refuse_if_held(ctx, tenant).await?;
    let sequence = tenants::event_sequence(conn, &tenant.id).await?;
    let now = ctx.now();
    let event = match kind {
        ResourceKind::User => users::find(conn, &tenant.id, id, Lock::None)
            .await?
            .map(|u| user_snapshot(ctx, tenant, &u)),
        ResourceKind::Group => match groups::find(conn, &tenant.id, id, Lock::None).await? {
            Some(g) => Some(group_snapshot(ctx, tenant, &g).await?),
            None => None,
        },
    };
    let event = event.ok_or_else(|| ServiceError::NotFound(format!("no such resource {id}")))?;
    // As for a page: the writes read are counted by the brake before the answer.
    refuse_if_held(ctx, tenant).await?;
    snapshot_envelope(tenant, sequence, &now, event)
}

/// Every event type's name (`scimbus.user.created`, …), the values of a `types` filter.
pub fn type_names() -> Vec<String> {
    EventType::ALL.iter().map(|t| t.name()).collect()
}

/// What erasure leaves of an event's `data`.
pub fn redacted_data() -> Value {
    json!({"redacted": true})
}

/// Erasure: replaces the `data` of every retained event about `subject` (`Users/{id}` or
/// `Groups/{id}`) of the tenant with `{"redacted": true}`, keeping the envelope (id,
/// sequence, type) so consumers' cursors and deduplication still hold. Works on a deleted
/// tenant too, while its events are retained. Returns how many events were redacted.
#[tracing::instrument(skip(ctx, actor), err(level = "debug"))]
pub async fn purge_subject(
    ctx: &Context,
    actor: &Actor,
    slug: &str,
    subject: &str,
) -> Result<u64, ServiceError> {
    let slug = TenantSlug::parse(slug).map_err(ServiceError::invalid_value)?;
    let valid = subject
        .split_once('/')
        .is_some_and(|(kind, id)| matches!(kind, "Users" | "Groups") && !id.is_empty());
    if !valid {
        return Err(ServiceError::invalid_value(
            "subject must be Users/{id} or Groups/{id}",
        ));
    }
    let tenant = tenants::find(ctx.store.conn(), &slug)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("tenant {slug} not found")))?;
    // Events still waiting for their number are numbered first, so none escapes.
    crate::events::sequencer::number_tenant(&ctx.store, &tenant.id).await?;
    let txn = ctx.store.begin_write().await?;
    let mut redacted = 0;
    for (sequence, mut payload) in outbox::of_subject(&txn, &tenant.id, subject).await? {
        if payload.get("data") == Some(&redacted_data()) {
            continue;
        }
        if let Some(object) = payload.as_object_mut() {
            object.insert("data".to_owned(), redacted_data());
        }
        outbox::replace_payload(&txn, &tenant.id, sequence, payload).await?;
        redacted += 1;
    }
    // The request journal's entries about it go too (their bodies hold its data).
    let id = subject.split_once('/').map_or(subject, |(_, id)| id);
    let journal_entries = crate::store::journal::erase(&txn, &tenant.id, id).await?;
    audit::record(
        &txn,
        ctx,
        actor,
        "events.purge",
        Some(slug.as_str()),
        Some(subject),
        json!({"redacted": redacted, "journalEntriesRemoved": journal_entries}),
    )
    .await?;
    txn.commit().await?;
    Ok(redacted)
}
