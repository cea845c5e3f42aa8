//! The action worker: claims queued actions with a lease, performs each through its
//! connector, retries what failed for a passing reason with exponential backoff (capped, and
//! given up after [`regain_delivery::ATTEMPTS_MAX`] attempts — except a deactivation owed to
//! an account system, which is retried while it is away), puts off without counting an attempt
//! what waits on another action, and records on the case what failed for good.

use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::case::CaseCommand;
use regain_core::{Actor, CaseState};
use regain_store::{ClaimedAction, Effect, StoreError};

use super::actions::{perform, ActionError};
use crate::state::AppState;

/// How long a claimed action stays out of other workers' reach: longer than a whole batch can
/// take (10 actions, each at most four connector requests of 10 s: an unlock or a lockdown may
/// call twice, and SCIM looks the user up before each change), so no action of a slow batch is
/// claimed twice while it runs.
pub const LEASE_SECONDS: i64 = 10 * 60;
/// Actions claimed per round.
pub const BATCH: u32 = 10;
/// How long an action that waits on another ([`ActionError::Wait`]) is put off before it looks
/// again: one indexed read a minute, while the other may be retried for hours.
pub const WAIT_SECONDS: i64 = 60;

pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    crate::periodic::spawn_every(state.config.action_interval_ms, state, |state| async move {
        crate::periodic::drain_rounds("actions", BATCH, || perform_due(&state)).await;
        crate::periodic::drain_rounds("webhooks", crate::webhooks::BATCH, || crate::webhooks::deliver_due(&state))
            .await;
    })
}

/// Performs what is due now; returns how many actions were handled.
pub async fn perform_due(state: &AppState) -> Result<usize, StoreError> {
    let now = state.now();
    let lease = now + chrono::Duration::seconds(LEASE_SECONDS);
    let due = state.store.claim_actions(now, lease, BATCH).await?;
    let handled = due.len();
    for action in due {
        let attempt = action.attempts + 1;
        match perform(state, &action).await {
            Ok(()) => {
                tracing::info!(action_id = %action.id, case_id = %action.case_id, action = %action.action, attempt, "action performed")
            }
            // A deactivation owed to an account system (L0) is not given up while it is away.
            Err(ActionError::Retry(error))
                if attempt < regain_delivery::ATTEMPTS_MAX || action.action == ActionKind::Deactivate =>
            {
                let (at, wait) = crate::periodic::retry_after(state, attempt);
                tracing::warn!(action_id = %action.id, %error, attempt, retry_in_s = wait.as_secs(), "action will be retried");
                state.store.retry_action(&action.id, at, &error).await?;
            }
            Err(ActionError::Wait(reason)) => {
                tracing::debug!(action_id = %action.id, %reason, retry_in_s = WAIT_SECONDS, "action waits");
                let at = state.now() + chrono::Duration::seconds(WAIT_SECONDS);
                state.store.defer_action(&action.id, at, &reason).await?;
            }
            Err(ActionError::Retry(error) | ActionError::Fail(error)) => {
                let error = if action.action == ActionKind::Deactivate {
                    // retry-action sends it again only from a lockdown's case still executing.
                    let case = state.store.case(action.tenant_id, action.case_id).await?;
                    let retriable = case.is_some_and(|c| {
                        c.kind == regain_core::CaseKind::CompromisedAccount && c.state == CaseState::Executing
                    });
                    let then = if retriable {
                        "once the cause is fixed there, retry-action on this case sends the deactivation again (or \
                         deactivate it there by hand)"
                    } else {
                        "deactivate it there by hand"
                    };
                    format!("{error}; the account may still be active in the account system: {then}")
                } else {
                    error
                };
                tracing::error!(action_id = %action.id, case_id = %action.case_id, %error, attempt, "action failed");
                record_failure(state, &action, &error).await?;
            }
        }
    }
    Ok(handled)
}

/// Marks the action failed and, while the case still waits on it, says so on its timeline
/// for the agent and the supervisor.
async fn record_failure(state: &AppState, action: &ClaimedAction, error: &str) -> Result<(), StoreError> {
    let fail = Effect::FailAction { id: action.id.clone(), error: error.to_owned() };
    for _ in 0..3 {
        let case = state.store.case(action.tenant_id, action.case_id).await?;
        let step = case.as_ref().filter(|c| c.state == CaseState::Executing).and_then(|c| {
            let command = CaseCommand::RecordAction {
                action: action.action,
                outcome: ActionOutcome::Failed,
                detail: Some(error.to_owned()),
            };
            regain_core::case::apply(c, command, Actor::System, state.now()).ok()
        });
        let Some((next, events)) = step else {
            // Nothing on the case to tell: mark the action alone.
            return state.store.fail_action(&action.id, error, state.now()).await;
        };
        match crate::webhooks::commit(state, &next, &events, &Actor::System, vec![fail.clone()]).await {
            Err(StoreError::Conflict) => continue,
            other => return other,
        }
    }
    state.store.fail_action(&action.id, error, state.now()).await
}
