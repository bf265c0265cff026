//! The benchmark's own PostgreSQL cluster (`scimbus_support::cluster`), started with
//! `pg_stat_statements` preloaded and a CSV statement log, so that the SQL scimbus issues
//! can be captured (role `capture`, which logs every statement) and counted
//! (`pg_stat_statements`) without touching the machine's shared server. Both sides of every
//! comparison run against this one cluster with the same settings.

pub use scimbus_support::cluster::{Cluster, bin, free_port};

const SETTINGS: &[&str] = &[
    "max_connections=200",
    "shared_buffers=512MB",
    // Vacuum runs between phases (Bench::quiesce), not in the middle of one.
    "autovacuum=off",
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.max=10000",
    "logging_collector=on",
    "log_destination=csvlog",
    "log_directory=log",
    "log_filename=pg",
];

/// Starts the cluster, with `pg_stat_statements` and the role `capture` in its database.
pub fn start() -> anyhow::Result<Cluster> {
    let cluster = Cluster::start(SETTINGS)?;
    cluster.query(
        "CREATE EXTENSION pg_stat_statements; \
         CREATE ROLE capture SUPERUSER LOGIN; \
         ALTER ROLE capture SET log_statement = 'all'",
    )?;
    Ok(cluster)
}
