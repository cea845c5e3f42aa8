//! The audit log over the API (SECURITY.md L4): the latest signed checkpoint, an entry, and
//! inclusion and consistency proofs between published checkpoints. Proofs and checkpoints are
//! hashes only, so every authenticated caller may have them; entries are for auditors and the
//! security tier of the entry's own tenant.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use regain_merkle::{consistency_proof_plan, inclusion_proof_plan, leaf_hash, ProofPlan};
use regain_store::StoredCheckpoint;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    /// The C2SP signed note: origin, size, base64 root, then the signature line.
    pub note: String,
    pub origin: String,
    pub size: u64,
    /// Base64 (standard) root hash.
    pub root: String,
    /// The log's Ed25519 verifier key, `<name>+<key id>+<base64 key>`.
    pub verifier_key: String,
    pub published_at: DateTime<Utc>,
}

fn checkpoint_view(state: &AppState, c: &StoredCheckpoint) -> CheckpointView {
    CheckpointView {
        note: c.note.clone(),
        origin: state.audit.origin().to_owned(),
        size: c.size,
        root: B64.encode(c.root),
        verifier_key: state.audit.verifier_key().to_owned(),
        published_at: c.at,
    }
}

/// The latest checkpoint of the audit log.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CheckpointView),
    (status = 404, description = "Nothing has been logged yet", body = Problem, content_type = "application/problem+json"),
))]
pub async fn checkpoint(
    State(state): State<AppState>,
    _auth: Authorized<perm::AuditVerify>,
) -> ApiResult<Json<CheckpointView>> {
    let latest = state.store.latest_checkpoint().await?.ok_or_else(|| ApiError::not_found("checkpoint"))?;
    Ok(Json(checkpoint_view(&state, &latest)))
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: u64,
    /// The canonical entry text; its leaf hash is SHA-256(0x00 || entry).
    pub entry: String,
    /// Base64 leaf hash.
    pub leaf_hash: String,
    pub action: String,
    pub at: DateTime<Utc>,
    pub case_id: Option<String>,
    pub customer_id: Option<String>,
}

fn parse_seq(text: &str) -> ApiResult<u64> {
    text.parse().map_err(|_| ApiError::not_found("audit entry"))
}

/// One entry of the log, by its position.
#[utoipa::path(get, path = "/api/v1/audit/entries/{seq}", tag = "audit", params(("seq" = u64, Path, description = "The entry's position, from 0")),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = AuditEntryView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn entry(
    State(state): State<AppState>,
    auth: Authorized<perm::AuditRead>,
    Path(seq): Path<String>,
) -> ApiResult<Json<AuditEntryView>> {
    let seq = parse_seq(&seq)?;
    let entry = state.store.audit_entry(seq).await?.ok_or_else(|| ApiError::not_found("audit entry"))?;
    // Tenant isolation: another tenant's entry (or a deployment-level one, for tenant staff)
    // is not found.
    if entry.tenant_id != auth.tenant_id {
        return Err(ApiError::not_found("audit entry"));
    }
    Ok(Json(AuditEntryView {
        seq,
        leaf_hash: B64.encode(leaf_hash(entry.entry.as_bytes())),
        entry: entry.entry,
        action: entry.action,
        at: entry.at,
        case_id: entry.case_id.map(|c| c.to_string()),
        customer_id: entry.customer_id.map(|c| c.to_string()),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry's position.
    pub seq: u64,
    /// A published checkpoint's size; the latest when absent.
    pub size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProofView {
    pub seq: u64,
    pub tree_size: u64,
    /// Base64 leaf hash of the entry.
    pub leaf_hash: String,
    /// Base64 sibling hashes, leaf to root (RFC 9162 2.1.3).
    pub proof: Vec<String>,
    /// Base64 root of the checkpoint the proof is against.
    pub root: String,
}

async fn checkpoint_of_size(state: &AppState, size: Option<u64>) -> ApiResult<StoredCheckpoint> {
    match size {
        Some(size) => state
            .store
            .checkpoint(size)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no checkpoint of size {size}"))),
        None => state.store.latest_checkpoint().await?.ok_or_else(|| ApiError::not_found("checkpoint")),
    }
}

async fn assemble(state: &AppState, plan: &ProofPlan) -> ApiResult<Vec<String>> {
    let nodes: HashMap<_, _> = state.store.audit_nodes(&plan.nodes()).await?;
    let proof = plan.assemble(&nodes).map_err(|e| ApiError::Internal(format!("audit proof: {e}")))?;
    Ok(proof.iter().map(|h| B64.encode(h)).collect())
}

/// Proof that an entry is in the log as of a checkpoint.
#[utoipa::path(get, path = "/api/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = InclusionProofView),
    (status = 404, description = "No such entry or checkpoint", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "The entry is not in a tree of that size", body = Problem, content_type = "application/problem+json"),
))]
pub async fn inclusion(
    State(state): State<AppState>,
    _auth: Authorized<perm::AuditVerify>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> ApiResult<Json<InclusionProofView>> {
    let checkpoint = checkpoint_of_size(&state, q.size).await?;
    let entry = state.store.audit_entry(q.seq).await?.ok_or_else(|| ApiError::not_found("audit entry"))?;
    if q.seq >= checkpoint.size {
        return Err(regain_core::ValidationError::new(
            "seq",
            format!("entry {} is not in a tree of size {}", q.seq, checkpoint.size),
        )
        .into());
    }
    let plan =
        inclusion_proof_plan(q.seq, checkpoint.size).map_err(|e| ApiError::Internal(format!("audit proof: {e}")))?;
    Ok(Json(InclusionProofView {
        seq: q.seq,
        tree_size: checkpoint.size,
        leaf_hash: B64.encode(leaf_hash(entry.entry.as_bytes())),
        proof: assemble(&state, &plan).await?,
        root: B64.encode(checkpoint.root),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older checkpoint's size.
    pub from: u64,
    /// The newer checkpoint's size; the latest when absent.
    pub to: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyProofView {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    /// Base64 hashes (RFC 9162 2.1.4).
    pub proof: Vec<String>,
}

/// Proof that a later checkpoint extends an earlier one: nothing logged was changed or removed.
#[utoipa::path(get, path = "/api/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ConsistencyProofView),
    (status = 404, description = "No checkpoint of that size", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Sizes out of order", body = Problem, content_type = "application/problem+json"),
))]
pub async fn consistency(
    State(state): State<AppState>,
    _auth: Authorized<perm::AuditVerify>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyProofView>> {
    let to = checkpoint_of_size(&state, q.to).await?;
    if q.from > to.size {
        return Err(
            regain_core::ValidationError::new("from", format!("must not be larger than to ({})", to.size)).into()
        );
    }
    let from = checkpoint_of_size(&state, Some(q.from)).await?;
    let plan =
        consistency_proof_plan(from.size, to.size).map_err(|e| ApiError::Internal(format!("audit proof: {e}")))?;
    Ok(Json(ConsistencyProofView {
        from: from.size,
        to: to.size,
        from_root: B64.encode(from.root),
        to_root: B64.encode(to.root),
        proof: assemble(&state, &plan).await?,
    }))
}
