//! What the readiness probe reports: the database answers, every migration this binary
//! knows is applied, and the relay's state (reported, never a reason to be unready).
//! `/readyz` needs no token, so anyone can call it as often as they like: the backlog is
//! read at most once per [`REFRESH`] (by the service clock), one read at a time, and every
//! call in between answers from that read.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Mutex;

use super::{Context, ServiceError};
use crate::store::outbox;

/// How long one read of the backlog answers the probe.
pub const REFRESH: TimeDelta = TimeDelta::seconds(5);

/// Events waiting to be published, and when the oldest of them was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub events: u64,
    pub oldest: Option<String>,
}

/// A read of the backlog and when it was made.
type Read = (DateTime<Utc>, Backlog);

/// The last read, shared by every request of the process.
#[derive(Debug, Clone, Default)]
pub struct BacklogCache(Arc<Mutex<Option<Read>>>);

/// This process's relay counts since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayCounts {
    pub published: u64,
    pub publish_failures: u64,
    pub returned: u64,
    pub unpublishable: u64,
}

/// The probe's answer: ready when `migrations` (which implies `database`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    pub database: bool,
    pub migrations: bool,
    pub backlog: Backlog,
    pub relay: RelayCounts,
}

/// Checks the database and migrations, and reads the relay's state. A broker outage does
/// not make the service unready (SCIM writes go on; events wait in the outbox).
pub async fn check(ctx: &Context) -> Readiness {
    let database = ctx.store.ping().await.is_ok();
    let migrations = database && ctx.store.migrations_applied().await.unwrap_or(false);
    let backlog = if migrations {
        backlog(ctx).await.unwrap_or_default()
    } else {
        Backlog::default()
    };
    let m = &ctx.relay_metrics;
    Readiness {
        database,
        migrations,
        backlog,
        relay: RelayCounts {
            published: m.published.get(),
            publish_failures: m.publish_failures.get(),
            returned: m.returned.get(),
            unpublishable: m.unpublishable.get(),
        },
    }
}

/// The backlog as of at most [`REFRESH`] ago.
pub async fn backlog(ctx: &Context) -> Result<Backlog, ServiceError> {
    let mut last = ctx.backlog_cache.0.lock().await;
    let now = ctx.clock.now();
    if let Some((at, backlog)) = last.as_ref()
        && *at <= now
        && now - *at < REFRESH
    {
        return Ok(backlog.clone());
    }
    let (events, oldest) = outbox::backlog(ctx.store.conn()).await?;
    let backlog = Backlog { events, oldest };
    *last = Some((now, backlog.clone()));
    Ok(backlog)
}
