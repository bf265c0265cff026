//! Relay leadership (DESIGN 12): one relay publishes at a time. On PostgreSQL the leader
//! holds a session advisory lock on a dedicated connection; leadership is re-checked before
//! each publish (the lock lives exactly as long as that connection). On SQLite the relay
//! runs inside the one process that owns the file, so it is always the leader.

use sea_orm::sqlx::{Connection, PgConnection};

/// Key of the relay's advisory lock.
pub const RELAY_LOCK_KEY: i64 = 0x0073_6369_6d72_656c;

pub enum Leader {
    InProcess,
    Postgres {
        url: String,
        connection: Option<PgConnection>,
    },
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leader::InProcess => f.write_str("InProcess"),
            Leader::Postgres { connection, .. } => f
                .debug_struct("Postgres")
                .field("leading", &connection.is_some())
                .finish(),
        }
    }
}

impl Leader {
    /// Whether this relay leads now: keeps a held lock if its connection still answers,
    /// otherwise tries to take it.
    pub async fn ensure(&mut self) -> Result<bool, sea_orm::sqlx::Error> {
        let Leader::Postgres { url, connection } = self else {
            return Ok(true);
        };
        if let Some(conn) = connection.as_mut() {
            if conn.ping().await.is_ok() {
                return Ok(true);
            }
            // The session is gone, and the lock with it.
            *connection = None;
        }
        let mut conn = PgConnection::connect(url).await?;
        let acquired: bool = sea_orm::sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if acquired {
            *connection = Some(conn);
        } else {
            let _ = conn.close().await;
        }
        Ok(acquired)
    }

    /// Gives leadership up (the lock is released with the connection).
    pub async fn release(&mut self) {
        if let Leader::Postgres { connection, .. } = self
            && let Some(conn) = connection.take()
        {
            let _ = conn.close().await;
        }
    }
}
