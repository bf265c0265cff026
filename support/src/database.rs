//! Databases of a test or bench run on a PostgreSQL server reached through an admin URL:
//! created (optionally from a migrated template), dropped, and leftovers of earlier runs
//! removed by name prefix; and a scratch database (PostgreSQL or an SQLite file) a bench
//! owns for its run.

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, Database};

/// `SCIMBUS_TEST_DATABASE_URL`, or the local default: the admin database of the tests.
pub fn test_admin_url() -> String {
    std::env::var("SCIMBUS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A PostgreSQL server, through the URL of a database on it that may create others.
#[derive(Clone, Debug)]
pub struct Server {
    admin_url: String,
}

impl Server {
    pub fn new(admin_url: &str) -> Self {
        Self {
            admin_url: admin_url.to_owned(),
        }
    }

    /// The URL of database `name` on this server (the admin URL's last segment replaced).
    pub fn url_of(&self, name: &str) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => format!("{}/{name}", self.admin_url),
        }
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let admin = Database::connect(self.admin_url.as_str())
            .await
            .with_context(|| format!("connecting to {}", self.admin_url))?;
        admin.execute_unprepared(sql).await?;
        admin.close().await?;
        Ok(())
    }

    /// Creates database `name` (a copy of `template` when given); returns its URL.
    pub async fn create(&self, name: &str, template: Option<&str>) -> anyhow::Result<String> {
        let from = template.map_or_else(String::new, |t| format!(" TEMPLATE \"{t}\""));
        self.execute(&format!("CREATE DATABASE \"{name}\"{from}"))
            .await?;
        Ok(self.url_of(name))
    }

    /// Drops database `name`, closing its connections.
    pub async fn drop(&self, name: &str) -> anyhow::Result<()> {
        self.execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
    }

    /// Drops every database whose name starts with `prefix` (leftovers of earlier runs).
    pub async fn drop_prefixed(&self, prefix: &str) -> anyhow::Result<()> {
        let admin = Database::connect(self.admin_url.as_str())
            .await
            .with_context(|| format!("connecting to {}", self.admin_url))?;
        let rows = admin
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                admin.get_database_backend(),
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
                [prefix.into()],
            ))
            .await?;
        for row in rows {
            let name: String = row.try_get("", "datname")?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
        }
        admin.close().await?;
        Ok(())
    }

    /// Drops the leftovers named `{prefix}…`, then creates `template` and lets `migrate`
    /// bring it up to date (given its URL). Run once per process; then [`Server::create`]
    /// copies it per test.
    pub async fn prepare_template(
        &self,
        prefix: &str,
        template: &str,
        migrate: impl AsyncFnOnce(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.drop_prefixed(prefix).await?;
        let url = self.create(template, None).await?;
        migrate(&url).await
    }
}

/// A database of a bench's own for its run: on PostgreSQL a fresh database, dropped by
/// [`Scratch::remove`]; on SQLite a file in a temporary directory.
pub enum Scratch {
    Postgres {
        server: Server,
        name: String,
        url: String,
    },
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
}

impl Scratch {
    /// A fresh database `{prefix}<uuid>` on the server of `admin_url`.
    pub async fn postgres(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        if !admin_url.contains('/') {
            bail!("the PostgreSQL URL names no database");
        }
        let server = Server::new(admin_url);
        let name = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
        let url = server.create(&name, None).await?;
        Ok(Self::Postgres { server, name, url })
    }

    /// An SQLite file `{file}` in a fresh temporary directory.
    pub fn sqlite(file: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}/{file}?mode=rwc", dir.path().display());
        Ok(Self::Sqlite { _dir: dir, url })
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Postgres { url, .. } | Self::Sqlite { url, .. } => url,
        }
    }

    /// Drops the PostgreSQL database (a failure is reported, not returned: the run's
    /// results stand) or removes the SQLite file's directory.
    pub async fn remove(self) {
        if let Self::Postgres { server, name, .. } = self
            && let Err(e) = server.drop(&name).await
        {
            eprintln!("warning: could not drop database {name}: {e:#}");
        }
    }
}
