//! Completing a password reset (SECURITY.md P1, P2, P5, P6, W1): the customer sets a new
//! password through the single-use link. It is checked against the rules, hashed with Argon2id
//! on the hashing pool, and in one transaction the link is spent, the password replaced, every
//! session of the customer ended, the case completed and every registered address told. No
//! session is made: the customer signs in with the new password, and an enrolled second factor
//! is still asked for then.

use regain_core::action::{ActionKind, ActionOutcome};
use regain_core::case::CaseCommand;
use regain_core::password::{self, PasswordRules, Refusal};
use regain_core::{Actor, Case, CaseState, Customer, Tenant};
use regain_hashing::HashError;
use regain_store::{CustomerLink, Effect, LinkPurpose, StoreError};

use super::performed;
use crate::error::ApiError;
use crate::state::AppState;

/// Why a new password was not set.
#[derive(Debug)]
pub enum ResetRefused {
    /// The link was used, has expired, or its case is no longer waiting for it.
    Gone,
    /// The password breaks a rule; nothing was changed.
    Rules(Refusal),
    /// The new password and its confirmation differ.
    Mismatch,
    /// Hashing is at capacity, the database is away, or the tenant's account system cannot be
    /// reached: try again in a moment; the link still works.
    Busy,
    /// The tenant's account system refused the new password (its words, for support).
    Refused(String),
    /// Another recovery of the customer holds this one (SECURITY.md G5: a contact change under
    /// way, or a recovery cooling off); the link works again once it is over.
    Held(String),
    /// The tenant's account system did not answer after the new password was sent: whether it
    /// took it is not known. The link is spent, the case says so, every session ended and every
    /// address was told.
    Unknown,
    Internal(String),
}

impl From<StoreError> for ResetRefused {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ApiError> for ResetRefused {
    fn from(e: ApiError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// What the reset page shows about a usable link.
pub struct OpenLink {
    pub link: CustomerLink,
    pub tenant: Tenant,
    pub case: Case,
    pub customer: Customer,
}

/// The reset link `token` opens, while it is unused, unexpired and its case waits for it.
pub async fn open(state: &AppState, token: &str) -> Result<OpenLink, ResetRefused> {
    let link = state.store.customer_link(token).await?.ok_or(ResetRefused::Gone)?;
    if link.purpose != LinkPurpose::Reset || !link.usable(state.now()) {
        return Err(ResetRefused::Gone);
    }
    let tenant = state.store.tenant(link.tenant_id).await?.ok_or(ResetRefused::Gone)?;
    let case_id = link.case_id.ok_or(ResetRefused::Gone)?;
    let case = state.store.case(link.tenant_id, case_id).await?.ok_or(ResetRefused::Gone)?;
    if case.state != CaseState::Executing {
        return Err(ResetRefused::Gone);
    }
    let customer = state.store.customer(link.tenant_id, link.customer_id).await?.ok_or(ResetRefused::Gone)?;
    if customer.status == regain_core::CustomerStatus::Frozen {
        return Err(ResetRefused::Gone);
    }
    match super::held_by_others(state, &case, customer.id).await {
        Ok(()) => {}
        Err(ApiError::Conflict { detail, .. }) => return Err(ResetRefused::Held(detail)),
        Err(e) => return Err(e.into()),
    }
    Ok(OpenLink { link, tenant, case, customer })
}

/// The rules for `customer`'s new password: length, blocklist, their own words, strength.
pub fn check_password(customer: &Customer, password: &str) -> Result<password::Strength, Refusal> {
    let mut words: Vec<(&str, &str)> =
        vec![("username", customer.username.as_str()), ("name", customer.full_name.as_str())];
    words.extend(customer.emails.iter().map(|e| ("email address", e.address.as_str())));
    password::check(&PasswordRules::default(), password, &words)
}

/// Sets the new password through the link `token`.
pub async fn set_password(state: &AppState, token: &str, password: &str, confirm: &str) -> Result<(), ResetRefused> {
    let opened = open(state, token).await?;
    if password != confirm {
        return Err(ResetRefused::Mismatch);
    }
    check_password(&opened.customer, password).map_err(ResetRefused::Rules)?;
    let OpenLink { tenant, mut case, customer, .. } = opened;
    // Where the account lives: the directory inside Regain keeps an Argon2id hash; a tenant's
    // own system gets the password through its connector, and Regain keeps none.
    let set = match state.config.connector(tenant.slug.as_str()) {
        None => {
            let hash = state.hasher.hash(password).await.map_err(|e| match e {
                HashError::Overloaded => ResetRefused::Busy,
                other => ResetRefused::Internal(format!("password hashing: {other}")),
            })?;
            Effect::SetPassword { customer: customer.id, hash }
        }
        Some(connector) => {
            // The link is spent first, so two submissions never both reach the account system,
            // and only while no other recovery holds the case (G5: the account system is not
            // called for a held one); given back if the change does not go through. Each
            // submission has its own idempotency key: a retry with another password is
            // another change.
            let spend = [super::unheld(&case, customer.id), Effect::SpendLink { token: token.to_owned() }];
            match state.store.apply_effects(state.now(), &spend).await {
                Ok(()) => {}
                // Spent meanwhile, or held: `open` says which.
                Err(StoreError::Conflict) => {
                    open(state, token).await?;
                    return Err(ResetRefused::Gone);
                }
                Err(e) => return Err(e.into()),
            }
            let key = crate::verification::new_id(state);
            let change = super::connector::AccountChange::SetPassword(password);
            let refused = match super::connector::apply(connector, &customer, &key, change, state.now()).await {
                Ok(answer) => {
                    tracing::info!(case_id = %case.id, connector = connector.kind(), %answer, "password set in the account system");
                    None
                }
                // Sent, and no answer: it may be set there. Not given back as "nothing changed".
                Err(e) if e.unsure => {
                    tracing::warn!(case_id = %case.id, error = %e.message, "the account system did not answer after a new password was sent");
                    uncertain(state, &tenant, case, &customer).await;
                    return Err(ResetRefused::Unknown);
                }
                Err(e) if e.retry => {
                    tracing::warn!(case_id = %case.id, error = %e.message, "the account system could not take the new password yet");
                    Some(ResetRefused::Busy)
                }
                Err(e) => Some(ResetRefused::Refused(e.message)),
            };
            if let Some(refused) = refused {
                let release = [Effect::ReleaseLink { token: token.to_owned() }];
                if let Err(e) = state.store.apply_effects(state.now(), &release).await {
                    tracing::error!(case_id = %case.id, error = %e, "a reset link could not be given back after a failed change");
                }
                return Err(refused);
            }
            return finish_remote(state, &tenant, case, &customer).await;
        }
    };
    let actor = Actor::Customer { id: customer.id };
    for _ in 0..3 {
        let detail = "new password set through the reset link; every session ended".to_owned();
        let effects = vec![
            super::unheld(&case, customer.id),
            Effect::SpendLink { token: token.to_owned() },
            set.clone(),
            Effect::RevokeSessions { customer: customer.id },
        ];
        let (next, events, effects) = {
            let what = ActionKind::PasswordReset.notice();
            performed(state, &tenant, &case, &customer, ActionKind::PasswordReset, detail, what, actor, effects).await?
        };
        match crate::webhooks::commit(state, &next, &events, &actor, effects).await {
            Ok(()) => {
                tracing::info!(case_id = %case.id, customer_id = %customer.id, "password reset completed");
                return Ok(());
            }
            // The case moved meanwhile (a note, an assignment), the link was spent by a
            // second submission, or another recovery of the customer began to hold this one
            // while the password was hashed: everything `open` checks is read again.
            Err(StoreError::Conflict) => case = open(state, token).await?.case,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ResetRefused::Busy)
}

/// After the tenant's account system took the new password (the link already spent): the case
/// completes, sessions end, the notices go. The password is changed whatever happens here, so a
/// failure to record it is logged for staff, never shown to the customer as "nothing changed".
async fn finish_remote(state: &AppState, tenant: &Tenant, case: Case, customer: &Customer) -> Result<(), ResetRefused> {
    let detail = "new password set in the account system through the reset link; every session ended";
    let done = record_remote(state, case, |state, case| async move {
        let effects = vec![Effect::RevokeSessions { customer: customer.id }];
        let what = ActionKind::PasswordReset.notice();
        let actor = Actor::Customer { id: customer.id };
        let action = ActionKind::PasswordReset;
        performed(state, tenant, &case, customer, action, detail.to_owned(), what, actor, effects).await
    })
    .await;
    if !done {
        tracing::error!(customer_id = %customer.id, "the password changed in the account system; the case was not completed");
    }
    Ok(())
}

/// After the tenant's account system left a new password unanswered (the link stays spent): the
/// case says that nobody knows whether it was set and stays open for staff, every session ends
/// (it may be the new password that counts now), and every address is told (SECURITY.md P3).
async fn uncertain(state: &AppState, tenant: &Tenant, case: Case, customer: &Customer) {
    let detail = "a new password was sent to the account system through the reset link and it did not answer: \
                  whether it was set there is not known; every session ended. Ask the customer to try it, else send \
                  a new reset link";
    let done = record_remote(state, case, |state, case| async move {
        let action = ActionKind::PasswordReset;
        let command = CaseCommand::RecordAction { action, outcome: ActionOutcome::Failed, detail: Some(detail.into()) };
        let (next, events) = super::apply_all(&case, vec![command], Actor::Customer { id: customer.id }, state.now())?;
        let what = "A new password was submitted for your account through a reset link; it may have taken effect";
        let mut effects = vec![Effect::RevokeSessions { customer: customer.id }];
        effects.extend(super::recovery_notices(state, tenant, &next, customer, what).await?);
        Ok((next, events, effects))
    })
    .await;
    if !done {
        tracing::error!(customer_id = %customer.id, "a new password may be set in the account system; the case does not say so");
    }
}

/// Commits what `step` makes of the case (re-read on a conflict, while it is executing), after
/// a connector call that changed or may have changed the account: `false` when it could not
/// be recorded. Nothing here is returned to the customer as an error.
async fn record_remote<'a, F, Fut>(state: &'a AppState, mut case: Case, step: F) -> bool
where
    F: Fn(&'a AppState, Case) -> Fut,
    Fut: std::future::Future<Output = crate::error::ApiResult<super::Step>>,
{
    let actor = case.customer_id.map_or(Actor::System, |id| Actor::Customer { id });
    for _ in 0..3 {
        let (next, events, effects) = match step(state, case.clone()).await {
            Ok(step) => step,
            Err(e) => {
                tracing::error!(case_id = %case.id, error = %e, "could not prepare the case's step after the account system's answer");
                return false;
            }
        };
        match crate::webhooks::commit(state, &next, &events, &actor, effects).await {
            Ok(()) => return true,
            Err(StoreError::Conflict) => match state.store.case(case.tenant_id, case.id).await {
                Ok(Some(fresh)) if fresh.state == CaseState::Executing => case = fresh,
                _ => return false,
            },
            Err(e) => {
                tracing::error!(case_id = %case.id, error = %e, "could not record the case's step after the account system's answer");
                return false;
            }
        }
    }
    false
}
