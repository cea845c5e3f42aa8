//! What identity verification keeps (issue 4): assurance policy versions, codes and links sent
//! to the customer, the attempts that make a case's evidence and a customer's failure count,
//! recovery holds, the built-in directory's second factors, and the outbox.
//!
//! Secrets never come back out of the store: codes, link tokens and recovery codes go in once
//! and are kept as keyed hashes; the store answers whether a presented one matches.

use regain_core::policy::Method;
use regain_core::{Actor, CaseId, CustomerId, TenantId, Timestamp};

/// One version of a tenant's assurance policy, as stored: the canonical JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub tenant_id: TenantId,
    pub version: i64,
    pub document: String,
    pub created_by: Actor,
    pub created_at: Timestamp,
}

/// How a challenge reaches the customer: a code they read back, or a link they open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Code,
    Link,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Link => "link",
        }
    }
}

/// A code or link about to be sent. The secret itself is passed beside it, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge {
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    /// `email` or `sms`.
    pub method: Method,
    pub delivery: Delivery,
    /// Masked, as the agent sees it.
    pub destination: String,
    /// When the destination was added to the record (or last changed).
    pub destination_since: Timestamp,
    pub attempts_max: u32,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// A message for the outbox, committed with the change that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: String,
    pub tenant_id: TenantId,
    pub case_id: Option<CaseId>,
    pub customer_id: CustomerId,
    /// `email` or `sms`.
    pub channel: String,
    /// The real address (sealed at rest) and its masked form (kept for the delivery log).
    pub to: String,
    pub destination: String,
    pub template: String,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
}

/// A message the worker has claimed, opened for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: String,
    pub tenant_id: TenantId,
    pub channel: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    Sent,
    /// Try again at `at`.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// Given up: a permanent refusal, or too many attempts.
    Dead {
        error: String,
    },
}

/// The delivery log's view of a message: never its address or content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub case_id: Option<CaseId>,
    pub channel: String,
    pub destination: String,
    pub template: String,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// The limit on failed attempts per customer (SECURITY.md T7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub max: u32,
    pub window: chrono::Duration,
    pub cooldown: chrono::Duration,
}

/// Where an attempt came from, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptContext {
    pub actor: Actor,
    pub ip: Option<String>,
    pub at: Timestamp,
}

/// An identification or verification attempt made without a stored challenge (TOTP, a
/// recovery code, a knowledge answer, identification itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    /// `identification`, or a [`Method`]'s name.
    pub method: String,
    pub passed: bool,
    /// Whether a failure counts toward the customer's limit.
    pub counted: bool,
    /// Why it failed (`wrong_code`, `mismatch`, `replay`, …); never the value presented.
    pub detail: Option<String>,
    pub destination: Option<String>,
    pub destination_since: Option<Timestamp>,
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationAttempt {
    pub case_id: Option<CaseId>,
    pub customer_id: CustomerId,
    pub method: String,
    pub passed: bool,
    pub counted: bool,
    pub detail: Option<String>,
    pub destination: Option<String>,
    pub destination_since: Option<Timestamp>,
    pub at: Timestamp,
}

/// A single-use secret an attempt spends, in the attempt's own transaction: if it cannot be
/// spent (used meanwhile, a replayed step), nothing is recorded and the caller records the
/// failure instead.
#[derive(Clone, PartialEq, Eq)]
pub enum Consume {
    /// A recovery code, normalized.
    RecoveryCode(String),
    /// A TOTP time step.
    TotpStep(i64),
}

/// Never the code.
impl std::fmt::Debug for Consume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RecoveryCode(_) => f.write_str("RecoveryCode(..)"),
            Self::TotpStep(step) => write!(f, "TotpStep({step})"),
        }
    }
}

/// What recording a failure did to the customer's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRecorded {
    /// Counted failures within the window, this one included.
    pub failures: u32,
    /// Set when this attempt started a hold, or one was already running.
    pub held_until: Option<Timestamp>,
    /// A hold was already running: nothing was recorded, and a right answer does not count.
    pub refused: bool,
    /// The secret to spend could not be spent: nothing was recorded.
    pub not_spent: bool,
}

/// What a presented code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was right: the case has a proof of possession of the destination.
    Passed { method: Method, destination: String },
    /// Wrong code: counted against the customer.
    Wrong { attempts_left: u32, recorded: AttemptRecorded },
    /// The code's attempts are used up (this one was counted too).
    Exhausted { recorded: AttemptRecorded },
    /// The last code sent has expired: send a new one.
    Expired,
    /// The last code sent was already used.
    Used,
    /// No code was sent for this case (or it was replaced by a newer one and that one closed).
    NonePending,
    /// Recovery for the customer is stopped until then; nothing was checked.
    Held { until: Timestamp },
}

/// A confirmation link as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkChallenge {
    pub challenge_id: String,
    pub tenant_id: TenantId,
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub method: Method,
    pub destination: String,
    pub state: String,
    pub expires_at: Timestamp,
}

/// What answering a confirmation link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    Answered(LinkChallenge),
    /// The link is used, expired, replaced, or its case has moved on.
    Closed,
    /// Recovery for the customer is on hold: an approval does not count (a refusal still does).
    Held {
        until: Timestamp,
    },
}

/// A recovery hold on a customer (SECURITY.md T7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryHold {
    pub until: Timestamp,
    pub failures: u32,
}

/// The built-in directory's TOTP enrollment of a customer.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerTotp {
    pub secret: Vec<u8>,
    pub confirmed: bool,
    /// When the enrollment was confirmed: a factor set up recently does not count for recovery
    /// until the policy's `recent_contact_days` have passed.
    pub confirmed_at: Option<Timestamp>,
}

/// Never the secret.
impl std::fmt::Debug for CustomerTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerTotp").field("confirmed_at", &self.confirmed_at).finish_non_exhaustive()
    }
}

/// A tenant's own wording of one message template on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub name: String,
    /// `email` or `sms`.
    pub channel: String,
    pub subject: String,
    pub body: String,
    pub updated_at: Timestamp,
}
