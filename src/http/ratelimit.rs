//! Per-token rate limiting (governor's GCRA): every tenant token has its own budget, so one
//! IdP connection cannot starve another. Limits are per process: behind a load balancer
//! with N replicas a token may get up to N times its limit. A limited request answers 429
//! with a SCIM error and `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

type Limiter = DefaultKeyedRateLimiter<String>;

/// The limiters of this process: the default one and each tenant's own.
#[derive(Clone, Default)]
pub struct RateLimits {
    default: Option<Arc<Limiter>>,
    tenants: HashMap<String, Option<Arc<Limiter>>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

fn limiter(limit: Option<RateLimit>) -> Option<Arc<Limiter>> {
    let limit = limit?;
    let requests = NonZeroU32::new(limit.requests)?;
    let quota = Quota::with_period(limit.per / requests.get())?
        .allow_burst(NonZeroU32::new(limit.burst).unwrap_or(requests));
    Some(Arc::new(RateLimiter::keyed(quota)))
}

impl RateLimits {
    /// `default` for every tenant but those in `tenants` (where `None` means unlimited).
    pub fn new(default: Option<RateLimit>, tenants: &HashMap<String, Option<RateLimit>>) -> Self {
        Self {
            default: limiter(default),
            tenants: tenants
                .iter()
                .map(|(tenant, limit)| (tenant.clone(), limiter(*limit)))
                .collect(),
        }
    }

    /// Takes one request from the token's budget; when it is spent, how long until the
    /// next request would pass.
    pub fn check(&self, tenant: &str, token_id: &str) -> Result<(), Duration> {
        let limiter = match self.tenants.get(tenant) {
            Some(limiter) => limiter.as_ref(),
            None => self.default.as_ref(),
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter
            .check_key(&token_id.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}
