//! The event webhooks' delivery log (issue 6 item 5): what was sent to the tenant's endpoint,
//! when, how many times, and how it answered.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::CaseId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{perm, Authorized};
use crate::error::{ApiResult, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only this case's events.
    #[param(format = Uuid)]
    pub case_id: Option<String>,
    /// The previous page's last `id`: the page after it.
    pub cursor: Option<String>,
    /// At most this many, 1 to 200 (50 by default).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` the endpoint received, the same on every retry.
    pub id: String,
    /// case.created, case.escalated, case.approved, case.resolved, case.rejected,
    /// case.cancelled, case.expired, recovery.repudiated, action.failed.
    pub event_type: String,
    pub case_id: Option<String>,
    /// `pending` (waiting or being retried), `delivered` or `dead` (given up).
    pub state: String,
    pub attempts: u32,
    /// The endpoint's last HTTP status, when it answered.
    pub last_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body sent: `type`, `timestamp` and `data` (`tenant`, `case_id`, `kind`, `state`,
    /// `tier`, `customer_id`, `risk_band`; for `action.failed` also `action`). Ids only, never
    /// personal data.
    pub payload: serde_json::Value,
}

/// The tenant's webhook deliveries, newest first; pass the last `id` back as `cursor` for the
/// next page.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "webhooks", params(DeliveriesQuery),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = [DeliveryView]),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn deliveries(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    let tenant = auth.tenant()?;
    let case = q.case_id.as_deref().map(|c| CaseId::parse("case_id", c)).transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(regain_core::ValidationError::new("limit", "must be between 1 and 200").into());
    }
    let cursor = q.cursor.as_deref().map(str::trim);
    if cursor.is_some_and(|c| {
        !(c.starts_with("msg_") && c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
    }) {
        return Err(regain_core::ValidationError::new("cursor", "must be a delivery id from an earlier page").into());
    }
    let rows = state.store.webhook_deliveries(tenant, case, cursor, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| DeliveryView {
                payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
                id: d.id,
                event_type: d.event_type,
                case_id: d.case_id.map(|c| c.to_string()),
                state: d.state,
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error,
                next_attempt_at: d.next_attempt_at,
                created_at: d.created_at,
                delivered_at: d.delivered_at,
            })
            .collect(),
    ))
}
