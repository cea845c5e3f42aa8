//! Expires cases whose deadline passed before anything was executed. Runs in every `serve`
//! process; the optimistic version check makes two sweepers racing for one case harmless.

use regain_core::case::{apply, CaseCommand};
use regain_core::Actor;
use regain_store::StoreError;

use crate::state::AppState;

/// Cases expired per sweep at most; the next sweep takes the rest.
const BATCH_MAX: u32 = 200;

pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let interval_ms = state.config.expiry_sweep_interval_ms;
    crate::periodic::spawn_every(interval_ms, state, |state| async move {
        match sweep(&state).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired cases swept"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed; will retry"),
        }
    })
}

/// Expires what is due now; returns how many cases were expired.
pub async fn sweep(state: &AppState) -> Result<usize, StoreError> {
    let now = state.now();
    let mut expired = 0;
    for case in state.store.cases_to_expire(now, BATCH_MAX).await? {
        let Ok((next, events)) = apply(&case, CaseCommand::Expire, Actor::System, now) else {
            continue;
        };
        match state.store.update_case(&next, &events, &Actor::System).await {
            Ok(()) => expired += 1,
            Err(StoreError::Conflict) => {} // changed meanwhile; the next sweep looks again
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}
