//! The Store on SQLite: the default, embedded, one file in the data directory.
//!
//! WAL mode with `synchronous = FULL` (a committed recovery is on disk), foreign keys on, and a
//! busy timeout for the rare writer in another process (a `regain customer import` beside a
//! running server). Writes go through a pool of exactly one connection, so write transactions
//! queue in the process instead of failing with `SQLITE_BUSY`; reads use a separate pool.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use regain_store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

/// The migrations, embedded in the binary.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// `sqlite://path/to/regain.db` or `sqlite::memory:`.
    pub url: String,
    pub readers_max: u32,
    pub acquire_timeout_ms: u64,
    pub busy_timeout_ms: u64,
}

impl SqliteConfig {
    pub fn for_file(path: &Path) -> Self {
        Self { url: format!("sqlite://{}", path.display()), ..Self::default() }
    }
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { url: "sqlite::memory:".to_owned(), readers_max: 8, acquire_timeout_ms: 5_000, busy_timeout_ms: 5_000 }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: Pool<Sqlite>,
    writer: Pool<Sqlite>,
    keys: regain_store_sql::sealing::Keys,
    cache: regain_store_sql::cache::ReadCache,
}

impl SqliteStore {
    /// Opens (creating if needed) the database. Does not migrate: see [`SqliteStore::migrate`].
    pub async fn connect(config: &SqliteConfig) -> StoreResult<Self> {
        let in_memory = config.url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::Other(format!("database url: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            // Deleted rows are overwritten with zeros, so an erasure leaves nothing to recover.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_millis(config.busy_timeout_ms));
        let options = if in_memory {
            // Every connection to one shared in-memory database; no WAL without a file.
            options.shared_cache(true)
        } else {
            options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full)
        };
        let acquire = Duration::from_millis(config.acquire_timeout_ms);
        // No ping before each use: a connection is a handle to a library in this process, with
        // no server that could have dropped it, and a ping is a round trip to the connection's
        // thread (sqlx runs each connection on one) that would check nothing. A query on a
        // broken handle fails with an error of its own.
        // No idle timeout and no maximum lifetime either: a connection to a file in this process
        // does not go stale, and without them sqlx runs no reaper task, which in sqlx 0.8 can
        // spin at 100 % CPU forever once its idle count underflows (launchbadge/sqlx#3645,
        // fixed only in 0.9), hanging the process at shutdown — seen here in a CLI test.
        // The writer keeps the hot end of every index in memory (64 MiB instead of 2 MiB):
        // appends to large tables stay appends, not page reloads.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(acquire)
            .connect_with(options.clone().pragma("cache_size", "-65536"))
            .await
            .map_err(Self::map_err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.readers_max.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(acquire)
            .connect_with(options.read_only(!in_memory))
            .await
            .map_err(Self::map_err)?;
        Ok(Self { reader, writer, keys: Default::default(), cache: Default::default() })
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> StoreResult<()> {
        regain_store_sql::refuse_plaintext_records(&self.writer).await?;
        MIGRATIONS.run(&self.writer).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        self.rebuild_audit_tiles().await?;
        Ok(())
    }

    /// After an erasure: moves the WAL into the database file and truncates it, so the pages
    /// from before the deletion (which `secure_delete` zeroed in the file) leave no copy behind.
    /// Best effort: a long-running reader can keep the WAL for a while; the next erasure or
    /// checkpoint finishes the job, and what is left there is sealed under a destroyed key.
    async fn after_erasure(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await;
    }

    /// The writer pool, for benchmarks that measure raw commits on the same settings.
    pub fn writer_pool(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    fn read_pool(&self) -> &Pool<Sqlite> {
        &self.reader
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer.begin().await.map_err(Self::map_err)
    }

    fn map_err(error: sqlx::Error) -> StoreError {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate { field: regain_store::codec::duplicate_field(db.message()) }
            }
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: overloaded, try later.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6" | "517")) => {
                StoreError::Unavailable(db.message().to_owned())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Other(error.to_string()),
        }
    }
}

regain_store_sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, "sqlite", positions_at_write = true);
