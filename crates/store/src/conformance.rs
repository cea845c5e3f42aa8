//! The conformance suite: what every `Store` must do, run unchanged against each backend.
//!
//! A backend's integration tests invoke [`conformance_tests!`] with a factory
//! `async fn() -> (impl Store, Guard)` that returns a fresh, migrated, empty store; the macro
//! expands to one `#[tokio::test]` per check here, so a failure names the check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use regain_core::case::{apply, CaseCommand, CaseEvent, CaseKind, CaseState, Channel, NewCase};
use regain_core::contact::{EmailAddress, PhoneE164};
use regain_core::customer::{ContactDraft, CustomerDraft, CustomerLookup, CustomerStatus, NewCustomer};
use regain_core::{
    Actor, ApiKeyId, Case, CaseId, Customer, CustomerId, Role, Staff, StaffId, Tenant, TenantId, TenantSettings,
    TenantSlug, Timestamp,
};
use uuid::Uuid;

use crate::records::CheckpointSigner;
use crate::*;

/// Expands to one test per conformance check, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@each $factory,
            tenants_round_trip_and_slugs_are_unique,
            staff_sessions_and_totp_steps,
            api_keys_are_found_by_hash_and_revoked_per_tenant,
            customers_round_trip_and_are_found_by_every_identifier,
            a_duplicate_customer_leaves_nothing_half_written,
            logins_are_recorded_and_lock_the_account,
            cases_and_their_timeline_commit_together,
            a_stale_case_update_is_a_conflict_and_appends_nothing,
            concurrent_case_updates_let_exactly_one_win,
            cases_list_with_filters_and_keyset_pages,
            tenants_never_see_each_others_records,
            expired_cases_are_found_across_tenants,
            every_change_is_logged_and_the_log_proves_it,
            a_wrong_master_key_opens_nothing_and_changes_nothing,
            personal_data_is_sealed_and_found_by_blind_index,
            erasure_destroys_the_keys_and_keeps_the_log,
            closed_cases_are_purged_after_retention,
            master_key_rotation_keeps_every_record_readable,
            risk_history_counts_requests_per_subject_and_keeps_the_context_sealed,
            a_change_queues_its_messages_together_and_a_round_records_their_results_together,
            a_contact_change_being_sent_is_never_cancelled_and_is_applied,
            the_last_end_of_an_action_counts_failures_only_when_asked,
            a_customers_cases_in_some_states_are_read_briefly,
            a_step_held_by_another_recovery_is_refused_inside_its_transaction,
            guards_on_pending_actions_and_open_cases_are_judged_inside_the_transaction,
            a_customers_used_links_are_listed_latest_first,
            a_new_set_of_recovery_codes_waits_for_its_interval_even_at_once
        );
    };
    (@each $factory:path, $($check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _guard) = $factory().await;
                $crate::conformance::$check(&store).await;
            }
        )+
    };
}

/// The master key every conformance store is unlocked with (the factory calls [`unlock`]).
pub const TEST_MASTER_KEY: &str = "cmVnYWluIGNvbmZvcm1hbmNlIG1hc3RlciBrZXkgMzI=";

/// Unlocks a fresh store with [`TEST_MASTER_KEY`], as start-up does.
pub async fn unlock(store: &dyn Store) {
    let master = MasterKey::from_text(TEST_MASTER_KEY).unwrap();
    assert_eq!(store.unlock(master, t0()).await.unwrap(), Unlocked::Created);
}

/// An audit record for the changes these checks make.
pub fn audit(action: &str) -> AuditRecord {
    AuditRecord::new(None, Actor::System, action, t0())
}

pub fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap()
}

fn uuid(n: u128) -> Uuid {
    // Time-ordered like a UUIDv7 would be: later n, later id.
    Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000u128) + n)
}

pub async fn tenant(store: &dyn Store, n: u128, slug: &str) -> Tenant {
    let tenant = Tenant {
        id: TenantId::from_uuid(uuid(n)),
        slug: TenantSlug::parse("slug", slug).unwrap(),
        display_name: format!("Tenant {slug}"),
        settings: TenantSettings::default(),
        created_at: t0(),
    };
    store.create_tenant(&tenant, &audit("tenant.created")).await.unwrap();
    tenant
}

pub fn customer(tenant: &Tenant, n: u128, username: &str) -> Customer {
    let draft = CustomerDraft {
        external_id: Some(format!("ext-{username}")),
        username: username.to_owned(),
        account_number: Some(format!("ACC-{n}")),
        full_name: format!("Customer {username}"),
        emails: vec![
            ContactDraft { value: format!("{username}@Example.com"), verified: true, since: None },
            ContactDraft { value: format!("{username}.old@example.org"), verified: false, since: None },
        ],
        phones: vec![ContactDraft { value: format!("+1 201 555 {:04}", n % 10_000), verified: true, since: None }],
        privileged: n.is_multiple_of(2),
        totp_enrolled: true,
        recovery_codes_remaining: 8,
        ..CustomerDraft::default()
    };
    NewCustomer::parse(&draft, "US").unwrap().into_customer(CustomerId::from_uuid(uuid(n)), tenant.id, t0(), true)
}

/// Tenant acme with two customers stored, jane and john.
async fn acme_jane_and_john(store: &dyn Store) -> (Tenant, Customer, Customer) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    let john = customer(&acme, 31, "john");
    for c in [&jane, &john] {
        store.create_customer(c, None, &audit("customer.created")).await.unwrap();
    }
    (acme, jane, john)
}

fn agent(n: u128) -> Actor {
    Actor::Staff { id: StaffId::from_uuid(uuid(n)), role: Role::Agent }
}

pub async fn open_case(store: &dyn Store, tenant: &Tenant, n: u128, kind: CaseKind) -> Case {
    let new = NewCase { kind, channel: Channel::Phone, summary: Some("locked out".into()) };
    let (case, events) = Case::open(CaseId::from_uuid(uuid(n)), tenant.id, &tenant.settings, new, agent(1), t0());
    store.create_case(&case, &events, &agent(1)).await.unwrap();
    case
}

async fn command(store: &dyn Store, case: &Case, cmd: CaseCommand) -> Case {
    let (next, events) = apply(case, cmd, agent(1), case.updated_at + Duration::seconds(1)).unwrap();
    store.update_case(&next, &events, &agent(1)).await.unwrap();
    next
}

pub async fn tenants_round_trip_and_slugs_are_unique(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    assert_eq!(store.tenant(acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.tenant_by_slug("acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(store.tenant_by_slug("nobody").await.unwrap(), None);
    let again = Tenant { id: TenantId::from_uuid(uuid(2)), ..acme.clone() };
    assert_eq!(
        store.create_tenant(&again, &audit("tenant.created")).await,
        Err(StoreError::Duplicate { field: "slug".into() })
    );
    tenant(store, 3, "beta").await;
    let slugs: Vec<String> = store.list_tenants().await.unwrap().into_iter().map(|t| t.slug.to_string()).collect();
    assert_eq!(slugs, ["acme", "beta"]);
    let settings = TenantSettings { default_region: "GB".into(), login_failures_max: 3, ..TenantSettings::default() };
    let updated = store.update_tenant(acme.id, "ACME Bank", &settings, &audit("tenant.updated")).await.unwrap();
    assert_eq!((updated.display_name.as_str(), updated.settings.clone()), ("ACME Bank", settings));
    assert_eq!(store.tenant(acme.id).await.unwrap(), Some(updated));
    assert_eq!(
        store
            .update_tenant(TenantId::from_uuid(uuid(99)), "x", &TenantSettings::default(), &audit("tenant.updated"))
            .await,
        Err(StoreError::NotFound)
    );
}

pub async fn staff_sessions_and_totp_steps(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let record = StaffRecord {
        staff: Staff {
            id: StaffId::from_uuid(uuid(10)),
            tenant_id: Some(acme.id),
            email: EmailAddress::parse("email", "Ana@Acme.test").unwrap(),
            display_name: "Ana".into(),
            role: Role::Supervisor,
            active: true,
            created_at: t0(),
        },
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        totp_secret: vec![1, 2, 3, 0, 255],
        locked_until: None,
    };
    store.create_staff(&record, &audit("staff.created")).await.unwrap();
    assert_eq!(store.staff(record.staff.id).await.unwrap(), Some(record.clone()));
    assert_eq!(store.staff_by_email("ana@acme.test").await.unwrap(), Some(record.clone()));
    let twin =
        StaffRecord { staff: Staff { id: StaffId::from_uuid(uuid(11)), ..record.staff.clone() }, ..record.clone() };
    assert_eq!(
        store.create_staff(&twin, &audit("staff.created")).await,
        Err(StoreError::Duplicate { field: "email".into() })
    );
    assert_eq!(store.list_staff(Some(acme.id)).await.unwrap().len(), 1);
    assert_eq!(store.list_staff(None).await.unwrap().len(), 0);

    // SECURITY.md M3: a TOTP step is used once; an older one never again.
    assert!(store.claim_staff_totp_step(record.staff.id, 100).await.unwrap());
    assert!(!store.claim_staff_totp_step(record.staff.id, 100).await.unwrap());
    assert!(!store.claim_staff_totp_step(record.staff.id, 99).await.unwrap());
    assert!(store.claim_staff_totp_step(record.staff.id, 101).await.unwrap());

    // Three failures against a limit of three lock sign-in until the given time; a success
    // clears it.
    let until = t0() + Duration::minutes(15);
    for _ in 0..2 {
        store.record_staff_login_failure(record.staff.id, 3, until, &audit("staff.login_failed")).await.unwrap();
    }
    assert_eq!(store.staff(record.staff.id).await.unwrap().unwrap().locked_until, None);
    store.record_staff_login_failure(record.staff.id, 3, until, &audit("staff.login_failed")).await.unwrap();
    assert_eq!(store.staff(record.staff.id).await.unwrap().unwrap().locked_until, Some(until));
    store.record_staff_login(record.staff.id, &audit("staff.login")).await.unwrap();
    assert_eq!(store.staff(record.staff.id).await.unwrap().unwrap().locked_until, None);

    let session = SessionRecord {
        token_hash: "aa".repeat(32),
        staff_id: record.staff.id,
        created_at: t0(),
        expires_at: t0() + Duration::hours(12),
        idle_until: t0() + Duration::minutes(30),
    };
    store.create_session(&session).await.unwrap();
    let later = t0() + Duration::minutes(20);
    let touched =
        store.touch_session(&session.token_hash, later, later + Duration::minutes(30)).await.unwrap().unwrap();
    assert_eq!(touched.idle_until, later + Duration::minutes(30));
    // Idle past the (pushed) deadline: gone.
    let idle = later + Duration::minutes(31);
    assert_eq!(store.touch_session(&session.token_hash, idle, idle).await.unwrap(), None);
    // Revoked: gone even while fresh.
    let fresh = SessionRecord { token_hash: "bb".repeat(32), ..session.clone() };
    store.create_session(&fresh).await.unwrap();
    store.revoke_session(&fresh.token_hash, t0()).await.unwrap();
    assert_eq!(store.touch_session(&fresh.token_hash, t0(), t0()).await.unwrap(), None);
    assert_eq!(store.touch_session("unknown", t0(), t0()).await.unwrap(), None);
}

pub async fn api_keys_are_found_by_hash_and_revoked_per_tenant(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let beta = tenant(store, 2, "beta").await;
    let key = ApiKeyRecord {
        id: ApiKeyId::from_uuid(uuid(20)),
        tenant_id: acme.id,
        name: "crm".into(),
        role: Role::Integration,
        secret_hash: "cc".repeat(32),
        created_by: None,
        created_at: t0(),
        last_used_at: None,
        revoked_at: None,
    };
    store.create_api_key(&key, &audit("api_key.created")).await.unwrap();
    let used = store.use_api_key(&key.secret_hash, t0() + Duration::seconds(5)).await.unwrap().unwrap();
    assert_eq!(used.last_used_at, Some(t0() + Duration::seconds(5)));
    assert_eq!(store.list_api_keys(acme.id).await.unwrap().len(), 1);
    assert_eq!(store.list_api_keys(beta.id).await.unwrap().len(), 0);
    assert_eq!(store.revoke_api_key(beta.id, key.id, &audit("api_key.revoked")).await, Err(StoreError::NotFound));
    assert!(store.use_api_key(&key.secret_hash, t0()).await.unwrap().is_some(), "other tenant's revoke had effect");
    store.revoke_api_key(acme.id, key.id, &audit("api_key.revoked")).await.unwrap();
    assert_eq!(store.use_api_key(&key.secret_hash, t0()).await.unwrap(), None);
}

pub async fn customers_round_trip_and_are_found_by_every_identifier(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "Jane");
    store.create_customer(&jane, Some("$argon2id$hash"), &audit("customer.created")).await.unwrap();
    store.create_customer(&customer(&acme, 31, "john"), None, &audit("customer.created")).await.unwrap();
    assert_eq!(store.customer(acme.id, jane.id).await.unwrap(), Some(jane.clone()));
    let lookups = [
        CustomerLookup::ExternalId("ext-Jane".into()),
        CustomerLookup::Username("JANE".into()),
        CustomerLookup::AccountNumber("ACC-30".into()),
        CustomerLookup::Email(EmailAddress::parse("e", "jane@example.com").unwrap()),
        CustomerLookup::Email(EmailAddress::parse("e", "Jane.Old@Example.org").unwrap()),
        CustomerLookup::Phone(PhoneE164::parse("p", "(201) 555-0030", "US").unwrap()),
    ];
    for lookup in lookups {
        let found = store.find_customers(acme.id, &lookup).await.unwrap();
        assert_eq!(found, vec![jane.clone()], "{lookup:?}");
    }
    let nobody = CustomerLookup::Email(EmailAddress::parse("e", "nobody@example.com").unwrap());
    assert!(store.find_customers(acme.id, &nobody).await.unwrap().is_empty());

    let account = store.directory_account(acme.id, "jane").await.unwrap().unwrap();
    assert_eq!((account.customer_id, account.password_hash.as_deref()), (jane.id, Some("$argon2id$hash")));
    assert_eq!(store.directory_account(acme.id, "john").await.unwrap().unwrap().password_hash, None);
    assert_eq!(store.directory_account(acme.id, "nobody").await.unwrap(), None);
}

pub async fn a_duplicate_customer_leaves_nothing_half_written(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    store.create_customer(&customer(&acme, 30, "jane"), None, &audit("customer.created")).await.unwrap();
    // Same username (in another case), new email: refused whole, the new email not kept.
    let mut twin = customer(&acme, 31, "JANE");
    twin.external_id = Some("other".into());
    twin.account_number = None;
    twin.emails.truncate(1);
    twin.emails[0].address = EmailAddress::parse("e", "twin@example.com").unwrap();
    assert_eq!(
        store.create_customer(&twin, None, &audit("customer.created")).await,
        Err(StoreError::Duplicate { field: "username".into() })
    );
    let twin_email = CustomerLookup::Email(EmailAddress::parse("e", "twin@example.com").unwrap());
    assert!(store.find_customers(acme.id, &twin_email).await.unwrap().is_empty());
    assert_eq!(store.customer(acme.id, twin.id).await.unwrap(), None);
    let mut same_external = customer(&acme, 32, "other");
    same_external.external_id = Some("ext-jane".into());
    assert_eq!(
        store.create_customer(&same_external, None, &audit("customer.created")).await,
        Err(StoreError::Duplicate { field: "external_id".into() })
    );
}

pub async fn logins_are_recorded_and_lock_the_account(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, Some("$argon2id$hash"), &audit("customer.created")).await.unwrap();
    let attempt = |n: i64, success: bool| LoginAttempt {
        tenant_id: acme.id,
        customer_id: jane.id,
        at: t0() + Duration::seconds(n),
        ip: Some(format!("198.51.100.{n}")),
        user_agent: Some("curl/8".into()),
        success,
    };
    let status = |success: bool, status: CustomerStatus| LoginRecorded { success, status };
    assert_eq!(store.record_login(&attempt(1, false), 3).await.unwrap(), status(false, CustomerStatus::Active));
    assert_eq!(store.record_login(&attempt(2, true), 3).await.unwrap(), status(true, CustomerStatus::Active));
    // A success reset the count: two more failures do not lock, the third does.
    assert_eq!(store.record_login(&attempt(3, false), 3).await.unwrap(), status(false, CustomerStatus::Active));
    assert_eq!(store.record_login(&attempt(4, false), 3).await.unwrap(), status(false, CustomerStatus::Active));
    assert_eq!(store.record_login(&attempt(5, false), 3).await.unwrap(), status(false, CustomerStatus::Locked));
    assert_eq!(store.directory_account(acme.id, "jane").await.unwrap().unwrap().failed_logins, 3);
    // A right password that arrives after the lock (a concurrent burst of guesses) does not stand.
    let late = store.record_login(&attempt(6, true), 3).await.unwrap();
    assert_eq!(late, status(false, CustomerStatus::Locked));
    let history = store.login_history(acme.id, jane.id, 10).await.unwrap();
    assert_eq!(history.len(), 6);
    assert_eq!(history[0], LoginAttempt { success: false, ..attempt(6, true) }, "newest first, recorded as it stood");
    assert_eq!(store.login_history(acme.id, jane.id, 2).await.unwrap().len(), 2);
    // Unlocking resets the count.
    let unlocked = store
        .set_customer_status(acme.id, jane.id, CustomerStatus::Active, &audit("customer.status_changed"))
        .await
        .unwrap();
    assert_eq!(unlocked.status, CustomerStatus::Active);
    assert_eq!(store.directory_account(acme.id, "jane").await.unwrap().unwrap().failed_logins, 0);
    // A disabled account stays disabled however many failures.
    store
        .set_customer_status(acme.id, jane.id, CustomerStatus::Disabled, &audit("customer.status_changed"))
        .await
        .unwrap();
    for n in 7..10 {
        assert_eq!(store.record_login(&attempt(n, false), 3).await.unwrap(), status(false, CustomerStatus::Disabled));
    }
    // Attempts for unknown usernames are history too, per tenant and IP.
    let beta = tenant(store, 2, "beta").await;
    for n in 0..3 {
        store
            .record_unknown_login(acme.id, t0() + Duration::seconds(n), Some("203.0.113.9"), Some("bot/1"))
            .await
            .unwrap();
    }
    store.record_unknown_login(beta.id, t0(), Some("203.0.113.9"), None).await.unwrap();
    store.record_unknown_login(acme.id, t0(), None, None).await.unwrap();
    assert_eq!(store.unknown_logins_from(acme.id, "203.0.113.9", t0()).await.unwrap(), 3);
    assert_eq!(store.unknown_logins_from(acme.id, "203.0.113.9", t0() + Duration::seconds(1)).await.unwrap(), 2);
    assert_eq!(store.unknown_logins_from(beta.id, "203.0.113.9", t0()).await.unwrap(), 1);

    let session = CustomerSessionRecord {
        token_hash: "dd".repeat(32),
        tenant_id: acme.id,
        customer_id: jane.id,
        created_at: t0(),
        expires_at: t0() + Duration::hours(1),
    };
    store.create_customer_session(&session).await.unwrap();
    assert_eq!(store.customer_session(&session.token_hash, t0()).await.unwrap(), Some(session.clone()));
    assert_eq!(store.customer_session(&session.token_hash, t0() + Duration::hours(1)).await.unwrap(), None);
}

pub async fn cases_and_their_timeline_commit_together(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    assert_eq!(store.case(acme.id, case.id).await.unwrap(), Some(case.clone()));
    let case = command(store, &case, CaseCommand::StartIdentification).await;
    let case = command(store, &case, CaseCommand::Identify { customer_id: CustomerId::from_uuid(uuid(30)) }).await;
    assert_eq!(store.case(acme.id, case.id).await.unwrap(), Some(case.clone()));
    let timeline = store.timeline(acme.id, case.id).await.unwrap();
    let summary: Vec<(i64, &str, CaseState)> =
        timeline.iter().map(|e| (e.seq, e.event.name(), e.state_after)).collect();
    assert_eq!(
        summary,
        [
            (1, "case.opened", CaseState::Open),
            (2, "case.state_changed", CaseState::Identifying),
            (3, "case.customer_identified", CaseState::Identifying),
            (4, "case.state_changed", CaseState::Verifying),
        ]
    );
    assert_eq!(timeline[0].actor, agent(1));
    assert_eq!(timeline[3].at, case.updated_at);
}

pub async fn a_stale_case_update_is_a_conflict_and_appends_nothing(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let current = command(store, &case, CaseCommand::StartIdentification).await;
    // Someone still holding the version-1 case tries to change it.
    let (stale, events) = apply(&case, CaseCommand::Cancel { reason: "dup".into() }, agent(2), t0()).unwrap();
    assert_eq!(store.update_case(&stale, &events, &agent(2)).await, Err(StoreError::Conflict));
    assert_eq!(store.case(acme.id, case.id).await.unwrap(), Some(current));
    assert_eq!(store.timeline(acme.id, case.id).await.unwrap().len(), 2);
}

pub async fn concurrent_case_updates_let_exactly_one_win(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let store: Arc<&dyn Store> = Arc::new(store);
    let attempts = (0..8u128).map(|n| {
        let store = Arc::clone(&store);
        let case = case.clone();
        async move {
            let cmd = CaseCommand::AddNote { text: format!("note {n}") };
            let (next, events) = apply(&case, cmd, agent(n + 1), t0()).unwrap();
            store.update_case(&next, &events, &agent(n + 1)).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok() || *r == Err(StoreError::Conflict)), "{results:?}");
    assert_eq!(store.timeline(acme.id, case.id).await.unwrap().len(), 2);
}

pub async fn cases_list_with_filters_and_keyset_pages(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let mut ids = Vec::new();
    for n in 0..7u128 {
        let kind = if n.is_multiple_of(2) { CaseKind::PasswordReset } else { CaseKind::MfaRecovery };
        ids.push(open_case(store, &acme, 100 + n, kind).await.id);
    }
    let first = store.case(acme.id, ids[0]).await.unwrap().unwrap();
    command(store, &first, CaseCommand::StartIdentification).await;

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.list_cases(acme.id, &CaseFilter::default(), &PageRequest { limit: 3, after }).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|c| c.id));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!((seen, pages), (ids.clone(), 3), "newest first, 3 + 3 + 1");

    let kind = CaseFilter { kind: Some(CaseKind::MfaRecovery), ..CaseFilter::default() };
    let page = store.list_cases(acme.id, &kind, &PageRequest { limit: 50, after: None }).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().all(|c| c.kind == CaseKind::MfaRecovery));
    let states = CaseFilter { states: vec![CaseState::Identifying, CaseState::Verifying], ..CaseFilter::default() };
    let page = store.list_cases(acme.id, &states, &PageRequest { limit: 50, after: None }).await.unwrap();
    assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), [first.id]);
    let unassigned = CaseFilter {
        assignee: Some(AssigneeFilter::Unassigned),
        tier: Some(regain_core::case::Tier::FRONT_LINE),
        ..CaseFilter::default()
    };
    assert_eq!(
        store.list_cases(acme.id, &unassigned, &PageRequest { limit: 50, after: None }).await.unwrap().items.len(),
        7
    );
    let mine =
        CaseFilter { assignee: Some(AssigneeFilter::Staff(StaffId::from_uuid(uuid(1)))), ..CaseFilter::default() };
    assert!(store.list_cases(acme.id, &mine, &PageRequest { limit: 50, after: None }).await.unwrap().items.is_empty());
}

pub async fn tenants_never_see_each_others_records(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let beta = tenant(store, 2, "beta").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, Some("$argon2id$hash"), &audit("customer.created")).await.unwrap();
    // The same username in another tenant is another person.
    store.create_customer(&customer(&beta, 31, "jane"), None, &audit("customer.created")).await.unwrap();
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    assert_eq!(store.customer(beta.id, jane.id).await.unwrap(), None);
    assert_eq!(store.case(beta.id, case.id).await.unwrap(), None);
    assert!(store.timeline(beta.id, case.id).await.unwrap().is_empty());
    assert!(store
        .list_cases(beta.id, &CaseFilter::default(), &PageRequest { limit: 50, after: None })
        .await
        .unwrap()
        .items
        .is_empty());
    let by_email = CustomerLookup::Email(EmailAddress::parse("e", "jane@example.com").unwrap());
    let found = store.find_customers(beta.id, &by_email).await.unwrap();
    assert!(found.iter().all(|c| c.tenant_id == beta.id) && found.len() == 1);
    assert_eq!(
        store.set_customer_status(beta.id, jane.id, CustomerStatus::Locked, &audit("customer.status_changed")).await,
        Err(StoreError::NotFound)
    );
    let (next, events) = apply(&case, CaseCommand::StartIdentification, agent(1), t0()).unwrap();
    let foreign = Case { tenant_id: beta.id, ..next };
    assert_eq!(store.update_case(&foreign, &events, &agent(1)).await, Err(StoreError::Conflict));
}

pub async fn expired_cases_are_found_across_tenants(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let beta = tenant(store, 2, "beta").await;
    let a = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let b = open_case(store, &beta, 101, CaseKind::AccountUnlock).await;
    let c = open_case(store, &beta, 102, CaseKind::AccountUnlock).await;
    let cancelled = command(store, &c, CaseCommand::Cancel { reason: "duplicate".into() }).await;
    assert_eq!(cancelled.state, CaseState::Cancelled);
    assert!(store.cases_to_expire(a.expires_at - Duration::seconds(1), 10).await.unwrap().is_empty());
    let due: Vec<CaseId> = store.cases_to_expire(a.expires_at, 10).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(due.len(), 2);
    assert!(due.contains(&a.id) && due.contains(&b.id));
    assert_eq!(store.cases_to_expire(a.expires_at, 1).await.unwrap().len(), 1);
}

/// Signs checkpoints for the conformance checks with a plain, unsigned stand-in note.
pub struct TestSigner;

impl CheckpointSigner for TestSigner {
    fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, String> {
        Ok(format!("test/log\n{size}\n{}\n", root.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }
}

pub async fn every_change_is_logged_and_the_log_proves_it(store: &dyn Store) {
    // SECURITY.md L1, L4.
    let acme = tenant(store, 1, "acme").await;
    let created = AuditRecord::new(Some(acme.id), Actor::System, "customer.created", t0())
        .customer(CustomerId::from_uuid(uuid(30)));
    store.create_customer(&customer(&acme, 30, "jane"), Some("$argon2id$hash"), &created).await.unwrap();
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let case = command(store, &case, CaseCommand::StartIdentification).await;
    command(store, &case, CaseCommand::Identify { customer_id: CustomerId::from_uuid(uuid(30)) }).await;
    let logged = store.unsequenced_audit_entries().await.unwrap();
    assert_eq!(logged, 6, "tenant, customer, case opened, state changed, customer identified, state changed");
    // A refused change logs nothing.
    let twin = customer(&acme, 31, "jane");
    assert!(store.create_customer(&twin, None, &audit("customer.created")).await.is_err());
    assert_eq!(store.unsequenced_audit_entries().await.unwrap(), logged);

    // Batches of 4: checkpoints at 4 and 6.
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    let first = store.sequence_audit(4, t0(), &TestSigner).await.unwrap().unwrap();
    let second = store.sequence_audit(4, t0(), &TestSigner).await.unwrap().unwrap();
    assert_eq!((first.size, second.size), (4, 6));
    assert_eq!(store.sequence_audit(4, t0(), &TestSigner).await.unwrap(), None, "nothing left to place");
    assert_eq!(store.unsequenced_audit_entries().await.unwrap(), 0);
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(second.clone()));
    assert_eq!(store.checkpoint(4).await.unwrap(), Some(first.clone()));
    assert_eq!(store.checkpoints(1, 10).await.unwrap(), vec![first.clone(), second.clone()]);
    assert!(second.note.starts_with("test/log\n6\n"));

    let entries = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(entries.len(), 6);
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (0..6).map(Some).collect::<Vec<_>>());
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenant.created",
            "customer.created",
            "case.opened",
            "case.state_changed",
            "case.customer_identified",
            "case.state_changed"
        ]
    );
    let identified = &entries[4];
    assert_eq!((identified.case_id, identified.customer_id), (Some(case.id), Some(CustomerId::from_uuid(uuid(30)))));
    assert!(identified.entry.contains("\"case_seq\":3") && identified.entry.contains(&case.id.to_string()));
    assert_eq!(store.audit_entry(4).await.unwrap().as_ref(), Some(identified));
    assert_eq!(store.audit_entry(6).await.unwrap(), None);

    // The root is the RFC 9162 root of the entries' leaf hashes; every proof verifies from
    // stored nodes.
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| regain_merkle::leaf_hash(e.entry.as_bytes())).collect();
    assert_eq!(second.root, regain_merkle::root(&leaves));
    assert_eq!(first.root, regain_merkle::root(&leaves[..4]));
    for (seq, leaf) in leaves.iter().enumerate() {
        let plan = regain_merkle::inclusion_proof_plan(seq as u64, 6).unwrap();
        let proof = plan.assemble(&store.audit_nodes(&plan.nodes()).await.unwrap()).unwrap();
        regain_merkle::verify_inclusion(leaf, seq as u64, 6, &proof, &second.root).unwrap();
    }
    // What names a customer is found by customer, within the tenant only.
    let jane = CustomerId::from_uuid(uuid(30));
    let about_jane = store.audit_entries_for_customer(acme.id, jane, 100).await.unwrap();
    let actions: Vec<&str> = about_jane.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["customer.created", "case.customer_identified", "case.state_changed"]);
    let beta = tenant(store, 2, "beta").await;
    assert!(store.audit_entries_for_customer(beta.id, jane, 100).await.unwrap().is_empty());
    store.record_audit(&audit("customer.exported").customer(jane)).await.unwrap();
    assert_eq!(store.unsequenced_audit_entries().await.unwrap(), 2, "beta's creation and the export");
    let plan = regain_merkle::consistency_proof_plan(4, 6).unwrap();
    let proof = plan.assemble(&store.audit_nodes(&plan.nodes()).await.unwrap()).unwrap();
    regain_merkle::verify_consistency(4, 6, &proof, &first.root, &second.root).unwrap();
}

pub async fn a_wrong_master_key_opens_nothing_and_changes_nothing(store: &dyn Store) {
    // Issue 3, bad input: a wrong master key at start-up is refused, never replaced.
    let id = store.master_key_id().await.unwrap().unwrap();
    let acme = tenant(store, 1, "acme").await;
    store.create_customer(&customer(&acme, 30, "jane"), None, &audit("customer.created")).await.unwrap();
    let err = store.unlock(MasterKey::generate(), t0()).await.unwrap_err();
    let StoreError::Keyring(message) = err else { panic!("{err:?}") };
    assert!(message.contains(&id) && message.contains("refusing"), "{message}");
    assert_eq!(store.master_key_id().await.unwrap(), Some(id), "the keyring is untouched");
    // The right key still opens everything.
    let master = MasterKey::from_text(TEST_MASTER_KEY).unwrap();
    assert_eq!(store.unlock(master, t0()).await.unwrap(), Unlocked::Opened);
    assert_eq!(store.customer(acme.id, CustomerId::from_uuid(uuid(30))).await.unwrap().unwrap().username, "jane");
}

pub async fn personal_data_is_sealed_and_found_by_blind_index(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let beta = tenant(store, 2, "beta").await;
    let jane = customer(&acme, 30, "Jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.unwrap();
    // The same person at another tenant: same identifiers, separate indexes.
    let twin = Customer { id: CustomerId::from_uuid(uuid(31)), tenant_id: beta.id, ..jane.clone() };
    store.create_customer(&twin, None, &audit("customer.created")).await.unwrap();
    for lookup in [
        CustomerLookup::Username("jANE".into()),
        CustomerLookup::AccountNumber("ACC-30".into()),
        CustomerLookup::Email(EmailAddress::parse("e", "JANE@example.COM").unwrap()),
        CustomerLookup::Phone(PhoneE164::parse("p", "(201) 555-0030", "US").unwrap()),
    ] {
        assert_eq!(store.find_customers(acme.id, &lookup).await.unwrap(), vec![jane.clone()], "{lookup:?}");
        assert_eq!(store.find_customers(beta.id, &lookup).await.unwrap(), vec![twin.clone()], "{lookup:?}");
    }
    // Free text about a case is sealed in the timeline and the log, and reads back in clear.
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let case = command(store, &case, CaseCommand::AddNote { text: "caller gave mother's maiden name".into() }).await;
    assert_eq!(store.case(acme.id, case.id).await.unwrap().unwrap().summary.as_deref(), Some("locked out"));
    let timeline = store.timeline(acme.id, case.id).await.unwrap();
    assert_eq!(timeline[1].event, CaseEvent::NoteAdded { text: "caller gave mother's maiden name".into() });
    assert!(!timeline[1].erased);
    store.sequence_audit(100, t0(), &TestSigner).await.unwrap();
    let entries = store.audit_entries(0, 100).await.unwrap();
    let note = entries.iter().find(|e| e.action == "case.note_added").unwrap();
    assert!(note.entry.contains("\"sealed\"") && !note.entry.contains("maiden"), "{}", note.entry);
    assert!(entries.iter().all(|e| !e.entry.contains("Jane") && !e.entry.contains("example.com")));
}

pub async fn erasure_destroys_the_keys_and_keeps_the_log(store: &dyn Store) {
    // GDPR Art. 17; issue 3 item 7.
    let acme = tenant(store, 1, "acme").await;
    let jane_id = CustomerId::from_uuid(uuid(30));
    store.create_customer(&customer(&acme, 30, "jane"), Some("$argon2id$x"), &audit("customer.created")).await.unwrap();
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let case = command(store, &case, CaseCommand::StartIdentification).await;
    let case = command(store, &case, CaseCommand::Identify { customer_id: jane_id }).await;
    let case = command(store, &case, CaseCommand::AddNote { text: "says she lost her phone".into() }).await;

    // Not while a case is open.
    let erase = AuditRecord::new(Some(acme.id), Actor::System, "customer.erased", t0());
    let err = store.erase_customer(acme.id, jane_id, &erase).await.unwrap_err();
    assert!(matches!(err, StoreError::Precondition(ref m) if m.contains("1 case")), "{err:?}");
    assert!(store.customer(acme.id, jane_id).await.unwrap().is_some(), "nothing changed");
    // Not from another tenant.
    let beta = tenant(store, 2, "beta").await;
    assert_eq!(store.erase_customer(beta.id, jane_id, &erase).await, Err(StoreError::NotFound));

    command(store, &case, CaseCommand::Cancel { reason: "she called back: found it".into() }).await;
    store.sequence_audit(1000, t0(), &TestSigner).await.unwrap();
    let before = store.latest_checkpoint().await.unwrap().unwrap();

    assert_eq!(store.erase_customer(acme.id, jane_id, &erase).await.unwrap(), Erasure { cases: 1 });
    assert_eq!(store.customer(acme.id, jane_id).await.unwrap(), None);
    assert!(store.find_customers(acme.id, &CustomerLookup::Username("jane".into())).await.unwrap().is_empty());
    assert!(store.directory_account(acme.id, "jane").await.unwrap().is_none());
    assert!(store.login_history(acme.id, jane_id, 10).await.unwrap().is_empty());
    assert_eq!(store.erase_customer(acme.id, jane_id, &erase).await, Err(StoreError::NotFound));

    // The case stays, without its summary; its timeline shows the free text as erased.
    let kept = store.case(acme.id, case.id).await.unwrap().unwrap();
    assert_eq!((kept.state, kept.summary.clone(), kept.customer_id), (CaseState::Cancelled, None, Some(jane_id)));
    let timeline = store.timeline(acme.id, case.id).await.unwrap();
    let note = timeline.iter().find(|e| e.event.name() == "case.note_added").unwrap();
    assert!(note.erased);
    assert_eq!(note.event, CaseEvent::NoteAdded { text: String::new() });
    assert!(!timeline[0].erased, "entries without free text are whole");
    // A case whose data was erased takes no more changes.
    let next = Case { version: kept.version + 1, ..kept.clone() };
    let note = [CaseEvent::NoteAdded { text: "x".into() }];
    assert!(matches!(store.update_case(&next, &note, &agent(1)).await, Err(StoreError::Precondition(_))));

    // The log: every earlier entry still there, the erasure logged, every proof still verifies.
    let erased = store.sequence_audit(1000, t0(), &TestSigner).await.unwrap().unwrap();
    assert_eq!(erased.size, before.size + 1);
    let entries = store.audit_entries(0, 1000).await.unwrap();
    assert_eq!(entries.last().unwrap().action, "customer.erased");
    assert_eq!(entries.last().unwrap().customer_id, Some(jane_id));
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| regain_merkle::leaf_hash(e.entry.as_bytes())).collect();
    assert_eq!(erased.root, regain_merkle::root(&leaves));
    assert_eq!(before.root, regain_merkle::root(&leaves[..before.size as usize]));
}

pub async fn closed_cases_are_purged_after_retention(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let closed = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let closed = command(store, &closed, CaseCommand::Cancel { reason: "duplicate".into() }).await;
    let open = open_case(store, &acme, 101, CaseKind::PasswordReset).await;
    let beta = tenant(store, 2, "beta").await;
    let elsewhere = open_case(store, &beta, 102, CaseKind::PasswordReset).await;
    command(store, &elsewhere, CaseCommand::Cancel { reason: "duplicate".into() }).await;
    // Report links no case stands behind go once expired before the cut-off.
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.unwrap();
    let link = |id: &str, expires_at| Effect::IssueLink {
        link: NewCustomerLink {
            id: id.to_owned(),
            purpose: LinkPurpose::Report,
            tenant_id: acme.id,
            case_id: None,
            customer_id: jane.id,
            destination: "j***@e***.com".into(),
            expires_at,
            created_at: t0() - Duration::days(30),
        },
        token: format!("token-{id}"),
    };
    let links = [link("expired", t0() + Duration::hours(1)), link("live", t0() + Duration::days(30))];
    store.apply_effects(t0(), &links).await.unwrap();

    // Not yet: closed after the cut-off.
    let purged = store.purge_closed_cases(acme.id, t0(), 10, t0()).await.unwrap();
    assert!(purged.is_empty());
    assert!(store.customer_link("token-expired").await.unwrap().is_some(), "it expires after this cut-off");
    let logged = store.unsequenced_audit_entries().await.unwrap();
    let purged = store.purge_closed_cases(acme.id, t0() + Duration::days(1), 10, t0()).await.unwrap();
    assert_eq!(purged, vec![closed.id], "only the closed case of this tenant");
    assert_eq!(store.customer_link("token-expired").await.unwrap(), None);
    assert!(store.customer_link("token-live").await.unwrap().is_some());
    assert_eq!(store.case(acme.id, closed.id).await.unwrap(), None);
    assert!(store.timeline(acme.id, closed.id).await.unwrap().is_empty());
    assert!(store.case(acme.id, open.id).await.unwrap().is_some());
    assert!(store.case(beta.id, elsewhere.id).await.unwrap().is_some());
    // Each purge is itself an audit entry.
    assert_eq!(store.unsequenced_audit_entries().await.unwrap(), logged + 1);
    store.sequence_audit(1000, t0(), &TestSigner).await.unwrap();
    let entries = store.audit_entries(0, 1000).await.unwrap();
    let purge = entries.last().unwrap();
    assert_eq!((purge.action.as_str(), purge.case_id), ("retention.case_purged", Some(closed.id)));
    // The purged case's entries stay in the log; their free text no longer opens.
    assert!(entries.iter().any(|e| e.case_id == Some(closed.id) && e.entry.contains("\"sealed\"")));
}

pub async fn master_key_rotation_keeps_every_record_readable(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.unwrap();
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let old_id = store.master_key_id().await.unwrap().unwrap();

    let next = MasterKey::generate();
    let next_text = next.to_text();
    let next_id = next.id();
    assert_eq!(store.rotate_master_key(next, &audit("keys.rotated")).await.unwrap(), 2, "jane's key and the case's");
    assert_eq!(store.master_key_id().await.unwrap(), Some(next_id.clone()));
    // Everything reads, and is found, as before; new records use the new key.
    assert_eq!(store.customer(acme.id, jane.id).await.unwrap(), Some(jane.clone()));
    assert_eq!(store.find_customers(acme.id, &CustomerLookup::Username("jane".into())).await.unwrap(), vec![jane]);
    assert_eq!(store.case(acme.id, case.id).await.unwrap().unwrap().summary.as_deref(), Some("locked out"));
    store.create_customer(&customer(&acme, 31, "joe"), None, &audit("customer.created")).await.unwrap();
    // The old key no longer opens the database; the new one does.
    let old = MasterKey::from_text(TEST_MASTER_KEY).unwrap();
    assert!(matches!(store.unlock(old, t0()).await, Err(StoreError::Keyring(m)) if m.contains(&old_id)));
    let again = MasterKey::from_text(&next_text).unwrap();
    assert_eq!(store.unlock(again, t0()).await.unwrap(), Unlocked::Opened);
    assert_eq!(store.customer(acme.id, CustomerId::from_uuid(uuid(31))).await.unwrap().unwrap().username, "joe");
    let entries = store.unsequenced_audit_entries().await.unwrap();
    assert!(entries >= 5);
}

pub async fn risk_history_counts_requests_per_subject_and_keeps_the_context_sealed(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let beta = tenant(store, 2, "beta").await;
    let jane = customer(&acme, 40, "jane");
    store.create_customer(&jane, Some("$argon2id$hash"), &audit("customer.created")).await.unwrap();
    let windows = RiskWindows {
        customer: Duration::hours(24),
        ip: Duration::hours(1),
        phone: Duration::hours(24),
        email: Duration::hours(24),
        failures: Duration::hours(24),
        logins_max: 10,
    };
    let context = |ip: &str| RequestContext {
        ip: Some(ip.to_owned()),
        user_agent: Some("curl/8".into()),
        device_id: None,
        phone: Some("+12015550040".into()),
        email: None,
        named_phone: None,
        named_email: None,
    };
    // Four requests from one address in an hour; the last two are Jane's once identified.
    let mut cases = Vec::new();
    for n in 0..4u128 {
        let case = open_case(store, &acme, 200 + n, CaseKind::PasswordReset).await;
        let at = t0() + Duration::minutes(i64::try_from(n).unwrap() * 10);
        store.record_request(acme.id, case.id, at, None, &context("203.0.113.9")).await.unwrap();
        cases.push(case);
    }
    // Identification adds the customer and what the caller named, and keeps what the intake
    // saw (the caller ID): a phone named that is not the one called from counts too.
    let named = RequestContext {
        named_email: Some("jane@example.com".into()),
        named_phone: Some("+12015550099".into()),
        ..RequestContext::default()
    };
    for case in &cases[2..] {
        store.record_request(acme.id, case.id, t0(), Some(jane.id), &named).await.unwrap();
    }
    // Naming a throwaway first and the real number later: the latest naming is what counts.
    let throwaway = RequestContext { named_phone: Some("+12015550001".into()), ..RequestContext::default() };
    store.record_request(acme.id, cases[1].id, t0(), None, &throwaway).await.unwrap();
    let target = RequestContext { named_phone: Some("+12015550099".into()), ..RequestContext::default() };
    store.record_request(acme.id, cases[1].id, t0(), None, &target).await.unwrap();
    // Another tenant's requests from the same address count for nobody here.
    let other = open_case(store, &beta, 300, CaseKind::PasswordReset).await;
    store.record_request(beta.id, other.id, t0(), None, &context("203.0.113.9")).await.unwrap();
    // A case of another tenant cannot be recorded under this one.
    assert_eq!(
        store.record_request(acme.id, other.id, t0(), None, &context("203.0.113.9")).await,
        Err(StoreError::NotFound)
    );

    let now = t0() + Duration::minutes(40);
    let history = store.risk_history(acme.id, cases[3].id, Some(jane.id), &windows, now).await.unwrap();
    assert_eq!(history.requests_ip, Some(4));
    // The caller ID (all four) or the named number (three of them): every request counts once.
    assert_eq!(history.requests_phone, Some(4));
    assert_eq!(history.requests_email, Some(2));
    assert_eq!(history.requests_customer, Some(2));
    assert_eq!(history.failures, Some(0));
    assert_eq!(history.context.ip.as_deref(), Some("203.0.113.9"), "the intake's context is kept");
    assert_eq!(history.context.phone.as_deref(), Some("+12015550040"), "the caller ID stays");
    assert_eq!(history.context.named_phone.as_deref(), Some("+12015550099"), "what was named is added");
    assert_eq!(history.context.named_email.as_deref(), Some("jane@example.com"));
    let throwaway_row = store.risk_history(acme.id, cases[1].id, None, &windows, now).await.unwrap();
    assert_eq!(throwaway_row.context.named_phone.as_deref(), Some("+12015550099"), "the latest naming counts");
    assert_eq!(history.login_successes, 0);
    // The IP window is an hour: later, the early requests no longer count.
    let later =
        store.risk_history(acme.id, cases[3].id, Some(jane.id), &windows, t0() + Duration::minutes(75)).await.unwrap();
    assert_eq!(later.requests_ip, Some(2));
    // No customer: no customer counts; a request without an email: no email count.
    let unknown = store.risk_history(acme.id, cases[0].id, None, &windows, now).await.unwrap();
    assert_eq!((unknown.requests_customer, unknown.requests_email, unknown.failures), (None, None, None));
    assert_eq!(unknown.requests_ip, Some(4));
    // A case with no recorded request has an empty context.
    let bare = open_case(store, &acme, 400, CaseKind::AccountUnlock).await;
    let empty = store.risk_history(acme.id, bare.id, None, &windows, now).await.unwrap();
    assert_eq!(empty, RiskHistory::default());

    // Sign-ins: distinct recent successes, newest first.
    for (n, ip) in [(1, "192.0.2.1"), (2, "192.0.2.1"), (3, "192.0.2.2")] {
        let attempt = LoginAttempt {
            tenant_id: acme.id,
            customer_id: jane.id,
            at: t0() + Duration::seconds(n),
            ip: Some(ip.into()),
            user_agent: Some("laptop".into()),
            success: true,
        };
        store.record_login(&attempt, 5).await.unwrap();
    }
    let history = store.risk_history(acme.id, cases[3].id, Some(jane.id), &windows, now).await.unwrap();
    assert_eq!(history.login_successes, 3);
    let ips: Vec<Option<&str>> = history.logins.iter().map(|l| l.ip.as_deref()).collect();
    assert_eq!(ips, [Some("192.0.2.2"), Some("192.0.2.1")]);

    // Requests per hour of the day, per tenant.
    let hours = store.request_hours(acme.id, t0() - Duration::days(28)).await.unwrap();
    assert_eq!(hours[9], 4, "{hours:?}");
    assert_eq!(hours.iter().sum::<u32>(), 4);
    assert_eq!(store.request_hours(beta.id, t0() - Duration::days(28)).await.unwrap().iter().sum::<u32>(), 1);

    // A request counts once when it came from, or named, the number: the three that named it
    // and this one, which calls from another phone and names it too.
    let fifth = open_case(store, &acme, 210, CaseKind::PasswordReset).await;
    let both = RequestContext {
        phone: Some("+12015550777".into()),
        named_phone: Some("+12015550099".into()),
        ..RequestContext::default()
    };
    store.record_request(acme.id, fifth.id, t0() + Duration::minutes(30), None, &both).await.unwrap();
    let fifth_history = store.risk_history(acme.id, fifth.id, None, &windows, now).await.unwrap();
    assert_eq!(fifth_history.requests_phone, Some(4));

    // Erasing the customer takes their requests' blind indexes with them.
    for case in &cases[2..] {
        command(store, case, CaseCommand::Cancel { reason: "done".into() }).await;
    }
    store.erase_customer(acme.id, jane.id, &audit("customer.erased")).await.unwrap();
    let after = store.risk_history(acme.id, cases[0].id, None, &windows, now).await.unwrap();
    assert_eq!(after.requests_ip, Some(2), "only the unidentified requests remain");
}

pub async fn a_change_queues_its_messages_together_and_a_round_records_their_results_together(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.unwrap();
    let case = open_case(store, &acme, 100, CaseKind::PasswordReset).await;
    let (next, events) = apply(&case, CaseCommand::StartIdentification, agent(1), t0() + Duration::seconds(1)).unwrap();
    let message = |n: u32, channel: &str, to: &str| NewMessage {
        id: format!("01900000-0000-7000-8000-00000000000{n}"),
        tenant_id: acme.id,
        case_id: Some(case.id),
        customer_id: jane.id,
        channel: channel.to_owned(),
        to: to.to_owned(),
        destination: "j***@e***.com".to_owned(),
        template: "account_recovered".to_owned(),
        subject: format!("Notice {n}"),
        body: format!("Body {n}"),
        created_at: t0(),
    };
    // Five messages in a row: written in one statement, each sealed under Jane's key.
    let effects: Vec<Effect> = [
        message(1, "email", "jane@example.com"),
        message(2, "sms", "+12015550030"),
        message(3, "email", "jane.old@example.org"),
        message(4, "sms", "+12015550031"),
        message(5, "email", "jane@example.net"),
    ]
    .into_iter()
    .map(Effect::Message)
    .collect();
    store.commit_case_change(&next, &events, &agent(1), &effects).await.unwrap();

    let now = t0() + Duration::minutes(1);
    let lease = now + Duration::minutes(15);
    let mut claimed = store.claim_messages(now, lease, 10).await.unwrap();
    claimed.sort_by(|a, b| a.id.cmp(&b.id));
    let opened: Vec<(&str, &str, &str)> =
        claimed.iter().map(|m| (m.to.as_str(), m.subject.as_str(), m.body.as_str())).collect();
    assert_eq!(
        opened,
        [
            ("jane@example.com", "Notice 1", "Body 1"),
            ("+12015550030", "Notice 2", "Body 2"),
            ("jane.old@example.org", "Notice 3", "Body 3"),
            ("+12015550031", "Notice 4", "Body 4"),
            ("jane@example.net", "Notice 5", "Body 5"),
        ]
    );
    assert!(store.claim_messages(now, lease, 10).await.unwrap().is_empty(), "leased");

    // One round's results, recorded together: each kind in one statement, each message with
    // its own retry time and error.
    let retry_at = now + Duration::minutes(5);
    let later = now + Duration::minutes(9);
    let results = vec![
        (claimed[0].id.clone(), DeliveryResult::Sent),
        (claimed[1].id.clone(), DeliveryResult::Retry { at: retry_at, error: "provider busy".into() }),
        (claimed[2].id.clone(), DeliveryResult::Dead { error: "mailbox unknown".into() }),
        (claimed[3].id.clone(), DeliveryResult::Retry { at: later, error: "rate limited".into() }),
        (claimed[4].id.clone(), DeliveryResult::Dead { error: "domain has no MX".into() }),
    ];
    store.finish_messages(&results, now).await.unwrap();
    let mut log = store.outbox_for_case(acme.id, case.id).await.unwrap();
    log.sort_by(|a, b| a.id.cmp(&b.id));
    let states: Vec<(&str, u32, Option<&str>)> =
        log.iter().map(|e| (e.state.as_str(), e.attempts, e.last_error.as_deref())).collect();
    assert_eq!(
        states,
        [
            ("sent", 1, None),
            ("pending", 1, Some("provider busy")),
            ("dead", 1, Some("mailbox unknown")),
            ("pending", 1, Some("rate limited")),
            ("dead", 1, Some("domain has no MX")),
        ]
    );
    assert_eq!(log[0].sent_at, Some(now));
    assert!(log[1..].iter().all(|e| e.sent_at.is_none()));
    // Only the ones to retry come back, each only when it is due.
    assert!(store.claim_messages(retry_at - Duration::seconds(1), lease, 10).await.unwrap().is_empty());
    let again = store.claim_messages(retry_at, retry_at + Duration::minutes(15), 10).await.unwrap();
    assert_eq!(again.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [claimed[1].id.as_str()]);
    assert_eq!(again[0].attempts, 1);
    let last = store.claim_messages(later, later + Duration::minutes(15), 10).await.unwrap();
    assert_eq!(last.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [claimed[3].id.as_str()]);
    // A result for a message already finished changes nothing.
    store
        .finish_messages(&[(claimed[0].id.clone(), DeliveryResult::Dead { error: "late".into() })], now)
        .await
        .unwrap();
    let log = store.outbox_for_case(acme.id, case.id).await.unwrap();
    assert!(log.iter().any(|e| e.id == claimed[0].id && e.state == "sent"));
    store.finish_messages(&[], now).await.unwrap();
}

/// A contact change, proposed on a new contact-change case for `customer` and confirmed by its
/// code; returns the case as it is now.
async fn confirmed_contact_change(
    store: &dyn Store,
    tenant: &Tenant,
    customer: &Customer,
    n: u128,
    email: &str,
) -> Case {
    let case = open_case(store, tenant, n, CaseKind::ContactChange).await;
    let case = command(store, &case, CaseCommand::StartIdentification).await;
    let case = command(store, &case, CaseCommand::Identify { customer_id: customer.id }).await;
    let change = NewContactChange {
        id: format!("01900000-0000-7000-8000-0000000{n:05}"),
        tenant_id: tenant.id,
        case_id: case.id,
        customer_id: customer.id,
        kind: ContactKind::Email,
        value: email.to_owned(),
        masked: "n***@e***.org".to_owned(),
        replace: true,
        attempts_max: 5,
        code_expires_at: t0() + Duration::minutes(30),
        created_at: t0(),
    };
    store.apply_effects(t0(), &[Effect::ProposeContact { change, code: "246810".into() }]).await.unwrap();
    let ctx = AttemptContext { actor: agent(1), ip: None, at: t0() + Duration::minutes(1) };
    let limit = FailureLimit { max: 5, window: Duration::hours(1), cooldown: Duration::hours(1) };
    let confirmed = store.confirm_contact_change(&case, "246810", &ctx, &limit).await.unwrap();
    assert!(matches!(confirmed, ContactConfirm::Confirmed { .. }), "{confirmed:?}");
    store.case(tenant.id, case.id).await.unwrap().unwrap()
}

/// A contact change on its way to the tenant's account system (G5, L0): once marked as being
/// sent, neither its case's end nor a lockdown cancels it, and it is applied even on an account
/// frozen meanwhile (it may be made there, so the rollback must see it). Given back, it is
/// cancellable again; once cancelled, it is never sent.
pub async fn a_contact_change_being_sent_is_never_cancelled_and_is_applied(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.unwrap();
    let at = t0() + Duration::hours(50);
    let state = |case: CaseId| async move { store.contact_change(acme.id, case).await.unwrap().unwrap().state };

    let first = confirmed_contact_change(store, &acme, &jane, 200, "new.first@example.org").await;
    let send = [Effect::SendContactChange { case: first.id }];
    let cancel = [Effect::CancelContactChange { case: first.id }];
    store.apply_effects(at, &send).await.unwrap();
    store.apply_effects(at, &send).await.unwrap(); // a release tried again
    assert!(matches!(store.apply_effects(at, &cancel).await, Err(StoreError::Conflict)));
    assert_eq!(state(first.id).await, "sending");
    store.apply_effects(at, &[Effect::UnsendContactChange { case: first.id }]).await.unwrap();
    assert_eq!(state(first.id).await, "confirmed");
    store.apply_effects(at, &cancel).await.unwrap();
    assert_eq!(state(first.id).await, "cancelled");
    assert!(
        matches!(store.apply_effects(at, &send).await, Err(StoreError::Conflict)),
        "a cancelled change is not sent"
    );

    // "This wasn't me" while it is being sent: marked, never sent again, and cancelled when the
    // account system did not take it; there is nothing to mark on a change not being sent.
    let reported = confirmed_contact_change(store, &acme, &jane, 250, "new.reported@example.org").await;
    let report = [Effect::ReportContactChange { case: reported.id }];
    assert!(matches!(store.apply_effects(at, &report).await, Err(StoreError::Conflict)), "not being sent");
    store.apply_effects(at, &[Effect::SendContactChange { case: reported.id }]).await.unwrap();
    store.apply_effects(at, &report).await.unwrap();
    let marked = store.contact_change(acme.id, reported.id).await.unwrap().unwrap();
    assert_eq!((marked.state.as_str(), marked.reported_at), ("sending", Some(at)));
    let again = [Effect::SendContactChange { case: reported.id }];
    assert!(matches!(store.apply_effects(at, &again).await, Err(StoreError::Conflict)), "not sent again");
    store.apply_effects(at, &[Effect::UnsendContactChange { case: reported.id }]).await.unwrap();
    assert_eq!(state(reported.id).await, "cancelled", "not given back to be made");

    // Sent, and then the account is locked down: the lockdown leaves it, the release applies it.
    let second = confirmed_contact_change(store, &acme, &jane, 300, "new.second@example.org").await;
    store.apply_effects(at, &[Effect::SendContactChange { case: second.id }]).await.unwrap();
    let lockdown = [
        Effect::EndRecoveries { customer: jane.id, except_case: first.id },
        Effect::SetStatus { customer: jane.id, status: CustomerStatus::Frozen },
    ];
    store.apply_effects(at, &lockdown).await.unwrap();
    assert_eq!(state(second.id).await, "sending");
    // Listed for the lockdown's review while it is being sent, however long ago it was sent:
    // the account system may have made it.
    for since in [t0(), at + Duration::days(30)] {
        let listed = store.recent_contact_changes(acme.id, jane.id, since).await.unwrap();
        let listed: Vec<(CaseId, &str)> = listed.iter().map(|c| (c.case_id, c.state.as_str())).collect();
        assert_eq!(listed, [(second.id, "sending")]);
    }
    store.apply_effects(at, &[Effect::ApplyContactChange { case: second.id }]).await.unwrap();
    assert_eq!(state(second.id).await, "applied");
    let record = store.customer(acme.id, jane.id).await.unwrap().unwrap();
    let emails: Vec<&str> = record.emails.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(emails, ["new.second@example.org"], "in place of the old ones");
    let recent = store.recent_contact_changes(acme.id, jane.id, t0()).await.unwrap();
    assert_eq!(recent.iter().map(|c| c.case_id).collect::<Vec<_>>(), [second.id], "for the lockdown's rollback");
}

/// `last_action_end`: the latest done action of the kind, and with `failed_too` the latest
/// failed one as well; other kinds, other customers and pending actions do not count. And
/// `action_pending`, over the same actions.
pub async fn the_last_end_of_an_action_counts_failures_only_when_asked(store: &dyn Store) {
    use regain_core::action::ActionKind;
    let (acme, jane, john) = acme_jane_and_john(store).await;
    let case = open_case(store, &acme, 400, CaseKind::AccountUnlock).await;
    let queue = |id: &str, who: CustomerId, action: ActionKind| {
        Effect::QueueAction(NewAction {
            id: id.to_owned(),
            tenant_id: acme.id,
            case_id: case.id,
            customer_id: who,
            action,
            connector: "webhook".into(),
            created_at: t0(),
        })
    };
    let queued = [
        queue("done", jane.id, ActionKind::Unlock),
        queue("failed", jane.id, ActionKind::Unlock),
        queue("pending", jane.id, ActionKind::Unlock),
        queue("lockdown", jane.id, ActionKind::Lockdown),
        queue("john", john.id, ActionKind::Unlock),
    ];
    store.apply_effects(t0(), &queued).await.unwrap();
    let (t1, t2, t3) = (t0() + Duration::minutes(1), t0() + Duration::minutes(2), t0() + Duration::minutes(3));
    store.apply_effects(t1, &[Effect::FinishAction { id: "done".into() }]).await.unwrap();
    store.apply_effects(t2, &[Effect::FailAction { id: "failed".into(), error: "refused".into() }]).await.unwrap();
    store.apply_effects(t3, &[Effect::FinishAction { id: "john".into() }]).await.unwrap();

    let end = |who: CustomerId, action, failed_too| store.last_action_end(acme.id, who, action, failed_too);
    assert_eq!(end(jane.id, ActionKind::Unlock, false).await.unwrap(), Some(t1));
    assert_eq!(end(jane.id, ActionKind::Unlock, true).await.unwrap(), Some(t2));
    assert_eq!(end(jane.id, ActionKind::Lockdown, true).await.unwrap(), None, "pending is not ended");
    assert_eq!(end(john.id, ActionKind::Unlock, true).await.unwrap(), Some(t3));

    // `action_pending`: queued or retried, of the kind and the customer, on any case.
    let pending = |who: CustomerId, action| store.action_pending(acme.id, who, action);
    assert!(pending(jane.id, ActionKind::Unlock).await.unwrap());
    assert!(pending(jane.id, ActionKind::Lockdown).await.unwrap());
    assert!(!pending(jane.id, ActionKind::Deactivate).await.unwrap());
    assert!(!pending(john.id, ActionKind::Unlock).await.unwrap(), "john's is done");
    store.retry_action("pending", t3, "away").await.unwrap();
    assert!(pending(jane.id, ActionKind::Unlock).await.unwrap(), "being retried is pending");
    // A wait is put off like a retry, and counts no attempt.
    let attempts = |entries: Vec<ActionEntry>| {
        entries.into_iter().find(|a| a.id == "pending").map(|a| (a.attempts, a.last_error, a.next_attempt_at))
    };
    let t4 = t3 + Duration::minutes(1);
    assert_eq!(attempts(store.case_actions(acme.id, case.id).await.unwrap()), Some((1, Some("away".into()), Some(t3))));
    store.defer_action("pending", t4, "waits on another").await.unwrap();
    assert_eq!(
        attempts(store.case_actions(acme.id, case.id).await.unwrap()),
        Some((1, Some("waits on another".into()), Some(t4)))
    );
    assert!(pending(jane.id, ActionKind::Unlock).await.unwrap(), "waiting is pending");
    store.apply_effects(t3, &[Effect::FinishAction { id: "pending".into() }]).await.unwrap();
    assert!(!pending(jane.id, ActionKind::Unlock).await.unwrap());
}

/// `customer_cases_in`: the customer's cases in the states asked, newest first, all of them,
/// and no other customer's; no state asked, none.
pub async fn a_customers_cases_in_some_states_are_read_briefly(store: &dyn Store) {
    let (acme, jane, john) = acme_jane_and_john(store).await;
    let mut identified = Vec::new();
    for (n, who) in [(500u128, &jane), (501, &john), (502, &jane)] {
        let case = open_case(store, &acme, n, CaseKind::PasswordReset).await;
        let case = command(store, &case, CaseCommand::StartIdentification).await;
        identified.push(command(store, &case, CaseCommand::Identify { customer_id: who.id }).await);
    }
    let open = open_case(store, &acme, 503, CaseKind::MfaRecovery).await;
    let state = identified[0].state;
    assert_ne!(state, open.state);

    let briefs = store.customer_cases_in(acme.id, jane.id, &[state]).await.unwrap();
    let expected: Vec<(CaseId, CaseKind, CaseState)> =
        [&identified[2], &identified[0]].iter().map(|c| (c.id, c.kind, c.state)).collect();
    assert_eq!(briefs.iter().map(|b| (b.id, b.kind, b.state)).collect::<Vec<_>>(), expected, "jane's, newest first");
    assert!(briefs.iter().all(|b| b.cooling_off_until.is_none()));
    assert!(store.customer_cases_in(acme.id, jane.id, &[CaseState::CoolingOff]).await.unwrap().is_empty());
    assert!(store.customer_cases_in(acme.id, jane.id, &[]).await.unwrap().is_empty());
    assert_eq!(store.customer_cases_in(acme.id, john.id, &[state]).await.unwrap().len(), 1);

    // Every one, however many: the G5 hold check must not miss an old contact change behind
    // a crowd of newer cases.
    for n in 600u128..660 {
        let case = open_case(store, &acme, n, CaseKind::PasswordReset).await;
        let case = command(store, &case, CaseCommand::StartIdentification).await;
        command(store, &case, CaseCommand::Identify { customer_id: jane.id }).await;
    }
    let briefs = store.customer_cases_in(acme.id, jane.id, &[state]).await.unwrap();
    assert_eq!(briefs.len(), 62, "all of jane's");
    assert_eq!(briefs.last().map(|b| b.id), Some(identified[0].id), "the oldest among them");
}

/// `Effect::RequireUnheld` (SECURITY.md G5): a step commits only while none of the customer's
/// other cases holds it, as they stand inside its transaction — a contact change under way, or
/// another recovery cooling off (a lockdown's case aside) — and nothing of a refused step is
/// written. The case itself, whatever state the step takes it to, never holds itself.
pub async fn a_step_held_by_another_recovery_is_refused_inside_its_transaction(store: &dyn Store) {
    let (acme, jane, john) = acme_jane_and_john(store).await;
    // The step under test: a case completes (into a cooling-off of its own with `hours`),
    // committed with the guard for its customer.
    let complete = |case: &Case, hours: Option<u32>, who: CustomerId| {
        let (next, events) = apply(
            case,
            CaseCommand::Complete { cooling_off_hours: hours },
            agent(1),
            case.updated_at + Duration::seconds(1),
        )
        .unwrap();
        let guard = vec![Effect::RequireUnheld { tenant: acme.id, customer: who, case: case.id }];
        async move { store.commit_case_change(&next, &events, &agent(1), &guard).await }
    };
    let reset = executing(store, &acme, 520, CaseKind::PasswordReset, jane.id).await;

    // A contact change under way holds it; nothing of the step is written.
    let change = executing(store, &acme, 521, CaseKind::ContactChange, jane.id).await;
    assert_eq!(complete(&reset, Some(24), jane.id).await, Err(StoreError::Conflict));
    let stored = store.case(acme.id, reset.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.version), (reset.state, reset.version), "nothing written");
    // It holds no other customer's.
    let johns = executing(store, &acme, 522, CaseKind::PasswordReset, john.id).await;
    assert_eq!(complete(&johns, None, john.id).await, Ok(()));

    // Once the change is over, the step goes through; the cooling-off it starts holds the
    // customer's next recovery, but not itself.
    command(store, &change, CaseCommand::Complete { cooling_off_hours: None }).await;
    assert_eq!(complete(&reset, Some(24), jane.id).await, Ok(()));
    let cooling = store.case(acme.id, reset.id).await.unwrap().unwrap();
    assert_eq!(cooling.state, CaseState::CoolingOff);
    let next_one = executing(store, &acme, 523, CaseKind::MfaRecovery, jane.id).await;
    assert_eq!(complete(&next_one, None, jane.id).await, Err(StoreError::Conflict));
    // A lockdown's case cooling off holds nothing.
    command(store, &cooling, CaseCommand::Repudiate { reason: "this wasn't me".into() }).await;
    let lockdown = executing(store, &acme, 524, CaseKind::CompromisedAccount, jane.id).await;
    let analyst = Actor::Staff { id: StaffId::from_uuid(uuid(3)), role: Role::SecurityAnalyst };
    let (locked, events) = apply(
        &lockdown,
        CaseCommand::Complete { cooling_off_hours: Some(24) },
        analyst,
        lockdown.updated_at + Duration::seconds(1),
    )
    .unwrap();
    assert_eq!(locked.state, CaseState::CoolingOff);
    store.update_case(&locked, &events, &analyst).await.unwrap();
    assert_eq!(complete(&next_one, None, jane.id).await, Ok(()));
}

/// `Effect::RequireNoPendingAction` and `Effect::RequireNoOpenCase`, judged as the customer's
/// actions and cases stand inside the transaction, nothing of a refused change written: a
/// deactivation sent again is not queued while a lift of the lockdown is pending (SECURITY.md
/// L0), and a second report opens no second security case. Other customers' and other kinds'
/// do not count, nor a case past its decision, nor the case `except`. `Effect::LockCustomer`
/// changes nothing.
pub async fn guards_on_pending_actions_and_open_cases_are_judged_inside_the_transaction(store: &dyn Store) {
    use regain_core::action::ActionKind;
    let (acme, jane, john) = acme_jane_and_john(store).await;
    let lockdown = executing(store, &acme, 530, CaseKind::CompromisedAccount, jane.id).await;
    let queue = |id: &str, who: CustomerId, action: ActionKind| {
        Effect::QueueAction(NewAction {
            id: id.to_owned(),
            tenant_id: acme.id,
            case_id: lockdown.id,
            customer_id: who,
            action,
            connector: "webhook".into(),
            created_at: t0(),
        })
    };
    let no_lift = |who: CustomerId| Effect::RequireNoPendingAction {
        tenant: acme.id,
        customer: who,
        action: ActionKind::Lockdown,
    };
    let queued = |id: &'static str| async move {
        store.case_actions(acme.id, lockdown.id).await.unwrap().iter().any(|a| a.id == id)
    };
    let lock = Effect::LockCustomer { tenant: acme.id, customer: jane.id };
    store
        .apply_effects(t0(), &[lock, no_lift(jane.id), queue("again-1", jane.id, ActionKind::Deactivate)])
        .await
        .unwrap();
    assert!(queued("again-1").await);
    // A lift pending: refused, nothing queued; John's goes on.
    store.apply_effects(t0(), &[queue("lift", jane.id, ActionKind::Lockdown)]).await.unwrap();
    let again = [no_lift(jane.id), queue("again-2", jane.id, ActionKind::Deactivate)];
    assert_eq!(store.apply_effects(t0(), &again).await, Err(StoreError::Conflict));
    assert!(!queued("again-2").await, "nothing of the refused change");
    store.apply_effects(t0(), &[no_lift(john.id), queue("john", john.id, ActionKind::Deactivate)]).await.unwrap();
    // Once the lift is over, it goes through.
    store.apply_effects(t0(), &[Effect::FinishAction { id: "lift".into() }]).await.unwrap();
    store.apply_effects(t0(), &[no_lift(jane.id), queue("again-2", jane.id, ActionKind::Deactivate)]).await.unwrap();

    let no_report = |who: CustomerId, except: CaseId| Effect::RequireNoOpenCase {
        tenant: acme.id,
        customer: who,
        kind: CaseKind::CompromisedAccount,
        except,
    };
    // The lockdown's case is executing, past its decision: it does not count.
    store.apply_effects(t0(), &[no_report(jane.id, CaseId::from_uuid(uuid(1)))]).await.unwrap();
    // One being verified does, but not for itself, nor for John; a reset case is another kind.
    let analyst = Actor::Staff { id: StaffId::from_uuid(uuid(3)), role: Role::SecurityAnalyst };
    let mut report = open_case(store, &acme, 531, CaseKind::CompromisedAccount).await;
    for cmd in [CaseCommand::StartIdentification, CaseCommand::Identify { customer_id: jane.id }] {
        let (next, events) = apply(&report, cmd, analyst, report.updated_at + Duration::seconds(1)).unwrap();
        store.update_case(&next, &events, &analyst).await.unwrap();
        report = next;
    }
    assert!(report.state.is_before_execution());
    let second = CaseId::from_uuid(uuid(532));
    assert_eq!(store.apply_effects(t0(), &[no_report(jane.id, second)]).await, Err(StoreError::Conflict));
    store.apply_effects(t0(), &[no_report(jane.id, report.id)]).await.unwrap();
    store.apply_effects(t0(), &[no_report(john.id, second)]).await.unwrap();
    let reset = open_case(store, &acme, 533, CaseKind::PasswordReset).await;
    let reset = command(store, &reset, CaseCommand::StartIdentification).await;
    command(store, &reset, CaseCommand::Identify { customer_id: john.id }).await;
    store.apply_effects(t0(), &[no_report(john.id, second)]).await.unwrap();
}

/// A case of `kind` for `who`, taken to `executing` by a security analyst (who works every
/// tier), approved by a second one where it needs approval.
pub async fn executing(store: &dyn Store, tenant: &Tenant, n: u128, kind: CaseKind, who: CustomerId) -> Case {
    let mut case = open_case(store, tenant, n, kind).await;
    let step = |case: Case, cmd: CaseCommand, actor: Actor| async move {
        let (next, events) = apply(&case, cmd, actor, case.updated_at + Duration::seconds(1)).unwrap();
        store.update_case(&next, &events, &actor).await.unwrap();
        next
    };
    let analyst = Actor::Staff { id: StaffId::from_uuid(uuid(3)), role: Role::SecurityAnalyst };
    for cmd in [
        CaseCommand::StartIdentification,
        CaseCommand::Identify { customer_id: who },
        CaseCommand::Decide { approve: true, reason: "verified".into() },
    ] {
        case = step(case, cmd, analyst).await;
    }
    case = if case.approval_required {
        case = step(case, CaseCommand::RequestApproval { reason: "its kind asks for it".into() }, analyst).await;
        let second = Actor::Staff { id: StaffId::from_uuid(uuid(4)), role: Role::SecurityAnalyst };
        step(case, CaseCommand::Approve { reason: "evidence seen".into() }, second).await
    } else {
        step(case, CaseCommand::Execute, analyst).await
    };
    assert_eq!(case.state, CaseState::Executing);
    case
}

/// `used_links`: the customer's links of the purpose used since, the latest use first; unused,
/// given back, older, of another purpose or another customer's do not count.
pub async fn a_customers_used_links_are_listed_latest_first(store: &dyn Store) {
    let (acme, jane, john) = acme_jane_and_john(store).await;
    let case = open_case(store, &acme, 600, CaseKind::PasswordReset).await;
    let link = |id: &str, who: CustomerId, purpose: LinkPurpose| Effect::IssueLink {
        link: NewCustomerLink {
            id: id.to_owned(),
            purpose,
            tenant_id: acme.id,
            // A report link may have no case (a notice of a sign-in method the customer set up).
            case_id: (purpose != LinkPurpose::Report).then_some(case.id),
            customer_id: who,
            destination: "j***@e***.com".into(),
            expires_at: t0() + Duration::days(1),
            created_at: t0(),
        },
        token: format!("token-{id}"),
    };
    let links = [
        link("old", jane.id, LinkPurpose::Reset),
        link("first", jane.id, LinkPurpose::Reset),
        link("second", jane.id, LinkPurpose::Enroll),
        link("third", jane.id, LinkPurpose::Reset),
        link("released", jane.id, LinkPurpose::Enroll),
        link("unused", jane.id, LinkPurpose::Report),
        link("john", john.id, LinkPurpose::Report),
    ];
    // Issued one by one: a new reset link ends the case's earlier ones, which is not under test.
    for l in &links {
        store.apply_effects(t0(), std::slice::from_ref(l)).await.unwrap();
    }
    let spend = |id: &str| Effect::SpendLink { token: format!("token-{id}") };
    let minutes = |m: i64| t0() + Duration::minutes(m);
    store.apply_effects(minutes(1), &[spend("third")]).await.unwrap();
    store.apply_effects(minutes(2), &[spend("second"), spend("released"), spend("john")]).await.unwrap();
    store.apply_effects(minutes(3), &[Effect::ReleaseLink { token: "token-released".into() }]).await.unwrap();

    let used = |who: CustomerId, purpose| store.used_links(acme.id, who, purpose, minutes(1));
    let ids = |links: Vec<CustomerLink>| links.into_iter().map(|l| (l.id, l.used_at)).collect::<Vec<_>>();
    assert_eq!(ids(used(jane.id, LinkPurpose::Reset).await.unwrap()), [("third".to_owned(), Some(minutes(1)))]);
    assert_eq!(ids(used(jane.id, LinkPurpose::Enroll).await.unwrap()), [("second".to_owned(), Some(minutes(2)))]);
    assert!(used(jane.id, LinkPurpose::Report).await.unwrap().is_empty(), "unused");
    assert_eq!(used(john.id, LinkPurpose::Report).await.unwrap().len(), 1);
    assert!(store.used_links(acme.id, jane.id, LinkPurpose::Enroll, minutes(3)).await.unwrap().is_empty(), "older");
    let read = |token: &'static str| store.customer_link(token);
    assert_eq!(read("token-john").await.unwrap().map(|l| (l.case_id, l.used_at)), Some((None, Some(minutes(2)))));
    assert_eq!(read("token-first").await.unwrap().and_then(|l| l.case_id), Some(case.id));
    // Only a report link may have no case.
    let Effect::IssueLink { mut link, .. } = link("caseless", jane.id, LinkPurpose::Reset) else { unreachable!() };
    link.case_id = None;
    let refused = store.apply_effects(t0(), &[Effect::IssueLink { link, token: "token-caseless".into() }]).await;
    assert!(matches!(refused, Err(StoreError::Precondition(_))), "{refused:?}");
    assert_eq!(read("token-caseless").await.unwrap(), None);
}

/// `replace_recovery_codes` with `unless_issued_after`: refused while a set issued after it
/// exists, decided under the customer's lock, so of two at once exactly one goes through.
pub async fn a_new_set_of_recovery_codes_waits_for_its_interval_even_at_once(store: &dyn Store) {
    let acme = tenant(store, 1, "acme").await;
    let jane = customer(&acme, 30, "jane");
    store.create_customer(&jane, None, &audit("customer.created")).await.unwrap();
    let set = |n: u8, at: Timestamp| {
        let codes: Vec<String> = (0..3).map(|i| format!("CODE{n}{i}AAAAAAAAAAA")).collect();
        let mut record = audit("customer.recovery_codes_issued");
        record.at = at;
        (codes, record)
    };
    let (codes, record) = set(1, t0());
    store.replace_recovery_codes(acme.id, jane.id, &codes, None, &record).await.unwrap();
    let (codes, record) = set(2, t0() + Duration::minutes(1));
    let refused =
        store.replace_recovery_codes(acme.id, jane.id, &codes, Some(t0() - Duration::minutes(9)), &record).await;
    assert!(matches!(refused, Err(StoreError::Precondition(_))), "{refused:?}");
    assert_eq!(store.factor_times(acme.id, jane.id).await.unwrap().recovery_codes_issued_at, Some(t0()), "unchanged");

    let later = t0() + Duration::minutes(11);
    let (a, first) = set(3, later);
    let (b, second) = set(4, later);
    let since = Some(later - Duration::minutes(10));
    let (x, y) = futures::join!(
        store.replace_recovery_codes(acme.id, jane.id, &a, since, &first),
        store.replace_recovery_codes(acme.id, jane.id, &b, since, &second),
    );
    let passed = [&x, &y].iter().filter(|r| r.is_ok()).count();
    assert_eq!(passed, 1, "exactly one of two at once: {x:?} {y:?}");
    assert!([&x, &y].iter().all(|r| r.is_ok() || matches!(r, Err(StoreError::Precondition(_)))), "{x:?} {y:?}");
    assert_eq!(store.recovery_codes_left(acme.id, jane.id, later).await.unwrap(), 3, "one set, not two");
}
