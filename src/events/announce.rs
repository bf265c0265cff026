//! Tells relays in other processes that events were committed, outside every write
//! transaction: PostgreSQL serialises the commits of all transactions that `NOTIFY`, so a
//! notification inside each write capped every tenant's writes together. One dedicated
//! connection sends at most one notification per `ANNOUNCE_INTERVAL`, however many writes
//! committed meanwhile; the relay's poll interval stays the fallback. Its payload names
//! the tenants written since the last one, so long-polling pull requests on every replica
//! wake for their own tenant only (`events::waiters`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sea_orm::sqlx::{Connection, PgConnection};
use tokio::sync::{Notify, watch};

use super::waiters::EVERY_TENANT;
use crate::store::outbox::NOTIFY_CHANNEL;

/// Longest payload sent (PostgreSQL refuses 8000 bytes and more): past it, `*`.
const MAX_PAYLOAD: usize = 7000;

/// The tenants written since the last notification, and the announcer's wake-up.
#[derive(Debug, Default)]
pub struct Announcements {
    pending: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl Announcements {
    /// Events of `tenant_id` committed: to be announced.
    pub fn note(&self, tenant_id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant_id.to_owned());
        self.wake.notify_one();
    }

    /// The payload naming every tenant noted since the last call (`*` when too long).
    fn take_payload(&self) -> String {
        let tenants =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let payload = tenants
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(",");
        if payload.len() > MAX_PAYLOAD || tenants.contains(EVERY_TENANT) {
            EVERY_TENANT.to_owned()
        } else {
            payload
        }
    }
}

/// Shortest pause between two notifications of one process.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(5);

/// Pause before a notification that could not be sent is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// Until `stop` turns true: after each wake-up, one `pg_notify` on the channel relays and
/// long-polls `LISTEN` on, naming the tenants written, then a pause that coalesces the
/// wake-ups of the writes committed during it.
pub async fn run(url: String, announcements: Arc<Announcements>, mut stop: watch::Receiver<bool>) {
    let mut conn: Option<PgConnection> = None;
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => break,
            () = announcements.wake.notified() => {}
        }
        let payload = announcements.take_payload();
        if payload.is_empty() {
            // Its tenants went out with the previous notification (noted before its wake-up).
            continue;
        }
        if conn.is_none() {
            conn = connect(&url).await;
        }
        if conn.is_none() {
            // Not sent: the next notification names everyone (waiters read again).
            announcements.note(EVERY_TENANT);
            tokio::time::sleep(RETRY_AFTER).await;
            continue;
        }
        if let Some(c) = conn.as_mut()
            && let Err(error) = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(&payload)
                .execute(&mut *c)
                .await
        {
            tracing::debug!(%error, "announce failed; reconnecting");
            conn = None;
            announcements.note(EVERY_TENANT);
            tokio::time::sleep(RETRY_AFTER).await;
            continue;
        }
        tokio::time::sleep(ANNOUNCE_INTERVAL).await;
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_names_each_tenant_once_or_everyone_when_too_long() {
        let a = Announcements::default();
        a.note("t1");
        a.note("t2");
        a.note("t1");
        assert_eq!(a.take_payload(), "t1,t2");
        assert_eq!(a.take_payload(), "");
        for i in 0..300 {
            a.note(&format!("{i:036}"));
        }
        assert_eq!(a.take_payload(), EVERY_TENANT);
        a.note("t1");
        a.note(EVERY_TENANT);
        assert_eq!(
            a.take_payload(),
            EVERY_TENANT,
            "a failed notification names everyone"
        );
    }
}
