//! Snapshots as JSON documents: the evaluation corpus is written in this form, and a tenant can
//! try its policy on a hand-made snapshot. Parsed by hand, so every error names its path.
//!
//! ```json
//! {"kind": "password_reset", "channel": "phone", "now": "2026-11-02T14:00:00Z",
//!  "signals": [{"fact": "requests", "subject": "customer", "count": 3, "window_minutes": 1440},
//!              {"fact": "sim_swap", "changed_at": "-5h", "source": "sim_swap:http"}]}
//! ```
//!
//! A time is RFC 3339, or relative to `now`: `-45m`, `-5h`, `-3d`. A signal's `source` defaults
//! to `corpus` and its `at` to `now`.

use chrono::{DateTime, Duration};
use serde_json::{Map, Value};

use super::{Change, Fact, Familiarity, ListAction, Observation, Signal, SignalKind, Snapshot, Subject};
use crate::case::{CaseKind, Channel};
use crate::env::Timestamp;
use crate::policy::{at, known_fields, list, number, object};
use crate::validation::ValidationError;

impl Snapshot {
    pub fn from_json(text: &str) -> Result<Self, ValidationError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ValidationError::new("", format!("must be valid JSON: {e}")))?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, ValidationError> {
        let map = object(value, "")?;
        known_fields(map, "", &["kind", "channel", "now", "signals", "name", "label", "description"])?;
        let kind = CaseKind::parse("kind", text(map, "", "kind")?)?;
        let channel = Channel::parse("channel", text(map, "", "channel")?)?;
        let now = absolute(text(map, "", "now")?, "now")?;
        let mut signals = Vec::new();
        if let Some(items) = map.get("signals") {
            for (index, item) in list(items, "signals")?.iter().enumerate() {
                signals.push(signal(item, &format!("signals/{index}"), now)?);
            }
        }
        Ok(Self { kind, channel, now, signals })
    }
}

fn signal(value: &Value, path: &str, now: Timestamp) -> Result<Signal, ValidationError> {
    let map = object(value, path)?;
    let fact_name = text(map, path, "fact")?;
    let common = ["fact", "source", "at"];
    let fields = |extra: &[&str]| -> Result<(), ValidationError> {
        let all: Vec<&str> = common.iter().chain(extra.iter()).copied().collect();
        known_fields(map, path, &all)
    };
    let time = |key: &str| -> Result<Timestamp, ValidationError> { when(text(map, path, key)?, &at(path, key), now) };
    let fact = match fact_name {
        "requests" => {
            fields(&["subject", "count", "window_minutes"])?;
            Fact::Requests {
                subject: Subject::parse(&at(path, "subject"), text(map, path, "subject")?)?,
                count: required(map, path, "count")?,
                window_minutes: required(map, path, "window_minutes")?,
            }
        }
        "failures" => {
            fields(&["count", "window_minutes"])?;
            Fact::Failures {
                count: required(map, path, "count")?,
                window_minutes: required(map, path, "window_minutes")?,
            }
        }
        "changed" => {
            fields(&["what", "changed_at"])?;
            Fact::Changed { what: Change::parse(&at(path, "what"), text(map, path, "what")?)?, at: time("changed_at")? }
        }
        "login_history" => {
            fields(&["successes", "ip", "device"])?;
            let familiarity = |key: &str| -> Result<Option<Familiarity>, ValidationError> {
                match map.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(_) => Familiarity::parse(&at(path, key), text(map, path, key)?).map(Some),
                }
            };
            Fact::LoginHistory {
                successes: required(map, path, "successes")?,
                ip: familiarity("ip")?,
                device: familiarity("device")?,
            }
        }
        "ip_listed" => {
            fields(&["list", "action"])?;
            Fact::IpListed {
                list: text(map, path, "list")?.to_owned(),
                action: ListAction::parse(&at(path, "action"), text(map, path, "action")?)?,
            }
        }
        "disposable_email" => {
            fields(&["list"])?;
            Fact::DisposableEmail { list: text(map, path, "list")?.to_owned() }
        }
        "sim_swap" => {
            fields(&["changed_at"])?;
            let changed_at = match map.get("changed_at") {
                None | Some(Value::Null) => None,
                Some(_) => Some(time("changed_at")?),
            };
            Fact::SimSwap { changed_at }
        }
        "account" => {
            fields(&["created_at", "privileged", "vip"])?;
            Fact::Account {
                created_at: time("created_at")?,
                privileged: flag(map, path, "privileged")?,
                vip: flag(map, path, "vip")?,
            }
        }
        "hour_of_day" => {
            fields(&["hour", "share_permille", "samples"])?;
            let hour = required(map, path, "hour")?;
            Fact::HourOfDay {
                hour: u8::try_from(hour)
                    .ok()
                    .filter(|h| *h < 24)
                    .ok_or_else(|| ValidationError::new(at(path, "hour"), "must be an hour of the day, 0 to 23"))?,
                share_permille: required(map, path, "share_permille")?,
                samples: required(map, path, "samples")?,
            }
        }
        "observed" => {
            fields(&["what"])?;
            Fact::Observed { what: Observation::parse(&at(path, "what"), text(map, path, "what")?)? }
        }
        "missing" => {
            fields(&["signal", "why"])?;
            Fact::Missing {
                signal: SignalKind::parse(&at(path, "signal"), text(map, path, "signal")?)?,
                why: text(map, path, "why")?.to_owned(),
            }
        }
        _ => {
            return Err(ValidationError::new(
                at(path, "fact"),
                "must be one of requests, failures, changed, login_history, ip_listed, disposable_email, sim_swap, \
                 account, hour_of_day, observed, missing",
            ))
        }
    };
    let source = match map.get("source") {
        None => "corpus".to_owned(),
        Some(_) => text(map, path, "source")?.to_owned(),
    };
    let at_time = match map.get("at") {
        None => now,
        Some(_) => time("at")?,
    };
    Ok(Signal { fact, source, at: at_time })
}

fn text<'a>(map: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a str, ValidationError> {
    match map.get(key) {
        None => Err(ValidationError::new(at(path, key), "is required")),
        Some(value) => value.as_str().ok_or_else(|| ValidationError::new(at(path, key), "must be a string")),
    }
}

fn required(map: &Map<String, Value>, path: &str, key: &str) -> Result<u32, ValidationError> {
    if !map.contains_key(key) {
        return Err(ValidationError::new(at(path, key), "is required"));
    }
    number(map, path, key, 0)
}

fn flag(map: &Map<String, Value>, path: &str, key: &str) -> Result<bool, ValidationError> {
    match map.get(key) {
        None => Ok(false),
        Some(value) => value.as_bool().ok_or_else(|| ValidationError::new(at(path, key), "must be true or false")),
    }
}

fn absolute(value: &str, field: &str) -> Result<Timestamp, ValidationError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|_| ValidationError::new(field, "must be an RFC 3339 time such as 2026-11-02T14:00:00Z"))
}

/// RFC 3339, or `-<n>m|h|d` before `now`.
fn when(value: &str, field: &str, now: Timestamp) -> Result<Timestamp, ValidationError> {
    let Some(relative) = value.strip_prefix('-') else { return absolute(value, field) };
    let bad = || ValidationError::new(field, "must be an RFC 3339 time or a time before now such as -45m, -5h, -3d");
    let (split, _) = relative.char_indices().last().ok_or_else(bad)?;
    let (digits, unit) = relative.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let span = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        _ => None,
    };
    span.and_then(|span| now.checked_sub_signed(span)).ok_or_else(bad)
}
