//! Risk scoring and routing (issue 5): the access assessment every recovery goes through before
//! anything is executed.
//!
//! The server gathers [`Signal`]s — typed facts, each with where it came from and when — into a
//! [`Snapshot`]; [`score`] turns the snapshot into a score from 0 to 100, a [`RiskBand`] and the
//! [`Reason`]s with their contributions, under the tenant's [`RiskPolicy`]; [`route`] says what
//! the band means for the case. All of it is pure: the same snapshot and policy give the same
//! answer, so an auditor can replay a decision and the evaluation corpus
//! (`crates/core/tests/risk_corpus/`) pins the behaviour.
//!
//! A signal that could not be gathered (a provider down or slow) is itself a fact,
//! [`Fact::Missing`], and the policy says per signal whether a missing one counts as a risk
//! (fail-closed) or not (fail-open). Scoring never waits for anything.

pub mod lists;
mod policy;
mod snapshot;

use std::fmt::Write as _;

use chrono::Duration;

pub use policy::{BandThresholds, OffHours, RiskPolicy, VelocityRule};

use crate::case::{CaseKind, Channel, Tier};
use crate::env::Timestamp;

string_enum!(
    /// How risky a recovery request looks, from the score and the policy's thresholds.
    RiskBand { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
);

string_enum!(
    /// What a band means for the case: go ahead with what the policy requires, ask for one more
    /// proof, wait for a supervisor, or stop.
    RouteAction {
        Proceed = "proceed",
        StepUp = "step_up",
        SupervisorApproval = "supervisor_approval",
        Hold = "hold",
    }
);

string_enum!(
    /// What the agent noticed on the call or in the chat: the social-engineering tells agents
    /// are trained to spot (CISA AA23-320A).
    Observation {
        /// Pressure or urgency: "I need this now", threats to complain, flattery.
        Urgency = "urgency",
        /// The caller ID does not match the phone on file.
        CallerIdMismatch = "caller_id_mismatch",
        /// Someone in the background is prompting the caller.
        BackgroundPrompting = "background_prompting",
        /// The caller refuses to receive a code on the registered contact points.
        RefusesCode = "refuses_code",
        /// Someone speaks for the account holder ("I'm calling for my husband").
        ThirdParty = "third_party",
        /// The story changes, or answers come too readily or not at all.
        InconsistentStory = "inconsistent_story",
    }
);

string_enum!(
    /// What velocity is counted per.
    Subject { Customer = "customer", Ip = "ip", Phone = "phone", Email = "email" }
);

string_enum!(
    /// A recent change to the account.
    Change { Password = "password", Factor = "factor", Contact = "contact" }
);

string_enum!(
    /// Whether the request's IP or device was seen in the customer's successful sign-ins.
    Familiarity {
        Seen = "seen",
        /// The IP is new, but its network (an IPv4 /24, an IPv6 /48) is not.
        NetworkSeen = "network_seen",
        New = "new",
    }
);

string_enum!(
    ListAction { Allow = "allow", Deny = "deny" }
);

string_enum!(
    /// The signals the engine gathers; a missing one is reported under its name.
    SignalKind {
        Velocity = "velocity",
        Failures = "failures",
        RecentChanges = "recent_changes",
        LoginHistory = "login_history",
        IpLists = "ip_lists",
        EmailDomain = "email_domain",
        SimSwap = "sim_swap",
        Account = "account",
        TimeOfDay = "time_of_day",
        Observations = "observations",
    }
);

string_enum!(
    /// Whether a missing signal counts as a risk (`closed`) or not (`open`).
    OnMissing { Open = "open", Closed = "closed" }
);

string_enum!(
    /// Where signals come from, each with its own deadline: the store (velocity, failures,
    /// recent changes, sign-in history, the account) and the SIM-swap provider. Lists are in
    /// memory and observations are on the case, so neither waits for anything.
    Provider { Store = "store", SimSwap = "sim_swap" }
);

string_enum!(
    /// Why a score is what it is: each reason a policy weight names.
    ReasonCode {
        VelocityCustomer = "velocity_customer",
        VelocityIp = "velocity_ip",
        VelocityPhone = "velocity_phone",
        VelocityEmail = "velocity_email",
        FailedVerifications = "failed_verifications",
        RecentPasswordChange = "recent_password_change",
        RecentFactorChange = "recent_factor_change",
        RecentContactChange = "recent_contact_change",
        KnownIp = "known_ip",
        NewIp = "new_ip",
        NewNetwork = "new_network",
        KnownDevice = "known_device",
        NewDevice = "new_device",
        NoLoginHistory = "no_login_history",
        IpDenied = "ip_denied",
        IpAllowed = "ip_allowed",
        DisposableEmail = "disposable_email",
        SimSwapFresh = "sim_swap_fresh",
        SimSwapRecent = "sim_swap_recent",
        PrivilegedAccount = "privileged_account",
        VipAccount = "vip_account",
        NewAccount = "new_account",
        OffHours = "off_hours",
        Channel = "channel",
        RequestedAction = "requested_action",
        ObservedUrgency = "observed_urgency",
        ObservedCallerIdMismatch = "observed_caller_id_mismatch",
        ObservedBackgroundPrompting = "observed_background_prompting",
        ObservedRefusesCode = "observed_refuses_code",
        ObservedThirdParty = "observed_third_party",
        ObservedInconsistentStory = "observed_inconsistent_story",
        SignalMissing = "signal_missing",
    }
);

ordered_by_declaration!(RiskBand, RouteAction, Observation, Subject, Change, SignalKind, ReasonCode, Provider);

impl Observation {
    pub fn reason(self) -> ReasonCode {
        match self {
            Self::Urgency => ReasonCode::ObservedUrgency,
            Self::CallerIdMismatch => ReasonCode::ObservedCallerIdMismatch,
            Self::BackgroundPrompting => ReasonCode::ObservedBackgroundPrompting,
            Self::RefusesCode => ReasonCode::ObservedRefusesCode,
            Self::ThirdParty => ReasonCode::ObservedThirdParty,
            Self::InconsistentStory => ReasonCode::ObservedInconsistentStory,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Urgency => "the agent noticed pressure or urgency",
            Self::CallerIdMismatch => "the caller ID does not match the phone on file",
            Self::BackgroundPrompting => "someone in the background was prompting the caller",
            Self::RefusesCode => "the caller refused to receive a code on a registered contact",
            Self::ThirdParty => "someone other than the account holder is asking",
            Self::InconsistentStory => "the caller's story was inconsistent",
        }
    }
}

impl Subject {
    fn reason(self) -> ReasonCode {
        match self {
            Self::Customer => ReasonCode::VelocityCustomer,
            Self::Ip => ReasonCode::VelocityIp,
            Self::Phone => ReasonCode::VelocityPhone,
            Self::Email => ReasonCode::VelocityEmail,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Customer => "for this customer",
            Self::Ip => "from this IP address",
            Self::Phone => "naming or calling from this phone number",
            Self::Email => "naming or sent from this email address",
        }
    }
}

impl Change {
    fn reason(self) -> ReasonCode {
        match self {
            Self::Password => ReasonCode::RecentPasswordChange,
            Self::Factor => ReasonCode::RecentFactorChange,
            Self::Contact => ReasonCode::RecentContactChange,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Password => "the password was changed",
            Self::Factor => "a second factor was set up or changed",
            Self::Contact => "an email address or phone number was added",
        }
    }
}

/// One thing the engine knows about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Recovery requests (this one included) per subject within the policy's window.
    Requests {
        subject: Subject,
        count: u32,
        window_minutes: u32,
    },
    /// The customer's counted verification failures (the failure counter, across channels).
    Failures {
        count: u32,
        window_minutes: u32,
    },
    /// When something on the account last changed.
    Changed {
        what: Change,
        at: Timestamp,
    },
    /// The request against the customer's successful sign-ins: `None` where the request carries
    /// no IP (or no device) to compare.
    LoginHistory {
        successes: u32,
        ip: Option<Familiarity>,
        device: Option<Familiarity>,
    },
    /// The request's IP is on a list (`list` is the list's name, never the address).
    IpListed {
        list: String,
        action: ListAction,
    },
    /// The email address in the request is at a disposable-mail domain.
    DisposableEmail {
        list: String,
    },
    /// The latest SIM change the operator reports for the phone on file (`None`: none reported).
    SimSwap {
        changed_at: Option<Timestamp>,
    },
    Account {
        created_at: Timestamp,
        privileged: bool,
        vip: bool,
    },
    /// The request's hour (UTC) and that hour's share of the tenant's recent requests.
    HourOfDay {
        hour: u8,
        share_permille: u32,
        samples: u32,
    },
    Observed {
        what: Observation,
    },
    /// A signal that could not be gathered in time, and why.
    Missing {
        signal: SignalKind,
        why: String,
    },
}

impl Fact {
    pub fn kind(&self) -> SignalKind {
        match self {
            Self::Requests { .. } => SignalKind::Velocity,
            Self::Failures { .. } => SignalKind::Failures,
            Self::Changed { .. } => SignalKind::RecentChanges,
            Self::LoginHistory { .. } => SignalKind::LoginHistory,
            Self::IpListed { .. } => SignalKind::IpLists,
            Self::DisposableEmail { .. } => SignalKind::EmailDomain,
            Self::SimSwap { .. } => SignalKind::SimSwap,
            Self::Account { .. } => SignalKind::Account,
            Self::HourOfDay { .. } => SignalKind::TimeOfDay,
            Self::Observed { .. } => SignalKind::Observations,
            Self::Missing { signal, .. } => *signal,
        }
    }
}

/// A fact with its source (`store`, `sim_swap:http`, `lists`, `agent`, …) and when it was known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub fact: Fact,
    pub source: String,
    pub at: Timestamp,
}

impl Signal {
    pub fn new(fact: Fact, source: impl Into<String>, at: Timestamp) -> Self {
        Self { fact, source: source.into(), at }
    }
}

/// Everything one assessment looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub kind: CaseKind,
    pub channel: Channel,
    pub now: Timestamp,
    pub signals: Vec<Signal>,
}

/// One contribution to the score, in words an agent and an auditor can read. Details never
/// carry a stored value: no address, number or IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    pub points: i32,
    pub detail: String,
    pub source: String,
}

/// What a band means for the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub action: RouteAction,
    /// The tier the case must be at least at.
    pub tier: Tier,
    /// One more proof, by a method not yet used, before going ahead.
    pub step_up: bool,
    /// A supervisor's approval (four eyes) before any action.
    pub approval: bool,
    /// No action at all: the case waits for the security team.
    pub hold: bool,
    /// The security team should consider locking the account down.
    pub lockdown_offered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskAssessment {
    pub score: u8,
    pub band: RiskBand,
    pub route: Route,
    /// Largest contributions first; reasons worth nothing (a fail-open missing signal) last.
    pub reasons: Vec<Reason>,
}

/// What `band` means for a case of `kind`.
///
/// - low: proceed with what the assurance policy requires;
/// - medium: one more proof (step-up);
/// - high: tier 2, the step-up, and a supervisor's approval before any action;
/// - critical: hold at the security tier and offer a lockdown. A `compromised_account` case *is*
///   the lockdown, so it is not held: it goes ahead at the security tier with approval.
pub fn route(band: RiskBand, kind: CaseKind) -> Route {
    let base = Route {
        action: RouteAction::Proceed,
        tier: Tier::FRONT_LINE,
        step_up: false,
        approval: false,
        hold: false,
        lockdown_offered: false,
    };
    match band {
        RiskBand::Low => base,
        RiskBand::Medium => Route { action: RouteAction::StepUp, step_up: true, ..base },
        // Higher bands keep the step-up: a case that rose from medium never needs fewer proofs.
        RiskBand::High => Route {
            action: RouteAction::SupervisorApproval,
            tier: Tier::SUPERVISOR,
            step_up: true,
            approval: true,
            ..base
        },
        RiskBand::Critical if kind == CaseKind::CompromisedAccount => Route {
            action: RouteAction::SupervisorApproval,
            tier: Tier::SECURITY,
            step_up: true,
            approval: true,
            lockdown_offered: true,
            ..base
        },
        RiskBand::Critical => Route {
            action: RouteAction::Hold,
            tier: Tier::SECURITY,
            step_up: true,
            approval: true,
            hold: true,
            lockdown_offered: true,
        },
    }
}

/// Scores `snapshot` under `policy`. Pure and deterministic: the reasons come out in a stable
/// order (largest contribution first, then by code).
pub fn score(policy: &RiskPolicy, snapshot: &Snapshot) -> RiskAssessment {
    let now = snapshot.now;
    let mut reasons: Vec<Reason> = Vec::new();
    let mut push = |code: ReasonCode, points: i32, detail: String, source: &str| {
        reasons.push(Reason { code, points, detail, source: source.to_owned() });
    };
    let mut denied: Vec<&str> = Vec::new();
    let mut allowed: Vec<&str> = Vec::new();
    let mut observed: Vec<Observation> = Vec::new();
    let mut source_of_lists = "lists";

    for signal in &snapshot.signals {
        let source = signal.source.as_str();
        match &signal.fact {
            Fact::Requests { subject, count, window_minutes } => {
                let rule = policy.velocity(*subject);
                if *count >= rule.threshold {
                    push(
                        subject.reason(),
                        policy.weight(subject.reason()),
                        format!(
                            "{count} recovery requests {} in the last {} (threshold {})",
                            subject.words(),
                            span(*window_minutes),
                            rule.threshold
                        ),
                        source,
                    );
                }
            }
            Fact::Failures { count, window_minutes } if *count > 0 => {
                let per = policy.weight(ReasonCode::FailedVerifications);
                let points = per.saturating_mul(i32::try_from(*count).unwrap_or(i32::MAX));
                let cap = i32::try_from(policy.failure_points_max).unwrap_or(i32::MAX);
                push(
                    ReasonCode::FailedVerifications,
                    if per >= 0 { points.min(cap) } else { points.max(-cap) },
                    format!(
                        "{count} failed identification or verification attempt{} for this customer in the last {}",
                        plural(*count),
                        span(*window_minutes)
                    ),
                    source,
                );
            }
            Fact::Failures { .. } => {}
            Fact::Changed { what, at } => {
                let days = i64::from(policy.recent_change_days);
                // A time after `now` (a clock that runs ahead) counts as just now.
                let age = (now - *at).max(Duration::zero());
                if age < Duration::days(days) {
                    push(
                        what.reason(),
                        policy.weight(what.reason()),
                        format!("{} {} ago", what.words(), ago(age)),
                        source,
                    );
                }
            }
            Fact::LoginHistory { successes, ip, device } => {
                if *successes == 0 {
                    push(
                        ReasonCode::NoLoginHistory,
                        policy.weight(ReasonCode::NoLoginHistory),
                        "no successful sign-in on record to compare the request with".to_owned(),
                        source,
                    );
                    continue;
                }
                match ip {
                    Some(Familiarity::Seen) => push(
                        ReasonCode::KnownIp,
                        policy.weight(ReasonCode::KnownIp),
                        "the request comes from an IP address the customer has signed in from".to_owned(),
                        source,
                    ),
                    Some(Familiarity::NetworkSeen) => push(
                        ReasonCode::NewIp,
                        policy.weight(ReasonCode::NewIp),
                        "a new IP address, on a network the customer has signed in from".to_owned(),
                        source,
                    ),
                    Some(Familiarity::New) => push(
                        ReasonCode::NewNetwork,
                        policy.weight(ReasonCode::NewNetwork),
                        format!("an IP address and network not seen in {successes} successful sign-ins"),
                        source,
                    ),
                    None => {}
                }
                match device {
                    Some(Familiarity::Seen) => push(
                        ReasonCode::KnownDevice,
                        policy.weight(ReasonCode::KnownDevice),
                        "a device the customer has signed in with".to_owned(),
                        source,
                    ),
                    Some(Familiarity::NetworkSeen | Familiarity::New) => push(
                        ReasonCode::NewDevice,
                        policy.weight(ReasonCode::NewDevice),
                        format!("a device not seen in {successes} successful sign-ins"),
                        source,
                    ),
                    None => {}
                }
            }
            Fact::IpListed { list, action } => {
                source_of_lists = source;
                match action {
                    ListAction::Deny => denied.push(list),
                    ListAction::Allow => allowed.push(list),
                }
            }
            Fact::DisposableEmail { list } => push(
                ReasonCode::DisposableEmail,
                policy.weight(ReasonCode::DisposableEmail),
                format!("the email address is at a disposable-mail domain (list {list})"),
                source,
            ),
            Fact::SimSwap { changed_at: Some(at) } => {
                let hours = i64::from(policy.sim_swap_hours);
                // A swap reported after `now` (the operator's clock runs ahead) is just now.
                let age = (now - *at).max(Duration::zero());
                if age < Duration::hours(hours) {
                    // A swap within the day is the SIM swapper's signature: worth more.
                    let code =
                        if age < Duration::hours(24) { ReasonCode::SimSwapFresh } else { ReasonCode::SimSwapRecent };
                    push(
                        code,
                        policy.weight(code),
                        format!("the SIM card of the phone on file was changed {} ago", ago(age)),
                        source,
                    );
                }
            }
            Fact::SimSwap { changed_at: None } => {}
            Fact::Account { created_at, privileged, vip } => {
                if *privileged {
                    push(
                        ReasonCode::PrivilegedAccount,
                        policy.weight(ReasonCode::PrivilegedAccount),
                        "a privileged account".to_owned(),
                        source,
                    );
                }
                if *vip {
                    push(
                        ReasonCode::VipAccount,
                        policy.weight(ReasonCode::VipAccount),
                        "a VIP account".to_owned(),
                        source,
                    );
                }
                let age = (now - *created_at).max(Duration::zero());
                if age < Duration::days(i64::from(policy.new_account_days)) {
                    push(
                        ReasonCode::NewAccount,
                        policy.weight(ReasonCode::NewAccount),
                        format!("the account was opened {} ago", ago(age)),
                        source,
                    );
                }
            }
            Fact::HourOfDay { hour, share_permille, samples } => {
                let rule = policy.off_hours;
                if *samples >= rule.samples_min && *share_permille < rule.share_permille {
                    push(
                        ReasonCode::OffHours,
                        policy.weight(ReasonCode::OffHours),
                        format!(
                            "{hour:02}:00–{:02}:00 UTC brings {}.{} % of this tenant's requests (of {samples} recently)",
                            (hour + 1) % 24,
                            share_permille / 10,
                            share_permille % 10
                        ),
                        source,
                    );
                }
            }
            Fact::Observed { what } => {
                if !observed.contains(what) {
                    observed.push(*what);
                    push(what.reason(), policy.weight(what.reason()), what.words().to_owned(), source);
                }
            }
            Fact::Missing { signal, why } => {
                let (points, how) = match policy.on_missing(*signal) {
                    OnMissing::Closed => (policy.weight(ReasonCode::SignalMissing), "counted as a risk (fail-closed)"),
                    OnMissing::Open => (0, "not counted (fail-open)"),
                };
                push(ReasonCode::SignalMissing, points, format!("{signal} unavailable: {why}; {how}"), source);
            }
        }
    }
    if !denied.is_empty() {
        push(
            ReasonCode::IpDenied,
            policy.weight(ReasonCode::IpDenied),
            format!("the request's IP address is on the deny list {}", names(&denied)),
            source_of_lists,
        );
    }
    if !allowed.is_empty() {
        push(
            ReasonCode::IpAllowed,
            policy.weight(ReasonCode::IpAllowed),
            format!("the request's IP address is on the allow list {}", names(&allowed)),
            source_of_lists,
        );
    }
    let channel_points = policy.channel_weight(snapshot.channel);
    if channel_points != 0 {
        push(ReasonCode::Channel, channel_points, format!("a request by {}", snapshot.channel), "case");
    }
    let kind_points = policy.kind_weight(snapshot.kind);
    if kind_points != 0 {
        push(ReasonCode::RequestedAction, kind_points, format!("the request is for {}", snapshot.kind), "case");
    }

    let total: i64 = reasons.iter().map(|r| i64::from(r.points)).sum();
    let score = u8::try_from(total.clamp(0, 100)).unwrap_or(100);
    let band = policy.bands.band(score);
    reasons.sort_by(|a, b| {
        let nothing = |r: &Reason| r.points == 0;
        nothing(a).cmp(&nothing(b)).then(b.points.cmp(&a.points)).then(a.code.cmp(&b.code))
    });
    RiskAssessment { score, band, route: route(band, snapshot.kind), reasons }
}

fn names(lists: &[&str]) -> String {
    let mut out = String::new();
    for (i, name) in lists.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "“{name}”");
    }
    out
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A window in words: `60` → "1 h", `1440` → "24 h", `45` → "45 min".
fn span(minutes: u32) -> String {
    if minutes.is_multiple_of(60) {
        format!("{} h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}

/// A past duration in words: days when over two days, else hours, else minutes.
fn ago(elapsed: Duration) -> String {
    let minutes = elapsed.num_minutes().max(0);
    if minutes >= 48 * 60 {
        format!("{} days", minutes / (24 * 60))
    } else if minutes >= 120 {
        format!("{} hours", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}

#[cfg(test)]
mod tests;
