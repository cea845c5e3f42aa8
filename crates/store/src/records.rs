//! What the store keeps besides the domain types: credentials, sessions, keys, login history,
//! timeline entries, and the shapes of paged queries.

use regain_core::case::{CaseEvent, CaseKind, CaseState, Channel, Tier};
use regain_core::customer::CustomerStatus;
use regain_core::{Actor, ApiKeyId, CaseId, CustomerId, Role, Staff, StaffId, TenantId, Timestamp};

/// A staff account with its credentials. Never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRecord {
    pub staff: Staff,
    /// PHC string (Argon2id).
    pub password_hash: String,
    /// The TOTP shared secret, raw bytes.
    pub totp_secret: Vec<u8>,
    /// Sign-in is refused until then after repeated failures.
    pub locked_until: Option<Timestamp>,
}

/// A signed-in staff session. Only the SHA-256 of the bearer token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub staff_id: StaffId,
    pub created_at: Timestamp,
    /// Absolute end of the session.
    pub expires_at: Timestamp,
    /// End of the session if it stays unused.
    pub idle_until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the secret, hex. The secret itself is shown once and never stored.
    pub secret_hash: String,
    pub created_by: Option<StaffId>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The built-in directory's view of a customer, for a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAccount {
    pub customer_id: CustomerId,
    pub status: CustomerStatus,
    pub password_hash: Option<String>,
    pub failed_logins: u32,
}

/// One login attempt, kept as history for the risk engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
}

/// What [`crate::Store::record_login`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRecorded {
    /// Whether the attempt was recorded as a success (and so may get a session).
    pub success: bool,
    /// The account's status afterwards.
    pub status: CustomerStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSessionRecord {
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub case_id: CaseId,
    /// 1, 2, 3 … within the case.
    pub seq: i64,
    pub at: Timestamp,
    pub actor: Actor,
    pub event: CaseEvent,
    pub state_after: CaseState,
    /// The free text of this entry was erased with its case's key (erasure, retention): the
    /// event's text fields read as empty.
    pub erased: bool,
}

/// What [`crate::Store::unlock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    /// The key opened the database's keyring.
    Opened,
    /// The database had no keyring; one was created under the key.
    Created,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// Cases whose free text was erased with their keys.
    pub cases: u64,
}

/// What the holds of SECURITY.md G5 read of a customer's other cases: no sealed field, so no
/// key is unwrapped for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseBrief {
    pub id: CaseId,
    pub kind: CaseKind,
    pub state: CaseState,
    pub cooling_off_until: Option<Timestamp>,
}

/// The states in which a case can hold its customer's other recoveries (SECURITY.md G5): what
/// [`hold_on`] is given of them.
pub const HOLDING_STATES: [CaseState; 3] = [CaseState::AwaitingApproval, CaseState::Executing, CaseState::CoolingOff];

/// Which of a customer's other cases holds the recovery `case` (SECURITY.md G5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold<'a> {
    /// A contact change under way (approved, being carried out or cooling off): it holds every
    /// other recovery of the customer until it takes effect or is repudiated.
    ContactChange(&'a CaseBrief),
    /// Another recovery cooling off (a lockdown's case aside): it holds the others until its
    /// window ends or it is repudiated.
    CoolingOff(&'a CaseBrief),
}

/// The hold on `case`, if any, among `open` — the customer's cases in [`HOLDING_STATES`]. Read
/// before a step for its precise refusal, and again inside the step's transaction
/// ([`crate::Effect::RequireUnheld`]), so that two recoveries begun at once cannot both pass.
pub fn hold_on(case: CaseId, open: &[CaseBrief]) -> Option<Hold<'_>> {
    let mut others = open.iter().filter(|c| c.id != case);
    if let Some(change) = others.clone().find(|c| c.kind == CaseKind::ContactChange) {
        return Some(Hold::ContactChange(change));
    }
    others.find(|c| c.state == CaseState::CoolingOff && c.kind != CaseKind::CompromisedAccount).map(Hold::CoolingOff)
}

/// Which cases a listing returns; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub states: Vec<CaseState>,
    pub kind: Option<CaseKind>,
    pub channel: Option<Channel>,
    pub tier: Option<Tier>,
    pub assignee: Option<AssigneeFilter>,
    pub customer_id: Option<CustomerId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Unassigned,
    Staff(StaffId),
}

/// Keyset pagination, newest first: `after` is the last id of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<CaseId>,
}

impl PageRequest {
    pub const LIMIT_MAX: u32 = 200;
    pub const LIMIT_DEFAULT: u32 = 50;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_after: Option<CaseId>,
}

/// One entry of the audit log, as a change writes it in its own transaction (SECURITY.md L1):
/// who, what, when (UTC), which tenant, case and customer. `data` never holds a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub tenant_id: Option<TenantId>,
    pub at: Timestamp,
    pub actor: Actor,
    /// What happened: `tenant.created`, `case.state_changed`, `directory.login`, …
    pub action: String,
    pub case_id: Option<CaseId>,
    pub customer_id: Option<CustomerId>,
    pub data: serde_json::Value,
}

impl AuditRecord {
    pub fn new(tenant_id: Option<TenantId>, actor: Actor, action: &str, at: Timestamp) -> Self {
        Self {
            tenant_id,
            at,
            actor,
            action: action.to_owned(),
            case_id: None,
            customer_id: None,
            data: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    pub fn customer(mut self, id: CustomerId) -> Self {
        self.customer_id = Some(id);
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// An entry as the log holds it: the canonical text its leaf hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position in the log; `None` until the sequencer has placed it.
    pub seq: Option<u64>,
    pub tenant_id: Option<TenantId>,
    pub at: Timestamp,
    pub action: String,
    pub case_id: Option<CaseId>,
    pub customer_id: Option<CustomerId>,
    /// Canonical JSON (keys sorted, no insignificant white space).
    pub entry: String,
}

/// A published checkpoint: the tree's size and root, and the signed note that states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    /// The C2SP signed note.
    pub note: String,
    pub at: Timestamp,
}

/// Signs a checkpoint for the sequencer, inside its transaction.
pub trait CheckpointSigner: Send + Sync {
    /// The signed note for a tree of `size` with `root`.
    fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, String>;
}
