//! The PostgreSQL store: the conformance suite, each test in a database of its own on the
//! server named by `REGAIN_TEST_POSTGRES_URL` (the test command sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};

use regain_store_postgres::{PostgresConfig, PostgresStore};
use sqlx::Connection;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Creates an empty database `regain_t_<pid>_<n>` and returns its URL. The test command drops
/// leftovers from earlier runs before it starts.
pub async fn fresh_database() -> String {
    let admin_url = std::env::var("REGAIN_TEST_POSTGRES_URL")
        .expect("REGAIN_TEST_POSTGRES_URL must name a PostgreSQL server (the README's test command sets it)");
    let name = format!("regain_t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to REGAIN_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database path");
    format!("{base}/{name}")
}

async fn fresh_store() -> (PostgresStore, ()) {
    let store = PostgresStore::connect(&PostgresConfig::new(fresh_database().await)).await.expect("connect");
    store.migrate().await.expect("migrate");
    regain_store::conformance::unlock(&store).await;
    (store, ())
}

regain_store::conformance_tests!(fresh_store);
