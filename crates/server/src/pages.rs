//! The pages a customer opens from a message (issue 4 item 3): a confirmation link shows who is
//! asking and why — "ACME support is verifying you for a password reset" — with Approve and
//! "This wasn't me". Opening the page changes nothing (mail scanners open links); only the form
//! does. "This wasn't me" stops the case and sends it to the security team.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use regain_core::Actor;
use regain_store::{AttemptContext, LinkAnswer, LinkChallenge};
use serde::Deserialize;

use crate::extract::ClientInfo;
use crate::routes::verification::repudiate_from_link;
use crate::state::AppState;
use crate::verification::purpose;

pub fn router() -> Router<AppState> {
    Router::new().route("/verify/{token}", get(open).post(answer)).route("/verify", get(show_page).post(answer_page))
}

pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}}\
         h1{{font-size:1.4rem}} form{{display:inline}} button{{font-size:1rem;padding:.6rem 1.2rem;margin:.5rem .5rem 0 0;\
         border-radius:.4rem;border:1px solid #555;cursor:pointer}} .approve{{background:#087a3a;color:#fff;border-color:#087a3a}}\
         .deny{{background:#fff;color:#b00;border-color:#b00}} .muted{{color:#555;font-size:.9rem}}\
         label{{display:block;margin-top:1rem;font-weight:600}} .hint{{display:block;font-weight:400;color:#555;font-size:.9rem}}\
         input[type=password]{{width:100%;box-sizing:border-box;font-size:1rem;padding:.5rem;margin-top:.3rem;border:1px solid #555;border-radius:.3rem}}\
         .error{{border-left:4px solid #b00;background:#fdf0f0;padding:.6rem .8rem;margin:1rem 0}}\
         </style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'".parse()
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

pub(crate) fn gone() -> Response {
    page(
        StatusCode::GONE,
        "Link no longer valid",
        "<h1>This link is no longer valid</h1><p>It was already used, or it has expired. If you are talking to \
         support, ask them to send a new one. If you did not ask for help, you can ignore this: nothing was changed.</p>",
    )
}

/// A customer link whose token moves out of the URL (SECURITY.md T10): `/{page}/{token}`
/// answers, while the link is usable, with the token in an HttpOnly cookie for `/{page}` alone
/// and a redirect there, so the token is out of the address bar and the page's URL (the link
/// itself is still the first request a proxy sees; Regain's own logs redact it,
/// `telemetry::loggable_path`). The page then reads the token from the cookie, its form is bound
/// to the link ([`form_binding`]), and the cookie is cleared once the link is over. (The form
/// posted to `/{page}/{token}` itself still answers, for a client that keeps no cookie.)
pub(crate) struct LinkPage(pub &'static str);

/// The password reset, the re-enrollment after an MFA reset, the confirmation link and the
/// "this wasn't me" of every notice.
pub(crate) const RESET_PAGE: LinkPage = LinkPage("reset");
pub(crate) const ENROLL_PAGE: LinkPage = LinkPage("enroll");
pub(crate) const VERIFY_PAGE: LinkPage = LinkPage("verify");
pub(crate) const REPORT_PAGE: LinkPage = LinkPage("report");

impl LinkPage {
    fn cookie_name(&self) -> String {
        format!("regain_{}", self.0)
    }

    /// The token the request's cookie holds, if any.
    pub(crate) fn token(&self, headers: &HeaderMap) -> Option<String> {
        crate::auth::cookie(headers, &self.cookie_name()).filter(|t| !t.is_empty())
    }

    /// The token of a form posted to the page, once the form is shown to be the page's own for
    /// the cookie's link: posted from this origin (`Sec-Fetch-Site`, where the browser sends
    /// it), and carrying the link's [`form_binding`].
    pub(crate) fn posted(&self, headers: &HeaderMap, link: &str) -> Result<String, NotPosted> {
        let token = self.token(headers).ok_or(NotPosted::NoCookie)?;
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if site.is_some_and(|s| s != "same-origin") {
            return Err(NotPosted::OtherSite);
        }
        let expected = form_binding(&token);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), link.as_bytes())) {
            return Err(NotPosted::OtherLink);
        }
        Ok(token)
    }

    /// The answer to the link while it is usable: its token in the cookie until `expires_at`
    /// (at most a day), and the page.
    pub(crate) fn moved(&self, state: &AppState, token: &str, expires_at: regain_core::Timestamp) -> Response {
        let left = (expires_at - state.now()).num_seconds().clamp(1, 24 * 3600);
        // Relative, so it stays under `public_url`'s path behind a proxy.
        let to = format!("../{}", self.0);
        let redirect = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
        self.with_cookie(state, redirect, Some((token, left)))
    }

    /// `response` with the cookie cleared.
    pub(crate) fn cleared(&self, state: &AppState, response: Response) -> Response {
        self.with_cookie(state, response, None)
    }

    /// `response`, with the cookie cleared when its status is one of `over`: the statuses that
    /// say the link is used or gone.
    pub(crate) fn cleared_on(&self, state: &AppState, response: Response, over: &[StatusCode]) -> Response {
        if over.contains(&response.status()) {
            self.cleared(state, response)
        } else {
            response
        }
    }

    fn with_cookie(&self, state: &AppState, mut response: Response, value: Option<(&str, i64)>) -> Response {
        let secure = if state.config.cookie_secure { "; Secure" } else { "" };
        let (value, max_age) = value.unwrap_or(("", 0));
        // The page's path as the browser sees it: under `public_url`'s own path, if any.
        let prefix = reqwest::Url::parse(&state.config.public_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let cookie = format!(
            "{}={value}; Path={prefix}/{}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.cookie_name(),
            self.0
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// Why a form posted to a link page is not taken; nothing is changed.
pub(crate) enum NotPosted {
    /// No cookie came with it ([`no_cookie`]).
    NoCookie,
    /// Another site's form, though SameSite let the cookie through.
    OtherSite,
    /// A form for another link: one opened since replaced the cookie, or one planted it.
    OtherLink,
}

impl IntoResponse for NotPosted {
    fn into_response(self) -> Response {
        match self {
            Self::NoCookie => no_cookie(),
            Self::OtherSite => page(
                StatusCode::FORBIDDEN,
                "Not sent from this page",
                "<h1>This was not sent from our page</h1><p>Nothing was changed. Open the link from your message \
                 and use the form there.</p>",
            ),
            Self::OtherLink => page(
                StatusCode::CONFLICT,
                "Another link",
                "<h1>This page is for another link</h1><p>Nothing was changed. A link opened since, in another \
                 tab or window, took its place. Open the link from your message again.</p>",
            ),
        }
    }
}

/// What a link page's form carries to tie it to the link it was shown for (`link`, hidden): a
/// hash of the token, which only someone holding the token can make — so a form on another
/// page cannot post for it, even from a site SameSite lets through — and which the cookie of a
/// link opened since (another tab, or one planted from someone else's link) does not match.
pub(crate) fn form_binding(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(b"regain link form\0").chain_update(token.as_bytes()).finalize();
    data_encoding::BASE64URL_NOPAD.encode(&digest[..16])
}

/// The hidden field of [`form_binding`].
pub(crate) fn binding_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"link\" value=\"{}\">", form_binding(token))
}

/// A link page opened without its cookie: a browser that keeps none, or the page's address
/// typed or bookmarked.
pub(crate) fn no_cookie() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Open the link again",
        "<h1>Please open the link from your message again</h1><p>This page keeps the link out of the address bar \
         with a cookie, and this browser did not send it: allow cookies for this site, then open the link again. \
         Nothing was changed.</p>",
    )
}

async fn pending(state: &AppState, token: &str) -> Option<LinkChallenge> {
    let link = state.store.link_challenge(token).await.ok().flatten()?;
    (link.state == "pending" && link.expires_at > state.now()).then_some(link)
}

/// The link from the message (T10, [`LinkPage`]).
async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match pending(&state, &token).await {
        Some(link) => VERIFY_PAGE.moved(&state, &token, link.expires_at),
        None => gone(),
    }
}

/// The page, for the link whose token the cookie holds.
async fn show_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = VERIFY_PAGE.token(&headers) else { return no_cookie() };
    VERIFY_PAGE.cleared_on(&state, show(&state, &token).await, &[StatusCode::GONE])
}

async fn show(state: &AppState, token: &str) -> Response {
    let Some(link) = pending(state, token).await else { return gone() };
    let (Ok(Some(tenant)), Ok(Some(case))) =
        (state.store.tenant(link.tenant_id).await, state.store.case(link.tenant_id, link.case_id).await)
    else {
        return gone();
    };
    let tenant_name = escape(&tenant.display_name);
    let body = format!(
        "<h1>{tenant_name} support is verifying you</h1>\
         <p>Someone is talking to {tenant_name} support about <strong>{purpose}</strong> for your account, \
         through {channel}. If that is you, approve below. If it is not, tell us: we will stop the request and our \
         security team will look into it.</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"decision\" value=\"approve\">{binding}\
         <button class=\"approve\" type=\"submit\">Approve: this is me</button></form>\
         <form method=\"post\"><input type=\"hidden\" name=\"decision\" value=\"deny\">{binding}\
         <button class=\"deny\" type=\"submit\">This wasn't me</button></form>\
         <p class=\"muted\">This link was sent to {destination} and works once, until {until}.</p>",
        purpose = purpose(case.kind),
        channel = case.channel,
        binding = binding_field(token),
        destination = escape(&link.destination),
        until = link.expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    page(StatusCode::OK, &format!("{} verification", tenant.display_name), &body)
}

#[derive(Deserialize)]
struct Decision {
    decision: String,
    /// [`form_binding`]: checked on the page the cookie serves.
    #[serde(default)]
    link: String,
}

/// The page's form: the token is the cookie's, cleared once the link is answered or over.
async fn answer_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: ClientInfo,
    Form(form): Form<Decision>,
) -> Response {
    let token = match VERIFY_PAGE.posted(&headers, &form.link) {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    // Answered (either way) or over: the cookie goes.
    VERIFY_PAGE.cleared_on(&state, answered(&state, &token, client, form).await, &[StatusCode::OK, StatusCode::GONE])
}

async fn answer(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: ClientInfo,
    Form(form): Form<Decision>,
) -> Response {
    answered(&state, &token, client, form).await
}

async fn answered(state: &AppState, token: &str, client: ClientInfo, form: Decision) -> Response {
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return page(StatusCode::BAD_REQUEST, "Not understood", "<h1>Please use one of the buttons</h1>"),
    };
    let Some(link) = pending(state, token).await else { return gone() };
    let ctx = AttemptContext { actor: Actor::Customer { id: link.customer_id }, ip: client.ip, at: state.now() };
    // The case is read again if it changes between reading and answering.
    let mut answered = None;
    for _ in 0..5 {
        let Ok(Some(case)) = state.store.case(link.tenant_id, link.case_id).await else { return gone() };
        match state.store.answer_link(&case, token, approve, &ctx).await {
            Ok(LinkAnswer::Answered(_)) => {
                answered = Some(case);
                break;
            }
            Ok(LinkAnswer::Closed) => return gone(),
            Ok(LinkAnswer::Held { .. }) => {
                return page(
                    StatusCode::LOCKED,
                    "Recovery paused",
                    "<h1>Account recovery is paused</h1><p>There were too many failed attempts to verify you, \
                     so account recovery is paused for now and our security team has the request. Nothing was \
                     changed on your account.</p>",
                )
            }
            Err(regain_store::StoreError::Conflict) => continue,
            Err(e) => {
                tracing::error!(error = %e, "could not record a confirmation link's answer");
                break;
            }
        }
    }
    let Some(case) = answered else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<h1>Something went wrong</h1><p>Nothing was recorded. Please try again in a moment.</p>",
        );
    };
    if approve {
        tracing::info!(case_id = %case.id, "confirmation link approved");
        return page(
            StatusCode::OK,
            "Thank you",
            "<h1>Thank you</h1><p>You are verified. You can go back to the support conversation.</p>",
        );
    }
    tracing::warn!(case_id = %case.id, "confirmation link refused: this wasn't me");
    // The link is closed as repudiated; stopping the case follows (retried on conflicts). If it
    // still fails, the timeline holds the repudiation for the security team, and the log says so.
    let refreshed = state.store.case(case.tenant_id, case.id).await.ok().flatten().unwrap_or(case);
    if let Err(e) = repudiate_from_link(state, &refreshed, link.customer_id).await {
        tracing::error!(case_id = %refreshed.id, error = %e, "could not stop the case after 'this wasn't me'");
    }
    page(
        StatusCode::OK,
        "Request stopped",
        "<h1>We stopped the request</h1><p>Thank you for telling us. Nothing was changed on your account, and our \
         security team will look into it. Consider changing your password and turning on two-step sign-in.</p>",
    )
}
