//! A lockdown's review (SECURITY.md L0): the changes made to the account in the policy's
//! `recovery.lockdown_review_days` — contacts added or changed, an authenticator app set up,
//! recovery codes issued, the password changed — listed for the security analyst on the
//! compromised-account case, and the ones they select rolled back while the account is
//! locked down. Only masked values ever leave Regain; the undo is Regain's.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use regain_core::case::CaseCommand;
use regain_core::policy::Factor;
use regain_core::{Actor, Case, CaseKind, CaseState, Customer, CustomerStatus};
use regain_store::{ContactKind, Effect};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One recent change to the account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentChange {
    /// Pass it to `POST …/rollback`.
    pub id: String,
    /// contact_changed (through a contact-change case), contact_added, totp_enrolled,
    /// recovery_codes_issued or password_changed.
    pub kind: &'static str,
    pub at: DateTime<Utc>,
    /// What changed, masked.
    pub detail: String,
    /// Whether Regain can undo it now.
    pub reversible: bool,
    /// Why not, or what the undo does.
    pub undo: String,
    #[serde(skip)]
    effect: Option<Effect>,
    /// A contact that goes with the undo: it gets no notice of it.
    #[serde(skip)]
    removes: Option<(ContactKind, String)>,
    /// The contact change whose undo puts its replaced contacts back: they are told.
    #[serde(skip)]
    reverts: Option<String>,
}

/// The review window's days and the changes within it, newest first.
pub async fn recent_changes(state: &AppState, case: &Case, customer: &Customer) -> ApiResult<(u32, Vec<RecentChange>)> {
    let (policy, _) = crate::verification::tenant_policy(state, case.tenant_id).await?;
    let days = policy.recovery.lockdown_review_days;
    let since = state.now() - chrono::Duration::days(i64::from(days));
    let mut changes = Vec::new();
    let applied = state.store.recent_contact_changes(case.tenant_id, customer.id, since).await?;
    let tenant = state.store.tenant(case.tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    // Where the account lives elsewhere, its contacts changed there too: Regain cannot undo
    // that side, so it does not pretend to.
    let remote = state.config.connector(tenant.slug.as_str()).is_some();
    let masked_now: Vec<String> = customer
        .emails
        .iter()
        .map(|e| e.address.masked())
        .chain(customer.phones.iter().map(|p| p.number.masked()))
        .collect();
    for change in &applied {
        let at = change.applied_at.or(change.confirmed_at).unwrap_or(change.created_at);
        let gone = !masked_now.contains(&change.masked);
        let sending = change.state == "sending";
        let blocked = if sending {
            // Handed to the account system, which may have made it; its release finishes it
            // here too, lockdown or not, and then it can be undone.
            Some(
                "being made in the tenant's account system, with no answer recorded yet: it may already be made \
                 there; undo it there, then remove it here once this review lists it as made"
                    .to_owned(),
            )
        } else if change.state == "reverted" {
            Some("already rolled back".to_owned())
        } else if remote {
            Some("made in the tenant's account system too: undo it there, then remove it here".to_owned())
        } else if gone {
            Some(format!(
                "{} is no longer on the account: a later change replaced it; undo that one first",
                change.masked
            ))
        } else {
            None
        };
        let reverted = blocked.is_some();
        let replaced = if sending && change.replace {
            " in place of the ones on the account".to_owned()
        } else if change.replaced.is_empty() {
            String::new()
        } else {
            format!(" in place of {}", change.replaced.join(", "))
        };
        let what = if sending { "being added" } else { "added" };
        changes.push(RecentChange {
            id: format!("contact_change:{}", change.id),
            kind: "contact_changed",
            at,
            detail: format!("{} {} {what}{replaced} (case {})", change.kind.as_str(), change.masked, change.case_id),
            reversible: !reverted,
            undo: match &blocked {
                Some(why) => why.clone(),
                None => format!("removes {} and puts back what it replaced", change.masked),
            },
            effect: (!reverted).then(|| Effect::RevertContactChange { id: change.id.clone() }),
            removes: None,
            reverts: (!reverted).then(|| change.id.clone()),
        });
    }
    let by_change = |masked: &str, at: regain_core::Timestamp| {
        applied.iter().any(|c| c.masked == masked && c.applied_at == Some(at))
    };
    let emails =
        customer.emails.iter().map(|e| (ContactKind::Email, e.address.as_str(), e.address.masked(), e.added_at));
    let phones = customer.phones.iter().map(|p| (ContactKind::Phone, p.number.as_str(), p.number.masked(), p.added_at));
    for (kind, value, masked, added_at) in emails.chain(phones) {
        if added_at < since || added_at <= customer.created_at || by_change(&masked, added_at) {
            continue;
        }
        changes.push(RecentChange {
            // Stable whatever else changes on the record: the kind, when, and the masked form.
            id: format!("{}:{}:{masked}", kind.as_str(), added_at.timestamp_micros()),
            kind: "contact_added",
            at: added_at,
            detail: format!("{} {masked} added", kind.as_str()),
            reversible: true,
            undo: format!("removes {masked}"),
            effect: Some(Effect::RemoveContact { customer: customer.id, kind, value: value.to_owned() }),
            removes: Some((kind, value.to_owned())),
            reverts: None,
        });
    }
    let times = state.store.factor_times(case.tenant_id, customer.id).await?;
    // What the record was created with is not a change to it.
    let recent = |t: &regain_core::Timestamp| *t >= since && *t > customer.created_at;
    let factor =
        |id: &str, kind: &'static str, at: regain_core::Timestamp, detail: &str, undo: &str, effect: Effect| {
            RecentChange {
                id: id.to_owned(),
                kind,
                at,
                detail: detail.to_owned(),
                reversible: true,
                undo: undo.to_owned(),
                effect: Some(effect),
                removes: None,
                reverts: None,
            }
        };
    if let Some(at) = times.totp_confirmed_at.filter(recent) {
        changes.push(factor(
            "totp",
            "totp_enrolled",
            at,
            "an authenticator app was set up",
            "removes the authenticator app",
            Effect::RemoveFactors { customer: customer.id, factors: BTreeSet::from([Factor::Totp]) },
        ));
    }
    if let Some(at) = times.recovery_codes_issued_at.filter(recent) {
        changes.push(factor(
            "recovery_codes",
            "recovery_codes_issued",
            at,
            "recovery codes were issued",
            "voids the recovery codes",
            Effect::RemoveFactors { customer: customer.id, factors: BTreeSet::from([Factor::RecoveryCodes]) },
        ));
    }
    // Where the account lives elsewhere, a password set through a reset link went to the
    // tenant's account system, and Regain keeps none to clear: each used link is listed (a
    // call left unanswered too: it may have been set), for the analyst to undo there.
    if remote {
        for link in state.store.used_links(case.tenant_id, customer.id, regain_store::LinkPurpose::Reset, since).await?
        {
            let Some(at) = link.used_at else { continue };
            changes.push(RecentChange {
                id: format!("reset_link:{}", link.id),
                kind: "password_changed",
                at,
                detail: format!(
                    "a new password was set in the tenant's account system through a reset link sent to {}{}",
                    link.destination,
                    link.case_id.map(|c| format!(" (case {c})")).unwrap_or_default()
                ),
                reversible: false,
                undo: "Regain keeps no password for this account: have it changed in the tenant's account system \
                       after re-proofing"
                    .into(),
                effect: None,
                removes: None,
                reverts: None,
            });
        }
    }
    if let Some(at) = times.password_changed_at.filter(recent) {
        changes.push(factor(
            "password",
            "password_changed",
            at,
            "the password was changed",
            "the password stops working; after re-proofing the customer sets a new one through a reset",
            Effect::ClearPassword { customer: customer.id },
        ));
    }
    changes.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    Ok((days, changes))
}

/// The case's customer, for a review: a compromised-account case with its customer identified.
pub async fn reviewed_customer(state: &AppState, case: &Case, actor: Actor) -> ApiResult<Customer> {
    if case.kind != CaseKind::CompromisedAccount {
        return Err(ApiError::Conflict {
            code: "wrong-kind",
            detail: format!("recent changes are reviewed on a compromised_account case; this one is {}", case.kind),
        });
    }
    regain_core::case::may_work(case, actor)?;
    let Some(customer_id) = case.customer_id else {
        return Err(ApiError::Conflict {
            code: "wrong-state",
            detail: "identify the customer first: the review lists their account's changes".into(),
        });
    };
    state.store.customer(case.tenant_id, customer_id).await?.ok_or_else(|| ApiError::not_found("customer"))
}

/// Rolls back the selected changes (`ids` from [`recent_changes`]) on a locked-down account,
/// as `actor` (a security analyst or a supervisor): one change to the case, its effects, and a
/// notice to every address that stays.
pub async fn roll_back(state: &AppState, actor: Actor, case: &Case, ids: &[String]) -> ApiResult<Case> {
    let customer = reviewed_customer(state, case, actor).await?;
    // Who may answers first, before anything about the selection is said.
    if !matches!(actor, Actor::Staff { role: regain_core::Role::SecurityAnalyst | regain_core::Role::Supervisor, .. }) {
        return Err(regain_core::CaseError::SecurityOnly.into());
    }
    if case.state != CaseState::Executing || customer.status != CustomerStatus::Frozen {
        return Err(ApiError::Conflict {
            code: "not-locked-down",
            detail: format!(
                "changes are rolled back while the account is locked down, on its executing compromised_account case \
                 (this case is {}, the account {})",
                case.state, customer.status
            ),
        });
    }
    if ids.is_empty() {
        return Err(regain_core::ValidationError::new("changes", "must name at least one change").into());
    }
    let (_, found) = recent_changes(state, case, &customer).await?;
    let mut chosen: Vec<&RecentChange> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("changes/{i}");
        let Some(change) = found.iter().find(|c| &c.id == id) else {
            return Err(regain_core::ValidationError::new(
                &field,
                "no such recent change (the list may have moved on: read it again)",
            )
            .into());
        };
        if !change.reversible {
            return Err(
                regain_core::ValidationError::new(&field, format!("cannot be rolled back: {}", change.undo)).into()
            );
        }
        if chosen.iter().any(|c| c.id == change.id) {
            return Err(regain_core::ValidationError::new(&field, "is named twice").into());
        }
        chosen.push(change);
    }
    // Newest first: a later change that replaced an earlier one's contact is undone before it.
    chosen.sort_by_key(|c| std::cmp::Reverse(c.at));
    let descriptions: Vec<String> = chosen.iter().map(|c| format!("{}: {}", c.detail, c.undo)).collect();
    let (next, events) =
        regain_core::case::apply(case, CaseCommand::RollBack { changes: descriptions }, actor, state.now())?;
    let mut effects: Vec<Effect> = chosen.iter().filter_map(|c| c.effect.clone()).collect();
    let tenant = state.store.tenant(case.tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    // The notice goes to the addresses the account has after it — the ones put back included —
    // never to one just taken away.
    let mut staying = customer.clone();
    let mut taken: Vec<(ContactKind, String)> = chosen.iter().filter_map(|c| c.removes.clone()).collect();
    let applied = state.store.recent_contact_changes(case.tenant_id, customer.id, customer.created_at).await?;
    for id in chosen.iter().filter_map(|c| c.reverts.as_deref()) {
        let Some(change) = applied.iter().find(|c| c.id == id) else { continue };
        let Some((value, replaced)) = state.store.contact_change_values(case.tenant_id, id).await? else { continue };
        taken.push((change.kind, value));
        for (old, verified) in replaced {
            super::with_contact(
                &mut staying,
                change.kind,
                &old,
                verified,
                &tenant.settings.default_region,
                state.now(),
            );
        }
    }
    for (kind, value) in &taken {
        match kind {
            ContactKind::Email => staying.emails.retain(|e| e.address.as_str() != value),
            ContactKind::Phone => staying.phones.retain(|p| p.number.as_str() != value),
        }
    }
    let tenant = state.store.tenant(case.tenant_id).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let what =
        format!("Our security team undid {} recent change(s) to your account while it is locked down", chosen.len());
    effects.extend(super::recovery_notices(state, &tenant, &next, &staying, &what).await?);
    crate::webhooks::commit(state, &next, &events, &actor, effects).await?;
    tracing::info!(case_id = %case.id, changes = chosen.len(), "recent changes rolled back");
    Ok(next)
}
