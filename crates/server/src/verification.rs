//! Identity verification's rules on the server side (issue 4): the tenant's assurance policy,
//! what counts as evidence on a case, the failure limit, and the messages verification sends.
//! The routes are in `routes::verification`; the decisions themselves are pure functions in
//! `regain_core::policy` and `regain_core::identify`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use regain_core::case::{apply, CaseCommand, CaseKind, CaseState, Tier};
use regain_core::policy::{evaluate, Assessment, AssurancePolicy, Available, Evidence, Method};
use regain_core::{Actor, Case, Customer, CustomerId, Tenant, TenantId, Timestamp};
use regain_store::{CaseFilter, FailureLimit, NewMessage, PageRequest, VerificationAttempt};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The tenant's policy in force and its version (`None`: the built-in default).
pub async fn tenant_policy(state: &AppState, tenant: TenantId) -> ApiResult<(AssurancePolicy, Option<i64>)> {
    match state.store.assurance_policy(tenant, None).await? {
        Some(stored) => {
            let policy = AssurancePolicy::from_json(&stored.document).map_err(|e| {
                ApiError::Internal(format!("stored assurance policy v{} does not parse: {e}", stored.version))
            })?;
            Ok((policy, Some(stored.version)))
        }
        None => Ok((AssurancePolicy::default(), None)),
    }
}

pub fn failure_limit(policy: &AssurancePolicy) -> FailureLimit {
    FailureLimit {
        max: policy.failures.max,
        window: Duration::minutes(i64::from(policy.failures.window_minutes)),
        cooldown: Duration::minutes(i64::from(policy.failures.cooldown_minutes)),
    }
}

/// Whether a contact point added at `since` is old enough for a proof sent there to count.
pub fn settled(policy: &AssurancePolicy, since: Timestamp, now: Timestamp) -> bool {
    since <= now - Duration::days(i64::from(policy.recent_contact_days))
}

/// What the customer can still be asked to prove, for the policy's next step.
pub async fn available_methods(
    state: &AppState,
    policy: &AssurancePolicy,
    customer: &Customer,
    now: Timestamp,
) -> ApiResult<Available> {
    let mut available = Available::new();
    if customer.emails.iter().any(|e| e.verified && settled(policy, e.added_at, now)) {
        available.insert(Method::Email);
    }
    if customer.phones.iter().any(|p| p.verified && settled(policy, p.added_at, now)) {
        available.insert(Method::Sms);
    }
    // Second factors count like contact points: only once they have been there a while, so a
    // password alone cannot set one up and use it at once.
    let totp = state.store.customer_totp(customer.tenant_id, customer.id).await?;
    if totp.and_then(|t| t.confirmed_at).is_some_and(|at| settled(policy, at, now)) {
        available.insert(Method::Totp);
    }
    // What Regain can check, not what an imported record says the customer has elsewhere.
    let settled_before = now - Duration::days(i64::from(policy.recent_contact_days));
    if state.store.recovery_codes_left(customer.tenant_id, customer.id, settled_before).await? > 0 {
        available.insert(Method::RecoveryCode);
    }
    Ok(available)
}

/// The case's passed proofs as the policy reads them.
pub fn evidence(attempts: &[VerificationAttempt]) -> Vec<Evidence> {
    attempts
        .iter()
        .filter(|a| a.passed)
        .filter_map(|a| {
            let method = Method::parse("method", &a.method).ok()?;
            Some(Evidence { method, at: a.at, destination_since: a.destination_since, sim_swapped: false })
        })
        .collect()
}

/// Everything the agent's next step is computed from.
pub struct CaseVerification {
    pub policy: AssurancePolicy,
    pub policy_version: Option<i64>,
    pub customer: Option<Customer>,
    pub attempts: Vec<VerificationAttempt>,
    pub available: Available,
    pub assessment: Assessment,
}

pub async fn case_verification(state: &AppState, case: &Case) -> ApiResult<CaseVerification> {
    let now = state.now();
    let (policy, policy_version) = tenant_policy(state, case.tenant_id).await?;
    let customer = match case.customer_id {
        Some(id) => state.store.customer(case.tenant_id, id).await?,
        None => None,
    };
    let attempts = state.store.verification_attempts(case.tenant_id, case.id).await?;
    let mut available = match &customer {
        Some(c) => available_methods(state, &policy, c, now).await?,
        None => Available::new(),
    };
    // SMS over a recently swapped SIM does not count (SECURITY.md M5), nor is it offered.
    let sim_swapped = match &customer {
        Some(c) => crate::risk::sms_blocked_by_sim_swap(state, &policy, c).await,
        None => false,
    };
    if sim_swapped {
        available.remove(&Method::Sms);
    }
    // A medium risk band asks for one more proof than the policy alone (issue 5, step-up).
    let required = if case.risk_route().step_up { policy.with_step_up(case.kind) } else { policy.clone() };
    let mut evidence = evidence(&attempts);
    for item in evidence.iter_mut().filter(|e| e.method == Method::Sms) {
        item.sim_swapped = sim_swapped;
    }
    let assessment = evaluate(&required, case.kind, &evidence, &available, now);
    Ok(CaseVerification { policy, policy_version, customer, attempts, available, assessment })
}

/// Refuses while the customer's recovery is on hold (SECURITY.md T7): no agent can override it.
pub async fn refuse_if_held(state: &AppState, tenant: TenantId, customer: CustomerId) -> ApiResult<()> {
    if let Some(hold) = state.store.recovery_hold(tenant, customer, state.now()).await? {
        return Err(held(hold.until));
    }
    Ok(())
}

pub fn held(until: Timestamp) -> ApiError {
    ApiError::Refused {
        status: axum::http::StatusCode::LOCKED,
        code: "recovery-held",
        detail: format!(
            "too many failed verification attempts for this customer: recovery is stopped until {} and open cases \
             are with the security team",
            until.to_rfc3339()
        ),
    }
}

/// Going ahead needs the policy satisfied and no hold: checked before `decide(approve)`.
pub async fn require_verified(state: &AppState, case: &Case) -> ApiResult<()> {
    let Some(customer) = case.customer_id else { return Ok(()) };
    refuse_if_held(state, case.tenant_id, customer).await?;
    let verification = case_verification(state, case).await?;
    if !verification.assessment.satisfied {
        let band = case.risk.as_ref().map_or("low", |r| r.band.as_str());
        let step_up = if case.risk_route().step_up {
            format!(" (the risk is {band}: one more proof than usual)")
        } else {
            String::new()
        };
        return Err(ApiError::Conflict {
            code: "verification-incomplete",
            detail: format!(
                "the customer is not verified for {}{step_up}: {}",
                case.kind,
                next_step_text(&verification.assessment)
            ),
        });
    }
    Ok(())
}

/// The agent's next step in words: "still needed: one proof by email, sms or totp".
pub fn next_step_text(assessment: &Assessment) -> String {
    let Some(best) = assessment.next.first() else {
        return "no proof the customer can still give would satisfy the policy; escalate".to_owned();
    };
    let slots: Vec<String> = best
        .iter()
        .map(|slot| {
            let names: Vec<&str> = slot.iter().map(|m| m.as_str()).collect();
            match names.as_slice() {
                [one] => format!("a proof by {one}"),
                _ => format!("a proof by one of {}", names.join(", ")),
            }
        })
        .collect();
    format!("still needed: {}", slots.join(" and "))
}

/// After a hold starts, the customer's open cases go to the security tier (SECURITY.md T7). A
/// case changed meanwhile is read again and retried.
pub async fn escalate_held(state: &AppState, tenant: TenantId, customer: CustomerId, until: Timestamp) {
    let filter = CaseFilter { customer_id: Some(customer), ..CaseFilter::default() };
    let mut after = None;
    loop {
        let page = PageRequest { limit: PageRequest::LIMIT_MAX, after };
        let page = match state.store.list_cases(tenant, &filter, &page).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "could not list the held customer's cases to escalate them");
                return;
            }
        };
        for case in page.items.iter().filter(|c| !c.state.is_terminal() && c.tier < Tier::SECURITY) {
            escalate_one(state, case.clone(), until).await;
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => return,
        }
    }
}

async fn escalate_one(state: &AppState, mut case: Case, until: Timestamp) {
    for _ in 0..5 {
        if case.state.is_terminal() || case.tier >= Tier::SECURITY {
            return;
        }
        let reason = format!("recovery held until {} after repeated failed verification", until.to_rfc3339());
        let command = CaseCommand::Escalate { tier: Tier::SECURITY, reason };
        let result = match apply(&case, command, Actor::System, state.now()) {
            Ok((next, events)) => crate::webhooks::commit(state, &next, &events, &Actor::System, Vec::new()).await,
            Err(e) => {
                tracing::error!(case_id = %case.id, error = %e, "could not escalate a held customer's case");
                return;
            }
        };
        match result {
            Ok(()) => return,
            Err(regain_store::StoreError::Conflict) => match state.store.case(case.tenant_id, case.id).await {
                Ok(Some(fresh)) => case = fresh,
                _ => return,
            },
            Err(e) => {
                tracing::error!(case_id = %case.id, error = %e, "could not escalate a held customer's case");
                return;
            }
        }
    }
    tracing::error!(case_id = %case.id, "gave up escalating a held customer's case after repeated conflicts");
}

/// The words a message uses for what the customer is being verified for.
pub fn purpose(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::PasswordReset => "a password reset",
        CaseKind::UsernameRecovery => "a username reminder",
        CaseKind::AccountUnlock => "unlocking your account",
        CaseKind::MfaRecovery => "recovering your two-step sign-in",
        CaseKind::ContactChange => "changing your contact details",
        CaseKind::CompromisedAccount => "securing your account",
    }
}

/// The template `name` for `channel` as the tenant has it: its own wording, else the built-in.
pub async fn template(
    state: &AppState,
    tenant: TenantId,
    name: &str,
    channel: &str,
) -> ApiResult<regain_delivery::Template> {
    Templates::of(state, tenant).await?.get(name, channel)
}

/// The tenant's own template `own`, when it can be used ([`unusable`]), or else the built-in
/// one — said in the log once per stored template and process, not for every message.
fn resolve_template(
    tenant: TenantId,
    own: Option<&regain_store::StoredTemplate>,
    name: &str,
    channel: &str,
) -> ApiResult<regain_delivery::Template> {
    let allowed = regain_delivery::builtin_placeholders(name)
        .ok_or_else(|| ApiError::Internal(format!("no built-in template {name}")))?;
    if let Some(own) = own {
        let why = match checked(own, allowed) {
            Ok(template) => return Ok(template),
            Err(why) => why,
        };
        static TOLD: std::sync::Mutex<BTreeSet<(TenantId, String, String, i64)>> =
            std::sync::Mutex::new(BTreeSet::new());
        let key = (tenant, name.to_owned(), channel.to_owned(), own.updated_at.timestamp_micros());
        if TOLD.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key) {
            tracing::error!(
                tenant_id = %tenant, template = name, channel, reason = %why,
                "tenant template cannot be used; its messages go out in the built-in wording until it is saved again"
            );
        }
    }
    let kind = if channel == "sms" { regain_delivery::Channel::Sms } else { regain_delivery::Channel::Email };
    regain_delivery::builtin(name, kind).ok_or_else(|| ApiError::Internal(format!("no built-in template {name}")))
}

/// Why the tenant's own template cannot be used, if it cannot: it no longer parses (validated
/// when saved, so only after an upgrade), or it lacks what its message exists to deliver
/// ([`missing_placeholder`]: saved before that was asked for, as a notice's report link, P3).
pub fn unusable(own: &regain_store::StoredTemplate) -> Option<String> {
    let allowed = regain_delivery::builtin_placeholders(&own.name)?;
    checked(own, allowed).err()
}

/// The tenant's own template parsed, or why it cannot be used.
fn checked(own: &regain_store::StoredTemplate, allowed: &[&str]) -> Result<regain_delivery::Template, String> {
    let parsed = regain_delivery::Template::parse(&own.name, &own.subject, &own.body, allowed)
        .map_err(|e| format!("it does not parse: {e}"))?;
    match missing_placeholder(allowed, &parsed) {
        None => Ok(parsed),
        Some(needed) => Err(format!("it lacks {{{{{needed}}}}}, which this message must carry")),
    }
}

/// What a message exists to deliver and its template of `allowed` placeholders lacks, if
/// anything: its code, its link, or a notice's "this wasn't me" link (SECURITY.md P3). A
/// tenant's wording may change everything else.
pub fn missing_placeholder(allowed: &[&str], template: &regain_delivery::Template) -> Option<&'static str> {
    let has = template.placeholders();
    ["code", "link", "report_link"].into_iter().find(|n| allowed.contains(n) && !has.contains(n))
}

/// A tenant's own templates, read once for a change that sends several messages (a notice to
/// every address), with the built-in ones behind them.
pub struct Templates {
    tenant: TenantId,
    own: Vec<regain_store::StoredTemplate>,
}

impl Templates {
    pub async fn of(state: &AppState, tenant: TenantId) -> ApiResult<Self> {
        Ok(Self { tenant, own: state.store.message_templates(tenant).await? })
    }

    /// The template `name` for `channel`, as [`template`] finds it.
    pub fn get(&self, name: &str, channel: &str) -> ApiResult<regain_delivery::Template> {
        resolve_template(self.tenant, self.own.iter().find(|t| t.name == name && t.channel == channel), name, channel)
    }
}

/// Renders the tenant's template for a channel into an outbox message.
#[allow(clippy::too_many_arguments)]
pub async fn compose(
    state: &AppState,
    tenant: &Tenant,
    case: Option<&Case>,
    customer: CustomerId,
    channel: &str,
    to: &str,
    destination: String,
    template_name: &str,
    values: BTreeMap<&str, String>,
) -> ApiResult<NewMessage> {
    let tpl = template(state, tenant.id, template_name, channel).await?;
    render(state, tenant, case, customer, channel, to, destination, template_name, &tpl, values)
}

/// [`compose`] with the template already found.
#[allow(clippy::too_many_arguments)]
pub fn render(
    state: &AppState,
    tenant: &Tenant,
    case: Option<&Case>,
    customer: CustomerId,
    channel: &str,
    to: &str,
    destination: String,
    template_name: &str,
    tpl: &regain_delivery::Template,
    values: BTreeMap<&str, String>,
) -> ApiResult<NewMessage> {
    let mut values = values;
    values.insert("tenant", tenant.display_name.clone());
    let (subject, body) =
        tpl.render(&values).map_err(|e| ApiError::Internal(format!("template {template_name}: {e}")))?;
    Ok(NewMessage {
        id: new_id(state),
        tenant_id: tenant.id,
        case_id: case.map(|c| c.id),
        customer_id: customer,
        channel: channel.to_owned(),
        to: to.to_owned(),
        destination,
        template: template_name.to_owned(),
        subject,
        body,
        created_at: state.now(),
    })
}

/// A case in the state where proofs are collected, that `actor` may work (its tier, its
/// assignee). A case decided or awaiting approval still takes proofs while its risk asks for a
/// step-up (issue 5): a band that rose after the decision asks for one more, and there must be
/// a way to give it.
pub fn require_verifying(case: &Case, actor: Actor, what: &'static str) -> ApiResult<CustomerId> {
    let customer = match (case.state, case.customer_id) {
        (CaseState::Verifying, Some(customer)) => customer,
        (CaseState::Decided | CaseState::AwaitingApproval, Some(customer)) if case.risk_route().step_up => customer,
        (CaseState::Identifying | CaseState::Open, _) => {
            return Err(ApiError::Conflict {
                code: "wrong-state",
                detail: format!("a case in state {} cannot {what}: identify the customer first", case.state),
            })
        }
        _ => {
            return Err(ApiError::Conflict {
                code: "wrong-state",
                detail: format!("a case in state {} cannot {what}: verification is over", case.state),
            })
        }
    };
    regain_core::case::may_work(case, actor)?;
    Ok(customer)
}

/// A new id from the injected clock and entropy, as text.
pub fn new_id(state: &AppState) -> String {
    regain_core::ids::new_v7(state.clock.as_ref(), state.entropy.as_ref()).to_string()
}

/// A uniformly random code of `digits` decimal digits (SECURITY.md T1).
pub fn random_code(entropy: &dyn regain_core::Entropy, digits: u32) -> String {
    let modulus = 10u64.pow(digits);
    // Rejection sampling: values in the last, partial range of u64 would bias the low codes.
    let limit = u64::MAX - (u64::MAX % modulus);
    loop {
        let mut bytes = [0u8; 8];
        entropy.fill(&mut bytes);
        let value = u64::from_le_bytes(bytes);
        if value < limit {
            return format!("{:0width$}", value % modulus, width = digits as usize);
        }
    }
}
