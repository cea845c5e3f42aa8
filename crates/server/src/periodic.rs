//! Background work that runs every so often in each `serve` process.

use std::future::Future;
use std::time::Duration;

use crate::state::AppState;

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
