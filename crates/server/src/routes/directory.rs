//! The built-in directory's sign-in, for tenants whose customer accounts live in Regain (and the
//! demo). Each attempt is kept as login history (time, IP, user agent) for the risk engine;
//! repeated failures lock the account until `account_unlock`. Unknown usernames, wrong
//! passwords and locked or disabled accounts all get the same answer, after the same work.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use regain_core::customer::CustomerStatus;
use regain_core::totp::{verify_totp, TotpParams};
use regain_core::{Tenant, TenantId};
use regain_store::{CustomerSessionRecord, LoginAttempt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{bearer_token, new_token, token_hash, CUSTOMER_TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientInfo};
use crate::state::AppState;

const BAD_LOGIN: ApiError =
    ApiError::InvalidCredentials("the username or password is not right, or the account cannot sign in");

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerLogin {
    pub username: String,
    pub password: String,
    /// The authenticator app's current code, for an account that has one enrolled: a right
    /// password alone does not sign it in (SECURITY.md P6).
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerSession {
    /// Send as `Authorization: Bearer <token>` to the directory's routes.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerMe {
    pub customer_id: String,
    pub username: String,
    #[schema(value_type = crate::openapi::vocabulary::CustomerStatus, inline)]
    pub status: String,
}

async fn tenant(state: &AppState, slug: &str) -> ApiResult<Tenant> {
    state.store.tenant_by_slug(slug).await?.ok_or_else(|| ApiError::not_found("tenant"))
}

/// The tenant `slug` names, when the signed-in customer belongs to it (else 401).
pub(crate) async fn signed_in_tenant(state: &AppState, slug: &str, customer: &CustomerPrincipal) -> ApiResult<Tenant> {
    let tenant = tenant(state, slug).await?;
    if customer.0.tenant_id != tenant.id {
        return Err(ApiError::Unauthenticated);
    }
    Ok(tenant)
}

/// Sign a customer in to the built-in directory.
#[utoipa::path(post, path = "/api/v1/directory/{tenant}/login", tag = "directory", request_body = CustomerLogin,
    params(("tenant" = String, Path, description = "The tenant's slug")), responses(
    (status = 200, body = CustomerSession),
    (status = 401, description = "Wrong username, password or authenticator code, or the account is locked or disabled; \
        or (`second-factor-required`) the password was right and the account's authenticator code is needed too", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
))]
pub async fn login(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CustomerLogin>,
) -> ApiResult<Json<CustomerSession>> {
    let tenant = tenant(&state, &slug).await?;
    if req.password.chars().count() > 1024 || req.username.chars().count() > 256 {
        return Err(BAD_LOGIN);
    }
    let Some(account) = state.store.directory_account(tenant.id, req.username.trim()).await? else {
        // The same work as for a known name: a hash and a write (SECURITY.md E1, E2).
        state.hasher.verify_dummy(&req.password).await?;
        let (ip, user_agent) = (client.ip.as_deref(), client.user_agent.as_deref());
        state.store.record_unknown_login(tenant.id, state.now(), ip, user_agent).await?;
        return Err(BAD_LOGIN);
    };
    let password_ok = match &account.password_hash {
        Some(hash) => state.hasher.verify(&req.password, hash).await?,
        None => {
            state.hasher.verify_dummy(&req.password).await?;
            false
        }
    };
    let now = state.now();
    let mut success = password_ok && account.status == CustomerStatus::Active;
    if success {
        success = second_factor(&state, tenant.id, account.customer_id, req.totp.as_deref()).await?;
    }
    let attempt = LoginAttempt {
        tenant_id: tenant.id,
        customer_id: account.customer_id,
        at: now,
        ip: client.ip,
        user_agent: client.user_agent,
        success,
    };
    let recorded = state.store.record_login(&attempt, tenant.settings.login_failures_max).await?;
    if !recorded.success {
        if recorded.status == CustomerStatus::Locked && account.status == CustomerStatus::Active {
            tracing::warn!(customer_id = %account.customer_id, "directory account locked after repeated failures");
        }
        return Err(BAD_LOGIN);
    }
    let token = new_token(CUSTOMER_TOKEN_PREFIX, state.entropy.as_ref());
    let expires_at = now + Duration::minutes(i64::from(state.config.customer_session_minutes));
    let session = CustomerSessionRecord {
        token_hash: token_hash(&token),
        tenant_id: tenant.id,
        customer_id: account.customer_id,
        created_at: now,
        expires_at,
    };
    state.store.create_customer_session(&session).await?;
    Ok(Json(CustomerSession { token, expires_at }))
}

/// Whether the account's second factor lets the sign-in through: no factor enrolled, or a
/// right authenticator code whose time step was not used before (a replay fails). A right
/// password without the code asks for it and records nothing.
async fn second_factor(
    state: &AppState,
    tenant: TenantId,
    customer: regain_core::CustomerId,
    code: Option<&str>,
) -> ApiResult<bool> {
    let Some(enrolled) = state.store.customer_totp(tenant, customer).await?.filter(|t| t.confirmed) else {
        return Ok(true);
    };
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(ApiError::Refused {
            status: axum::http::StatusCode::UNAUTHORIZED,
            code: "second-factor-required",
            detail: "this account has two-step sign-in: send the authenticator app's code as `totp`".into(),
        });
    };
    let params = TotpParams::default();
    let Some(step) = verify_totp(&enrolled.secret, code, state.now(), &params, 1, None) else { return Ok(false) };
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    Ok(state.store.claim_customer_totp_step(tenant, customer, step, None).await?)
}

/// A signed-in customer.
pub struct CustomerPrincipal(pub CustomerSessionRecord);

impl FromRequestParts<AppState> for CustomerPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token =
            bearer_token(parts).filter(|t| t.starts_with(CUSTOMER_TOKEN_PREFIX)).ok_or(ApiError::Unauthenticated)?;
        let session =
            state.store.customer_session(&token_hash(&token), state.now()).await?.ok_or(ApiError::Unauthenticated)?;
        Ok(Self(session))
    }
}

/// The signed-in customer: how a customer proves they got back in.
#[utoipa::path(get, path = "/api/v1/directory/{tenant}/me", tag = "directory",
    params(("tenant" = String, Path, description = "The tenant's slug")), security(("customer_bearer" = [])), responses(
    (status = 200, body = CustomerMe),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn me(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    customer: CustomerPrincipal,
) -> ApiResult<Json<CustomerMe>> {
    let tenant_id: TenantId = signed_in_tenant(&state, &slug, &customer).await?.id;
    let record = state.store.customer(tenant_id, customer.0.customer_id).await?.ok_or(ApiError::Unauthenticated)?;
    Ok(Json(CustomerMe {
        customer_id: record.id.to_string(),
        username: record.username,
        status: record.status.to_string(),
    }))
}
