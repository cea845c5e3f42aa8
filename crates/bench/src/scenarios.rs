//! The scenarios. Each returns its one printed line: figure, baseline, ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regain_core::Actor;
use regain_hashing::{HashingPool, Params};
use regain_server::routes::api_keys::create_api_key_record;
use regain_server::routes::customers::{create_customer_record, CustomerInput};
use regain_server::routes::tenants::{create_tenant_record, CreateTenant};
use regain_store::Store;
use regain_store_postgres::{PostgresConfig, PostgresStore};
use regain_store_sqlite::{SqliteConfig, SqliteStore};
use serde_json::json;
use sqlx::Connection;

use crate::harness::{closed_loop, cores, peak_rss_mib, serve, Measured};

pub(crate) async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> anyhow::Result<SqliteStore> {
    let store = SqliteStore::connect(&SqliteConfig::for_file(&dir.path().join(name))).await?;
    store.migrate().await?;
    store.unlock(regain_store::MasterKey::generate(), regain_store::conformance::t0()).await?;
    Ok(store)
}

/// A tenant, an integration key and a customer with a password, on a fresh server.
async fn fixture(store: Arc<dyn Store>) -> anyhow::Result<(String, String, reqwest::Client)> {
    let (base, state) = serve(store).await?;
    let tenant = create_tenant_record(
        &state,
        serde_json::from_value::<CreateTenant>(json!({"slug": "bench", "display_name": "Bench"}))?,
        Actor::System,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, key) = create_api_key_record(&state, tenant.id, "bench", Some("integration"), Actor::System)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let customer: CustomerInput = serde_json::from_value(json!({
        "username": "bench-user", "full_name": "Bench User",
        "emails": [{"address": "bench@example.com", "verified": true}],
        "password": "bench password 1234",
    }))?;
    create_customer_record(&state, tenant.id, "US", &customer, Actor::System)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    Ok((base, key, client))
}

async fn create_cases(base: &str, key: &str, client: &reqwest::Client, clients: usize, window: Duration) -> Measured {
    let url = format!("{base}/api/v1/cases");
    let (key, client) = (key.to_owned(), client.clone());
    closed_loop(clients, window, move |_| {
        let request = client
            .post(&url)
            .bearer_auth(&key)
            .json(&json!({"kind": "password_reset", "channel": "web", "summary": "bench"}));
        async move { request.send().await.is_ok_and(|r| r.status().as_u16() == 201) }
    })
    .await
}

pub(crate) fn line(name: &str, what: &str, measured: &Measured, baseline_what: &str, baseline: &Measured) -> String {
    let failed = if measured.failed > 0 { format!(", {} failed", measured.failed) } else { String::new() };
    format!(
        "{name}: {:.0} {what}/s (p50 {:.1} ms, p99 {:.1} ms{failed}) | baseline {:.0} {baseline_what}/s | ratio {:.1} %",
        measured.rate(),
        measured.percentile_ms(0.5),
        measured.percentile_ms(0.99),
        baseline.rate(),
        100.0 * measured.rate() / baseline.rate().max(f64::MIN_POSITIVE)
    )
}

/// Case creation over HTTP on SQLite (WAL, synchronous=FULL) against raw single-row commits on
/// a pool with the very same settings.
pub async fn case_create_sqlite(window: Duration, clients: usize) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let store = sqlite_store(&dir, "regain.db").await?;
    let (base, key, client) = fixture(Arc::new(store)).await?;
    let measured = create_cases(&base, &key, &client, clients, window).await;

    let raw = sqlite_store(&dir, "raw.db").await?;
    let pool = raw.writer_pool().clone();
    sqlx::query("CREATE TABLE raw_commits (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)").execute(&pool).await?;
    let baseline = closed_loop(clients, window, move |n| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO raw_commits (payload) VALUES ($1)")
                .bind(format!("row {n}"))
                .execute(&pool)
                .await
                .is_ok()
        }
    })
    .await;
    Ok(line("B0 case creation, HTTP, SQLite WAL+FULL", "cases", &measured, "single-row commits", &baseline))
}

/// The same on PostgreSQL, against raw single-row commits from a pool of the same size.
pub async fn case_create_postgres(admin_url: &str, window: Duration, clients: usize) -> anyhow::Result<String> {
    let name = format!("regain_bench_{}", std::process::id());
    let (store, mut admin) = scratch_postgres(admin_url, &name).await?;
    let pool = store.pool().clone();
    let (base, key, client) = fixture(Arc::new(store)).await?;
    let measured = create_cases(&base, &key, &client, clients, window).await;

    sqlx::query("CREATE TABLE raw_commits (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)").execute(&pool).await?;
    let baseline = closed_loop(clients, window, move |n| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO raw_commits (payload) VALUES ($1)")
                .bind(format!("row {n}"))
                .execute(&pool)
                .await
                .is_ok()
        }
    })
    .await;
    pool_close(&mut admin, &name).await;
    Ok(line("B0 case creation, HTTP, PostgreSQL", "cases", &measured, "single-row commits", &baseline))
}

/// A scratch database `name` on the PostgreSQL server of `admin_url`, migrated and unlocked:
/// the store, and the admin connection that drops it again with [`pool_close`].
pub(crate) async fn scratch_postgres(
    admin_url: &str,
    name: &str,
) -> anyhow::Result<(PostgresStore, sqlx::PgConnection)> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
    let (prefix, _) = admin_url.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("the URL needs a database path"))?;
    let store = PostgresStore::connect(&PostgresConfig::new(format!("{prefix}/{name}"))).await?;
    store.migrate().await?;
    store.unlock(regain_store::MasterKey::generate(), regain_store::conformance::t0()).await?;
    Ok((store, admin))
}

pub(crate) async fn pool_close(admin: &mut sqlx::PgConnection, name: &str) {
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(admin).await;
}

/// The directory's login endpoint (Argon2id verify on the bounded pool) against raw Argon2id
/// hashes with the same parameters on as many threads as the pool has workers.
pub async fn login(window: Duration) -> anyhow::Result<String> {
    let workers = cores();
    let params = Params::default();
    let raw = tokio::task::spawn_blocking(move || raw_argon2(params, workers, window)).await??;

    let dir = tempfile::tempdir()?;
    let store = sqlite_store(&dir, "regain.db").await?;
    let (base, _, client) = fixture(Arc::new(store)).await?;
    let url = format!("{base}/api/v1/directory/bench/login");
    let measured = closed_loop(workers * 4, window, move |_| {
        let request = client.post(&url).json(&json!({"username": "bench-user", "password": "bench password 1234"}));
        async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    let rss = peak_rss_mib().map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0} MiB"));
    let bound = workers as f64 * f64::from(params.m_kib) / 1024.0 + 64.0;
    Ok(format!(
        "{} (Argon2id m={} KiB t={} p={}, {workers} workers) | peak RSS of the whole bench process {rss}, bound for hashing {bound:.0} MiB",
        line("B1-pre login, HTTP, built-in directory", "logins", &measured, "raw Argon2id hashes", &raw),
        params.m_kib,
        params.t,
        params.p
    ))
}

pub(crate) fn raw_argon2(params: Params, threads: usize, window: Duration) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let deadline = started + window;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut out, mut memory, mut done) = ([0u8; 32], Vec::new(), 0u64);
                while Instant::now() < deadline {
                    if HashingPool::hash_blocking_raw(
                        params,
                        b"bench password 1234",
                        b"saltsaltsaltsalt",
                        &mut out,
                        &mut memory,
                    )
                    .is_ok()
                    {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let ok = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    Ok(Measured { ok, failed: 0, elapsed: started.elapsed(), latencies_us: Vec::new() })
}
