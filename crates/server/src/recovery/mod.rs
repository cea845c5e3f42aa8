//! Executing recoveries (issue 6): the action a case queues when it enters `executing`, the
//! worker that performs it through the tenant's connector, the customer's reset page, and the
//! notices that follow every recovery.
//!
//! Exactly once, from the customer's point of view: the built-in connector's effects (a reset
//! link issued, a lockout cleared, a password set) commit in the transaction that records the
//! step on the case and marks the action done ([`regain_store::Store::commit_case_change`]), so
//! a worker that dies before the commit leaves nothing done and the action is performed again
//! when its lease ends; one that dies after leaves it done. Messages go through the outbox,
//! whose message ids are the transports' idempotency keys.

mod actions;
pub mod connector;
pub mod contact;
pub mod lockdown;
pub mod page;
pub mod reset;
mod worker;

use std::collections::BTreeMap;

use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::case::{apply, CaseCommand};
use regain_core::{Actor, Case, CaseEvent, Customer, Tenant};
use regain_store::{Effect, LinkPurpose, NewAction, NewCustomerLink};

pub use worker::{perform_due, spawn, LEASE_SECONDS};

use crate::error::ApiResult;
use crate::state::AppState;

/// The only connector so far: the directory inside Regain.
pub const CONNECTOR_BUILTIN: &str = "builtin";

/// How long a "this wasn't me" link in a notice works.
pub const REPORT_LINK_DAYS: i64 = 30;

/// What an action's step leaves: the case after it, its events, and the effects to commit.
pub(crate) type Step = (Case, Vec<CaseEvent>, Vec<Effect>);

/// The effects a case change carries because of its events: an action queued on entering
/// `executing` is written to the queue in the change's transaction, for the tenant's connector.
pub async fn effects_of(state: &AppState, case: &Case, events: &[CaseEvent]) -> ApiResult<Vec<Effect>> {
    let Some(customer_id) = case.customer_id else { return Ok(Vec::new()) };
    let mut effects = Vec::new();
    for event in events {
        if let CaseEvent::Action { action, outcome: ActionOutcome::Queued, .. } = event {
            let tenant = state.store.tenant(case.tenant_id).await?;
            let connector = tenant
                .and_then(|t| state.config.connector(t.slug.as_str()).map(|c| c.kind()))
                .unwrap_or(CONNECTOR_BUILTIN);
            effects.push(Effect::QueueAction(NewAction {
                id: crate::verification::new_id(state),
                tenant_id: case.tenant_id,
                case_id: case.id,
                customer_id,
                action: *action,
                connector: connector.to_owned(),
                created_at: state.now(),
            }));
        }
    }
    Ok(effects)
}

/// What a case's end does beyond the case: a contact change not yet made is cancelled when its
/// case is repudiated, rejected, cancelled or expired, so it reads as such.
pub fn closing_effects(case: &Case, events: &[CaseEvent]) -> Vec<Effect> {
    use regain_core::CaseState;
    let ended = events.iter().any(|e| {
        matches!(e, CaseEvent::StateChanged { to: CaseState::Cancelled | CaseState::Rejected | CaseState::Expired, .. })
    });
    if ended && case.kind == regain_core::CaseKind::ContactChange {
        vec![Effect::CancelContactChange { case: case.id }]
    } else {
        Vec::new()
    }
}

/// Applies `commands` one after the other as `actor`, gathering their events.
pub(crate) fn apply_all(
    case: &Case,
    commands: Vec<CaseCommand>,
    actor: Actor,
    now: regain_core::Timestamp,
) -> ApiResult<(Case, Vec<CaseEvent>)> {
    let mut next = case.clone();
    let mut events = Vec::new();
    for command in commands {
        let (after, more) = apply(&next, command, actor, now)?;
        next = after;
        events.extend(more);
    }
    // One stored change, one version, however many commands made it.
    if !events.is_empty() {
        next.version = case.version + 1;
    }
    Ok((next, events))
}

/// Refuses a step toward an action on a recovery whose customer is locked down (SECURITY.md
/// L0: only the security team's compromised-account case proceeds), or has another recovery
/// still cooling off (G5: a pending contact change, or a high-risk recovery, holds the rest).
pub async fn refuse_if_blocked(state: &AppState, case: &Case) -> ApiResult<()> {
    use regain_core::CustomerStatus;
    let Some(customer_id) = case.customer_id else { return Ok(()) };
    if case.kind == regain_core::CaseKind::CompromisedAccount {
        return Ok(());
    }
    let customer = state.store.customer(case.tenant_id, customer_id).await?;
    if customer.is_some_and(|c| c.status == CustomerStatus::Frozen) {
        return Err(crate::error::ApiError::Refused {
            status: axum::http::StatusCode::LOCKED,
            code: "locked-down",
            detail:
                "the customer's account is locked down: no recovery proceeds until the security team has re-proofed \
                     them"
                    .into(),
        });
    }
    if let Some(at) = opened_before_lockdown(state, case, customer_id).await? {
        return Err(crate::error::ApiError::Conflict {
            code: "opened-before-lockdown",
            detail: format!(
                "this case was opened before the customer's account was locked down ({}); its proofs may have gone \
                 to what an intruder had set up, so it does not proceed after the re-proofing: open a new case",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        });
    }
    held_by_others(state, case, customer_id).await
}

/// Refuses `case`'s next step while another recovery of its customer holds it (G5): a contact
/// change under way (approved, being carried out, or cooling off) holds every other recovery
/// of the customer until it takes effect or is repudiated, and so does any other recovery
/// cooling off. One read for both. The step's commit checks again, inside its transaction
/// ([`unheld`]), for a recovery begun in between.
pub(crate) async fn held_by_others(
    state: &AppState,
    case: &Case,
    customer_id: regain_core::CustomerId,
) -> ApiResult<()> {
    use regain_store::Hold;
    let open = state.store.customer_cases_in(case.tenant_id, customer_id, &regain_store::HOLDING_STATES).await?;
    match regain_store::hold_on(case.id, &open) {
        None => Ok(()),
        Some(Hold::ContactChange(other)) => Err(crate::error::ApiError::Conflict {
            code: "contact-change-pending",
            detail: format!(
                "a contact change for this customer (case {}) is under way; no other recovery proceeds until it \
                 takes effect or is repudiated",
                other.id
            ),
        }),
        Some(Hold::CoolingOff(other)) => {
            let until = other
                .cooling_off_until
                .map_or_else(String::new, |t| format!(" until {}", t.format("%Y-%m-%d %H:%M UTC")));
            Err(crate::error::ApiError::Conflict {
                code: "recovery-cooling-off",
                detail: format!(
                    "another recovery for this customer (case {}, {}) is cooling off{until}; no other recovery \
                     proceeds until it ends or is repudiated",
                    other.id, other.kind
                ),
            })
        }
    }
}

/// The effect that makes a step of `case` commit only while nothing holds it (G5), judged
/// inside the step's transaction: [`held_by_others`] read before it, and another recovery of
/// the customer may have been approved meanwhile (a reset's hash alone takes a while). A step
/// that meets one gets a conflict, and its caller reads again for the precise refusal.
pub(crate) fn unheld(case: &Case, customer: regain_core::CustomerId) -> Effect {
    Effect::RequireUnheld { tenant: case.tenant_id, customer, case: case.id }
}

/// When the customer's account was last locked down, if `case` was opened before that (SECURITY.md
/// L0): a lockdown ends every recovery opened before it — their proofs may have gone to what the
/// intruder had set up — so after the re-proofing lifts it, they do not resume.
pub(crate) async fn opened_before_lockdown(
    state: &AppState,
    case: &Case,
    customer: regain_core::CustomerId,
) -> ApiResult<Option<regain_core::Timestamp>> {
    let lockdown = state.store.last_action_end(case.tenant_id, customer, ActionKind::Lockdown, false).await?;
    Ok(lockdown.filter(|at| case.created_at <= *at))
}

/// The change that closes a case whose action was performed, as `actor`: the step recorded
/// with `detail`, the case completed (cooling-off by kind and band), and every registered
/// address told `what` happened, after `effects`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn performed(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    action: ActionKind,
    detail: String,
    what: &str,
    actor: Actor,
    mut effects: Vec<Effect>,
) -> ApiResult<(Case, Vec<CaseEvent>, Vec<Effect>)> {
    let commands = vec![
        CaseCommand::RecordAction { action, outcome: ActionOutcome::Performed, detail: Some(detail) },
        complete_command(state, case).await?,
    ];
    let (next, events) = apply_all(case, commands, actor, state.now())?;
    effects.extend(recovery_notices(state, tenant, &next, customer, what).await?);
    Ok((next, events, effects))
}

/// `Complete` with the policy's cooling-off for the case's kind and risk band.
pub(crate) async fn complete_command(state: &AppState, case: &Case) -> ApiResult<CaseCommand> {
    let (policy, _) = crate::verification::tenant_policy(state, case.tenant_id).await?;
    let band = case.risk.as_ref().map(|r| r.band);
    Ok(CaseCommand::Complete { cooling_off_hours: Some(policy.cooling_off_hours(case.kind, band)) })
}

/// `customer` with one more contact point (normalized `value`), as a notice should see them:
/// a contact a change is about to add or put back.
pub(crate) fn with_contact(
    customer: &mut Customer,
    kind: regain_store::ContactKind,
    value: &str,
    verified: bool,
    region: &str,
    at: regain_core::Timestamp,
) {
    use regain_core::customer::{ContactEmail, ContactPhone};
    match kind {
        regain_store::ContactKind::Email => {
            if let Ok(address) = regain_core::EmailAddress::parse("email", value) {
                customer.emails.push(ContactEmail { address, verified, added_at: at });
            }
        }
        regain_store::ContactKind::Phone => {
            if let Ok(number) = regain_core::PhoneE164::parse("phone", value, region) {
                customer.phones.push(ContactPhone { number, verified, added_at: at });
            }
        }
    }
}

/// Where a message goes: `email` or `sms`, the address, and its masked form.
pub(crate) type Destination = (&'static str, String, String);

/// A new single-use link of `purpose` (a 256-bit random token at `/{path}/{token}`) for the
/// case's customer, valid for `lifetime`, and the message from `template` that carries it (as
/// `link`, or `report_link` in a notice) to `to`: the two effects that issue and send it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn link_message(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    purpose: LinkPurpose,
    path: &str,
    lifetime: chrono::Duration,
    to: &Destination,
    template: &str,
    values: BTreeMap<&'static str, String>,
) -> ApiResult<[Effect; 2]> {
    let templates = crate::verification::Templates::of(state, tenant.id).await?;
    let (link, message) =
        templated_link(state, tenant, Some(case), customer, purpose, path, lifetime, to, &templates, template, values)?;
    Ok([link, Effect::Message(message)])
}

/// [`link_message`] from templates already read: the link's effect and its message.
#[allow(clippy::too_many_arguments)]
fn templated_link(
    state: &AppState,
    tenant: &Tenant,
    case: Option<&Case>,
    customer: &Customer,
    purpose: LinkPurpose,
    path: &str,
    lifetime: chrono::Duration,
    to: &Destination,
    templates: &crate::verification::Templates,
    template: &str,
    mut values: BTreeMap<&'static str, String>,
) -> ApiResult<(Effect, regain_store::NewMessage)> {
    let now = state.now();
    let token = crate::auth::new_token("", state.entropy.as_ref());
    let url = format!("{}/{path}/{token}", state.config.public_url.trim_end_matches('/'));
    let key = if purpose == LinkPurpose::Report { "report_link" } else { "link" };
    values.insert(key, url);
    let (channel, address, masked) = to;
    let tpl = templates.get(template, channel)?;
    let message = crate::verification::render(
        state,
        tenant,
        case,
        customer.id,
        channel,
        address,
        masked.clone(),
        template,
        &tpl,
        values,
    )?;
    let link = NewCustomerLink {
        id: crate::verification::new_id(state),
        purpose,
        tenant_id: tenant.id,
        case_id: case.map(|c| c.id),
        customer_id: customer.id,
        destination: masked.clone(),
        expires_at: now + lifetime,
        created_at: now,
    };
    Ok((Effect::IssueLink { link, token }, message))
}

/// The notice after a recovery (SECURITY.md P3): to every address the customer has registered,
/// verified or not, old ones included, each with its own "this wasn't me" link; what happened,
/// when, through which channel, and the next steps. Never a secret. An unverified address is
/// told too: it may be the customer's only one an impostor does not hold, and what it can do
/// with the notice is report it, which only makes the account safer (secrets, by contrast, go
/// to verified addresses only: `actions::registered`). The tenant's templates are read once for
/// all of them, and the links come before the messages, so the store writes each kind in one
/// statement.
pub(crate) async fn recovery_notices(
    state: &AppState,
    tenant: &Tenant,
    case: &Case,
    customer: &Customer,
    what: &str,
) -> ApiResult<Vec<Effect>> {
    let values = BTreeMap::from([
        ("what", what.to_owned()),
        ("when", state.now().format("%Y-%m-%d %H:%M UTC").to_string()),
        ("channel", case.channel.to_string()),
    ]);
    reported_notices(state, tenant, Some(case), customer, "account_recovered", values).await
}

/// The notice `template` with `values` to every address the customer has registered (P3), each
/// with its own "this wasn't me" link (`report_link`) for `case`, or for no case when the
/// customer made the change themselves: the link effects first, then the messages.
pub(crate) async fn reported_notices(
    state: &AppState,
    tenant: &Tenant,
    case: Option<&Case>,
    customer: &Customer,
    template: &str,
    values: BTreeMap<&'static str, String>,
) -> ApiResult<Vec<Effect>> {
    // An unverified address says so where staff read it (the outbox, the report's reason), as
    // its report weighs less than one from an address the customer proved.
    let shown = |masked: String, verified: bool| if verified { masked } else { format!("{masked} (unverified)") };
    let emails = customer.emails.iter().map(|e| ("email", e.address.as_str(), shown(e.address.masked(), e.verified)));
    let phones = customer.phones.iter().map(|p| ("sms", p.number.as_str(), shown(p.number.masked(), p.verified)));
    let addresses: Vec<_> = emails.chain(phones).collect();
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let templates = crate::verification::Templates::of(state, tenant.id).await?;
    let (mut links, mut messages) = (Vec::new(), Vec::new());
    for (channel, to, masked) in addresses {
        let to = (channel, to.to_owned(), masked);
        let lifetime = chrono::Duration::days(REPORT_LINK_DAYS);
        let (link, message) = templated_link(
            state,
            tenant,
            case,
            customer,
            LinkPurpose::Report,
            "report",
            lifetime,
            &to,
            &templates,
            template,
            values.clone(),
        )?;
        links.push(link);
        messages.push(Effect::Message(message));
    }
    links.extend(messages);
    Ok(links)
}
