//! Wakes long-polling pull requests (`/events/v1/{tenant}?wait=`) when an event of their
//! tenant commits, in this process or in another replica.
//!
//! A waiting request holds no database connection: it subscribes to its tenant here,
//! reads a page, and when the page is empty awaits a wake-up (or its deadline) with the
//! connection back in the pool. Writes in this process wake their tenant's waiters at once
//! (`Context::signal_events`); writes in other replicas arrive through the notification
//! the announcer sends after commit (`events::announce`, outside every write transaction,
//! so no write takes a database-wide lock), whose payload names the tenants written. One
//! `LISTEN` connection per process receives them ([`listen`]). A wake-up is a hint: the
//! request reads the database again, and a missed one only delays it to its deadline.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::outbox::NOTIFY_CHANNEL;

/// The payload that wakes every waiter (too many tenants for one notification).
pub const EVERY_TENANT: &str = "*";

/// The tenants a watcher of several waits for, and the counter it watches.
type SetWatcher = (Arc<HashSet<String>>, watch::Sender<u64>);

/// Per tenant, a counter its waiters watch; a wake-up bumps it.
#[derive(Debug, Default, Clone)]
pub struct EventWaiters {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tenants: Mutex<HashMap<String, watch::Sender<u64>>>,
    closed: AtomicBool,
    /// Bumped at every wake-up while someone watches every tenant (the SET pusher).
    any: watch::Sender<u64>,
    /// The tenants woken since the watcher of every tenant last looked; `None`: every
    /// tenant may have been.
    touched: Mutex<Option<HashSet<String>>>,
    /// Watchers of a set of tenants (an application credential's SET receiver polling).
    sets: Mutex<Vec<SetWatcher>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            tenants: Mutex::default(),
            closed: AtomicBool::default(),
            any: watch::Sender::new(0),
            touched: Mutex::new(Some(HashSet::new())),
            sets: Mutex::default(),
        }
    }
}

impl EventWaiters {
    /// A receiver that changes at the next wake-up of `tenant_id`: take it before reading
    /// the page, so a commit between the read and the wait is not missed.
    pub fn subscribe(&self, tenant_id: &str) -> watch::Receiver<u64> {
        let mut tenants = self
            .inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match tenants.get(tenant_id) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                tenants.insert(tenant_id.to_owned(), sender);
                receiver
            }
        }
    }

    /// A receiver that changes at every wake-up of any tenant; [`Self::take_touched`]
    /// names the tenants woken since it was last called.
    pub fn subscribe_any(&self) -> watch::Receiver<u64> {
        self.inner.any.subscribe()
    }

    /// A receiver that changes at the next wake-up of any of `tenant_ids` (a poll of a
    /// receiver of several tenants; one of every tenant watches them all instead).
    pub fn subscribe_tenants(&self, tenant_ids: Arc<HashSet<String>>) -> watch::Receiver<u64> {
        let (sender, receiver) = watch::channel(0);
        // Those of polls that ended (answered or timed out) go here too, not only at a
        // wake-up: a quiet deployment's polls would otherwise pile up.
        self.live_sets().push((tenant_ids, sender));
        receiver
    }

    /// The watchers of sets of tenants, those nobody watches any more dropped.
    fn live_sets(&self) -> std::sync::MutexGuard<'_, Vec<SetWatcher>> {
        let mut sets = self
            .inner
            .sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sets.retain(|(_, sender)| sender.receiver_count() > 0);
        sets
    }

    /// Wakes the watchers of sets that hold `tenant_id` (every set: `None`); forgets those
    /// nobody watches any more.
    fn wake_sets(&self, tenant_id: Option<&str>) {
        for (tenants, sender) in self.live_sets().iter() {
            if tenant_id.is_none_or(|id| tenants.contains(id)) {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// The tenants woken since the last call (`None`: every tenant may have been).
    pub fn take_touched(&self) -> Option<HashSet<String>> {
        self.inner
            .touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(HashSet::new())
    }

    fn touch(&self, tenant_id: Option<&str>) {
        if self.inner.any.receiver_count() == 0 {
            return;
        }
        {
            let mut touched = self
                .inner
                .touched
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match (tenant_id, touched.as_mut()) {
                (Some(id), Some(set)) => {
                    set.insert(id.to_owned());
                }
                (None, _) => *touched = None,
                (Some(_), None) => {}
            }
        }
        self.inner.any.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes the waiters of `tenant_id`; forgets the tenant when nobody waits on it.
    pub fn wake(&self, tenant_id: &str) {
        self.touch(Some(tenant_id));
        self.wake_sets(Some(tenant_id));
        let mut tenants = self
            .inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = tenants.get(tenant_id) {
            if sender.receiver_count() == 0 {
                tenants.remove(tenant_id);
            } else {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes every waiter (a notification too large to name its tenants, or a `LISTEN`
    /// connection that was lost and may have missed some).
    pub fn wake_all(&self) {
        self.touch(None);
        self.wake_sets(None);
        let mut tenants = self
            .inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tenants.retain(|_, sender| sender.receiver_count() > 0);
        for sender in tenants.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The server is stopping: every waiter answers now with what it has, and no request
    /// waits any more, so a graceful shutdown is not held up by long-polls.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Wakes the tenants a notification's payload names (`EVERY_TENANT` or empty: all).
    pub fn wake_from_payload(&self, payload: &str) {
        if payload.is_empty() || payload == EVERY_TENANT {
            self.wake_all();
        } else {
            payload.split(',').for_each(|id| self.wake(id));
        }
    }

    /// How many requests wait on `tenant_id` (or are reading before they wait).
    pub fn waiting(&self, tenant_id: &str) -> usize {
        self.inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant_id)
            .map_or(0, watch::Sender::receiver_count)
    }

    /// How many sets of tenants have a watcher (or had one since the last wake-up).
    pub fn sets_watched(&self) -> usize {
        self.inner
            .sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many tenants have a waiter (or had one since their last wake-up).
    pub fn tenants_watched(&self) -> usize {
        self.inner
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Pause before `LISTEN` is tried again after its connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// Until `stop` turns true: `LISTEN`s on the announcer's channel and wakes the tenants
/// each notification names. After the connection is (re)established every waiter is woken,
/// since notifications sent meanwhile were lost.
pub async fn listen(url: String, waiters: EventWaiters, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let mut listener = match sea_orm::sqlx::postgres::PgListener::connect(&url).await {
            Ok(l) => l,
            Err(error) => {
                tracing::debug!(%error, "long-poll LISTEN connection failed; retrying");
                tokio::select! {
                    _ = stop.changed() => break,
                    () = tokio::time::sleep(RELISTEN_AFTER) => continue,
                }
            }
        };
        if let Err(error) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::debug!(%error, "LISTEN failed; retrying");
            tokio::time::sleep(RELISTEN_AFTER).await;
            continue;
        }
        waiters.wake_all();
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => waiters.wake_from_payload(notification.payload()),
                    // The connection was lost (sqlx reconnects on the next call): what was
                    // sent meanwhile is gone, so everyone reads again.
                    Ok(None) => waiters.wake_all(),
                    Err(error) => {
                        tracing::debug!(%error, "long-poll LISTEN connection lost");
                        break;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_up_reaches_the_tenants_waiters_only() {
        let waiters = EventWaiters::default();
        let mut a = waiters.subscribe("a");
        let mut b = waiters.subscribe("b");
        waiters.wake("a");
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.borrow_and_update();
        waiters.wake_from_payload("b,c");
        assert!(!a.has_changed().unwrap());
        assert!(b.has_changed().unwrap());
        b.borrow_and_update();
        waiters.wake_from_payload(EVERY_TENANT);
        assert!(a.has_changed().unwrap() && b.has_changed().unwrap());
    }

    #[tokio::test]
    async fn a_watcher_of_some_tenants_wakes_for_those_only() {
        let waiters = EventWaiters::default();
        let mut some = waiters.subscribe_tenants(Arc::new(["a".to_owned(), "b".to_owned()].into()));
        waiters.wake("c");
        assert!(!some.has_changed().unwrap(), "another tenant's event");
        waiters.wake("b");
        assert!(some.has_changed().unwrap());
        some.borrow_and_update();
        waiters.wake_from_payload("c,a");
        assert!(some.has_changed().unwrap());
        some.borrow_and_update();
        waiters.wake_all();
        assert!(some.has_changed().unwrap());
        // Dropped, it is forgotten at the next wake-up, or the next subscription.
        drop(some);
        assert_eq!(waiters.sets_watched(), 1);
        waiters.wake("z");
        assert_eq!(waiters.sets_watched(), 0);
        for _ in 0..1000 {
            drop(waiters.subscribe_tenants(Arc::new(["a".to_owned()].into())));
        }
        assert_eq!(waiters.sets_watched(), 1, "ended polls do not pile up");
    }

    #[tokio::test]
    async fn a_tenant_nobody_waits_on_is_forgotten() {
        let waiters = EventWaiters::default();
        drop(waiters.subscribe("a"));
        assert_eq!(waiters.tenants_watched(), 1);
        waiters.wake("a");
        assert_eq!(waiters.tenants_watched(), 0);
        waiters.wake_all();
        assert_eq!(waiters.tenants_watched(), 0);
    }

    #[tokio::test]
    async fn closing_wakes_everyone_and_says_so() {
        let waiters = EventWaiters::default();
        let mut a = waiters.subscribe("a");
        waiters.close();
        assert!(waiters.is_closed());
        a.changed().await.unwrap();
    }
}
