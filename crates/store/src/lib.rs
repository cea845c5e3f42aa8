//! The `Store`: every read and write Regain makes, named by what it means in the domain
//! ("record a login attempt", "apply a case change"), not by table. Each backend crate
//! implements it; [`conformance`] is the suite every backend must pass unchanged.
//!
//! Invariant: a case change and its timeline events commit in one transaction, or not at all.

pub mod codec;
pub mod conformance;
mod records;
mod recovery;
mod risk;
mod verification;

use std::collections::HashMap;

use async_trait::async_trait;
use regain_core::action::ActionKind;
use regain_core::case::{CaseEvent, CaseState};
use regain_core::customer::{Customer, CustomerLookup, CustomerStatus};
use regain_core::{Actor, ApiKeyId, Case, CaseId, CustomerId, StaffId, Tenant, TenantId, TenantSettings, Timestamp};
pub use regain_crypto::MasterKey;
pub use regain_merkle::NodeId;

pub use records::*;
pub use recovery::*;
pub use risk::*;
pub use verification::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule: `field` names what is already taken (`username`, `slug`, …).
    #[error("{field} is already in use")]
    Duplicate { field: String },
    /// Optimistic concurrency: someone else changed the record since it was read.
    #[error("the record was changed by someone else; read it again")]
    Conflict,
    /// The database cannot be reached or is overloaded; worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A stored value that does not parse: a bug or tampering, never a client's fault.
    #[error("stored data does not parse: {0}")]
    Corrupt(String),
    /// The master key does not open this database, or the store was never unlocked.
    #[error("{0}")]
    Keyring(String),
    /// The change is refused as things stand (an erasure while a case is still open): the
    /// message says what must happen first.
    #[error("{0}")]
    Precondition(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`sqlite`, `postgres`), for logs and metrics.
    fn backend(&self) -> &'static str;

    /// A cheap round trip to the database, for readiness.
    async fn ping(&self) -> StoreResult<()>;

    // Keys for personal data at rest (issue 3 item 5)
    /// The id of the master key this database's data is written under; `None` while it has no
    /// keyring (a new database).
    async fn master_key_id(&self) -> StoreResult<Option<String>>;
    /// Proves `master` against the database's key check (creating the keyring on a new
    /// database) and keeps it for sealing and opening personal data. A wrong key is
    /// [`StoreError::Keyring`] and changes nothing. Every method that touches personal data
    /// fails with [`StoreError::Keyring`] until this succeeds.
    async fn unlock(&self, master: MasterKey, now: Timestamp) -> StoreResult<Unlocked>;
    /// Re-wraps every data key and the index key under `next`, in one transaction, and uses
    /// `next` from then on. Returns how many data keys were re-wrapped.
    async fn rotate_master_key(&self, next: MasterKey, audit: &AuditRecord) -> StoreResult<u64>;

    // Tenants
    async fn create_tenant(&self, tenant: &Tenant, audit: &AuditRecord) -> StoreResult<()>;
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn update_tenant(
        &self,
        id: TenantId,
        display_name: &str,
        settings: &TenantSettings,
        audit: &AuditRecord,
    ) -> StoreResult<Tenant>;

    // Staff, their sessions, API keys
    async fn create_staff(&self, staff: &StaffRecord, audit: &AuditRecord) -> StoreResult<()>;
    async fn staff(&self, id: StaffId) -> StoreResult<Option<StaffRecord>>;
    async fn staff_by_email(&self, email_normalized: &str) -> StoreResult<Option<StaffRecord>>;
    /// Staff of one tenant, or the deployment admins when `tenant` is `None`.
    async fn list_staff(&self, tenant: Option<TenantId>) -> StoreResult<Vec<StaffRecord>>;
    /// Marks TOTP `step` used for this staff member. `false` when it (or a later step) was
    /// already used: a replay, refused even across processes.
    async fn claim_staff_totp_step(&self, id: StaffId, step: i64) -> StoreResult<bool>;
    /// A failed staff sign-in: counts, and at `failures_max` locks sign-in until `lock_until`
    /// (and starts the count again).
    async fn record_staff_login_failure(
        &self,
        id: StaffId,
        failures_max: u32,
        lock_until: Timestamp,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// A successful staff sign-in: the failure count starts again.
    async fn record_staff_login(&self, id: StaffId, audit: &AuditRecord) -> StoreResult<()>;
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The live session with this token hash at `now`, its idle deadline pushed to `idle_until`
    /// (written only when that moves it by more than a minute).
    async fn touch_session(
        &self,
        token_hash: &str,
        now: Timestamp,
        idle_until: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;
    async fn revoke_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()>;
    async fn create_api_key(&self, key: &ApiKeyRecord, audit: &AuditRecord) -> StoreResult<()>;
    /// The unrevoked key with this secret hash; its last use is set to `now` (to the minute).
    async fn use_api_key(&self, secret_hash: &str, now: Timestamp) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, tenant: TenantId) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId, audit: &AuditRecord) -> StoreResult<()>;

    // Customer records and the built-in directory
    /// Stores a new record, with its password hash when the tenant's directory is built in.
    async fn create_customer(
        &self,
        customer: &Customer,
        password_hash: Option<&str>,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    async fn customer(&self, tenant: TenantId, id: CustomerId) -> StoreResult<Option<Customer>>;
    async fn find_customers(&self, tenant: TenantId, lookup: &CustomerLookup) -> StoreResult<Vec<Customer>>;
    async fn set_customer_status(
        &self,
        tenant: TenantId,
        id: CustomerId,
        status: CustomerStatus,
        audit: &AuditRecord,
    ) -> StoreResult<Customer>;
    /// What a login needs: found by username (case-insensitive).
    async fn directory_account(&self, tenant: TenantId, username: &str) -> StoreResult<Option<DirectoryAccount>>;
    /// Records one login attempt in the history. A success stands only if the account is still
    /// active when it is written (a concurrent burst of failures may just have locked it) and
    /// resets the count; otherwise it is recorded as a failure, which counts towards the lockout
    /// at `failures_max`.
    async fn record_login(&self, attempt: &LoginAttempt, failures_max: u32) -> StoreResult<LoginRecorded>;
    /// A sign-in attempt for a username the directory does not know: when and from where, never
    /// the name. Costs a write like [`Store::record_login`], so both answers take alike.
    async fn record_unknown_login(
        &self,
        tenant: TenantId,
        at: Timestamp,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<()>;
    /// Unknown-username attempts from `ip` since `since`, for velocity checks.
    async fn unknown_logins_from(&self, tenant: TenantId, ip: &str, since: Timestamp) -> StoreResult<u64>;
    /// The most recent logins of a customer, newest first.
    async fn login_history(&self, tenant: TenantId, id: CustomerId, limit: u32) -> StoreResult<Vec<LoginAttempt>>;
    async fn create_customer_session(&self, session: &CustomerSessionRecord) -> StoreResult<()>;
    async fn customer_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<CustomerSessionRecord>>;
    /// Erasure (GDPR Art. 17): deletes the record, its contacts, credentials, sessions and login
    /// history, and destroys its data key and the keys of its cases, so the free text of their
    /// timelines and every copy in the audit log can no longer be read. The cases and the log
    /// stay, naming the customer only by id. Refused ([`StoreError::Precondition`]) while one
    /// of the customer's cases is still open.
    async fn erase_customer(&self, tenant: TenantId, id: CustomerId, audit: &AuditRecord) -> StoreResult<Erasure>;

    // Cases
    /// Stores a new case with its first timeline events, in one transaction.
    async fn create_case(&self, case: &Case, events: &[CaseEvent], actor: &Actor) -> StoreResult<()>;
    /// [`create_case`](Self::create_case) with the case's recovery request for the risk engine
    /// (see [`record_request`](Self::record_request)), in the same transaction.
    async fn create_case_with_request(
        &self,
        case: &Case,
        events: &[CaseEvent],
        actor: &Actor,
        context: &RequestContext,
    ) -> StoreResult<()>;
    async fn case(&self, tenant: TenantId, id: CaseId) -> StoreResult<Option<Case>>;
    async fn list_cases(&self, tenant: TenantId, filter: &CaseFilter, page: &PageRequest) -> StoreResult<Page<Case>>;
    /// The customer's cases in one of `states`, newest first, every one (the G5 hold check
    /// reads them all), as [`CaseBrief`]s.
    async fn customer_cases_in(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        states: &[CaseState],
    ) -> StoreResult<Vec<CaseBrief>>;
    /// Replaces the case (whose version was `case.version - 1` when read) and appends its
    /// events, in one transaction. [`StoreError::Conflict`] when the case changed meanwhile.
    async fn update_case(&self, case: &Case, events: &[CaseEvent], actor: &Actor) -> StoreResult<()>;
    async fn timeline(&self, tenant: TenantId, id: CaseId) -> StoreResult<Vec<TimelineEntry>>;
    /// Retention: deletes up to `limit` of the tenant's closed cases last changed before
    /// `closed_before`, with their timelines and keys, each with a `retention.case_purged`
    /// audit entry in the same transaction. Returns the ids purged.
    async fn purge_closed_cases(
        &self,
        tenant: TenantId,
        closed_before: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<CaseId>>;
    /// Cases of every tenant, before execution, whose expiry is at or before `now`.
    async fn cases_to_expire(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Case>>;

    // Identity verification (issue 4)
    /// The tenant's assurance policy: the latest version, or the one asked for. `None` while the
    /// tenant has never saved one (the built-in default applies).
    async fn assurance_policy(&self, tenant: TenantId, version: Option<i64>) -> StoreResult<Option<StoredPolicy>>;
    /// Every saved version, newest first.
    async fn assurance_policy_versions(&self, tenant: TenantId) -> StoreResult<Vec<StoredPolicy>>;
    /// Saves `document` as the next version, with a `policy.updated` audit entry. `base_version`
    /// is the version the editor started from (`None`: the default); [`StoreError::Conflict`]
    /// when another version was saved meanwhile.
    async fn save_assurance_policy(
        &self,
        tenant: TenantId,
        document: &str,
        base_version: Option<i64>,
        actor: &Actor,
        at: Timestamp,
    ) -> StoreResult<StoredPolicy>;
    /// Sends a code or link: closes the case's pending challenges as superseded, stores this one
    /// with a keyed hash of `secret` (never the secret), queues `message` and appends `events`,
    /// in one transaction.
    async fn issue_challenge(
        &self,
        case: &Case,
        challenge: &NewChallenge,
        secret: &str,
        message: &NewMessage,
        events: &[CaseEvent],
        actor: &Actor,
    ) -> StoreResult<()>;
    /// Checks `code` against the case's pending code, in one transaction: each check is an
    /// attempt on the code; the right code is used once, whatever runs concurrently (T3); a
    /// wrong one is a failure counted against the customer (T6, T7), and reaching `limit` holds
    /// the customer's recovery. Timeline and audit entries name the method, the result and the
    /// masked destination, never the code.
    async fn redeem_code(
        &self,
        case: &Case,
        code: &str,
        ctx: &AttemptContext,
        limit: &FailureLimit,
    ) -> StoreResult<Redeemed>;
    /// The confirmation link with this token, in any tenant.
    async fn link_challenge(&self, token: &str) -> StoreResult<Option<LinkChallenge>>;
    /// Answers a pending, unexpired link once: `approve` makes it evidence for the case (only
    /// while the case is verifying and the customer not on hold); a refusal ("this wasn't me")
    /// closes it as repudiated, whatever the case's state.
    async fn answer_link(
        &self,
        case: &Case,
        token: &str,
        approve: bool,
        ctx: &AttemptContext,
    ) -> StoreResult<LinkAnswer>;
    /// Records an attempt made without a stored challenge (identification, TOTP, a recovery
    /// code, a knowledge answer) against `customer`, with `events` and `messages`, in one
    /// transaction; a counted failure that reaches `limit` holds the customer's recovery. With no
    /// customer (claimed identifiers that match nobody) only the events are written.
    #[allow(clippy::too_many_arguments)]
    async fn record_attempt(
        &self,
        case: &Case,
        customer: Option<CustomerId>,
        attempt: &NewAttempt,
        ctx: &AttemptContext,
        events: &[CaseEvent],
        messages: &[NewMessage],
        limit: &FailureLimit,
        consume: Option<&Consume>,
    ) -> StoreResult<AttemptRecorded>;
    /// The case's attempts, oldest first: its evidence and its failures.
    async fn verification_attempts(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<VerificationAttempt>>;
    /// The customer's hold, if one runs at `now`.
    async fn recovery_hold(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        now: Timestamp,
    ) -> StoreResult<Option<RecoveryHold>>;
    /// Every hold running at `now`, of every tenant: (tenant, customer, until).
    async fn recovery_holds(&self, now: Timestamp) -> StoreResult<Vec<(TenantId, CustomerId, Timestamp)>>;
    /// The customer's counted failures since `since`, across every case and channel.
    async fn failures_since(&self, tenant: TenantId, customer: CustomerId, since: Timestamp) -> StoreResult<u32>;

    // --- Risk (issue 5) ---

    /// Records the case's recovery request for velocity: when it came, the customer once
    /// identified, and its context, sealed under the case's key with blind indexes of its IP,
    /// device, phone and email. On a request already recorded, what it had stays and what it
    /// lacked is filled in (identification adds the phone and email named, never replacing the
    /// caller ID the intake saw); a customer given replaces none.
    async fn record_request(
        &self,
        tenant: TenantId,
        case: CaseId,
        at: Timestamp,
        customer: Option<CustomerId>,
        context: &RequestContext,
    ) -> StoreResult<()>;
    /// The history one assessment of `case` compares with, at `now`, in one read.
    async fn risk_history(
        &self,
        tenant: TenantId,
        case: CaseId,
        customer: Option<CustomerId>,
        windows: &RiskWindows,
        now: Timestamp,
    ) -> StoreResult<RiskHistory>;
    /// The tenant's recovery requests since `since`, per hour of the day (UTC).
    async fn request_hours(&self, tenant: TenantId, since: Timestamp) -> StoreResult<[u32; 24]>;

    // The built-in directory's second factors (issue 4 item 3)
    /// Starts (or restarts) a TOTP enrollment with `secret`, sealed at rest. Refused
    /// ([`StoreError::Precondition`]) when a confirmed one exists.
    async fn begin_totp_enrollment(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        secret: &[u8],
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    async fn customer_totp(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<Option<CustomerTotp>>;
    /// Marks TOTP `step` used (confirming a pending enrollment, with `audit`). `false` when it or
    /// a later step was already used: a replay (M3).
    async fn claim_customer_totp_step(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        step: i64,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    /// Replaces the customer's recovery codes with these (normalized); only keyed hashes are kept.
    /// Refused ([`StoreError::Precondition`]) when a set was issued after `unless_issued_after`:
    /// decided under the customer's row lock, so requests at once cannot all pass.
    async fn replace_recovery_codes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        codes: &[String],
        unless_issued_after: Option<Timestamp>,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// Unused recovery codes Regain holds for the customer, issued at or before `issued_by` (an
    /// imported record's count of codes kept elsewhere is not this).
    async fn recovery_codes_left(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        issued_by: Timestamp,
    ) -> StoreResult<u32>;
    /// When the unused recovery code `code` (normalized) was issued; `None` when it is not one
    /// of the customer's unused codes. Spending it is [`Consume::RecoveryCode`].
    async fn recovery_code_issued_at(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        code: &str,
    ) -> StoreResult<Option<Timestamp>>;
    async fn set_knowledge_answer(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        question: &str,
        answer_hash: &str,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// Questions and their answer hashes (PHC strings).
    async fn knowledge_answers(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<Vec<(String, String)>>;

    // Message templates per tenant (issue 4 item 7)
    async fn message_templates(&self, tenant: TenantId) -> StoreResult<Vec<StoredTemplate>>;
    /// Sets the tenant's wording of a template (validated by the caller), with `audit`.
    async fn set_message_template(
        &self,
        tenant: TenantId,
        template: &StoredTemplate,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// Goes back to the built-in wording; `false` when the tenant had none of its own.
    async fn delete_message_template(
        &self,
        tenant: TenantId,
        name: &str,
        channel: &str,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    // The outbox (issue 4 item 7)
    async fn enqueue_message(&self, message: &NewMessage) -> StoreResult<()>;
    /// Up to `limit` messages due at `now`, hidden from other workers until `lease_until`.
    async fn claim_messages(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Records a round of delivery attempts, `(message id, result)`, in one transaction; a sent
    /// or dead message's address and content are deleted.
    async fn finish_messages(&self, results: &[(String, DeliveryResult)], now: Timestamp) -> StoreResult<()>;
    async fn outbox_for_case(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<OutboxEntry>>;

    // Executing recoveries (issue 6)
    /// [`Store::update_case`] with `effects` applied in the same transaction: the case, its
    /// timeline and audit entries, and what the step did to the account, or none of them. An
    /// effect whose row was already spent is [`StoreError::Conflict`].
    async fn commit_case_change(
        &self,
        case: &Case,
        events: &[CaseEvent],
        actor: &Actor,
        effects: &[Effect],
    ) -> StoreResult<()>;
    /// `effects` alone, in one transaction at `at` (a "this wasn't me" after the case closed).
    async fn apply_effects(&self, at: Timestamp, effects: &[Effect]) -> StoreResult<()>;
    /// Up to `limit` queued actions due at `now`, hidden from other workers until `lease_until`.
    async fn claim_actions(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedAction>>;
    /// Records a failed attempt of a pending action, to be tried again at `at`.
    async fn retry_action(&self, id: &str, at: Timestamp, error: &str) -> StoreResult<()>;
    /// Puts a pending action that waits on another (a lift behind an owed deactivation) off
    /// until `at`, with the reason as its last error, not counting an attempt: a wait is not a
    /// failure, and must not use up the attempts its own work gets once the other is done.
    async fn defer_action(&self, id: &str, at: Timestamp, reason: &str) -> StoreResult<()>;
    /// Gives a pending action up, with no case change (its case moved on, or is gone).
    async fn fail_action(&self, id: &str, error: &str, at: Timestamp) -> StoreResult<()>;
    async fn case_actions(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<ActionEntry>>;
    /// [`Store::create_case_with_request`] with `effects` in the same transaction (the events
    /// a new case sends to webhooks).
    async fn create_case_with_effects(
        &self,
        case: &Case,
        events: &[CaseEvent],
        actor: &Actor,
        context: Option<&RequestContext>,
        effects: &[Effect],
    ) -> StoreResult<()>;
    /// Up to `limit` webhook deliveries due at `now`, hidden from other workers until `lease_until`.
    async fn claim_webhooks(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    async fn finish_webhook(&self, id: &str, result: &WebhookResult, now: Timestamp) -> StoreResult<()>;
    /// The tenant's delivery log, newest first (ties by id): up to `limit` after the delivery
    /// `cursor` (the previous page's last), of one case if given.
    async fn webhook_deliveries(
        &self,
        tenant: TenantId,
        case: Option<CaseId>,
        cursor: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// The link `token` opens, used or not.
    async fn customer_link(&self, token: &str) -> StoreResult<Option<CustomerLink>>;
    /// The customer's links of `purpose` used at or after `since`, the latest use first (at most
    /// 100).
    async fn used_links(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        purpose: LinkPurpose,
        since: Timestamp,
    ) -> StoreResult<Vec<CustomerLink>>;
    /// The case's contact change: its latest proposal, masked.
    async fn contact_change(&self, tenant: TenantId, case: CaseId) -> StoreResult<Option<ContactChange>>;
    /// The new contact of the contact change `id` and the ones it replaced, opened (normalized):
    /// for the connector that applies it where the account lives, and the notice of a rollback.
    /// The replaced ones come with whether they were verified.
    async fn contact_change_values(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<(String, Vec<(String, bool)>)>>;
    /// The customer's contact changes applied at or after `since` (those rolled back since
    /// included), and any being made in the tenant's account system now (`sending`, however long
    /// ago it was sent: it may have been made there), newest first by when they were applied, or
    /// for one still being sent, confirmed.
    async fn recent_contact_changes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        since: Timestamp,
    ) -> StoreResult<Vec<ContactChange>>;
    /// Checks `code` against the case's proposed contact (one attempt, right or wrong, in one
    /// transaction with its timeline entry, as `ctx.actor`); a wrong code counts as a failed
    /// proof toward `limit`.
    async fn confirm_contact_change(
        &self,
        case: &Case,
        code: &str,
        ctx: &AttemptContext,
        limit: &FailureLimit,
    ) -> StoreResult<ContactConfirm>;
    /// When the customer's latest `action` ended: was done, or with `failed_too` also failed.
    /// The latest lockdown done is, while the account is frozen, the lockdown in force.
    async fn last_action_end(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        action: ActionKind,
        failed_too: bool,
    ) -> StoreResult<Option<Timestamp>>;
    /// Whether one of the customer's `action`s, on any of their cases, is still pending
    /// (queued or being retried).
    async fn action_pending(&self, tenant: TenantId, customer: CustomerId, action: ActionKind) -> StoreResult<bool>;
    /// When the customer's password, authenticator app and recovery codes last changed.
    async fn factor_times(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<FactorTimes>;

    // The audit log (SECURITY.md L1, L4)
    /// Places up to `batch_max` entries not yet in the log at its end, stores the new tree
    /// nodes and a checkpoint signed by `signer` — one sequencer at a time, in one transaction.
    /// `None` when there was nothing to place.
    async fn sequence_audit(
        &self,
        batch_max: u32,
        now: Timestamp,
        signer: &dyn CheckpointSigner,
    ) -> StoreResult<Option<StoredCheckpoint>>;
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    async fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>>;
    /// Checkpoints in order of size, from `from_size` on.
    async fn checkpoints(&self, from_size: u64, limit: u32) -> StoreResult<Vec<StoredCheckpoint>>;
    async fn audit_entry(&self, seq: u64) -> StoreResult<Option<AuditEntry>>;
    /// Sequenced entries in log order, from `from_seq` on.
    async fn audit_entries(&self, from_seq: u64, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    async fn unsequenced_audit_entries(&self) -> StoreResult<u64>;
    /// Every entry that names this customer, placed or not, oldest first (GDPR Art. 15).
    async fn audit_entries_for_customer(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>>;
    /// An audit entry for something that changes nothing else (an access, an export).
    async fn record_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// Stored subtree hashes; ids not stored are absent from the map.
    async fn audit_nodes(&self, ids: &[NodeId]) -> StoreResult<HashMap<NodeId, [u8; 32]>>;
}
