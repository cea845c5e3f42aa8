//! The contact change on a contact-change case (propose the new contact, confirm it by the code
//! sent to it) and a lockdown's review (the recent changes, the rollback), over the API.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use regain_store::{AttemptContext, ContactChange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cases::{case_detail, load_case, CaseView};
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientInfo};
use crate::recovery::lockdown::RecentChange;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChangeBody {
    /// The new email address; give this or `phone`.
    pub email: Option<String>,
    /// The new phone number (E.164, or national in the tenant's region); give this or `email`.
    pub phone: Option<String>,
    /// Whether the customer's current contacts of this kind go when the change takes effect
    /// (true by default); `false` adds the new one beside them.
    pub replace: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCodeBody {
    /// The six digits the customer read back from the new contact.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct ContactChangeView {
    /// email or phone.
    pub kind: &'static str,
    /// The new contact, masked.
    pub destination: String,
    pub replace: bool,
    /// awaiting_code, confirmed, sending (the cooling-off ended and the tenant's account system
    /// is being told; it may have taken it, so it is no longer cancelled), applied (the
    /// cooling-off ended), reverted (a lockdown undid
    /// it), cancelled (its case was repudiated, rejected, cancelled or expired, the account
    /// was locked down, or it was reported while being sent and the account system did not
    /// take it), expired or exhausted (propose again), superseded.
    pub state: String,
    pub attempts: u32,
    pub code_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub applied_at: Option<DateTime<Utc>>,
    /// When the customer said "this wasn't me" while it was being sent: it is not sent again.
    pub reported_at: Option<DateTime<Utc>>,
    /// The contacts it replaced when applied, masked.
    pub replaced: Vec<String>,
}

impl From<ContactChange> for ContactChangeView {
    fn from(c: ContactChange) -> Self {
        Self {
            kind: c.kind.as_str(),
            destination: c.masked,
            replace: c.replace,
            state: c.state,
            attempts: c.attempts,
            code_expires_at: c.code_expires_at,
            created_at: c.created_at,
            confirmed_at: c.confirmed_at,
            applied_at: c.applied_at,
            reported_at: c.reported_at,
            replaced: c.replaced,
        }
    }
}

/// Propose the new contact of a contact-change case: a code goes to it (SECURITY.md M4), which
/// the customer reads back. An earlier proposal on the case is replaced.
#[utoipa::path(post, path = "/api/v1/cases/{id}/contact-change", tag = "recovery", request_body = ContactChangeBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 201, body = ContactChangeView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not a contact-change case, the wrong state, or already one of the customer's contacts", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "The account is locked down, or recovery is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn propose(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ContactChangeBody>,
) -> ApiResult<(axum::http::StatusCode, Json<ContactChangeView>)> {
    let tenant_id = auth.tenant()?;
    let case = load_case(&state, tenant_id, &id).await?;
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let proposed = crate::recovery::contact::parse(
        &tenant,
        req.email.as_deref(),
        req.phone.as_deref(),
        req.replace.unwrap_or(true),
    )?;
    let change = crate::recovery::contact::propose(&state, auth.actor, &case, proposed).await?;
    Ok((axum::http::StatusCode::CREATED, Json(change.into())))
}

/// The case's contact change, masked.
#[utoipa::path(get, path = "/api/v1/cases/{id}/contact-change", tag = "recovery",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ContactChangeView),
    (status = 404, description = "No such case, or no contact proposed on it", body = Problem, content_type = "application/problem+json"),
))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<ContactChangeView>> {
    let tenant = auth.tenant()?;
    let case = load_case(&state, tenant, &id).await?;
    let change =
        state.store.contact_change(tenant, case.id).await?.ok_or_else(|| ApiError::not_found("contact change"))?;
    Ok(Json(change.into()))
}

/// Check the code sent to the new contact. A wrong one counts toward the customer's failure
/// limit like any failed proof.
#[utoipa::path(post, path = "/api/v1/cases/{id}/contact-change/code", tag = "recovery", request_body = ContactCodeBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ContactChangeView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "No code waiting", body = Problem, content_type = "application/problem+json"),
    (status = 410, description = "The code expired", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "The code is wrong (counted), or its attempts are used up", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn confirm(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<ContactCodeBody>,
) -> ApiResult<Json<ContactChangeView>> {
    let case = load_case(&state, auth.tenant()?, &id).await?;
    let ctx = AttemptContext { actor: auth.actor, ip: client.ip, at: state.now() };
    let change = crate::recovery::contact::confirm(&state, ctx, &case, &req.code).await?;
    Ok(Json(change.into()))
}

#[derive(Serialize, ToSchema)]
pub struct RecentChanges {
    /// How far back the list looks (the policy's `recovery.lockdown_review_days`).
    pub days: u32,
    pub changes: Vec<RecentChange>,
}

/// The changes made to the account in the review window, newest first, for the security
/// analyst to select what to roll back (SECURITY.md L0).
#[utoipa::path(get, path = "/api/v1/cases/{id}/recent-changes", tag = "recovery",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = RecentChanges),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "Not a compromised-account case with its customer identified", body = Problem, content_type = "application/problem+json"),
))]
pub async fn recent_changes(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
) -> ApiResult<Json<RecentChanges>> {
    let case = load_case(&state, auth.tenant()?, &id).await?;
    let customer = crate::recovery::lockdown::reviewed_customer(&state, &case, auth.actor).await?;
    let (days, changes) = crate::recovery::lockdown::recent_changes(&state, &case, &customer).await?;
    Ok(Json(RecentChanges { days, changes }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The `id`s of the recent changes to undo.
    pub changes: Vec<String>,
}

/// Undo the selected recent changes of a locked-down account: a security analyst or a
/// supervisor, on its compromised-account case while it is executing.
#[utoipa::path(post, path = "/api/v1/cases/{id}/rollback", tag = "recovery", request_body = RollbackBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CaseView),
    (status = 403, description = "Not a security analyst or a supervisor", body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The account is not locked down on this case", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A change is unknown, named twice, or cannot be undone", body = Problem, content_type = "application/problem+json"),
))]
pub async fn rollback(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RollbackBody>,
) -> ApiResult<Json<CaseView>> {
    let case = load_case(&state, auth.tenant()?, &id).await?;
    let next = crate::recovery::lockdown::roll_back(&state, auth.actor, &case, &req.changes).await?;
    Ok(Json(case_detail(&state, &next).await?))
}
