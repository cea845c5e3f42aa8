//! The tenant's assurance policy (issue 4 item 5): which evidence suffices for each recovery
//! kind, how long codes live, how many failures stop recovery. Stored and versioned; a document
//! that is invalid or would lower a built-in floor is refused with the reason.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::policy::AssurancePolicy;
use regain_store::StoredPolicy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cases::ActorView;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    /// `null` while the tenant uses the built-in default.
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<ActorView>,
    /// The policy document: `kinds` (per recovery kind, `any_of` alternatives, each a list of
    /// `proofs` — the methods that may fill each — and `cooling_off_hours`),
    /// `recent_contact_days`, `sim_swap_hours`, `codes` and `failures`.
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

fn view(stored: Option<&StoredPolicy>, policy: &AssurancePolicy) -> PolicyView {
    PolicyView {
        version: stored.map(|s| s.version),
        created_at: stored.map(|s| s.created_at),
        created_by: stored.map(|s| ActorView::from(&s.created_by)),
        policy: serde_json::from_str(&policy.to_json()).unwrap_or(serde_json::Value::Null),
    }
}

/// The policy in force.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = PolicyView),
))]
pub async fn current(State(state): State<AppState>, auth: Authorized<perm::TenantRead>) -> ApiResult<Json<PolicyView>> {
    let tenant = auth.tenant()?;
    let stored = state.store.assurance_policy(tenant, None).await?;
    let (policy, _) = crate::verification::tenant_policy(&state, tenant).await?;
    Ok(Json(view(stored.as_ref(), &policy)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    /// The version this edit starts from (`null` when starting from the default); a newer
    /// saved version makes the update a conflict instead of overwriting it.
    pub base_version: Option<i64>,
    /// The whole document. Kinds left out take the default rule.
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

/// Save a new version of the policy.
#[utoipa::path(put, path = "/api/v1/policy", tag = "policy", request_body = PolicyUpdate,
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = PolicyView),
    (status = 409, description = "Another version was saved meanwhile", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid, or would lower a built-in floor (the reason is given)", body = Problem, content_type = "application/problem+json"),
))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantSettingsWrite>,
    ApiJson(req): ApiJson<PolicyUpdate>,
) -> ApiResult<Json<PolicyView>> {
    let tenant = auth.tenant()?;
    let policy = AssurancePolicy::from_json(&req.policy.to_string())?;
    let stored = state
        .store
        .save_assurance_policy(tenant, &policy.to_json(), req.base_version, &auth.actor, state.now())
        .await
        .map_err(|e| match e {
            regain_store::StoreError::Conflict => ApiError::Conflict {
                code: "policy-changed",
                detail: "another version of the policy was saved meanwhile; read it and edit that one".into(),
            },
            other => other.into(),
        })?;
    tracing::info!(version = stored.version, "assurance policy saved");
    Ok(Json(view(Some(&stored), &policy)))
}

/// Every saved version, newest first.
#[utoipa::path(get, path = "/api/v1/policy/versions", tag = "policy", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = [PolicyView]),
))]
pub async fn versions(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantRead>,
) -> ApiResult<Json<Vec<PolicyView>>> {
    let tenant = auth.tenant()?;
    let mut views = Vec::new();
    for stored in state.store.assurance_policy_versions(tenant).await? {
        let policy = AssurancePolicy::from_json(&stored.document)
            .map_err(|e| ApiError::Internal(format!("stored assurance policy v{}: {e}", stored.version)))?;
        views.push(view(Some(&stored), &policy));
    }
    Ok(Json(views))
}

/// One saved version.
#[utoipa::path(get, path = "/api/v1/policy/versions/{version}", tag = "policy", params(("version" = i64, Path)),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = PolicyView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn version(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantRead>,
    Path(version): Path<String>,
) -> ApiResult<Json<PolicyView>> {
    let tenant = auth.tenant()?;
    let version: i64 = version.parse().map_err(|_| ApiError::not_found("policy version"))?;
    let stored = state
        .store
        .assurance_policy(tenant, Some(version))
        .await?
        .ok_or_else(|| ApiError::not_found("policy version"))?;
    let policy = AssurancePolicy::from_json(&stored.document)
        .map_err(|e| ApiError::Internal(format!("stored assurance policy v{}: {e}", stored.version)))?;
    Ok(Json(view(Some(&stored), &policy)))
}
