//! Issue 3 "done when": after an erasure the erased data cannot be recovered from the database
//! files — not the plaintext (never there), not the sealed values, not the wrapped key.

use regain_core::case::CaseKind;
use regain_core::Actor;
use regain_store::conformance::{audit, customer, open_case, t0, tenant};
use regain_store::{AuditRecord, Store};

use crate::fresh_store;

fn database_files(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["regain.db", "regain.db-wal", "regain.db-journal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_erased_customer_leaves_nothing_to_recover_in_the_files() {
    let (store, dir) = fresh_store().await;
    let acme = tenant(&store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, Some("$argon2id$x"), &audit("customer.created")).await.unwrap();
    open_case(&store, &acme, 100, CaseKind::PasswordReset).await;

    let pool = store.writer_pool();
    let wrapped: Vec<u8> = sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE subject = $1")
        .bind(jane.id.to_string())
        .fetch_one(pool)
        .await
        .unwrap();
    let sealed: String = sqlx::query_scalar("SELECT sealed FROM customers WHERE id = $1")
        .bind(jane.id.to_string())
        .fetch_one(pool)
        .await
        .unwrap();
    let email: String = sqlx::query_scalar("SELECT address_sealed FROM customer_emails WHERE customer_id = $1 LIMIT 1")
        .bind(jane.id.to_string())
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.unwrap();
    let before = database_files(dir.path());
    assert!(contains(&before, &wrapped) && contains(&before, sealed.as_bytes()) && contains(&before, email.as_bytes()));
    // Plaintext personal data is never in the files, even before erasure.
    for plain in ["jane@Example.com", "jane@example.com", "Customer jane", "+12015550030", "ACC-30"] {
        assert!(!contains(&before, plain.as_bytes()), "{plain} is in the database files");
    }

    let erase = AuditRecord::new(Some(acme.id), Actor::System, "customer.erased", t0());
    store.erase_customer(acme.id, jane.id, &erase).await.unwrap();
    let after = database_files(dir.path());
    assert!(!contains(&after, &wrapped), "the wrapped key survives in the files");
    assert!(!contains(&after, sealed.as_bytes()), "the sealed record survives in the files");
    assert!(!contains(&after, email.as_bytes()), "the sealed email survives in the files");
}
