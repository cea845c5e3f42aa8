//! The outbox worker (issue 4 item 7): messages are committed with the change that sends them;
//! this sends them — email over SMTP, SMS through the configured provider, or to the demo's
//! file sink — retrying with exponential backoff, and gives up after
//! [`regain_delivery::ATTEMPTS_MAX`] attempts or a permanent refusal.
//!
//! At least once: a claimed message is leased for a while; a worker that dies mid-send, or
//! before it has recorded its round's results (one transaction per round of up to [`BATCH`]),
//! leaves them to be sent again when the lease ends, under the same ids, which transports pass
//! on as the idempotency key (SMS providers) or the Message-ID (email).

use std::sync::Arc;
use std::time::Duration;

use regain_delivery::{Address, Message, Router as Transports, SendError};
use regain_store::{DeliveryResult, OutboxMessage};

use crate::state::AppState;

/// How long a claimed message stays out of other workers' reach: longer than a whole batch can
/// take (20 sends, each limited by `delivery.timeout_seconds`), so no message of a slow batch is
/// claimed again while it is still being sent.
pub const LEASE_SECONDS: i64 = 15 * 60;
/// Messages claimed per round.
pub const BATCH: u32 = 20;

pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    crate::periodic::spawn_every(state.config.outbox_interval_ms, state, |state| async move {
        crate::periodic::drain_rounds("outbox", BATCH, || deliver_due(&state)).await;
    })
}

/// Sends what is due now; returns how many messages were handled.
pub async fn deliver_due(state: &AppState) -> Result<usize, regain_store::StoreError> {
    let now = state.now();
    let lease = now + chrono::Duration::seconds(LEASE_SECONDS);
    let due = state.store.claim_messages(now, lease, BATCH).await?;
    let handled = due.len();
    // The round's results are recorded together, in one transaction. A process that dies
    // before that leaves the round's messages to be sent again when their lease ends, under the
    // same ids, which the transports pass on as idempotency keys and Message-IDs.
    let mut results = Vec::with_capacity(handled);
    for message in due {
        let result = send_one(&state.delivery, &message, state).await;
        results.push((message.id, result));
    }
    state.store.finish_messages(&results, state.now()).await?;
    Ok(handled)
}

async fn send_one(transports: &Arc<Transports>, m: &OutboxMessage, state: &AppState) -> DeliveryResult {
    let to = match m.channel.as_str() {
        "sms" => Address::Sms(m.to.clone()),
        _ => Address::Email(m.to.clone()),
    };
    let message = Message { id: m.id.clone(), to, subject: m.subject.clone(), body: m.body.clone() };
    let attempt = m.attempts + 1;
    match transports.send(&message).await {
        Ok(()) => {
            tracing::info!(message_id = %m.id, channel = %m.channel, attempt, "message sent");
            DeliveryResult::Sent
        }
        Err(SendError::Permanent(error)) => {
            tracing::error!(message_id = %m.id, channel = %m.channel, %error, "message refused; not retried");
            DeliveryResult::Dead { error }
        }
        Err(SendError::Retryable(error)) if attempt >= regain_delivery::ATTEMPTS_MAX => {
            tracing::error!(message_id = %m.id, channel = %m.channel, %error, attempt, "message given up");
            DeliveryResult::Dead { error }
        }
        Err(SendError::Retryable(error)) => {
            let (at, wait) = crate::periodic::retry_after(state, attempt);
            tracing::warn!(message_id = %m.id, channel = %m.channel, %error, attempt, retry_in_s = wait.as_secs(), "message will be retried");
            DeliveryResult::Retry { at, error }
        }
    }
}

/// Sends everything due until nothing is left (tests, the demo's first run). Gives up after
/// `rounds` rounds.
pub async fn drain(state: &AppState, rounds: usize) -> Result<(), regain_store::StoreError> {
    for _ in 0..rounds {
        if deliver_due(state).await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
