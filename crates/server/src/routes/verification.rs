//! Identifying and verifying the person on a case (issue 4, SECURITY.md T1–T7, M1–M3, K1, G2).
//!
//! The agent sends what the caller claims to `identification` and gets match / no match per
//! field, never a stored value; then collects proofs of possession — a code or link to a
//! registered contact point (shown masked), the customer's authenticator app, a saved recovery
//! code — until the tenant's assurance policy is satisfied. Knowledge answers are recorded as
//! signals and never satisfy it. Every attempt is a timeline and audit entry; every counted
//! failure is the customer's, across cases, channels, agents and addresses, and enough of them
//! stop recovery for a cool-down that nobody on the desk can lift.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use regain_core::case::{apply, CaseCommand, CaseEvent, CaseState};
use regain_core::identify::{self, Claim, ClaimedIdentity, Outcome};
use regain_core::policy::{Assessment, IgnoredBecause, Method};
use regain_core::totp::{verify_totp, TotpParams};
use regain_core::{Case, Customer, CustomerId, ValidationError};
use regain_store::{AttemptContext, AttemptRecorded, Consume, Delivery, NewAttempt, NewChallenge, Redeemed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cases::{case_detail, load_case, CaseView};
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ClientInfo};
use crate::state::AppState;
use crate::verification::{
    case_verification, compose, escalate_held, failure_limit, held, next_step_text, purpose, random_code,
    refuse_if_held, require_verifying, settled, tenant_policy, CaseVerification,
};

/// Digits in a one-time code (SECURITY.md T1: at least 6).
pub const CODE_DIGITS: u32 = 6;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentificationBody {
    pub full_name: Option<String>,
    pub username: Option<String>,
    pub account_number: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IdentificationView {
    /// `identified`, `ambiguous` (several records fit: ask for more, none is disclosed) or
    /// `no_match`.
    pub outcome: &'static str,
    /// Per field given: `match` or `no_match`. Empty when the outcome is ambiguous.
    pub fields: BTreeMap<String, String>,
    /// The case afterwards (in `verifying` once identified).
    pub case: CaseView,
}

/// Compare what the caller claims with the customer records.
///
/// Identified: the case moves to verification with that customer. Not identified: a mismatch
/// against the one record the claim pointed to counts as a failure for that customer, so
/// re-asking is possible but limited.
#[utoipa::path(post, path = "/api/v1/cases/{id}/identification", tag = "verification", request_body = IdentificationBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = IdentificationView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The case is not identifying", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "A malformed identifier", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn identification(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<IdentificationBody>,
) -> ApiResult<Json<IdentificationView>> {
    let tenant_id = auth.tenant()?;
    let claimed = ClaimedIdentity {
        full_name: req.full_name,
        username: req.username,
        account_number: req.account_number,
        email: req.email,
        phone: req.phone,
    };
    Ok(Json(identify_caller(&state, tenant_id, &id, claimed, auth.actor, client.ip).await?))
}

/// Identification for the API and the command line (the demo's history): compares the claim,
/// records the answer, and moves the case to verification when one customer fits.
pub async fn identify_caller(
    state: &AppState,
    tenant_id: regain_core::TenantId,
    id: &str,
    claimed: ClaimedIdentity,
    actor: regain_core::Actor,
    ip: Option<String>,
) -> ApiResult<IdentificationView> {
    let state = state.clone();
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let case = load_case(&state, tenant_id, id).await?;
    if case.state != CaseState::Identifying {
        return Err(ApiError::Conflict {
            code: "wrong-state",
            detail: format!("a case in state {} cannot take identification; start identification first", case.state),
        });
    }
    regain_core::case::may_work(&case, actor)?;
    let claim = Claim::parse(&claimed, &tenant.settings.default_region)?;
    let mut candidates: Vec<Customer> = Vec::new();
    for lookup in claim.lookups() {
        for found in state.store.find_customers(tenant_id, &lookup).await? {
            if !candidates.iter().any(|c| c.id == found.id) {
                candidates.push(found);
            }
        }
    }
    let result = identify::identify(&claim, &candidates);
    let fields: Vec<_> = result.fields.iter().filter(|(_, m)| *m != identify::FieldMatch::NotGiven).cloned().collect();
    let outcome = match result.outcome {
        Outcome::Identified(_) => "identified",
        Outcome::Ambiguous => "ambiguous",
        Outcome::NoMatch => "no_match",
    };
    let checked = CaseEvent::IdentificationChecked { outcome: outcome.to_owned(), fields: fields.clone() };
    let (policy, _) = tenant_policy(&state, tenant_id).await?;
    let ctx = AttemptContext { actor, ip: ip.clone(), at: state.now() };
    let case_after = match result.outcome {
        Outcome::Identified(customer) => {
            refuse_if_held(&state, tenant_id, customer).await?;
            let (next, mut events) = apply(&case, CaseCommand::Identify { customer_id: customer }, actor, ctx.at)?;
            events.insert(0, checked);
            crate::webhooks::commit(&state, &next, &events, &actor, Vec::new()).await?;
            let attempt = passed_attempt("identification", None, None);
            let recorded = state
                .store
                .record_attempt(&next, Some(customer), &attempt, &ctx, &[], &[], &failure_limit(&policy), None)
                .await?;
            refused_by_hold(&recorded)?;
            next
        }
        _ => {
            let attempt = NewAttempt {
                method: "identification".into(),
                passed: false,
                counted: true,
                detail: Some(outcome.to_owned()),
                destination: None,
                destination_since: None,
            };
            let recorded = state
                .store
                .record_attempt(
                    &case,
                    result.mismatched,
                    &attempt,
                    &ctx,
                    &[checked],
                    &[],
                    &failure_limit(&policy),
                    None,
                )
                .await?;
            refused_by_hold(&recorded)?;
            if let Some(customer) = result.mismatched {
                after_failure(&state, &case, customer, recorded).await;
            }
            case
        }
    };
    // The phone and email the caller named count toward their velocity whatever the outcome;
    // once identified, the request is the customer's, and it is assessed (issue 5).
    let named = regain_store::RequestContext {
        named_phone: claim.phone().map(|p| p.as_str().to_owned()),
        named_email: claim.email().map(|e| e.normalized()),
        ..Default::default()
    };
    // The identification is stored by now: if recording the request or assessing it fails,
    // that is logged, not the caller's error (every step toward an action assesses again).
    let case_after = if case_after.customer_id.is_some() {
        match crate::risk::record_and_assess(&state, case_after.clone(), &named).await {
            Ok(assessed) => assessed,
            Err(e) => {
                tracing::warn!(case_id = %case_after.id, error = %e, "the risk assessment after identification failed");
                case_after
            }
        }
    } else {
        if let Err(e) = state.store.record_request(tenant_id, case_after.id, case_after.created_at, None, &named).await
        {
            tracing::warn!(case_id = %case_after.id, error = %e, "could not record the identification for velocity");
        }
        case_after
    };
    tracing::info!(case_id = %case_after.id, outcome, "identification checked");
    Ok(IdentificationView {
        outcome,
        fields: fields.into_iter().map(|(f, m)| (f.as_str().to_owned(), m.as_str().to_owned())).collect(),
        case: case_detail(&state, &case_after).await?,
    })
}

#[derive(Serialize, ToSchema)]
pub struct ContactPointView {
    /// Names the contact point in a `send` request: `email-0`, `phone-1`.
    pub id: String,
    /// `email` or `sms`.
    pub method: &'static str,
    /// `j***@e***.com`, `*** ending 34`.
    pub masked: String,
    pub verified: bool,
    /// Whether a proof sent here would count: verified and not added recently.
    pub counts: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    /// identification, email, sms, totp, recovery_code or knowledge.
    pub method: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct AssessmentView {
    /// The policy is satisfied: the case can be decided.
    pub satisfied: bool,
    /// The agent's next step, in words.
    pub next_step: String,
    /// Ways to finish, best first: each a list of proofs still needed, each proof the methods
    /// that would do.
    pub options: Vec<Vec<Vec<String>>>,
    /// Proofs that do not count, and why (`knowledge_never_counts`, `recent_contact`, `sim_swap`).
    pub not_counted: Vec<String>,
    /// The policy version used; `null` for the built-in default.
    pub policy_version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FailuresView {
    /// Counted failures within the window, across every case and channel.
    pub count: u32,
    pub max: u32,
    pub window_minutes: u32,
    /// Recovery is stopped until then.
    pub held_until: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    pub case_id: String,
    pub state: String,
    pub contact_points: Vec<ContactPointView>,
    /// Methods the customer has enrolled with Regain that a proof could use.
    pub available: Vec<String>,
    /// Questions on file, for knowledge answers (signals only; they never satisfy the policy).
    pub knowledge_questions: Vec<String>,
    pub attempts: Vec<AttemptView>,
    pub assessment: AssessmentView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailuresView>,
}

fn assessment_view(a: &Assessment, policy_version: Option<i64>, attempts_passed: &[&str]) -> AssessmentView {
    AssessmentView {
        satisfied: a.satisfied,
        next_step: if a.satisfied { "the policy is satisfied; decide the case".into() } else { next_step_text(a) },
        options: a
            .next
            .iter()
            .map(|o| o.iter().map(|s| s.iter().map(|m| m.as_str().to_owned()).collect()).collect())
            .collect(),
        not_counted: a
            .ignored
            .iter()
            .map(|(i, why)| {
                let why = match why {
                    IgnoredBecause::KnowledgeNeverCounts => "knowledge_never_counts",
                    IgnoredBecause::RecentContact => "recent_contact",
                    IgnoredBecause::SimSwap => "sim_swap",
                };
                format!("{}: {why}", attempts_passed.get(*i).copied().unwrap_or("proof"))
            })
            .collect(),
        policy_version,
    }
}

/// Where verification stands: masked contact points, proofs so far, what is still needed.
#[utoipa::path(get, path = "/api/v1/cases/{id}/verification", tag = "verification",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = VerificationView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn status(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<VerificationView>> {
    let tenant = auth.tenant()?;
    let case = load_case(&state, tenant, &id).await?;
    Ok(Json(verification_view(&state, &case).await?))
}

async fn verification_view(state: &AppState, case: &Case) -> ApiResult<VerificationView> {
    let now = state.now();
    let v = case_verification(state, case).await?;
    let mut contact_points = Vec::new();
    let mut knowledge_questions = Vec::new();
    let mut failures = None;
    if let Some(customer) = &v.customer {
        contact_points = contact_points_of(&v, customer, now);
        knowledge_questions =
            state.store.knowledge_answers(case.tenant_id, customer.id).await?.into_iter().map(|(q, _)| q).collect();
        let limit = failure_limit(&v.policy);
        let count = state.store.failures_since(case.tenant_id, customer.id, now - limit.window).await?;
        let hold = state.store.recovery_hold(case.tenant_id, customer.id, now).await?;
        failures = Some(FailuresView {
            count,
            max: limit.max,
            window_minutes: v.policy.failures.window_minutes,
            held_until: hold.map(|h| h.until),
        });
    }
    let passed: Vec<&str> =
        v.attempts.iter().filter(|a| a.passed && a.method != "identification").map(|a| a.method.as_str()).collect();
    Ok(VerificationView {
        case_id: case.id.to_string(),
        state: case.state.to_string(),
        contact_points,
        available: v.available.iter().map(|m| m.as_str().to_owned()).collect(),
        knowledge_questions,
        attempts: v
            .attempts
            .iter()
            .map(|a| AttemptView {
                method: a.method.clone(),
                passed: a.passed,
                detail: a.detail.clone(),
                destination: a.destination.clone(),
                at: a.at,
            })
            .collect(),
        assessment: assessment_view(&v.assessment, v.policy_version, &passed),
        failures,
    })
}

fn contact_points_of(v: &CaseVerification, customer: &Customer, now: chrono::DateTime<Utc>) -> Vec<ContactPointView> {
    let why_not = |verified: bool, since| {
        if !verified {
            Some("not verified".to_owned())
        } else if !settled(&v.policy, since, now) {
            Some(format!("added or changed within the last {} days", v.policy.recent_contact_days))
        } else {
            None
        }
    };
    let emails = customer.emails.iter().enumerate().map(|(i, e)| {
        let why = why_not(e.verified, e.added_at);
        ContactPointView {
            id: format!("email-{i}"),
            method: "email",
            masked: e.address.masked(),
            verified: e.verified,
            counts: why.is_none(),
            why_not: why,
        }
    });
    let phones = customer.phones.iter().enumerate().map(|(i, p)| {
        let why = why_not(p.verified, p.added_at);
        ContactPointView {
            id: format!("phone-{i}"),
            method: "sms",
            masked: p.number.masked(),
            verified: p.verified,
            counts: why.is_none(),
            why_not: why,
        }
    });
    emails.chain(phones).collect()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The contact point's id from the verification view: `email-0`, `phone-1`.
    pub contact: String,
    /// `code` (the customer reads it back; the default) or `link` (the customer approves on a page).
    pub delivery: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SentView {
    pub method: String,
    pub delivery: String,
    /// Where it went, masked.
    pub destination: String,
    pub expires_at: DateTime<Utc>,
    /// Wrong entries allowed on this code.
    pub attempts_max: u32,
}

/// Send a one-time code, or a confirmation link, to a registered, verified contact point.
///
/// A new code replaces the case's previous one; it does not reset the customer's failure count.
#[utoipa::path(post, path = "/api/v1/cases/{id}/verification/send", tag = "verification", request_body = SendBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = SentView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The case is not verifying", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such contact point, or one a proof could not count from", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn send(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SendBody>,
) -> ApiResult<Json<SentView>> {
    let tenant_id = auth.tenant()?;
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let case = load_case(&state, tenant_id, &id).await?;
    let customer_id = require_verifying(&case, auth.actor, "send a code")?;
    let delivery = match req.delivery.as_deref() {
        None | Some("code") => Delivery::Code,
        Some("link") => Delivery::Link,
        Some(_) => return Err(ValidationError::new("delivery", "must be code or link").into()),
    };
    refuse_if_held(&state, tenant_id, customer_id).await?;
    let customer =
        state.store.customer(tenant_id, customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let (policy, _) = tenant_policy(&state, tenant_id).await?;
    let now = state.now();
    let (method, to, masked, verified, since) = contact_point(&customer, &req.contact)?;
    if !verified {
        return Err(ValidationError::new(
            "contact",
            "this contact point is not verified; a proof sent there would not count",
        )
        .into());
    }
    if !settled(&policy, since, now) {
        return Err(ValidationError::new(
            "contact",
            format!(
                "this contact point was added or changed within the last {} days; a proof sent there would not count",
                policy.recent_contact_days
            ),
        )
        .into());
    }
    let minutes = match (delivery, method) {
        (Delivery::Link, _) => policy.codes.link_ttl_minutes,
        (Delivery::Code, Method::Sms) => policy.codes.sms_ttl_minutes,
        (Delivery::Code, _) => policy.codes.email_ttl_minutes,
    };
    let expires_at = now + Duration::minutes(i64::from(minutes));
    let challenge_id = crate::verification::new_id(&state);
    let (secret, template, mut values) = match delivery {
        Delivery::Code => {
            let code = random_code(state.entropy.as_ref(), CODE_DIGITS);
            let values = BTreeMap::from([("code", code.clone())]);
            (code, "verification_code", values)
        }
        Delivery::Link => {
            let token = crate::auth::new_token("", state.entropy.as_ref());
            let link = format!("{}/verify/{token}", state.config.public_url.trim_end_matches('/'));
            (token, "verification_link", BTreeMap::from([("link", link)]))
        }
    };
    values.insert("minutes", minutes.to_string());
    values.insert("purpose", purpose(case.kind).to_owned());
    let channel = if method == Method::Sms { "sms" } else { "email" };
    let message =
        compose(&state, &tenant, Some(&case), customer_id, channel, &to, masked.clone(), template, values).await?;
    let challenge = NewChallenge {
        id: challenge_id,
        tenant_id,
        case_id: case.id,
        customer_id,
        method,
        delivery,
        destination: masked.clone(),
        destination_since: since,
        attempts_max: policy.codes.attempts_max,
        expires_at,
        created_at: now,
    };
    let event = CaseEvent::VerificationSent {
        method,
        link: delivery == Delivery::Link,
        destination: masked.clone(),
        expires_at,
    };
    state.store.issue_challenge(&case, &challenge, &secret, &message, &[event], &auth.actor).await?;
    tracing::info!(case_id = %case.id, method = method.as_str(), delivery = delivery.as_str(), "verification sent");
    Ok(Json(SentView {
        method: method.as_str().to_owned(),
        delivery: delivery.as_str().to_owned(),
        destination: masked,
        expires_at,
        attempts_max: policy.codes.attempts_max,
    }))
}

/// The contact point `id` names: (method, address, masked, verified, added at).
fn contact_point(customer: &Customer, id: &str) -> ApiResult<(Method, String, String, bool, chrono::DateTime<Utc>)> {
    let bad = || {
        ApiError::from(ValidationError::new(
            "contact",
            "no such contact point on this customer; use an id from the verification view",
        ))
    };
    let (kind, index) = id.split_once('-').ok_or_else(bad)?;
    let index: usize = index.parse().map_err(|_| bad())?;
    match kind {
        "email" => {
            let e = customer.emails.get(index).ok_or_else(bad)?;
            Ok((Method::Email, e.address.as_str().to_owned(), e.address.masked(), e.verified, e.added_at))
        }
        "phone" => {
            let p = customer.phones.get(index).ok_or_else(bad)?;
            Ok((Method::Sms, p.number.as_str().to_owned(), p.number.masked(), p.verified, p.added_at))
        }
        _ => Err(bad()),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// What the customer reads out.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProofView {
    /// `passed` (a failure is an error response).
    pub result: &'static str,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Where verification stands now.
    pub verification: VerificationView,
}

pub(crate) fn refused(status: StatusCode, code: &'static str, detail: String) -> ApiError {
    ApiError::Refused { status, code, detail }
}

/// A hold already running when the attempt came: 423, and nothing was recorded.
fn refused_by_hold(recorded: &AttemptRecorded) -> ApiResult<()> {
    match (recorded.refused, recorded.held_until) {
        (true, Some(until)) => Err(held(until)),
        _ => Ok(()),
    }
}

pub(crate) fn rejected(detail: String, recorded: &AttemptRecorded) -> ApiError {
    match recorded.held_until {
        Some(until) => held(until),
        None => refused(StatusCode::UNPROCESSABLE_ENTITY, "proof-rejected", detail),
    }
}

pub(crate) async fn after_failure(state: &AppState, case: &Case, customer: CustomerId, recorded: AttemptRecorded) {
    if let Some(until) = recorded.held_until {
        tracing::warn!(case_id = %case.id, %customer, failures = recorded.failures, "recovery held after repeated failures");
        escalate_held(state, case.tenant_id, customer, until).await;
        if let Err(e) = notify_held(state, case, customer, until).await {
            tracing::error!(case_id = %case.id, error = %e, "could not queue the notice that recovery is paused");
        }
    }
}

/// Tells the customer, at every verified email, that recovery is paused and why.
async fn notify_held(state: &AppState, case: &Case, customer_id: CustomerId, until: DateTime<Utc>) -> ApiResult<()> {
    let tenant = state.store.tenant(case.tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let Some(customer) = state.store.customer(case.tenant_id, customer_id).await? else { return Ok(()) };
    for e in customer.emails.iter().filter(|e| e.verified) {
        let values = BTreeMap::from([("until", until.format("%Y-%m-%d %H:%M UTC").to_string())]);
        let message = compose(
            state,
            &tenant,
            Some(case),
            customer_id,
            "email",
            e.address.as_str(),
            e.address.masked(),
            "recovery_blocked",
            values,
        )
        .await?;
        state.store.enqueue_message(&message).await?;
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    /// `email` or `sms`.
    pub channel: String,
    /// Where it goes, masked.
    pub destination: String,
    /// Which template: verification_code, verification_link, recovery_code_used, recovery_blocked.
    pub template: String,
    /// `pending` (waiting or being retried), `sent` or `dead` (given up).
    pub state: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The case's delivery log: every message sent for it, with its state; never its content.
#[utoipa::path(get, path = "/api/v1/cases/{id}/messages", tag = "verification",
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = [MessageView]),
    (status = 404, body = Problem, content_type = "application/problem+json"),
))]
pub async fn messages(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesRead>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let tenant = auth.tenant()?;
    let case = load_case(&state, tenant, &id).await?;
    let entries = state.store.outbox_for_case(tenant, case.id).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|m| MessageView {
                id: m.id,
                channel: m.channel,
                destination: m.destination,
                template: m.template,
                state: m.state,
                attempts: m.attempts,
                last_error: m.last_error,
                created_at: m.created_at,
                sent_at: m.sent_at,
            })
            .collect(),
    ))
}

/// Check the code the customer read out.
#[utoipa::path(post, path = "/api/v1/cases/{id}/verification/code", tag = "verification", request_body = CodeBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ProofView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "No code pending, or it was already used", body = Problem, content_type = "application/problem+json"),
    (status = 410, description = "The code expired", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "The code is wrong (counted), or its attempts are used up", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn code(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CodeBody>,
) -> ApiResult<Json<ProofView>> {
    let tenant = auth.tenant()?;
    let case = load_case(&state, tenant, &id).await?;
    let customer = require_verifying(&case, auth.actor, "check a code")?;
    let code = digits(&req.code, CODE_DIGITS)?;
    let (policy, _) = tenant_policy(&state, tenant).await?;
    let ctx = AttemptContext { actor: auth.actor, ip: client.ip, at: state.now() };
    let redeemed = state.store.redeem_code(&case, &code, &ctx, &failure_limit(&policy)).await?;
    match redeemed {
        Redeemed::Passed { method, destination } => {
            tracing::info!(case_id = %case.id, method = method.as_str(), "code accepted");
            proof_view(&state, &case, method.as_str(), Some(destination)).await
        }
        Redeemed::Wrong { attempts_left, recorded } => {
            after_failure(&state, &case, customer, recorded).await;
            Err(rejected(format!("the code is not right; {attempts_left} attempt(s) left on this code"), &recorded))
        }
        Redeemed::Exhausted { recorded } => {
            after_failure(&state, &case, customer, recorded).await;
            Err(match recorded.held_until {
                Some(until) => held(until),
                None => refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "code-exhausted",
                    "too many wrong entries on this code; it no longer works, send a new one".into(),
                ),
            })
        }
        Redeemed::Expired => {
            Err(refused(StatusCode::GONE, "code-expired", "the code has expired; send a new one".into()))
        }
        Redeemed::Used => Err(ApiError::Conflict { code: "code-used", detail: "this code was already used".into() }),
        Redeemed::NonePending => Err(ApiError::Conflict {
            code: "no-code-pending",
            detail: "no code is waiting on this case; send one first".into(),
        }),
        Redeemed::Held { until } => Err(held(until)),
    }
}

pub(crate) fn digits(input: &str, n: u32) -> ApiResult<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if code.len() != n as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new("code", format!("must be {n} digits")).into());
    }
    Ok(code)
}

async fn proof_view(
    state: &AppState,
    case: &Case,
    method: &str,
    destination: Option<String>,
) -> ApiResult<Json<ProofView>> {
    Ok(Json(ProofView {
        result: "passed",
        method: method.to_owned(),
        destination,
        verification: verification_view(state, case).await?,
    }))
}

fn passed_attempt(method: &str, destination: Option<String>, since: Option<chrono::DateTime<Utc>>) -> NewAttempt {
    NewAttempt {
        method: method.to_owned(),
        passed: true,
        counted: false,
        detail: None,
        destination,
        destination_since: since,
    }
}

fn failed_attempt(method: &str, detail: &str) -> NewAttempt {
    NewAttempt {
        method: method.to_owned(),
        passed: false,
        counted: true,
        detail: Some(detail.to_owned()),
        destination: None,
        destination_since: None,
    }
}

fn checked(method: Method, attempt: &NewAttempt) -> CaseEvent {
    CaseEvent::VerificationChecked {
        method,
        passed: attempt.passed,
        detail: attempt.detail.clone(),
        destination: attempt.destination.clone(),
    }
}

/// Check a code from the customer's authenticator app (RFC 6238, ±1 step; a used step is
/// refused as a replay and counted, SECURITY.md M3).
#[utoipa::path(post, path = "/api/v1/cases/{id}/verification/totp", tag = "verification", request_body = CodeBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ProofView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The case is not verifying, or no authenticator is enrolled", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "The code is wrong or replayed (counted)", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn totp(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CodeBody>,
) -> ApiResult<Json<ProofView>> {
    let tenant = auth.tenant()?;
    let case = load_case(&state, tenant, &id).await?;
    let customer = require_verifying(&case, auth.actor, "check an authenticator code")?;
    let code = digits(&req.code, TotpParams::default().digits)?;
    refuse_if_held(&state, tenant, customer).await?;
    let enrolled = state.store.customer_totp(tenant, customer).await?.filter(|t| t.confirmed).ok_or_else(|| {
        ApiError::Conflict { code: "not-enrolled", detail: "the customer has no authenticator app enrolled".into() }
    })?;
    let (policy, _) = tenant_policy(&state, tenant).await?;
    let ctx = AttemptContext { actor: auth.actor, ip: client.ip, at: state.now() };
    let params = TotpParams::default();
    let limit = failure_limit(&policy);
    let step =
        verify_totp(&enrolled.secret, &code, ctx.at, &params, 1, None).map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    if let Some(step) = step {
        // Since when the app has been set up: a recent one does not count yet. The step is
        // spent in the attempt's own transaction, or not at all.
        let attempt = passed_attempt("totp", None, enrolled.confirmed_at);
        let events = [checked(Method::Totp, &attempt)];
        let spend = Consume::TotpStep(step);
        let r = state
            .store
            .record_attempt(&case, Some(customer), &attempt, &ctx, &events, &[], &limit, Some(&spend))
            .await?;
        refused_by_hold(&r)?;
        if !r.not_spent {
            return proof_view(&state, &case, "totp", None).await;
        }
    }
    // A right code whose step was already used is a replay (M3), counted like a wrong one.
    let detail = if step.is_some() { "replay" } else { "wrong_code" };
    let attempt = failed_attempt("totp", detail);
    let events = [checked(Method::Totp, &attempt)];
    let recorded =
        state.store.record_attempt(&case, Some(customer), &attempt, &ctx, &events, &[], &limit, None).await?;
    refused_by_hold(&recorded)?;
    after_failure(&state, &case, customer, recorded).await;
    let detail = match detail {
        "replay" => "this authenticator code was already used; wait for the next one".to_owned(),
        _ => "the authenticator code is not right".to_owned(),
    };
    Err(rejected(detail, &recorded))
}

/// Check one of the customer's saved recovery codes: single use; using one notifies every
/// registered email (SECURITY.md M2).
#[utoipa::path(post, path = "/api/v1/cases/{id}/verification/recovery-code", tag = "verification", request_body = CodeBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ProofView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The case is not verifying", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Not an unused recovery code (counted)", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn recovery_code(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<CodeBody>,
) -> ApiResult<Json<ProofView>> {
    let tenant_id = auth.tenant()?;
    let tenant = state.store.tenant(tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let case = load_case(&state, tenant_id, &id).await?;
    let customer_id = require_verifying(&case, auth.actor, "check a recovery code")?;
    let code = crate::routes::factors::normalize_recovery_code(&req.code)?;
    refuse_if_held(&state, tenant_id, customer_id).await?;
    let (policy, _) = tenant_policy(&state, tenant_id).await?;
    let ctx = AttemptContext { actor: auth.actor, ip: client.ip, at: state.now() };
    let limit = failure_limit(&policy);
    if let Some(issued_at) = state.store.recovery_code_issued_at(tenant_id, customer_id, &code).await? {
        // Spent in the attempt's own transaction, with the notice to every registered address
        // (SECURITY.md M2): all three happen, or none.
        let left = state.store.recovery_codes_left(tenant_id, customer_id, ctx.at).await?.saturating_sub(1);
        let customer =
            state.store.customer(tenant_id, customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
        // Every registered address hears of it (P3), as of a factor change: a code used by
        // someone else is the customer's cue to act.
        let mut messages = Vec::new();
        let emails = customer.emails.iter().map(|e| ("email", e.address.as_str(), e.address.masked()));
        let phones = customer.phones.iter().map(|p| ("sms", p.number.as_str(), p.number.masked()));
        for (channel, to, masked) in emails.chain(phones) {
            let values = BTreeMap::from([
                ("when", ctx.at.format("%Y-%m-%d %H:%M UTC").to_string()),
                ("remaining", left.to_string()),
            ]);
            let message =
                compose(&state, &tenant, Some(&case), customer_id, channel, to, masked, "recovery_code_used", values)
                    .await?;
            messages.push(message);
        }
        // Since when the set has existed: codes issued recently do not count yet.
        let attempt = passed_attempt("recovery_code", None, Some(issued_at));
        let events = [checked(Method::RecoveryCode, &attempt)];
        let spend = Consume::RecoveryCode(code.clone());
        let r = state
            .store
            .record_attempt(&case, Some(customer_id), &attempt, &ctx, &events, &messages, &limit, Some(&spend))
            .await?;
        refused_by_hold(&r)?;
        if !r.not_spent {
            return proof_view(&state, &case, "recovery_code", None).await;
        }
    }
    let attempt = failed_attempt("recovery_code", "not_an_unused_code");
    let events = [checked(Method::RecoveryCode, &attempt)];
    let recorded =
        state.store.record_attempt(&case, Some(customer_id), &attempt, &ctx, &events, &[], &limit, None).await?;
    refused_by_hold(&recorded)?;
    after_failure(&state, &case, customer_id, recorded).await;
    Err(rejected("that is not one of the customer's unused recovery codes".into(), &recorded))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBody {
    /// A question on file (see the verification view).
    pub question: String,
    pub answer: String,
}

/// Check a knowledge answer (a security question, the last transaction). A signal only: a
/// match never satisfies the policy, a miss counts as a failure (SECURITY.md K1).
#[utoipa::path(post, path = "/api/v1/cases/{id}/verification/knowledge", tag = "verification", request_body = KnowledgeBody,
    params(("id" = String, Path)), security(("bearer" = []), ("cookie" = [])), responses(
    (status = 200, body = ProofView),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The case is not verifying", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "No such question on file, or the answer does not match (counted)", body = Problem, content_type = "application/problem+json"),
    (status = 423, description = "Recovery for the customer is on hold", body = Problem, content_type = "application/problem+json"),
))]
pub async fn knowledge(
    State(state): State<AppState>,
    auth: Authorized<perm::CasesWork>,
    Path(id): Path<String>,
    client: ClientInfo,
    ApiJson(req): ApiJson<KnowledgeBody>,
) -> ApiResult<Json<ProofView>> {
    let tenant = auth.tenant()?;
    let case = load_case(&state, tenant, &id).await?;
    let customer = require_verifying(&case, auth.actor, "check a knowledge answer")?;
    refuse_if_held(&state, tenant, customer).await?;
    let answers = state.store.knowledge_answers(tenant, customer).await?;
    let Some((_, hash)) = answers.iter().find(|(q, _)| *q == req.question) else {
        return Err(ValidationError::new("question", "no answer to this question is on file for the customer").into());
    };
    let answer = crate::routes::factors::normalize_answer(&req.answer)?;
    let matched = state.hasher.verify(&answer, hash).await?;
    let (policy, _) = tenant_policy(&state, tenant).await?;
    let ctx = AttemptContext { actor: auth.actor, ip: client.ip, at: state.now() };
    let attempt =
        if matched { passed_attempt("knowledge", None, None) } else { failed_attempt("knowledge", "mismatch") };
    let events = [checked(Method::Knowledge, &attempt)];
    let recorded = state
        .store
        .record_attempt(&case, Some(customer), &attempt, &ctx, &events, &[], &failure_limit(&policy), None)
        .await?;
    refused_by_hold(&recorded)?;
    if matched {
        return proof_view(&state, &case, "knowledge", None).await;
    }
    after_failure(&state, &case, customer, recorded).await;
    Err(rejected("the answer does not match the one on file".into(), &recorded))
}

/// Applies "this wasn't me" from a confirmation link: the case stops and goes to security —
/// escalated and cancelled before anything ran, repudiated in cooling-off, escalated while it
/// executes. A case changed meanwhile is read again and retried.
pub async fn repudiate_from_link(state: &AppState, case: &Case, customer: CustomerId) -> ApiResult<()> {
    use regain_core::case::Tier;

    let actor = regain_core::Actor::Customer { id: customer };
    let reason = "the customer said this wasn't them, from a confirmation link".to_owned();
    let mut case = case.clone();
    for _ in 0..5 {
        let now = state.now();
        let mut current = case.clone();
        let mut events = Vec::new();
        if current.state == CaseState::CoolingOff {
            // Repudiation escalates to security itself.
            let (next, e) = apply(&current, CaseCommand::Repudiate { reason: reason.clone() }, actor, now)?;
            current = next;
            events.extend(e);
        } else if !current.state.is_terminal() {
            if current.tier < Tier::SECURITY {
                let escalate = CaseCommand::Escalate { tier: Tier::SECURITY, reason: reason.clone() };
                let (next, e) = apply(&current, escalate, actor, now)?;
                current = next;
                events.extend(e);
            }
            if current.state.is_before_execution() {
                let (next, e) = apply(&current, CaseCommand::Cancel { reason: reason.clone() }, actor, now)?;
                current = next;
                events.extend(e);
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        // One change, one version: the escalation and the cancellation land together.
        current.version = case.version + 1;
        match crate::webhooks::commit(state, &current, &events, &actor, Vec::new()).await {
            Ok(()) => return Ok(()),
            Err(regain_store::StoreError::Conflict) => {
                case = state.store.case(case.tenant_id, case.id).await?.ok_or_else(|| ApiError::not_found("case"))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict { code: "concurrent-update", detail: "the case kept changing; try again".into() })
}
