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

/// SECURITY.md L0 on PostgreSQL: a deactivation sent again checks for a pending lift of the
/// lockdown (`Effect::RequireNoPendingAction`) only once it holds the customer's row, so a lift
/// queued by a transaction that holds the row (as a re-proofing's does, `Effect::LockCustomer`)
/// and commits while it waits is seen, and the deactivation is not queued. Without the lock
/// its read would come first and both would be queued, the deactivation able to arrive after
/// the lift's activation.
#[tokio::test]
async fn a_deactivation_sent_again_waits_for_the_customers_row_and_sees_a_lift_queued_meanwhile() {
    use regain_core::action::ActionKind;
    use regain_core::case::CaseKind;
    use regain_store::conformance::{audit, customer, executing, tenant};
    use regain_store::{Effect, NewAction, Store, StoreError};

    let (store, ()) = fresh_store().await;
    let acme = tenant(&store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.expect("customer");
    let lockdown = executing(&store, &acme, 610, CaseKind::CompromisedAccount, jane.id).await;
    let reproof = executing(&store, &acme, 611, CaseKind::CompromisedAccount, jane.id).await;
    let queue = |id: &str, case: regain_core::CaseId, action| {
        Effect::QueueAction(NewAction {
            id: id.to_owned(),
            tenant_id: acme.id,
            case_id: case,
            customer_id: jane.id,
            action,
            connector: "webhook".into(),
            created_at: reproof.updated_at,
        })
    };
    let at = reproof.updated_at;

    // The re-proofing's change holds Jane's row: the deactivation's check waits for it.
    let mut lift = store.pool().begin().await.expect("begin");
    sqlx::query("UPDATE customers SET updated_at = updated_at WHERE id = $1")
        .bind(jane.id.to_string())
        .execute(&mut *lift)
        .await
        .expect("lock");
    sqlx::query(
        "INSERT INTO recovery_actions (id, tenant_id, case_id, customer_id, action, connector, state, attempts, \
         next_attempt_at, created_at) VALUES ('lift', $1, $2, $3, 'lockdown', 'webhook', 'pending', 0, 0, 0)",
    )
    .bind(acme.id.to_string())
    .bind(reproof.id.to_string())
    .bind(jane.id.to_string())
    .execute(&mut *lift)
    .await
    .expect("queue the lift");
    let again = [
        Effect::RequireNoPendingAction { tenant: acme.id, customer: jane.id, action: ActionKind::Lockdown },
        queue("again", lockdown.id, ActionKind::Deactivate),
    ];
    let resend = {
        let store = store.clone();
        tokio::spawn(async move { store.apply_effects(at, &again).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!resend.is_finished(), "the check waits for Jane's row");
    lift.commit().await.expect("commit");
    assert_eq!(resend.await.expect("join"), Err(StoreError::Conflict));
    assert!(!store.action_pending(acme.id, jane.id, ActionKind::Deactivate).await.expect("read"), "not queued");

    // And `Effect::LockCustomer` takes the same lock: a change with it waits for the row too.
    let mut holder = store.pool().begin().await.expect("begin");
    sqlx::query("UPDATE customers SET updated_at = updated_at WHERE id = $1")
        .bind(jane.id.to_string())
        .execute(&mut *holder)
        .await
        .expect("lock");
    let locked = {
        let store = store.clone();
        let effects = [
            Effect::LockCustomer { tenant: acme.id, customer: jane.id },
            queue("second-lift", reproof.id, ActionKind::Lockdown),
        ];
        tokio::spawn(async move { store.apply_effects(at, &effects).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!locked.is_finished(), "it waits for Jane's row");
    holder.commit().await.expect("commit");
    assert_eq!(locked.await.expect("join"), Ok(()));
}
