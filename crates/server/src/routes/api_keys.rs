//! Tenant API keys: how client systems (CRM, ticketing, the tenant's identity system) call
//! Regain. The secret is shown once; only its hash is kept.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::validation::bounded_text;
use regain_core::{Actor, ApiKeyId, Role, ValidationError};
use regain_store::{ApiKeyRecord, AuditRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{new_token, perm, token_hash, Authorized, API_KEY_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for ("zendesk", "crm sync").
    pub name: String,
    /// `integration` (default) or `tenant_admin`.
    #[schema(value_type = Option<crate::openapi::vocabulary::ApiKeyRole>, inline)]
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    #[schema(value_type = crate::openapi::vocabulary::ApiKeyRole, inline)]
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            role: k.role.to_string(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    /// Shown once: send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// Creates a key and returns it with its secret.
pub async fn create_api_key_record(
    state: &AppState,
    tenant_id: regain_core::TenantId,
    name: &str,
    role: Option<&str>,
    actor: Actor,
) -> ApiResult<(ApiKeyRecord, String)> {
    let name = bounded_text("name", name, 1, 100)?;
    let role = match role {
        Some(r) => Role::parse("role", r)?,
        None => Role::Integration,
    };
    if !Role::API_KEY.contains(&role) {
        return Err(ValidationError::new("role", "an API key is integration or tenant_admin").into());
    }
    let secret = new_token(API_KEY_PREFIX, state.entropy.as_ref());
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(state.clock.as_ref(), state.entropy.as_ref()),
        tenant_id,
        name,
        role,
        secret_hash: token_hash(&secret),
        created_by: match actor {
            Actor::Staff { id, .. } => Some(id),
            _ => None,
        },
        created_at: state.now(),
        last_used_at: None,
        revoked_at: None,
    };
    let audit =
        AuditRecord::new(Some(tenant_id), actor, "api_key.created", record.created_at).data(serde_json::json!({
            "api_key_id": record.id.to_string(), "name": record.name, "role": record.role.as_str(),
        }));
    state.store.create_api_key(&record, &audit).await?;
    tracing::info!(api_key_id = %record.id, role = %record.role, "API key created");
    Ok((record, secret))
}

/// Create an API key (tenant admin). The secret is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api keys", request_body = CreateApiKey, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 201, body = CreatedApiKey),
    (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let (record, secret) =
        create_api_key_record(&state, auth.tenant()?, &req.name, req.role.as_deref(), auth.actor).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key: ApiKeyView::from(&record), secret })))
}

/// List the tenant's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api keys", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ApiKeyList),
))]
pub async fn list(State(state): State<AppState>, auth: Authorized<perm::ApiKeysManage>) -> ApiResult<Json<ApiKeyList>> {
    let keys = state.store.list_api_keys(auth.tenant()?).await?;
    Ok(Json(ApiKeyList { items: keys.iter().map(ApiKeyView::from).collect() }))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api keys", params(("id" = String, Path, description = "The key's id")), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = ApiKeyId::parse("id", &id).map_err(|_| ApiError::not_found("API key"))?;
    let tenant = auth.tenant()?;
    let audit = AuditRecord::new(Some(tenant), auth.actor, "api_key.revoked", state.now())
        .data(serde_json::json!({"api_key_id": id.to_string()}));
    state.store.revoke_api_key(tenant, id, &audit).await.map_err(|e| match e {
        regain_store::StoreError::NotFound => ApiError::not_found("API key"),
        other => other.into(),
    })?;
    tracing::info!(api_key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
