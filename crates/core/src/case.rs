//! A recovery case and its state machine.
//!
//! ```text
//!   open ──start_identification──▶ identifying ──identify──▶ verifying ──decide(approve)──▶ decided
//!                                      │                         │                        │   │
//!                                      │ decide(reject)          │ decide(reject)         │   │ request_approval
//!                                      ▼                         ▼              execute   │   ▼
//!                                   rejected ◀───────deny─── awaiting_approval ◀──────────┘ (when required)
//!                                                                │ approve (another supervisor)
//!                                                                ▼
//!   resolved ◀──release (at T)── cooling_off ◀──complete(T)── executing ──complete──▶ resolved
//!                                    │ repudiate ("this wasn't me")
//!                                    ▼
//!                                cancelled (and escalated to tier 3)
//!
//!   every state before executing ──cancel──▶ cancelled,  ──expire (deadline passed)──▶ expired
//! ```
//!
//! [`apply`] is the only way a case changes: it takes the case, a command, who gives it and the
//! time, and returns the new case and the events for its timeline — or a [`CaseError`] that
//! says why not, with nothing changed.

use std::collections::BTreeSet;

use chrono::Duration;

use crate::access::Role;
use crate::action::{ActionKind, ActionOutcome};
use crate::env::Timestamp;
use crate::identify::{FieldMatch, IdField};
use crate::ids::{ApiKeyId, CaseId, CustomerId, StaffId, TenantId};
use crate::policy::Method;
use crate::risk::{self, Observation, RiskBand, RouteAction};
use crate::tenant::TenantSettings;
use crate::validation::{bounded_text, ValidationError};

string_enum!(
    /// What the customer needs back.
    CaseKind {
        PasswordReset = "password_reset",
        UsernameRecovery = "username_recovery",
        AccountUnlock = "account_unlock",
        MfaRecovery = "mfa_recovery",
        ContactChange = "contact_change",
        CompromisedAccount = "compromised_account",
    }
);

string_enum!(
    /// Where the customer reached the desk. A case can move across channels.
    Channel { Web = "web", Chat = "chat", Email = "email", Phone = "phone" }
);

string_enum!(
    CaseState {
        Open = "open",
        Identifying = "identifying",
        Verifying = "verifying",
        Decided = "decided",
        AwaitingApproval = "awaiting_approval",
        Executing = "executing",
        CoolingOff = "cooling_off",
        Resolved = "resolved",
        Rejected = "rejected",
        Cancelled = "cancelled",
        Expired = "expired",
    }
);

impl CaseKind {
    /// Compromised accounts go straight to the security tier.
    pub fn initial_tier(self) -> Tier {
        match self {
            Self::CompromisedAccount => Tier::SECURITY,
            _ => Tier::FRONT_LINE,
        }
    }

    /// Kinds whose action always waits for a second person (SECURITY.md G3). The tenant policy
    /// and the risk route add to this; they never take from it.
    pub fn requires_approval(self) -> bool {
        matches!(self, Self::MfaRecovery | Self::ContactChange | Self::CompromisedAccount)
    }
}

impl CaseState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Resolved | Self::Rejected | Self::Cancelled | Self::Expired)
    }

    /// States in which nothing has been done to the account yet: a case here can still be
    /// cancelled or expire.
    pub fn is_before_execution(self) -> bool {
        matches!(self, Self::Open | Self::Identifying | Self::Verifying | Self::Decided | Self::AwaitingApproval)
    }
}

/// Support tier: 1 front line, 2 supervisors, 3 security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tier(u8);

impl Tier {
    pub const FRONT_LINE: Self = Self(1);
    pub const SUPERVISOR: Self = Self(2);
    pub const SECURITY: Self = Self(3);

    pub fn new(field: &str, value: i64) -> Result<Self, ValidationError> {
        match value {
            1..=3 => Ok(Self(value as u8)),
            _ => Err(ValidationError::new(field, "must be 1, 2 or 3")),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// Who did something: a person on staff, a client system, the customer, or Regain itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Staff { id: StaffId, role: Role },
    ApiKey { id: ApiKeyId },
    Customer { id: CustomerId },
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Staff { .. } => "staff",
            Self::ApiKey { .. } => "api_key",
            Self::Customer { .. } => "customer",
            Self::System => "system",
        }
    }

    /// The actor's id as text, `None` for the system.
    pub fn id(&self) -> Option<String> {
        match self {
            Self::Staff { id, .. } => Some(id.to_string()),
            Self::ApiKey { id } => Some(id.to_string()),
            Self::Customer { id } => Some(id.to_string()),
            Self::System => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub id: CaseId,
    pub tenant_id: TenantId,
    pub kind: CaseKind,
    pub channel: Channel,
    pub state: CaseState,
    pub tier: Tier,
    pub assignee: Option<StaffId>,
    pub customer_id: Option<CustomerId>,
    pub summary: Option<String>,
    pub approval_required: bool,
    /// Who asked for approval: the approver must be someone else.
    pub approval_requested_by: Option<Actor>,
    /// Who closed verification with a decision: they cannot approve their own decision either.
    pub decided_by: Option<Actor>,
    pub cooling_off_until: Option<Timestamp>,
    /// The latest risk assessment's score, with the highest band any assessment of this case
    /// gave: a band never goes down, so a hold or an approval the risk asked for stays.
    pub risk: Option<CaseRisk>,
    /// What the agent noticed on the call or chat (social-engineering tells), for the risk.
    pub observed: BTreeSet<Observation>,
    pub first_response_due: Timestamp,
    pub resolution_due: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub created_by: Actor,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Incremented by every change; stores use it for optimistic concurrency.
    pub version: i64,
}

/// The risk on a case: the latest score, the band in force, and the latest reasons in short
/// (`code:points`, comma-separated), so an assessment that says the same is not recorded twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRisk {
    pub score: u8,
    pub band: RiskBand,
    pub reasons: String,
}

impl CaseRisk {
    /// Reasons in short: `sim_swap_fresh:60,channel:5`.
    pub fn summary(reasons: &[ReasonNote]) -> String {
        reasons.iter().map(|r| format!("{}:{}", r.code, r.points)).collect::<Vec<_>>().join(",")
    }
}

impl Case {
    /// What the case's risk band means for it (none yet: proceed).
    pub fn risk_route(&self) -> risk::Route {
        risk::route(self.risk.as_ref().map_or(RiskBand::Low, |r| r.band), self.kind)
    }
}

/// One reason of an assessment as the timeline keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonNote {
    pub code: String,
    pub points: i32,
    pub detail: String,
    pub source: String,
}

/// A case about to be opened, already validated.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub kind: CaseKind,
    pub channel: Channel,
    pub summary: Option<String>,
}

impl NewCase {
    pub fn parse(kind: &str, channel: &str, summary: Option<&str>) -> Result<Self, ValidationError> {
        Ok(Self {
            kind: CaseKind::parse("kind", kind)?,
            channel: Channel::parse("channel", channel)?,
            summary: summary.map(|s| bounded_text("summary", s, 1, 2000)).transpose()?,
        })
    }
}

/// Everything that can be asked of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseCommand {
    /// Take the case (or hand it to someone); `None` puts it back in the queue.
    Assign {
        assignee: Option<StaffId>,
    },
    /// Move the case up a tier; it goes back to that tier's queue.
    Escalate {
        tier: Tier,
        reason: String,
    },
    /// The conversation continues on another channel.
    ChangeChannel {
        channel: Channel,
    },
    AddNote {
        text: String,
    },
    StartIdentification,
    /// The claimed identifiers matched this customer.
    Identify {
        customer_id: CustomerId,
    },
    /// Verification is over: go ahead, or refuse.
    Decide {
        approve: bool,
        reason: String,
    },
    RequestApproval {
        reason: String,
    },
    Approve {
        reason: String,
    },
    Deny {
        reason: String,
    },
    Execute,
    /// The action ran; `cooling_off_hours` holds it open for "this wasn't me" before resolving.
    Complete {
        cooling_off_hours: Option<u32>,
    },
    /// The cooling-off period is over.
    Release,
    /// "This wasn't me" from a registered contact during cooling-off.
    Repudiate {
        reason: String,
    },
    Cancel {
        reason: String,
    },
    /// The case's deadline passed before anything was executed (the system's sweeper).
    Expire,
    /// Record a risk assessment (Regain itself, before any step toward an action): the band
    /// in force rises to it, and the route's tier and approval apply.
    AssessRisk {
        score: u8,
        band: RiskBand,
        reasons: Vec<ReasonNote>,
        policy_version: Option<i64>,
    },
    /// The agent noticed social-engineering tells; the next assessment counts them.
    Observe {
        tells: Vec<Observation>,
    },
    /// Perform the case's action again (a reset link that expired unused, an action that
    /// failed and whose cause was fixed): staff ask, Regain does it. `action` is `None` for the
    /// case's own action; on a compromised-account case whose lockdown is done (never done
    /// twice), the server names [`ActionKind::Deactivate`]: a deactivation owed to the account
    /// system that it refused, sent again once its cause is fixed (SECURITY.md L0).
    RetryAction {
        action: Option<ActionKind>,
    },
    /// A step of the case's action, recorded by Regain (the action worker) or by the customer
    /// (the reset page), never by staff: what the account went through is not typed in.
    RecordAction {
        action: ActionKind,
        outcome: ActionOutcome,
        /// The masked destination of a link, or why the action failed. Never a secret.
        detail: Option<String>,
    },
    /// Undo recent changes to a locked-down account (SECURITY.md L0): the security team
    /// selects them on the compromised-account case while it is executing; each is described
    /// (masked, never a secret) for the timeline. Regain makes the changes.
    RollBack {
        changes: Vec<String>,
    },
}

/// Every command's name, as [`CaseCommand::name`] gives it.
pub const COMMAND_NAMES: [&str; 21] = [
    "assign",
    "escalate",
    "change_channel",
    "add_note",
    "start_identification",
    "identify",
    "decide",
    "request_approval",
    "approve",
    "deny",
    "execute",
    "complete",
    "release",
    "repudiate",
    "cancel",
    "expire",
    "assess_risk",
    "observe",
    "record_action",
    "retry_action",
    "roll_back",
];

impl CaseCommand {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Assign { .. } => "assign",
            Self::Escalate { .. } => "escalate",
            Self::ChangeChannel { .. } => "change_channel",
            Self::AddNote { .. } => "add_note",
            Self::StartIdentification => "start_identification",
            Self::Identify { .. } => "identify",
            Self::Decide { .. } => "decide",
            Self::RequestApproval { .. } => "request_approval",
            Self::Approve { .. } => "approve",
            Self::Deny { .. } => "deny",
            Self::Execute => "execute",
            Self::Complete { .. } => "complete",
            Self::Release => "release",
            Self::Repudiate { .. } => "repudiate",
            Self::Cancel { .. } => "cancel",
            Self::Expire => "expire",
            Self::AssessRisk { .. } => "assess_risk",
            Self::Observe { .. } => "observe",
            Self::RecordAction { .. } => "record_action",
            Self::RetryAction { .. } => "retry_action",
            Self::RollBack { .. } => "roll_back",
        }
    }
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvent {
    Opened {
        kind: CaseKind,
        channel: Channel,
        tier: Tier,
    },
    Assigned {
        assignee: Option<StaffId>,
    },
    Escalated {
        from: Tier,
        to: Tier,
        reason: String,
    },
    ChannelChanged {
        from: Channel,
        to: Channel,
    },
    NoteAdded {
        text: String,
    },
    StateChanged {
        from: CaseState,
        to: CaseState,
        command: &'static str,
        reason: Option<String>,
    },
    CustomerIdentified {
        customer_id: CustomerId,
    },
    CoolingOffStarted {
        until: Timestamp,
    },
    /// The claimed identifiers were compared with the records: the outcome (`identified`,
    /// `ambiguous`, `no_match`) and match / no match per field, never a value.
    IdentificationChecked {
        outcome: String,
        fields: Vec<(IdField, FieldMatch)>,
    },
    /// A code or a confirmation link went to a registered contact point, shown masked.
    VerificationSent {
        method: Method,
        link: bool,
        destination: String,
        expires_at: Timestamp,
    },
    /// A proof was checked: its method, whether it passed and, when not, why (`wrong_code`,
    /// `expired`, `replay`, …). Never the secret.
    VerificationChecked {
        method: Method,
        passed: bool,
        detail: Option<String>,
        destination: Option<String>,
    },
    /// Too many failures for the customer: recovery stops until then (SECURITY.md T7).
    RecoveryHeld {
        until: Timestamp,
        failures: u32,
    },
    /// A risk assessment: the score and its band, the band in force on the case (the highest
    /// so far), the route that follows from it, and the reasons with their points.
    RiskAssessed {
        score: u8,
        band: RiskBand,
        band_in_force: RiskBand,
        route: RouteAction,
        reasons: Vec<ReasonNote>,
        policy_version: Option<i64>,
    },
    /// Tells the agent recorded.
    Observed {
        tells: Vec<Observation>,
    },
    /// A step of the case's action: queued, link sent, performed or failed.
    Action {
        action: ActionKind,
        outcome: ActionOutcome,
        detail: Option<String>,
    },
}

impl CaseEvent {
    /// The event's stable name, as stored and shown: `case.opened`, `case.state_changed`, …
    pub fn name(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "case.opened",
            Self::Assigned { .. } => "case.assigned",
            Self::Escalated { .. } => "case.escalated",
            Self::ChannelChanged { .. } => "case.channel_changed",
            Self::NoteAdded { .. } => "case.note_added",
            Self::StateChanged { .. } => "case.state_changed",
            Self::CustomerIdentified { .. } => "case.customer_identified",
            Self::CoolingOffStarted { .. } => "case.cooling_off_started",
            Self::IdentificationChecked { .. } => "case.identification_checked",
            Self::VerificationSent { .. } => "case.verification_sent",
            Self::VerificationChecked { .. } => "case.verification_checked",
            Self::RecoveryHeld { .. } => "case.recovery_held",
            Self::RiskAssessed { .. } => "case.risk_assessed",
            Self::Observed { .. } => "case.observed",
            Self::Action { outcome, .. } => match outcome {
                ActionOutcome::Queued => "case.action_queued",
                ActionOutcome::LinkSent => "case.action_link_sent",
                ActionOutcome::Performed => "case.action_performed",
                ActionOutcome::Failed => "case.action_failed",
                ActionOutcome::CodeSent => "case.action_code_sent",
                ActionOutcome::Confirmed => "case.action_confirmed",
                ActionOutcome::Applied => "case.action_applied",
                ActionOutcome::RolledBack => "case.action_rolled_back",
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("a case in state {state} cannot {command}")]
    WrongState { state: CaseState, command: &'static str },
    #[error("this action needs a supervisor's approval first")]
    ApprovalRequired,
    #[error("the approver must be someone who has not decided, requested or been assigned this case")]
    SelfApproval,
    #[error("only a supervisor or security analyst can approve or deny")]
    ApproverRole,
    #[error("the case is cooling off until {until}")]
    StillCoolingOff { until: Timestamp },
    #[error("the case does not expire until {expires_at}")]
    NotExpired { expires_at: Timestamp },
    #[error("the case is already at tier {current}; escalation must go up")]
    NotAnEscalation { current: u8 },
    #[error("the case is at tier {case_tier}; your role works tier {worker_tier}")]
    BeyondTier { case_tier: u8, worker_tier: u8 },
    #[error("the case is assigned to someone else; ask a supervisor to reassign it")]
    AssignedElsewhere,
    #[error(
        "the risk on this case is critical (score {score}): no action on it; the security team rejects or cancels it, \
         or opens a compromised-account case to lock the account down"
    )]
    RiskHold { score: u8 },
    #[error("only Regain records the steps of an action; staff execute the case and the action runs")]
    RegainOnly,
    #[error("only a security analyst or a supervisor rolls back changes to a locked-down account")]
    SecurityOnly,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Longest cooling-off a command may ask for: 30 days.
pub const COOLING_OFF_HOURS_MAX: u32 = 24 * 30;

impl Case {
    /// Opens a new case: state `open`, SLA deadlines from the tenant's settings.
    pub fn open(
        id: CaseId,
        tenant_id: TenantId,
        settings: &TenantSettings,
        new: NewCase,
        actor: Actor,
        now: Timestamp,
    ) -> (Self, Vec<CaseEvent>) {
        let tier = new.kind.initial_tier();
        let case = Self {
            id,
            tenant_id,
            kind: new.kind,
            channel: new.channel,
            state: CaseState::Open,
            tier,
            assignee: None,
            customer_id: None,
            summary: new.summary,
            approval_required: new.kind.requires_approval(),
            approval_requested_by: None,
            decided_by: None,
            cooling_off_until: None,
            risk: None,
            observed: BTreeSet::new(),
            first_response_due: now + Duration::minutes(i64::from(settings.sla_first_response_minutes)),
            resolution_due: now + Duration::minutes(i64::from(settings.sla_resolution_minutes)),
            first_response_at: None,
            expires_at: now + Duration::hours(i64::from(settings.case_expiry_hours)),
            created_by: actor,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let events = vec![CaseEvent::Opened { kind: new.kind, channel: new.channel, tier }];
        (case, events)
    }
}

/// Applies `command`, given by `actor` at `now`, to `case`.
pub fn apply(
    case: &Case,
    command: CaseCommand,
    actor: Actor,
    now: Timestamp,
) -> Result<(Case, Vec<CaseEvent>), CaseError> {
    use CaseCommand as C;
    use CaseState as S;

    let name = command.name();
    let wrong_state = || CaseError::WrongState { state: case.state, command: name };
    if case.state.is_terminal() {
        return Err(wrong_state());
    }
    check_worker(case, &command, actor)?;
    // A critical risk stops every step toward an action, whoever takes it (issue 5); not a
    // deactivation sent again after a lockdown, which only makes the account safer.
    let toward_action = matches!(
        command,
        C::Decide { approve: true, .. }
            | C::RequestApproval { .. }
            | C::Approve { .. }
            | C::Execute
            | C::RetryAction { action: None }
    );
    if toward_action && case.risk_route().hold {
        return Err(CaseError::RiskHold { score: case.risk.as_ref().map_or(0, |r| r.score) });
    }
    let mut next = case.clone();
    let mut events = Vec::new();
    let transition = |next: &mut Case, events: &mut Vec<CaseEvent>, to: CaseState, reason: Option<String>| {
        events.push(CaseEvent::StateChanged { from: next.state, to, command: name, reason });
        next.state = to;
    };

    match (case.state, command) {
        (_, C::Assign { assignee }) => {
            next.assignee = assignee;
            events.push(CaseEvent::Assigned { assignee });
        }
        (_, C::Escalate { tier, reason }) => {
            if tier <= case.tier {
                return Err(CaseError::NotAnEscalation { current: case.tier.get() });
            }
            let reason = bounded_text("reason", &reason, 1, 2000)?;
            next.tier = tier;
            next.assignee = None;
            events.push(CaseEvent::Escalated { from: case.tier, to: tier, reason });
        }
        (_, C::ChangeChannel { channel }) => {
            if channel != case.channel {
                next.channel = channel;
                events.push(CaseEvent::ChannelChanged { from: case.channel, to: channel });
            }
        }
        (_, C::AddNote { text }) => {
            let text = bounded_text("text", &text, 1, 4000)?;
            events.push(CaseEvent::NoteAdded { text });
        }
        (S::Open, C::StartIdentification) => transition(&mut next, &mut events, S::Identifying, None),
        (S::Identifying, C::Identify { customer_id }) => {
            next.customer_id = Some(customer_id);
            events.push(CaseEvent::CustomerIdentified { customer_id });
            transition(&mut next, &mut events, S::Verifying, None);
        }
        (S::Identifying | S::Verifying, C::Decide { approve, reason }) => {
            let reason = bounded_text("reason", &reason, 1, 2000)?;
            if approve && case.state == S::Identifying {
                // Going ahead needs an identified customer; refusing does not.
                return Err(wrong_state());
            }
            next.decided_by = Some(actor);
            let to = if approve { S::Decided } else { S::Rejected };
            transition(&mut next, &mut events, to, Some(reason));
        }
        (S::Decided, C::RequestApproval { reason }) => {
            let reason = bounded_text("reason", &reason, 1, 2000)?;
            next.approval_requested_by = Some(actor);
            transition(&mut next, &mut events, S::AwaitingApproval, Some(reason));
        }
        (S::AwaitingApproval, C::Approve { reason } | C::Deny { reason }) => {
            let approving = name == "approve";
            let Actor::Staff { role, .. } = actor else {
                return Err(CaseError::ApproverRole);
            };
            if !matches!(role, Role::Supervisor | Role::SecurityAnalyst) {
                return Err(CaseError::ApproverRole);
            }
            // Four eyes (SECURITY.md G3): nobody who decided, asked for approval or holds the
            // case approves it — compared by person, whatever role they held then.
            let approver = staff_id(actor);
            let involved = [case.approval_requested_by, case.decided_by].into_iter().flatten().filter_map(staff_id);
            if involved.chain(case.assignee).any(|id| Some(id) == approver) {
                return Err(CaseError::SelfApproval);
            }
            let reason = bounded_text("reason", &reason, 1, 2000)?;
            let to = if approving { S::Executing } else { S::Rejected };
            transition(&mut next, &mut events, to, Some(reason));
            if approving {
                queue_action(&next, &mut events);
            }
        }
        (S::Decided, C::Execute) => {
            if case.approval_required {
                return Err(CaseError::ApprovalRequired);
            }
            transition(&mut next, &mut events, S::Executing, None);
            queue_action(&next, &mut events);
        }
        (S::Executing, C::Complete { cooling_off_hours }) => match cooling_off_hours {
            Some(hours) if hours > 0 => {
                if hours > COOLING_OFF_HOURS_MAX {
                    return Err(ValidationError::new(
                        "cooling_off_hours",
                        format!("must be at most {COOLING_OFF_HOURS_MAX}"),
                    )
                    .into());
                }
                let until = now + Duration::hours(i64::from(hours));
                next.cooling_off_until = Some(until);
                events.push(CaseEvent::CoolingOffStarted { until });
                transition(&mut next, &mut events, S::CoolingOff, None);
            }
            _ => transition(&mut next, &mut events, S::Resolved, None),
        },
        (S::CoolingOff, C::Release) => {
            let until = case.cooling_off_until.unwrap_or(now);
            if now < until {
                return Err(CaseError::StillCoolingOff { until });
            }
            transition(&mut next, &mut events, S::Resolved, None);
        }
        (S::CoolingOff, C::Repudiate { reason }) => {
            let reason = bounded_text("reason", &reason, 1, 2000)?;
            if case.tier < Tier::SECURITY {
                events.push(CaseEvent::Escalated { from: case.tier, to: Tier::SECURITY, reason: reason.clone() });
                next.tier = Tier::SECURITY;
                next.assignee = None;
            }
            transition(&mut next, &mut events, S::Cancelled, Some(reason));
        }
        (state, C::Cancel { reason }) if state.is_before_execution() => {
            let reason = bounded_text("reason", &reason, 1, 2000)?;
            transition(&mut next, &mut events, S::Cancelled, Some(reason));
        }
        (state, C::AssessRisk { score, band, reasons, policy_version }) if state.is_before_execution() => {
            let band_in_force = case.risk.as_ref().map_or(band, |r| r.band.max(band));
            let risk = CaseRisk { score, band: band_in_force, reasons: CaseRisk::summary(&reasons) };
            if case.risk.as_ref() == Some(&risk) {
                // The same answer again: nothing to record.
                return Ok((case.clone(), events));
            }
            let route = risk::route(band_in_force, case.kind);
            next.risk = Some(risk);
            events.push(CaseEvent::RiskAssessed {
                score,
                band,
                band_in_force,
                route: route.action,
                reasons,
                policy_version,
            });
            if route.approval {
                next.approval_required = true;
            }
            if route.tier > case.tier {
                let reason = format!("risk {band_in_force} (score {score}): {}", route.action);
                events.push(CaseEvent::Escalated { from: case.tier, to: route.tier, reason });
                next.tier = route.tier;
                next.assignee = None;
            }
        }
        (_, C::Observe { tells }) => {
            if tells.is_empty() {
                return Err(ValidationError::new("tells", "must name at least one observation").into());
            }
            let mut new_tells: Vec<Observation> = Vec::new();
            for tell in tells {
                if !case.observed.contains(&tell) && !new_tells.contains(&tell) {
                    new_tells.push(tell);
                }
            }
            if !new_tells.is_empty() {
                next.observed.extend(new_tells.iter().copied());
                events.push(CaseEvent::Observed { tells: new_tells });
            }
        }
        (S::Executing, C::RetryAction { action }) => {
            let action = match action {
                None => ActionKind::for_case(case.kind),
                Some(ActionKind::Deactivate) if case.kind == CaseKind::CompromisedAccount => ActionKind::Deactivate,
                Some(_) => return Err(wrong_state()),
            };
            if !action.is_automated() || case.customer_id.is_none() {
                return Err(wrong_state());
            }
            events.push(CaseEvent::Action { action, outcome: ActionOutcome::Queued, detail: Some("again".into()) });
        }
        (S::Executing, C::RecordAction { action, outcome, detail }) => {
            let by_regain = match actor {
                Actor::System => true,
                Actor::Customer { id } => case.customer_id == Some(id),
                Actor::Staff { .. } | Actor::ApiKey { .. } => false,
            };
            if !by_regain {
                return Err(CaseError::RegainOnly);
            }
            let detail = detail.map(|d| bounded_text("detail", &d, 1, 500)).transpose()?;
            events.push(CaseEvent::Action { action, outcome, detail });
        }
        (S::Executing, C::RollBack { changes }) if case.kind == CaseKind::CompromisedAccount => {
            let Actor::Staff { role, .. } = actor else {
                return Err(CaseError::SecurityOnly);
            };
            if !matches!(role, Role::SecurityAnalyst | Role::Supervisor) {
                return Err(CaseError::SecurityOnly);
            }
            if changes.is_empty() {
                return Err(ValidationError::new("changes", "must name at least one change").into());
            }
            for change in changes {
                let detail = bounded_text("changes", &change, 1, 500)?;
                events.push(CaseEvent::Action {
                    action: ActionKind::Lockdown,
                    outcome: ActionOutcome::RolledBack,
                    detail: Some(detail),
                });
            }
        }
        (state, C::Expire) if state.is_before_execution() => {
            if now < case.expires_at {
                return Err(CaseError::NotExpired { expires_at: case.expires_at });
            }
            transition(&mut next, &mut events, S::Expired, None);
        }
        _ => return Err(wrong_state()),
    }

    if events.is_empty() {
        // Nothing changed (a channel change to the same channel): no new version, no timeline entry.
        return Ok((case.clone(), events));
    }
    if matches!(actor, Actor::Staff { .. }) && next.first_response_at.is_none() {
        next.first_response_at = Some(now);
    }
    next.updated_at = now;
    next.version = case.version + 1;
    Ok((next, events))
}

/// Whether `actor` may work the case beyond adding notes — the tier and assignment rules every
/// state command applies — for work that is not a state command (collecting proofs).
pub fn may_work(case: &Case, actor: Actor) -> Result<(), CaseError> {
    check_worker(case, &CaseCommand::StartIdentification, actor)
}

/// Who may work the case: staff below the case's tier may only add notes, and an agent may not
/// act on a case assigned to someone else (supervisors and analysts oversee every case).
/// Machines, customers and the system are governed by their permissions and the states alone.
/// Entering `executing` queues the kind's action when Regain performs it: the store queues it
/// for the worker in the same transaction (issue 6). The others are done by staff by hand.
fn queue_action(case: &Case, events: &mut Vec<CaseEvent>) {
    let action = ActionKind::for_case(case.kind);
    if action.is_automated() && case.customer_id.is_some() {
        events.push(CaseEvent::Action { action, outcome: ActionOutcome::Queued, detail: None });
    }
}

fn check_worker(case: &Case, command: &CaseCommand, actor: Actor) -> Result<(), CaseError> {
    let Actor::Staff { id, role } = actor else { return Ok(()) };
    if matches!(command, CaseCommand::AddNote { .. }) {
        return Ok(());
    }
    let worker_tier = role.tier().unwrap_or(1);
    if worker_tier < case.tier.get() {
        return Err(CaseError::BeyondTier { case_tier: case.tier.get(), worker_tier });
    }
    if role == Role::Agent && case.assignee.is_some_and(|assignee| assignee != id) {
        return Err(CaseError::AssignedElsewhere);
    }
    Ok(())
}

fn staff_id(actor: Actor) -> Option<StaffId> {
    match actor {
        Actor::Staff { id, .. } => Some(id),
        _ => None,
    }
}

#[cfg(test)]
#[path = "case_tests.rs"]
mod tests;
