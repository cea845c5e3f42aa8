//! The master key for personal data at rest: where it comes from, proving it against the
//! database at start-up, and `regain keys` (status, rotation).
//!
//! The key is `crypto.master_key` when configured, else the key file (`crypto.master_key_file`,
//! by default `<data_dir>/master.key`). A key file is created only for a database without a
//! keyring; over existing data, a missing or wrong key is refused with a message saying which
//! key the data needs — Regain never starts a new key over old data.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use regain_core::Actor;
use regain_store::{AuditRecord, MasterKey, Store, StoreError, Unlocked};
use secrecy::ExposeSecret as _;

use crate::cli::{KeysCommand, RotateArgs};
use crate::config::Config;
use crate::context::{Context, Schema};

/// Where a master key came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Config,
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config => f.write_str("crypto.master_key"),
            Self::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// The configured master key, if there is one.
pub fn configured(config: &Config, data_dir: &Path) -> anyhow::Result<Option<(MasterKey, KeySource)>> {
    if let Some(text) = &config.crypto.master_key {
        let key = MasterKey::from_text(text.expose_secret()).context("crypto.master_key")?;
        return Ok(Some((key, KeySource::Config)));
    }
    let path = config.master_key_file(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some((read_key_file(&path)?, KeySource::File(path))))
}

/// Unlocks the store with the configured key; on a database without a keyring, creates the
/// key file first. `Ok(false)` when no key is configured for a database that has one (the
/// caller decides whether it can work without personal data).
pub async fn unlock(config: &Config, data_dir: &Path, store: &dyn Store) -> anyhow::Result<bool> {
    let existing = store.master_key_id().await.context("reading the keyring")?;
    let (key, source) = match configured(config, data_dir)? {
        Some(found) => found,
        None if existing.is_none() => {
            let path = config.master_key_file(data_dir);
            let key = MasterKey::generate();
            write_key_file(&path, &key)?;
            tracing::info!(
                path = %path.display(),
                key_id = %key.id(),
                "created the master key for personal data: back it up; without it the data cannot be read"
            );
            (key, KeySource::File(path))
        }
        None => return Ok(false),
    };
    let now = regain_core::chrono::Utc::now();
    match store.unlock(key, now).await {
        Ok(Unlocked::Created | Unlocked::Opened) => Ok(true),
        Err(StoreError::Keyring(message)) => {
            let hint = match &source {
                KeySource::File(path) if staging_path(path).exists() => format!(
                    "; {} holds the key of an interrupted `regain keys rotate`: if the database was rotated, use it",
                    staging_path(path).display()
                ),
                _ => String::new(),
            };
            bail!("{message} (the key came from {source}){hint}")
        }
        Err(e) => Err(e).context("unlocking the database"),
    }
}

/// The refusal for a database that has a keyring when no key is configured.
pub fn missing_key_error(config: &Config, data_dir: &Path, key_id: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "this database's personal data is encrypted under master key {key_id}, and no key is configured: \
         set crypto.master_key (REGAIN__CRYPTO__MASTER_KEY) or restore {}; \
         Regain never starts a new key over existing data",
        config.master_key_file(data_dir).display()
    )
}

pub async fn run(config: &Config, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Status => status(config).await,
        KeysCommand::Rotate(args) => rotate(config, &args).await,
    }
}

async fn status(config: &Config) -> anyhow::Result<ExitCode> {
    // Not through `Context`, which would refuse a wrong key before this could report it.
    let backend = crate::database::Backend::open(&config.database).await?;
    backend.require_migrated().await?;
    let database = backend.store().master_key_id().await?;
    let configured = configured(config, &config.database.data_dir)?;
    println!("database keyring: {}", database.as_deref().unwrap_or("none yet (a new database)"));
    match &configured {
        Some((key, source)) => println!("configured key:   {} (from {source})", key.id()),
        None => println!("configured key:   none"),
    }
    backend.close().await;
    let matches = matches!((&database, &configured), (Some(d), Some((k, _))) if *d == k.id());
    if database.is_some() && !matches {
        eprintln!("The configured key does not open this database.");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(config: &Config, args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let store = ctx.state.store.clone();
    let Some((current, source)) = configured(config, &config.database.data_dir)? else {
        let id = store.master_key_id().await?.unwrap_or_default();
        return Err(missing_key_error(config, &config.database.data_dir, &id));
    };
    let old_id = current.id();
    // The new key goes to disk before the database changes, so it can never be lost.
    let (target, staging) = match (&args.out, &source) {
        (Some(out), _) => (out.clone(), out.clone()),
        (None, KeySource::File(path)) => (path.clone(), staging_path(path)),
        (None, KeySource::Config) => bail!(
            "the master key comes from crypto.master_key: give --out FILE for the new key, \
             then put it in the configuration in place of the old one"
        ),
    };
    let next = MasterKey::generate();
    let new_id = next.id();
    write_key_file(&staging, &next)?;
    let audit = AuditRecord::new(None, Actor::System, "keys.rotated", regain_core::chrono::Utc::now());
    let count = match store.rotate_master_key(next, &audit).await {
        Ok(count) => count,
        Err(e) => {
            let changed = store.master_key_id().await.ok().flatten().as_deref() == Some(new_id.as_str());
            if !changed {
                let _ = std::fs::remove_file(&staging);
            }
            ctx.backend.close().await;
            return Err(e).context(if changed {
                format!(
                    "the keyring was rotated but not every key re-wrapped; keep {} and run the rotation again",
                    staging.display()
                )
            } else {
                "rotating the master key (nothing changed)".to_owned()
            });
        }
    };
    ctx.backend.close().await;
    if staging != target {
        // Keep the old key beside it: backups taken before now still need it.
        let retired = sibling(&target, &format!("{old_id}.retired"));
        std::fs::rename(&target, &retired).with_context(|| format!("keeping the old key as {}", retired.display()))?;
        std::fs::rename(&staging, &target).with_context(|| format!("moving the new key into {}", target.display()))?;
        eprintln!("The old key is kept as {}: backups taken before now need it.", retired.display());
    } else {
        eprintln!(
            "Put the new key from {} in the configuration (crypto.master_key) before the next start.",
            target.display()
        );
    }
    println!("re-wrapped {count} data key(s): master key {old_id} -> {new_id}");
    Ok(ExitCode::SUCCESS)
}

/// Where a rotation writes the new key before the database changes.
fn staging_path(path: &Path) -> PathBuf {
    sibling(path, "new")
}

/// `<path>.<suffix>`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    MasterKey::from_text(&text).with_context(|| format!("{} does not hold a master key", path.display()))
}

fn write_key_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    writeln!(file, "{}", key.to_text().as_str()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
