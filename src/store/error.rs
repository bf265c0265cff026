//! Store errors. Unique violations are mapped by constraint name (CONVENTIONS 4).

use std::path::PathBuf;

use sea_orm::{DbErr, SqlErr};

/// Named unique constraints and, for SQLite (whose messages name columns, not indexes),
/// the column list that identifies them.
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    (
        "users_tenant_id_user_name_ci_key",
        "users.tenant_id, users.user_name_ci",
    ),
    (
        "groups_tenant_id_display_name_ci_key",
        "groups.tenant_id, groups.display_name_ci",
    ),
    ("tenants_slug_key", "tenants.slug"),
    (
        "tokens_tenant_id_token_hash_key",
        "tokens.tenant_id, tokens.token_hash",
    ),
    ("admin_tokens_token_hash_key", "admin_tokens.token_hash"),
    ("outbox_tenant_id_id_key", "outbox.tenant_id, outbox.id"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A named unique constraint was violated.
    #[error("unique constraint {0} violated")]
    Unique(&'static str),
    /// The row does not exist (in this tenant).
    #[error("not found")]
    NotFound,
    /// The tenant was deleted while the write was in hand: nothing of it may land.
    #[error("the tenant was deleted")]
    TenantDeleted,
    /// The tenant's schema extensions changed after the write built its search documents
    /// with the registry it had (a registration committed meanwhile): nothing may land, or
    /// the documents would miss the new typing that the re-index already passed.
    #[error("the tenant's schema extensions changed during the write")]
    SchemaChanged,
    /// Another process holds the SQLite file.
    #[error("{} is in use by another scimbus process (SQLite means one process)", .0.display())]
    FileInUse(PathBuf),
    /// The store cannot be opened as configured.
    #[error("{0}")]
    Config(String),
    /// Stored data that does not parse (a bug or a hand edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database cannot be reached or is restarting: retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    #[error(transparent)]
    Db(DbErr),
}

/// Whether `err` says the database is out of reach (connection refused or lost, pool
/// exhausted or closed, the server shutting down or starting) rather than the statement
/// being wrong.
fn unavailable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(e) = runtime else {
        return false;
    };
    match e.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Tls(_) => true,
        // PostgreSQL: class 08 (connection exception), 57P01-57P03 (shutting down,
        // starting up).
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if unavailable(&err) {
            return StoreError::Unavailable(err);
        }
        if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
            for (name, columns) in UNIQUE_CONSTRAINTS {
                if message.contains(name) || message.contains(columns) {
                    return StoreError::Unique(name);
                }
            }
        }
        StoreError::Db(err)
    }
}
