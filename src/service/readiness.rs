//! The readiness probe's view of the outbox. `/readyz` needs no token, so anyone can call
//! it as often as they like: the backlog is read at most once per [`REFRESH`] (by the
//! service clock), one read at a time, and every call in between answers from that read.

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
