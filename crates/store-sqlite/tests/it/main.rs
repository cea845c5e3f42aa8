//! The SQLite store: the conformance suite on a temporary database file, and the migration
//! lockstep check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use regain_store_sqlite::{SqliteConfig, SqliteStore};

async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::connect(&SqliteConfig::for_file(&dir.path().join("regain.db"))).await.expect("connect");
    store.migrate().await.expect("migrate");
    regain_store::conformance::unlock(&store).await;
    (store, dir)
}

regain_store::conformance_tests!(fresh_store);

mod erasure;
mod lockstep;
mod tiles;
