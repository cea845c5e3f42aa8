//! What executing a recovery keeps (issue 6): the queue of actions, the reset links, and the
//! changes an action makes to the built-in directory — each applied in the transaction that
//! records its step on the case (`Store::commit_case_change`), so a step is never recorded without its
//! effect, nor an effect made twice.

use std::collections::BTreeSet;

use regain_core::action::ActionKind;
use regain_core::policy::Factor;
use regain_core::{CaseId, CaseKind, CustomerId, CustomerStatus, TenantId, Timestamp};

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
    /// The case the link belongs to; `None` only for a report link in a notice of a change
    /// the customer made themselves (a new sign-in method), which no case stands behind.
    pub case_id: Option<CaseId>,
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
    /// `None` only for a report link no case stands behind ([`NewCustomerLink::case_id`]).
    pub case_id: Option<CaseId>,
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

/// Which kind of contact point a contact change gives the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Email,
    Phone,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Email, Self::Phone].into_iter().find(|k| k.as_str() == value)
    }
}

/// A new contact proposed on a contact-change case (issue 6, SECURITY.md M4): sealed at rest,
/// proven by a code sent to it, and applied only when the case's cooling-off ends.
#[derive(Clone, PartialEq, Eq)]
pub struct NewContactChange {
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub kind: ContactKind,
    /// Normalized (an `EmailAddress` or `PhoneE164` as text). Sealed by the store.
    pub value: String,
    pub masked: String,
    /// Whether the contacts of this kind the customer has now go when it is applied.
    pub replace: bool,
    pub attempts_max: u32,
    pub code_expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// Never the new contact itself.
impl std::fmt::Debug for NewContactChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewContactChange({}, {} {})", self.id, self.kind.as_str(), self.masked)
    }
}

/// A stored contact change, as the case view and the lockdown review show it: masked only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChange {
    pub id: String,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub kind: ContactKind,
    pub masked: String,
    pub replace: bool,
    /// `awaiting_code`, `confirmed`, `sending` (handed to the tenant's account system, its
    /// answer not yet recorded), `applied`, `reverted`, `expired` or `exhausted` (its code),
    /// `cancelled` (by its case's end, a lockdown, or a report while it was being sent that the
    /// account system did not take), or `superseded` by a later proposal.
    pub state: String,
    pub attempts: u32,
    pub code_expires_at: Timestamp,
    pub created_at: Timestamp,
    pub confirmed_at: Option<Timestamp>,
    pub applied_at: Option<Timestamp>,
    /// The contacts it replaced, masked (empty unless applied with `replace`).
    pub replaced: Vec<String>,
    /// When the customer said "this wasn't me" while it was being sent.
    pub reported_at: Option<Timestamp>,
}

/// What checking a contact change's code found. Every check is an attempt; a wrong one counts
/// toward the customer's failure limit like any failed proof (SECURITY.md T7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactConfirm {
    Confirmed {
        masked: String,
    },
    Wrong {
        attempts_left: u32,
        recorded: crate::AttemptRecorded,
    },
    /// Too many wrong codes: the proposal is spent; propose again.
    Exhausted {
        recorded: crate::AttemptRecorded,
    },
    Expired,
    /// Nothing awaits a code on this case.
    NonePending,
    Held {
        until: Timestamp,
    },
}

/// When the customer's factors last changed in the directory: what a lockdown review lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorTimes {
    pub password_changed_at: Option<Timestamp>,
    pub totp_confirmed_at: Option<Timestamp>,
    pub recovery_codes_issued_at: Option<Timestamp>,
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
    /// Go on only while no other case of the customer holds `case` (SECURITY.md G5,
    /// [`crate::hold_on`]), as the customer's cases stand inside the transaction: the check a
    /// step makes before it is read outside, and another recovery may have begun since. A
    /// conflict otherwise. On PostgreSQL the customer's row is locked first, so two such
    /// changes of one customer's recoveries run one after the other.
    RequireUnheld { tenant: TenantId, customer: CustomerId, case: CaseId },
    /// Go on only while none of the customer's cases has `action` pending, as they stand inside
    /// the transaction; a conflict otherwise. A deactivation sent again after a lockdown is
    /// queued only while no re-proofing is lifting it (SECURITY.md L0): the lift's activation
    /// must come last. The customer's row is locked first, as for [`Effect::RequireUnheld`].
    RequireNoPendingAction { tenant: TenantId, customer: CustomerId, action: ActionKind },
    /// Go on only while the customer has no case of `kind` before execution but `except`, as
    /// they stand inside the transaction; a conflict otherwise. Two reports at once open one
    /// security case, not two. The customer's row is locked first, as for
    /// [`Effect::RequireUnheld`].
    RequireNoOpenCase { tenant: TenantId, customer: CustomerId, kind: CaseKind, except: CaseId },
    /// Only the customer's row lock (on PostgreSQL; SQLite has one writer), so that this change
    /// and one a `Require…` above judges run one after the other: a re-proofing's lift queued
    /// against a deactivation sent again.
    LockCustomer { tenant: TenantId, customer: CustomerId },
    /// Set the directory account's status (an unlock: `active`, and the failure count cleared).
    SetStatus { customer: CustomerId, status: CustomerStatus },
    /// Queue an event for the tenant's webhook endpoint.
    Webhook(NewWebhookEvent),
    /// A lockdown's reach beyond the account (SECURITY.md L0): the customer's unused reset and
    /// re-enrollment links end, the pending actions of their other cases fail, and contact
    /// changes not yet made are cancelled.
    EndRecoveries { customer: CustomerId, except_case: CaseId },
    /// Remove these of the directory's second factors and recovery credentials.
    RemoveFactors { customer: CustomerId, factors: BTreeSet<Factor> },
    /// Store a proposed contact (sealed) and its code (as a keyed hash); an earlier proposal on
    /// the case that was not applied is superseded.
    ProposeContact { change: NewContactChange, code: String },
    /// The case's confirmed contact change takes effect: the new contact is added, verified and
    /// dated now (so proofs to it do not count for `recent_contact_days`), and with `replace`
    /// the customer's other contacts of its kind are removed (kept sealed on the change, for a
    /// lockdown to restore). It must be confirmed and not yet applied.
    /// One that was being sent to the tenant's account system ([`Effect::SendContactChange`])
    /// is applied even if a lockdown froze the account meanwhile: it may have taken effect
    /// there, and the lockdown's list of recent changes then offers it for rollback.
    ApplyContactChange { case: CaseId },
    /// The case's confirmed contact change is about to be handed to the tenant's account system
    /// (written before the call, so the change cannot be both made there and cancelled here):
    /// from now on neither a repudiation nor a lockdown cancels it, and the release that follows
    /// applies it. Again on a change already being sent (a release tried again); a conflict for
    /// one cancelled, applied or not confirmed.
    SendContactChange { case: CaseId },
    /// The account system certainly did not take the change being sent (it could not be
    /// reached, or answered with an error): it is only confirmed again, cancellable as before —
    /// or, when it was reported while being sent, cancelled.
    UnsendContactChange { case: CaseId },
    /// "This wasn't me" while the case's contact change is being sent (G5): it cannot be
    /// cancelled now, but it is never sent again, and cancelled if the account system did not
    /// take it. A conflict when the change is not being sent.
    ReportContactChange { case: CaseId },
    /// The case's contact change not yet made will never be: its case was repudiated, rejected,
    /// cancelled or expired. A conflict while the change is being sent to the account system.
    CancelContactChange { case: CaseId },
    /// Undo an applied contact change (a lockdown's rollback): the contact it added goes, the
    /// ones it replaced come back as they were.
    RevertContactChange { id: String },
    /// Remove one contact point (a lockdown's rollback of a contact added recently); `value`
    /// normalized.
    RemoveContact { customer: CustomerId, kind: ContactKind, value: String },
    /// The directory password no longer works (a lockdown's rollback of a password change):
    /// the customer sets a new one through a reset once re-proofed.
    ClearPassword { customer: CustomerId },
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
            Self::RequireUnheld { customer, case, .. } => write!(f, "RequireUnheld({customer}, {case})"),
            Self::RequireNoPendingAction { customer, action, .. } => {
                write!(f, "RequireNoPendingAction({customer}, {action})")
            }
            Self::RequireNoOpenCase { customer, kind, except, .. } => {
                write!(f, "RequireNoOpenCase({customer}, {kind}, {except})")
            }
            Self::LockCustomer { customer, .. } => write!(f, "LockCustomer({customer})"),
            Self::SetStatus { customer, status } => write!(f, "SetStatus({customer}, {status})"),
            Self::Webhook(w) => write!(f, "Webhook({}, {})", w.id, w.event_type),
            Self::RemoveFactors { customer, factors } => write!(f, "RemoveFactors({customer}, {factors:?})"),
            Self::ProposeContact { change, .. } => write!(f, "ProposeContact({change:?})"),
            Self::ApplyContactChange { case } => write!(f, "ApplyContactChange({case})"),
            Self::SendContactChange { case } => write!(f, "SendContactChange({case})"),
            Self::UnsendContactChange { case } => write!(f, "UnsendContactChange({case})"),
            Self::ReportContactChange { case } => write!(f, "ReportContactChange({case})"),
            Self::CancelContactChange { case } => write!(f, "CancelContactChange({case})"),
            Self::RevertContactChange { id } => write!(f, "RevertContactChange({id})"),
            Self::RemoveContact { customer, kind, .. } => write!(f, "RemoveContact({customer}, {})", kind.as_str()),
            Self::ClearPassword { customer } => write!(f, "ClearPassword({customer})"),
        }
    }
}
