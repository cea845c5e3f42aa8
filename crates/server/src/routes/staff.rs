//! Staff accounts. A tenant admin manages their tenant's staff; the deployment admin can create
//! anyone anywhere, including the first admin of a new tenant. A new account's TOTP secret is
//! shown once, in the creation response, for the person to enrol in their authenticator app.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use regain_core::staff::NewStaff;
use regain_core::totp::{otpauth_uri, TotpParams};
use regain_core::{Actor, Role, Staff, StaffId, TenantId};
use regain_store::{AuditRecord, StaffRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::StaffView;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::passwords::check_new_password;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub email: String,
    pub display_name: String,
    #[schema(value_type = crate::openapi::vocabulary::StaffRole, inline)]
    pub role: String,
    /// The initial password: 12 to 128 characters.
    pub password: String,
    /// The tenant's slug. Only a deployment admin names it; a tenant admin always creates in
    /// their own tenant.
    pub tenant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into an authenticator app.
    pub secret: String,
    /// The otpauth:// URI, for a QR code.
    pub otpauth_uri: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedStaff {
    pub staff: StaffView,
    /// Shown once: Regain cannot show it again.
    pub totp: TotpEnrollment,
}

#[derive(Serialize, ToSchema)]
pub struct StaffList {
    pub items: Vec<StaffView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StaffQuery {
    /// For a deployment admin: the tenant whose staff to list (its slug). Without it, the
    /// deployment admins.
    pub tenant: Option<String>,
}

/// Creates a staff account with a fresh TOTP secret; returns it with the secret.
pub async fn create_staff_record(
    state: &AppState,
    new: NewStaff,
    password: &str,
    actor: Actor,
) -> ApiResult<(Staff, Vec<u8>)> {
    check_new_password("password", password, 12)?;
    let mut totp_secret = vec![0u8; 20];
    state.entropy.fill(&mut totp_secret);
    let staff = Staff {
        id: StaffId::generate(state.clock.as_ref(), state.entropy.as_ref()),
        tenant_id: new.tenant_id,
        email: new.email,
        display_name: new.display_name,
        role: new.role,
        active: true,
        created_at: state.now(),
    };
    let password_hash = state.hasher.hash(password).await?;
    let record =
        StaffRecord { staff: staff.clone(), password_hash, totp_secret: totp_secret.clone(), locked_until: None };
    let audit = AuditRecord::new(staff.tenant_id, actor, "staff.created", staff.created_at)
        .data(serde_json::json!({"staff_id": staff.id.to_string(), "role": staff.role.as_str()}));
    state.store.create_staff(&record, &audit).await?;
    tracing::info!(staff_id = %staff.id, role = %staff.role, "staff account created");
    Ok((staff, totp_secret))
}

pub fn enrollment(staff: &Staff, tenant_name: &str, secret: &[u8]) -> TotpEnrollment {
    let params = TotpParams::default();
    TotpEnrollment {
        secret: regain_core::totp::encode_secret(secret),
        otpauth_uri: otpauth_uri(&format!("Regain ({tenant_name})"), staff.email.as_str(), secret, &params),
    }
}

async fn tenant_by_slug(state: &AppState, slug: &str) -> ApiResult<(TenantId, String)> {
    let tenant =
        state.store.tenant_by_slug(slug).await?.ok_or_else(|| {
            ApiError::Validation(regain_core::ValidationError::new("tenant", "no tenant has this slug"))
        })?;
    Ok((tenant.id, tenant.display_name))
}

/// Create a staff account.
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = CreateStaff, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 201, body = CreatedStaff),
    (status = 409, description = "The email is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::StaffManage>,
    ApiJson(req): ApiJson<CreateStaff>,
) -> ApiResult<(StatusCode, Json<CreatedStaff>)> {
    let (tenant_id, tenant_name) = match (auth.role, req.tenant.as_deref()) {
        (Role::DeploymentAdmin, Some(slug)) => {
            let (id, name) = tenant_by_slug(&state, slug).await?;
            (Some(id), name)
        }
        (Role::DeploymentAdmin, None) => (None, "deployment".to_owned()),
        (_, Some(_)) => {
            return Err(ApiError::Validation(regain_core::ValidationError::new(
                "tenant",
                "staff are created in your own tenant; leave this out",
            )))
        }
        (_, None) => {
            let id = auth.tenant()?;
            let name = state.store.tenant(id).await?.map(|t| t.display_name).unwrap_or_default();
            (Some(id), name)
        }
    };
    let new = NewStaff::parse(tenant_id, &req.email, &req.display_name, &req.role)?;
    let (staff, secret) = create_staff_record(&state, new, &req.password, auth.actor).await?;
    let totp = enrollment(&staff, &tenant_name, &secret);
    Ok((StatusCode::CREATED, Json(CreatedStaff { staff: StaffView::from(&staff), totp })))
}

/// List staff: the caller's tenant, or for a deployment admin the named tenant.
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff", params(StaffQuery), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = StaffList),
    (status = 422, description = "The tenant named does not exist", body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<perm::StaffRead>,
    ApiQuery(query): ApiQuery<StaffQuery>,
) -> ApiResult<Json<StaffList>> {
    let tenant = match (auth.role, query.tenant.as_deref()) {
        (Role::DeploymentAdmin, Some(slug)) => Some(tenant_by_slug(&state, slug).await?.0),
        (Role::DeploymentAdmin, None) => None,
        _ => Some(auth.tenant()?),
    };
    let staff = state.store.list_staff(tenant).await?;
    Ok(Json(StaffList { items: staff.iter().map(|r| StaffView::from(&r.staff)).collect() }))
}
