//! The customer's pages for a recovery (issue 6): `/reset/{token}`, where the new password is
//! chosen, and `/report/{token}`, the "this wasn't me" of every recovery notice. Server-rendered,
//! no script; opening a page changes nothing (mail scanners open links), only its form does.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use regain_core::case::{CaseCommand, NewCase};
use regain_core::password::PasswordRules;
use regain_core::{Actor, Case, CaseKind, CaseState, Channel};
use regain_store::{Effect, LinkPurpose, StoreError};
use serde::Deserialize;

use super::reset::{self, ResetRefused};
use crate::pages::{escape, gone, page};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reset/{token}", get(show_reset).post(submit_reset))
        .route("/report/{token}", get(show_report).post(submit_report))
}

fn reset_form(tenant: &str, error: Option<&str>) -> String {
    let rules = PasswordRules::default();
    let error = error
        .map(|e| {
            format!(
                "<div class=\"error\" role=\"alert\" id=\"problem\"><strong>Not changed:</strong> {}</div>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let described = if error.is_empty() { "rules" } else { "problem rules" };
    format!(
        "<h1>Choose a new password for {tenant}</h1>{error}\
         <form method=\"post\">\
         <label for=\"password\">New password\
         <span class=\"hint\" id=\"rules\">At least {min} characters; a few unrelated words make a strong one. \
         Not your name, username or email, and not a common password.</span></label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required \
         minlength=\"{min}\" maxlength=\"{max}\" aria-describedby=\"{described}\">\
         <label for=\"confirm\">The same password again</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required \
         minlength=\"{min}\" maxlength=\"{max}\">\
         <button class=\"approve\" type=\"submit\">Set the new password</button></form>\
         <p class=\"muted\">Nobody at {tenant} sees the password you choose. After it is set, every device \
         signed in to your account is signed out, and you sign in again with the new one.</p>",
        min = rules.min_chars,
        max = rules.max_chars,
    )
}

async fn show_reset(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match reset::open(&state, &token).await {
        Ok(open) => {
            let tenant = escape(&open.tenant.display_name);
            page(StatusCode::OK, &format!("{} password reset", open.tenant.display_name), &reset_form(&tenant, None))
        }
        Err(_) => gone(),
    }
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
    confirm: String,
}

async fn submit_reset(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<NewPassword>,
) -> Response {
    let refused = match reset::set_password(&state, &token, &form.password, &form.confirm).await {
        Ok(()) => {
            return page(
                StatusCode::OK,
                "Password changed",
                "<h1>Your password is changed</h1><p>Sign in with your new password. If you use two-step sign-in, \
                 you will be asked for your code as usual.</p><p>Every device that was signed in to your account has \
                 been signed out. We sent a notice of this change to every email address and phone number on your \
                 account.</p>",
            )
        }
        Err(refused) => refused,
    };
    let problem = match refused {
        ResetRefused::Gone => return gone(),
        ResetRefused::Rules(refusal) => refusal.to_string(),
        ResetRefused::Mismatch => "the two passwords differ; type the same password twice".to_owned(),
        ResetRefused::Busy => return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<h1>Please try again in a moment</h1><p>We are very busy right now. Nothing was changed, and your link \
                 still works.</p>",
        ),
        ResetRefused::Refused(error) => {
            tracing::error!(%error, "the account system refused a new password");
            return page(
                StatusCode::BAD_GATEWAY,
                "Not changed",
                "<h1>Your password could not be changed</h1><p>The account system refused the change. Nothing was \
                 changed; please contact support.</p>",
            );
        }
        ResetRefused::Internal(error) => {
            tracing::error!(%error, "could not set a password through a reset link");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<h1>Something went wrong</h1><p>Nothing was changed. Please try again, or contact support.</p>",
            );
        }
    };
    // The form again, with the reason; the password is never echoed back.
    match reset::open(&state, &token).await {
        Ok(open) => {
            let tenant = escape(&open.tenant.display_name);
            page(StatusCode::UNPROCESSABLE_ENTITY, "Choose another password", &reset_form(&tenant, Some(&problem)))
        }
        Err(_) => gone(),
    }
}

async fn show_report(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let usable = state.store.customer_link(&token).await.ok().flatten().filter(|l| l.purpose == LinkPurpose::Report);
    let Some(link) = usable.filter(|l| l.usable(state.now())) else { return gone() };
    let Ok(Some(tenant)) = state.store.tenant(link.tenant_id).await else { return gone() };
    let tenant = escape(&tenant.display_name);
    let body = format!(
        "<h1>Was this not you?</h1><p>If you did not ask {tenant} support for this change, tell us below. We will \
         sign every device out of your account, stop what can still be stopped, and our security team will contact \
         you at a registered address.</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"decision\" value=\"report\">\
         <button class=\"deny\" type=\"submit\">This wasn't me</button></form>\
         <p class=\"muted\">This link was sent to {destination}.</p>",
        destination = escape(&link.destination),
    );
    page(StatusCode::OK, &format!("{tenant}: this wasn't me"), &body)
}

#[derive(Deserialize)]
struct Report {
    decision: String,
}

async fn submit_report(State(state): State<AppState>, Path(token): Path<String>, Form(form): Form<Report>) -> Response {
    if form.decision != "report" {
        return page(StatusCode::BAD_REQUEST, "Not understood", "<h1>Please use the button</h1>");
    }
    match report(&state, &token).await {
        Ok(true) => page(
            StatusCode::OK,
            "Reported",
            "<h1>Thank you: we are on it</h1><p>Every device is signed out of your account and our security team has \
             your report. They will contact you at a registered address; nobody from support will ask for your \
             password or a code.</p>",
        ),
        Ok(false) => gone(),
        Err(e) => {
            tracing::error!(error = %e, "could not record a 'this wasn't me' report");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<h1>Something went wrong</h1><p>Please try again in a moment, or contact support.</p>",
            )
        }
    }
}

/// "This wasn't me" (SECURITY.md G5, P3): a case still cooling off is cancelled and escalated
/// to the security tier; a closed one opens a compromised-account case for the security team.
/// Either way every session of the customer ends. `false`: the link was used or expired.
async fn report(state: &AppState, token: &str) -> Result<bool, StoreError> {
    let Some(link) = state.store.customer_link(token).await?.filter(|l| l.purpose == LinkPurpose::Report) else {
        return Ok(false);
    };
    if !link.usable(state.now()) {
        return Ok(false);
    }
    let actor = Actor::Customer { id: link.customer_id };
    let effects =
        [Effect::SpendLink { token: token.to_owned() }, Effect::RevokeSessions { customer: link.customer_id }];
    let reason = format!("this wasn't me: reported from {}", link.destination);
    for _ in 0..3 {
        let Some(case) = state.store.case(link.tenant_id, link.case_id).await? else { break };
        if case.state != CaseState::CoolingOff {
            break;
        }
        let command = CaseCommand::Repudiate { reason: reason.clone() };
        let Ok((next, events)) = regain_core::case::apply(&case, command, actor, state.now()) else { break };
        match crate::webhooks::commit(state, &next, &events, &actor, effects.to_vec()).await {
            Ok(()) => {
                tracing::warn!(case_id = %case.id, "recovery repudiated during cooling-off; cancelled and escalated");
                return Ok(true);
            }
            Err(StoreError::Conflict)
                if !state.store.customer_link(token).await?.is_some_and(|l| l.usable(state.now())) =>
            {
                return Ok(false)
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    // The recovery is done: the link is spent (once, whoever submits twice) and a security
    // case opened for the customer.
    match state.store.apply_effects(state.now(), &effects).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(false),
        Err(e) => return Err(e),
    }
    let case = open_security_case(state, &link, &reason).await?;
    tracing::warn!(case_id = %case.id, reported_case = %link.case_id, "recovery reported as not the customer; security case opened");
    Ok(true)
}

async fn open_security_case(
    state: &AppState,
    link: &regain_store::CustomerLink,
    reason: &str,
) -> Result<Case, StoreError> {
    let tenant = state.store.tenant(link.tenant_id).await?.ok_or(StoreError::NotFound)?;
    let actor = Actor::Customer { id: link.customer_id };
    let summary = format!("Reported by the customer after case {}: {reason}", link.case_id);
    let new = NewCase { kind: CaseKind::CompromisedAccount, channel: Channel::Web, summary: Some(summary) };
    let now = state.now();
    let id = regain_core::CaseId::generate(state.clock.as_ref(), state.entropy.as_ref());
    let (case, mut events) = Case::open(id, tenant.id, &tenant.settings, new, actor, now);
    let mut next = case;
    for command in [CaseCommand::StartIdentification, CaseCommand::Identify { customer_id: link.customer_id }] {
        let (after, more) = regain_core::case::apply(&next, command, actor, now)
            .map_err(|e| StoreError::Other(format!("opening the security case: {e}")))?;
        next = after;
        events.extend(more);
    }
    // A new case is written at version 1 with every event of its opening.
    next.version = 1;
    let hooks = crate::webhooks::effects_or_log(state, &next, &events).await;
    state.store.create_case_with_effects(&next, &events, &actor, None, &hooks).await?;
    Ok(next)
}
