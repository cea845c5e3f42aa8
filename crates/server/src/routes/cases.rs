//! Recovery cases: open, list (filters, keyset pages), read, and the timeline.
//! The state commands are in `commands`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use regain_core::case::{CaseKind, CaseState, Channel, NewCase, Tier};
use regain_core::{Actor, Case, CaseId, Customer, CustomerId, StaffId, TenantId, ValidationError};
use regain_store::{AssigneeFilter, CaseFilter, PageRequest, RequestContext, TimelineEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{perm, Authorized, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCase {
    #[schema(value_type = crate::openapi::vocabulary::CaseKind, inline)]
    pub kind: String,
    #[schema(value_type = crate::openapi::vocabulary::Channel, inline)]
    pub channel: String,
    /// What the customer says they need, in a sentence.
    pub summary: Option<String>,
    /// Where the request came from, for the risk assessment: what the intake knows of the
    /// customer's side (a client system passes on its visitor's IP and device; a phone system
    /// its caller ID). Only a client system's API key may pass it (403 `context-from-intake`
    /// for staff).
    pub context: Option<RequestContextBody>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestContextBody {
    /// The customer's IP address (IPv4 or IPv6).
    pub ip: Option<String>,
    #[schema(max_length = 512)]
    pub user_agent: Option<String>,
    /// The client system's own identifier for the device.
    #[schema(max_length = 256)]
    pub device_id: Option<String>,
    /// The number the customer calls or texts from (caller ID).
    pub phone: Option<String>,
    /// The address the customer writes from.
    pub email: Option<String>,
}

impl RequestContextBody {
    /// Validates and normalizes the context: the IP canonical, the phone in E.164 (in the
    /// tenant's region), the email normalized.
    pub fn parse(&self, region: &str) -> Result<RequestContext, ValidationError> {
        let field = |name: &str, value: &Option<String>, max: usize| -> Result<Option<String>, ValidationError> {
            value.as_deref().map(|v| regain_core::validation::bounded_text(name, v, 1, max)).transpose()
        };
        let ip = match self.ip.as_deref() {
            None => None,
            Some(ip) => Some(
                ip.trim()
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| ValidationError::new("context/ip", "is not an IPv4 or IPv6 address"))?
                    .to_string(),
            ),
        };
        let phone = match self.phone.as_deref() {
            None => None,
            Some(p) => Some(regain_core::PhoneE164::parse("context/phone", p, region)?.as_str().to_owned()),
        };
        let email = match self.email.as_deref() {
            None => None,
            Some(e) => Some(regain_core::EmailAddress::parse("context/email", e)?.normalized()),
        };
        Ok(RequestContext {
            ip,
            user_agent: field("context/user_agent", &self.user_agent, 512)?,
            device_id: field("context/device_id", &self.device_id, 256)?,
            phone,
            email,
            named_phone: None,
            named_email: None,
        })
    }
}

/// The case's risk as the agent console shows it: the score, the band in force and what it
/// means.
#[derive(Serialize, ToSchema)]
pub struct CaseRiskView {
    #[schema(minimum = 0, maximum = 100)]
    pub score: u8,
    /// low, medium, high or critical: the highest band any assessment of this case gave.
    pub band: String,
    /// proceed, step_up, supervisor_approval or hold.
    pub route: String,
    /// One more proof is needed before deciding.
    pub step_up: bool,
    /// The security team should consider a lockdown.
    pub lockdown_offered: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ActorView {
    /// staff, api_key, customer or system.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl From<&Actor> for ActorView {
    fn from(a: &Actor) -> Self {
        Self {
            kind: a.kind(),
            id: a.id(),
            role: match a {
                Actor::Staff { role, .. } => Some(role.to_string()),
                _ => None,
            },
        }
    }
}

/// What an agent may know of the customer on a case: match, status, what is enrolled, and
/// contact points masked (SECURITY.md G2). Never a stored value.
#[derive(Serialize, ToSchema)]
pub struct MaskedCustomer {
    pub id: String,
    #[schema(value_type = crate::openapi::vocabulary::CustomerStatus, inline)]
    pub status: String,
    pub privileged: bool,
    pub vip: bool,
    /// `j***@e***.com`
    pub emails: Vec<String>,
    /// `*** ending 34`
    pub phones: Vec<String>,
    pub totp_enrolled: bool,
    pub recovery_codes_remaining: u32,
    pub passkeys: u32,
}

impl From<&Customer> for MaskedCustomer {
    fn from(c: &Customer) -> Self {
        Self {
            id: c.id.to_string(),
            status: c.status.to_string(),
            privileged: c.flags.privileged,
            vip: c.flags.vip,
            emails: c.emails.iter().map(|e| e.address.masked()).collect(),
            phones: c.phones.iter().map(|p| p.number.masked()).collect(),
            totp_enrolled: c.factors.totp,
            recovery_codes_remaining: c.factors.recovery_codes_remaining,
            passkeys: c.factors.passkeys,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SlaView {
    pub first_response_due: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolution_due: DateTime<Utc>,
    /// A deadline has passed without being met.
    pub breached: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CaseView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(value_type = crate::openapi::vocabulary::CaseKind, inline)]
    pub kind: String,
    #[schema(value_type = crate::openapi::vocabulary::Channel, inline)]
    pub channel: String,
    #[schema(value_type = crate::openapi::vocabulary::CaseState, inline)]
    pub state: String,
    #[schema(minimum = 1, maximum = 3)]
    pub tier: u8,
    #[schema(format = Uuid)]
    pub assignee: Option<String>,
    #[schema(format = Uuid)]
    pub customer_id: Option<String>,
    /// The identified customer, masked; on single-case responses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<MaskedCustomer>,
    pub summary: Option<String>,
    pub approval_required: bool,
    /// The risk assessment in force; absent before the first one. Reasons: `GET …/risk`.
    pub risk: Option<CaseRiskView>,
    /// What the agent noticed (social-engineering tells).
    #[schema(value_type = Vec<crate::openapi::vocabulary::Observation>, inline)]
    pub observed: Vec<String>,
    pub cooling_off_until: Option<DateTime<Utc>>,
    pub sla: SlaView,
    pub expires_at: DateTime<Utc>,
    pub created_by: ActorView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change.
    pub version: i64,
    /// The recovery actions Regain performs for the case, with the pending step; on
    /// single-case responses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<ActionView>>,
}

/// A recovery action and where it stands.
#[derive(Serialize, ToSchema)]
pub struct ActionView {
    pub id: String,
    /// password_reset, username_reminder, unlock, mfa_reset, contact_change, lockdown, or
    /// deactivate (owed to the tenant's account system after an unlock crossed a lockdown)
    pub action: String,
    /// Who performs it: `builtin` (the directory inside Regain).
    pub connector: String,
    /// `pending` (waiting, or being retried), `done` or `failed`.
    pub state: String,
    pub attempts: u32,
    /// Why the last attempt failed; never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When a pending action is tried next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<regain_store::ActionEntry> for ActionView {
    fn from(a: regain_store::ActionEntry) -> Self {
        Self {
            id: a.id,
            action: a.action.to_string(),
            connector: a.connector,
            state: a.state,
            attempts: a.attempts,
            last_error: a.last_error,
            next_attempt_at: a.next_attempt_at,
            created_at: a.created_at,
            done_at: a.done_at,
        }
    }
}

impl CaseView {
    pub fn new(case: &Case, customer: Option<&Customer>, now: DateTime<Utc>) -> Self {
        // A deadline is breached if it was met late, or is unmet and past. A closed case is
        // judged by when it closed; one closed without a staff response has no response SLA.
        let terminal = case.state.is_terminal();
        let first_late = match case.first_response_at {
            Some(at) => at > case.first_response_due,
            None => !terminal && now > case.first_response_due,
        };
        let resolution_late = if terminal { case.updated_at > case.resolution_due } else { now > case.resolution_due };
        Self {
            id: case.id.to_string(),
            kind: case.kind.to_string(),
            channel: case.channel.to_string(),
            state: case.state.to_string(),
            tier: case.tier.get(),
            assignee: case.assignee.map(|a| a.to_string()),
            customer_id: case.customer_id.map(|c| c.to_string()),
            customer: customer.map(MaskedCustomer::from),
            summary: case.summary.clone(),
            approval_required: case.approval_required,
            risk: case.risk.as_ref().map(|r| {
                let route = case.risk_route();
                CaseRiskView {
                    score: r.score,
                    band: r.band.to_string(),
                    route: route.action.to_string(),
                    step_up: route.step_up,
                    lockdown_offered: route.lockdown_offered,
                }
            }),
            observed: case.observed.iter().map(|o| o.to_string()).collect(),
            cooling_off_until: case.cooling_off_until,
            sla: SlaView {
                first_response_due: case.first_response_due,
                first_response_at: case.first_response_at,
                resolution_due: case.resolution_due,
                breached: first_late || resolution_late,
            },
            expires_at: case.expires_at,
            created_by: ActorView::from(&case.created_by),
            created_at: case.created_at,
            updated_at: case.updated_at,
            version: case.version,
            actions: None,
        }
    }
}

/// The case view with its customer, as single-case responses show it.
pub async fn case_detail(state: &AppState, case: &Case) -> ApiResult<CaseView> {
    let customer = match case.customer_id {
        Some(id) => state.store.customer(case.tenant_id, id).await?,
        None => None,
    };
    let mut view = CaseView::new(case, customer.as_ref(), state.now());
    let actions = state.store.case_actions(case.tenant_id, case.id).await?;
    view.actions = Some(actions.into_iter().map(ActionView::from).collect());
    Ok(view)
}

pub fn parse_case_id(id: &str) -> ApiResult<CaseId> {
    CaseId::parse("id", id).map_err(|_| ApiError::not_found("case"))
}

pub async fn load_case(state: &AppState, tenant: TenantId, id: &str) -> ApiResult<Case> {
    let id = parse_case_id(id)?;
    state.store.case(tenant, id).await?.ok_or_else(|| ApiError::not_found("case"))
}

/// Opens a case for `tenant`.
///
/// The request is recorded for velocity and assessed at once (issue 5): a request from a
/// denied address, or one of a wave, is flagged before anyone works it.
pub async fn open_case(
    state: &AppState,
    tenant: TenantId,
    new: NewCase,
    actor: Actor,
    context: &RequestContext,
) -> ApiResult<Case> {
    let settings = state.store.tenant(tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?.settings;
    let id = CaseId::generate(state.clock.as_ref(), state.entropy.as_ref());
    let (case, events) = Case::open(id, tenant, &settings, new, actor, state.now());
    let hooks = crate::webhooks::effects_or_log(state, &case, &events).await;
    state.store.create_case_with_effects(&case, &events, &actor, Some(context), &hooks).await?;
    tracing::info!(case_id = %case.id, kind = %case.kind, channel = %case.channel, "case opened");
    // The case exists now: an assessment that fails here is logged, not the caller's error (a
    // retry would open a second case); every step toward an action assesses again anyway.
    match crate::risk::assess_and_record(state, case.clone()).await {
        Ok(assessed) => Ok(assessed),
        Err(e) => {
            tracing::warn!(case_id = %case.id, error = %e, "the intake risk assessment failed; it runs again before any action");
            Ok(case)
        }
    }
}

/// Open a recovery case.
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = CreateCase, security(("bearer" = []), ("cookie" = [])), responses(
    (status = 201, body = CaseView),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesCreate>,
    ApiJson(req): ApiJson<CreateCase>,
) -> ApiResult<(StatusCode, Json<CaseView>)> {
    let new = NewCase::parse(&req.kind, &req.channel, req.summary.as_deref())?;
    // Where the customer came from is what the intake system saw, never what someone on the
    // desk types in: an agent could otherwise name an allow-listed address to lower the risk.
    if req.context.is_some() && !matches!(auth.actor, Actor::ApiKey { .. }) {
        return Err(ApiError::Refused {
            status: StatusCode::FORBIDDEN,
            code: "context-from-intake",
            detail: "the request's context (IP, device, caller ID) is passed by the client system's API key, \
                     not entered by staff"
                .into(),
        });
    }
    let tenant = state.store.tenant(auth.tenant()?).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let context = req.context.unwrap_or_default().parse(&tenant.settings.default_region)?;
    let case = open_case(&state, tenant.id, new, auth.actor, &context).await?;
    Ok((StatusCode::CREATED, Json(CaseView::new(&case, None, state.now()))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseQuery {
    /// One state or several, comma-separated: `open,identifying`.
    #[param(value_type = Option<crate::openapi::vocabulary::CaseStates>, inline)]
    pub state: Option<String>,
    #[param(value_type = Option<crate::openapi::vocabulary::CaseKind>, inline)]
    pub kind: Option<String>,
    #[param(value_type = Option<crate::openapi::vocabulary::Channel>, inline)]
    pub channel: Option<String>,
    #[param(minimum = 1, maximum = 3)]
    pub tier: Option<i64>,
    /// A staff id, `me`, or `none` for the unassigned queue.
    #[param(pattern = r"^(me|none|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")]
    pub assignee: Option<String>,
    #[param(format = Uuid)]
    pub customer_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page. Pages run newest first by creation time (cases
    /// opened within the same millisecond come in a stable but arbitrary order).
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CaseList {
    pub items: Vec<CaseView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn case_filter(q: &CaseQuery, principal: &Principal) -> Result<(CaseFilter, PageRequest), ValidationError> {
    let states = match q.state.as_deref() {
        Some(list) => {
            list.split(',').map(|s| CaseState::parse("state", s.trim_matches(' '))).collect::<Result<_, _>>()?
        }
        None => Vec::new(),
    };
    let assignee = match q.assignee.as_deref() {
        None => None,
        Some("none") => Some(AssigneeFilter::Unassigned),
        Some("me") => Some(AssigneeFilter::Staff(
            principal.staff_id.ok_or_else(|| ValidationError::new("assignee", "`me` is for staff sessions"))?,
        )),
        Some(id) => Some(AssigneeFilter::Staff(StaffId::parse("assignee", id)?)),
    };
    let limit = match q.limit {
        None => PageRequest::LIMIT_DEFAULT,
        Some(n) if (1..=i64::from(PageRequest::LIMIT_MAX)).contains(&n) => n as u32,
        Some(_) => return Err(ValidationError::new("limit", "must be between 1 and 200")),
    };
    let filter = CaseFilter {
        states,
        kind: q.kind.as_deref().map(|k| CaseKind::parse("kind", k)).transpose()?,
        channel: q.channel.as_deref().map(|c| Channel::parse("channel", c)).transpose()?,
        tier: q.tier.map(|t| Tier::new("tier", t)).transpose()?,
        assignee,
        customer_id: q.customer_id.as_deref().map(|c| CustomerId::parse("customer_id", c)).transpose()?,
    };
    let after = q.cursor.as_deref().map(|c| CaseId::parse("cursor", c)).transpose()?;
    Ok((filter, PageRequest { limit, after }))
}

/// List cases, newest first, narrowed by the filters given.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(CaseQuery), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CaseList),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    ApiQuery(q): ApiQuery<CaseQuery>,
) -> ApiResult<Json<CaseList>> {
    let (filter, page) = case_filter(&q, &auth)?;
    let result = state.store.list_cases(auth.tenant()?, &filter, &page).await?;
    let now = state.now();
    Ok(Json(CaseList {
        items: result.items.iter().map(|c| CaseView::new(c, None, now)).collect(),
        next_cursor: result.next_after.map(|id| id.to_string()),
    }))
}

/// Read one case, with its customer masked.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = CaseView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseView>> {
    let case = load_case(&state, auth.tenant()?, &id).await?;
    Ok(Json(case_detail(&state, &case).await?))
}

#[derive(Serialize, ToSchema)]
pub struct TimelineEntryView {
    /// 1, 2, 3 … within the case.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: ActorView,
    /// `case.opened`, `case.state_changed`, …
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's details; their fields depend on the type.
    pub data: serde_json::Value,
    /// The case's state after this event.
    pub state: String,
    /// The entry's free text (a note, a reason) was erased with the customer's data or by
    /// retention: those fields are `null`. The rest of the entry is as it was.
    pub erased: bool,
}

impl From<&TimelineEntry> for TimelineEntryView {
    fn from(e: &TimelineEntry) -> Self {
        let (name, data) = regain_store::codec::event_to_json(&e.event);
        let mut data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
        if let (true, serde_json::Value::Object(map)) = (e.erased, &mut data) {
            for field in ["text", "reason"] {
                if let Some(value) = map.get_mut(field) {
                    *value = serde_json::Value::Null;
                }
            }
        }
        Self {
            seq: e.seq,
            at: e.at,
            actor: ActorView::from(&e.actor),
            event_type: name.to_owned(),
            data,
            state: e.state_after.to_string(),
            erased: e.erased,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Timeline {
    pub items: Vec<TimelineEntryView>,
}

/// The case's timeline: every change, who made it and when (UTC), oldest first.
#[utoipa::path(get, path = "/api/v1/cases/{id}/timeline", tag = "cases", params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = Timeline),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn timeline(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<Timeline>> {
    let tenant = auth.tenant()?;
    let case_id = parse_case_id(&id)?;
    let entries = state.store.timeline(tenant, case_id).await?;
    if entries.is_empty() && state.store.case(tenant, case_id).await?.is_none() {
        return Err(ApiError::not_found("case"));
    }
    Ok(Json(Timeline { items: entries.iter().map(TimelineEntryView::from).collect() }))
}
