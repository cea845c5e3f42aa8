//! Picking the storage backend from the database URL: the only place in Regain that names a
//! concrete store. The URL may carry a password, so it is only ever shown through
//! [`display_url`], which keeps the scheme, host and path and drops credentials and the query.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use regain_store::Store;
use regain_store_postgres::{PostgresConfig, PostgresStore};
use regain_store_sqlite::{SqliteConfig, SqliteStore};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::migrate::{Migrate, Migrator};

use crate::config::DatabaseSection;

/// The schemes a database URL may have.
pub const ACCEPTED_SCHEMES: &str = "sqlite:, postgres:// or postgresql://";

/// An opened store and what is needed to migrate it.
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Migrations applied and not yet applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: usize,
    pub pending: usize,
}

impl Backend {
    /// Opens the database the URL names. SQLite connects now (creating the file and its
    /// directory); PostgreSQL connects lazily, so a server can start while its database is down.
    pub async fn open(db: &DatabaseSection) -> anyhow::Result<Self> {
        let url = db.url();
        let kind = BackendKind::of(&url)?;
        std::fs::create_dir_all(&db.data_dir)
            .with_context(|| format!("creating the data directory {}", db.data_dir.display()))?;
        let shown = display_url(url.expose_secret());
        match kind {
            BackendKind::Sqlite => {
                if let Some(parent) = sqlite_path(url.expose_secret())
                    .and_then(|p| std::path::Path::new(&p).parent().map(std::path::Path::to_path_buf))
                {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(&parent)
                            .with_context(|| format!("creating the database directory {}", parent.display()))?;
                    }
                }
                let config = SqliteConfig {
                    url: url.expose_secret().to_owned(),
                    readers_max: db.connections_max,
                    acquire_timeout_ms: db.acquire_timeout_ms,
                    ..SqliteConfig::default()
                };
                let store =
                    SqliteStore::connect(&config).await.with_context(|| format!("opening the database {shown}"))?;
                Ok(Self::Sqlite(store))
            }
            BackendKind::Postgres => {
                let mut config = PostgresConfig::new(url.expose_secret());
                config.connections_max = db.connections_max;
                config.acquire_timeout_ms = db.acquire_timeout_ms;
                let store =
                    PostgresStore::connect_lazy(&config).with_context(|| format!("opening the database {shown}"))?;
                Ok(Self::Postgres(store))
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => Arc::new(s.clone()),
            Self::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// Applies every pending migration; returns how many there were.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let before = self.migration_status().await?;
        match self {
            Self::Sqlite(s) => s.migrate().await,
            Self::Postgres(s) => s.migrate().await,
        }
        .context("applying migrations")?;
        Ok(before.pending)
    }

    /// How many of the embedded migrations the database has applied (creating sqlx's
    /// bookkeeping table if it is missing, as migrating would).
    pub async fn migration_status(&self) -> anyhow::Result<MigrationStatus> {
        let applied = match self {
            Self::Sqlite(s) => {
                let mut conn = s.writer_pool().acquire().await?;
                applied_versions(&mut *conn).await?
            }
            Self::Postgres(s) => {
                let mut conn = s.pool().acquire().await.context("connecting to PostgreSQL")?;
                applied_versions(&mut *conn).await?
            }
        };
        Ok(status(self.migrator(), &applied))
    }

    /// Refuses to work on a database whose schema is behind this binary.
    pub async fn require_migrated(&self) -> anyhow::Result<()> {
        let status = self.migration_status().await?;
        if status.pending > 0 {
            bail!("the database has {} migration(s) not yet applied; run `regain migrate` first", status.pending);
        }
        Ok(())
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Self::Sqlite(_) => &regain_store_sqlite::MIGRATIONS,
            Self::Postgres(_) => &regain_store_postgres::MIGRATIONS,
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

async fn applied_versions<C: Migrate + ?Sized>(conn: &mut C) -> anyhow::Result<HashSet<i64>> {
    conn.ensure_migrations_table().await.context("reading the migration table")?;
    let applied = conn.list_applied_migrations().await.context("reading the migration table")?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}

fn status(migrator: &Migrator, applied: &HashSet<i64>) -> MigrationStatus {
    let ups = migrator.iter().filter(|m| !m.migration_type.is_down_migration());
    let (done, pending): (Vec<_>, Vec<_>) = ups.partition(|m| applied.contains(&m.version));
    MigrationStatus { applied: done.len(), pending: pending.len() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    fn of(url: &SecretString) -> anyhow::Result<Self> {
        let url = url.expose_secret();
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            let scheme = if scheme.is_empty() || scheme.len() > 20 { "none".to_owned() } else { format!("{scheme:?}") };
            bail!(
                "database.url: unsupported scheme {scheme}; use {ACCEPTED_SCHEMES} \
                 (for example sqlite://data/regain.db or postgres://user:password@host/regain)"
            )
        }
    }
}

/// The file path of a `sqlite:` URL, `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_owned())
}

/// The database's scheme, host and path, without user, password or query: safe to print.
pub fn display_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return match sqlite_path(url) {
            Some(path) => format!("sqlite:{path}"),
            None => "sqlite::memory:".to_owned(),
        };
    }
    match url::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", parsed.scheme(), parsed.path())
        }
        Err(_) => {
            let scheme = url.split_once("://").map_or("unknown", |(s, _)| s);
            format!("{scheme}://…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        let cases = [
            (
                "postgres://regain:s3cret@db.internal:5432/regain?sslmode=require&password=x",
                "postgres://db.internal:5432/regain",
            ),
            ("postgresql://u@localhost/app", "postgresql://localhost/app"),
            ("sqlite://data/regain.db", "sqlite:data/regain.db"),
            ("sqlite:data/x.db?mode=rwc", "sqlite:data/x.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres://user:pa ss@[bad", "postgres://…"),
        ];
        for (url, shown) in cases {
            assert_eq!(display_url(url), shown, "{url}");
            assert!(!display_url(url).contains("s3cret"));
        }
    }

    #[test]
    fn schemes_pick_the_backend() {
        let kind = |u: &str| BackendKind::of(&SecretString::from(u));
        assert_eq!(kind("sqlite://x.db").unwrap(), BackendKind::Sqlite);
        assert_eq!(kind("postgres://h/db").unwrap(), BackendKind::Postgres);
        assert_eq!(kind("postgresql://h/db").unwrap(), BackendKind::Postgres);
        let err = kind("mysql://root:hunter2@h/db").unwrap_err().to_string();
        assert!(err.contains("\"mysql\"") && err.contains("postgres://"), "{err}");
        assert!(!err.contains("hunter2"));
    }
}
