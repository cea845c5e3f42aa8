//! The risk engine on the server side (issue 5): gathers the signals for a case from the store,
//! the lists, the SIM-swap provider and the case itself — each provider bounded by the policy's
//! deadline, so a slow one makes its signal missing and never the answer late — scores them
//! with the pure `regain_core::risk::score`, and records the assessment on the case, where the
//! route takes effect (`core::case::apply`: tier, approval, hold).

pub mod lists;
pub mod simswap;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Timelike};
use regain_core::case::{apply, CaseCommand, ReasonNote};
use regain_core::policy::AssurancePolicy;
use regain_core::risk::lists::network_of;
use regain_core::risk::{
    score, Change, Fact, Familiarity, Provider, RiskAssessment, Signal, SignalKind, Snapshot, Subject,
};
use regain_core::{Actor, Case, Customer, TenantId, Timestamp};
use regain_store::{RequestContext, RiskHistory, RiskWindows, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use lists::Lists;
use simswap::{SimSwapError, SimSwapProvider};

/// How far back the tenant's usual hours are learned from, and how long they are cached.
const HOURS_LEARNED_DAYS: i64 = 28;
const HOURS_CACHE_SECONDS: u64 = 600;
/// At most this many phones on file are checked for a SIM swap (every verified phone a customer
/// record can hold).
const SIM_SWAP_PHONES_MAX: usize = 10;
/// How long the SIM-swap provider's answer for a phone is kept.
const SIM_CACHE_SECONDS: u64 = 30;
/// Distinct recent sign-ins compared with the request.
const LOGINS_COMPARED_MAX: u32 = 50;

/// What every assessment shares: the lists in force, the SIM-swap provider, and the tenants'
/// learned hours.
pub struct RiskEngine {
    pub lists: Lists,
    pub sim_swap: Option<Arc<dyn SimSwapProvider>>,
    hours: Mutex<HashMap<TenantId, (Instant, [u32; 24])>>,
    /// Tenants' slugs (which name their list folders); a slug never changes.
    slugs: Mutex<HashMap<TenantId, String>>,
    /// The provider's answers per phone, for a few minutes: verification asks on every view.
    sim_cache: Mutex<HashMap<String, (Instant, Option<Timestamp>)>>,
}

impl RiskEngine {
    pub fn new(lists: Lists, sim_swap: Option<Arc<dyn SimSwapProvider>>) -> Self {
        Self {
            lists,
            sim_swap,
            hours: Mutex::new(HashMap::new()),
            slugs: Mutex::new(HashMap::new()),
            sim_cache: Mutex::new(HashMap::new()),
        }
    }

    async fn tenant_slug(&self, state: &AppState, tenant: TenantId) -> ApiResult<String> {
        if let Some(slug) = self.slugs.lock().ok().and_then(|m| m.get(&tenant).cloned()) {
            return Ok(slug);
        }
        let found = state.store.tenant(tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
        let slug = found.slug.as_str().to_owned();
        if let Ok(mut slugs) = self.slugs.lock() {
            slugs.insert(tenant, slug.clone());
        }
        Ok(slug)
    }

    /// No lists and no SIM-swap provider: the store's signals and the case's only.
    pub fn without_providers() -> Self {
        Self::new(Lists::default(), None)
    }

    async fn tenant_hours(&self, state: &AppState, tenant: TenantId, now: Timestamp) -> Result<[u32; 24], StoreError> {
        if let Some((at, hours)) = self.hours.lock().ok().and_then(|m| m.get(&tenant).copied()) {
            if at.elapsed() < StdDuration::from_secs(HOURS_CACHE_SECONDS) {
                return Ok(hours);
            }
        }
        let hours = state.store.request_hours(tenant, now - Duration::days(HOURS_LEARNED_DAYS)).await?;
        if let Ok(mut cache) = self.hours.lock() {
            cache.insert(tenant, (Instant::now(), hours));
        }
        Ok(hours)
    }
}

/// The windows the store counts in, from the policy.
pub fn windows(policy: &AssurancePolicy) -> RiskWindows {
    let minutes = |subject| Duration::minutes(i64::from(policy.risk.velocity(subject).window_minutes));
    RiskWindows {
        customer: minutes(Subject::Customer),
        ip: minutes(Subject::Ip),
        phone: minutes(Subject::Phone),
        email: minutes(Subject::Email),
        failures: Duration::minutes(i64::from(policy.failures.window_minutes)),
        logins_max: LOGINS_COMPARED_MAX,
    }
}

/// Gathers every signal for `case` at `now`. Never fails and never waits past the policy's
/// deadlines: what could not be had is a [`Fact::Missing`].
pub async fn snapshot(
    state: &AppState,
    case: &Case,
    customer: Option<&Customer>,
    tenant_slug: &str,
    policy: &AssurancePolicy,
) -> Snapshot {
    let now = state.now();
    let risk = &policy.risk;
    let store_deadline = StdDuration::from_millis(u64::from(risk.deadline_ms(Provider::Store)));
    let sim_deadline = StdDuration::from_millis(u64::from(risk.deadline_ms(Provider::SimSwap)));
    let windows = windows(policy);
    let history = tokio::time::timeout(
        store_deadline,
        state.store.risk_history(case.tenant_id, case.id, case.customer_id, &windows, now),
    );
    let hours = tokio::time::timeout(store_deadline, state.risk.tenant_hours(state, case.tenant_id, now));
    let phones = phones_of(customer);
    let sim = sim_swap(&state.risk, &phones, sim_deadline);
    let (history, hours, sim) = tokio::join!(history, hours, sim);

    let mut signals = Vec::new();
    let mut add = |fact: Fact, source: &str| signals.push(Signal::new(fact, source, now));
    let late = |what: &str, deadline: StdDuration| format!("{what} did not answer within {} ms", deadline.as_millis());

    let (context, context_known) = match history {
        Ok(Ok(history)) => {
            store_signals(&mut add, &history, customer, policy);
            (history.context, true)
        }
        outcome => {
            let why = match outcome {
                Err(_) => late("the store", store_deadline),
                Ok(Err(e)) => {
                    tracing::warn!(case_id = %case.id, error = %e, "risk: the store's history is unavailable");
                    "the store could not be read".to_owned()
                }
                Ok(Ok(_)) => String::new(),
            };
            for signal in [SignalKind::Velocity, SignalKind::Failures, SignalKind::RecentChanges] {
                add(Fact::Missing { signal, why: why.clone() }, "store");
            }
            if customer.is_some() {
                add(Fact::Missing { signal: SignalKind::LoginHistory, why: why.clone() }, "store");
            }
            add(Fact::Missing { signal: SignalKind::IpLists, why: format!("the request's context: {why}") }, "store");
            (RequestContext::default(), false)
        }
    };

    if let Some(customer) = customer {
        add(
            Fact::Account {
                created_at: account_opened(customer),
                privileged: customer.flags.privileged,
                vip: customer.flags.vip,
            },
            "store",
        );
    }

    let lists = state.risk.lists.current();
    match context.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(ip) => {
            for (list, action) in lists.ip_matches(tenant_slug, ip) {
                add(Fact::IpListed { list, action }, "lists");
            }
        }
        // Online, the intake always sees an address: one it did not pass cannot be checked.
        // (Said only where there are lists to check, of a request a client system passed on.)
        None if context_known
            && state.risk.lists.dir().is_some()
            && matches!(case.created_by, Actor::ApiKey { .. })
            && matches!(case.channel, regain_core::Channel::Web | regain_core::Channel::Chat) =>
        {
            add(Fact::Missing { signal: SignalKind::IpLists, why: "the intake passed no IP address".into() }, "lists")
        }
        None => {}
    }
    let domains = context.emails().filter_map(|e| e.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase());
    if let Some(list) = domains.into_iter().find_map(|domain| lists.domain_match(tenant_slug, &domain)) {
        add(Fact::DisposableEmail { list }, "lists");
    }

    if let Some(provider) = state.risk.sim_swap.as_deref() {
        let source = format!("sim_swap:{}", provider.name());
        match sim {
            SimOutcome::NoPhone => {}
            SimOutcome::Known(changed_at) => add(Fact::SimSwap { changed_at }, &source),
            SimOutcome::Missing(why) => add(Fact::Missing { signal: SignalKind::SimSwap, why }, &source),
        }
    }

    match hours {
        Ok(Ok(hours)) => {
            let samples: u32 = hours.iter().fold(0u32, |sum, n| sum.saturating_add(*n));
            let hour = u8::try_from(now.hour()).unwrap_or(0);
            let in_hour = hours.get(usize::from(hour)).copied().unwrap_or(0);
            let share_permille = if samples == 0 {
                0
            } else {
                u32::try_from(u64::from(in_hour) * 1000 / u64::from(samples)).unwrap_or(1000)
            };
            add(Fact::HourOfDay { hour, share_permille, samples }, "store");
        }
        Ok(Err(_)) => {
            add(Fact::Missing { signal: SignalKind::TimeOfDay, why: "the store could not be read".into() }, "store")
        }
        Err(_) => add(Fact::Missing { signal: SignalKind::TimeOfDay, why: late("the store", store_deadline) }, "store"),
    }

    for tell in &case.observed {
        add(Fact::Observed { what: *tell }, "agent");
    }

    Snapshot { kind: case.kind, channel: case.channel, now, signals }
}

fn store_signals(
    add: &mut impl FnMut(Fact, &str),
    history: &RiskHistory,
    customer: Option<&Customer>,
    policy: &AssurancePolicy,
) {
    let window = |subject| policy.risk.velocity(subject).window_minutes;
    for (subject, count) in [
        (Subject::Customer, history.requests_customer),
        (Subject::Ip, history.requests_ip),
        (Subject::Phone, history.requests_phone),
        (Subject::Email, history.requests_email),
    ] {
        if let Some(count) = count {
            add(Fact::Requests { subject, count, window_minutes: window(subject) }, "store");
        }
    }
    if let Some(count) = history.failures {
        add(Fact::Failures { count, window_minutes: policy.failures.window_minutes }, "store");
    }
    let Some(customer) = customer else { return };
    // What was set when the record was made (or imported) is not a change.
    let opened = customer.created_at + Duration::minutes(1);
    for (what, at) in [
        (Change::Password, history.password_changed_at),
        (Change::Factor, history.factor_changed_at),
        (Change::Contact, history.contact_changed_at),
    ] {
        if let Some(at) = at.filter(|at| *at > opened) {
            add(Fact::Changed { what, at }, "store");
        }
    }
    let ip = history.context.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok());
    let ip_familiarity = ip.map(|ip| {
        let seen: Vec<IpAddr> = history.logins.iter().filter_map(|l| l.ip.as_deref()?.parse().ok()).collect();
        if seen.contains(&ip) {
            Familiarity::Seen
        } else if seen.iter().any(|s| network_of(*s) == network_of(ip)) {
            Familiarity::NetworkSeen
        } else {
            Familiarity::New
        }
    });
    let device_familiarity = history.context.user_agent.as_deref().map(|agent| {
        if history.logins.iter().any(|l| l.user_agent.as_deref() == Some(agent)) {
            Familiarity::Seen
        } else {
            Familiarity::New
        }
    });
    // Sign-in history exists only for accounts that sign in through the built-in directory;
    // for an external directory its absence says nothing (a connector may supply it later).
    if customer.factors.password || history.login_successes > 0 {
        add(
            Fact::LoginHistory { successes: history.login_successes, ip: ip_familiarity, device: device_familiarity },
            "store",
        );
    }
}

/// When the account was opened, as far as Regain can tell: its record's creation, or earlier
/// when a contact point is older (an imported customer's record is new, its addresses are not).
pub fn account_opened(customer: &Customer) -> Timestamp {
    let contacts = customer.emails.iter().map(|e| e.added_at).chain(customer.phones.iter().map(|p| p.added_at));
    contacts.fold(customer.created_at, Timestamp::min)
}

/// What the SIM-swap provider says of the customer's phones.
pub enum SimOutcome {
    /// No provider, or no verified phone to ask about.
    NoPhone,
    /// The latest change over the phones checked (`None`: none reported).
    Known(Option<Timestamp>),
    Missing(String),
}

/// Asks the provider about `phones` (answers are kept for [`SIM_CACHE_SECONDS`]), within
/// `deadline` for all of them together.
async fn sim_swap(engine: &RiskEngine, phones: &[String], deadline: StdDuration) -> SimOutcome {
    let Some(provider) = engine.sim_swap.as_deref() else { return SimOutcome::NoPhone };
    if phones.is_empty() {
        return SimOutcome::NoPhone;
    }
    let cached = |phone: &String| {
        engine.sim_cache.lock().ok().and_then(|cache| {
            cache.get(phone).filter(|(at, _)| at.elapsed() < StdDuration::from_secs(SIM_CACHE_SECONDS)).map(|(_, v)| *v)
        })
    };
    let calls = futures::future::join_all(phones.iter().map(|phone| async move {
        match cached(phone) {
            Some(known) => Ok(known),
            None => {
                let answer = match provider.retrieve_date(phone).await {
                    // A number the operator does not know has no SIM change to report.
                    Err(SimSwapError::UnknownNumber) => Ok(None),
                    other => other,
                };
                // Only a reported swap is kept: "no swap" is asked again every time, so nobody can
                // have a clean answer cached and then swap the SIM before proving by SMS.
                if let (Ok(Some(at)), Ok(mut cache)) = (&answer, engine.sim_cache.lock()) {
                    cache.insert(phone.clone(), (Instant::now(), Some(*at)));
                }
                answer
            }
        }
    }));
    let answers = match tokio::time::timeout(deadline, calls).await {
        Ok(answers) => answers,
        Err(_) => {
            return SimOutcome::Missing(format!(
                "the SIM-swap provider did not answer within {} ms",
                deadline.as_millis()
            ))
        }
    };
    let mut latest: Option<Timestamp> = None;
    for answer in answers {
        match answer {
            Ok(at) => latest = latest.max(at),
            Err(e) => return SimOutcome::Missing(format!("the SIM-swap provider: {e}")),
        }
    }
    SimOutcome::Known(latest)
}

/// The verified phones of `customer` the provider is asked about.
fn phones_of(customer: Option<&Customer>) -> Vec<String> {
    customer
        .map(|c| {
            c.phones
                .iter()
                .filter(|p| p.verified)
                .map(|p| p.number.as_str().to_owned())
                .take(SIM_SWAP_PHONES_MAX)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether SMS must not count for `customer` now (SECURITY.md M5): the phone's SIM changed
/// within the assurance policy's `sim_swap_hours`, or the provider could not say and the policy
/// treats a missing SIM-swap signal as fail-closed. Without a provider, SMS is judged as before.
pub async fn sms_blocked_by_sim_swap(state: &AppState, policy: &AssurancePolicy, customer: &Customer) -> bool {
    let deadline = StdDuration::from_millis(u64::from(policy.risk.deadline_ms(Provider::SimSwap)));
    match sim_swap(&state.risk, &phones_of(Some(customer)), deadline).await {
        SimOutcome::NoPhone => false,
        SimOutcome::Known(latest) => latest.is_some_and(|at| policy.is_recent_sim_swap(at, state.now())),
        SimOutcome::Missing(why) => {
            let closed = policy.risk.on_missing(SignalKind::SimSwap) == regain_core::risk::OnMissing::Closed;
            tracing::warn!(customer_id = %customer.id, why, fail_closed = closed, "SIM-swap signal missing for verification");
            closed
        }
    }
}

/// Assesses `case` now and scores it, without recording anything.
pub async fn assess(state: &AppState, case: &Case) -> ApiResult<(RiskAssessment, Option<i64>)> {
    let started = Instant::now();
    // Independent reads, side by side: the answer waits for the slowest, not for their sum.
    let customer = async {
        match case.customer_id {
            Some(id) => state.store.customer(case.tenant_id, id).await,
            None => Ok(None),
        }
    };
    let (policy, slug, customer) = tokio::join!(
        crate::verification::tenant_policy(state, case.tenant_id),
        state.risk.tenant_slug(state, case.tenant_id),
        customer
    );
    let (policy, version) = policy?;
    let (slug, customer) = (slug?, customer?);
    let snapshot = snapshot(state, case, customer.as_ref(), &slug, &policy).await;
    let assessment = score(&policy.risk, &snapshot);
    metrics::histogram!("regain_risk_assessment_seconds").record(started.elapsed().as_secs_f64());
    Ok((assessment, version))
}

/// Assesses `case` and records the assessment on it (a `case.risk_assessed` timeline and audit
/// entry when the score or the band in force changed; the route's tier and approval take
/// effect). A case changed meanwhile is read again and assessed again. Returns the case as
/// stored afterwards.
pub async fn assess_and_record(state: &AppState, mut case: Case) -> ApiResult<Case> {
    for _ in 0..3 {
        if !case.state.is_before_execution() {
            return Ok(case);
        }
        let (assessment, policy_version) = assess(state, &case).await?;
        let reasons = assessment
            .reasons
            .iter()
            .map(|r| ReasonNote {
                code: r.code.as_str().to_owned(),
                points: r.points,
                detail: r.detail.clone(),
                source: r.source.clone(),
            })
            .collect();
        let command =
            CaseCommand::AssessRisk { score: assessment.score, band: assessment.band, reasons, policy_version };
        let (next, events) = apply(&case, command, Actor::System, state.now())?;
        if events.is_empty() {
            return Ok(case);
        }
        match crate::webhooks::commit(state, &next, &events, &Actor::System, Vec::new()).await {
            Ok(()) => {
                metrics::counter!("regain_risk_assessments_total", "band" => assessment.band.as_str()).increment(1);
                tracing::info!(case_id = %next.id, score = assessment.score, band = %assessment.band,
                    route = %next.risk_route().action, "risk assessed");
                return Ok(next);
            }
            Err(StoreError::Conflict) => {
                case = state.store.case(case.tenant_id, case.id).await?.ok_or_else(|| ApiError::not_found("case"))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict {
        code: "conflict",
        detail: "the case kept changing while its risk was assessed; try again".into(),
    })
}

/// Records the request's context for velocity (merged with what the case already had), then
/// assesses the case.
pub async fn record_and_assess(state: &AppState, case: Case, context: &RequestContext) -> ApiResult<Case> {
    state.store.record_request(case.tenant_id, case.id, case.created_at, case.customer_id, context).await?;
    assess_and_record(state, case).await
}

/// Reloads the lists every `interval_ms` when their folder changed; an error keeps the lists in
/// force and is logged (and shown by `GET /api/v1/risk/lists`).
pub fn spawn_list_reloader(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    state.risk.lists.dir()?;
    let interval = state.config.risk_lists_reload_interval_ms;
    crate::periodic::spawn_every(interval, state, |state| async move {
        let now = state.now();
        let risk = Arc::clone(&state.risk);
        match tokio::task::spawn_blocking(move || risk.lists.reload(now, false)).await {
            Ok(Ok(true)) => tracing::info!("risk lists reloaded"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "risk lists not reloaded; the previous lists stay in force"),
            Err(e) => tracing::error!(error = %e, "risk list reload failed"),
        }
    })
}
