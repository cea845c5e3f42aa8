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
