//! What every command that touches data needs: the store the configuration names, the password
//! hashing pool, the real clock and randomness, and the server's settings, as one `AppState`.
//! Commands reuse the server's own functions on it, so the command line and the API validate
//! and store records the same way.

use std::sync::Arc;

use anyhow::Context as _;
use regain_hashing::HashingPool;
use regain_server::sys::{OsEntropy, SystemClock};
use regain_server::{AppState, ServerConfig};

use crate::config::{Config, DatabaseSection};
use crate::database::Backend;

/// The state shared by all commands, with the backend it runs on.
pub struct Context {
    pub state: AppState,
    pub backend: Backend,
}

/// How a command wants the schema handled when it opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations (serve, demo).
    Migrate,
    /// Refuse to run on a database that is behind (administration commands).
    RequireCurrent,
}

impl Context {
    /// Opens the configured database and starts the hashing pool.
    pub async fn open(config: &Config, schema: Schema) -> anyhow::Result<Self> {
        Self::open_with(&config.database, config, config.server_config(), schema).await
    }

    /// Like [`Context::open`] with another database and server settings (the demo).
    pub async fn open_with(
        database: &DatabaseSection,
        config: &Config,
        server: ServerConfig,
        schema: Schema,
    ) -> anyhow::Result<Self> {
        let backend = Backend::open(database).await?;
        match schema {
            Schema::Migrate => {
                let applied = backend.migrate().await?;
                if applied > 0 {
                    tracing::info!(applied, "database migrations applied");
                }
            }
            Schema::RequireCurrent => backend.require_migrated().await?,
        }
        let hasher = HashingPool::start(config.pool_config()?).context("starting the hashing pool")?;
        let store = backend.store();
        let audit = match crate::audit::identity(config, &database.data_dir, store.as_ref()).await {
            Ok(audit) => audit,
            // Administration commands write entries but never sign checkpoints: without the key
            // on this machine they still work, and the next `serve` signs what they wrote.
            Err(e) if schema == Schema::RequireCurrent => {
                tracing::debug!(error = %e, "no audit signing key here; this command signs nothing");
                regain_server::audit::ephemeral("unsigned.regain/audit").map_err(anyhow::Error::msg)?
            }
            Err(e) => return Err(e),
        };
        let state = AppState {
            store,
            audit,
            hasher,
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            config: Arc::new(server),
        };
        Ok(Self { state, backend })
    }
}
