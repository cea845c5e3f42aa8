//! The built-in connector: the actions Regain performs on the directory inside it. Each one
//! reads the case and the customer, decides, and commits the step, its effects and the
//! action's end in one transaction.

use std::collections::BTreeMap;

use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::case::CaseCommand;
use regain_core::{Actor, Case, CaseState, Customer, CustomerStatus, Tenant};
use regain_store::{ClaimedAction, Effect, LinkPurpose, StoreError};

use super::connector::{AccountChange, ConnectorConfig};
use super::{apply_all, link_message, Destination, CONNECTOR_BUILTIN};
use crate::error::ApiError;
use crate::state::AppState;

/// Why an action did not happen this time.
#[derive(Debug)]
pub enum ActionError {
    /// Try again later (a database hiccup, a case changed meanwhile, a connector down).
    Retry(String),
    /// It will not work: say so on the case.
    Fail(String),
    /// Not yet: it waits on another action (a lift behind an owed deactivation). Looked at again
    /// shortly, with no attempt counted, for as long as the other is pending.
    Wait(String),
}

impl ActionError {
    /// What went wrong, or what it waits on.
    fn into_message(self) -> String {
        match self {
            Self::Retry(m) | Self::Fail(m) | Self::Wait(m) => m,
        }
    }
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Retry("the case changed meanwhile".into()),
            other => Self::Retry(other.to_string()),
        }
    }
}

impl From<ApiError> for ActionError {
    fn from(e: ApiError) -> Self {
        Self::Retry(e.to_string())
    }
}

/// Performs `action` and commits it, or says why not.
pub async fn perform(state: &AppState, action: &ClaimedAction) -> Result<(), ActionError> {
    let started = state.now();
    let tenant =
        state.store.tenant(action.tenant_id).await?.ok_or_else(|| ActionError::Fail("no such tenant".into()))?;
    // The connector the action was queued for, as configured now.
    let connector = match (action.connector.as_str(), state.config.connector(tenant.slug.as_str())) {
        (CONNECTOR_BUILTIN, _) => None,
        (kind, Some(config)) if config.kind() == kind => Some(config.clone()),
        (kind, _) => return Err(ActionError::Fail(format!("the tenant has no {kind} connector configured any more"))),
    };
    // Owed to the account system whatever the case has come to since.
    if action.action == ActionKind::Deactivate {
        return deactivate_owed(state, connector.as_ref(), action).await;
    }
    let case = state
        .store
        .case(action.tenant_id, action.case_id)
        .await?
        .ok_or_else(|| ActionError::Fail("the case is gone".into()))?;
    if case.state != CaseState::Executing {
        return Err(ActionError::Fail(format!("the case is {}, not executing", case.state)));
    }
    let customer = state
        .store
        .customer(action.tenant_id, action.customer_id)
        .await?
        .ok_or_else(|| ActionError::Fail("the customer's record was erased".into()))?;
    // A lockdown ends every other recovery of the customer, also the ones already under way.
    if customer.status == CustomerStatus::Frozen && action.action != ActionKind::Lockdown {
        return Err(ActionError::Fail(
            "the account is locked down; nothing else is done to it until re-proofing".into(),
        ));
    }
    if action.action != ActionKind::Lockdown {
        if super::opened_before_lockdown(state, &case, customer.id).await?.is_some() {
            return Err(ActionError::Fail(
                "the account was locked down after this case was opened; it does not proceed after the re-proofing"
                    .into(),
            ));
        }
        // Approved before another recovery began to hold it (G5): it waits for staff to retry.
        match super::held_by_others(state, &case, customer.id).await {
            Ok(()) => {}
            Err(ApiError::Conflict { detail, .. }) => return Err(ActionError::Fail(detail)),
            Err(e) => return Err(e.into()),
        }
    }
    let (next, events, mut effects) = match action.action {
        ActionKind::PasswordReset => send_reset_link(state, &tenant, &case, &customer).await?,
        ActionKind::UsernameReminder => send_username(state, &tenant, &case, &customer).await?,
        ActionKind::Unlock => unlock(state, &tenant, &case, &customer, connector.as_ref(), &action.id).await?,
        ActionKind::MfaReset => reset_factors(state, &tenant, &case, &customer, connector.as_ref()).await?,
        ActionKind::ContactChange => super::contact::schedule(state, &tenant, &case, &customer).await?,
        // A compromised-account case opened after the lockdown in force is its re-proofing: its
        // proofs were all given since. One opened before (its proofs may be to what the
        // intruder set up) neither locks again nor lifts.
        ActionKind::Lockdown if customer.status == CustomerStatus::Frozen => {
            let since = state.store.last_action_end(case.tenant_id, customer.id, ActionKind::Lockdown, false).await?;
            if since.is_none_or(|since| case.created_at <= since) {
                return Err(ActionError::Fail(
                    "the account was locked down after this case was opened; re-proofing takes a new \
                     compromised_account case, opened and verified after the lockdown"
                        .into(),
                ));
            }
            lift_lockdown(state, &tenant, &case, &customer, connector.as_ref(), &action.id).await?
        }
        ActionKind::Lockdown => lockdown(state, &tenant, &case, &customer, connector.as_ref(), &action.id).await?,
        // Handled before the case is read, above; here for completeness.
        ActionKind::Deactivate => return deactivate_owed(state, connector.as_ref(), action).await,
    };
    let locking = action.action == ActionKind::Lockdown && customer.status != CustomerStatus::Frozen;
    // Done here alone (a link or a message sent, a change scheduled: nothing asked of an
    // account system), it is recorded only while no other recovery holds the case (G5): one
    // approved since the check above makes it a conflict, and the next attempt fails it with
    // the reason. A change an account system has made (an unlock through a connector) is
    // recorded whatever began meanwhile.
    let remote = connector.is_some() && matches!(action.action, ActionKind::Unlock | ActionKind::MfaReset);
    if !remote && action.action != ActionKind::Lockdown {
        effects.insert(0, super::unheld(&case, customer.id));
    }
    effects.push(Effect::FinishAction { id: action.id.clone() });
    let committed = crate::webhooks::commit(state, &next, &events, &Actor::System, effects).await;
    // An unlock and a lockdown of the same customer, on two workers, each tell the account
    // system first and commit after; whichever order their calls arrive in, it must end
    // deactivated, as Regain records the account frozen.
    match (connector.as_ref(), committed) {
        (Some(connector), Err(e)) if action.action == ActionKind::Unlock => {
            Err(relock_if_frozen(state, connector, action, e.into()).await)
        }
        (Some(connector), Ok(())) if locking => {
            deactivate_again_after_unlock(state, connector, action, &customer, started).await;
            Ok(())
        }
        (_, committed) => Ok(committed?),
    }
}

/// How far two workers' clocks may be apart, for [`deactivate_again_after_unlock`]'s window.
const CLOCK_SKEW_MINUTES: i64 = 1;

/// An unlock through a connector whose commit failed: when the reason is a lockdown of the
/// customer committed meanwhile, the lockdown's deactivation may have reached the account
/// system before this unlock's activation did, leaving the account open there. It is told to
/// deactivate it again (SECURITY.md L0).
async fn relock_if_frozen(
    state: &AppState,
    connector: &ConnectorConfig,
    action: &ClaimedAction,
    error: ActionError,
) -> ActionError {
    let customer = match state.store.customer(action.tenant_id, action.customer_id).await {
        Ok(Some(customer)) if customer.status == CustomerStatus::Frozen => customer,
        Ok(_) => return error,
        Err(e) => {
            tracing::error!(action_id = %action.id, error = %e, "an unlock did not commit and the account's lockdown could not be read");
            return error;
        }
    };
    let key = format!("{}:relock", action.id);
    match remote(connector, &customer, &key, AccountChange::Deactivate, state.now()).await {
        Ok(answer) => ActionError::Fail(format!(
            "the account was locked down while this unlock was being made; the account system was told to \
             deactivate it again ({}: {answer})",
            connector.kind()
        )),
        Err(e) => {
            let e = e.into_message();
            // This action is over (the lockdown failed it): the deactivation is owed by an
            // action of its own, on the lockdown's case, which retries until it goes through.
            tracing::warn!(
                action_id = %action.id, customer_id = %customer.id, error = %e,
                "the account was locked down while an unlock was being made, and the account system could not be told \
                 to deactivate it again yet: it may be active there"
            );
            // Owed on the lockdown's case, for the security team; on this one if none is found.
            let case = match lockdown_cases(state, &customer).await {
                Ok(cases) => cases.first().map_or(action.case_id, |(id, _)| *id),
                Err(e) => {
                    tracing::warn!(customer_id = %customer.id, error = %e, "could not read the customer's lockdown case");
                    action.case_id
                }
            };
            let owed = owe_deactivation(state, connector, &customer, case).await;
            ActionError::Fail(format!(
                "the account was locked down while this unlock was being made, and the account system could not be \
                 told to deactivate it again ({e}): it may be active there; {owed}"
            ))
        }
    }
}

/// The customer's lockdown cases still open: compromised-account cases in `executing` whose
/// lockdown is done, newest first (the one in force), each with its actions.
async fn lockdown_cases(
    state: &AppState,
    customer: &Customer,
) -> Result<Vec<(regain_core::CaseId, Vec<regain_store::ActionEntry>)>, StoreError> {
    let executing = [CaseState::Executing];
    let mut found = Vec::new();
    for case in state.store.customer_cases_in(customer.tenant_id, customer.id, &executing).await? {
        if case.kind != regain_core::CaseKind::CompromisedAccount {
            continue;
        }
        let actions = state.store.case_actions(customer.tenant_id, case.id).await?;
        if actions.iter().any(|a| a.action == ActionKind::Lockdown && a.state == "done") {
            found.push((case.id, actions));
        }
    }
    Ok(found)
}

/// Whether a deactivation of `customer` is still owed to the account system: queued and not
/// yet done, on whichever case it went to (a lockdown's, or the unlock's own when no lockdown
/// case was found).
async fn deactivation_owed(state: &AppState, customer: &Customer) -> Result<bool, StoreError> {
    state.store.action_pending(customer.tenant_id, customer.id, ActionKind::Deactivate).await
}

/// Whether `action` is a deactivation still owed (queued or being retried).
fn owes_deactivation(action: &regain_store::ActionEntry) -> bool {
    action.action == ActionKind::Deactivate && action.state == "pending"
}

/// Queues a [`ActionKind::Deactivate`] for `customer` on `case`, after a call to deactivate the
/// account again failed (SECURITY.md L0); says what became of it, for the case and the log.
async fn owe_deactivation(
    state: &AppState,
    connector: &ConnectorConfig,
    customer: &Customer,
    case: regain_core::CaseId,
) -> &'static str {
    // Both calls to deactivate again can fail (the unlock's and the lockdown's): owed once.
    match state.store.case_actions(customer.tenant_id, case).await {
        Ok(actions) if actions.iter().any(owes_deactivation) => {
            return "a deactivation is already queued and retried until the account system takes it";
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(case_id = %case, error = %e, "could not read the case's actions; queueing a deactivation")
        }
    }
    let owed = regain_store::NewAction {
        id: crate::verification::new_id(state),
        tenant_id: customer.tenant_id,
        case_id: case,
        customer_id: customer.id,
        action: ActionKind::Deactivate,
        connector: connector.kind().to_owned(),
        created_at: state.now(),
    };
    let id = owed.id.clone();
    match state.store.apply_effects(state.now(), &[Effect::QueueAction(owed)]).await {
        Ok(()) => {
            tracing::info!(customer_id = %customer.id, case_id = %case, action_id = %id, "a deactivation is owed to the account system; queued");
            "a deactivation is queued and retried until the account system takes it"
        }
        Err(e) => {
            tracing::error!(
                customer_id = %customer.id, case_id = %case, error = %e,
                "a deactivation is owed to the account system and could not be queued: the account may be active \
                 there; deactivate it by hand"
            );
            "a deactivation could not be queued either: deactivate the account there by hand"
        }
    }
}

/// A deactivation owed to the account system (SECURITY.md L0): sent, under the action's id as
/// its idempotency key, while Regain still has the account locked down; not sent once a
/// re-proofing lifted the lockdown. Retried for as long as the account system is away
/// (`worker.rs`); a refusal fails it, for staff to have it sent again once the cause is fixed
/// (`retry-action` on the lockdown's case) or to deactivate the account there by hand.
/// Recorded on the case's timeline while it is executing (the lockdown's case is, until it is
/// closed), else as an audit entry.
async fn deactivate_owed(
    state: &AppState,
    connector: Option<&ConnectorConfig>,
    action: &ClaimedAction,
) -> Result<(), ActionError> {
    let Some(connector) = connector else {
        return Err(ActionError::Fail(
            "a deactivation is owed only to a tenant's account system; the directory inside Regain locks with the \
             customer's record"
                .into(),
        ));
    };
    let customer = state
        .store
        .customer(action.tenant_id, action.customer_id)
        .await?
        .ok_or_else(|| ActionError::Fail("the customer's record was erased".into()))?;
    let detail = if customer.status == CustomerStatus::Frozen {
        // A re-proofing does not lift the lockdown while this is pending (`lift_lockdown`), so
        // its activation cannot arrive before this deactivation.
        let answer = remote(connector, &customer, &action.id, AccountChange::Deactivate, state.now()).await?;
        format!(
            "an unlock crossed the lockdown; the account system was told to deactivate the account again ({}: {answer})",
            connector.kind()
        )
    } else {
        "an unlock crossed the lockdown; not sent again, as a re-proofing has lifted the lockdown since".to_owned()
    };
    let finish = Effect::FinishAction { id: action.id.clone() };
    let case = state.store.case(action.tenant_id, action.case_id).await?;
    let step = case.filter(|c| c.state == CaseState::Executing).and_then(|c| {
        let command = record(ActionKind::Deactivate, ActionOutcome::Performed, detail.clone());
        regain_core::case::apply(&c, command, Actor::System, state.now())
            .inspect_err(|e| tracing::warn!(action_id = %action.id, error = %e, "an owed deactivation is not on the case's timeline"))
            .ok()
    });
    match step {
        Some((next, events)) => crate::webhooks::commit(state, &next, &events, &Actor::System, vec![finish]).await?,
        None => {
            state.store.apply_effects(state.now(), &[finish]).await?;
            let mut audit = regain_store::AuditRecord::new(
                Some(action.tenant_id),
                Actor::System,
                "case.action_performed",
                state.now(),
            );
            audit.case_id = Some(action.case_id);
            audit.customer_id = Some(customer.id);
            audit.data = serde_json::json!({"action": ActionKind::Deactivate.as_str(), "detail": detail});
            if let Err(e) = state.store.record_audit(&audit).await {
                tracing::error!(action_id = %action.id, error = %e, "an owed deactivation is done; its audit entry could not be written");
            }
        }
    }
    tracing::info!(action_id = %action.id, customer_id = %customer.id, %detail, "an owed deactivation is done");
    Ok(())
}

/// After a lockdown through a connector committed: when an unlock of the customer ended while
/// it was being made (done on another worker, or failed by this lockdown while its call was
/// out), that unlock's activation may have reached the account system after this lockdown's
/// deactivation. It is sent again, under a key of its own (SECURITY.md L0).
async fn deactivate_again_after_unlock(
    state: &AppState,
    connector: &ConnectorConfig,
    action: &ClaimedAction,
    customer: &Customer,
    started: regain_core::Timestamp,
) {
    let since = started - chrono::Duration::minutes(CLOCK_SKEW_MINUTES);
    let ended = state.store.last_action_end(action.tenant_id, customer.id, ActionKind::Unlock, true).await;
    match ended {
        Ok(Some(at)) if at >= since => {}
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(action_id = %action.id, error = %e, "could not read the customer's unlocks; deactivating again")
        }
    }
    let key = format!("{}:again", action.id);
    match remote(connector, customer, &key, AccountChange::Deactivate, state.now()).await {
        Ok(answer) => tracing::info!(
            action_id = %action.id, customer_id = %customer.id, %answer,
            "an unlock ended while the lockdown was being made; the account system was told to deactivate again"
        ),
        Err(e) => {
            let e = e.into_message();
            tracing::warn!(
                action_id = %action.id, customer_id = %customer.id, error = %e,
                "an unlock ended while the lockdown was being made, and the account system could not be told to \
                 deactivate again yet: the account may be active there"
            );
            owe_deactivation(state, connector, customer, action.case_id).await;
        }
    }
}

use super::Step;

fn record(action: ActionKind, outcome: ActionOutcome, detail: String) -> CaseCommand {
    CaseCommand::RecordAction { action, outcome, detail: Some(detail) }
}

/// The verified addresses to send to: every verified email, else every verified phone.
fn registered(customer: &Customer) -> Vec<Destination> {
    let emails: Vec<_> = customer
        .emails
        .iter()
        .filter(|e| e.verified)
        .map(|e| ("email", e.address.as_str().to_owned(), e.address.masked()))
        .collect();
    if !emails.is_empty() {
        return emails;
    }
    customer
        .phones
        .iter()
        .filter(|p| p.verified)
        .map(|p| ("sms", p.number.as_str().to_owned(), p.number.masked()))
        .collect()
}

/// A single-use link to the reset page, to one registered, verified contact (the first email,
/// else the first phone). The case waits in `executing` for the customer to use it.
async fn send_reset_link(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
) -> Result<Step, ActionError> {
    let Some(to) = registered(customer).into_iter().next() else {
        return Err(ActionError::Fail("the customer has no verified email or phone to send the reset link to".into()));
    };
    let now = state.now();
    let minutes = state.config.reset_link_minutes;
    let lifetime = chrono::Duration::minutes(i64::from(minutes));
    let values = BTreeMap::from([("minutes", minutes.to_string())]);
    let effects = link_message(
        state,
        tenant,
        case,
        customer,
        LinkPurpose::Reset,
        "reset",
        lifetime,
        &to,
        "password_reset_link",
        values,
    )
    .await?;
    let masked = &to.2;
    let detail = format!("reset link sent to {masked}, valid {minutes} minutes");
    let (next, events) =
        apply_all(case, vec![record(ActionKind::PasswordReset, ActionOutcome::LinkSent, detail)], Actor::System, now)?;
    Ok((next, events, effects.into()))
}

/// The username, to the registered contacts; the case completes.
async fn send_username(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
) -> Result<Step, ActionError> {
    let to = registered(customer);
    if to.is_empty() {
        return Err(ActionError::Fail("the customer has no verified email or phone to send the username to".into()));
    }
    let mut effects = Vec::new();
    let mut sent_to = Vec::new();
    for (channel, address, masked) in to {
        let values = BTreeMap::from([("username", customer.username.clone())]);
        let message = crate::verification::compose(
            state,
            tenant,
            Some(case),
            customer.id,
            channel,
            &address,
            masked.clone(),
            "username_reminder",
            values,
        )
        .await?;
        effects.push(Effect::Message(message));
        sent_to.push(masked);
    }
    let detail = format!("username sent to {}", sent_to.join(", "));
    finish(state, tenant, case, customer, ActionKind::UsernameReminder, detail, effects).await
}

/// Clears the lockout — in the directory inside Regain, and through the tenant's connector
/// when the account lives elsewhere; the case completes. A disabled or frozen record stays so:
/// unlocking is not enabling, and a lockdown lifts only by re-proofing.
async fn unlock(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    connector: Option<&ConnectorConfig>,
    key: &str,
) -> Result<Step, ActionError> {
    let mut effects = Vec::new();
    let local = match customer.status {
        CustomerStatus::Locked => {
            effects.push(Effect::SetStatus { customer: customer.id, status: CustomerStatus::Active });
            "lockout cleared"
        }
        CustomerStatus::Active => "the account was not locked",
        CustomerStatus::Disabled => {
            return Err(ActionError::Fail("the account is disabled by the tenant; unlocking does not enable it".into()))
        }
        CustomerStatus::Frozen => {
            return Err(ActionError::Fail("the account is locked down; only re-proofing lifts that".into()))
        }
    };
    let detail = match connector {
        None => local.to_owned(),
        Some(connector) => {
            let answer = remote(connector, customer, key, AccountChange::Activate, state.now()).await?;
            format!("{}: {answer}", connector.kind())
        }
    };
    finish(state, tenant, case, customer, ActionKind::Unlock, detail, effects).await
}

/// How long a re-enrollment link works.
pub const ENROLL_LINK_HOURS: i64 = 24;

fn factor_words(factor: regain_core::policy::Factor) -> &'static str {
    use regain_core::policy::Factor;
    match factor {
        Factor::Totp => "authenticator app",
        Factor::RecoveryCodes => "recovery codes",
        Factor::Passkeys => "passkeys",
    }
}

/// The MFA reset: the factors the tenant's policy names (`recovery.mfa_reset_removes`, by
/// default the authenticator app and the saved recovery codes) are removed,
/// every session ends (SECURITY.md P2), and a single-use link to set up two-step sign-in again
/// goes to a registered contact; the case completes and every address is told.
async fn reset_factors(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    connector: Option<&ConnectorConfig>,
) -> Result<Step, ActionError> {
    if let Some(connector) = connector {
        return Err(ActionError::Fail(format!(
            "the tenant's accounts are changed through its {} connector, which has no way to reset second factors; \
             do it in the tenant's system and complete the case",
            connector.kind()
        )));
    }
    let Some(to) = registered(customer).into_iter().next() else {
        return Err(ActionError::Fail("the customer has no verified email or phone for the re-enrollment link".into()));
    };
    let (policy, _) = crate::verification::tenant_policy(state, case.tenant_id).await?;
    let factors = policy.recovery.mfa_reset_removes.clone();
    let lifetime = chrono::Duration::hours(ENROLL_LINK_HOURS);
    let values = BTreeMap::from([("hours", ENROLL_LINK_HOURS.to_string())]);
    let [link, message] = link_message(
        state,
        tenant,
        case,
        customer,
        LinkPurpose::Enroll,
        "enroll",
        lifetime,
        &to,
        "mfa_reenroll",
        values,
    )
    .await?;
    let masked = &to.2;
    let removed: Vec<&str> = factors.iter().map(|f| factor_words(*f)).collect();
    let effects = vec![
        Effect::RemoveFactors { customer: customer.id, factors },
        Effect::RevokeSessions { customer: customer.id },
        link,
        message,
    ];
    let detail = format!("{} removed, every session ended; re-enrollment link sent to {masked}", removed.join(" and "));
    finish(state, tenant, case, customer, ActionKind::MfaReset, detail, effects).await
}

/// The lockdown of a compromised account (SECURITY.md L0): every session ends, the saved
/// recovery codes are void, and the record is frozen — which stops every other recovery for the
/// customer, contact changes included, until re-proofing; through a connector, the account is
/// deactivated there too. Every address is told. The case stays `executing` for the security
/// analyst to review the recent changes, roll back the ones they select, and complete it.
async fn lockdown(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    connector: Option<&ConnectorConfig>,
    key: &str,
) -> Result<Step, ActionError> {
    let mut detail = "every session ended, recovery codes void, the record frozen until re-proofing; review the \
                      recent changes and roll back what was not the customer"
        .to_owned();
    if let Some(connector) = connector {
        let answer = remote(connector, customer, key, AccountChange::Deactivate, state.now()).await?;
        detail = format!("{detail}; {}: {answer}", connector.kind());
    }
    // The customer's row first, as every other change of the customer's account takes it
    // (a reset's guard and password, an MFA reset): on PostgreSQL two of them meet at that
    // row and wait, instead of each holding what the other needs next.
    let mut effects = vec![
        Effect::SetStatus { customer: customer.id, status: CustomerStatus::Frozen },
        Effect::RevokeSessions { customer: customer.id },
        Effect::RemoveFactors { customer: customer.id, factors: [regain_core::policy::Factor::RecoveryCodes].into() },
        Effect::EndRecoveries { customer: customer.id, except_case: case.id },
    ];
    let command = record(ActionKind::Lockdown, ActionOutcome::Performed, detail);
    let (next, events) = apply_all(case, vec![command], Actor::System, state.now())?;
    effects.extend(super::recovery_notices(state, tenant, &next, customer, ActionKind::Lockdown.notice()).await?);
    Ok((next, events, effects))
}

/// Re-proofing (SECURITY.md L0): a compromised-account case opened for an account that is
/// locked down, verified afresh and approved by a second person, lifts the lockdown; through a
/// connector, the account is active there again. The case completes and every address is told.
async fn lift_lockdown(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    connector: Option<&ConnectorConfig>,
    key: &str,
) -> Result<Step, ActionError> {
    let mut detail = "re-proofed: the lockdown is lifted".to_owned();
    if !customer.factors.password {
        detail.push_str("; the password was rolled back, so the customer sets a new one through a password reset");
    }
    if let Some(connector) = connector {
        // A deactivation still owed to the account system goes first: sent after this
        // activation, it would leave the re-proofed account closed there.
        if deactivation_owed(state, customer).await? {
            return Err(ActionError::Wait(
                "a deactivation owed to the account system since the lockdown is still pending; the lift follows it"
                    .into(),
            ));
        }
        let answer = remote(connector, customer, key, AccountChange::Activate, state.now()).await?;
        detail = format!("{detail}; {}: {answer}", connector.kind());
    }
    let effects = vec![Effect::SetStatus { customer: customer.id, status: CustomerStatus::Active }];
    let what = "The lockdown of your account was lifted";
    Ok(super::performed(state, tenant, case, customer, ActionKind::Lockdown, detail, what, Actor::System, effects)
        .await?)
}

/// A connector call, its failure sorted into retry or give up.
pub(super) async fn remote(
    connector: &ConnectorConfig,
    customer: &Customer,
    key: &str,
    change: AccountChange<'_>,
    now: regain_core::Timestamp,
) -> Result<String, ActionError> {
    super::connector::apply(connector, customer, key, change, now).await.map_err(|e| {
        if e.retry {
            ActionError::Retry(e.message)
        } else {
            ActionError::Fail(e.message)
        }
    })
}

/// The action is done: record it, complete the case (with the policy's cooling-off) and tell
/// every registered address.
async fn finish(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    action: ActionKind,
    detail: String,
    effects: Vec<Effect>,
) -> Result<Step, ActionError> {
    Ok(super::performed(state, tenant, case, customer, action, detail, action.notice(), Actor::System, effects).await?)
}
