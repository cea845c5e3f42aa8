//! How domain values are written into columns, shared by every SQL backend so that the two
//! databases hold the same text for the same thing. Reading back is strict: a value that does
//! not parse is [`StoreError::Corrupt`], never a default.

use chrono::DateTime;
use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::case::{CaseEvent, CaseKind, CaseRisk, CaseState, Channel, ReasonNote, Tier};
use regain_core::env::{from_micros, to_micros};
use regain_core::identify::{FieldMatch, IdField};
use regain_core::policy::Method;
use regain_core::risk::{Observation, RiskBand, RouteAction};
use regain_core::{Actor, ApiKeyId, CustomerId, Role, StaffId, TenantSettings, Timestamp};
use serde_json::{json, Value};

use crate::{StoreError, StoreResult};

/// Names the column, never the value: a stored value can be personal data, and this message
/// is logged (SECURITY.md L2).
fn corrupt(what: &str, _value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} does not parse"))
}

/// `staff:<uuid>:<role>`, `api_key:<uuid>`, `customer:<uuid>` or `system`.
pub fn actor_to_text(actor: &Actor) -> String {
    match actor {
        Actor::Staff { id, role } => format!("staff:{id}:{role}"),
        Actor::ApiKey { id } => format!("api_key:{id}"),
        Actor::Customer { id } => format!("customer:{id}"),
        Actor::System => "system".to_owned(),
    }
}

pub fn actor_from_text(text: &str) -> StoreResult<Actor> {
    let bad = || corrupt("actor", text);
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("system"), None, None) => Ok(Actor::System),
        (Some("staff"), Some(id), Some(role)) => Ok(Actor::Staff {
            id: StaffId::parse("actor", id).map_err(|_| bad())?,
            role: Role::parse("actor", role).map_err(|_| bad())?,
        }),
        (Some("api_key"), Some(id), None) => Ok(Actor::ApiKey { id: ApiKeyId::parse("actor", id).map_err(|_| bad())? }),
        (Some("customer"), Some(id), None) => {
            Ok(Actor::Customer { id: CustomerId::parse("actor", id).map_err(|_| bad())? })
        }
        _ => Err(bad()),
    }
}

pub fn parse_column<T>(
    what: &str,
    value: &str,
    parse: impl FnOnce(&str, &str) -> Result<T, regain_core::ValidationError>,
) -> StoreResult<T> {
    parse(what, value).map_err(|_| corrupt(what, value))
}

pub fn timestamp(micros: i64) -> Timestamp {
    from_micros(micros)
}

pub fn micros(at: Timestamp) -> i64 {
    to_micros(at)
}

pub fn tier(value: i64) -> StoreResult<Tier> {
    Tier::new("tier", value).map_err(|_| corrupt("tier", &value.to_string()))
}

/// The event's name and its data as a JSON object (text).
pub fn event_to_json(event: &CaseEvent) -> (&'static str, String) {
    let data = match event {
        CaseEvent::Opened { kind, channel, tier } => {
            json!({"kind": kind.as_str(), "channel": channel.as_str(), "tier": tier.get()})
        }
        CaseEvent::Assigned { assignee } => json!({"assignee": assignee.map(|a| a.to_string())}),
        CaseEvent::Escalated { from, to, reason } => {
            json!({"from_tier": from.get(), "to_tier": to.get(), "reason": reason})
        }
        CaseEvent::ChannelChanged { from, to } => json!({"from": from.as_str(), "to": to.as_str()}),
        CaseEvent::NoteAdded { text } => json!({"text": text}),
        CaseEvent::StateChanged { from, to, command, reason } => {
            json!({"from": from.as_str(), "to": to.as_str(), "command": command, "reason": reason})
        }
        CaseEvent::CustomerIdentified { customer_id } => {
            json!({"customer_id": customer_id.to_string()})
        }
        CaseEvent::CoolingOffStarted { until } => json!({"until": until.to_rfc3339()}),
        CaseEvent::IdentificationChecked { outcome, fields } => {
            let fields: serde_json::Map<String, Value> =
                fields.iter().map(|(f, m)| (f.as_str().to_owned(), Value::from(m.as_str()))).collect();
            json!({"outcome": outcome, "fields": fields})
        }
        CaseEvent::VerificationSent { method, link, destination, expires_at } => json!({
            "method": method.as_str(),
            "delivery": if *link { "link" } else { "code" },
            "destination": destination,
            "expires_at": expires_at.to_rfc3339(),
        }),
        CaseEvent::VerificationChecked { method, passed, detail, destination } => json!({
            "method": method.as_str(),
            "passed": passed,
            "detail": detail,
            "destination": destination,
        }),
        CaseEvent::RecoveryHeld { until, failures } => json!({"until": until.to_rfc3339(), "failures": failures}),
        CaseEvent::RiskAssessed { score, band, band_in_force, route, reasons, policy_version } => json!({
            "score": score,
            "band": band.as_str(),
            "band_in_force": band_in_force.as_str(),
            "route": route.as_str(),
            "reasons": reasons.iter().map(|r| json!({
                "code": r.code, "points": r.points, "detail": r.detail, "source": r.source,
            })).collect::<Vec<_>>(),
            "policy_version": policy_version,
        }),
        CaseEvent::Observed { tells } => json!({"tells": tells.iter().map(|t| t.as_str()).collect::<Vec<_>>()}),
        CaseEvent::Action { action, outcome, detail } => {
            json!({"action": action.as_str(), "outcome": outcome.as_str(), "detail": detail})
        }
    };
    (event.name(), data.to_string())
}

pub fn event_from_json(name: &str, data: &str) -> StoreResult<CaseEvent> {
    let bad = || corrupt(name, data);
    let v: Value = serde_json::from_str(data).map_err(|_| bad())?;
    let text = |key: &str| v.get(key).and_then(Value::as_str).ok_or_else(bad);
    let opt_text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let num = |key: &str| v.get(key).and_then(Value::as_i64).ok_or_else(bad);
    let event = match name {
        "case.opened" => CaseEvent::Opened {
            kind: parse_column("kind", text("kind")?, CaseKind::parse)?,
            channel: parse_column("channel", text("channel")?, Channel::parse)?,
            tier: tier(num("tier")?)?,
        },
        "case.assigned" => CaseEvent::Assigned {
            assignee: opt_text("assignee").map(|a| parse_column("assignee", &a, StaffId::parse)).transpose()?,
        },
        "case.escalated" => CaseEvent::Escalated {
            from: tier(num("from_tier")?)?,
            to: tier(num("to_tier")?)?,
            reason: text("reason")?.to_owned(),
        },
        "case.channel_changed" => CaseEvent::ChannelChanged {
            from: parse_column("from", text("from")?, Channel::parse)?,
            to: parse_column("to", text("to")?, Channel::parse)?,
        },
        "case.note_added" => CaseEvent::NoteAdded { text: text("text")?.to_owned() },
        "case.state_changed" => CaseEvent::StateChanged {
            from: parse_column("from", text("from")?, CaseState::parse)?,
            to: parse_column("to", text("to")?, CaseState::parse)?,
            command: regain_core::case::COMMAND_NAMES
                .iter()
                .find(|c| **c == text("command").unwrap_or(""))
                .copied()
                .ok_or_else(bad)?,
            reason: opt_text("reason"),
        },
        "case.customer_identified" => CaseEvent::CustomerIdentified {
            customer_id: parse_column("customer_id", text("customer_id")?, CustomerId::parse)?,
        },
        "case.cooling_off_started" => CaseEvent::CoolingOffStarted {
            until: DateTime::parse_from_rfc3339(text("until")?).map_err(|_| bad())?.to_utc(),
        },
        "case.identification_checked" => CaseEvent::IdentificationChecked {
            outcome: text("outcome")?.to_owned(),
            fields: v
                .get("fields")
                .and_then(Value::as_object)
                .ok_or_else(bad)?
                .iter()
                .map(|(field, m)| {
                    Ok((
                        parse_column("fields", field, IdField::parse)?,
                        parse_column("fields", m.as_str().unwrap_or(""), FieldMatch::parse)?,
                    ))
                })
                .collect::<StoreResult<Vec<_>>>()?,
        },
        "case.verification_sent" => CaseEvent::VerificationSent {
            method: parse_column("method", text("method")?, Method::parse)?,
            link: text("delivery")? == "link",
            destination: text("destination")?.to_owned(),
            expires_at: DateTime::parse_from_rfc3339(text("expires_at")?).map_err(|_| bad())?.to_utc(),
        },
        "case.verification_checked" => CaseEvent::VerificationChecked {
            method: parse_column("method", text("method")?, Method::parse)?,
            passed: v.get("passed").and_then(Value::as_bool).ok_or_else(bad)?,
            detail: opt_text("detail"),
            destination: opt_text("destination"),
        },
        "case.recovery_held" => CaseEvent::RecoveryHeld {
            until: DateTime::parse_from_rfc3339(text("until")?).map_err(|_| bad())?.to_utc(),
            failures: u32::try_from(num("failures")?).map_err(|_| bad())?,
        },
        "case.risk_assessed" => {
            let reasons = v
                .get("reasons")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .map(|r| {
                    let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(bad);
                    Ok(ReasonNote {
                        code: field("code")?,
                        points: r
                            .get("points")
                            .and_then(Value::as_i64)
                            .and_then(|p| i32::try_from(p).ok())
                            .ok_or_else(bad)?,
                        detail: field("detail")?,
                        source: field("source")?,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            CaseEvent::RiskAssessed {
                score: u8::try_from(num("score")?).map_err(|_| bad())?,
                band: parse_column("band", text("band")?, RiskBand::parse)?,
                band_in_force: parse_column("band_in_force", text("band_in_force")?, RiskBand::parse)?,
                route: parse_column("route", text("route")?, RouteAction::parse)?,
                reasons,
                policy_version: v.get("policy_version").and_then(Value::as_i64),
            }
        }
        "case.observed" => CaseEvent::Observed {
            tells: v
                .get("tells")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .map(|t| parse_column("tells", t.as_str().unwrap_or(""), Observation::parse))
                .collect::<StoreResult<Vec<_>>>()?,
        },
        "case.action_queued"
        | "case.action_link_sent"
        | "case.action_performed"
        | "case.action_failed"
        | "case.action_code_sent"
        | "case.action_confirmed"
        | "case.action_applied"
        | "case.action_rolled_back" => {
            let event = CaseEvent::Action {
                action: parse_column("action", text("action")?, ActionKind::parse)?,
                outcome: parse_column("outcome", text("outcome")?, ActionOutcome::parse)?,
                detail: opt_text("detail"),
            };
            if event.name() != name {
                return Err(bad());
            }
            event
        }
        _ => return Err(bad()),
    };
    Ok(event)
}

pub fn settings_to_json(s: &TenantSettings) -> String {
    json!({
        "default_region": s.default_region,
        "sla_first_response_minutes": s.sla_first_response_minutes,
        "sla_resolution_minutes": s.sla_resolution_minutes,
        "case_expiry_hours": s.case_expiry_hours,
        "login_failures_max": s.login_failures_max,
        "closed_case_retention_days": s.closed_case_retention_days,
    })
    .to_string()
}

/// Settings written by an older version lack newer keys; those take their defaults.
pub fn settings_from_json(text: &str) -> StoreResult<TenantSettings> {
    settings_from_json_unchecked(text)?.validate().map_err(|e| StoreError::Corrupt(format!("settings: {e}")))
}

fn settings_from_json_unchecked(text: &str) -> StoreResult<TenantSettings> {
    let v: Value = serde_json::from_str(text).map_err(|_| corrupt("settings", text))?;
    let d = TenantSettings::default();
    let n = |key: &str, default: u32| {
        v.get(key).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).unwrap_or(default)
    };
    Ok(TenantSettings {
        default_region: v.get("default_region").and_then(Value::as_str).unwrap_or(&d.default_region).to_owned(),
        sla_first_response_minutes: n("sla_first_response_minutes", d.sla_first_response_minutes),
        sla_resolution_minutes: n("sla_resolution_minutes", d.sla_resolution_minutes),
        case_expiry_hours: n("case_expiry_hours", d.case_expiry_hours),
        login_failures_max: n("login_failures_max", d.login_failures_max),
        closed_case_retention_days: n("closed_case_retention_days", d.closed_case_retention_days),
    })
}

/// The name of the field a uniqueness violation is about, from the database's message or
/// constraint name (both backends name constraints and columns alike).
pub fn duplicate_field(message: &str) -> String {
    const FIELDS: [&str; 7] =
        ["username", "external_id", "account_number", "slug", "email", "secret_hash", "token_hash"];
    FIELDS.iter().find(|f| message.contains(*f)).map_or_else(|| "id".to_owned(), |f| (*f).to_owned())
}

/// The canonical text of an audit entry: a JSON object with sorted keys and no insignificant
/// white space, so anyone can recompute its leaf hash from the exported text.
pub fn audit_entry_text(record: &crate::AuditRecord) -> String {
    let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
    json!({
        "tenant_id": text(record.tenant_id.map(|t| t.to_string())),
        "at": record.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "actor": actor_to_text(&record.actor),
        "action": record.action,
        "case_id": text(record.case_id.map(|c| c.to_string())),
        "customer_id": text(record.customer_id.map(|c| c.to_string())),
        "data": record.data,
    })
    .to_string()
}

/// The case's risk as its three columns: `risk_score`, `risk_band`, `risk_reasons`.
pub fn risk_to_columns(risk: Option<&CaseRisk>) -> (Option<i64>, Option<&'static str>, Option<String>) {
    match risk {
        Some(r) => (Some(i64::from(r.score)), Some(r.band.as_str()), Some(r.reasons.clone())),
        None => (None, None, None),
    }
}

pub fn risk_from_columns(
    score: Option<i64>,
    band: Option<&str>,
    reasons: Option<&str>,
) -> StoreResult<Option<CaseRisk>> {
    match (score, band) {
        (None, None) => Ok(None),
        (Some(score), Some(band)) => Ok(Some(CaseRisk {
            score: u8::try_from(score).ok().filter(|s| *s <= 100).ok_or_else(|| corrupt("cases.risk_score", ""))?,
            band: parse_column("cases.risk_band", band, RiskBand::parse)?,
            reasons: reasons.unwrap_or_default().to_owned(),
        })),
        _ => Err(corrupt("cases.risk_score", "")),
    }
}

/// Observations as one column: comma-separated names, in order.
pub fn observed_to_text(observed: &std::collections::BTreeSet<Observation>) -> String {
    observed.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",")
}

pub fn observed_from_text(text: &str) -> StoreResult<std::collections::BTreeSet<Observation>> {
    text.split(',').filter(|t| !t.is_empty()).map(|t| parse_column("cases.observed", t, Observation::parse)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regain_core::case::CaseEvent;
    use uuid::Uuid;

    #[test]
    fn actors_round_trip() {
        let actors = [
            Actor::System,
            Actor::Staff { id: StaffId::from_uuid(Uuid::from_u128(3)), role: Role::SecurityAnalyst },
            Actor::ApiKey { id: ApiKeyId::from_uuid(Uuid::from_u128(4)) },
            Actor::Customer { id: CustomerId::from_uuid(Uuid::from_u128(5)) },
        ];
        for a in actors {
            assert_eq!(actor_from_text(&actor_to_text(&a)).unwrap(), a);
        }
        assert!(actor_from_text("staff:nope").is_err());
    }

    #[test]
    fn events_round_trip() {
        let events = [
            CaseEvent::Opened { kind: CaseKind::MfaRecovery, channel: Channel::Chat, tier: Tier::FRONT_LINE },
            CaseEvent::Assigned { assignee: None },
            CaseEvent::Escalated { from: Tier::FRONT_LINE, to: Tier::SECURITY, reason: "x\"}\r\n".into() },
            CaseEvent::StateChanged {
                from: CaseState::Open,
                to: CaseState::Identifying,
                command: "start_identification",
                reason: None,
            },
            CaseEvent::CoolingOffStarted { until: from_micros(1_700_000_000_000_000) },
        ];
        let events = events.into_iter().chain(ActionOutcome::ALL.iter().map(|&outcome| CaseEvent::Action {
            action: ActionKind::ContactChange,
            outcome,
            detail: Some("a step".into()),
        }));
        for e in events {
            let (name, data) = event_to_json(&e);
            assert_eq!(event_from_json(name, &data).unwrap(), e);
        }
        assert!(event_from_json("case.unknown", "{}").is_err());
    }
}
