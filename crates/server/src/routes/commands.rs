//! The case's state commands, one route each: `POST /api/v1/cases/{id}/<command>`.
//!
//! Every route goes through [`run_command`]: load the case in the caller's tenant (404 if it is
//! not there), check what the command refers to (the assignee, the customer), apply the
//! transition in `core` (409 with the reason when the state does not allow it), and store the new
//! case with its timeline events in one transaction (409 if someone changed it meanwhile).

use axum::extract::{Path, State};
use axum::Json;
use regain_core::case::{apply, CaseCommand, Channel, Tier};
use regain_core::{CustomerId, CustomerStatus, StaffId, ValidationError};
use regain_store::Effect;
use serde::Deserialize;
use utoipa::ToSchema;

use super::cases::{case_detail, load_case, CaseView};
use crate::auth::{perm, Authorized, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// A staff id (agent, supervisor or analyst of this tenant, of the case's tier or above);
    /// `null` returns the case to the queue.
    #[schema(format = Uuid)]
    pub assignee: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateBody {
    /// The tier to move to: higher than the current one.
    #[schema(minimum = 2, maximum = 3)]
    pub tier: i64,
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    #[schema(value_type = crate::openapi::vocabulary::Channel, inline)]
    pub channel: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyBody {
    /// The customer record the claimed identifiers matched.
    #[schema(format = Uuid)]
    pub customer_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// `true` to go ahead with the recovery, `false` to refuse it.
    pub approve: bool,
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// Hold the case open this many hours for "this wasn't me" before it resolves.
    #[schema(minimum = 0, maximum = 720)]
    pub cooling_off_hours: Option<u32>,
}

/// Applies `command` to the case `id` as `principal`.
pub async fn run_command(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut command: CaseCommand,
) -> ApiResult<CaseView> {
    let tenant = principal.tenant()?;
    let mut case = load_case(state, tenant, id).await?;
    if matches!(command, CaseCommand::RetryAction { action: None }) {
        // Who may work the case answers before what its actions allow.
        regain_core::case::may_work(&case, principal.actor)?;
        command = retry_after_lockdown(state, &case).await?.unwrap_or(command);
    }
    // Every step toward an action is preceded by a fresh risk assessment (issue 5): its route
    // (tier, approval, hold) is on the case before `apply` judges the step. A deactivation sent
    // again after a lockdown only makes the account safer: no hold or extra proof stops it.
    let toward_action = matches!(
        command,
        CaseCommand::Decide { approve: true, .. }
            | CaseCommand::RequestApproval { .. }
            | CaseCommand::Approve { .. }
            | CaseCommand::Execute
            | CaseCommand::RetryAction { action: None }
    );
    if toward_action {
        case = crate::risk::assess_and_record(state, case).await?;
        // Who may work the case answers first (the assessment may just have raised its tier),
        // then a critical risk, as a recovery hold does: nothing else matters yet.
        regain_core::case::may_work(&case, principal.actor)?;
        if case.risk_route().hold {
            let score = case.risk.as_ref().map_or(0, |r| r.score);
            return Err(regain_core::CaseError::RiskHold { score }.into());
        }
        crate::recovery::refuse_if_blocked(state, &case).await?;
    }
    match &command {
        CaseCommand::Assign { assignee: Some(staff_id) } => {
            let staff = state.store.staff(*staff_id).await?.map(|r| r.staff);
            let tier = staff.as_ref().filter(|s| s.tenant_id == Some(tenant) && s.active).and_then(|s| s.role.tier());
            match tier {
                None => {
                    return Err(ValidationError::new("assignee", "no agent, supervisor or analyst with this id").into())
                }
                Some(t) if t < case.tier.get() => {
                    return Err(ValidationError::new(
                        "assignee",
                        format!("the case is at tier {}; this person works tier {t}", case.tier.get()),
                    )
                    .into())
                }
                Some(_) => {}
            }
        }
        CaseCommand::Identify { customer_id } => {
            // Staff identify a caller from what they claim, never by naming a record; a client
            // system that has already authenticated the customer (its own signed-in pages) may.
            if !matches!(principal.actor, regain_core::Actor::ApiKey { .. }) {
                return Err(ApiError::Refused {
                    status: axum::http::StatusCode::FORBIDDEN,
                    code: "use-identification",
                    detail: "staff identify the customer from what the caller claims: \
                             POST /api/v1/cases/{id}/identification"
                        .into(),
                });
            }
            if state.store.customer(tenant, *customer_id).await?.is_none() {
                return Err(ValidationError::new("customer_id", "no customer with this id").into());
            }
            crate::verification::refuse_if_held(state, tenant, *customer_id).await?;
        }
        // Going ahead needs the tenant's assurance policy satisfied, and no hold (issue 4).
        CaseCommand::Decide { approve: true, .. } => crate::verification::require_verified(state, &case).await?,
        // A hold stops every step toward an action, whoever takes it (SECURITY.md T7).
        CaseCommand::RequestApproval { .. }
        | CaseCommand::Approve { .. }
        | CaseCommand::Execute
        | CaseCommand::RetryAction { action: None } => {
            if let Some(customer) = case.customer_id {
                crate::verification::refuse_if_held(state, tenant, customer).await?;
            }
            // A band that rose after the decision still asks for its extra proof (issue 5).
            if case.risk_route().step_up {
                crate::verification::require_verified(state, &case).await?;
            }
            // A contact change goes ahead only with its new contact proven (M4).
            crate::recovery::contact::require_confirmed(state, &case).await?;
        }
        _ => {}
    }
    // While Regain is still performing the case's action, staff do not complete it by hand:
    // the action would run on a closed case. Once it is done (a reset link out, waiting for
    // the customer) or has failed, they may.
    if matches!(command, CaseCommand::Complete { .. } | CaseCommand::RetryAction { .. }) {
        use regain_core::action::ActionKind;
        let actions = state.store.case_actions(tenant, case.id).await?;
        if let Some(pending) = actions.iter().find(|a| a.state == "pending") {
            let detail = match pending.action {
                ActionKind::Deactivate => format!(
                    "Regain still owes the account system this case's deactivation (attempt {} so far; it is retried \
                     while the account system is away); complete the case once it is done",
                    pending.attempts
                ),
                other => format!(
                    "Regain is still performing this case's {other} (attempt {} so far); it completes the case when done",
                    pending.attempts
                ),
            };
            return Err(ApiError::Conflict { code: "action-pending", detail });
        }
    }
    // The policy's cooling-off for the kind (longer by risk band) is a minimum the caller can
    // lengthen, not shorten.
    let command = match command {
        CaseCommand::Complete { cooling_off_hours } => {
            let (policy, _) = crate::verification::tenant_policy(state, tenant).await?;
            let floor = policy.cooling_off_hours(case.kind, case.risk.as_ref().map(|r| r.band));
            CaseCommand::Complete { cooling_off_hours: Some(cooling_off_hours.unwrap_or(0).max(floor)) }
        }
        other => other,
    };
    let name = command.name();
    // A deactivation sent again after a lockdown (`retry_after_lockdown`).
    let resend = matches!(command, CaseCommand::RetryAction { action: Some(_) });
    let (next, mut events) = apply(&case, command, principal.actor, state.now())?;
    if events.is_empty() {
        return case_detail(state, &case).await;
    }
    // An action queued on entering `executing` is written with the case (issue 6), and a
    // contact change released takes effect with it.
    let mut effects = crate::recovery::effects_of(state, &next, &events).await?;
    let (more_events, more_effects) = crate::recovery::contact::on_release(state, &next, &events).await?;
    events.extend(more_events);
    effects.extend(more_effects);
    // A recovery staff carried out by hand (one Regain does not perform, or whose action
    // failed) is told to every registered address like the others (SECURITY.md P3). One whose
    // action Regain did has told them already, or changed nothing (a reset link never used).
    if name == "complete" {
        if let Some(customer_id) = next.customer_id {
            let actions = state.store.case_actions(tenant, next.id).await?;
            if !actions.iter().any(|a| a.state == "done") {
                let tenant_record = state.store.tenant(tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
                if let Some(customer) = state.store.customer(tenant, customer_id).await? {
                    let what = regain_core::action::ActionKind::for_case(next.kind).notice();
                    effects.extend(
                        crate::recovery::recovery_notices(state, &tenant_record, &next, &customer, what).await?,
                    );
                }
            }
        }
    }
    // A step toward an action commits only while no other recovery holds the case (G5), as
    // the customer's cases stand then; one that began since the check above is refused
    // with its reason.
    let guarded = toward_action && next.kind != regain_core::CaseKind::CompromisedAccount;
    if let Some(customer) = next.customer_id {
        if guarded {
            effects.insert(0, crate::recovery::unheld(&next, customer));
        } else if resend {
            // Checked above from a read; judged again in the transaction, ordered with a
            // re-proofing's lift queued meanwhile (which takes the same lock, below).
            let action = regain_core::action::ActionKind::Lockdown;
            effects.insert(0, Effect::RequireNoPendingAction { tenant, customer, action });
        } else if toward_action {
            // A compromised-account case's step toward its lockdown, or its lift: ordered
            // with a deactivation sent again by the customer's row lock.
            effects.insert(0, Effect::LockCustomer { tenant, customer });
        }
    }
    match crate::webhooks::commit(state, &next, &events, &principal.actor, effects).await {
        Ok(()) => {}
        Err(regain_store::StoreError::Conflict) if guarded => {
            crate::recovery::refuse_if_blocked(state, &case).await?;
            return Err(regain_store::StoreError::Conflict.into());
        }
        // Answered as the read above would have: a lift queued since.
        Err(regain_store::StoreError::Conflict) if resend => {
            retry_after_lockdown(state, &case).await?;
            return Err(regain_store::StoreError::Conflict.into());
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(case_id = %next.id, command = name, from = %case.state, to = %next.state, "case command");
    case_detail(state, &next).await
}

/// What `retry-action` does on a case whose lockdown is done (`None` on any other case): a
/// lockdown is not done twice, and is lifted only by re-proofing on a new case. What may go
/// again is a deactivation owed to the account system that it refused (SECURITY.md L0), once
/// the cause is fixed there, while the lockdown is in force — and not while a re-proofing is
/// lifting it, whose activation must come last.
async fn retry_after_lockdown(state: &AppState, case: &regain_core::Case) -> ApiResult<Option<CaseCommand>> {
    use regain_core::action::ActionKind;
    let actions = state.store.case_actions(case.tenant_id, case.id).await?;
    let done = |kind: ActionKind| actions.iter().any(|a| a.action == kind && a.state == "done");
    let owed = |s: &str| actions.iter().any(|a| a.action == ActionKind::Deactivate && a.state == s);
    if !done(ActionKind::Lockdown) {
        return Ok(None);
    }
    // Answered here, from this one read: a later read could find it done and let the case's
    // own action, the lockdown, through.
    if owed("pending") {
        return Err(ApiError::Conflict {
            code: "action-pending",
            detail: "Regain still owes the account system this case's deactivation; it is retried while the \
                     account system is away"
                .into(),
        });
    }
    let lockdown_done = || ApiError::Conflict {
        code: "lockdown-done",
        detail: "this case's lockdown is done; only a new compromised_account case, opened and verified after it, \
                 lifts it"
            .into(),
    };
    let Some(customer_id) = case.customer_id else { return Err(lockdown_done()) };
    let frozen =
        state.store.customer(case.tenant_id, customer_id).await?.is_some_and(|c| c.status == CustomerStatus::Frozen);
    // (Owed once per lockdown: no unlock crosses a lockdown in force.)
    if !owed("failed") || done(ActionKind::Deactivate) || !frozen {
        return Err(lockdown_done());
    }
    if state.store.action_pending(case.tenant_id, customer_id, ActionKind::Lockdown).await? {
        return Err(ApiError::Conflict {
            code: "action-pending",
            detail: "a re-proofing is lifting the lockdown; the account system's activation comes last, so no \
                     deactivation is sent now"
                .into(),
        });
    }
    Ok(Some(CaseCommand::RetryAction { action: Some(ActionKind::Deactivate) }))
}

fn staff_id(field: &str, value: &str) -> Result<StaffId, ValidationError> {
    StaffId::parse(field, value)
}

/// Declares one command route: its handler, path, permission and how the body becomes a command.
macro_rules! command_route {
    ($handler:ident, $path:literal, $perm:ident, $doc:literal, $body:ty, |$req:ident| $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "case commands", params(("id" = String, Path)), request_body = $body,
            security(("bearer" = []), ("cookie" = [])), responses(
                (status = 200, body = CaseView),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The case's state does not allow this", body = Problem, content_type = "application/problem+json"),
                (status = 422, body = Problem, content_type = "application/problem+json"),
                (status = 423, description = "A step toward an action while the customer is locked down (`locked-down`), their recovery is on hold (`recovery-held`) or the case is on a risk hold (`risk-hold`)", body = Problem, content_type = "application/problem+json"),
            ))]
        pub async fn $handler(
            State(state): State<AppState>,
            auth: Authorized<perm::$perm>,
            Path(id): Path<String>,
            ApiJson($req): ApiJson<$body>,
        ) -> ApiResult<Json<CaseView>> {
            let command: Result<CaseCommand, ValidationError> = $command;
            Ok(Json(run_command(&state, &auth, &id, command?).await?))
        }
    };
    ($handler:ident, $path:literal, $perm:ident, $doc:literal, $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "case commands", params(("id" = String, Path)),
            security(("bearer" = []), ("cookie" = [])), responses(
                (status = 200, body = CaseView),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The case's state does not allow this", body = Problem, content_type = "application/problem+json"),
                (status = 423, description = "A step toward an action while the customer is locked down (`locked-down`), their recovery is on hold (`recovery-held`) or the case is on a risk hold (`risk-hold`)", body = Problem, content_type = "application/problem+json"),
            ))]
        pub async fn $handler(
            State(state): State<AppState>,
            auth: Authorized<perm::$perm>,
            Path(id): Path<String>,
        ) -> ApiResult<Json<CaseView>> {
            Ok(Json(run_command(&state, &auth, &id, $command).await?))
        }
    };
}

command_route!(
    assign,
    "/api/v1/cases/{id}/assign",
    CasesWork,
    "Take the case, hand it to someone, or return it to the queue.",
    AssignBody,
    |req| Ok(CaseCommand::Assign { assignee: req.assignee.as_deref().map(|a| staff_id("assignee", a)).transpose()? })
);
command_route!(
    escalate,
    "/api/v1/cases/{id}/escalate",
    CasesWork,
    "Move the case up a tier; it returns to that tier's queue.",
    EscalateBody,
    |req| Ok(CaseCommand::Escalate { tier: Tier::new("tier", req.tier)?, reason: req.reason })
);
command_route!(
    change_channel,
    "/api/v1/cases/{id}/channel",
    CasesWork,
    "Record that the conversation moved to another channel.",
    ChannelBody,
    |req| Ok(CaseCommand::ChangeChannel { channel: Channel::parse("channel", &req.channel)? })
);
command_route!(add_note, "/api/v1/cases/{id}/notes", CasesWork, "Add a note to the timeline.", NoteBody, |req| Ok(
    CaseCommand::AddNote { text: req.text }
));
command_route!(
    start_identification,
    "/api/v1/cases/{id}/start-identification",
    CasesWork,
    "Begin identifying the customer.",
    CaseCommand::StartIdentification
);
command_route!(
    identify,
    "/api/v1/cases/{id}/identify",
    CasesWork,
    "Record the customer the claimed identifiers matched; verification follows.",
    IdentifyBody,
    |req| Ok(CaseCommand::Identify { customer_id: CustomerId::parse("customer_id", &req.customer_id)? })
);
command_route!(
    decide,
    "/api/v1/cases/{id}/decide",
    CasesWork,
    "Close verification: go ahead with the recovery, or refuse it.",
    DecideBody,
    |req| Ok(CaseCommand::Decide { approve: req.approve, reason: req.reason })
);
command_route!(
    request_approval,
    "/api/v1/cases/{id}/request-approval",
    CasesWork,
    "Ask a supervisor to approve the action (four eyes).",
    ReasonBody,
    |req| Ok(CaseCommand::RequestApproval { reason: req.reason })
);
command_route!(
    approve,
    "/api/v1/cases/{id}/approve",
    CasesApprove,
    "Approve the action: a supervisor other than the one who asked.",
    ReasonBody,
    |req| Ok(CaseCommand::Approve { reason: req.reason })
);
command_route!(
    deny,
    "/api/v1/cases/{id}/deny",
    CasesApprove,
    "Deny the action: a supervisor other than the one who asked.",
    ReasonBody,
    |req| Ok(CaseCommand::Deny { reason: req.reason })
);
command_route!(
    execute,
    "/api/v1/cases/{id}/execute",
    CasesWork,
    "Start executing the recovery (refused while approval is required).",
    CaseCommand::Execute
);
command_route!(
    retry_action,
    "/api/v1/cases/{id}/retry-action",
    CasesWork,
    "Have Regain perform the case's action again: a new reset link when the last one expired unused, or an action that failed once its cause is fixed; on a lockdown's case, a deactivation the account system refused.",
    CaseCommand::RetryAction { action: None }
);
command_route!(
    complete,
    "/api/v1/cases/{id}/complete",
    CasesWork,
    "The action ran: resolve, or hold in cooling-off first.",
    CompleteBody,
    |req| Ok(CaseCommand::Complete { cooling_off_hours: req.cooling_off_hours })
);
command_route!(
    release,
    "/api/v1/cases/{id}/release",
    CasesWork,
    "End cooling-off once its time has passed.",
    CaseCommand::Release
);
command_route!(
    repudiate,
    "/api/v1/cases/{id}/repudiate",
    CasesWork,
    "Record \"this wasn't me\" from a registered contact: cancels and escalates to security.",
    ReasonBody,
    |req| Ok(CaseCommand::Repudiate { reason: req.reason })
);
command_route!(
    cancel,
    "/api/v1/cases/{id}/cancel",
    CasesWork,
    "Cancel the case before anything was executed.",
    ReasonBody,
    |req| Ok(CaseCommand::Cancel { reason: req.reason })
);
