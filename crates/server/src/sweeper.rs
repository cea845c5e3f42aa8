//! Expires cases whose deadline passed before anything was executed, sends the open cases of
//! customers whose recovery is on hold to the security tier, and purges closed cases past their
//! tenant's retention period. Runs in every `serve` process: the optimistic
//! version check makes two sweepers racing for one case harmless, and a purge deletes only
//! what is still there.

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
        // A hold's escalation runs right after the failure that starts it; this makes it
        // certain (a crash or a conflict in between, a case opened during the hold).
        match state.store.recovery_holds(state.now()).await {
            Ok(holds) => {
                for (tenant, customer, until) in holds {
                    crate::verification::escalate_held(&state, tenant, customer, until).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read recovery holds; will retry"),
        }
        match release_due(&state).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "cooling-off periods ended"),
            Err(e) => tracing::warn!(error = %e, "release sweep failed; will retry"),
        }
        match purge(&state).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "closed cases purged after their retention period"),
            Err(e) => tracing::warn!(error = %e, "retention purge failed; will retry"),
        }
    })
}

/// Ends the cooling-off periods that are over (a contact change takes effect then, through the
/// tenant's connector too); returns how many cases were released. One whose connector is down
/// or whose case changed meanwhile waits for the next sweep.
pub async fn release_due(state: &AppState) -> Result<usize, StoreError> {
    let now = state.now();
    let mut released = 0;
    for tenant in state.store.list_tenants().await? {
        let filter =
            regain_store::CaseFilter { states: vec![regain_core::CaseState::CoolingOff], ..Default::default() };
        let mut after = None;
        loop {
            let page = state
                .store
                .list_cases(tenant.id, &filter, &regain_store::PageRequest { limit: BATCH_MAX, after })
                .await?;
            for case in page.items.iter().filter(|c| c.cooling_off_until.is_some_and(|until| until <= now)) {
                let Ok((next, mut events)) = apply(case, CaseCommand::Release, Actor::System, now) else { continue };
                let effects = match crate::recovery::contact::on_release(state, &next, &events).await {
                    Ok((more, effects)) => {
                        events.extend(more);
                        effects
                    }
                    Err(e) => {
                        tracing::warn!(case_id = %case.id, error = %e, "could not release the case yet; will retry");
                        continue;
                    }
                };
                match crate::webhooks::commit(state, &next, &events, &Actor::System, effects).await {
                    Ok(()) => released += 1,
                    Err(StoreError::Conflict) => {} // changed meanwhile; the next sweep looks again
                    // One case's trouble does not hold up the others.
                    Err(e) => tracing::warn!(case_id = %case.id, error = %e, "could not release the case; will retry"),
                }
            }
            match page.next_after {
                Some(last) => after = Some(last),
                None => break,
            }
        }
    }
    Ok(released)
}

/// Purges, per tenant, closed cases older than its `closed_case_retention_days` (each purge
/// is an audit entry); returns how many.
pub async fn purge(state: &AppState) -> Result<usize, StoreError> {
    let now = state.now();
    let mut purged = 0;
    for tenant in state.store.list_tenants().await? {
        let days = i64::from(tenant.settings.closed_case_retention_days);
        let before = now - regain_core::chrono::Duration::days(days);
        purged += state.store.purge_closed_cases(tenant.id, before, BATCH_MAX, now).await?.len();
    }
    Ok(purged)
}

/// Expires what is due now; returns how many cases were expired.
pub async fn sweep(state: &AppState) -> Result<usize, StoreError> {
    let now = state.now();
    let mut expired = 0;
    for case in state.store.cases_to_expire(now, BATCH_MAX).await? {
        let Ok((next, events)) = apply(&case, CaseCommand::Expire, Actor::System, now) else {
            continue;
        };
        match crate::webhooks::commit(state, &next, &events, &Actor::System, Vec::new()).await {
            Ok(()) => expired += 1,
            Err(StoreError::Conflict) => {} // changed meanwhile; the next sweep looks again
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}
