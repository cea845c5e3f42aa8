//! Migrations are numbered in lockstep: every version exists on both backends, with the same name.

use std::path::Path;

fn migrations(dir: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite = migrations("store-sqlite");
    let postgres = migrations("store-postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "a migration exists on one backend only");
    for (i, name) in sqlite.iter().enumerate() {
        let number: usize = name.split('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        assert_eq!(number, i + 1, "{name}: migrations are numbered 0001, 0002, … without gaps");
    }
}

#[test]
fn the_embedded_migrators_agree() {
    let versions =
        |m: &sqlx::migrate::Migrator| m.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>();
    assert_eq!(versions(&regain_store_sqlite::MIGRATIONS), versions(&regain_store_postgres::MIGRATIONS));
}

/// Migration 0011 rebuilds `customer_links` (SQLite cannot drop a NOT NULL in place): run as
/// the store runs it (foreign keys on, in one transaction) over a database with a customer
/// and a link, the link survives, a link without a case can be stored after it, the token
/// stays unique, and erasing the customer still takes its links.
#[tokio::test]
async fn the_customer_links_rebuild_keeps_every_link() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("PRAGMA foreign_keys = ON").execute(&mut db).await.expect("pragma");
    let files = migrations("store-sqlite");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let (before, rest) = files.split_at(files.iter().position(|f| f.starts_with("0011")).expect("0011"));
    for file in before {
        sqlx::raw_sql(&std::fs::read_to_string(path.join(file)).expect("read")).execute(&mut db).await.expect(file);
    }
    sqlx::raw_sql(
        "INSERT INTO tenants (id, slug, display_name, settings, created_at) VALUES ('t', 'acme', 'ACME', '{}', 0); \
         INSERT INTO customers (id, tenant_id, external_id, sealed, username_bidx, account_number_bidx, status, \
         privileged, vip, password_enrolled, totp_enrolled, recovery_codes_remaining, passkeys, failed_logins, \
         created_at, updated_at) VALUES ('u', 't', NULL, 'sealed', 'bidx', NULL, 'active', 0, 0, 1, 0, 0, 0, 0, 0, 0); \
         INSERT INTO customer_links (id, purpose, tenant_id, case_id, customer_id, token_hash, destination, expires_at, \
         used_at, created_at) VALUES ('l1', 'reset', 't', 'c1', 'u', 'h1', 'j***@e***.com', 20, 15, 10)",
    )
    .execute(&mut db)
    .await
    .expect("a customer with a link");
    let mut tx = db.begin().await.expect("begin");
    sqlx::raw_sql(&std::fs::read_to_string(path.join(&rest[0])).expect("read")).execute(&mut *tx).await.expect("0011");
    tx.commit().await.expect("commit");

    let row =
        sqlx::query("SELECT id, case_id, token_hash, used_at FROM customer_links").fetch_one(&mut db).await.unwrap();
    let kept: (String, Option<String>, String, Option<i64>) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(kept, ("l1".into(), Some("c1".into()), "h1".into(), Some(15)));
    let insert = |id: &str, token: &str| {
        format!(
            "INSERT INTO customer_links (id, purpose, tenant_id, case_id, customer_id, token_hash, destination, \
             expires_at, created_at) VALUES ('{id}', 'report', 't', NULL, 'u', '{token}', 'j***@e***.com', 20, 10)"
        )
    };
    sqlx::raw_sql(&insert("l2", "h2")).execute(&mut db).await.expect("a link without a case");
    assert!(sqlx::raw_sql(&insert("l3", "h2")).execute(&mut db).await.is_err(), "the token hash is still unique");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customer_links' AND sql IS NOT NULL \
         ORDER BY name",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(indexes, ["customer_links_case_idx", "customer_links_customer_idx"]);
    let dangling: Vec<sqlx::sqlite::SqliteRow> =
        sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut db).await.unwrap();
    assert!(dangling.is_empty());
    sqlx::raw_sql("DELETE FROM customers WHERE id = 'u'").execute(&mut db).await.expect("erase");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customer_links").fetch_one(&mut db).await.unwrap();
    assert_eq!(left, 0, "the links go with their customer");
}
