//! The audit tree's tiles are derived data: migrating to them (or losing them) rebuilds them
//! from the entries, checked against the latest checkpoint.

use regain_store::conformance::{audit, t0, TestSigner};
use regain_store::{Store, StoreError};

use crate::fresh_store;

#[tokio::test]
async fn tiles_are_rebuilt_from_the_entries_and_checked_against_the_checkpoint() {
    let (store, _dir) = fresh_store().await;
    for _ in 0..600 {
        store.record_audit(&audit("bench.entry")).await.unwrap();
    }
    while store.sequence_audit(70, t0(), &TestSigner).await.unwrap().is_some() {}
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(latest.size, 600);
    let pool = store.writer_pool();
    let tiles: Vec<(i64, i64, Vec<u8>)> =
        sqlx::query_as("SELECT level, idx, hashes FROM audit_tiles ORDER BY level, idx").fetch_all(pool).await.unwrap();
    assert_eq!(
        tiles.iter().map(|(l, i, h)| (*l, *i, h.len() / 32)).collect::<Vec<_>>(),
        [(0, 0, 256), (0, 1, 256), (0, 2, 88), (1, 0, 2)]
    );

    // As after the migration: no tiles. Rebuilt, they are the same and proofs verify.
    sqlx::query("DELETE FROM audit_tiles").execute(pool).await.unwrap();
    assert_eq!(store.rebuild_audit_tiles().await.unwrap(), 600);
    let again: Vec<(i64, i64, Vec<u8>)> =
        sqlx::query_as("SELECT level, idx, hashes FROM audit_tiles ORDER BY level, idx").fetch_all(pool).await.unwrap();
    assert_eq!(again, tiles);
    assert_eq!(store.rebuild_audit_tiles().await.unwrap(), 0, "nothing to do when tiles exist");

    // Entries that no longer give the checkpoint's root: refused, nothing written.
    sqlx::query("DELETE FROM audit_tiles").execute(pool).await.unwrap();
    sqlx::query("UPDATE audit_entries SET entry = entry || ' ' WHERE seq = 300").execute(pool).await.unwrap();
    assert!(matches!(store.rebuild_audit_tiles().await, Err(StoreError::Corrupt(m)) if m.contains("audit verify")));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_tiles").fetch_one(pool).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn entries_waiting_before_the_tiles_migration_are_numbered_in_order() {
    // A database as migration 3 left it: entries written, two of them placed, three waiting.
    let dir = tempfile::tempdir().unwrap();
    let store = regain_store_sqlite::SqliteStore::connect(&regain_store_sqlite::SqliteConfig::for_file(
        &dir.path().join("regain.db"),
    ))
    .await
    .unwrap();
    let earlier: Vec<_> = regain_store_sqlite::MIGRATIONS.iter().filter(|m| m.version <= 3).cloned().collect();
    let migrator =
        sqlx::migrate::Migrator { migrations: std::borrow::Cow::Owned(earlier), ..sqlx::migrate::Migrator::DEFAULT };
    migrator.run(store.writer_pool()).await.unwrap();
    for (seq, text) in [(Some(0i64), "a"), (Some(1), "b"), (None, "c"), (None, "d"), (None, "e")] {
        sqlx::query("INSERT INTO audit_entries (seq, tenant_id, at, action, entry) VALUES ($1, NULL, 0, 'old', $2)")
            .bind(seq)
            .bind(text)
            .execute(store.writer_pool())
            .await
            .unwrap();
    }
    let root = regain_merkle::root(&[regain_merkle::leaf_hash(b"a"), regain_merkle::leaf_hash(b"b")]);
    sqlx::query("INSERT INTO audit_nodes (level, idx, hash) VALUES (0, 0, $1), (0, 1, $2), (1, 0, $3)")
        .bind(regain_merkle::leaf_hash(b"a").to_vec())
        .bind(regain_merkle::leaf_hash(b"b").to_vec())
        .bind(root.to_vec())
        .execute(store.writer_pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_checkpoints (size, root, note, at) VALUES (2, $1, 'old note', 0)")
        .bind(root.to_vec())
        .execute(store.writer_pool())
        .await
        .unwrap();

    store.migrate().await.unwrap();
    let seqs: Vec<(String, i64)> = sqlx::query_as("SELECT entry, seq FROM audit_entries ORDER BY id")
        .fetch_all(store.writer_pool())
        .await
        .unwrap();
    assert_eq!(seqs, [("a".into(), 0), ("b".into(), 1), ("c".into(), 2), ("d".into(), 3), ("e".into(), 4)]);
    assert_eq!(store.unsequenced_audit_entries().await.unwrap(), 3);
    // New entries continue after them, and the log takes all of them in order.
    store.record_audit(&audit("new")).await.unwrap();
    let checkpoint = store.sequence_audit(100, t0(), &TestSigner).await.unwrap().unwrap();
    let entries = store.audit_entries(0, 100).await.unwrap();
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| regain_merkle::leaf_hash(e.entry.as_bytes())).collect();
    assert_eq!((checkpoint.size, checkpoint.root), (6, regain_merkle::root(&leaves)));
    assert_eq!(entries[..5].iter().map(|e| e.entry.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
}
