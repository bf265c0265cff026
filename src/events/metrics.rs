//! The relay's counters, shared with whoever exports them. Backlog and the age of the
//! oldest unpublished event are read from the outbox when asked.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Events confirmed by the broker and marked published.
    pub published: AtomicU64,
    /// Publish attempts that were nacked or failed (one per failed batch position).
    pub publish_failures: AtomicU64,
    /// Messages the broker returned as unroutable (a topology mistake: the alternate
    /// exchange should take them).
    pub returned: AtomicU64,
    /// Events parked as unpublishable (larger than the broker accepts).
    pub unpublishable: AtomicU64,
}

impl RelayMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
