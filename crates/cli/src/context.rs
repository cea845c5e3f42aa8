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
    /// Why personal data cannot be read or written here (no master key configured), if so.
    locked: Option<String>,
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
        // Personal data: a wrong key always stops here; no key at all stops the server, while
        // an administration command may still run on what is not personal (the audit log).
        let mut locked = None;
        if !crate::keys::unlock(config, &database.data_dir, store.as_ref()).await? {
            let id = store.master_key_id().await?.unwrap_or_default();
            let missing = crate::keys::missing_key_error(config, &database.data_dir, &id);
            if schema == Schema::Migrate {
                return Err(missing);
            }
            tracing::debug!(key_id = %id, "no master key here; personal data stays locked for this command");
            locked = Some(format!("{missing:#}"));
        }
        let state = AppState {
            store,
            audit,
            hasher,
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            config: Arc::new(server),
            delivery: Arc::new(config.transports(&database.data_dir)?),
            risk: Arc::new(config.risk_engine(&database.data_dir)?),
        };
        Ok(Self { state, backend, locked })
    }

    /// Refuses, with the reason, when this command would need personal data it cannot open.
    pub fn require_personal_data(&self) -> anyhow::Result<()> {
        match &self.locked {
            Some(reason) => Err(anyhow::anyhow!("{reason}")),
            None => Ok(()),
        }
    }
}
