//! The assurance policy (issue 4 item 5): per tenant and per recovery kind, which evidence
//! suffices, and [`evaluate`], the pure function that says whether a case's evidence satisfies
//! it or what the agent can still ask for.
//!
//! A rule is a list of alternatives; an alternative is a list of proof slots, each the set of
//! methods that may fill it, filled by evidence of pairwise different methods. Tenants edit
//! rules, but some floors hold whatever a rule says, in [`AssurancePolicy::validate`] and again
//! in [`evaluate`] (SECURITY.md M1, M5, K1):
//!
//! - knowledge answers never count;
//! - email alone never recovers a second factor (`mfa_recovery`, `compromised_account`);
//! - SMS alone never does either, nor a `contact_change`; SMS after a recent SIM swap never counts;
//! - a proof sent to a contact point added or changed in the last `recent_contact_days` (at
//!   least 7) does not count.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::{json, Map, Value};

use crate::case::CaseKind;
use crate::env::Timestamp;
use crate::risk::RiskPolicy;
use crate::validation::ValidationError;

string_enum!(
    /// How a proof was given. `email` and `sms` are a code or confirmation link sent to a
    /// registered address or phone; `document` is ID document + selfie re-proofing.
    Method {
        Email = "email",
        Sms = "sms",
        Totp = "totp",
        RecoveryCode = "recovery_code",
        Document = "document",
        Knowledge = "knowledge",
    }
);

// Declaration order, which is also the order of preference in suggestions.
ordered_by_declaration!(Method);

/// One proof the case has collected (only passed proofs are evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub method: Method,
    pub at: Timestamp,
    /// When the contact point the proof went to was added or last changed (email/sms only).
    pub destination_since: Option<Timestamp>,
    /// A SIM swap was reported for the phone within the policy's window (sms only); see
    /// [`AssurancePolicy::is_recent_sim_swap`].
    pub sim_swapped: bool,
}

impl Evidence {
    /// A proof to a long-standing destination, with no SIM swap reported.
    pub fn new(method: Method, at: Timestamp) -> Self {
        Self { method, at, destination_since: None, sim_swapped: false }
    }
}

/// What the customer can still be asked for: methods they have enrolled or registered and that
/// would count.
pub type Available = BTreeSet<Method>;

/// Why a piece of evidence did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredBecause {
    KnowledgeNeverCounts,
    RecentContact,
    SimSwap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub satisfied: bool,
    /// Indexes into the evidence slice that were counted toward the satisfied alternative, in
    /// ascending order (empty if not satisfied).
    pub used: Vec<usize>,
    /// Evidence that did not count, and why.
    pub ignored: Vec<(usize, IgnoredBecause)>,
    /// When not satisfied: the ways to finish, fewest missing slots first (then in the rule's
    /// order). Each is the list of missing slots, each slot the set of methods that would fill
    /// it, restricted to `available` and to methods not already used in that alternative. An
    /// alternative that `available` cannot finish is left out.
    pub next: Vec<Vec<BTreeSet<Method>>>,
    pub cooling_off_hours: u32,
}

/// The rule for one kind of recovery: any one alternative suffices; once executed, the change
/// waits `cooling_off_hours`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRule {
    pub any_of: Vec<Alternative>,
    pub cooling_off_hours: u32,
}

impl KindRule {
    /// The rule with one more proof in every alternative, by any method that counts and not
    /// already used in it: what a medium risk band asks for (issue 5, step-up).
    pub fn stepped_up(&self) -> Self {
        let any: BTreeSet<Method> = COUNTING.iter().copied().collect();
        let any_of = self
            .any_of
            .iter()
            .map(|alternative| {
                let mut proofs = alternative.proofs.clone();
                proofs.push(any.clone());
                Alternative { proofs }
            })
            .collect();
        Self { any_of, cooling_off_hours: self.cooling_off_hours }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// Each slot is the set of methods that may fill it; slots are filled by evidence of
    /// pairwise different methods.
    pub proofs: Vec<BTreeSet<Method>>,
}

/// One-time codes and links (SECURITY.md T4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRules {
    pub sms_ttl_minutes: u32,
    pub email_ttl_minutes: u32,
    pub link_ttl_minutes: u32,
    /// Wrong entries of one code before it is spent.
    pub attempts_max: u32,
}

impl Default for CodeRules {
    fn default() -> Self {
        Self { sms_ttl_minutes: 10, email_ttl_minutes: 10, link_ttl_minutes: 30, attempts_max: 5 }
    }
}

/// Failed proofs counted per customer (SECURITY.md T7): `max` within `window_minutes` stops
/// every proof for `cooldown_minutes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRules {
    pub max: u32,
    pub window_minutes: u32,
    pub cooldown_minutes: u32,
}

impl Default for FailureRules {
    fn default() -> Self {
        Self { max: 5, window_minutes: 24 * 60, cooldown_minutes: 24 * 60 }
    }
}

string_enum!(
    /// A second factor or recovery credential a recovery can remove.
    Factor {
        /// The authenticator app (TOTP).
        Totp = "totp",
        /// The saved one-time recovery codes.
        RecoveryCodes = "recovery_codes",
        /// Registered passkeys.
        Passkeys = "passkeys",
    }
);
ordered_by_declaration!(Factor);

/// What the recovery actions do (issue 6): the factors an MFA reset removes, and how far back
/// a lockdown's review of recent changes looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRules {
    /// Never empty: an MFA reset that removes nothing would send a re-enrollment link for
    /// nothing.
    pub mfa_reset_removes: BTreeSet<Factor>,
    pub lockdown_review_days: u32,
}

impl Default for RecoveryRules {
    fn default() -> Self {
        Self { mfa_reset_removes: [Factor::Totp, Factor::RecoveryCodes].into(), lockdown_review_days: 30 }
    }
}

impl RecoveryRules {
    pub const LOCKDOWN_REVIEW_DAYS_MAX: u32 = 365;

    fn from_value(value: &Value, path: &str) -> Result<Self, ValidationError> {
        let defaults = Self::default();
        let map = object(value, path)?;
        known_fields(map, path, &["mfa_reset_removes", "lockdown_review_days"])?;
        let mfa_reset_removes = match map.get("mfa_reset_removes") {
            None => defaults.mfa_reset_removes,
            Some(list) => {
                let field = format!("{path}/mfa_reset_removes");
                let items = list.as_array().ok_or_else(|| ValidationError::new(&field, "must be an array"))?;
                let mut factors = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{field}/{i}");
                    let name = item.as_str().ok_or_else(|| ValidationError::new(&at, "must be a string"))?;
                    factors.insert(Factor::parse(&at, name)?);
                }
                factors
            }
        };
        Ok(Self {
            mfa_reset_removes,
            lockdown_review_days: number(map, path, "lockdown_review_days", defaults.lockdown_review_days)?,
        })
    }

    fn to_value(&self) -> Value {
        json!({
            "mfa_reset_removes": self.mfa_reset_removes.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            "lockdown_review_days": self.lockdown_review_days,
        })
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if self.mfa_reset_removes.is_empty() {
            return Err(ValidationError::new("mfa_reset_removes", "must name at least one factor"));
        }
        range("lockdown_review_days", self.lockdown_review_days, 1, Self::LOCKDOWN_REVIEW_DAYS_MAX)
    }
}

/// One [`KindRule`] for every [`CaseKind`]: none can be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRules {
    password_reset: KindRule,
    username_recovery: KindRule,
    account_unlock: KindRule,
    mfa_recovery: KindRule,
    contact_change: KindRule,
    compromised_account: KindRule,
}

impl KindRules {
    pub fn get(&self, kind: CaseKind) -> &KindRule {
        match kind {
            CaseKind::PasswordReset => &self.password_reset,
            CaseKind::UsernameRecovery => &self.username_recovery,
            CaseKind::AccountUnlock => &self.account_unlock,
            CaseKind::MfaRecovery => &self.mfa_recovery,
            CaseKind::ContactChange => &self.contact_change,
            CaseKind::CompromisedAccount => &self.compromised_account,
        }
    }

    pub fn get_mut(&mut self, kind: CaseKind) -> &mut KindRule {
        match kind {
            CaseKind::PasswordReset => &mut self.password_reset,
            CaseKind::UsernameRecovery => &mut self.username_recovery,
            CaseKind::AccountUnlock => &mut self.account_unlock,
            CaseKind::MfaRecovery => &mut self.mfa_recovery,
            CaseKind::ContactChange => &mut self.contact_change,
            CaseKind::CompromisedAccount => &mut self.compromised_account,
        }
    }

    /// Replaces the rule for `kind`, returning the old one.
    pub fn set(&mut self, kind: CaseKind, rule: KindRule) -> KindRule {
        std::mem::replace(self.get_mut(kind), rule)
    }

    /// Every kind with its rule, in [`CaseKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (CaseKind, &KindRule)> {
        CaseKind::ALL.iter().map(move |&kind| (kind, self.get(kind)))
    }
}

impl Default for KindRules {
    fn default() -> Self {
        Self {
            password_reset: default_rule(CaseKind::PasswordReset),
            username_recovery: default_rule(CaseKind::UsernameRecovery),
            account_unlock: default_rule(CaseKind::AccountUnlock),
            mfa_recovery: default_rule(CaseKind::MfaRecovery),
            contact_change: default_rule(CaseKind::ContactChange),
            compromised_account: default_rule(CaseKind::CompromisedAccount),
        }
    }
}

/// A tenant's assurance policy. Build it with [`Default`] or [`AssurancePolicy::from_json`];
/// anything built by hand goes through [`AssurancePolicy::validate`] before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssurancePolicy {
    pub kinds: KindRules,
    /// A proof sent to a contact point added or changed this recently does not count.
    pub recent_contact_days: u32,
    /// SMS does not count for this long after a SIM change.
    pub sim_swap_hours: u32,
    pub codes: CodeRules,
    pub failures: FailureRules,
    /// How requests are scored and routed (issue 5): versioned with the rest of the policy.
    pub risk: RiskPolicy,
    pub recovery: RecoveryRules,
}

/// The sensible default: see [`default_rule`] for the rules; contact points count after 7 days,
/// SMS 72 h after a SIM change.
impl Default for AssurancePolicy {
    fn default() -> Self {
        Self {
            kinds: KindRules::default(),
            recent_contact_days: Self::RECENT_CONTACT_DAYS_MIN,
            sim_swap_hours: Self::SIM_SWAP_HOURS_MIN,
            codes: CodeRules::default(),
            failures: FailureRules::default(),
            risk: RiskPolicy::default(),
            recovery: RecoveryRules::default(),
        }
    }
}

impl AssurancePolicy {
    pub const RECENT_CONTACT_DAYS_MIN: u32 = 7;
    pub const RECENT_CONTACT_DAYS_MAX: u32 = 365;
    pub const SIM_SWAP_HOURS_MIN: u32 = 72;
    pub const SIM_SWAP_HOURS_MAX: u32 = 90 * 24;
    pub const COOLING_OFF_HOURS_MAX: u32 = 30 * 24;
    pub const ALTERNATIVES_MAX: usize = 16;
    pub const FAILURES_MAX_LIMIT: u32 = 100;

    /// Parses a policy document (the API's body). Any field left out takes its default (a kind
    /// left out takes its default rule; an alternative must list its `proofs`); unknown fields
    /// are refused; then [`validate`](Self::validate). Errors name the field as a path such as
    /// `kinds/mfa_recovery/any_of/0`.
    pub fn from_json(text: &str) -> Result<Self, ValidationError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ValidationError::new("", format!("must be valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    /// As [`from_json`](Self::from_json), from a parsed document.
    pub fn from_value(value: &Value) -> Result<Self, ValidationError> {
        let defaults = Self::default();
        let map = object(value, "")?;
        known_fields(
            map,
            "",
            &["kinds", "recent_contact_days", "sim_swap_hours", "codes", "failures", "risk", "recovery"],
        )?;
        let mut kinds = KindRules::default();
        if let Some(value) = map.get("kinds") {
            for (key, rule) in object(value, "kinds")? {
                let path = format!("kinds/{}", escape(key));
                let kind = CaseKind::parse(&path, key)?;
                let parsed = parse_rule(rule, &path, kinds.get(kind))?;
                kinds.set(kind, parsed);
            }
        }
        let codes = match map.get("codes") {
            None => defaults.codes,
            Some(value) => {
                let codes = object(value, "codes")?;
                known_fields(
                    codes,
                    "codes",
                    &["sms_ttl_minutes", "email_ttl_minutes", "link_ttl_minutes", "attempts_max"],
                )?;
                let d = defaults.codes;
                CodeRules {
                    sms_ttl_minutes: number(codes, "codes", "sms_ttl_minutes", d.sms_ttl_minutes)?,
                    email_ttl_minutes: number(codes, "codes", "email_ttl_minutes", d.email_ttl_minutes)?,
                    link_ttl_minutes: number(codes, "codes", "link_ttl_minutes", d.link_ttl_minutes)?,
                    attempts_max: number(codes, "codes", "attempts_max", d.attempts_max)?,
                }
            }
        };
        let failures = match map.get("failures") {
            None => defaults.failures,
            Some(value) => {
                let failures = object(value, "failures")?;
                known_fields(failures, "failures", &["max", "window_minutes", "cooldown_minutes"])?;
                let d = defaults.failures;
                FailureRules {
                    max: number(failures, "failures", "max", d.max)?,
                    window_minutes: number(failures, "failures", "window_minutes", d.window_minutes)?,
                    cooldown_minutes: number(failures, "failures", "cooldown_minutes", d.cooldown_minutes)?,
                }
            }
        };
        let risk = match map.get("risk") {
            None => defaults.risk,
            Some(value) => RiskPolicy::from_value(value, "risk")?,
        };
        let recovery = match map.get("recovery") {
            None => defaults.recovery,
            Some(value) => RecoveryRules::from_value(value, "recovery")?,
        };
        Self {
            kinds,
            recent_contact_days: number(map, "", "recent_contact_days", defaults.recent_contact_days)?,
            sim_swap_hours: number(map, "", "sim_swap_hours", defaults.sim_swap_hours)?,
            codes,
            failures,
            risk,
            recovery,
        }
        .validate()
    }

    /// Canonical JSON: every kind and every field, in a stable order.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    pub fn to_value(&self) -> Value {
        let kinds: Map<String, Value> =
            self.kinds.iter().map(|(kind, rule)| (kind.as_str().to_owned(), rule_value(rule))).collect();
        json!({
            "kinds": kinds,
            "recent_contact_days": self.recent_contact_days,
            "sim_swap_hours": self.sim_swap_hours,
            "codes": {
                "sms_ttl_minutes": self.codes.sms_ttl_minutes,
                "email_ttl_minutes": self.codes.email_ttl_minutes,
                "link_ttl_minutes": self.codes.link_ttl_minutes,
                "attempts_max": self.codes.attempts_max,
            },
            "failures": {
                "max": self.failures.max,
                "window_minutes": self.failures.window_minutes,
                "cooldown_minutes": self.failures.cooldown_minutes,
            },
            "risk": self.risk.to_value(),
            "recovery": self.recovery.to_value(),
        })
    }

    /// Enforces the ranges and the floors no policy can lower. See the module documentation.
    pub fn validate(self) -> Result<Self, ValidationError> {
        range(
            "recent_contact_days",
            self.recent_contact_days,
            Self::RECENT_CONTACT_DAYS_MIN,
            Self::RECENT_CONTACT_DAYS_MAX,
        )?;
        range("sim_swap_hours", self.sim_swap_hours, Self::SIM_SWAP_HOURS_MIN, Self::SIM_SWAP_HOURS_MAX)?;
        range("codes/sms_ttl_minutes", self.codes.sms_ttl_minutes, 1, 10)?;
        range("codes/email_ttl_minutes", self.codes.email_ttl_minutes, 1, 24 * 60)?;
        range("codes/link_ttl_minutes", self.codes.link_ttl_minutes, 1, 24 * 60)?;
        range("codes/attempts_max", self.codes.attempts_max, 1, 10)?;
        range("failures/max", self.failures.max, 1, Self::FAILURES_MAX_LIMIT)?;
        range("failures/window_minutes", self.failures.window_minutes, 1, 30 * 24 * 60)?;
        range("failures/cooldown_minutes", self.failures.cooldown_minutes, 1, 30 * 24 * 60)?;
        for (kind, rule) in self.kinds.iter() {
            validate_rule(kind, rule).map_err(|e| e.within(&format!("kinds/{kind}")))?;
        }
        self.recovery.validate().map_err(|e| e.within("recovery"))?;
        let risk = self.risk.clone().validate().map_err(|e| e.within("risk"))?;
        Ok(Self { risk, ..self })
    }

    pub fn rule(&self, kind: CaseKind) -> &KindRule {
        self.kinds.get(kind)
    }

    /// How long a completed recovery of `kind` cools off ("this wasn't me" from an old contact
    /// cancels it; SECURITY.md G5): the rule's hours, twice that at a medium risk band, and at
    /// high or critical twice that and at least a day — a high-risk recovery always cools off.
    pub fn cooling_off_hours(&self, kind: CaseKind, band: Option<crate::risk::RiskBand>) -> u32 {
        use crate::risk::RiskBand;
        let floor = self.rule(kind).cooling_off_hours;
        let hours = match band {
            None | Some(RiskBand::Low) => floor,
            Some(RiskBand::Medium) => floor.saturating_mul(2),
            Some(RiskBand::High | RiskBand::Critical) => floor.saturating_mul(2).max(24),
        };
        hours.min(crate::case::COOLING_OFF_HOURS_MAX)
    }

    /// The same policy with `kind`'s rule [stepped up](KindRule::stepped_up).
    pub fn with_step_up(&self, kind: CaseKind) -> Self {
        let mut policy = self.clone();
        let stepped = policy.rule(kind).stepped_up();
        policy.kinds.set(kind, stepped);
        policy
    }

    /// Whether a contact point added or changed at `since` is too recent for a proof sent to it
    /// to count: strictly less than `recent_contact_days` (never fewer than 7) before `now`.
    pub fn is_recent_contact(&self, since: Timestamp, now: Timestamp) -> bool {
        let days = self.recent_contact_days.max(Self::RECENT_CONTACT_DAYS_MIN);
        now.checked_sub_signed(Duration::days(i64::from(days))).is_none_or(|cutoff| since > cutoff)
    }

    /// Whether a SIM change at `changed_at` stops SMS from counting: strictly less than
    /// `sim_swap_hours` (never fewer than 72) before `now`. Sets [`Evidence::sim_swapped`].
    pub fn is_recent_sim_swap(&self, changed_at: Timestamp, now: Timestamp) -> bool {
        let hours = self.sim_swap_hours.max(Self::SIM_SWAP_HOURS_MIN);
        now.checked_sub_signed(Duration::hours(i64::from(hours))).is_none_or(|cutoff| changed_at > cutoff)
    }
}

/// Whether `evidence` satisfies the policy's rule for `kind`, and if not, what could finish it.
/// Pure; the recent-contact floor is judged at each proof's time (never after `now`). The floors hold here too, whatever the policy
/// says: knowledge, SMS after a SIM swap and proofs to recent contact points are ignored, and
/// an alternative never counts when what fills it is email alone or SMS alone for a second
/// factor, SMS alone for a contact change, or nothing at all.
pub fn evaluate(
    policy: &AssurancePolicy,
    kind: CaseKind,
    evidence: &[Evidence],
    available: &Available,
    now: Timestamp,
) -> Assessment {
    let rule = policy.rule(kind);
    let mut ignored = Vec::new();
    // The first counting evidence of each method: one method is one proof however often given.
    let mut have: Vec<(Method, usize)> = Vec::new();
    for (index, item) in evidence.iter().enumerate() {
        if let Some(reason) = ignored_because(policy, item, now) {
            ignored.push((index, reason));
        } else if !have.iter().any(|(method, _)| *method == item.method) {
            have.push((item.method, index));
        }
    }
    let has = |method: Method| have.iter().any(|(m, _)| *m == method);
    let pool: BTreeSet<Method> = have.iter().map(|(m, _)| *m).chain(available.iter().copied()).collect();

    let mut next = Vec::new();
    for alternative in &rule.any_of {
        let fills: Vec<Vec<Method>> = completions(&alternative.proofs, &pool)
            .into_iter()
            .filter(|fill| floor_violation(kind, fill).is_none())
            .collect();
        let missing = |fill: &[Method]| fill.iter().filter(|&&m| !has(m)).count();
        let Some(fewest) = fills.iter().map(|fill| missing(fill)).min() else { continue };
        let best: Vec<&Vec<Method>> = fills.iter().filter(|fill| missing(fill) == fewest).collect();
        let Some(first) = best.first() else { continue };
        if fewest == 0 {
            let mut used: Vec<usize> =
                first.iter().filter_map(|m| have.iter().find(|(h, _)| h == m).map(|(_, i)| *i)).collect();
            used.sort_unstable();
            return Assessment {
                satisfied: true,
                used,
                ignored,
                next: Vec::new(),
                cooling_off_hours: rule.cooling_off_hours,
            };
        }
        // Keep the evidence where the first best fill put it; each missing slot lists what can
        // fill it in some best fill that does the same.
        let kept = |fill: &[Method]| -> bool {
            fill.iter().zip(first.iter()).all(|(m, f)| has(*m) == has(*f) && (!has(*f) || m == f))
        };
        let slots: Vec<BTreeSet<Method>> = (first.iter().enumerate())
            .filter(|(_, &method)| !has(method))
            .map(|(slot, _)| best.iter().filter(|fill| kept(fill)).filter_map(|fill| fill.get(slot).copied()).collect())
            .collect();
        if !next.contains(&slots) {
            next.push(slots);
        }
    }
    next.sort_by_key(Vec::len);
    Assessment { satisfied: false, used: Vec::new(), ignored, next, cooling_off_hours: rule.cooling_off_hours }
}

/// The methods that may ever count, in order of preference.
const COUNTING: [Method; 5] = [Method::Email, Method::Sms, Method::Totp, Method::RecoveryCode, Method::Document];

fn default_rule(kind: CaseKind) -> KindRule {
    let slot = |methods: &[Method]| methods.iter().copied().collect::<BTreeSet<Method>>();
    let proof = || slot(&[Method::Email, Method::Sms, Method::Totp, Method::RecoveryCode]);
    let document = Alternative { proofs: vec![slot(&[Method::Document])] };
    match kind {
        CaseKind::PasswordReset | CaseKind::UsernameRecovery | CaseKind::AccountUnlock => {
            KindRule { any_of: vec![Alternative { proofs: vec![proof()] }, document], cooling_off_hours: 0 }
        }
        // M1: two proofs by different methods (one of them may be a remaining authenticator).
        CaseKind::MfaRecovery | CaseKind::CompromisedAccount => {
            KindRule { any_of: vec![Alternative { proofs: vec![proof(), proof()] }, document], cooling_off_hours: 0 }
        }
        // M5: never SMS alone; the change then waits a day.
        CaseKind::ContactChange => KindRule {
            any_of: vec![
                Alternative { proofs: vec![slot(&[Method::Email, Method::Totp, Method::RecoveryCode])] },
                document,
            ],
            cooling_off_hours: 24,
        },
    }
}

fn ignored_because(policy: &AssurancePolicy, item: &Evidence, now: Timestamp) -> Option<IgnoredBecause> {
    if item.method == Method::Knowledge {
        Some(IgnoredBecause::KnowledgeNeverCounts)
    } else if item.destination_since.is_some_and(|since| policy.is_recent_contact(since, item.at.min(now))) {
        // Judged when the proof was given: a proof to a contact point (or a factor) that was new
        // then never starts counting later, however long the case stays open.
        Some(IgnoredBecause::RecentContact)
    } else if item.method == Method::Sms && item.sim_swapped {
        Some(IgnoredBecause::SimSwap)
    } else {
        None
    }
}

/// Every way to fill `slots` with pairwise different counting methods drawn from `pool`, in
/// order of preference (earlier slots first, then method order). One method per slot.
fn completions(slots: &[BTreeSet<Method>], pool: &BTreeSet<Method>) -> Vec<Vec<Method>> {
    fn fill(slots: &[BTreeSet<Method>], pool: &BTreeSet<Method>, chosen: &mut Vec<Method>, out: &mut Vec<Vec<Method>>) {
        let Some((slot, rest)) = slots.split_first() else {
            out.push(chosen.clone());
            return;
        };
        for method in COUNTING {
            if slot.contains(&method) && pool.contains(&method) && !chosen.contains(&method) {
                chosen.push(method);
                fill(rest, pool, chosen, out);
                chosen.pop();
            }
        }
    }
    let mut out = Vec::new();
    if slots.len() <= COUNTING.len() {
        fill(slots, pool, &mut Vec::new(), &mut out);
    }
    out
}

/// Why filling an alternative with exactly these methods must never suffice for `kind`.
fn floor_violation(kind: CaseKind, methods: &[Method]) -> Option<String> {
    let second_factor = matches!(kind, CaseKind::MfaRecovery | CaseKind::CompromisedAccount);
    match methods {
        [] => Some("needs no proof at all".to_owned()),
        [Method::Email] if second_factor => {
            Some("can be satisfied by email alone, which never recovers a second factor".to_owned())
        }
        [Method::Sms] if second_factor || kind == CaseKind::ContactChange => {
            Some(format!("can be satisfied by sms alone, which is never enough for {kind}"))
        }
        _ => None,
    }
}

fn validate_rule(kind: CaseKind, rule: &KindRule) -> Result<(), ValidationError> {
    let cooling_min = u32::from(kind == CaseKind::ContactChange);
    range("cooling_off_hours", rule.cooling_off_hours, cooling_min, AssurancePolicy::COOLING_OFF_HOURS_MAX)?;
    if rule.any_of.is_empty() {
        return Err(ValidationError::new("any_of", "must list at least one alternative"));
    }
    if rule.any_of.len() > AssurancePolicy::ALTERNATIVES_MAX {
        let max = AssurancePolicy::ALTERNATIVES_MAX;
        return Err(ValidationError::new("any_of", format!("must list at most {max} alternatives")));
    }
    for (index, alternative) in rule.any_of.iter().enumerate() {
        validate_alternative(kind, alternative).map_err(|e| e.within(&format!("any_of/{index}")))?;
    }
    Ok(())
}

fn validate_alternative(kind: CaseKind, alternative: &Alternative) -> Result<(), ValidationError> {
    let proofs = &alternative.proofs;
    if proofs.is_empty() {
        return Err(ValidationError::new("proofs", "must list at least one proof"));
    }
    if proofs.len() > COUNTING.len() {
        let message = format!("must list at most {} proofs, one per method that counts", COUNTING.len());
        return Err(ValidationError::new("proofs", message));
    }
    for (index, slot) in proofs.iter().enumerate() {
        if slot.is_empty() {
            return Err(ValidationError::new(format!("proofs/{index}"), "must list at least one method"));
        }
        if slot.contains(&Method::Knowledge) {
            return Err(ValidationError::new(format!("proofs/{index}"), "must not list knowledge, which never counts"));
        }
    }
    let fills = completions(proofs, &COUNTING.into_iter().collect());
    if fills.is_empty() {
        return Err(ValidationError::new(
            "",
            "can never be satisfied: its proofs need more different methods than they list",
        ));
    }
    match fills.iter().find_map(|fill| floor_violation(kind, fill)) {
        Some(message) => Err(ValidationError::new("", message)),
        None => Ok(()),
    }
}

pub(crate) fn range(field: &str, value: u32, min: u32, max: u32) -> Result<(), ValidationError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(field, format!("must be between {min} and {max}")))
    }
}

fn rule_value(rule: &KindRule) -> Value {
    let any_of: Vec<Value> = rule
        .any_of
        .iter()
        .map(|alternative| {
            let proofs: Vec<Vec<&str>> =
                alternative.proofs.iter().map(|slot| slot.iter().map(|m| m.as_str()).collect()).collect();
            json!({ "proofs": proofs })
        })
        .collect();
    json!({ "any_of": any_of, "cooling_off_hours": rule.cooling_off_hours })
}

fn parse_rule(value: &Value, path: &str, default: &KindRule) -> Result<KindRule, ValidationError> {
    let map = object(value, path)?;
    known_fields(map, path, &["any_of", "cooling_off_hours"])?;
    let any_of = match map.get("any_of") {
        None => default.any_of.clone(),
        Some(value) => {
            let path = format!("{path}/any_of");
            list(value, &path)?
                .iter()
                .enumerate()
                .map(|(index, alternative)| parse_alternative(alternative, &format!("{path}/{index}")))
                .collect::<Result<_, _>>()?
        }
    };
    Ok(KindRule { any_of, cooling_off_hours: number(map, path, "cooling_off_hours", default.cooling_off_hours)? })
}

fn parse_alternative(value: &Value, path: &str) -> Result<Alternative, ValidationError> {
    let map = object(value, path)?;
    known_fields(map, path, &["proofs"])?;
    let path = format!("{path}/proofs");
    let proofs = map.get("proofs").ok_or_else(|| ValidationError::new(&path, "is required"))?;
    let mut slots = Vec::new();
    for (index, slot) in list(proofs, &path)?.iter().enumerate() {
        let path = format!("{path}/{index}");
        let mut methods = BTreeSet::new();
        for (index, method) in list(slot, &path)?.iter().enumerate() {
            let path = format!("{path}/{index}");
            let name = method.as_str().ok_or_else(|| ValidationError::new(&path, "must be a method name"))?;
            methods.insert(Method::parse(&path, name)?);
        }
        slots.push(methods);
    }
    Ok(Alternative { proofs: slots })
}

pub(crate) fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ValidationError> {
    value.as_object().ok_or_else(|| ValidationError::new(path, "must be an object"))
}

pub(crate) fn list<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, ValidationError> {
    value.as_array().ok_or_else(|| ValidationError::new(path, "must be a list"))
}

pub(crate) fn known_fields(map: &Map<String, Value>, path: &str, known: &[&str]) -> Result<(), ValidationError> {
    match map.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(ValidationError::new(
            at(path, key),
            format!("is not a known field; expected one of {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A whole number; anything past `u32::MAX` reads as `u32::MAX`, which every range refuses.
pub(crate) fn number(map: &Map<String, Value>, path: &str, key: &str, default: u32) -> Result<u32, ValidationError> {
    match map.get(key) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or_else(|| ValidationError::new(at(path, key), "must be a whole number")),
    }
}

/// The path of `key` in the object at `path`.
pub(crate) fn at(path: &str, key: &str) -> String {
    let key = escape(key);
    if path.is_empty() {
        key
    } else {
        format!("{path}/{key}")
    }
}

/// A key as a JSON-pointer segment.
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
