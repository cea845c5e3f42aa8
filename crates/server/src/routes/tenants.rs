//! Tenants: the client companies the desk serves. The deployment admin creates them; each
//! tenant's admin tunes its settings.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::tenant::NewTenant;
use regain_core::{Actor, Tenant, TenantId, TenantSettings};
use regain_store::AuditRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// ISO 3166-1 alpha-2 region for phone numbers written without a country code.
    pub default_region: Option<String>,
    #[schema(minimum = 1)]
    pub sla_first_response_minutes: Option<u32>,
    #[schema(minimum = 1)]
    pub sla_resolution_minutes: Option<u32>,
    #[schema(minimum = 1)]
    pub case_expiry_hours: Option<u32>,
    #[schema(minimum = 1, maximum = 100)]
    pub login_failures_max: Option<u32>,
    /// Closed cases are purged this many days after they last changed.
    #[schema(minimum = 1, maximum = 3653)]
    pub closed_case_retention_days: Option<u32>,
}

impl SettingsPatch {
    fn apply(self, mut s: TenantSettings) -> TenantSettings {
        if let Some(v) = self.default_region {
            s.default_region = v.trim().to_ascii_uppercase();
        }
        s.sla_first_response_minutes = self.sla_first_response_minutes.unwrap_or(s.sla_first_response_minutes);
        s.sla_resolution_minutes = self.sla_resolution_minutes.unwrap_or(s.sla_resolution_minutes);
        s.case_expiry_hours = self.case_expiry_hours.unwrap_or(s.case_expiry_hours);
        s.login_failures_max = self.login_failures_max.unwrap_or(s.login_failures_max);
        s.closed_case_retention_days = self.closed_case_retention_days.unwrap_or(s.closed_case_retention_days);
        s
    }
}

#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    pub default_region: String,
    pub sla_first_response_minutes: u32,
    pub sla_resolution_minutes: u32,
    pub case_expiry_hours: u32,
    pub login_failures_max: u32,
    pub closed_case_retention_days: u32,
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub settings: SettingsView,
    pub created_at: DateTime<Utc>,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        let s = &t.settings;
        Self {
            id: t.id.to_string(),
            slug: t.slug.to_string(),
            display_name: t.display_name.clone(),
            settings: SettingsView {
                default_region: s.default_region.clone(),
                sla_first_response_minutes: s.sla_first_response_minutes,
                sla_resolution_minutes: s.sla_resolution_minutes,
                case_expiry_hours: s.case_expiry_hours,
                login_failures_max: s.login_failures_max,
                closed_case_retention_days: s.closed_case_retention_days,
            },
            created_at: t.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Short name: 2-63 characters of a-z, 0-9 and '-'.
    pub slug: String,
    pub display_name: String,
    #[serde(default)]
    pub settings: Option<SettingsPatch>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub display_name: Option<String>,
    pub settings: Option<SettingsPatch>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantView>,
}

/// Create a tenant and return it.
pub async fn create_tenant_record(state: &AppState, req: CreateTenant, actor: Actor) -> ApiResult<Tenant> {
    let settings = req.settings.unwrap_or_default().apply(TenantSettings::default());
    let new = NewTenant::parse(&req.slug, &req.display_name, settings)?;
    let now = state.now();
    let tenant = Tenant {
        id: TenantId::generate(state.clock.as_ref(), state.entropy.as_ref()),
        slug: new.slug,
        display_name: new.display_name,
        settings: new.settings,
        created_at: now,
    };
    let audit = AuditRecord::new(Some(tenant.id), actor, "tenant.created", now)
        .data(serde_json::json!({"slug": tenant.slug.as_str(), "display_name": tenant.display_name}));
    state.store.create_tenant(&tenant, &audit).await?;
    tracing::info!(tenant_id = %tenant.id, slug = %tenant.slug, "tenant created");
    Ok(tenant)
}

/// Create a tenant (deployment admin).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 201, body = TenantView),
    (status = 409, description = "The slug is taken", body = crate::error::Problem, content_type = "application/problem+json"),
    (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantsManage>,
    ApiJson(req): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    let tenant = create_tenant_record(&state, req, auth.actor).await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(&tenant))))
}

/// List every tenant (deployment admin).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = TenantList),
))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Authorized<perm::TenantsManage>,
) -> ApiResult<Json<TenantList>> {
    let tenants = state.store.list_tenants().await?;
    Ok(Json(TenantList { items: tenants.iter().map(TenantView::from).collect() }))
}

/// The caller's own tenant.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenants", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = TenantView),
))]
pub async fn current(State(state): State<AppState>, auth: Authorized<perm::TenantRead>) -> ApiResult<Json<TenantView>> {
    let tenant = state.store.tenant(auth.tenant()?).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(TenantView::from(&tenant)))
}

/// Change the tenant's name or settings (tenant admin). Omitted fields keep their value.
#[utoipa::path(patch, path = "/api/v1/tenant", tag = "tenants", request_body = UpdateTenant, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = TenantView),
    (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantSettingsWrite>,
    ApiJson(req): ApiJson<UpdateTenant>,
) -> ApiResult<Json<TenantView>> {
    let tenant = state.store.tenant(auth.tenant()?).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let settings = req.settings.unwrap_or_default().apply(tenant.settings.clone());
    let display_name = req.display_name.as_deref().unwrap_or(&tenant.display_name);
    let parsed = NewTenant::parse(tenant.slug.as_str(), display_name, settings)?;
    let audit = AuditRecord::new(Some(tenant.id), auth.actor, "tenant.updated", state.now()).data(serde_json::json!({
        "display_name": parsed.display_name,
        "settings": serde_json::from_str::<serde_json::Value>(&regain_store::codec::settings_to_json(&parsed.settings))
            .unwrap_or_default(),
    }));
    let updated = state.store.update_tenant(tenant.id, &parsed.display_name, &parsed.settings, &audit).await?;
    tracing::info!(tenant_id = %tenant.id, "tenant settings changed");
    Ok(Json(TenantView::from(&updated)))
}
