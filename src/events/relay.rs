//! The relay (DESIGN 12): reads committed, unpublished events in per-tenant `sequence`
//! order (no transaction held across broker I/O), publishes them with confirms, and marks
//! only each tenant's contiguous confirmed prefix, in one short statement. The rest is
//! published again later: duplicates are possible, and after a broker refusal a retried
//! event may follow later ones of its tenant that were already in flight (DESIGN 12).
//!
//! `relay_once` is one step, for tests; `drain` publishes until the backlog is drained
//! with one batch in flight while the previous is marked and the next read; `run` is the
//! loop of drains, woken by the writers (in process) or by LISTEN/NOTIFY (PostgreSQL),
//! polling as a fallback.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::leader::Leader;
use super::metrics::RelayMetrics;
use super::publisher::{Delivery, Publisher};
use crate::clock::Clock;
use crate::config::RelaySettings;
use crate::domain::{TenantId, Timestamp};
use crate::store::outbox::{self, EventKey, Pending};
use crate::store::{Backend, Store, StoreError};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// `published` events were confirmed and marked; `held_back` were not confirmed (nacked
    /// or failed) or came after such an event of the same tenant, and wait for a retry.
    Published { published: usize, held_back: usize },
    /// Nothing waits.
    Empty,
    /// Another relay leads.
    NotLeader,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("leadership: {0}")]
    Leadership(#[from] sea_orm::sqlx::Error),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
}

/// Longest pause between retries while the broker is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Relay {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: RelaySettings,
    leader: Leader,
    publisher: Option<Publisher>,
    metrics: Arc<RelayMetrics>,
    lanes: Lanes,
}

/// The relay's schedule (DESIGN 12): a lane per tenant with events waiting, each batch
/// shared between the lanes and started after the tenant served last (round robin), and
/// a lane whose events the broker refuses backing off alone while the others flow.
#[derive(Debug, Default)]
struct Lanes {
    /// The last tenant of the last batch: the next one starts after it.
    cursor: TenantId,
    /// Refused tenants: when to try again, and the pause that led there.
    backoff: HashMap<TenantId, (Instant, Duration)>,
}

/// First pause of a refused lane; it doubles up to [`MAX_BACKOFF`] while refusals go on.
const LANE_BACKOFF: Duration = Duration::from_millis(100);

impl Lanes {
    fn refused(&mut self, tenant: &TenantId, now: Instant) {
        let pause = self
            .backoff
            .get(tenant)
            .map_or(LANE_BACKOFF, |(_, p)| (*p * 2).min(MAX_BACKOFF));
        self.backoff.insert(tenant.to_owned(), (now + pause, pause));
    }

    fn delivered(&mut self, tenant: &TenantId) {
        self.backoff.remove(tenant);
    }

    fn waiting(&self, tenant: &TenantId, now: Instant) -> bool {
        self.backoff
            .get(tenant)
            .is_some_and(|(until, _)| *until > now)
    }

    /// How long until the first backed-off lane may be tried again.
    fn next_retry(&self, now: Instant) -> Option<Duration> {
        self.backoff
            .values()
            .filter(|(until, _)| *until > now)
            .map(|(until, _)| until.saturating_duration_since(now))
            .min()
    }

    fn settled(&mut self, outcome: &Settledness) {
        let now = Instant::now();
        for tenant in &outcome.delivered {
            if !outcome.refused.contains(tenant) {
                self.delivered(tenant);
            }
        }
        for tenant in &outcome.refused {
            self.refused(tenant, now);
        }
    }

    /// The next batch: up to `limit` events shared between the lanes that have events
    /// waiting and are not backing off, each lane's after the sequence `seen` holds for it
    /// (the events already read by this drain).
    async fn next_batch(
        &mut self,
        store: &Store,
        seen: &mut HashMap<TenantId, i64>,
        limit: u64,
    ) -> Result<Vec<Pending>, StoreError> {
        let now = Instant::now();
        let want = limit.saturating_add(self.backoff.len() as u64);
        let mut tenants = outbox::pending_tenants(store.conn(), &self.cursor, want).await?;
        if (tenants.len() as u64) < want && !self.cursor.as_str().is_empty() {
            // Round the table: the tenants up to the cursor come after those past it.
            let first = outbox::pending_tenants(store.conn(), &TenantId::default(), want).await?;
            tenants.extend(first.into_iter().filter(|t| *t <= self.cursor));
        }
        tenants.retain(|t| !self.waiting(t, now));
        tenants.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let Some(last) = tenants.last() else {
            return Ok(Vec::new());
        };
        self.cursor = last.clone();
        let per_lane = (limit / tenants.len() as u64).max(1);
        let lanes: Vec<(TenantId, i64)> = tenants
            .into_iter()
            .map(|t| {
                let after = seen.get(&t).copied().unwrap_or(i64::MIN);
                (t, after)
            })
            .collect();
        let batch = outbox::fetch_lanes(store.conn(), &lanes, per_lane).await?;
        for event in &batch {
            let last = seen.entry(event.tenant_id.clone()).or_insert(i64::MIN);
            *last = (*last).max(event.sequence);
        }
        Ok(batch)
    }
}

impl Relay {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: RelaySettings,
        metrics: Arc<RelayMetrics>,
    ) -> Self {
        let leader = match store.backend() {
            Backend::Sqlite => Leader::InProcess,
            Backend::Postgres => Leader::postgres(store.url(), settings.poll_interval),
        };
        Self {
            store,
            clock,
            settings,
            leader,
            publisher: None,
            metrics,
            lanes: Lanes::default(),
        }
    }

    async fn publisher(&mut self) -> Result<&Publisher, RelayError> {
        if self.publisher.as_ref().is_some_and(|p| !p.is_connected()) {
            self.publisher = None;
        }
        let publisher = match self.publisher.take() {
            Some(p) => p,
            None => Publisher::connect(&self.settings).await?,
        };
        Ok(self.publisher.insert(publisher))
    }

    /// Parks what can never be published (too large), loudly; returns the rest.
    async fn sendable(
        &self,
        batch: Vec<Pending>,
        now: &Timestamp,
    ) -> Result<Vec<Pending>, RelayError> {
        let mut sendable = Vec::with_capacity(batch.len());
        for event in batch {
            if event.body.len() > self.settings.max_message_bytes {
                // It can never be published: park it, loudly, and let the rest through.
                // Consumers see a version gap and resync the resource (pull API, SCIM).
                let error = format!(
                    "message of {} bytes exceeds SCIMBUS_RELAY_MAX_MESSAGE_BYTES ({})",
                    event.body.len(),
                    self.settings.max_message_bytes
                );
                tracing::error!(event = %event.id, tenant = %event.tenant_id, sequence = event.sequence, %error, "event parked as unpublishable");
                outbox::mark_failed(self.store.conn(), &event.key(), &error, now).await?;
                RelayMetrics::add(&self.metrics.unpublishable, 1);
                continue;
            }
            sendable.push(event);
        }
        Ok(sendable)
    }

    /// The publisher, after re-checking leadership right before publishing; `None` when
    /// another relay leads. A broker that cannot be reached counts an attempt on `batch`.
    async fn ready_publisher(
        &mut self,
        batch: &[Pending],
    ) -> Result<Option<&Publisher>, RelayError> {
        if !self.leader.ensure().await? {
            return Ok(None);
        }
        if let Err(e) = self.publisher().await {
            let keys: Vec<EventKey> = batch.iter().map(Pending::key).collect();
            outbox::record_attempt(self.store.conn(), &keys, &e.to_string()).await?;
            return Err(e);
        }
        Ok(self.publisher.as_ref())
    }

    /// One step: lead or stand by, read a batch, publish, mark the confirmed prefixes.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn relay_once(&mut self) -> Result<RelayOutcome, RelayError> {
        if !self.leader.ensure().await? {
            return Ok(RelayOutcome::NotLeader);
        }
        super::sequencer::number_all(&self.store).await?;
        let batch = self
            .lanes
            .next_batch(&self.store, &mut HashMap::new(), self.settings.batch_size)
            .await?;
        if batch.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        let now = Timestamp::at(self.clock.now());
        let sendable = self.sendable(batch, &now).await?;
        if sendable.is_empty() {
            return Ok(RelayOutcome::Published {
                published: 0,
                held_back: 0,
            });
        }
        let Some(publisher) = self.ready_publisher(&sendable).await? else {
            return Ok(RelayOutcome::NotLeader);
        };
        let deliveries = publisher.publish(&sendable).await;
        let outcome = settle(&self.store, &self.metrics, &sendable, &deliveries, &now).await?;
        self.lanes.settled(&outcome);
        self.after_settle(&outcome).await;
        Ok(outcome.into())
    }

    /// Publishes until every lane is drained or backing off, one batch in flight while the
    /// previous one is marked and the next one read: database and broker work overlap. A
    /// lane the broker refuses backs off alone; the drain goes on with the others. Stops
    /// when a read comes back empty or when `stop` turns true. Events after a refused one
    /// of the same tenant may be in flight already: they are published before its retry,
    /// as DESIGN 12 allows (consumers order each resource by `version`).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn drain(
        &mut self,
        stop: &watch::Receiver<bool>,
    ) -> Result<RelayOutcome, RelayError> {
        if !self.leader.ensure().await? {
            return Ok(RelayOutcome::NotLeader);
        }
        super::sequencer::number_all(&self.store).await?;
        // The lanes are handed to the reads that run beside a publish, and put back after.
        let mut lanes = std::mem::take(&mut self.lanes);
        let result = self.drain_lanes(&mut lanes, stop).await;
        self.lanes = lanes;
        result
    }

    async fn drain_lanes(
        &mut self,
        lanes: &mut Lanes,
        stop: &watch::Receiver<bool>,
    ) -> Result<RelayOutcome, RelayError> {
        let limit = self.settings.batch_size;
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let mut seen = HashMap::new();
        let mut batch = lanes.next_batch(&store, &mut seen, limit).await?;
        if batch.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        let mut total = Settledness::default();
        // The batch published last, waiting to be marked while the next one is in flight.
        let mut in_flight: Option<(Vec<Pending>, Vec<Delivery>, Timestamp)> = None;
        loop {
            let now = Timestamp::at(self.clock.now());
            let sendable = self.sendable(batch, &now).await?;
            let Some(publisher) = self.ready_publisher(&sendable).await? else {
                if let Some((sent, deliveries, at)) = in_flight.take() {
                    let outcome = settle(&store, &metrics, &sent, &deliveries, &at).await?;
                    lanes.settled(&outcome);
                }
                return Ok(RelayOutcome::NotLeader);
            };
            // This batch goes out while the previous one is marked and the next one read.
            let previous = in_flight.take();
            let (deliveries, (marked, next)) = tokio::join!(publisher.publish(&sendable), async {
                let marked = match &previous {
                    Some((sent, deliveries, at)) => settle(&store, &metrics, sent, deliveries, at)
                        .await
                        .map(Some),
                    None => Ok(None),
                };
                if let Ok(Some(outcome)) = &marked {
                    // A lane refused in the previous batch sits out the next read.
                    lanes.settled(outcome);
                }
                let next = lanes.next_batch(&store, &mut seen, limit).await;
                (marked, next)
            });
            in_flight = Some((sendable, deliveries, now));
            if let Some(outcome) = marked? {
                self.after_settle(&outcome).await;
                total.add(&outcome);
            }
            batch = next?;
            if batch.is_empty() || *stop.borrow() {
                if let Some((sent, deliveries, at)) = in_flight.take() {
                    let outcome = settle(&store, &metrics, &sent, &deliveries, &at).await?;
                    lanes.settled(&outcome);
                    self.after_settle(&outcome).await;
                    total.add(&outcome);
                }
                return Ok(total.into());
            }
        }
    }

    /// Closes a broker connection that failed while sending.
    async fn after_settle(&mut self, outcome: &Settledness) {
        if outcome.connection_failed
            && let Some(p) = self.publisher.take()
        {
            p.close().await;
        }
    }

    /// Publishes a batch without marking it, as a relay that stops between publish and
    /// mark would; returns the ids sent. For tests of redelivery.
    pub async fn publish_without_marking(&mut self) -> Result<Vec<String>, RelayError> {
        super::sequencer::number_all(&self.store).await?;
        let batch = outbox::fetch_unpublished(self.store.conn(), self.settings.batch_size).await?;
        let publisher = self.publisher().await?;
        publisher.publish(&batch).await;
        Ok(batch.into_iter().map(|e| e.id).collect())
    }

    /// How many times this relay has tried to take leadership (a standby: at most once
    /// per poll interval).
    pub fn leadership_attempts(&self) -> u64 {
        self.leader.attempts()
    }

    /// Stops leading and closes the broker connection.
    pub async fn shutdown(mut self) {
        self.leader.release().await;
        if let Some(p) = self.publisher.take() {
            p.close().await;
        }
    }

    /// The loop, until the process stops: see [`Relay::run_until`].
    pub async fn run(self, wake: Arc<Notify>) {
        let (keep, stop) = watch::channel(false);
        self.run_until(wake, stop).await;
        drop(keep);
    }

    /// The loop: publish while there is work; otherwise wait for a wake-up (in-process
    /// signal or PostgreSQL NOTIFY) or the poll interval; back off while the broker fails.
    /// When `stop` turns true it finishes the batch in hand, gives up leadership, closes
    /// the broker connection and returns.
    pub async fn run_until(mut self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        // Declare the topology at start, before any event: consumers bind their queues to
        // the exchange (passively) as soon as scimbus runs, not after its first write.
        if let Err(error) = self.publisher().await {
            tracing::warn!(%error, "broker not reachable at start; the relay will retry");
        }
        let mut listener = self.listen().await;
        let mut backoff = Duration::from_millis(100);
        while !*stop.borrow() {
            let pause = match self.drain(&stop).await {
                // A refused lane backs off alone (`Lanes`); the others were drained.
                Ok(RelayOutcome::Published { .. }) | Ok(RelayOutcome::Empty) => {
                    backoff = Duration::from_millis(100);
                    None
                }
                Ok(RelayOutcome::NotLeader) => None,
                Err(_) => {
                    let pause = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    Some(pause)
                }
            };
            let lane_retry = self.lanes.next_retry(Instant::now());
            let wait = pause
                .unwrap_or(self.settings.poll_interval)
                .min(lane_retry.unwrap_or(Duration::MAX));
            let woken_early = pause.is_none();
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(wait) => {}
                _ = wake.notified(), if woken_early => {}
                notification = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                }, if woken_early => {
                    if notification.is_err() {
                        listener = None;
                    }
                }
            }
            if listener.is_none() && self.store.backend() == Backend::Postgres {
                listener = self.listen().await;
            }
        }
        self.shutdown().await;
        tracing::info!("relay stopped");
    }

    async fn listen(&self) -> Option<sea_orm::sqlx::postgres::PgListener> {
        if self.store.backend() != Backend::Postgres {
            return None;
        }
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect(self.store.url())
            .await
            .ok()?;
        listener.listen(outbox::NOTIFY_CHANNEL).await.ok()?;
        Some(listener)
    }
}

/// What marking a published batch did.
#[derive(Debug, Default)]
struct Settledness {
    published: usize,
    held_back: usize,
    connection_failed: bool,
    /// Tenants with events confirmed.
    delivered: Vec<TenantId>,
    /// Tenants with an event the broker refused or that failed.
    refused: Vec<TenantId>,
}

impl Settledness {
    /// Adds the counts of another batch (the tenants are for the lanes, not kept).
    fn add(&mut self, other: &Settledness) {
        self.published += other.published;
        self.held_back += other.held_back;
    }
}

impl From<Settledness> for RelayOutcome {
    fn from(s: Settledness) -> Self {
        RelayOutcome::Published {
            published: s.published,
            held_back: s.held_back,
        }
    }
}

/// Marks each tenant's confirmed prefix of a published batch and records the attempts of
/// the rest.
async fn settle(
    store: &Store,
    metrics: &RelayMetrics,
    sent: &[Pending],
    deliveries: &[Delivery],
    now: &Timestamp,
) -> Result<Settledness, RelayError> {
    let Settled {
        ranges,
        unconfirmed,
        refused,
        error,
    } = confirmed_prefixes(sent, deliveries);
    let delivered = ranges.iter().map(|(t, _, _)| t.clone()).collect();
    let returned = deliveries
        .iter()
        .filter(|d| matches!(d, Delivery::Acked { returned: true }))
        .count();
    if returned > 0 {
        tracing::warn!(
            returned,
            "the broker returned unroutable messages: check the alternate exchange"
        );
        RelayMetrics::add(&metrics.returned, returned as u64);
    }
    let published = outbox::mark_published(store.conn(), &ranges, now).await? as usize;
    RelayMetrics::add(&metrics.published, published as u64);
    let mut connection_failed = false;
    if let Some(error) = error {
        tracing::warn!(held_back = unconfirmed.len(), %error, "events not confirmed; they will be published again");
        RelayMetrics::add(&metrics.publish_failures, unconfirmed.len() as u64);
        outbox::record_attempt(store.conn(), &unconfirmed, &error).await?;
        connection_failed = deliveries.iter().any(|d| matches!(d, Delivery::Failed(_)));
    }
    Ok(Settledness {
        published,
        held_back: unconfirmed.len(),
        connection_failed,
        delivered,
        refused,
    })
}

/// How a batch settled.
#[derive(Debug, PartialEq)]
struct Settled {
    /// Per tenant, the range of its events confirmed before its first unconfirmed one.
    ranges: Vec<(TenantId, i64, i64)>,
    /// The events not confirmed, or held back behind one of their tenant.
    unconfirmed: Vec<EventKey>,
    /// The tenants with an event not confirmed, in batch order.
    refused: Vec<TenantId>,
    /// The first error seen.
    error: Option<String>,
}

fn confirmed_prefixes(sent: &[Pending], deliveries: &[Delivery]) -> Settled {
    let mut ranges: HashMap<&TenantId, (i64, i64)> = HashMap::new();
    let mut order: Vec<&TenantId> = Vec::new();
    let mut blocked: HashSet<&TenantId> = HashSet::new();
    let mut refused = Vec::new();
    let mut unconfirmed = Vec::new();
    let mut error = None;
    for (event, delivery) in sent.iter().zip(deliveries) {
        let tenant = &event.tenant_id;
        match delivery {
            Delivery::Acked { .. } if !blocked.contains(tenant) => {
                ranges
                    .entry(tenant)
                    .and_modify(|r| r.1 = event.sequence)
                    .or_insert_with(|| {
                        order.push(tenant);
                        (event.sequence, event.sequence)
                    });
            }
            Delivery::Acked { .. } => unconfirmed.push(event.key()),
            Delivery::Nacked => {
                if blocked.insert(tenant) {
                    refused.push(tenant.clone());
                }
                unconfirmed.push(event.key());
                error.get_or_insert_with(|| "nacked by the broker".to_owned());
            }
            Delivery::Failed(reason) => {
                if blocked.insert(tenant) {
                    refused.push(tenant.clone());
                }
                unconfirmed.push(event.key());
                error.get_or_insert_with(|| reason.clone());
            }
        }
    }
    let ranges = order
        .into_iter()
        .filter_map(|t| ranges.get(t).map(|(a, b)| (t.clone(), *a, *b)))
        .collect();
    Settled {
        ranges,
        unconfirmed,
        refused,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: &str, sequence: i64) -> Pending {
        Pending {
            tenant_id: TenantId::from(tenant),
            sequence,
            id: format!("{tenant}-{sequence}"),
            routing_key: format!("{tenant}.user.created"),
            body: "{}".to_owned(),
        }
    }

    #[test]
    fn only_each_tenants_contiguous_confirmed_prefix_is_marked() {
        let sent = vec![
            event("a", 1),
            event("a", 2),
            event("a", 3),
            event("b", 7),
            event("b", 8),
        ];
        let ack = Delivery::Acked { returned: false };
        let deliveries = vec![ack.clone(), Delivery::Nacked, ack.clone(), ack.clone(), ack];
        let Settled {
            ranges,
            unconfirmed,
            error,
            ..
        } = confirmed_prefixes(&sent, &deliveries);
        assert_eq!(
            ranges,
            vec![(TenantId::from("a"), 1, 1), (TenantId::from("b"), 7, 8)]
        );
        let held: Vec<i64> = unconfirmed.iter().map(|k| k.sequence).collect();
        assert_eq!(
            held,
            vec![2, 3],
            "a:3 was acked but follows a nack: held back"
        );
        assert_eq!(error.as_deref(), Some("nacked by the broker"));
    }

    #[test]
    fn a_failure_holds_back_the_rest_of_its_tenant() {
        let sent = vec![event("a", 1), event("a", 2)];
        let deliveries = vec![
            Delivery::Failed("connection reset".into()),
            Delivery::Failed("not sent".into()),
        ];
        let Settled {
            ranges,
            unconfirmed,
            error,
            ..
        } = confirmed_prefixes(&sent, &deliveries);
        assert!(ranges.is_empty());
        assert_eq!(unconfirmed.len(), 2);
        assert_eq!(error.as_deref(), Some("connection reset"));
    }
}
