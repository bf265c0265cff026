//! Use cases. Each write is one transaction holding the resource rows, the outbox rows and
//! the tenant's event counter; handlers and the CLI call these and nothing below them.

pub mod apps;
pub mod audit;
pub mod brake;
pub mod bulk;
mod changes;
pub mod console;
pub mod cursor;
mod emit;
mod error;
pub mod events;
pub mod groups;
pub mod jobs;
pub mod journal;
pub mod listing;
pub mod maintenance;
pub mod operators;
pub mod readiness;
pub mod resource;
pub mod schemas;
pub mod scrape;
pub mod set_groups;
pub mod set_push;
pub mod sets;
pub mod setup;
pub mod tenants;
pub mod users;

use std::sync::Arc;

use tokio::sync::Notify;
use url::Url;

use crate::clock::Clock;
use crate::domain::TenantId;
use crate::domain::{TenantSlug, Timestamp};
use crate::events::RelayMetrics;
use crate::scim::schema::Registry;
use crate::store::Store;

pub use error::{ServiceError, report};

/// Whether an `If-Match`/`If-None-Match` value names `version`: `*` names any; entity tags
/// compare weakly (RFC 7232 §2.3.2, RFC 7644 §3.14), so `W/"3"` and `"3"` both name 3.
pub fn etag_matches(header: &str, version: i64) -> bool {
    let wanted = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == wanted)
}

/// Computes the search documents of rows written before they existed (run at start-up,
/// after migrations; a no-op once every row has one).
pub async fn backfill_search_documents(ctx: &Context) -> Result<u64, ServiceError> {
    use crate::domain::ResourceKind;
    use crate::scim::query::search_document;
    use crate::store::resources;
    let mut filled = 0;
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let core = Registry::core();
        loop {
            let rows = resources::missing_search(ctx.store.conn(), kind, 500).await?;
            if rows.is_empty() {
                break;
            }
            for (tenant_id, id, document) in rows {
                let doc = document.as_object().cloned().unwrap_or_default();
                let search = search_document(core, kind.resource_type(core), &doc);
                resources::set_search_many(ctx.store.conn(), &tenant_id, kind, vec![(id, search)])
                    .await?;
                filled += 1;
            }
        }
    }
    Ok(filled)
}

/// The query of a list or search request, as sent.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
}

impl ListQuery {
    /// The typed filter and sort key for `resource_type`.
    fn typed(
        &self,
        registry: &Registry,
        resource_type: &crate::scim::schema::ResourceType,
    ) -> Result<
        (
            Option<crate::scim::query::Filter>,
            Option<crate::scim::query::Sort>,
        ),
        ServiceError,
    > {
        // Checked whether or not `sortBy` comes with it: a value outside the RFC's two is
        // an error, not something to ignore.
        crate::scim::query::parse_sort_order(self.sort_order.as_deref())?;
        let filter = self
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|raw| crate::scim::query::parse_filter(registry, resource_type, raw))
            .transpose()?;
        let sort = self
            .sort_by
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|by| {
                crate::scim::query::parse_sort(
                    registry,
                    resource_type,
                    by,
                    self.sort_order.as_deref(),
                )
            })
            .transpose()?;
        Ok((filter, sort))
    }
}

/// What every use case needs, built once in `Application::build`.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Each tenant's registry (core plus its extensions), cached by schema version.
    pub registries: schemas::Registries,
    /// Base of every URL the service writes (`Location`, `meta.location`).
    pub public_url: Url,
    /// Wakes the in-process relay (or, without one, the sequencer on PostgreSQL) after a
    /// transaction that wrote events commits.
    pub events_written: Arc<Notify>,
    /// The tenants the announcer tells relays and long-polls in other processes about
    /// (PostgreSQL NOTIFY, sent outside every write transaction: `events::announce`).
    pub events_announce: Arc<crate::events::announce::Announcements>,
    /// Long-polling pull requests of this process, by tenant (`events::waiters`).
    pub event_waiters: crate::events::waiters::EventWaiters,
    /// Counters of this process's relay.
    pub relay_metrics: Arc<RelayMetrics>,
    /// Seals and opens pagination cursors (RFC 9865).
    pub cursors: cursor::Cursors,
    /// How long events are kept before retention prunes them (DESIGN 13).
    pub event_retention: std::time::Duration,
    /// Whether retention keeps unpublished events whatever their age (a relay will publish
    /// them), or prunes them by age alone (no relay ever will).
    pub keep_unpublished: bool,
    /// The request journal's queue and bounds (DESIGN 20).
    pub journal: journal::Journal,
    /// Security event tokens: settings and this process's signers.
    pub sets: sets::Sets,
    /// Wakes the maintenance loop (a tenant was deleted: start purging now).
    pub maintenance_wake: Arc<Notify>,
    /// Wakes this process's schema job worker (a job was queued).
    pub jobs_wake: Arc<Notify>,
    /// The process's Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The last read of the outbox backlog, for `/readyz`.
    pub backlog_cache: readiness::BacklogCache,
}

impl Context {
    /// `…/scim/v2/{tenant}`, without a trailing slash.
    pub fn scim_base(&self, tenant: &TenantSlug) -> String {
        format!(
            "{}/scim/v2/{}",
            self.public_url.as_str().trim_end_matches('/'),
            tenant
        )
    }

    /// Events of `tenant_id` committed: wakes the in-process relay, this process's
    /// long-polls of the tenant, and (through the announcer) other processes'.
    pub fn signal_events(&self, tenant_id: &TenantId) {
        self.events_written.notify_one();
        self.event_waiters.wake(tenant_id.as_str());
        self.events_announce.note(tenant_id.as_str());
    }

    /// Tells the maintenance loop that work waits.
    pub fn signal_maintenance(&self) {
        self.maintenance_wake.notify_one();
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::at(self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn entity_tags_compare_weakly() {
        assert!(etag_matches("W/\"3\"", 3));
        assert!(etag_matches("\"3\"", 3));
        assert!(etag_matches("W/\"1\", W/\"3\"", 3));
        assert!(etag_matches("*", 9));
        assert!(!etag_matches("W/\"2\"", 3));
    }
}
