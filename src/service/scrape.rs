//! What `/metrics` serves: the gauges read from the database at scrape time (outbox
//! backlog and its oldest event's age, tenant tokens expiring soon, events the brake
//! holds), set on the process's registry, then the whole registry in the Prometheus text
//! format. The counters and the histogram are kept up to date where they happen.

use chrono::TimeDelta;

use super::{Context, ServiceError};
use crate::domain::Timestamp;
use crate::metrics::TenantOnly;
use crate::scim::time;
use crate::store::{brake, outbox, tokens};

/// How far ahead `scimbus_tokens_expiring_soon` looks.
pub const EXPIRY_WARNING: TimeDelta = TimeDelta::days(7);

/// Refreshes the scrape-time gauges and encodes every metric.
pub async fn render(ctx: &Context) -> Result<String, ServiceError> {
    let m = &ctx.metrics;
    let conn = ctx.store.conn();
    let now = ctx.clock.now();
    let (backlog, oldest) = outbox::backlog(conn).await?;
    m.outbox_backlog
        .set(i64::try_from(backlog).unwrap_or(i64::MAX));
    let age = oldest
        .as_deref()
        .and_then(time::parse)
        .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
    m.outbox_oldest_age.set(age);
    let expiring = tokens::expiring_between(
        conn,
        &Timestamp::at(now),
        &Timestamp::at(now + EXPIRY_WARNING),
    )
    .await?;
    m.tokens_expiring_soon.clear();
    for (tenant, n) in expiring {
        m.tokens_expiring_soon
            .get_or_create(&TenantOnly { tenant })
            .set(n);
    }
    let held = brake::held_counts(conn).await?;
    m.brake_held_events.clear();
    for (tenant, n) in held {
        m.brake_held_events
            .get_or_create(&TenantOnly { tenant })
            .set(n);
    }
    let failing = crate::store::sets::failing_counts(conn).await?;
    m.set_receivers_failing.clear();
    for (tenant, n) in failing {
        m.set_receivers_failing
            .get_or_create(&TenantOnly { tenant })
            .set(n);
    }
    m.encode()
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("metrics do not encode: {e}")))
}
