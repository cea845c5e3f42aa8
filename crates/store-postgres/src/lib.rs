//! The Store on PostgreSQL, chosen by a `postgres://` database URL, for deployments where one
//! machine is not enough: several `regain serve` processes share one database, and nothing they
//! need to agree on lives in process memory.

use std::str::FromStr;
use std::time::Duration;

use regain_store::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};

/// The migrations, embedded in the binary; numbered in lockstep with SQLite's.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub url: String,
    pub connections_max: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), connections_max: 16, acquire_timeout_ms: 5_000, statement_timeout_ms: 10_000 }
    }
}

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool<Postgres>,
    keys: regain_store_sql::sealing::Keys,
    cache: regain_store_sql::cache::ReadCache,
}

impl PostgresStore {
    /// Connects lazily: the service starts while the database is down and reports not-ready
    /// (503) until it is back.
    pub fn connect_lazy(config: &PostgresConfig) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::Other(format!("database url: {e}")))?
            .application_name("regain")
            .options([("statement_timeout", config.statement_timeout_ms.to_string())]);
        let pool = PgPoolOptions::new()
            .max_connections(config.connections_max.max(1))
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .connect_lazy_with(options);
        Ok(Self { pool, keys: Default::default(), cache: Default::default() })
    }

    /// Connects now, failing if the database cannot be reached.
    pub async fn connect(config: &PostgresConfig) -> StoreResult<Self> {
        let store = Self::connect_lazy(config)?;
        store.pool.acquire().await.map_err(Self::map_err)?;
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        regain_store_sql::refuse_plaintext_records(&self.pool).await?;
        MIGRATIONS.run(&self.pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        self.rebuild_audit_tiles().await?;
        Ok(())
    }

    pub fn pool(&self) -> &Pool<Postgres> {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// After an erasure. PostgreSQL keeps deleted tuples until VACUUM reuses their space; what
    /// they hold is sealed under keys that are now destroyed, so nothing is done here.
    async fn after_erasure(&self) {}

    fn read_pool(&self) -> &Pool<Postgres> {
        &self.pool
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(Self::map_err)
    }

    fn map_err(error: sqlx::Error) -> StoreError {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
                field: regain_store::codec::duplicate_field(db.constraint().unwrap_or(db.message())),
            },
            // serialization failure, deadlock, too many connections, shutting down, cannot connect now
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40001" | "40P01" | "53300" | "57P01" | "57P03")) =>
            {
                StoreError::Unavailable(db.message().to_owned())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
            _ => StoreError::Other(error.to_string()),
        }
    }
}

regain_store_sql::impl_sql_store!(PostgresStore, sqlx::Postgres, "postgres", positions_at_write = false);
