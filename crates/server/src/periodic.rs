//! Background work that runs every so often in each `serve` process.

use std::future::Future;
use std::time::Duration;

use crate::state::AppState;

/// When a failed attempt `attempt` (1-based) of a message, action or webhook is tried again:
/// the delivery backoff (exponential, capped) with random jitter; returns the time and the wait.
pub fn retry_after(state: &AppState, attempt: u32) -> (regain_core::Timestamp, Duration) {
    let mut bytes = [0u8; 4];
    state.entropy.fill(&mut bytes);
    let jitter = f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0);
    let wait = regain_delivery::backoff(attempt, jitter);
    let at = state.now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
    (at, wait)
}

/// Runs `work` every `interval_ms` (a late tick waits rather than bursting); `None` when the
/// interval is 0, which turns the work off in this process.
pub fn spawn_every<F, Fut>(interval_ms: u64, state: AppState, work: F) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    if interval_ms == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work(state.clone()).await;
        }
    }))
}
