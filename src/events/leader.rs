//! Relay leadership (DESIGN 12): one relay publishes at a time. On PostgreSQL the leader
//! holds a session advisory lock on a dedicated connection; leadership is re-checked before
//! each publish (the lock lives exactly as long as that connection). On SQLite the relay
//! runs inside the one process that owns the file, so it is always the leader.
//!
//! Partitions: every leadership operation is bounded by [`LEADER_TIMEOUT`] (a database
//! cut off by a partition answers nothing, and TCP alone would wait for minutes), so a
//! cut-off leader stops publishing within it; the server is asked to send keepalives on
//! the session ([`KEEPALIVES`]), so it drops a dead leader's session, and the lock with
//! it, within about 11 s. A standby keeps one connection and tries the lock on it at most
//! once per poll interval, however often writes wake it.

use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{ConnectOptions, Connection, PgConnection};

/// Key of the relay's advisory lock.
pub const RELAY_LOCK_KEY: i64 = 0x0073_6369_6d72_656c;

/// Longest a leadership operation (connect, ping, try the lock) may take.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Server-side TCP keepalives of the leader's session: first probe after 5 s of silence,
/// then every 2 s, dead after 3 unanswered: the server lets a partitioned leader's lock go
/// about 11 s after it last heard from it.
pub const KEEPALIVES: [(&str, &str); 3] = [
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
];

pub enum Leader {
    InProcess,
    Postgres(Box<PgLeader>),
}

/// Leadership through a PostgreSQL advisory lock.
pub struct PgLeader {
    url: String,
    /// The session holding the lock, while leading.
    leading: Option<PgConnection>,
    /// The session a standby tries the lock on.
    standby: Option<PgConnection>,
    /// A standby's next try.
    next_try: Option<Instant>,
    retry: Duration,
    attempts: u64,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leader::InProcess => f.write_str("InProcess"),
            Leader::Postgres(pg) => f
                .debug_struct("Postgres")
                .field("leading", &pg.leading.is_some())
                .finish(),
        }
    }
}

/// `operation`, or an error once [`LEADER_TIMEOUT`] has passed.
async fn bounded<T>(
    operation: impl std::future::Future<Output = Result<T, sea_orm::sqlx::Error>>,
) -> Result<T, sea_orm::sqlx::Error> {
    match tokio::time::timeout(LEADER_TIMEOUT, operation).await {
        Ok(result) => result,
        Err(_) => Err(sea_orm::sqlx::Error::PoolTimedOut),
    }
}

impl Leader {
    /// Leadership on PostgreSQL at `url`; a standby tries the lock every `retry`.
    pub fn postgres(url: &str, retry: Duration) -> Self {
        Leader::Postgres(Box::new(PgLeader {
            url: url.to_owned(),
            leading: None,
            standby: None,
            next_try: None,
            retry,
            attempts: 0,
        }))
    }

    /// Whether this relay leads now: keeps a held lock if its session still answers
    /// within [`LEADER_TIMEOUT`]; otherwise, at most once per retry interval, tries to
    /// take it.
    pub async fn ensure(&mut self) -> Result<bool, sea_orm::sqlx::Error> {
        let Leader::Postgres(pg) = self else {
            return Ok(true);
        };
        if let Some(conn) = pg.leading.as_mut() {
            if bounded(conn.ping()).await.is_ok() {
                return Ok(true);
            }
            // The session is gone or cut off, and the lock with it (the server drops it
            // on its keepalives). Not closed gracefully: nothing may answer.
            pg.leading = None;
        }
        let now = Instant::now();
        if pg.next_try.is_some_and(|at| now < at) {
            return Ok(false);
        }
        pg.next_try = Some(now + pg.retry);
        pg.attempts += 1;
        let mut conn = match pg.standby.take() {
            Some(conn) => conn,
            None => {
                let options: PgConnectOptions = pg.url.parse()?;
                let options = options
                    .options(KEEPALIVES)
                    .application_name("scimbus-relay");
                bounded(options.connect()).await?
            }
        };
        let acquired: bool = bounded(
            sea_orm::sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK_KEY)
                .fetch_one(&mut conn),
        )
        .await?;
        if acquired {
            pg.leading = Some(conn);
        } else {
            pg.standby = Some(conn);
        }
        Ok(acquired)
    }

    /// How many times this relay has tried to take the lock.
    pub fn attempts(&self) -> u64 {
        match self {
            Leader::InProcess => 0,
            Leader::Postgres(pg) => pg.attempts,
        }
    }

    /// Gives leadership up (the lock is released with the connection).
    pub async fn release(&mut self) {
        if let Leader::Postgres(pg) = self {
            for conn in [pg.leading.take(), pg.standby.take()].into_iter().flatten() {
                let _ = bounded(conn.close()).await;
            }
        }
    }
}
