//! Risk on the API (issue 5): a case's assessment reason by reason, a fresh assessment, the
//! agent's observations, the lists in force, and scoring a hand-made snapshot against the
//! tenant's policy (for tuning weights before saving them).

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::case::{apply, CaseCommand, CaseEvent};
use regain_core::risk::{Observation, RiskAssessment, Snapshot};
use regain_core::{Case, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cases::load_case;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ReasonView {
    /// The reason's code, as the policy's `risk/weights` names it: `sim_swap_recent`, …
    pub code: String,
    /// Its contribution to the score (negative: speaks for the request).
    pub points: i32,
    /// In words, without any stored value.
    pub detail: String,
    /// Where the signal came from: `store`, `lists`, `sim_swap:camara`, `agent`, `case`.
    pub source: String,
}

#[derive(Serialize, ToSchema)]
pub struct RouteView {
    /// proceed, step_up, supervisor_approval or hold.
    pub action: String,
    /// The tier the case is at least at.
    pub tier: u8,
    pub step_up: bool,
    pub approval: bool,
    pub hold: bool,
    pub lockdown_offered: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RiskView {
    pub case_id: String,
    /// Absent before the first assessment.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<u8>,
    /// The band in force: the highest any assessment of this case gave.
    pub band: Option<String>,
    pub route: RouteView,
    /// The latest assessment's reasons, largest first.
    pub reasons: Vec<ReasonView>,
    pub assessed_at: Option<DateTime<Utc>>,
    /// The policy version it was scored under (`null`: the built-in default).
    pub policy_version: Option<i64>,
    /// The tells the agent recorded.
    #[schema(value_type = Vec<crate::openapi::vocabulary::Observation>, inline)]
    pub observed: Vec<String>,
}

impl From<&regain_core::risk::Route> for RouteView {
    fn from(route: &regain_core::risk::Route) -> Self {
        Self {
            action: route.action.to_string(),
            tier: route.tier.get(),
            step_up: route.step_up,
            approval: route.approval,
            hold: route.hold,
            lockdown_offered: route.lockdown_offered,
        }
    }
}

async fn risk_view(state: &AppState, case: &Case) -> ApiResult<RiskView> {
    let timeline = state.store.timeline(case.tenant_id, case.id).await?;
    let latest = timeline.iter().rev().find_map(|entry| match &entry.event {
        CaseEvent::RiskAssessed { reasons, policy_version, .. } => Some((entry.at, reasons, *policy_version)),
        _ => None,
    });
    let route = case.risk_route();
    Ok(RiskView {
        case_id: case.id.to_string(),
        score: case.risk.as_ref().map(|r| r.score),
        band: case.risk.as_ref().map(|r| r.band.to_string()),
        route: RouteView::from(&route),
        reasons: latest
            .map(|(_, reasons, _)| {
                reasons
                    .iter()
                    .map(|r| ReasonView {
                        code: r.code.clone(),
                        points: r.points,
                        detail: r.detail.clone(),
                        source: r.source.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        assessed_at: latest.map(|(at, _, _)| at),
        policy_version: latest.and_then(|(_, _, v)| v),
        observed: case.observed.iter().map(|o| o.to_string()).collect(),
    })
}

/// The case's risk: score, band in force, route, and the latest assessment's reasons.
#[utoipa::path(get, path = "/api/v1/cases/{id}/risk", tag = "risk", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = RiskView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<RiskView>> {
    let case = load_case(&state, auth.tenant()?, &id).await?;
    Ok(Json(risk_view(&state, &case).await?))
}

/// Assess the case again now, with fresh signals (recorded when the answer changed).
#[utoipa::path(post, path = "/api/v1/cases/{id}/risk", tag = "risk", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = RiskView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The case is past execution or closed", body = Problem, content_type = "application/problem+json"),
))]
pub async fn assess(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
) -> ApiResult<Json<RiskView>> {
    let case = load_case(&state, auth.tenant()?, &id).await?;
    if !case.state.is_before_execution() {
        return Err(ApiError::Conflict {
            code: "wrong-state",
            detail: format!("a case in state {} is not assessed any more", case.state),
        });
    }
    let case = crate::risk::assess_and_record(&state, case).await?;
    Ok(Json(risk_view(&state, &case).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationsBody {
    #[schema(value_type = Vec<crate::openapi::vocabulary::Observation>, inline)]
    pub tells: Vec<String>,
}

/// Record what the agent noticed on the call or chat; the case is assessed again with it.
#[utoipa::path(post, path = "/api/v1/cases/{id}/observations", tag = "risk", params(("id" = String, Path)),
    request_body = ObservationsBody, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = RiskView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn observe(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ObservationsBody>,
) -> ApiResult<Json<RiskView>> {
    if req.tells.len() > Observation::ALL.len() {
        return Err(ValidationError::new(
            "tells",
            format!("must name at most {} observations", Observation::ALL.len()),
        )
        .into());
    }
    let tells = req
        .tells
        .iter()
        .enumerate()
        .map(|(i, t)| Observation::parse(&format!("tells/{i}"), t))
        .collect::<Result<Vec<_>, _>>()?;
    let case = load_case(&state, auth.tenant()?, &id).await?;
    if !case.state.is_before_execution() {
        return Err(ApiError::Conflict {
            code: "wrong-state",
            detail: format!("a case in state {} takes no more observations", case.state),
        });
    }
    let (next, events) = apply(&case, CaseCommand::Observe { tells }, auth.actor, state.now())?;
    let case = if events.is_empty() {
        case
    } else {
        crate::webhooks::commit(&state, &next, &events, &auth.actor, Vec::new()).await?;
        next
    };
    let case = crate::risk::assess_and_record(&state, case).await?;
    Ok(Json(risk_view(&state, &case).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ListView {
    pub name: String,
    /// ip_allow, ip_deny or disposable_email_domains.
    pub kind: &'static str,
    /// `all` tenants, or `tenant` (this tenant's own).
    pub scope: &'static str,
    /// The file's name in the lists folder.
    pub file: String,
    pub entries: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ListsView {
    /// Whether a lists folder is configured (`risk.lists_dir`).
    pub configured: bool,
    pub loaded_at: Option<DateTime<Utc>>,
    pub lists: Vec<ListView>,
    /// The last reload's error (`file:line: what is wrong`); the lists above stay in force.
    pub last_error: Option<String>,
}

/// A list error as `tenant_slug` may read it: its own files' and everyone's with the file (as
/// named in the folder) and the line; another tenant's only as the fact that a reload failed.
fn visible_error(state: &AppState, e: &crate::risk::lists::ListLoadError, tenant_slug: &str) -> String {
    let dir = state.risk.lists.dir();
    let relative = dir.and_then(|dir| e.file.strip_prefix(dir).ok()).map(std::path::Path::to_owned);
    let ours = relative.as_ref().is_some_and(|r| {
        let parts: Vec<_> = r.components().collect();
        // Shared: the folder itself, or a file directly in it (a subfolder is a tenant's).
        let shared = parts.is_empty() || (parts.len() == 1 && !dir.is_some_and(|d| d.join(r).is_dir()));
        shared || parts.first().is_some_and(|c| c.as_os_str() == tenant_slug)
    });
    match relative {
        Some(relative) if relative.as_os_str().is_empty() => format!("the lists folder: {}", e.message),
        Some(relative) if ours => {
            let at =
                if e.line > 0 { format!("{}:{}", relative.display(), e.line) } else { relative.display().to_string() };
            format!("{at}: {}", e.message)
        }
        _ => "another tenant's list file does not parse (the operator has been told in the log)".to_owned(),
    }
}

fn lists_view(state: &AppState, tenant_slug: &str) -> ListsView {
    let set = state.risk.lists.current();
    let lists = set
        .for_tenant(tenant_slug)
        .map(|l| ListView {
            name: l.name.clone(),
            kind: l.kind(),
            scope: if l.tenant.is_some() { "tenant" } else { "all" },
            file: l.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            entries: l.entries(),
        })
        .collect();
    ListsView {
        configured: state.risk.lists.dir().is_some(),
        loaded_at: set.loaded_at,
        lists,
        last_error: state.risk.lists.last_error().map(|e| visible_error(state, &e, tenant_slug)),
    }
}

/// The IP and email-domain lists in force for this tenant.
#[utoipa::path(get, path = "/api/v1/risk/lists", tag = "risk", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ListsView),
))]
pub async fn lists(State(state): State<AppState>, auth: Authorized<perm::TenantRead>) -> ApiResult<Json<ListsView>> {
    let tenant = state.store.tenant(auth.tenant()?).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(lists_view(&state, tenant.slug.as_str())))
}

/// Reload the lists from their folder now. A file that does not parse is refused with its line
/// and the lists in force stay.
#[utoipa::path(post, path = "/api/v1/risk/lists/reload", tag = "risk", security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ListsView),
    (status = 422, description = "A list file does not parse: its name and line", body = Problem, content_type = "application/problem+json"),
))]
pub async fn reload_lists(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantSettingsWrite>,
) -> ApiResult<Json<ListsView>> {
    let tenant = state.store.tenant(auth.tenant()?).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let now = state.now();
    let risk = std::sync::Arc::clone(&state.risk);
    let outcome = tokio::task::spawn_blocking(move || risk.lists.reload(now, true))
        .await
        .map_err(|e| ApiError::Internal(format!("list reload: {e}")))?;
    if let Err(e) = outcome {
        tracing::error!(error = %e, "risk lists not reloaded; the previous lists stay in force");
        let what = visible_error(&state, &e, tenant.slug.as_str());
        return Err(ValidationError::new("lists", format!("{what}; the previous lists stay in force")).into());
    }
    tracing::info!("risk lists reloaded on request");
    Ok(Json(lists_view(&state, tenant.slug.as_str())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// A snapshot: `kind`, `channel`, `now` (RFC 3339) and `signals`, each with a `fact`
    /// (requests, failures, changed, login_history, ip_listed, disposable_email, sim_swap,
    /// account, hour_of_day, observed, missing) and its fields, as in the evaluation corpus.
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
    /// A policy document to score with instead of the one in force (to try weights before
    /// saving them).
    #[schema(value_type = Object)]
    pub policy: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ScoreView {
    #[schema(minimum = 0, maximum = 100)]
    pub score: u8,
    pub band: String,
    pub route: RouteView,
    pub reasons: Vec<ReasonView>,
}

impl From<&RiskAssessment> for ScoreView {
    fn from(a: &RiskAssessment) -> Self {
        Self {
            score: a.score,
            band: a.band.to_string(),
            route: RouteView::from(&a.route),
            reasons: a
                .reasons
                .iter()
                .map(|r| ReasonView {
                    code: r.code.to_string(),
                    points: r.points,
                    detail: r.detail.clone(),
                    source: r.source.clone(),
                })
                .collect(),
        }
    }
}

/// Score a hand-made snapshot with the tenant's policy (or a draft): nothing is recorded.
#[utoipa::path(post, path = "/api/v1/risk/score", tag = "risk", request_body = ScoreRequest,
    security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ScoreView),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn score(
    State(state): State<AppState>,
    auth: Authorized<perm::TenantSettingsWrite>,
    ApiJson(req): ApiJson<ScoreRequest>,
) -> ApiResult<Json<ScoreView>> {
    let snapshot = Snapshot::from_value(&req.snapshot).map_err(|e| e.within("snapshot"))?;
    let policy = match &req.policy {
        Some(document) => regain_core::policy::AssurancePolicy::from_value(document).map_err(|e| e.within("policy"))?,
        None => crate::verification::tenant_policy(&state, auth.tenant()?).await?.0,
    };
    let assessment = regain_core::risk::score(&policy.risk, &snapshot);
    Ok(Json(ScoreView::from(&assessment)))
}
