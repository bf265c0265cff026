//! Use cases. Each write is one transaction holding the resource rows, the outbox rows and
//! the tenant's event counter; handlers and the CLI call these and nothing below them.

mod changes;
mod emit;
mod error;
pub mod groups;
pub mod tenants;
pub mod users;

use std::sync::Arc;

use tokio::sync::Notify;
use url::Url;

use crate::clock::Clock;
use crate::domain::TenantSlug;
use crate::events::RelayMetrics;
use crate::scim::schema::Registry;
use crate::store::Store;

pub use error::ServiceError;

/// Whether an `If-Match`/`If-None-Match` value names `version`: `*` names any; entity tags
/// compare weakly (RFC 7232 §2.3.2, RFC 7644 §3.14), so `W/"3"` and `"3"` both name 3.
pub fn etag_matches(header: &str, version: i64) -> bool {
    let wanted = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == wanted)
}

/// What every use case needs, built once in `Application::build`.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub registry: &'static Registry,
    /// Base of every URL the service writes (`Location`, `meta.location`).
    pub public_url: Url,
    /// Wakes the in-process relay after a transaction that wrote events commits.
    pub events_written: Arc<Notify>,
    /// Counters of this process's relay.
    pub relay_metrics: Arc<RelayMetrics>,
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

    /// Tells the in-process relay that committed events wait.
    pub fn signal_events(&self) {
        self.events_written.notify_one();
    }

    pub fn now(&self) -> String {
        crate::scim::time::format(self.clock.now())
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
