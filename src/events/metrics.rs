//! The relay's counters, shared with `/metrics` (which registers these same counters) and
//! `/readyz`. Backlog and the age of the oldest unpublished event are read from the outbox
//! when asked.

use prometheus_client::metrics::counter::Counter;

#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Events confirmed by the broker and marked published.
    pub published: Counter,
    /// Publish attempts that were nacked or failed (one per failed batch position).
    pub publish_failures: Counter,
    /// Messages the broker returned as unroutable (a topology mistake: the alternate
    /// exchange should take them).
    pub returned: Counter,
    /// Events parked as unpublishable (larger than the broker accepts).
    pub unpublishable: Counter,
}

impl RelayMetrics {
    pub fn add(counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    pub fn get(counter: &Counter) -> u64 {
        counter.get()
    }
}
