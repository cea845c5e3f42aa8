//! The risk part of the tenant's policy: weights, thresholds, windows, deadlines and what a
//! missing signal means. It is the `risk` section of the assurance policy document, so it is
//! versioned with it; every field left out takes the default, which is meant to be sensible out
//! of the box (and is what the evaluation corpus is measured against).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{OnMissing, Provider, ReasonCode, RiskBand, SignalKind, Subject};
use crate::case::{CaseKind, Channel};
use crate::policy::{at, known_fields, number, object, range};
use crate::validation::ValidationError;

/// Scores at or above `medium`, `high` and `critical` fall in those bands; below is low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandThresholds {
    pub medium: u8,
    pub high: u8,
    pub critical: u8,
}

impl BandThresholds {
    pub fn band(&self, score: u8) -> RiskBand {
        if score >= self.critical {
            RiskBand::Critical
        } else if score >= self.high {
            RiskBand::High
        } else if score >= self.medium {
            RiskBand::Medium
        } else {
            RiskBand::Low
        }
    }
}

/// `threshold` requests within `window_minutes` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VelocityRule {
    pub window_minutes: u32,
    pub threshold: u32,
}

/// An hour is unusual for the tenant when it brings less than `share_permille` of its recent
/// requests — judged only once there are `samples_min` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffHours {
    pub share_permille: u32,
    pub samples_min: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskPolicy {
    pub bands: BandThresholds,
    /// Points per reason (for `failed_verifications`: per failure, up to `failure_points_max`).
    /// `channel` and `requested_action` come from `channels` and `kinds` instead.
    pub weights: BTreeMap<ReasonCode, i32>,
    pub channels: BTreeMap<&'static str, i32>,
    pub kinds: BTreeMap<&'static str, i32>,
    pub velocity: BTreeMap<Subject, VelocityRule>,
    pub failure_points_max: u32,
    /// A password, factor or contact change this recent is a reason.
    pub recent_change_days: u32,
    pub new_account_days: u32,
    /// A SIM change this recent is a reason (the SMS floor of the assurance policy is separate).
    pub sim_swap_hours: u32,
    pub off_hours: OffHours,
    /// How long each provider may take before its signals are missing.
    pub deadlines_ms: BTreeMap<Provider, u32>,
    pub on_missing: BTreeMap<SignalKind, OnMissing>,
}

/// Reasons that speak for the request and so may carry negative points; every other weight is
/// between 0 and 100, so no tenant can make an attack signal count in the attacker's favour.
const TRUST_REASONS: [ReasonCode; 3] = [ReasonCode::KnownIp, ReasonCode::KnownDevice, ReasonCode::IpAllowed];

/// Reasons whose points come from elsewhere in the policy.
const NOT_WEIGHTS: [ReasonCode; 2] = [ReasonCode::Channel, ReasonCode::RequestedAction];

impl Default for RiskPolicy {
    fn default() -> Self {
        use ReasonCode as R;
        let weights = [
            (R::VelocityCustomer, 20),
            (R::VelocityIp, 25),
            (R::VelocityPhone, 15),
            (R::VelocityEmail, 15),
            (R::FailedVerifications, 10),
            (R::RecentPasswordChange, 10),
            (R::RecentFactorChange, 15),
            (R::RecentContactChange, 20),
            (R::KnownIp, -10),
            (R::NewIp, 5),
            (R::NewNetwork, 15),
            (R::KnownDevice, -10),
            (R::NewDevice, 10),
            (R::NoLoginHistory, 5),
            (R::IpDenied, 50),
            (R::IpAllowed, -20),
            (R::DisposableEmail, 25),
            (R::SimSwapFresh, 60),
            (R::SimSwapRecent, 45),
            (R::PrivilegedAccount, 15),
            (R::VipAccount, 10),
            (R::NewAccount, 10),
            (R::OffHours, 10),
            (R::ObservedUrgency, 15),
            (R::ObservedCallerIdMismatch, 20),
            (R::ObservedBackgroundPrompting, 25),
            (R::ObservedRefusesCode, 30),
            (R::ObservedThirdParty, 20),
            (R::ObservedInconsistentStory, 15),
            (R::SignalMissing, 15),
        ]
        .into_iter()
        .collect();
        let channels = [("web", 0), ("chat", 5), ("email", 5), ("phone", 5)].into_iter().collect();
        let kinds = [
            ("password_reset", 0),
            ("username_recovery", 0),
            ("account_unlock", 0),
            ("mfa_recovery", 10),
            ("contact_change", 10),
            ("compromised_account", 0),
        ]
        .into_iter()
        .collect();
        let velocity = [
            (Subject::Customer, VelocityRule { window_minutes: 24 * 60, threshold: 3 }),
            (Subject::Ip, VelocityRule { window_minutes: 60, threshold: 5 }),
            (Subject::Phone, VelocityRule { window_minutes: 24 * 60, threshold: 3 }),
            (Subject::Email, VelocityRule { window_minutes: 24 * 60, threshold: 3 }),
        ]
        .into_iter()
        .collect();
        use SignalKind as S;
        let on_missing = [
            (S::Velocity, OnMissing::Closed),
            (S::Failures, OnMissing::Closed),
            (S::RecentChanges, OnMissing::Closed),
            (S::LoginHistory, OnMissing::Open),
            (S::IpLists, OnMissing::Open),
            (S::EmailDomain, OnMissing::Open),
            (S::SimSwap, OnMissing::Closed),
            (S::Account, OnMissing::Closed),
            (S::TimeOfDay, OnMissing::Open),
            (S::Observations, OnMissing::Open),
        ]
        .into_iter()
        .collect();
        Self {
            bands: BandThresholds { medium: 30, high: 55, critical: 80 },
            weights,
            channels,
            kinds,
            velocity,
            failure_points_max: 30,
            recent_change_days: 14,
            new_account_days: 30,
            sim_swap_hours: 7 * 24,
            off_hours: OffHours { share_permille: 10, samples_min: 200 },
            deadlines_ms: [(Provider::Store, 250), (Provider::SimSwap, 300)].into_iter().collect(),
            on_missing,
        }
    }
}

impl RiskPolicy {
    pub const DEADLINE_MS_MIN: u32 = 10;
    pub const DEADLINE_MS_MAX: u32 = 5_000;
    /// The SIM-swap window is never shorter than the assurance policy's SMS floor (FCC 23-95).
    pub const SIM_SWAP_HOURS_MIN: u32 = 72;
    /// CAMARA's `maxAge` ceiling.
    pub const SIM_SWAP_HOURS_MAX: u32 = 2_400;

    pub fn weight(&self, code: ReasonCode) -> i32 {
        self.weights.get(&code).copied().unwrap_or(0)
    }

    pub fn channel_weight(&self, channel: Channel) -> i32 {
        self.channels.get(channel.as_str()).copied().unwrap_or(0)
    }

    pub fn kind_weight(&self, kind: CaseKind) -> i32 {
        self.kinds.get(kind.as_str()).copied().unwrap_or(0)
    }

    pub fn velocity(&self, subject: Subject) -> VelocityRule {
        self.velocity.get(&subject).copied().unwrap_or(VelocityRule { window_minutes: 60, threshold: u32::MAX })
    }

    pub fn deadline_ms(&self, provider: Provider) -> u32 {
        self.deadlines_ms.get(&provider).copied().unwrap_or(Self::DEADLINE_MS_MIN)
    }

    pub fn on_missing(&self, signal: SignalKind) -> OnMissing {
        self.on_missing.get(&signal).copied().unwrap_or(OnMissing::Closed)
    }

    /// Parses the `risk` section (at `path`); fields left out keep their defaults, unknown ones
    /// are refused, and every error names its path (`risk/weights/sim_swap_recent`).
    pub fn from_value(value: &Value, path: &str) -> Result<Self, ValidationError> {
        let mut policy = Self::default();
        let map = object(value, path)?;
        known_fields(
            map,
            path,
            &[
                "bands",
                "weights",
                "channels",
                "kinds",
                "velocity",
                "failure_points_max",
                "recent_change_days",
                "new_account_days",
                "sim_swap_hours",
                "off_hours",
                "deadlines_ms",
                "on_missing",
            ],
        )?;
        if let Some(value) = map.get("bands") {
            let p = at(path, "bands");
            let bands = object(value, &p)?;
            known_fields(bands, &p, &["medium", "high", "critical"])?;
            let d = policy.bands;
            policy.bands = BandThresholds {
                medium: small(bands, &p, "medium", d.medium)?,
                high: small(bands, &p, "high", d.high)?,
                critical: small(bands, &p, "critical", d.critical)?,
            };
        }
        if let Some(value) = map.get("weights") {
            let p = at(path, "weights");
            for (key, points) in object(value, &p)? {
                let field = at(&p, key);
                let code = ReasonCode::parse(&field, key)?;
                if NOT_WEIGHTS.contains(&code) {
                    return Err(ValidationError::new(
                        field,
                        "is set per channel in `channels` and per kind in `kinds`",
                    ));
                }
                policy.weights.insert(code, signed(points, &field)?);
            }
        }
        if let Some(value) = map.get("channels") {
            let p = at(path, "channels");
            for (key, points) in object(value, &p)? {
                let field = at(&p, key);
                let channel = Channel::parse(&field, key)?;
                policy.channels.insert(channel.as_str(), signed(points, &field)?);
            }
        }
        if let Some(value) = map.get("kinds") {
            let p = at(path, "kinds");
            for (key, points) in object(value, &p)? {
                let field = at(&p, key);
                let kind = CaseKind::parse(&field, key)?;
                policy.kinds.insert(kind.as_str(), signed(points, &field)?);
            }
        }
        if let Some(value) = map.get("velocity") {
            let p = at(path, "velocity");
            for (key, rule) in object(value, &p)? {
                let field = at(&p, key);
                let subject = Subject::parse(&field, key)?;
                let rule_map = object(rule, &field)?;
                known_fields(rule_map, &field, &["window_minutes", "threshold"])?;
                let d = policy.velocity(subject);
                let rule = VelocityRule {
                    window_minutes: number(rule_map, &field, "window_minutes", d.window_minutes)?,
                    threshold: number(rule_map, &field, "threshold", d.threshold)?,
                };
                policy.velocity.insert(subject, rule);
            }
        }
        policy.failure_points_max = number(map, path, "failure_points_max", policy.failure_points_max)?;
        policy.recent_change_days = number(map, path, "recent_change_days", policy.recent_change_days)?;
        policy.new_account_days = number(map, path, "new_account_days", policy.new_account_days)?;
        policy.sim_swap_hours = number(map, path, "sim_swap_hours", policy.sim_swap_hours)?;
        if let Some(value) = map.get("off_hours") {
            let p = at(path, "off_hours");
            let off = object(value, &p)?;
            known_fields(off, &p, &["share_permille", "samples_min"])?;
            let d = policy.off_hours;
            policy.off_hours = OffHours {
                share_permille: number(off, &p, "share_permille", d.share_permille)?,
                samples_min: number(off, &p, "samples_min", d.samples_min)?,
            };
        }
        if let Some(value) = map.get("deadlines_ms") {
            let p = at(path, "deadlines_ms");
            let deadlines = object(value, &p)?;
            for key in deadlines.keys() {
                let provider = Provider::parse(&at(&p, key), key)?;
                let ms = number(deadlines, &p, key, 0)?;
                policy.deadlines_ms.insert(provider, ms);
            }
        }
        if let Some(value) = map.get("on_missing") {
            let p = at(path, "on_missing");
            for (key, how) in object(value, &p)? {
                let field = at(&p, key);
                let signal = SignalKind::parse(&field, key)?;
                let how = how.as_str().ok_or_else(|| ValidationError::new(&field, "must be \"open\" or \"closed\""))?;
                policy.on_missing.insert(signal, OnMissing::parse(&field, how)?);
            }
        }
        policy.validate().map_err(|e| if path.is_empty() { e } else { e.within(path) })
    }

    /// Ranges, and bands in ascending order. Paths are relative to the `risk` section.
    pub fn validate(self) -> Result<Self, ValidationError> {
        let b = self.bands;
        range("bands/medium", u32::from(b.medium), 1, 98)?;
        if !(b.medium < b.high && b.high < b.critical && b.critical <= 100) {
            return Err(ValidationError::new("bands", "must rise: 1 ≤ medium < high < critical ≤ 100"));
        }
        for (code, points) in &self.weights {
            let (min, max) = if TRUST_REASONS.contains(code) { (-100, 100) } else { (0, 100) };
            if !(min..=max).contains(points) {
                return Err(ValidationError::new(
                    format!("weights/{code}"),
                    format!("must be between {min} and {max}"),
                ));
            }
        }
        for (name, points) in self
            .channels
            .iter()
            .map(|(k, v)| (format!("channels/{k}"), v))
            .chain(self.kinds.iter().map(|(k, v)| (format!("kinds/{k}"), v)))
        {
            if !(0..=100).contains(points) {
                return Err(ValidationError::new(name, "must be between 0 and 100"));
            }
        }
        for (subject, rule) in &self.velocity {
            range(&format!("velocity/{subject}/window_minutes"), rule.window_minutes, 1, 30 * 24 * 60)?;
            range(&format!("velocity/{subject}/threshold"), rule.threshold, 1, 10_000)?;
        }
        range("failure_points_max", self.failure_points_max, 0, 100)?;
        range("recent_change_days", self.recent_change_days, 1, 365)?;
        range("new_account_days", self.new_account_days, 1, 3_650)?;
        range("sim_swap_hours", self.sim_swap_hours, Self::SIM_SWAP_HOURS_MIN, Self::SIM_SWAP_HOURS_MAX)?;
        range("off_hours/share_permille", self.off_hours.share_permille, 0, 1_000)?;
        range("off_hours/samples_min", self.off_hours.samples_min, 1, 1_000_000)?;
        for (provider, ms) in &self.deadlines_ms {
            range(&format!("deadlines_ms/{provider}"), *ms, Self::DEADLINE_MS_MIN, Self::DEADLINE_MS_MAX)?;
        }
        Ok(self)
    }

    /// Canonical JSON: every field, in a stable order.
    pub fn to_value(&self) -> Value {
        let weights: Map<String, Value> = self.weights.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect();
        let channels: Map<String, Value> = self.channels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        let kinds: Map<String, Value> = self.kinds.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        let velocity: Map<String, Value> = self
            .velocity
            .iter()
            .map(|(k, r)| {
                (k.as_str().to_owned(), json!({"window_minutes": r.window_minutes, "threshold": r.threshold}))
            })
            .collect();
        let deadlines: Map<String, Value> =
            self.deadlines_ms.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect();
        let on_missing: Map<String, Value> =
            self.on_missing.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v.as_str()))).collect();
        json!({
            "bands": {"medium": self.bands.medium, "high": self.bands.high, "critical": self.bands.critical},
            "weights": weights,
            "channels": channels,
            "kinds": kinds,
            "velocity": velocity,
            "failure_points_max": self.failure_points_max,
            "recent_change_days": self.recent_change_days,
            "new_account_days": self.new_account_days,
            "sim_swap_hours": self.sim_swap_hours,
            "off_hours": {"share_permille": self.off_hours.share_permille, "samples_min": self.off_hours.samples_min},
            "deadlines_ms": deadlines,
            "on_missing": on_missing,
        })
    }
}

fn small(map: &Map<String, Value>, path: &str, key: &str, default: u8) -> Result<u8, ValidationError> {
    let n = number(map, path, key, u32::from(default))?;
    u8::try_from(n).map_err(|_| ValidationError::new(at(path, key), "must be between 1 and 100"))
}

fn signed(value: &Value, field: &str) -> Result<i32, ValidationError> {
    value
        .as_i64()
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
        .ok_or_else(|| ValidationError::new(field, "must be a whole number of points"))
}
