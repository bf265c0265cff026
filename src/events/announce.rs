//! Tells relays in other processes that events were committed, outside every write
//! transaction: PostgreSQL serialises the commits of all transactions that `NOTIFY`, so a
//! notification inside each write capped every tenant's writes together. One dedicated
//! connection sends at most one notification per `ANNOUNCE_INTERVAL`, however many writes
//! committed meanwhile; the relay's poll interval stays the fallback.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::{Connection, PgConnection};
use tokio::sync::{Notify, watch};

use crate::store::outbox::NOTIFY_CHANNEL;

/// Shortest pause between two notifications of one process.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(5);

/// The `application_name` of the announcing connection (seen in `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "scimbus-announce";

async fn connect(url: &str) -> Option<PgConnection> {
    let options: sea_orm::sqlx::postgres::PgConnectOptions = url.parse().ok()?;
    let options = options.application_name(APPLICATION_NAME);
    match PgConnection::connect_with(&options).await {
        Ok(conn) => Some(conn),
        Err(error) => {
            tracing::debug!(%error, "announce connection failed; relays poll meanwhile");
            None
        }
    }
}

/// Until `stop` turns true: after each wake-up, one `pg_notify` on the channel relays
/// `LISTEN` on, then a pause that coalesces the wake-ups of the writes committed during it.
pub async fn run(url: String, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut conn: Option<PgConnection> = None;
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => break,
            () = wake.notified() => {}
        }
        if conn.is_none() {
            conn = connect(&url).await;
        }
        if let Some(c) = conn.as_mut()
            && let Err(error) = sea_orm::sqlx::query("SELECT pg_notify($1, '')")
                .bind(NOTIFY_CHANNEL)
                .execute(&mut *c)
                .await
        {
            tracing::debug!(%error, "announce failed; reconnecting at the next write");
            conn = None;
        }
        tokio::time::sleep(ANNOUNCE_INTERVAL).await;
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}
