//! Persistence through SeaORM on PostgreSQL or SQLite (DESIGN 2, 7). Repositories take a
//! connection (pool or transaction) and a tenant; services own the transactions.

pub mod apps;
pub mod audit;
pub mod brake;
pub mod console;
pub mod entities;
mod error;
pub mod groups;
pub mod jobs;
pub mod journal;
pub mod members;
pub mod outbox;
pub mod purge;
pub mod query;
pub mod resources;
pub mod schemas;
pub mod sets;
pub mod setup;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use error::StoreError;

/// Builds a statement written with `$1…$n` placeholders for the connection's backend
/// (SQLite takes `?1…?n`, which bind by number like PostgreSQL's; a `$` not followed by a
/// digit, as in a JSON path, is left alone).
pub(crate) fn statement(
    conn: &impl ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> sea_orm::Statement {
    backend_statement(conn.get_database_backend(), sql, values)
}

/// A JSON column of a raw row: decoded as JSON (PostgreSQL `jsonb`) or parsed from its
/// text (SQLite).
pub(crate) fn json_column(
    row: &sea_orm::QueryResult,
    column: &str,
) -> Result<serde_json::Value, StoreError> {
    match row.try_get::<serde_json::Value>("", column) {
        Ok(v) => Ok(v),
        Err(_) => {
            let text: String = row.try_get("", column)?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("{column} is not JSON: {e}")))
        }
    }
}

/// [`statement`] for a backend rather than a connection (plans are asserted on statements
/// built without running them).
pub(crate) fn backend_statement(
    backend: DbBackend,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> sea_orm::Statement {
    sea_orm::Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
}

/// SQL written with `$1…$n` placeholders in the backend's style (SQLite: `?1…?n`).
pub(crate) fn placeholders(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Sqlite => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_owned(),
    }
}

/// Key of the PostgreSQL advisory lock held while migrating ("scimbus" in ASCII, truncated).
const MIGRATION_LOCK_KEY: i64 = 0x0073_6369_6d62_7573;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The database, opened once per process and shared by clones.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    url: String,
    backend: Backend,
    /// On SQLite, an exclusive lock on `<file>.lock` for the life of the process: SQLite
    /// means one process (DESIGN 2).
    _process_lock: Option<Arc<File>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Opens `url` (`postgres://…` or `sqlite://path?mode=rwc`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Config(
                "the database URL must start with postgres:// or sqlite:".to_owned(),
            ));
        };
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false);
        // A pooled connection is pinged before use only after sitting idle (when a server
        // restart or a proxy may have closed it), not at every checkout: that ping was a
        // second round trip for each statement (docs/decisions.md, Storage).
        options.test_before_acquire_if_idle_for(Duration::from_secs(10));
        let process_lock = match backend {
            Backend::Postgres => {
                options.max_connections(16).min_connections(1);
                // Every statement here is a short indexed lookup; JIT compilation (on by
                // default since PostgreSQL 12) is chosen by cost estimates that recursive
                // membership queries inflate, and cost 50-200 ms per statement where the
                // work was a fraction of a millisecond (docs/decisions.md, Storage).
                options.map_sqlx_postgres_opts(|o| o.options([("jit", "off")]));
                None
            }
            Backend::Sqlite => {
                let lock = lock_sqlite_file(url)?;
                options.max_connections(8).min_connections(1);
                options.map_sqlx_sqlite_opts(|o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                });
                Some(Arc::new(lock))
            }
        };
        let db = Database::connect(options).await?;
        Ok(Self {
            db,
            url: url.to_owned(),
            backend,
            _process_lock: process_lock,
        })
    }

    /// The URL the store was opened with (for the relay's dedicated connections).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads and single statements.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite, so a transaction never has
    /// to upgrade its lock (which fails with `SQLITE_BUSY` instead of waiting).
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.db.begin_with_options(options).await?)
    }

    /// Applies pending migrations. On PostgreSQL under an advisory lock held on a dedicated
    /// connection, so replicas that start together migrate one after the other.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => Migrator::up(&self.db, None).await?,
            Backend::Postgres => {
                let mut options = ConnectOptions::new(self.url.clone());
                options
                    .max_connections(1)
                    .min_connections(1)
                    .sqlx_logging(false);
                let conn = Database::connect(options).await?;
                conn.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .await?;
                let result = Migrator::up(&conn, None).await;
                let unlock = conn
                    .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .await;
                conn.close().await?;
                result?;
                unlock?;
            }
        }
        Ok(())
    }

    /// Whether every migration this binary knows is applied (for `/readyz`). Migrations
    /// the database has and this binary does not (a newer replica applied them during a
    /// rolling upgrade) do not make it unready: migrations are append-only and additive.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT version FROM seaql_migrations",
            ))
            .await?;
        let applied = rows
            .iter()
            .map(|row| row.try_get::<String>("", "version"))
            .collect::<Result<std::collections::HashSet<_>, _>>()?;
        Ok(Migrator::migrations()
            .iter()
            .all(|m| applied.contains(m.name())))
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    pub fn db_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub async fn close(self) -> Result<(), StoreError> {
        Ok(self.db.close().await?)
    }
}

/// The file of a `sqlite:` URL, or `None` for an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn lock_sqlite_file(url: &str) -> Result<File, StoreError> {
    let Some(path) = sqlite_path(url) else {
        return Err(StoreError::Config(
            "an in-memory SQLite database is not supported: give a file".to_owned(),
        ));
    };
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::FileInUse(path)),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Config(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;
    use std::path::PathBuf;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://scimbus.db?mode=rwc"),
            Some(PathBuf::from("scimbus.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
