//! The customer's pages for a recovery (issue 6): `/reset/{token}`, which moves its token into a
//! cookie and goes on to `/reset`, where the new password is chosen (SECURITY.md T10), and `/report/{token}`, the "this wasn't me" of every recovery notice. Server-rendered,
//! no script; opening a page changes nothing (mail scanners open links), only its form does.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use regain_core::case::{CaseCommand, NewCase};
use regain_core::password::PasswordRules;
use regain_core::{Actor, Case, CaseKind, CaseState, Channel};
use regain_store::{Effect, LinkPurpose, StoreError};
use serde::Deserialize;

use super::reset::{self, ResetRefused};
use crate::pages::{binding_field, escape, gone, no_cookie, page, ENROLL_PAGE, REPORT_PAGE, RESET_PAGE};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reset/{token}", get(open_reset).post(submit_reset))
        .route("/reset", get(show_reset).post(submit_reset_form))
        .route("/report/{token}", get(open_report).post(submit_report))
        .route("/report", get(show_report_page).post(submit_report_page))
        .route("/enroll/{token}", get(open_enroll).post(submit_enroll))
        .route("/enroll", get(show_enroll_page).post(submit_enroll_page))
}

/// The reset form for the link `token`.
fn reset_form(tenant: &str, token: &str, error: Option<&str>) -> String {
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
         <form method=\"post\">{binding}\
         <label for=\"password\">New password</label>\
         <span class=\"hint\" id=\"rules\">At least {min} characters; a few unrelated words make a strong one. \
         Not your name, username or email, and not a common password.</span>\
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
        binding = binding_field(token),
    )
}

/// The link from the message: while it is usable, its token moves into the cookie and the
/// browser goes on to `/reset`; opening it changes nothing else.
/// (SECURITY.md T10, [`LinkPage`](crate::pages::LinkPage).)
async fn open_reset(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match reset::open(&state, &token).await {
        Ok(open) => RESET_PAGE.moved(&state, &token, open.link.expires_at),
        Err(ResetRefused::Held(_)) => held(),
        Err(_) => gone(),
    }
}

/// The reset page, for the link whose token the cookie holds.
async fn show_reset(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = RESET_PAGE.token(&headers) else { return no_cookie() };
    match reset::open(&state, &token).await {
        Ok(open) => {
            let tenant = escape(&open.tenant.display_name);
            let form = reset_form(&tenant, &token, None);
            page(StatusCode::OK, &format!("{} password reset", open.tenant.display_name), &form)
        }
        Err(ResetRefused::Held(_)) => held(),
        Err(ResetRefused::Gone) => RESET_PAGE.cleared(&state, gone()),
        // The link may well still work: the cookie stays for the next try.
        Err(_) => try_again(),
    }
}

fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<h1>Please try again in a moment</h1><p>We could not finish this just now. Nothing was changed, and your \
         link still works.</p>",
    )
}

/// Another recovery of the customer holds the reset (SECURITY.md G5). Which one, and its case,
/// are for staff: the customer is told what to do.
fn held() -> Response {
    page(
        StatusCode::CONFLICT,
        "Not yet",
        "<h1>Another change to your account is under way</h1><p>For example a new email address or phone number \
         waiting to take effect. This link works again once that is over. If you did not ask for that change, use \
         the \u{201c}this wasn't me\u{201d} link in the notice we sent you, or contact support.</p>",
    )
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
    confirm: String,
    /// [`crate::pages::form_binding`]: checked on the page the cookie serves.
    #[serde(default)]
    link: String,
}

/// The reset page's form: the token is the cookie's.
async fn submit_reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewPassword>,
) -> Response {
    let token = match RESET_PAGE.posted(&headers, &form.link) {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    let response = new_password(&state, &token, &form).await;
    // Set, or over (used or expired): the cookie goes too, and the browser keeps nothing of the
    // link (P1). A refused password, a hold, a hiccup, or a change the account system refused
    // (the link given back) keep it for the next try.
    match reset::open(&state, &token).await {
        Err(ResetRefused::Gone) => RESET_PAGE.cleared(&state, response),
        _ => response,
    }
}

/// The form posted to the link itself, by a client that keeps no cookie.
async fn submit_reset(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<NewPassword>,
) -> Response {
    new_password(&state, &token, &form).await
}

async fn new_password(state: &AppState, token: &str, form: &NewPassword) -> Response {
    let refused = match reset::set_password(state, token, &form.password, &form.confirm).await {
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
    let problem =
        match refused {
            ResetRefused::Gone => return gone(),
            ResetRefused::Held(detail) => {
                tracing::info!(%detail, "a reset link held by another recovery of the customer");
                return held();
            }
            ResetRefused::Rules(refusal) => refusal.to_string(),
            ResetRefused::Mismatch => "the two passwords differ; type the same password twice".to_owned(),
            ResetRefused::Busy => return try_again(),
            ResetRefused::Refused(error) => {
                tracing::error!(%error, "the account system refused a new password");
                return page(
                    StatusCode::BAD_GATEWAY,
                    "Not changed",
                    "<h1>Your password could not be changed</h1><p>The account system refused the change. Nothing was \
                 changed; please contact support.</p>",
                );
            }
            ResetRefused::Unknown => return page(
                StatusCode::BAD_GATEWAY,
                "Not confirmed",
                "<h1>We could not confirm the change</h1><p>Your account system did not answer in time, so your new \
                 password may or may not be set. Try signing in with it; if that does not work, contact support for \
                 a new link (this one cannot be used again).</p><p>Every device that was signed in to your account \
                 has been signed out, and we sent a notice to every email address and phone number on your \
                 account.</p>",
            ),
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
    match reset::open(state, token).await {
        Ok(open) => {
            let tenant = escape(&open.tenant.display_name);
            let form = reset_form(&tenant, token, Some(&problem));
            page(StatusCode::UNPROCESSABLE_ENTITY, "Choose another password", &form)
        }
        Err(_) => gone(),
    }
}

/// The report link, while usable.
async fn report_link(state: &AppState, token: &str) -> Option<regain_store::CustomerLink> {
    let link = state.store.customer_link(token).await.ok().flatten().filter(|l| l.purpose == LinkPurpose::Report)?;
    link.usable(state.now()).then_some(link)
}

/// The report link from a notice (T10, [`LinkPage`](crate::pages::LinkPage)).
async fn open_report(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match report_link(&state, &token).await {
        Some(link) => REPORT_PAGE.moved(&state, &token, link.expires_at),
        None => gone(),
    }
}

/// The report page, for the link whose token the cookie holds.
async fn show_report_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = REPORT_PAGE.token(&headers) else { return no_cookie() };
    REPORT_PAGE.cleared_on(&state, show_report(&state, &token).await, &[StatusCode::GONE])
}

async fn show_report(state: &AppState, token: &str) -> Response {
    let Some(link) = report_link(state, token).await else { return gone() };
    let Ok(Some(record)) = state.store.tenant(link.tenant_id).await else { return gone() };
    let tenant = escape(&record.display_name);
    let what = match link.case_id {
        Some(_) => format!("ask {tenant} support for this change"),
        None => "set up this sign-in method yourself".to_owned(),
    };
    let body = format!(
        "<h1>Was this not you?</h1><p>If you did not {what}, tell us below. We will \
         sign every device out of your account, stop what can still be stopped, and our security team will contact \
         you at a registered address.</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"decision\" value=\"report\">{binding}\
         <button class=\"deny\" type=\"submit\">This wasn't me</button></form>\
         <p class=\"muted\">This link was sent to {destination}.</p>",
        destination = escape(&link.destination),
        binding = binding_field(token),
    );
    page(StatusCode::OK, &format!("{}: this wasn't me", record.display_name), &body)
}

#[derive(Deserialize)]
struct Report {
    decision: String,
    /// [`crate::pages::form_binding`]: checked on the page the cookie serves.
    #[serde(default)]
    link: String,
}

/// The report page's form: the token is the cookie's, cleared once the link is used or over.
async fn submit_report_page(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<Report>) -> Response {
    let token = match REPORT_PAGE.posted(&headers, &form.link) {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    REPORT_PAGE.cleared_on(&state, reported(&state, &token, &form).await, &[StatusCode::OK, StatusCode::GONE])
}

async fn submit_report(State(state): State<AppState>, Path(token): Path<String>, Form(form): Form<Report>) -> Response {
    reported(&state, &token, &form).await
}

async fn reported(state: &AppState, token: &str, form: &Report) -> Response {
    if form.decision != "report" {
        return page(StatusCode::BAD_REQUEST, "Not understood", "<h1>Please use the button</h1>");
    }
    match report(state, token).await {
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
/// to the security tier; a closed one, or a change no case stands behind (a new sign-in
/// method), opens a compromised-account case for the security team. Either way every session
/// of the customer ends. `false`: the link was used or expired.
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
        let Some(case_id) = link.case_id else { break };
        let Some(case) = state.store.case(link.tenant_id, case_id).await? else { break };
        if case.state != CaseState::CoolingOff {
            break;
        }
        // A contact change the release is handing to the account system may be made there
        // already: it is not cancelled but reported, like a change that took effect — and
        // marked so, so that if the account system did not take it, it is cancelled rather
        // than made at the next release. (A send that starts after this read makes the commit
        // below conflict, and one that ends before the mark does, too: this looks again.)
        if case.kind == CaseKind::ContactChange
            && state.store.contact_change(case.tenant_id, case.id).await?.is_some_and(|c| c.state == "sending")
        {
            let mut marked = effects.to_vec();
            marked.push(Effect::ReportContactChange { case: case.id });
            match open_security_case(state, &link, token, &reason, &marked).await {
                Ok(security) => {
                    tracing::warn!(case_id = %security.id, reported_case = %case.id, "a contact change being made was reported; security case opened");
                    return Ok(true);
                }
                Err(StoreError::Conflict) if !still_usable(state, token).await? => return Ok(false),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        let command = CaseCommand::Repudiate { reason: reason.clone() };
        let Ok((next, events)) = regain_core::case::apply(&case, command, actor, state.now()) else { break };
        match crate::webhooks::commit(state, &next, &events, &actor, effects.to_vec()).await {
            Ok(()) => {
                tracing::warn!(case_id = %case.id, "recovery repudiated during cooling-off; cancelled and escalated");
                return Ok(true);
            }
            Err(StoreError::Conflict) if !still_usable(state, token).await? => return Ok(false),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    // The recovery is done: a security case opens, in the transaction that spends the link
    // (once, whoever submits twice) and ends the sessions.
    let case = match open_security_case(state, &link, token, &reason, &effects).await {
        Ok(case) => case,
        // Spent meanwhile by another submission of the same link.
        Err(StoreError::Conflict) => return Ok(false),
        Err(e) => return Err(e),
    };
    let reported = link.case_id.map(|c| c.to_string());
    tracing::warn!(case_id = %case.id, reported_case = ?reported, "a change reported as not the customer's; security case opened");
    Ok(true)
}

/// Whether the link `token` can still be used (a conflict may mean another submission spent it).
async fn still_usable(state: &AppState, token: &str) -> Result<bool, StoreError> {
    Ok(state.store.customer_link(token).await?.is_some_and(|l| l.usable(state.now())))
}

/// The security team's case for a report (`effects` in its transaction): the customer's
/// compromised-account case still being worked toward its decision when there is one — a
/// second report of the same incident, from another address's notice, is a note on it, not
/// another case — else a new one at tier 3 (a case already executing or cooling off may
/// resolve on its own, so a report does not hide in it). A conflict means the link `token` was
/// spent meanwhile (or the case kept changing).
async fn open_security_case(
    state: &AppState,
    link: &regain_store::CustomerLink,
    token: &str,
    reason: &str,
    effects: &[Effect],
) -> Result<Case, StoreError> {
    let tenant = state.store.tenant(link.tenant_id).await?.ok_or(StoreError::NotFound)?;
    let actor = Actor::Customer { id: link.customer_id };
    let summary = match link.case_id {
        Some(case) => format!("Reported by the customer after case {case}: {reason}"),
        None => format!("Reported by the customer after a notice of a new sign-in method: {reason}"),
    };
    let worked: Vec<CaseState> = CaseState::ALL.iter().copied().filter(|s| s.is_before_execution()).collect();
    // Three rounds guarded against a case opened meanwhile by another report (another
    // address's link, at the same moment): it then takes this one as a note. After them a case
    // is opened unguarded, as a report is never lost to contention.
    for _ in 0..3 {
        let cases = state.store.customer_cases_in(tenant.id, link.customer_id, &worked).await?;
        if let Some(brief) = cases.iter().find(|c| c.kind == CaseKind::CompromisedAccount) {
            let Some(case) = state.store.case(tenant.id, brief.id).await? else { continue };
            let note = CaseCommand::AddNote { text: summary.clone() };
            let (next, events) = regain_core::case::apply(&case, note, actor, state.now())
                .map_err(|e| StoreError::Other(format!("noting the report on case {}: {e}", case.id)))?;
            match crate::webhooks::commit(state, &next, &events, &actor, effects.to_vec()).await {
                Ok(()) => return Ok(next),
                // The case moved, or the link was spent: which one, the next round finds out.
                Err(StoreError::Conflict) if still_usable(state, token).await? => continue,
                Err(e) => return Err(e),
            }
        }
        let (next, events) = new_security_case(state, &tenant, link.customer_id, &summary, actor)?;
        let mut all = vec![Effect::RequireNoOpenCase {
            tenant: tenant.id,
            customer: link.customer_id,
            kind: CaseKind::CompromisedAccount,
            except: next.id,
        }];
        all.extend_from_slice(effects);
        all.extend(crate::webhooks::effects_or_log(state, &next, &events).await);
        match state.store.create_case_with_effects(&next, &events, &actor, None, &all).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Conflict) if still_usable(state, token).await? => continue,
            Err(e) => return Err(e),
        }
    }
    let (next, events) = new_security_case(state, &tenant, link.customer_id, &summary, actor)?;
    let mut all = effects.to_vec();
    all.extend(crate::webhooks::effects_or_log(state, &next, &events).await);
    state.store.create_case_with_effects(&next, &events, &actor, None, &all).await?;
    Ok(next)
}

/// A tier-3 compromised-account case for `customer`, identified, with the events of its
/// opening: written at version 1.
fn new_security_case(
    state: &AppState,
    tenant: &regain_core::Tenant,
    customer: regain_core::CustomerId,
    summary: &str,
    actor: Actor,
) -> Result<(Case, Vec<regain_core::case::CaseEvent>), StoreError> {
    let new = NewCase { kind: CaseKind::CompromisedAccount, channel: Channel::Web, summary: Some(summary.to_owned()) };
    let now = state.now();
    let id = regain_core::CaseId::generate(state.clock.as_ref(), state.entropy.as_ref());
    let (case, mut events) = Case::open(id, tenant.id, &tenant.settings, new, actor, now);
    let mut next = case;
    for command in [CaseCommand::StartIdentification, CaseCommand::Identify { customer_id: customer }] {
        let (after, more) = regain_core::case::apply(&next, command, actor, now)
            .map_err(|e| StoreError::Other(format!("opening the security case: {e}")))?;
        next = after;
        events.extend(more);
    }
    // A new case is written at version 1 with every event of its opening.
    next.version = 1;
    Ok((next, events))
}

/// The re-enrollment link of an MFA reset, while usable.
async fn enroll_link(state: &AppState, token: &str) -> Option<(regain_store::CustomerLink, regain_core::Tenant)> {
    let link = state.store.customer_link(token).await.ok().flatten().filter(|l| l.purpose == LinkPurpose::Enroll)?;
    if !link.usable(state.now()) {
        return None;
    }
    // A lockdown after the MFA reset ends this link too; checked here as well.
    let customer = state.store.customer(link.tenant_id, link.customer_id).await.ok().flatten()?;
    if customer.status == regain_core::CustomerStatus::Frozen {
        return None;
    }
    let tenant = state.store.tenant(link.tenant_id).await.ok().flatten()?;
    Some((link, tenant))
}

/// The re-enrollment link from the message (T10, [`LinkPage`](crate::pages::LinkPage)).
async fn open_enroll(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match enroll_link(&state, &token).await {
        Some((link, _)) => ENROLL_PAGE.moved(&state, &token, link.expires_at),
        None => gone(),
    }
}

/// The re-enrollment page, for the link whose token the cookie holds.
async fn show_enroll_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = ENROLL_PAGE.token(&headers) else { return no_cookie() };
    ENROLL_PAGE.cleared_on(&state, show_enroll(&state, &token).await, &[StatusCode::GONE])
}

/// Its form: the token is the cookie's, cleared once the link is spent or over.
async fn submit_enroll_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EnrollStep>,
) -> Response {
    let token = match ENROLL_PAGE.posted(&headers, &form.link) {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    // Enrolled (the link spent) or over: the cookie goes.
    let over: &[StatusCode] =
        if form.step == "confirm" { &[StatusCode::OK, StatusCode::GONE] } else { &[StatusCode::GONE] };
    ENROLL_PAGE.cleared_on(&state, enroll_step(&state, &token, form).await, over)
}

async fn show_enroll(state: &AppState, token: &str) -> Response {
    let Some((link, tenant)) = enroll_link(state, token).await else { return gone() };
    let name = escape(&tenant.display_name);
    let body = format!(
        "<h1>Set up two-step sign-in for {name}</h1><p>You will need an authenticator app on your phone \
         (such as Google Authenticator, Microsoft Authenticator or 1Password).</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"step\" value=\"start\">{binding}\
         <button class=\"approve\" type=\"submit\">Start</button></form>\
         <p class=\"muted\">This link was sent to {destination} and works until {until}.</p>",
        destination = escape(&link.destination),
        until = link.expires_at.format("%Y-%m-%d %H:%M UTC"),
        binding = binding_field(token),
    );
    page(StatusCode::OK, &format!("{} two-step sign-in", tenant.display_name), &body)
}

#[derive(Deserialize)]
struct EnrollStep {
    step: String,
    #[serde(default)]
    code: String,
    /// [`crate::pages::form_binding`]: checked on the page the cookie serves.
    #[serde(default)]
    link: String,
}

fn code_form(name: &str, token: &str, qr_svg: &str, secret: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<div class=\"error\" role=\"alert\" id=\"problem\">{}</div>", escape(e)))
        .unwrap_or_default();
    format!(
        "<h1>Scan this with your authenticator app</h1>{error}<div aria-hidden=\"true\">{qr_svg}</div>\
         <p>Or type this key into the app: <code>{secret}</code></p>\
         <form method=\"post\"><input type=\"hidden\" name=\"step\" value=\"confirm\">{binding}\
         <label for=\"code\">The six-digit code the app shows for {name}</label>\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" \
         maxlength=\"6\" required{described}>\
         <button class=\"approve\" type=\"submit\">Finish</button></form>",
        described = if error.is_empty() { "" } else { " aria-describedby=\"problem\"" },
        binding = binding_field(token),
    )
}

async fn submit_enroll(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<EnrollStep>,
) -> Response {
    enroll_step(&state, &token, form).await
}

async fn enroll_step(state: &AppState, token: &str, form: EnrollStep) -> Response {
    use regain_core::totp::{encode_secret, otpauth_uri, verify_totp, TotpParams};
    let Some((link, tenant)) = enroll_link(state, token).await else { return gone() };
    let Ok(Some(customer)) = state.store.customer(link.tenant_id, link.customer_id).await else { return gone() };
    let name = escape(&tenant.display_name);
    let actor = Actor::Customer { id: customer.id };
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "re-enrollment failed");
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<h1>Something went wrong</h1><p>Please try again in a moment.</p>",
        )
    };
    match form.step.as_str() {
        "start" => {
            let mut secret = [0u8; 20];
            state.entropy.fill(&mut secret);
            let audit =
                regain_store::AuditRecord::new(Some(tenant.id), actor, "customer.totp_enrollment_started", state.now());
            if let Err(e) = state.store.begin_totp_enrollment(tenant.id, customer.id, &secret, &audit).await {
                return match e {
                    StoreError::Conflict | StoreError::Precondition(_) | StoreError::Duplicate { .. } => page(
                        StatusCode::CONFLICT,
                        "Already set up",
                        "<h1>An authenticator app is already set up</h1><p>Nothing was changed.</p>",
                    ),
                    other => failed(&other),
                };
            }
            let uri = otpauth_uri(&tenant.display_name, &customer.username, &secret, &TotpParams::default());
            let Ok(qr) = qrcode::QrCode::new(uri.as_bytes()) else { return failed(&"QR code") };
            let svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
            page(StatusCode::OK, "Scan the code", &code_form(&name, token, &svg, &encode_secret(&secret), None))
        }
        "confirm" => {
            let Ok(Some(pending)) = state.store.customer_totp(tenant.id, customer.id).await else {
                return page(
                    StatusCode::CONFLICT,
                    "Start again",
                    "<h1>Please start again</h1><p>Open the link from your message again.</p>",
                );
            };
            if pending.confirmed {
                return page(StatusCode::CONFLICT, "Already set up", "<h1>An authenticator app is already set up</h1>");
            }
            let now = state.now();
            let step = verify_totp(&pending.secret, &form.code, now, &TotpParams::default(), 1, None)
                .and_then(|s| i64::try_from(s).ok());
            let audit = regain_store::AuditRecord::new(Some(tenant.id), actor, "customer.totp_enrolled", now);
            let confirmed = match step {
                Some(step) => state.store.claim_customer_totp_step(tenant.id, customer.id, step, Some(&audit)).await,
                None => Ok(false),
            };
            match confirmed {
                Ok(true) => {}
                Ok(false) => {
                    let uri =
                        otpauth_uri(&tenant.display_name, &customer.username, &pending.secret, &TotpParams::default());
                    let svg = qrcode::QrCode::new(uri.as_bytes())
                        .map(|qr| qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
                        .unwrap_or_default();
                    let body = code_form(
                        &name,
                        token,
                        &svg,
                        &encode_secret(&pending.secret),
                        Some("That code is not right; check the app and its clock, and try the next one."),
                    );
                    return page(StatusCode::UNPROCESSABLE_ENTITY, "Try the code again", &body);
                }
                Err(e) => return failed(&e),
            }
            if let Err(e) = state.store.apply_effects(now, &[Effect::SpendLink { token: token.to_owned() }]).await {
                tracing::warn!(error = %e, "the re-enrollment link was not spent");
            }
            // The notice's report link is for the MFA reset's case: a report during its
            // cooling-off cancels and escalates it.
            let case = match link.case_id {
                Some(id) => state.store.case(tenant.id, id).await.ok().flatten(),
                None => None,
            };
            let factor = "An authenticator app";
            if let Err(e) =
                crate::routes::factors::notify_factor(state, tenant.id, customer.id, case.as_ref(), factor).await
            {
                tracing::error!(error = %e, "could not queue the notice of a new authenticator app");
            }
            page(
                StatusCode::OK,
                "Two-step sign-in is on",
                "<h1>Two-step sign-in is on again</h1><p>From now on you sign in with your password and the code \
                 from the app. We told every email address and phone number on your account.</p>",
            )
        }
        _ => page(StatusCode::BAD_REQUEST, "Not understood", "<h1>Please use the buttons on the page</h1>"),
    }
}
