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

/// G5 on PostgreSQL, where writers run side by side: a step's hold check
/// (`Effect::RequireUnheld`) waits for the customer's row lock, so another recovery of the
/// customer moved into a holding state by a transaction that holds it — and commits while the
/// step waits — is seen, and the step is a conflict. Without the lock the step's read would
/// come first and miss it.
#[tokio::test]
async fn a_hold_check_waits_for_the_customers_row_and_sees_what_committed_meanwhile() {
    use regain_core::case::{apply, CaseCommand, CaseKind};
    use regain_store::conformance::{audit, customer, executing, open_case, tenant};
    use regain_store::{Effect, Store, StoreError};

    let (store, ()) = fresh_store().await;
    let acme = tenant(&store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.expect("customer");
    let reset = executing(&store, &acme, 600, CaseKind::PasswordReset, jane.id).await;
    let change = open_case(&store, &acme, 601, CaseKind::ContactChange).await;

    // Another writer holds Jane's row and is moving her contact change into approval.
    let mut other = store.pool().begin().await.expect("begin");
    sqlx::query("UPDATE customers SET updated_at = updated_at WHERE id = $1")
        .bind(jane.id.to_string())
        .execute(&mut *other)
        .await
        .expect("lock");
    sqlx::query("UPDATE cases SET state = 'awaiting_approval', customer_id = $2 WHERE id = $1")
        .bind(change.id.to_string())
        .bind(jane.id.to_string())
        .execute(&mut *other)
        .await
        .expect("move");

    let actor = regain_core::Actor::System;
    let (done, events) = apply(
        &reset,
        CaseCommand::Complete { cooling_off_hours: None },
        actor,
        reset.updated_at + chrono::Duration::seconds(1),
    )
    .expect("complete");
    let guard = vec![Effect::RequireUnheld { tenant: acme.id, customer: jane.id, case: reset.id }];
    let step = {
        let store = store.clone();
        tokio::spawn(async move { store.commit_case_change(&done, &events, &actor, &guard).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!step.is_finished(), "the step waits for Jane's row");
    other.commit().await.expect("commit");
    assert_eq!(step.await.expect("join"), Err(StoreError::Conflict));
    let stored = store.case(acme.id, reset.id).await.expect("read").expect("case");
    assert_eq!(stored.state, reset.state, "nothing of the step written");
}
