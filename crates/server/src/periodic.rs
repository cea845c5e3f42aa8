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

/// Most rounds of a queue's work one tick runs: a backlog is worked off at the queue's own pace,
/// and the tick still ends now and then.
pub const ROUNDS_PER_TICK: usize = 50;

/// Runs `round` (which claims up to `batch` items and handles them, returning how many) again
/// while it finds a full batch, up to [`ROUNDS_PER_TICK`] times: a burst of recoveries is not
/// held to one batch per interval. `what` names the queue in the log.
pub async fn drain_rounds<F, Fut>(what: &str, batch: u32, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, regain_store::StoreError>>,
{
    for _ in 0..ROUNDS_PER_TICK {
        match round().await {
            Ok(handled) if handled >= batch as usize => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(queue = what, error = %e, "round failed; what is due waits for the next one");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::{drain_rounds, ROUNDS_PER_TICK};

    #[tokio::test]
    async fn a_backlog_is_worked_off_in_one_tick_and_an_error_or_the_cap_ends_it() {
        // 3 full batches of 20 and then 5: four rounds.
        let calls = Cell::new(0usize);
        drain_rounds("test", 20, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { Ok(if n <= 3 { 20 } else { 5 }) }
        })
        .await;
        assert_eq!(calls.get(), 4);

        let calls = Cell::new(0usize);
        drain_rounds("test", 20, || {
            calls.set(calls.get() + 1);
            async { Err(regain_store::StoreError::Unavailable("down".into())) }
        })
        .await;
        assert_eq!(calls.get(), 1, "a failing round is not repeated in the same tick");

        let calls = Cell::new(0usize);
        drain_rounds("test", 20, || {
            calls.set(calls.get() + 1);
            async { Ok(20) }
        })
        .await;
        assert_eq!(calls.get(), ROUNDS_PER_TICK, "an endless supply still lets the tick end");
    }
}
