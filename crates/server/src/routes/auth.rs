//! Staff sign-in: password and TOTP, then a session (cookie for browsers, bearer token for API
//! clients). Every failure looks the same, whichever part was wrong.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use regain_core::totp::{verify_totp, TotpParams};
use regain_core::{Actor, EmailAddress, Staff};
use regain_store::{AuditRecord, SessionRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{new_token, Principal, SESSION_COOKIE, STAFF_TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

const BAD_LOGIN: ApiError = ApiError::InvalidCredentials("the email, password or code is not right");

/// Failed sign-ins in a row before a staff account is locked out for a while.
pub const STAFF_LOGIN_FAILURES_MAX: u32 = 5;
/// How long that lockout lasts.
pub const STAFF_LOCKOUT_MINUTES: i64 = 15;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The 6-digit code from the authenticator app.
    pub totp_code: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`; browsers get it as a cookie as well.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub staff: StaffView,
}

#[derive(Serialize, ToSchema)]
pub struct StaffView {
    pub id: String,
    /// The tenant's id; absent for a deployment admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub email: String,
    pub display_name: String,
    #[schema(value_type = crate::openapi::vocabulary::StaffRole, inline)]
    pub role: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&Staff> for StaffView {
    fn from(s: &Staff) -> Self {
        Self {
            id: s.id.to_string(),
            tenant_id: s.tenant_id.map(|t| t.to_string()),
            email: s.email.to_string(),
            display_name: s.display_name.clone(),
            role: s.role.to_string(),
            active: s.active,
            created_at: s.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// `staff` or `api_key`.
    pub kind: &'static str,
    pub id: String,
    #[schema(value_type = crate::openapi::vocabulary::Role, inline)]
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// Sign in with email, password and TOTP code.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = LoginResponse, headers(("set-cookie" = String, description = "The session cookie"))),
    (status = 401, description = "Wrong email, password or code", body = crate::error::Problem, content_type = "application/problem+json"),
    (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn login(State(state): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<impl IntoResponse> {
    if req.password.chars().count() > 1024 {
        return Err(BAD_LOGIN);
    }
    let email = EmailAddress::parse("email", &req.email)?;
    let Some(record) = state.store.staff_by_email(&email.normalized()).await? else {
        state.hasher.verify_dummy(&req.password).await?;
        return Err(BAD_LOGIN);
    };
    // The same work whatever is wrong, so the answer's timing says nothing either.
    let password_ok = state.hasher.verify(&req.password, &record.password_hash).await?;
    let now = state.now();
    let params = TotpParams::default();
    let step = verify_totp(&record.totp_secret, &req.totp_code, now, &params, 1, None);
    let locked = record.locked_until.is_some_and(|until| until > now);
    let actor = Actor::Staff { id: record.staff.id, role: record.staff.role };
    let (Some(step), true, true, false) = (step, password_ok, record.staff.active, locked) else {
        if !locked {
            // Guessing codes behind a stolen password is slowed to a crawl (SECURITY.md G6).
            let until = now + Duration::minutes(STAFF_LOCKOUT_MINUTES);
            let audit = AuditRecord::new(record.staff.tenant_id, actor, "staff.login_failed", now);
            state.store.record_staff_login_failure(record.staff.id, STAFF_LOGIN_FAILURES_MAX, until, &audit).await?;
        }
        tracing::info!(staff_id = %record.staff.id, locked, "staff sign-in refused");
        return Err(BAD_LOGIN);
    };
    // A code is good once: claiming its step fails for a replay, in any process.
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    if !state.store.claim_staff_totp_step(record.staff.id, step).await? {
        tracing::warn!(staff_id = %record.staff.id, "staff sign-in with a TOTP code already used");
        return Err(BAD_LOGIN);
    }
    let audit = AuditRecord::new(record.staff.tenant_id, actor, "staff.login", now);
    state.store.record_staff_login(record.staff.id, &audit).await?;
    let token = new_token(STAFF_TOKEN_PREFIX, state.entropy.as_ref());
    let expires_at = now + Duration::hours(i64::from(state.config.session_absolute_hours));
    let session = SessionRecord {
        token_hash: crate::auth::token_hash(&token),
        staff_id: record.staff.id,
        created_at: now,
        expires_at,
        idle_until: now + Duration::minutes(i64::from(state.config.session_idle_minutes)),
    };
    state.store.create_session(&session).await?;
    tracing::info!(staff_id = %record.staff.id, role = %record.staff.role, "staff signed in");
    let cookie = session_cookie(&state, &token, state.config.session_absolute_hours * 3600);
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, cookie);
    Ok((headers, Json(LoginResponse { token, expires_at, staff: StaffView::from(&record.staff) })))
}

fn session_cookie(state: &AppState, token: &str, max_age_seconds: u32) -> HeaderValue {
    let secure = if state.config.cookie_secure { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 204, description = "Signed out"),
    (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn logout(State(state): State<AppState>, principal: Principal) -> ApiResult<impl IntoResponse> {
    if let Some(hash) = &principal.session_hash {
        state.store.revoke_session(hash, state.now()).await?;
    }
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, session_cookie(&state, "", 0));
    Ok((StatusCode::NO_CONTENT, headers))
}

/// Who the credentials belong to.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = WhoAmI),
    (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn me(principal: Principal) -> Json<WhoAmI> {
    Json(WhoAmI {
        kind: principal.actor.kind(),
        id: principal.actor.id().unwrap_or_default(),
        role: principal.role.to_string(),
        tenant_id: principal.tenant_id.map(|t| t.to_string()),
    })
}
