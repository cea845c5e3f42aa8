//! Event webhooks for the tenant's ticketing or CRM (issue 6 item 5): `case.created`,
//! `case.escalated`, `case.approved`, `case.resolved`, `case.rejected`, `case.cancelled`,
//! `case.expired`, `recovery.repudiated`, `action.failed`.
//!
//! An event is queued in the transaction of the change it tells of ([`commit`]), so none is
//! lost and none is told of a change that did not happen. The worker sends each with Standard
//! Webhooks signatures (`webhook-id` is the delivery's id, the same on every retry, for the
//! endpoint to drop duplicates), retries any answer but a 2xx with exponential backoff up to
//! [`regain_delivery::ATTEMPTS_MAX`] attempts, and keeps the delivery log
//! (`GET /api/v1/webhooks/deliveries`). Payloads name cases and customers by id only.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::LazyLock;

use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::{Actor, Case, CaseEvent, CaseState};
use regain_delivery::signing::WebhookSecret;
use regain_store::{Effect, NewWebhookEvent, StoreError, WebhookDelivery, WebhookResult};
use serde_json::json;

use crate::error::ApiResult;
use crate::state::AppState;

/// Every event type an endpoint can receive.
pub const EVENT_TYPES: [&str; 9] = [
    "case.created",
    "case.escalated",
    "case.approved",
    "case.resolved",
    "case.rejected",
    "case.cancelled",
    "case.expired",
    "recovery.repudiated",
    "action.failed",
];

/// A tenant's endpoint, from the configuration.
#[derive(Clone)]
pub struct WebhookEndpoint {
    pub url: String,
    pub secret: WebhookSecret,
    /// The event types it wants; `None`: all of them.
    pub events: Option<BTreeSet<String>>,
}

/// Never the secret.
impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookEndpoint({}, {:?})", self.url, self.events)
    }
}

impl WebhookEndpoint {
    fn wants(&self, event_type: &str) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(event_type))
    }
}

/// The webhook event types a case change's events make, each with the action it is about
/// (`action.failed` names which action failed; its reason stays on the case's timeline, as a
/// connector's answer may hold personal data).
pub fn event_types(events: &[CaseEvent]) -> Vec<(&'static str, Option<ActionKind>)> {
    events
        .iter()
        .filter_map(|e| match e {
            CaseEvent::Opened { .. } => Some(("case.created", None)),
            CaseEvent::Escalated { .. } => Some(("case.escalated", None)),
            CaseEvent::StateChanged { to, command, .. } => match (to, *command) {
                (CaseState::Executing, "approve") => Some("case.approved"),
                (CaseState::Resolved, _) => Some("case.resolved"),
                (CaseState::Rejected, _) => Some("case.rejected"),
                (CaseState::Cancelled, "repudiate") => Some("recovery.repudiated"),
                (CaseState::Cancelled, _) => Some("case.cancelled"),
                (CaseState::Expired, _) => Some("case.expired"),
                _ => None,
            }
            .map(|t| (t, None)),
            CaseEvent::Action { action, outcome: ActionOutcome::Failed, .. } => Some(("action.failed", Some(*action))),
            _ => None,
        })
        .collect()
}

/// The webhook events for `case`'s change, for its tenant's endpoint; none without one.
pub async fn effects(state: &AppState, case: &Case, events: &[CaseEvent]) -> ApiResult<Vec<Effect>> {
    if state.config.webhooks.is_empty() {
        return Ok(Vec::new());
    }
    let types = event_types(events);
    if types.is_empty() {
        return Ok(Vec::new());
    }
    let Some(tenant) = state.store.tenant(case.tenant_id).await? else { return Ok(Vec::new()) };
    let Some(endpoint) = state.config.webhooks.get(tenant.slug.as_str()) else { return Ok(Vec::new()) };
    let now = state.now();
    Ok(types
        .into_iter()
        .filter(|(t, _)| endpoint.wants(t))
        .map(|(event_type, action)| {
            let id = format!("msg_{}", crate::verification::new_id(state).replace('-', ""));
            let mut payload = json!({
                "type": event_type,
                "timestamp": now.to_rfc3339(),
                "data": {
                    "tenant": tenant.slug.as_str(),
                    "case_id": case.id.to_string(),
                    "kind": case.kind.as_str(),
                    "state": case.state.as_str(),
                    "tier": case.tier.get(),
                    "customer_id": case.customer_id.map(|c| c.to_string()),
                    "risk_band": case.risk.as_ref().map(|r| r.band.as_str()),
                },
            });
            if let Some(action) = action {
                payload["data"]["action"] = json!(action.as_str());
            }
            Effect::Webhook(NewWebhookEvent {
                id,
                tenant_id: case.tenant_id,
                case_id: Some(case.id),
                event_type: event_type.to_owned(),
                payload: payload.to_string(),
                created_at: now,
            })
        })
        .collect())
}

/// Stores a case change with its effects and the webhook events it makes, in one transaction.
pub async fn commit(
    state: &AppState,
    case: &Case,
    events: &[CaseEvent],
    actor: &Actor,
    mut effects: Vec<Effect>,
) -> Result<(), StoreError> {
    let more = effects_or_log(state, case, events).await;
    effects.extend(more);
    effects.extend(crate::recovery::closing_effects(case, events));
    state.store.commit_case_change(case, events, actor, &effects).await
}

/// [`effects`], where a failure to read the tenant drops the events with an error in the log
/// rather than failing the change itself.
pub async fn effects_or_log(state: &AppState, case: &Case, events: &[CaseEvent]) -> Vec<Effect> {
    match effects(state, case, events).await {
        Ok(effects) => effects,
        Err(e) => {
            tracing::error!(case_id = %case.id, error = %e, "could not queue the case's webhook events");
            Vec::new()
        }
    }
}

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
});

/// How long a claimed delivery stays out of other workers' reach: longer than a batch can take
/// (20 deliveries of at most 10 s each).
pub const LEASE_SECONDS: i64 = 5 * 60;
/// Deliveries claimed per round.
pub const BATCH: u32 = 20;

/// Sends the webhook deliveries due now; returns how many were handled.
pub async fn deliver_due(state: &AppState) -> Result<usize, StoreError> {
    let now = state.now();
    let due = state.store.claim_webhooks(now, now + chrono::Duration::seconds(LEASE_SECONDS), BATCH).await?;
    let handled = due.len();
    for delivery in due {
        let result = send(state, &delivery).await;
        state.store.finish_webhook(&delivery.id, &result, state.now()).await?;
    }
    Ok(handled)
}

async fn send(state: &AppState, d: &WebhookDelivery) -> WebhookResult {
    let attempt = d.attempts + 1;
    let endpoint = match state.store.tenant(d.tenant_id).await {
        Ok(Some(tenant)) => state.config.webhooks.get(tenant.slug.as_str()).cloned(),
        Ok(None) => None,
        Err(e) => return retry(state, attempt, None, format!("could not read the tenant: {e}")),
    };
    let Some(endpoint) = endpoint else {
        return WebhookResult::Dead {
            status: None,
            error: "the tenant has no webhook endpoint configured any more".into(),
        };
    };
    let sent_at = state.now().timestamp();
    let mut request = CLIENT.post(&endpoint.url).header("content-type", "application/json");
    for (name, value) in endpoint.secret.headers(&d.id, sent_at, d.payload.as_bytes()) {
        request = request.header(name, value);
    }
    match request.body(d.payload.clone()).send().await {
        Ok(response) if response.status().is_success() => {
            tracing::info!(webhook_id = %d.id, event = %d.event_type, attempt, "webhook delivered");
            WebhookResult::Delivered { status: response.status().as_u16() }
        }
        Ok(response) => {
            let status = response.status().as_u16();
            retry(state, attempt, Some(status), format!("the endpoint answered {status}"))
        }
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            retry(state, attempt, None, format!("the request {what}"))
        }
    }
}

fn retry(state: &AppState, attempt: u32, status: Option<u16>, error: String) -> WebhookResult {
    if attempt >= regain_delivery::ATTEMPTS_MAX {
        tracing::error!(%error, attempt, "webhook given up");
        return WebhookResult::Dead { status, error };
    }
    let (at, wait) = crate::periodic::retry_after(state, attempt);
    tracing::warn!(%error, attempt, retry_in_s = wait.as_secs(), "webhook will be retried");
    WebhookResult::Retry { at, status, error }
}
