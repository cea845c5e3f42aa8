//! B4: the audit log. Appending (entries written, then placed in the Merkle log with their
//! nodes and a signed checkpoint) against raw inserts of the same entries with the same
//! batching; and proof latency on a large log, each proof read from stored nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regain_core::{Actor, Tenant, TenantId, TenantSettings, TenantSlug};
use regain_store::{AuditRecord, Store};
use regain_store_sqlite::{SqliteConfig, SqliteStore};

use crate::harness::Measured;

const BATCH: u32 = 1_000;

fn entry(n: u64) -> AuditRecord {
    let at = regain_store::conformance::t0();
    AuditRecord::new(None, Actor::System, "bench.entry", at)
        .data(serde_json::json!({"n": n, "note": "an audit entry of typical size"}))
}

/// Writes `texts` as audit rows with `insert` (binds: tenant, at, action, case, customer,
/// entry), BATCH rows per transaction.
async fn write_rows(pool: &sqlx::SqlitePool, insert: &str, texts: &[String]) -> anyhow::Result<()> {
    for chunk in texts.chunks(BATCH as usize) {
        let mut tx = pool.begin().await?;
        for text in chunk {
            sqlx::query(insert)
                .bind(None::<String>)
                .bind(0i64)
                .bind("bench.entry")
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(text)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

pub async fn run(entries: u64, proofs: usize) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::connect(&SqliteConfig::for_file(&dir.path().join("audit.db"))).await?;
    store.migrate().await?;
    store.unlock(regain_store::MasterKey::generate(), regain_store::conformance::t0()).await?;
    let signer = regain_server::audit::ephemeral("bench.regain/audit").map_err(anyhow::Error::msg)?;
    let tenant = Tenant {
        id: TenantId::from_uuid(uuid::Uuid::from_u128(1)),
        slug: TenantSlug::parse("slug", "bench")?,
        display_name: "Bench".into(),
        settings: TenantSettings::default(),
        created_at: regain_store::conformance::t0(),
    };

    // Raw baseline: the same entries (the same columns and values), inserted in transactions of
    // BATCH rows into a plain table of a fresh database with the same settings, so neither run
    // starts on a file the other has grown.
    let raw_store = SqliteStore::connect(&SqliteConfig::for_file(&dir.path().join("raw.db"))).await?;
    let pool = raw_store.writer_pool().clone();
    sqlx::query(
        "CREATE TABLE raw_entries (id INTEGER PRIMARY KEY, tenant_id TEXT, at INTEGER NOT NULL, action TEXT NOT NULL, \
         case_id TEXT, customer_id TEXT, entry TEXT NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let texts: Vec<String> = (0..entries).map(|n| regain_store::codec::audit_entry_text(&entry(n))).collect();
    let started = Instant::now();
    write_rows(
        &pool,
        "INSERT INTO raw_entries (tenant_id, at, action, case_id, customer_id, entry) VALUES ($1, $2, $3, $4, $5, $6)",
        &texts,
    )
    .await?;
    let raw = started.elapsed();
    raw_store.close().await;
    std::fs::remove_file(dir.path().join("raw.db")).ok();

    // The log: the same entries written with the statement the store writes every entry with
    // (one per change is what the product does; here in BATCH-row transactions like the
    // baseline), then placed in the tree with tiles and signed checkpoints.
    let started = Instant::now();
    store.create_tenant(&tenant, &entry(0)).await?;
    write_rows(store.writer_pool(), regain_store_sql::AUDIT_INSERT_POSITIONED, &texts[1..]).await?;
    let written = started.elapsed();
    let now = regain_store::conformance::t0();
    // Placed as `serve` places them: up to its batch size per checkpoint.
    let sequence_batch = regain_server::audit::SEQUENCE_BATCH_MAX;
    while store.sequence_audit(sequence_batch, now, signer.as_ref()).await?.is_some() {}
    let logged = started.elapsed();
    let size = store.latest_checkpoint().await?.map_or(0, |c| c.size);
    anyhow::ensure!(size == entries, "sequenced {size} of {entries}");

    let overhead = 100.0 * (logged.as_secs_f64() - raw.as_secs_f64()) / raw.as_secs_f64();
    let mut lines = vec![format!(
        "B4 audit append, SQLite WAL+FULL, {entries} entries in batches of {BATCH}: {:.0} entries/s written and logged \
         (write {:.1} s + sequence {:.1} s, {sequence_batch} per checkpoint) | baseline {:.0} raw inserts/s ({:.1} s) | overhead {overhead:.0} %",
        entries as f64 / logged.as_secs_f64(),
        written.as_secs_f64(),
        (logged - written).as_secs_f64(),
        entries as f64 / raw.as_secs_f64(),
        raw.as_secs_f64(),
    )];

    // Proof latency on this log: plan, read O(log n) stored nodes, assemble.
    let store: Arc<dyn Store> = Arc::new(store);
    let mut inclusion = Vec::with_capacity(proofs);
    let mut consistency = Vec::with_capacity(proofs);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..proofs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let seq = x % size;
        let t = Instant::now();
        let plan = regain_merkle::inclusion_proof_plan(seq, size)?;
        let nodes = store.audit_nodes(&plan.nodes()).await?;
        let proof = plan.assemble(&nodes)?;
        inclusion.push(t.elapsed());
        anyhow::ensure!(!proof.is_empty() || size == 1);
        let old = 1 + seq.min(size - 1);
        let t = Instant::now();
        let plan = regain_merkle::consistency_proof_plan(old, size)?;
        let nodes = store.audit_nodes(&plan.nodes()).await?;
        plan.assemble(&nodes)?;
        consistency.push(t.elapsed());
    }
    for (name, mut samples) in [("inclusion", inclusion), ("consistency", consistency)] {
        samples.sort_unstable();
        let m = Measured {
            ok: samples.len() as u64,
            failed: 0,
            elapsed: samples.iter().sum::<Duration>(),
            latencies_us: samples.iter().map(|d| d.as_micros() as u64).collect(),
        };
        lines.push(format!(
            "B4 audit {name} proof on a {size}-entry log: p50 {:.3} ms, p99 {:.3} ms over {} proofs (target p99 <= 1 ms)",
            m.percentile_ms(0.5),
            m.percentile_ms(0.99),
            m.ok
        ));
    }
    Ok(lines)
}
