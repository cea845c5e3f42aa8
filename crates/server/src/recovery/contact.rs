//! Contact changes (issue 6, SECURITY.md M4, G5): the new email or phone is proposed on the
//! contact-change case and proven by a code sent to it; once approved (always four eyes), the
//! worker schedules it — every old address is told, with a "this wasn't me" link — and the
//! case cools off; only the release applies it, in the directory and through the tenant's
//! connector. A repudiation in the window cancels the case, so the change never applies. Once
//! the release has begun handing it to the connector, nothing cancels it any more: a report
//! then opens a security case, whose lockdown rolls it back.

use std::collections::BTreeMap;

use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::case::CaseCommand;
use regain_core::{
    Actor, Case, CaseEvent, CaseKind, CaseState, Customer, CustomerStatus, EmailAddress, PhoneE164, Tenant,
};
use regain_store::{AttemptContext, ContactChange, ContactConfirm, ContactKind, Effect, NewContactChange, StoreError};

use super::actions::ActionError;
use super::apply_all;
use super::connector::{AccountChange, ConnectorConfig};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A new contact as the caller gave it, parsed.
pub struct Proposed {
    pub kind: ContactKind,
    /// Normalized: what is stored and sent to.
    pub value: String,
    pub masked: String,
    pub replace: bool,
}

/// Parses exactly one of `email` and `phone` (the tenant's region reads a phone without its
/// country code).
pub fn parse(tenant: &Tenant, email: Option<&str>, phone: Option<&str>, replace: bool) -> ApiResult<Proposed> {
    match (email, phone) {
        (Some(email), None) => {
            let address = EmailAddress::parse("email", email)?;
            Ok(Proposed {
                kind: ContactKind::Email,
                value: address.as_str().to_owned(),
                masked: address.masked(),
                replace,
            })
        }
        (None, Some(phone)) => {
            let number = PhoneE164::parse("phone", phone, &tenant.settings.default_region)?;
            Ok(Proposed {
                kind: ContactKind::Phone,
                value: number.as_str().to_owned(),
                masked: number.masked(),
                replace,
            })
        }
        _ => Err(regain_core::ValidationError::new("email", "give exactly one of email and phone").into()),
    }
}

fn has_contact(customer: &Customer, proposed: &Proposed) -> bool {
    match proposed.kind {
        ContactKind::Email => {
            let wanted = EmailAddress::parse("email", &proposed.value).map(|e| e.normalized()).unwrap_or_default();
            customer.emails.iter().any(|e| e.address.normalized() == wanted)
        }
        ContactKind::Phone => customer.phones.iter().any(|p| p.number.as_str() == proposed.value),
    }
}

/// Refuses work on the contact change unless the case is a contact change still collecting
/// what the approver will see (verifying or decided), with its customer identified.
fn require_open(case: &Case, actor: Actor, what: &str) -> ApiResult<regain_core::CustomerId> {
    if case.kind != CaseKind::ContactChange {
        return Err(ApiError::Conflict {
            code: "wrong-kind",
            detail: format!("only a contact_change case can {what}; this one is {}", case.kind),
        });
    }
    let customer = match (case.state, case.customer_id) {
        (CaseState::Verifying | CaseState::Decided, Some(customer)) => customer,
        _ => {
            return Err(ApiError::Conflict {
                code: "wrong-state",
                detail: format!(
                    "a case in state {} cannot {what}: the new contact is proposed and proven after the customer is \
                     identified and before approval",
                    case.state
                ),
            })
        }
    };
    regain_core::case::may_work(case, actor)?;
    Ok(customer)
}

/// Proposes the new contact and sends it a code; an earlier proposal on the case is replaced.
pub async fn propose(state: &AppState, actor: Actor, case: &Case, proposed: Proposed) -> ApiResult<ContactChange> {
    let code = crate::verification::random_code(state.entropy.as_ref(), crate::routes::verification::CODE_DIGITS);
    propose_with_code(state, actor, case, proposed, code).await
}

/// [`propose`] with the code given: for seeding the demo's history, where nobody reads the
/// message it sends.
pub async fn propose_with_code(
    state: &AppState,
    actor: Actor,
    case: &Case,
    proposed: Proposed,
    code: String,
) -> ApiResult<ContactChange> {
    let customer_id = require_open(case, actor, "take a new contact")?;
    let tenant = state.store.tenant(case.tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let customer =
        state.store.customer(case.tenant_id, customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    if customer.status == CustomerStatus::Frozen {
        return Err(ApiError::Refused {
            status: axum::http::StatusCode::LOCKED,
            code: "locked-down",
            detail: "the customer's account is locked down: its contacts are frozen until re-proofing".into(),
        });
    }
    crate::verification::refuse_if_held(state, case.tenant_id, customer_id).await?;
    if has_contact(&customer, &proposed) {
        return Err(ApiError::Conflict {
            code: "contact-exists",
            detail: format!("{} is already one of the customer's contacts", proposed.masked),
        });
    }
    let (policy, _) = crate::verification::tenant_policy(state, case.tenant_id).await?;
    let now = state.now();
    let (channel, minutes) = match proposed.kind {
        ContactKind::Email => ("email", policy.codes.email_ttl_minutes),
        ContactKind::Phone => ("sms", policy.codes.sms_ttl_minutes),
    };
    let purpose = match proposed.kind {
        ContactKind::Email => "confirming your new email address",
        ContactKind::Phone => "confirming your new phone number",
    };
    let values =
        BTreeMap::from([("code", code.clone()), ("minutes", minutes.to_string()), ("purpose", purpose.to_owned())]);
    let message = crate::verification::compose(
        state,
        &tenant,
        Some(case),
        customer_id,
        channel,
        &proposed.value,
        proposed.masked.clone(),
        "verification_code",
        values,
    )
    .await?;
    let change = NewContactChange {
        id: crate::verification::new_id(state),
        tenant_id: case.tenant_id,
        case_id: case.id,
        customer_id,
        kind: proposed.kind,
        value: proposed.value,
        masked: proposed.masked.clone(),
        replace: proposed.replace,
        attempts_max: policy.codes.attempts_max,
        code_expires_at: now + chrono::Duration::minutes(i64::from(minutes)),
        created_at: now,
    };
    let replacing = if proposed.replace { ", replacing the old ones" } else { ", beside the old ones" };
    let event = CaseEvent::Action {
        action: ActionKind::ContactChange,
        outcome: ActionOutcome::CodeSent,
        detail: Some(format!(
            "a code went to the new {} {}{replacing}; valid {minutes} minutes",
            proposed.kind.as_str(),
            proposed.masked
        )),
    };
    let next = touched(case, actor, now);
    let effects = vec![Effect::ProposeContact { change, code }, Effect::Message(message)];
    crate::webhooks::commit(state, &next, &[event], &actor, effects).await?;
    tracing::info!(case_id = %case.id, kind = proposed.kind.as_str(), "new contact proposed; code sent to it");
    state.store.contact_change(case.tenant_id, case.id).await?.ok_or_else(|| ApiError::not_found("contact change"))
}

/// The case as one more change leaves it (an event recorded outside the state machine).
fn touched(case: &Case, actor: Actor, now: regain_core::Timestamp) -> Case {
    let mut next = case.clone();
    next.version = case.version + 1;
    next.updated_at = now;
    if matches!(actor, Actor::Staff { .. }) && next.first_response_at.is_none() {
        next.first_response_at = Some(now);
    }
    next
}

/// Checks the code the customer read back from the new contact.
pub async fn confirm(state: &AppState, ctx: AttemptContext, case: &Case, code: &str) -> ApiResult<ContactChange> {
    use crate::routes::verification::{after_failure, refused, rejected};
    use axum::http::StatusCode;
    let customer = require_open(case, ctx.actor, "confirm a new contact")?;
    let code = crate::routes::verification::digits(code, crate::routes::verification::CODE_DIGITS)?;
    let (policy, _) = crate::verification::tenant_policy(state, case.tenant_id).await?;
    let limit = crate::verification::failure_limit(&policy);
    match state.store.confirm_contact_change(case, &code, &ctx, &limit).await? {
        ContactConfirm::Confirmed { .. } => {
            tracing::info!(case_id = %case.id, "new contact confirmed");
        }
        ContactConfirm::Wrong { attempts_left, recorded } => {
            after_failure(state, case, customer, recorded).await;
            return Err(rejected(
                format!("the code is not right; {attempts_left} attempt(s) left on this code"),
                &recorded,
            ));
        }
        ContactConfirm::Exhausted { recorded } => {
            after_failure(state, case, customer, recorded).await;
            return Err(match recorded.held_until {
                Some(until) => crate::verification::held(until),
                None => refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "code-exhausted",
                    "too many wrong entries on this code; propose the new contact again for a new one".into(),
                ),
            });
        }
        ContactConfirm::Expired => {
            return Err(refused(
                StatusCode::GONE,
                "code-expired",
                "the code has expired; propose the new contact again for a new one".into(),
            ))
        }
        ContactConfirm::NonePending => {
            return Err(ApiError::Conflict {
                code: "no-code-pending",
                detail: "no new contact on this case is waiting for its code; propose one first".into(),
            })
        }
        ContactConfirm::Held { until } => return Err(crate::verification::held(until)),
    }
    state.store.contact_change(case.tenant_id, case.id).await?.ok_or_else(|| ApiError::not_found("contact change"))
}

/// Refuses a step toward approval or execution of a contact change whose new contact is not
/// proven yet (M4): approvers approve a change they can see, to a contact the customer holds.
pub async fn require_confirmed(state: &AppState, case: &Case) -> ApiResult<()> {
    if case.kind != CaseKind::ContactChange || case.customer_id.is_none() {
        return Ok(());
    }
    let change = state.store.contact_change(case.tenant_id, case.id).await?;
    match change {
        Some(change) if change.state == "confirmed" => Ok(()),
        Some(change) => Err(ApiError::Conflict {
            code: "contact-unconfirmed",
            detail: format!(
                "the new contact {} is {}; it must be confirmed by the code sent to it first",
                change.masked,
                change.state.replace('_', " ")
            ),
        }),
        None => Err(ApiError::Conflict {
            code: "contact-unconfirmed",
            detail: "no new contact was proposed on this case: POST /api/v1/cases/{id}/contact-change".into(),
        }),
    }
}

/// The worker's part: the change is scheduled, not made. The case completes into its
/// cooling-off (the policy's hours for contact changes, longer by risk band) and every address
/// the customer has now is told, each with its own "this wasn't me" link.
pub(super) async fn schedule(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
) -> Result<super::Step, ActionError> {
    let change = state.store.contact_change(case.tenant_id, case.id).await?;
    let Some(change) = change.filter(|c| c.state == "confirmed") else {
        return Err(ActionError::Fail("the case has no confirmed new contact to schedule".into()));
    };
    let complete = super::complete_command(state, case).await?;
    let hours = match complete {
        CaseCommand::Complete { cooling_off_hours } => cooling_off_hours.unwrap_or(0),
        _ => 0,
    };
    let until = state.now() + chrono::Duration::hours(i64::from(hours));
    let when = until.format("%Y-%m-%d %H:%M UTC");
    let replacing = if change.replace { " in place of the current one" } else { "" };
    let detail = format!(
        "the new {} {}{replacing} takes effect at {when} unless it is repudiated; every current contact was told",
        change.kind.as_str(),
        change.masked
    );
    let commands = vec![
        CaseCommand::RecordAction {
            action: ActionKind::ContactChange,
            outcome: ActionOutcome::Performed,
            detail: Some(detail),
        },
        complete,
    ];
    let (next, events) = apply_all(case, commands, Actor::System, state.now())?;
    let what = format!(
        "A change of your contact details was requested: the {} {}{replacing} becomes yours at {when}. If this wasn't \
         you, report it before then and nothing changes",
        change.kind.as_str(),
        change.masked
    );
    let effects = super::recovery_notices(state, tenant, &next, customer, &what).await?;
    Ok((next, events, effects))
}

/// What the release of a contact change adds (G5): the change takes effect now — through the
/// tenant's connector when the account lives elsewhere (a refusal or an outage stops the
/// release, to be tried again), then in the directory — and every address the customer had is
/// told, the old ones included. A change a lockdown cancelled meanwhile is not made; the
/// timeline says so. Nothing for any other change.
pub async fn on_release(
    state: &AppState,
    case: &Case,
    events: &[CaseEvent],
) -> ApiResult<(Vec<CaseEvent>, Vec<Effect>)> {
    let released = events.iter().any(|e| matches!(e, CaseEvent::StateChanged { command: "release", .. }));
    let Some(customer_id) = case.customer_id.filter(|_| released && case.kind == CaseKind::ContactChange) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let tenant = state.store.tenant(case.tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let customer =
        state.store.customer(case.tenant_id, customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))?;
    let change = state.store.contact_change(case.tenant_id, case.id).await?;
    let change = match change {
        // Handed to the account system by an earlier try, which may have made it there: it is
        // made here too, lockdown or not, so that a lockdown lists it for rollback.
        // Unless the customer reported it meanwhile: then it is not sent again.
        Some(change) if change.state == "sending" && change.reported_at.is_none() => change,
        Some(change) if change.state == "confirmed" && customer.status != CustomerStatus::Frozen => change,
        other => {
            let why = match other {
                Some(c) if c.reported_at.is_some() && c.state == "sending" => {
                    "reported as not the customer's while the account system was taking it, and not sent again: \
                     whether the account system made it is not known; check there (the security case lists it)"
                }
                Some(c) if c.reported_at.is_some() => {
                    "reported as not the customer's while the account system was taking it; the account system \
                     did not take it, and it was not made"
                }
                Some(c) if c.state == "cancelled" || customer.status == CustomerStatus::Frozen => {
                    "the account was locked down before the change took effect; it was not made"
                }
                _ => "no confirmed contact change was left to make",
            };
            let event = CaseEvent::Action {
                action: ActionKind::ContactChange,
                outcome: ActionOutcome::Failed,
                detail: Some(why.to_owned()),
            };
            return Ok((vec![event], Vec::new()));
        }
    };
    let (value, _) = state
        .store
        .contact_change_values(case.tenant_id, &change.id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact change"))?;
    if let Some(connector) = state.config.connector(tenant.slug.as_str()) {
        apply_remote(state, connector, &customer, &change, &value).await?;
    }
    // Told: every address the customer had — the old ones included — and the new one.
    let mut told = customer.clone();
    super::with_contact(&mut told, change.kind, &value, true, &tenant.settings.default_region, state.now());
    let replacing = if change.replace { " in place of the one before" } else { "" };
    let what = format!(
        "Your contact details were changed: the {} {} is now on your account{replacing}",
        change.kind.as_str(),
        change.masked,
    );
    let event = CaseEvent::Action {
        action: ActionKind::ContactChange,
        outcome: ActionOutcome::Applied,
        detail: Some(format!("the new {} {} took effect{replacing}", change.kind.as_str(), change.masked)),
    };
    let mut effects = vec![Effect::ApplyContactChange { case: case.id }];
    effects.extend(super::recovery_notices(state, &tenant, case, &told, &what).await?);
    Ok((vec![event], effects))
}

/// Makes the change in the tenant's account system. First recorded as being sent, in its own
/// transaction: from then on a "this wasn't me" or a lockdown can no longer cancel it, only
/// roll it back once made, so the account system never holds a change that Regain calls
/// cancelled. Given back (confirmed again) when the peer certainly did not take it.
async fn apply_remote(
    state: &AppState,
    connector: &ConnectorConfig,
    customer: &Customer,
    change: &ContactChange,
    value: &str,
) -> ApiResult<()> {
    match state.store.apply_effects(state.now(), &[Effect::SendContactChange { case: change.case_id }]).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict {
                code: "contact-change-moved",
                detail: "the contact change was cancelled or made meanwhile; read the case again".into(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    let set = AccountChange::SetContact { kind: change.kind, value, replace: change.replace };
    let e = match super::connector::apply(connector, customer, &change.id, set, state.now()).await {
        Ok(answer) => {
            tracing::info!(case_id = %change.case_id, answer = %answer, "contact change made through the connector");
            return Ok(());
        }
        Err(e) => e,
    };
    if !e.unsure {
        let back = [Effect::UnsendContactChange { case: change.case_id }];
        if let Err(error) = state.store.apply_effects(state.now(), &back).await {
            tracing::warn!(case_id = %change.case_id, %error, "a contact change the account system did not take stays marked as being sent");
        }
    }
    if e.retry {
        return Err(ApiError::Refused {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "connector-unavailable",
            detail: format!(
                "the tenant's account system did not take the contact change ({}); the release is tried again by itself",
                e.message
            ),
        });
    }
    Err(ApiError::Conflict {
        code: "connector-refused",
        detail: format!("the tenant's account system refused the contact change: {}", e.message),
    })
}
