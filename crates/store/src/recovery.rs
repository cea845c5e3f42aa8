//! What executing a recovery keeps (issue 6): the queue of actions, the reset links, and the
//! changes an action makes to the built-in directory — each applied in the transaction that
//! records its step on the case (`Store::commit_case_change`), so a step is never recorded without its
//! effect, nor an effect made twice.

use regain_core::action::ActionKind;
use regain_core::{CaseId, CustomerId, CustomerStatus, TenantId, Timestamp};

use crate::NewMessage;

/// An action to perform, queued with the case's move to `executing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    /// Also the idempotency key sent to external connectors.
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub action: ActionKind,
    /// Which connector performs it: `builtin`, `scim` or `webhook`.
    pub connector: String,
    pub created_at: Timestamp,
}

/// A queued action the worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedAction {
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub action: ActionKind,
    pub connector: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// A case's action as the case view shows it: the pending step, its attempts and last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEntry {
    pub id: String,
    pub action: ActionKind,
    pub connector: String,
    /// `pending` (waiting or being retried), `done` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub done_at: Option<Timestamp>,
}

/// What a link sent to the customer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Set a new password (single use).
    Reset,
    /// "This wasn't me", from a notice.
    Report,
    /// Set up two-step sign-in again after an MFA reset (single use).
    Enroll,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Report => "report",
            Self::Enroll => "enroll",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Reset, Self::Report, Self::Enroll].into_iter().find(|p| p.as_str() == value)
    }
}

/// A link about to be sent; the token itself is passed beside it, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomerLink {
    pub id: String,
    pub purpose: LinkPurpose,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    /// Masked.
    pub destination: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// A stored link, found by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerLink {
    pub id: String,
    pub purpose: LinkPurpose,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub destination: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

impl CustomerLink {
    pub fn usable(&self, now: Timestamp) -> bool {
        self.used_at.is_none() && now < self.expires_at
    }
}

/// An event for the tenant's webhook endpoint, committed with the change it tells of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    /// Also the `webhook-id` the endpoint sees, the same on every retry.
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: Option<CaseId>,
    /// `case.created`, `case.resolved`, `recovery.repudiated`, …
    pub event_type: String,
    /// The JSON body, as sent.
    pub payload: String,
    pub created_at: Timestamp,
}

/// A webhook delivery: the worker's claim, and the delivery log's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: Option<CaseId>,
    pub event_type: String,
    pub payload: String,
    /// `pending` (waiting or being retried), `delivered` or `dead` (given up).
    pub state: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    /// The endpoint's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// What became of one webhook attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookResult {
    Delivered { status: u16 },
    Retry { at: Timestamp, status: Option<u16>, error: String },
    Dead { status: Option<u16>, error: String },
}

/// One effect applied in a `Store::commit_case_change`'s transaction. An effect that finds its row already
/// spent (a used reset link, a finished action) fails the whole change with
/// `StoreError::Conflict`: nothing of it is written.
#[derive(Clone, PartialEq, Eq)]
pub enum Effect {
    /// Queue a message.
    Message(NewMessage),
    /// Queue an action for the worker.
    QueueAction(NewAction),
    /// Mark a claimed action done: it must still be pending.
    FinishAction { id: String },
    /// Mark a claimed action failed for good: it must still be pending.
    FailAction { id: String, error: String },
    /// Store a link's token (as a keyed hash); a reset link ends the case's earlier ones.
    IssueLink { link: NewCustomerLink, token: String },
    /// Spend a link: it must be unused and unexpired at the change's time.
    SpendLink { token: String },
    /// Give a spent link back (a change through a connector that did not go through).
    ReleaseLink { token: String },
    /// Replace the directory password (an Argon2id PHC string).
    SetPassword { customer: CustomerId, hash: String },
    /// End every session of the customer (SECURITY.md P2).
    RevokeSessions { customer: CustomerId },
    /// Set the directory account's status (an unlock: `active`, and the failure count cleared).
    SetStatus { customer: CustomerId, status: CustomerStatus },
    /// Queue an event for the tenant's webhook endpoint.
    Webhook(NewWebhookEvent),
    /// A lockdown's reach beyond the account (SECURITY.md L0): the customer's unused reset and
    /// re-enrollment links end, and the pending actions of their other cases fail.
    EndRecoveries { customer: CustomerId, except_case: CaseId },
    /// Remove the directory's second factors: the saved recovery codes, and the authenticator
    /// app too when `totp`.
    RemoveFactors { customer: CustomerId, totp: bool },
}

/// Never a token or a hash.
impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Message(m) => write!(f, "Message({}, {})", m.id, m.template),
            Self::QueueAction(a) => write!(f, "QueueAction({}, {})", a.id, a.action),
            Self::FinishAction { id } => write!(f, "FinishAction({id})"),
            Self::FailAction { id, .. } => write!(f, "FailAction({id})"),
            Self::IssueLink { link, .. } => write!(f, "IssueLink({}, {})", link.id, link.purpose.as_str()),
            Self::SpendLink { .. } => f.write_str("SpendLink(..)"),
            Self::ReleaseLink { .. } => f.write_str("ReleaseLink(..)"),
            Self::EndRecoveries { customer, .. } => write!(f, "EndRecoveries({customer})"),
            Self::SetPassword { customer, .. } => write!(f, "SetPassword({customer})"),
            Self::RevokeSessions { customer } => write!(f, "RevokeSessions({customer})"),
            Self::SetStatus { customer, status } => write!(f, "SetStatus({customer}, {status})"),
            Self::Webhook(w) => write!(f, "Webhook({}, {})", w.id, w.event_type),
            Self::RemoveFactors { customer, totp } => write!(f, "RemoveFactors({customer}, totp: {totp})"),
        }
    }
}
