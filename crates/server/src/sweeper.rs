//! Expires cases whose deadline passed before anything was executed, sends the open cases of
//! customers whose recovery is on hold to the security tier, and purges closed cases past their
//! tenant's retention period. Runs in every `serve` process: the optimistic
//! version check makes two sweepers racing for one case harmless, and a purge deletes only
//! what is still there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use regain_core::case::{apply, CaseCommand};
use regain_core::{Actor, CaseId, Timestamp};
use regain_store::StoreError;

use crate::state::AppState;

/// Cases expired per sweep at most; the next sweep takes the rest.
const BATCH_MAX: u32 = 200;

pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let interval_ms = state.config.expiry_sweep_interval_ms;
    let waits = Arc::new(ReleaseWaits::default());
    crate::periodic::spawn_every(interval_ms, state, move |state| {
        let waits = waits.clone();
        async move {
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
            match release_due(&state, &waits).await {
                Ok(0) => {}
                Ok(released) => tracing::info!(released, "cooling-off periods ended"),
                Err(e) => tracing::warn!(error = %e, "release sweep failed; will retry"),
            }
            match purge(&state).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "closed cases purged after their retention period"),
                Err(e) => tracing::warn!(error = %e, "retention purge failed; will retry"),
            }
        }
    })
}

/// The first wait after a release failed; each failure after doubles it, up to
/// [`RELEASE_RETRY_CAP`].
pub const RELEASE_RETRY_BASE: regain_core::chrono::Duration = regain_core::chrono::Duration::minutes(1);
pub const RELEASE_RETRY_CAP: regain_core::chrono::Duration = regain_core::chrono::Duration::hours(1);

/// Cases whose release failed (the tenant's account system down or refusing the change): each
/// waits 1, 2, 4 … minutes, at most an hour, before it is tried again, rather than a try and a
/// warning every sweep. Kept in the process: after a restart each is tried at once, then waits
/// again.
#[derive(Debug, Default)]
pub struct ReleaseWaits(Mutex<HashMap<CaseId, (u32, Timestamp)>>);

impl ReleaseWaits {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CaseId, (u32, Timestamp)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn due(&self, case: CaseId, now: Timestamp) -> bool {
        self.map().get(&case).is_none_or(|(_, next)| *next <= now)
    }

    /// Records one more failure; returns how many in a row and when the next try is.
    fn failed(&self, case: CaseId, now: Timestamp) -> (u32, Timestamp) {
        let mut map = self.map();
        let failures = map.get(&case).map_or(1, |(n, _)| n.saturating_add(1));
        let wait = RELEASE_RETRY_BASE * 2_i32.saturating_pow(failures.saturating_sub(1).min(10));
        let next = now + wait.min(RELEASE_RETRY_CAP);
        map.insert(case, (failures, next));
        (failures, next)
    }

    /// Forgets every case but `waiting` (released, cancelled or gone meanwhile).
    fn keep_only(&self, waiting: &HashSet<CaseId>) {
        self.map().retain(|case, _| waiting.contains(case));
    }
}

/// Ends the cooling-off periods that are over (a contact change takes effect then, through the
/// tenant's connector too); returns how many cases were released. One whose case changed
/// meanwhile waits for the next sweep; one whose release failed (its connector down or
/// refusing) waits as `waits` says.
pub async fn release_due(state: &AppState, waits: &ReleaseWaits) -> Result<usize, StoreError> {
    let now = state.now();
    let mut released = 0;
    let mut waiting = HashSet::new();
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
                if !waits.due(case.id, now) {
                    waiting.insert(case.id);
                    continue;
                }
                let Ok((next, mut events)) = apply(case, CaseCommand::Release, Actor::System, now) else { continue };
                let effects = match crate::recovery::contact::on_release(state, &next, &events).await {
                    Ok((more, effects)) => {
                        events.extend(more);
                        effects
                    }
                    Err(e) => {
                        let (failures, retry_at) = waits.failed(case.id, now);
                        waiting.insert(case.id);
                        tracing::warn!(case_id = %case.id, error = %e, failures, %retry_at, "could not release the case yet; will retry");
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
    waits.keep_only(&waiting);
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

#[cfg(test)]
mod tests {
    use super::*;
    use regain_core::chrono::{Duration, TimeZone, Utc};

    #[test]
    fn a_failing_release_waits_twice_as_long_each_time_up_to_an_hour() {
        let waits = ReleaseWaits::default();
        let case = CaseId::from_uuid(uuid::Uuid::from_u128(7));
        let mut now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).single().expect("time");
        assert!(waits.due(case, now), "never failed: due");
        let mut seen = Vec::new();
        for _ in 0..9 {
            let (failures, next) = waits.failed(case, now);
            assert!(!waits.due(case, now) && !waits.due(case, next - Duration::seconds(1)));
            assert!(waits.due(case, next));
            seen.push((failures, (next - now).num_minutes()));
            now = next;
        }
        assert_eq!(seen, [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (8, 60), (9, 60)]);
        // Released or gone: forgotten, due at once when it comes back.
        waits.keep_only(&HashSet::new());
        assert!(waits.due(case, now));
    }
}
