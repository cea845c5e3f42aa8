//! Who is calling, and whether their role allows the route.
//!
//! Credentials are bearer tokens: a staff session (`rgs_…`, also sent as the `regain_session`
//! cookie by browsers), a tenant API key (`rgk_…`) or a customer session (`rgc_…`, directory
//! routes only). Each carries 256 random bits; only its SHA-256 is stored.
//!
//! A handler declares what it needs by its signature — `Authorized<perm::CasesRead>` — and the
//! extractor checks it before the handler runs: 401 without valid credentials, 403 when the
//! role does not allow it. Tenant isolation follows from every query being scoped to the
//! caller's tenant: another tenant's records are simply not found (404).

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use base64::Engine;
use chrono::Duration;
use regain_core::{Actor, Entropy, Permission, Role, StaffId, TenantId};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "regain_session";
pub const STAFF_TOKEN_PREFIX: &str = "rgs_";
pub const API_KEY_PREFIX: &str = "rgk_";
pub const CUSTOMER_TOKEN_PREFIX: &str = "rgc_";

/// A new random token with its prefix: 32 bytes from the CSPRNG, base64url.
pub fn new_token(prefix: &str, entropy: &dyn Entropy) -> String {
    let mut bytes = [0u8; 32];
    entropy.fill(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored for a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller, authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub role: Role,
    /// `None` only for a deployment admin.
    pub tenant_id: Option<TenantId>,
    pub staff_id: Option<StaffId>,
    /// The session's token hash, for logout.
    pub session_hash: Option<String>,
}

impl Principal {
    /// The caller's tenant; a deployment admin has none and cannot act inside tenants.
    pub fn tenant(&self) -> ApiResult<TenantId> {
        self.tenant_id.ok_or(ApiError::Forbidden)
    }
}

/// The bearer token of a request: the `Authorization` header, else the session cookie.
pub fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    cookie(&parts.headers, SESSION_COOKIE)
}

/// The value of the request's cookie `name`, if it sent one.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let token = bearer_token(parts).ok_or(ApiError::Unauthenticated)?;
        let principal = authenticate(state, &token).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

async fn authenticate(state: &AppState, token: &str) -> ApiResult<Principal> {
    let now = state.now();
    let hash = token_hash(token);
    if token.starts_with(STAFF_TOKEN_PREFIX) {
        let idle_until = now + Duration::minutes(i64::from(state.config.session_idle_minutes));
        let session = state.store.touch_session(&hash, now, idle_until).await?.ok_or(ApiError::Unauthenticated)?;
        let staff = state.store.staff(session.staff_id).await?.ok_or(ApiError::Unauthenticated)?.staff;
        if !staff.active {
            return Err(ApiError::Unauthenticated);
        }
        return Ok(Principal {
            actor: Actor::Staff { id: staff.id, role: staff.role },
            role: staff.role,
            tenant_id: staff.tenant_id,
            staff_id: Some(staff.id),
            session_hash: Some(hash),
        });
    }
    if token.starts_with(API_KEY_PREFIX) {
        let key = state.store.use_api_key(&hash, now).await?.ok_or(ApiError::Unauthenticated)?;
        return Ok(Principal {
            actor: Actor::ApiKey { id: key.id },
            role: key.role,
            tenant_id: Some(key.tenant_id),
            staff_id: None,
            session_hash: None,
        });
    }
    Err(ApiError::Unauthenticated)
}

/// A permission as a type, so a handler can name it in its signature.
pub trait RequiredPermission: Send + Sync + 'static {
    const PERMISSION: Permission;
}

pub mod perm {
    use super::RequiredPermission;
    use regain_core::Permission;

    macro_rules! permissions {
        ($($name:ident),+ $(,)?) => {
            $(
                #[derive(Debug)]
                pub struct $name;
                impl RequiredPermission for $name {
                    const PERMISSION: Permission = Permission::$name;
                }
            )+
        };
    }

    permissions!(
        TenantsManage,
        TenantRead,
        TenantSettingsWrite,
        StaffManage,
        StaffRead,
        ApiKeysManage,
        CustomersWrite,
        CustomersRead,
        CustomersErase,
        CasesCreate,
        CasesRead,
        CasesWork,
        CasesApprove,
        AuditRead,
        AuditVerify,
    );
}

/// An authenticated caller whose role allows `P`.
#[derive(Debug)]
pub struct Authorized<P> {
    pub principal: Principal,
    _permission: PhantomData<P>,
}

impl<P> Deref for Authorized<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<P: RequiredPermission> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if !principal.role.allows(P::PERMISSION) {
            return Err(ApiError::Forbidden);
        }
        Ok(Self { principal, _permission: PhantomData })
    }
}
