//! Executing recoveries over the real API (issue 6): the action queued on `execute`, the
//! worker that performs it, the reset page, the notices to every registered address, "this
//! wasn't me", and the directory's sign-in afterwards.

use chrono::Duration;
use regain_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{customer_json, expect_problem, TestApp, LONG_AGO};

const NEW_PASSWORD: &str = "umbrella-gravel-Tuesday-91";

struct Desk {
    key: String,
    agent: String,
    customer_id: String,
}

async fn desk(app: &TestApp) -> Desk {
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let customer = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    Desk { key, agent, customer_id: customer["id"].as_str().expect("id").to_owned() }
}

fn path(case: &str, rest: &str) -> String {
    format!("/api/v1/cases/{case}/{rest}")
}

impl Desk {
    /// A case of `kind` through identification, an email code and the decision: `decided`.
    async fn decided(&self, app: &TestApp, kind: &str) -> String {
        self.decided_with(app, kind, &["email-0"]).await
    }

    /// The same, with a code to each of `contacts`.
    async fn decided_with(&self, app: &TestApp, kind: &str, contacts: &[&str]) -> String {
        let id = self.verified(app, kind, contacts).await;
        app.post_ok(&self.agent, &path(&id, "decide"), json!({"approve": true, "reason": "codes"}), StatusCode::OK)
            .await;
        id
    }

    /// Identified, with a code to each of `contacts`; not decided yet.
    async fn verified(&self, app: &TestApp, kind: &str, contacts: &[&str]) -> String {
        let case = app
            .post_ok(&self.key, "/api/v1/cases", json!({"kind": kind, "channel": "phone"}), StatusCode::CREATED)
            .await;
        let id = case["id"].as_str().expect("id").to_owned();
        app.post_ok(&self.agent, &path(&id, "start-identification"), json!({}), StatusCode::OK).await;
        let answer = app
            .post_ok(
                &self.agent,
                &path(&id, "identification"),
                json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"}),
                StatusCode::OK,
            )
            .await;
        assert_eq!(answer["outcome"], "identified", "{answer}");
        for contact in contacts {
            app.verify_by_code(&self.agent, &id, contact).await;
        }
        id
    }

    async fn case(&self, app: &TestApp, id: &str) -> Value {
        app.get_ok(&self.agent, &format!("/api/v1/cases/{id}")).await
    }

    async fn timeline_types(&self, app: &TestApp, id: &str) -> Vec<String> {
        let timeline = app.get_ok(&self.agent, &path(id, "timeline")).await;
        timeline["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| e["type"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Sets up an authenticator app for the signed-in customer `me` (enrolled, then confirmed with
/// its current code on the app's clock): its secret, in base32.
async fn enroll_authenticator(app: &TestApp, me: &str) -> String {
    use regain_core::totp::{decode_secret, totp, TotpParams};
    let enrollment = app.post_ok(me, "/api/v1/directory/acme/me/totp", json!({}), StatusCode::OK).await;
    let base32 = enrollment["secret"].as_str().expect("secret").to_owned();
    let secret = decode_secret(&base32).expect("base32");
    let code = totp(&secret, regain_core::Clock::now(app.clock.as_ref()), &TotpParams::default());
    let confirmed = app.post(me, "/api/v1/directory/acme/me/totp/confirm", json!({"code": code})).await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    base32
}

/// The token in the first `/{page}/` link of `body`.
pub(crate) fn link_token(body: &str, page: &str) -> String {
    let marker = format!("/{page}/");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no /{page}/ link in {body:?}")) + marker.len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

async fn form(app: &TestApp, page: &str, fields: &[(&str, &str)]) -> (StatusCode, bool, String) {
    let response = app.client.post(format!("{}{page}", app.base)).form(fields).send().await.expect("post");
    let status = response.status();
    let cookie = response.headers().contains_key("set-cookie");
    (status, cookie, response.text().await.expect("body"))
}

async fn login(app: &TestApp, password: &str, totp: Option<&str>) -> reqwest::Response {
    let mut body = json!({"username": "jane", "password": password});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    app.call(Method::POST, "/api/v1/directory/acme/login", None, Some(body)).await
}

/// Executes the decided case, performs its action and delivers: the reset email's link token.
async fn reset_link(app: &TestApp, d: &Desk, id: &str) -> String {
    let executing = app.post_ok(&d.agent, &path(id, "execute"), json!({}), StatusCode::OK).await;
    assert_eq!(executing["state"], "executing");
    assert_eq!(executing["actions"][0]["action"], "password_reset", "{executing}");
    assert_eq!(executing["actions"][0]["state"], "pending", "the pending step shows: {executing}");
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(app.perform_actions().await, 0, "performed once");
    let sent = app.deliver_new().await;
    assert_eq!(sent.len(), 1, "one reset link, to one registered contact");
    assert_eq!(sent[0].to, regain_delivery::Address::Email("jane@example.com".into()));
    assert!(sent[0].subject.contains("new password"), "{}", sent[0].subject);
    link_token(&sent[0].body, "reset")
}

/// T10 behind a proxy that serves Regain under a path of its own (`public_url` with a path):
/// the mailed link is under it, the redirect stays under it, and the cookie is for the page as
/// the browser sees it there.
#[tokio::test]
async fn a_links_cookie_is_for_the_page_under_the_configured_path() {
    let config = regain_server::config::ServerConfig {
        public_url: "https://help.example.com/desk/".into(),
        ..Default::default()
    };
    let app = TestApp::sqlite_with(config).await;
    let d = desk(&app).await;
    let id = d.decided(&app, "password_reset").await;
    app.post_ok(&d.agent, &path(&id, "execute"), json!({}), StatusCode::OK).await;
    app.perform_actions().await;
    let body = app.deliver_new().await.into_iter().find(|m| m.body.contains("/reset/")).expect("the link").body;
    assert!(body.contains("https://help.example.com/desk/reset/"), "{body}");
    // Opened, as the proxy hands it on with its path taken off: `open_link` checks
    // `Path=/desk/reset` and the relative redirect, which the browser resolves under /desk.
    let page = app.open_reset_link(&link_token(&body, "reset")).await;
    assert_eq!(page.status(), StatusCode::OK);
}

/// SECURITY.md T8: asking for a reset changes nothing by itself. Fifty requests for Jane's
/// account (cases opened and identified as hers, past the rate limit of T9), and a reset link
/// sent but not used: her account is not locked, and her old password still signs her in.
#[tokio::test]
async fn reset_requests_change_nothing_by_themselves() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let mut identified = 0;
    for _ in 0..50 {
        let case = json!({"kind": "password_reset", "channel": "web"});
        let case = app.post(&d.key, "/api/v1/cases", case).await;
        if case.status() != StatusCode::CREATED {
            assert_eq!(case.status(), StatusCode::TOO_MANY_REQUESTS, "refused only by the rate limit");
            continue;
        }
        let case: serde_json::Value = case.json().await.expect("case");
        let id = case["id"].as_str().expect("id");
        app.post_ok(&d.agent, &path(id, "start-identification"), json!({}), StatusCode::OK).await;
        let claimed = json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"});
        let answer = app.post(&d.agent, &path(id, "identification"), claimed).await;
        match answer.status() {
            StatusCode::OK => identified += 1,
            status => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "refused only by the rate limit"),
        }
    }
    assert!(identified >= 1, "some went through");
    // The requests raised the risk (velocity): one more proof than usual.
    let decided = d.decided_with(&app, "password_reset", &["email-0", "phone-0"]).await;
    reset_link(&app, &d, &decided).await;
    let record = app.get_ok(&d.key, &format!("/api/v1/customers/{}", d.customer_id)).await;
    assert_eq!(record["status"], "active", "not locked: {record}");
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::OK, "the old password works");
}

/// SECURITY.md T10: a link is built from the configured origin whatever `Host` the request
/// carried, in the request (a confirmation link) or after it (a reset link, by the worker); the
/// reset link's token moves into an HttpOnly cookie for `/reset` and out of the URL; the page
/// sends no referrer; once the password is set the cookie is cleared, and the page without a
/// usable link is gone.
#[tokio::test]
async fn links_come_from_the_configured_origin_and_a_reset_links_token_leaves_the_url() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let forged = |method: Method, page: String, token: &str| {
        app.client.request(method, format!("{}{page}", app.base)).bearer_auth(token).header("host", "evil.test")
    };
    let origin = app.state.config.public_url.trim_end_matches('/').to_owned();
    let confirming = d.decided(&app, "password_reset").await;
    let case = app
        .post_ok(&d.key, "/api/v1/cases", json!({"kind": "username_recovery", "channel": "phone"}), StatusCode::CREATED)
        .await;
    let other = case["id"].as_str().expect("id");
    app.post_ok(&d.agent, &path(other, "start-identification"), json!({}), StatusCode::OK).await;
    let claimed = json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"});
    app.post_ok(&d.agent, &path(other, "identification"), claimed, StatusCode::OK).await;
    app.deliver_new().await;
    let send = forged(Method::POST, path(other, "verification/send"), &d.agent)
        .json(&json!({"contact": "email-0", "delivery": "link"}))
        .send()
        .await
        .expect("send");
    assert_eq!(send.status(), StatusCode::OK);
    let execute = forged(Method::POST, path(&confirming, "execute"), &d.agent).json(&json!({})).send().await;
    assert_eq!(execute.expect("execute").status(), StatusCode::OK);
    assert_eq!(app.perform_actions().await, 1);
    let sent = app.deliver_new().await;
    let bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies.len(), 2, "the confirmation link and the reset link: {bodies:?}");
    assert!(bodies.iter().all(|b| !b.contains("evil.test")), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains(&format!("{origin}/verify/"))), "{bodies:?}");
    let reset = bodies.iter().find(|b| b.contains(&format!("{origin}/reset/"))).expect("the reset link");
    let token = link_token(reset, "reset");

    let page = app.open_reset_link(&token).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.expect("html");
    assert!(!html.contains(&token), "the token is not in the page either");
    let link = TestApp::form_link(&html);
    let with_cookie = |method: Method, page: &str| {
        app.client.request(method, format!("{}{page}", app.base)).header("cookie", format!("regain_reset={token}"))
    };
    // The form is the page's own for this link: not another site's, not another link's, and
    // not without the cookie. Nothing is changed by any of them.
    let new = |link: &str| {
        [("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD), ("link", link)].map(|(k, v)| (k, v.to_owned()))
    };
    let forged = with_cookie(Method::POST, "/reset").header("sec-fetch-site", "same-site").form(&new(&link));
    assert_eq!(forged.send().await.expect("post").status(), StatusCode::FORBIDDEN, "another site's form");
    let other = with_cookie(Method::POST, "/reset").form(&new("another-links-binding"));
    assert_eq!(other.send().await.expect("post").status(), StatusCode::CONFLICT, "a form for another link");
    let bare = app.client.post(format!("{}/reset", app.base)).form(&new(&link)).send().await.expect("post");
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST, "no cookie");
    assert_eq!(login(&app, NEW_PASSWORD, None).await.status(), StatusCode::UNAUTHORIZED, "none of them set it");
    let set = with_cookie(Method::POST, "/reset").header("sec-fetch-site", "same-origin").form(&new(&link));
    let set = set.send().await.expect("post");
    assert_eq!(set.status(), StatusCode::OK);
    let cleared = set.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cleared.starts_with("regain_reset=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(login(&app, NEW_PASSWORD, None).await.status(), StatusCode::OK, "set through the cookie");
    // Spent: the page with the old cookie and the link are gone; the page with no cookie says
    // to open the link again.
    assert_eq!(with_cookie(Method::GET, "/reset").send().await.expect("get").status(), StatusCode::GONE);
    assert_eq!(app.open_reset_link(&token).await.status(), StatusCode::GONE);
    let bare = app.client.get(format!("{}/reset", app.base)).send().await.expect("get");
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST);
    assert!(bare.text().await.expect("html").contains("open the link from your message again"));
}

/// The loop: a locked-out customer → case → identified → verified → risk → reset link
/// over the outbox → new password set → sign-in with it; the old password and sessions fail.
async fn a_password_reset_runs_the_whole_loop(app: &TestApp) {
    let d = desk(app).await;
    let old_session = app.customer_session("jane", "an initial password").await;
    let id = d.decided(app, "password_reset").await;
    let token = reset_link(app, &d, &id).await;

    let case = d.case(app, &id).await;
    assert_eq!(case["state"], "executing", "waits for the customer: {case}");
    assert_eq!(case["actions"][0]["state"], "done", "{case}");
    let types = d.timeline_types(app, &id).await;
    for t in ["case.risk_assessed", "case.action_queued", "case.action_link_sent"] {
        assert!(types.contains(&t.to_owned()), "{t}: {types:?}");
    }

    // Opening the page changes nothing and signs nobody in.
    let page = app.open_reset_link(&token).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("autocomplete=\"new-password\"") && html.contains("<label for=\"password\""), "{html}");

    // P5: a rule broken says which, and changes nothing.
    for (password, confirm, says) in [
        ("password1234", "password1234", "most common"),
        ("example-rocks-gravel-2026", "example-rocks-gravel-2026", "email address"),
        ("short", "short", "at least 12"),
        (NEW_PASSWORD, "umbrella-gravel-tuesday-91", "differ"),
    ] {
        let (status, cookie, html) =
            form(app, &format!("/reset/{token}"), &[("password", password), ("confirm", confirm)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{password}");
        assert!(!cookie);
        assert!(html.contains(says) && html.contains("role=\"alert\""), "{password}: {html}");
        assert!(!html.contains(password), "the password is never echoed back");
    }
    let still_old = login(app, "an initial password", None).await;
    assert_eq!(still_old.status(), StatusCode::OK, "nothing changed yet");
    let second_session = still_old.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();

    // P1: the new password is set, and no session comes with it.
    let (status, cookie, html) =
        form(app, &format!("/reset/{token}"), &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!cookie, "P1: no automatic login");
    assert!(html.contains("Sign in with your new password"), "{html}");
    let case = d.case(app, &id).await;
    assert_eq!(case["state"], "resolved", "{case}");
    assert!(d.timeline_types(app, &id).await.contains(&"case.action_performed".to_owned()));

    // P2: every earlier session ends; the old password fails, the new one works.
    for session in [&old_session, &second_session] {
        let me = app.get(session, "/api/v1/directory/acme/me").await;
        expect_problem(me, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(login(app, "an initial password", None).await.status(), StatusCode::UNAUTHORIZED);
    let fresh = login(app, NEW_PASSWORD, None).await;
    assert_eq!(fresh.status(), StatusCode::OK);
    let fresh = fresh.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();
    assert_eq!(app.get_ok(&fresh, "/api/v1/directory/acme/me").await["username"], "jane");

    // W1: Argon2id at the floor or above, a unique salt.
    let tenant = app.state.store.tenant_by_slug("acme").await.expect("tenant").expect("acme");
    let account = app.state.store.directory_account(tenant.id, "jane").await.expect("read").expect("jane");
    let phc = account.password_hash.expect("a password");
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");

    // A used link is gone, on the page and the form.
    let again = app.open_reset_link(&token).await;
    assert_eq!(again.status(), StatusCode::GONE);
    let (status, _, _) = form(
        app,
        &format!("/reset/{token}"),
        &[("password", "another fine pass 77"), ("confirm", "another fine pass 77")],
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(login(app, NEW_PASSWORD, None).await.status(), StatusCode::OK, "the reused link changed nothing");

    // P3, P4: every registered address hears of it, with a "this wasn't me" link; no message
    // anywhere holds the password.
    let notices = app.deliver_new().await;
    let to: Vec<_> = notices.iter().map(|m| m.to.clone()).collect();
    assert_eq!(
        to,
        [
            regain_delivery::Address::Email("jane@example.com".into()),
            regain_delivery::Address::Sms("+12015550123".into())
        ],
        "{notices:?}"
    );
    for notice in &notices {
        assert!(
            notice.body.contains("Your password was changed") && notice.body.contains("/report/"),
            "{}",
            notice.body
        );
    }
    for message in app.sent() {
        assert!(
            !message.body.contains(NEW_PASSWORD) && !message.subject.contains(NEW_PASSWORD),
            "P4: {}",
            message.body
        );
    }
    let _ = &d.customer_id;
}

#[tokio::test]
async fn a_password_reset_runs_the_whole_loop_on_sqlite() {
    a_password_reset_runs_the_whole_loop(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn a_password_reset_runs_the_whole_loop_on_postgres() {
    a_password_reset_runs_the_whole_loop(&TestApp::postgres().await).await;
}

/// SECURITY.md P3 against P1/E4: an address the tenant registered but nobody confirmed hears
/// of the recovery like the others (it may be the customer's one address an impostor does not
/// hold), while the reset link itself goes only to a verified one.
#[tokio::test]
async fn a_notice_reaches_an_unverified_address_and_a_secret_does_not() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let mut jane = customer_json("jane");
    // The unverified address first: a secret sent to "the first email" would reach it.
    jane["emails"] = json!([
        {"address": "jane.home@example.net", "verified": false, "added_at": LONG_AGO},
        {"address": "jane@example.com", "verified": true, "added_at": LONG_AGO},
    ]);
    let customer = app.post_ok(&key, "/api/v1/customers", jane, StatusCode::CREATED).await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    let d = Desk { key, agent, customer_id: customer["id"].as_str().expect("id").to_owned() };
    let id = d.decided_with(&app, "password_reset", &["email-1"]).await;
    // One link, to the verified email only (asserted inside).
    let token = reset_link(&app, &d, &id).await;
    let (status, _, html) =
        form(&app, &format!("/reset/{token}"), &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    let notices = app.deliver_new().await;
    let mut to: Vec<_> = notices.iter().map(|m| m.to.clone()).collect();
    to.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(
        to,
        [
            regain_delivery::Address::Email("jane.home@example.net".into()),
            regain_delivery::Address::Email("jane@example.com".into()),
            regain_delivery::Address::Sms("+12015550123".into()),
        ],
        "{notices:?}"
    );
    let reports: std::collections::HashSet<_> = notices.iter().map(|m| link_token(&m.body, "report")).collect();
    assert_eq!(reports.len(), 3, "each address has its own \"this wasn't me\" link");
    for notice in &notices {
        assert!(notice.body.contains("Your password was changed") && !notice.body.contains(NEW_PASSWORD));
    }
    // A report from the unverified address says so, for the security team to weigh.
    let home = notices.iter().find(|m| m.to == regain_delivery::Address::Email("jane.home@example.net".into()));
    let report = link_token(&home.expect("the unverified address's notice").body, "report");
    let (status, _, _) = form(&app, &format!("/report/{report}"), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::OK);
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let cases = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    let security = cases["items"][0]["id"].as_str().expect("a security case").to_owned();
    let case = app.get_ok(&analyst, &format!("/api/v1/cases/{security}")).await;
    assert!(case["summary"].as_str().is_some_and(|s| s.contains("(unverified)")), "{case}");
}

/// P6: a customer with an authenticator app still needs its code after a reset; and a link
/// past its hour is gone.
#[tokio::test]
async fn a_reset_never_bypasses_the_second_factor_and_links_expire() {
    use regain_core::totp::{decode_secret, totp, TotpParams};

    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let me = app.customer_session("jane", "an initial password").await;
    let enrollment = app.post_ok(&me, "/api/v1/directory/acme/me/totp", json!({}), StatusCode::OK).await;
    let secret = decode_secret(enrollment["secret"].as_str().expect("secret")).expect("base32");
    let code = |app: &TestApp| totp(&secret, regain_core::Clock::now(app.clock.as_ref()), &TotpParams::default());
    let confirmed = app.post(&me, "/api/v1/directory/acme/me/totp/confirm", json!({"code": code(&app)})).await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    app.deliver().await;

    // From now on, the password alone does not sign in.
    app.clock.advance(Duration::seconds(30));
    let alone = login(&app, "an initial password", None).await;
    expect_problem(alone, StatusCode::UNAUTHORIZED, "second-factor-required").await;
    assert_eq!(login(&app, "an initial password", Some("000000")).await.status(), StatusCode::UNAUTHORIZED);

    // An hour and a minute after it was sent, the link is gone and nothing changes.
    let id = d.decided(&app, "password_reset").await;
    let token = reset_link(&app, &d, &id).await;
    app.clock.advance(Duration::minutes(61));
    let page = app.open_reset_link(&token).await;
    assert_eq!(page.status(), StatusCode::GONE);
    let (status, _, _) =
        form(&app, &format!("/reset/{token}"), &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(status, StatusCode::GONE);

    // The agent has Regain send a new link (the old one stays dead); used in time, the new
    // password still needs the code.
    let d = Desk { agent: d.key.clone(), ..d };
    let again = app.post_ok(&d.agent, &path(&id, "retry-action"), json!({}), StatusCode::OK).await;
    assert_eq!(again["actions"].as_array().map(Vec::len), Some(2), "{again}");
    expect_problem(
        app.post(&d.agent, &path(&id, "retry-action"), json!({})).await,
        StatusCode::CONFLICT,
        "action-pending",
    )
    .await;
    assert_eq!(app.perform_actions().await, 1);
    let before = app.sent().len();
    app.deliver().await;
    let fresh = app.sent().into_iter().skip(before).find(|m| m.body.contains("/reset/")).expect("a new link");
    let token = link_token(&fresh.body, "reset");
    let old = app
        .client
        .get(format!(
            "{}/reset/{}",
            app.base,
            link_token(
                &app.sent()[..before].iter().rev().find(|m| m.body.contains("/reset/")).expect("old").body,
                "reset"
            )
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(old.status(), StatusCode::GONE);
    let (status, cookie, _) =
        form(&app, &format!("/reset/{token}"), &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!((status, cookie), (StatusCode::OK, false));
    let alone = login(&app, NEW_PASSWORD, None).await;
    expect_problem(alone, StatusCode::UNAUTHORIZED, "second-factor-required").await;
    app.clock.advance(Duration::seconds(30));
    let with_code = login(&app, NEW_PASSWORD, Some(&code(&app))).await;
    assert_eq!(with_code.status(), StatusCode::OK);
    // The same step again is a replay.
    assert_eq!(login(&app, NEW_PASSWORD, Some(&code(&app))).await.status(), StatusCode::UNAUTHORIZED);
}

/// Unlock and the username reminder finish on their own: the case resolves when the worker has
/// done it, and every registered address hears of it.
#[tokio::test]
async fn an_unlock_and_a_username_reminder_complete_by_themselves() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    for _ in 0..10 {
        assert_eq!(login(&app, "not the password at all", None).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::UNAUTHORIZED, "locked");

    let id = d.decided(&app, "account_unlock").await;
    app.post_ok(&d.agent, &path(&id, "execute"), json!({}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let case = d.case(&app, &id).await;
    assert_eq!(case["state"], "resolved", "{case}");
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::OK, "unlocked");
    let notices = app.deliver_new().await;
    assert_eq!(notices.len(), 2, "email and phone");
    assert!(notices.iter().all(|m| m.body.contains("Your account was unlocked")));

    let id = d.decided(&app, "username_recovery").await;
    app.post_ok(&d.agent, &path(&id, "execute"), json!({}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(d.case(&app, &id).await["state"], "resolved");
    let sent = app.deliver_new().await;
    let reminder: Vec<_> = sent.iter().filter(|m| m.subject == "Your acme Inc. username").collect();
    assert_eq!(reminder.len(), 1, "{sent:?}");
    assert_eq!(reminder[0].to, regain_delivery::Address::Email("jane@example.com".into()));
    assert!(reminder[0].body.contains("\n    jane\n"), "{}", reminder[0].body);
    // G2: what the agent sees of the case never holds the username itself.
    let view = d.case(&app, &id).await.to_string() + &app.get_ok(&d.agent, &path(&id, "timeline")).await.to_string();
    assert!(!view.contains("\"jane\""), "{view}");
}

/// An action that cannot be done says so on the case and stays failed; the case waits for staff.
#[tokio::test]
async fn an_action_that_cannot_be_done_fails_on_the_case() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.decided(&app, "account_unlock").await;
    let disabled = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{}", d.customer_id),
            Some(&d.key),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    app.post_ok(&d.agent, &path(&id, "execute"), json!({}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(app.perform_actions().await, 0, "not retried: it cannot work");
    let case = d.case(&app, &id).await;
    assert_eq!(case["state"], "executing");
    assert_eq!(case["actions"][0]["state"], "failed", "{case}");
    assert!(case["actions"][0]["last_error"].as_str().unwrap_or("").contains("disabled"), "{case}");
    assert!(d.timeline_types(&app, &id).await.contains(&"case.action_failed".to_owned()));
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::UNAUTHORIZED, "still disabled");
}

/// "This wasn't me" from a notice: every session ends and the security team gets a case.
#[tokio::test]
async fn this_wasnt_me_from_a_notice_opens_a_security_case() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.decided(&app, "password_reset").await;
    let token = reset_link(&app, &d, &id).await;
    let (status, _, _) =
        form(&app, &format!("/reset/{token}"), &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(status, StatusCode::OK);
    let session = app.customer_session("jane", NEW_PASSWORD).await;
    let sms = app
        .deliver_new()
        .await
        .into_iter()
        .find(|m| matches!(m.to, regain_delivery::Address::Sms(_)))
        .expect("the phone's notice");
    let report = link_token(&sms.body, "report");

    // Opening the page changes nothing.
    let page = app.open_link("report", &report).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(app.get_ok(&session, "/api/v1/directory/acme/me").await["username"], "jane");
    // A report link does not open the reset page, nor a reset link the report page.
    let wrong = app.client.get(format!("{}/reset/{report}", app.base)).send().await.expect("get");
    assert_eq!(wrong.status(), StatusCode::GONE);
    let (status, _, _) = form(&app, &format!("/report/{token}"), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::GONE);

    let (status, _, html) = form(&app, &format!("/report/{report}"), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    expect_problem(app.get(&session, "/api/v1/directory/acme/me").await, StatusCode::UNAUTHORIZED, "unauthenticated")
        .await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let supervisor = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let cases = app.get_ok(&supervisor, "/api/v1/cases?kind=compromised_account").await;
    let items = cases["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{cases}");
    assert_eq!(items[0]["tier"], 3);
    assert_eq!(items[0]["customer_id"], d.customer_id.as_str());
    assert_eq!(items[0]["state"], "verifying");
    // Once.
    let (status, _, _) = form(&app, &format!("/report/{report}"), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(
        app.get_ok(&supervisor, "/api/v1/cases?kind=compromised_account").await["items"].as_array().map(Vec::len),
        Some(1)
    );
}

/// SECURITY.md P3 for a factor change no case stands behind: a new authenticator set up by
/// whoever has the password is told to every registered address with a "this wasn't me" link;
/// reporting it ends every session and opens a compromised-account case for the security team.
#[tokio::test]
async fn this_wasnt_me_from_a_new_sign_in_method_notice_opens_a_security_case() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    // A tenant wording saved before notices had to carry the link: the built-in one is used.
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let old = regain_store::StoredTemplate {
        name: "factor_added".into(),
        channel: "sms".into(),
        subject: String::new(),
        body: "{{tenant}}: {{factor}} added on {{when}}".into(),
        updated_at: regain_core::Clock::now(app.clock.as_ref()),
    };
    let audit =
        regain_store::AuditRecord::new(Some(acme.id), regain_core::Actor::System, "template.updated", old.updated_at);
    app.state.store.set_message_template(acme.id, &old, &audit).await.expect("an old template");
    // The tenant's admin sees it is not used, and why.
    let admin = app.token(Some(&acme), Role::TenantAdmin).await;
    let list = app.get_ok(&admin, "/api/v1/templates").await;
    let stale = list.as_array().expect("list").iter().find(|t| t["name"] == "factor_added" && t["channel"] == "sms");
    let stale = stale.expect("listed");
    assert_eq!((stale["custom"].as_bool(), stale["in_use"].as_bool()), (Some(true), Some(false)), "{stale}");
    assert!(stale["problem"].as_str().is_some_and(|p| p.contains("{{report_link}}")), "{stale}");
    let me = app.customer_session("jane", "an initial password").await;
    let secret = enroll_authenticator(&app, &me).await;
    let notices = app.deliver_new().await;
    assert_eq!(notices.len(), 2, "the email and the phone: {notices:?}");
    let reports: std::collections::HashSet<_> = notices.iter().map(|m| link_token(&m.body, "report")).collect();
    assert_eq!(reports.len(), 2, "a link of its own each: {notices:?}");
    for notice in &notices {
        assert!(notice.body.contains("An authenticator app was set up"), "{}", notice.body);
        assert!(!notice.body.contains(&secret), "P4: never the secret");
    }
    let email = notices.iter().find(|m| matches!(m.to, regain_delivery::Address::Email(_))).expect("email");
    let report = link_token(&email.body, "report");
    let page = app.open_link("report", &report).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("If you did not set up this sign-in method yourself"), "{html}");

    // Reported from the page, its token in the cookie (T10): the cookie goes with the link.
    let submit = app.client.post(format!("{}/report", app.base)).header("cookie", format!("regain_report={report}"));
    let submitted = submit.form(&[("decision", "report"), ("link", &TestApp::form_link(&html))]).send().await;
    let submitted = submitted.expect("post");
    assert_eq!(submitted.status(), StatusCode::OK);
    let cleared = submitted.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cleared.starts_with("regain_report=;") && cleared.contains("Max-Age=0"), "{cleared}");
    expect_problem(app.get(&me, "/api/v1/directory/acme/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let cases = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    let items = cases["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{cases}");
    assert_eq!((items[0]["tier"].as_u64(), items[0]["customer_id"].as_str()), (Some(3), Some(d.customer_id.as_str())));
    let case = app.get_ok(&analyst, &format!("/api/v1/cases/{}", items[0]["id"].as_str().expect("id"))).await;
    assert!(case.to_string().contains("a new sign-in method"), "the summary says what was reported: {case}");
    // Once.
    let (status, _, _) = form(&app, &format!("/report/{report}"), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::GONE);
    // The phone's report of the same change goes to the same security case, as a note.
    let sms = notices.iter().find(|m| matches!(m.to, regain_delivery::Address::Sms(_))).expect("sms");
    let (status, _, _) =
        form(&app, &format!("/report/{}", link_token(&sms.body, "report")), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::OK);
    let cases = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    assert_eq!(cases["items"].as_array().map(Vec::len), Some(1), "one case for one incident: {cases}");
    let timeline =
        app.get_ok(&analyst, &format!("/api/v1/cases/{}/timeline", items[0]["id"].as_str().expect("id"))).await;
    let notes: Vec<_> =
        timeline["items"].as_array().expect("items").iter().filter(|e| e["type"] == "case.note_added").collect();
    assert_eq!(notes.len(), 1, "{timeline}");
    assert!(notes[0].to_string().contains("*** ending 23"), "the second address is named: {}", notes[0]);
}

/// Two addresses' reports of one new sign-in method, submitted at the same moment, open one
/// security case, the other report a note on it: the case is looked for again inside the
/// transaction that opens one (`Effect::RequireNoOpenCase`), not only read before.
#[tokio::test]
async fn reports_at_the_same_moment_open_one_security_case() {
    reports_at_the_same_moment(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn reports_at_the_same_moment_open_one_security_case_on_postgres() {
    reports_at_the_same_moment(&TestApp::postgres().await).await;
}

async fn reports_at_the_same_moment(app: &TestApp) {
    desk(app).await;
    let me = app.customer_session("jane", "an initial password").await;
    enroll_authenticator(app, &me).await;
    let links: Vec<String> =
        app.deliver_new().await.iter().map(|m| format!("/report/{}", link_token(&m.body, "report"))).collect();
    assert_eq!(links.len(), 2, "the email's and the phone's");
    let report = [("decision", "report")];
    let (first, second) = tokio::join!(form(app, &links[0], &report), form(app, &links[1], &report));
    assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK), "both taken: {first:?} {second:?}");
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let cases = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    let items = cases["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one case for one incident: {cases}");
    let timeline =
        app.get_ok(&analyst, &format!("/api/v1/cases/{}/timeline", items[0]["id"].as_str().expect("id"))).await;
    let notes = timeline["items"].as_array().expect("items").iter().filter(|e| e["type"] == "case.note_added").count();
    assert_eq!(notes, 1, "the other report, as a note: {timeline}");
}

/// The customer's pages in a real browser (Debian's chromium, driven by playwright-core; see
/// `tests/browser/pages.cjs`): the reset page reached by keyboard and labels, a short password
/// stopped by the browser, a common one refused with its reason announced and not echoed, the
/// new one set with no session; then "this wasn't me" from the notice. Every page passes
/// axe-core's WCAG 2.1 AA rules.
#[tokio::test]
async fn the_reset_and_report_pages_work_in_a_real_browser() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.decided(&app, "password_reset").await;
    let token = reset_link(&app, &d, &id).await;
    crate::support::in_browser(&["reset", &app.base, &token, NEW_PASSWORD]).await;
    assert_eq!(d.case(&app, &id).await["state"], "resolved");
    assert_eq!(login(&app, NEW_PASSWORD, None).await.status(), StatusCode::OK, "set through the browser");

    let notice = app.deliver_new().await.into_iter().find(|m| m.body.contains("/report/")).expect("a notice");
    crate::support::in_browser(&["report", &app.base, &link_token(&notice.body, "report")]).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let cases = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    assert_eq!(cases["items"].as_array().map(Vec::len), Some(1), "{cases}");
}

/// The MFA reset's re-enrollment page in a real browser: Start shows the QR code and the key,
/// a wrong code is refused and announced, the code the key gives turns two-step sign-in on.
#[tokio::test]
async fn the_enroll_page_works_in_a_real_browser() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.decided_with(&app, "mfa_recovery", &["email-0", "phone-0"]).await;
    app.post_ok(&d.agent, &path(&id, "request-approval"), json!({"reason": "lost phone"}), StatusCode::OK).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let supervisor = app.token(Some(&acme), Role::Supervisor).await;
    app.post_ok(&supervisor, &path(&id, "approve"), json!({"reason": "evidence checked"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let link = app.deliver_new().await.into_iter().find(|m| m.body.contains("/enroll/")).expect("a re-enrollment link");
    let now = regain_core::Clock::now(app.clock.as_ref()).timestamp().to_string();
    crate::support::in_browser(&["enroll", &app.base, &link_token(&link.body, "enroll"), &now]).await;
    assert_eq!(d.case(&app, &id).await["customer"]["totp_enrolled"], true);
}

/// Bad input on the pages: unknown tokens, a password past the limit, a form without fields.
#[tokio::test]
async fn the_pages_refuse_bad_input_plainly() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    for page in ["/reset/nope", "/report/nope", "/reset/", "/reset/%00"] {
        let response = app.client.get(format!("{}{page}", app.base)).send().await.expect("get");
        assert!(matches!(response.status(), StatusCode::GONE | StatusCode::NOT_FOUND), "{page}: {}", response.status());
    }
    let id = d.decided(&app, "password_reset").await;
    let token = reset_link(&app, &d, &id).await;
    let long = "umbrella gravel tuesday ".repeat(6);
    let (status, _, html) = form(&app, &format!("/reset/{token}"), &[("password", &long), ("confirm", &long)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("at most 128"), "{html}");
    let missing =
        app.client.post(format!("{}/reset/{token}", app.base)).form(&[("password", "x")]).send().await.expect("post");
    assert!(missing.status().is_client_error(), "{}", missing.status());
    // G1: no agent endpoint takes a password: execute has no body, and the case holds none.
    let case = d.case(&app, &id).await;
    assert!(!case.to_string().contains("password\":"), "{case}");
    assert_eq!(app.get(&token, "/reset/whatever").await.status(), StatusCode::GONE);
}

/// The MFA reset: after four eyes, the authenticator and the recovery codes are gone, every
/// session ends, a re-enrollment link goes out, and the page sets up a new authenticator.
#[tokio::test]
async fn an_mfa_reset_removes_the_factors_and_the_link_sets_up_a_new_one() {
    use regain_core::totp::{decode_secret, totp, TotpParams};

    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let me = app.customer_session("jane", "an initial password").await;
    let enrollment = app.post_ok(&me, "/api/v1/directory/acme/me/totp", json!({}), StatusCode::OK).await;
    let secret = decode_secret(enrollment["secret"].as_str().expect("secret")).expect("base32");
    let now_code = |app: &TestApp, secret: &[u8]| {
        totp(secret, regain_core::Clock::now(app.clock.as_ref()), &TotpParams::default())
    };
    let confirmed =
        app.post(&me, "/api/v1/directory/acme/me/totp/confirm", json!({"code": now_code(&app, &secret)})).await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    app.post_ok(&me, "/api/v1/directory/acme/me/recovery-codes", json!({}), StatusCode::OK).await;
    // Another set at once is refused: each one is told to every address (T9: no flood).
    let again = app.post(&me, "/api/v1/directory/acme/me/recovery-codes", json!({})).await;
    assert_eq!(again.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("600"), "on a fixed clock");
    expect_problem(again, StatusCode::TOO_MANY_REQUESTS, "too-soon").await;
    app.deliver().await;
    // P3: each new sign-in method is told to every registered address, the phone included.
    let told: Vec<_> = app.sent().into_iter().filter(|m| m.body.contains("was set up on your")).map(|m| m.to).collect();
    assert_eq!(told.len(), 4, "an authenticator and new recovery codes, each to the email and the phone: {told:?}");
    assert!(told.contains(&regain_delivery::Address::Sms("+12015550123".into())), "{told:?}");
    // A week and a day on, the factors are not new any more (a new one raises the risk); the
    // agent's session has idled out, so the integration carries on.
    app.clock.advance(Duration::days(8));
    let d = Desk { agent: d.key.clone(), ..d };
    let session = login(&app, "an initial password", Some(&now_code(&app, &secret))).await;
    let session = session.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();

    // Two proofs by different methods (M1), then a supervisor's approval (G3).
    let id = d.decided_with(&app, "mfa_recovery", &["email-0", "phone-0"]).await;
    expect_problem(
        app.post(&d.agent, &path(&id, "execute"), json!({})).await,
        StatusCode::CONFLICT,
        "approval-required",
    )
    .await;
    app.post_ok(&d.agent, &path(&id, "request-approval"), json!({"reason": "lost phone"}), StatusCode::OK).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let supervisor = app.token(Some(&acme), Role::Supervisor).await;
    let approved =
        app.post_ok(&supervisor, &path(&id, "approve"), json!({"reason": "evidence checked"}), StatusCode::OK).await;
    assert_eq!(approved["actions"][0]["action"], "mfa_reset", "{approved}");
    assert_eq!(app.perform_actions().await, 1);
    let case = d.case(&app, &id).await;
    assert_eq!(case["state"], "resolved", "{case}");
    assert_eq!(case["customer"]["totp_enrolled"], false, "{case}");
    assert_eq!(case["customer"]["recovery_codes_remaining"], 0, "{case}");

    // P2: the session made with the old factor ends; the password alone signs in meanwhile.
    expect_problem(app.get(&session, "/api/v1/directory/acme/me").await, StatusCode::UNAUTHORIZED, "unauthenticated")
        .await;
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::OK);
    let before = app.sent().len();
    app.deliver().await;
    let sent: Vec<_> = app.sent().into_iter().skip(before).collect();
    let reenroll: Vec<_> = sent.iter().filter(|m| m.body.contains("/enroll/")).collect();
    assert_eq!(reenroll.len(), 1, "{sent:?}");
    assert_eq!(reenroll[0].to, regain_delivery::Address::Email("jane@example.com".into()));
    assert_eq!(
        sent.iter().filter(|m| m.body.contains("Your two-step sign-in was reset")).count(),
        2,
        "email and phone told"
    );
    let token = link_token(&reenroll[0].body, "enroll");

    // The page: opening it changes nothing; Start shows the key and the QR code; a wrong code
    // is refused; the right one turns two-step sign-in on again.
    let page = app.open_link("enroll", &token).await;
    assert_eq!(page.status(), StatusCode::OK);
    let link = TestApp::form_link(&page.text().await.expect("html"));
    let (status, _, html) = form(&app, &format!("/enroll/{token}"), &[("step", "start")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<svg"), "a QR code");
    let key = html.split("<code>").nth(1).and_then(|r| r.split("</code>").next()).expect("the key");
    let new_secret = decode_secret(key).expect("base32");
    let (status, _, html) = form(&app, &format!("/enroll/{token}"), &[("step", "confirm"), ("code", "000000")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("role=\"alert\""));
    app.clock.advance(Duration::seconds(30));
    let code = now_code(&app, &new_secret);
    let (status, _, html) = form(&app, &format!("/enroll/{token}"), &[("step", "confirm"), ("code", &code)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    expect_problem(login(&app, "an initial password", None).await, StatusCode::UNAUTHORIZED, "second-factor-required")
        .await;
    let (status, _, _) = form(&app, &format!("/enroll/{token}"), &[("step", "start")]).await;
    assert_eq!(status, StatusCode::GONE, "the link works once");
    let with_cookie =
        app.client.post(format!("{}/enroll", app.base)).header("cookie", format!("regain_enroll={token}"));
    let spent = with_cookie.form(&[("step", "start"), ("link", &link)]).send().await.expect("post");
    assert_eq!(spent.status(), StatusCode::GONE, "also from the page's cookie (T10)");
    let cleared = spent.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cleared.starts_with("regain_enroll=;") && cleared.contains("Max-Age=0"), "{cleared}");
    // The old app's codes do not work any more.
    app.clock.advance(Duration::seconds(30));
    assert_eq!(
        login(&app, "an initial password", Some(&now_code(&app, &secret))).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&app, "an initial password", Some(&now_code(&app, &new_secret))).await.status(), StatusCode::OK);
}

/// The lockdown (L0): after four eyes at the security tier, every session ends, the recovery
/// codes are void and the record is frozen; no other recovery for the customer proceeds.
/// And a recovery cooling off holds the customer's others (G5).
#[tokio::test]
async fn a_lockdown_freezes_the_account_and_holds_every_other_recovery() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let me = app.customer_session("jane", "an initial password").await;
    let codes = app.post_ok(&me, "/api/v1/directory/acme/me/recovery-codes", json!({}), StatusCode::OK).await;
    let code = codes["codes"][0].as_str().expect("a code").to_owned();
    app.deliver().await;
    // A week and a day on the codes count; the integration works the cases (staff sessions idle out).
    app.clock.advance(Duration::days(8));
    let d = Desk { agent: d.key.clone(), ..d };
    let me = app.customer_session("jane", "an initial password").await;

    // A reset link is out, not used yet.
    let pending_reset = d.decided(&app, "password_reset").await;
    let pending_link = reset_link(&app, &d, &pending_reset).await;

    // A contact change is carried out by Regain and cools off for a day: the customer's
    // other recoveries wait.
    let change = d.decided(&app, "contact_change").await;
    app.post_ok(&d.agent, &path(&change, "contact-change"), json!({"phone": "+1 201 555 0188"}), StatusCode::CREATED)
        .await;
    app.deliver().await;
    let new_code = crate::support::code_in(&app.sent().last().expect("the code to the new phone").body);
    app.post_ok(&d.agent, &path(&change, "contact-change/code"), json!({"code": new_code}), StatusCode::OK).await;
    app.post_ok(&d.agent, &path(&change, "request-approval"), json!({"reason": "new phone"}), StatusCode::OK).await;
    let supervisor = app.token(Some(&acme), Role::Supervisor).await;
    let approved = app.post_ok(&supervisor, &path(&change, "approve"), json!({"reason": "ok"}), StatusCode::OK).await;
    assert_eq!(approved["actions"][0]["action"], "contact_change", "{approved}");
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(d.case(&app, &change).await["state"], "cooling_off");
    // Every current address is told, before anything changes (P3).
    let before = app.sent().len();
    app.deliver().await;
    let told = app
        .sent()
        .into_iter()
        .skip(before)
        .filter(|m| m.body.contains("A change of your contact details was requested"))
        .count();
    assert_eq!(told, 2, "email and phone");
    let reset = d.verified(&app, "password_reset", &["email-0"]).await;
    let held = app.post(&d.agent, &path(&reset, "decide"), json!({"approve": true, "reason": "code"})).await;
    let held = expect_problem(held, StatusCode::CONFLICT, "contact-change-pending").await;
    assert!(held["detail"].as_str().unwrap_or("").contains(&change), "{held}");

    // The security team locks the account down; two analysts, four eyes.
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let second = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let desk3 = Desk { key: d.key.clone(), agent: analyst.clone(), customer_id: d.customer_id.clone() };
    let id = desk3.verified(&app, "compromised_account", &["email-0", "phone-0"]).await;
    // The customer's many recoveries today raise the risk: one proof more, a saved code.
    app.post_ok(&analyst, &path(&id, "verification/recovery-code"), json!({"code": code}), StatusCode::OK).await;
    app.post_ok(&analyst, &path(&id, "decide"), json!({"approve": true, "reason": "three proofs"}), StatusCode::OK)
        .await;
    app.post_ok(&analyst, &path(&id, "request-approval"), json!({"reason": "takeover reported"}), StatusCode::OK).await;
    expect_problem(
        app.post(&analyst, &path(&id, "approve"), json!({"reason": "mine"})).await,
        StatusCode::CONFLICT,
        "self-approval",
    )
    .await;
    app.post_ok(&second, &path(&id, "approve"), json!({"reason": "evidence checked"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let case = desk3.case(&app, &id).await;
    assert_eq!(case["state"], "executing", "open for the review of recent changes: {case}");
    assert_eq!(case["customer"]["status"], "frozen", "{case}");
    assert_eq!(case["customer"]["recovery_codes_remaining"], 0, "{case}");
    expect_problem(app.get(&me, "/api/v1/directory/acme/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::UNAUTHORIZED, "frozen");

    // The reset link sent before the lockdown no longer works.
    let page = app.client.get(format!("{}/reset/{pending_link}", app.base)).send().await.expect("get");
    assert_eq!(page.status(), StatusCode::GONE);
    let (status, _, _) =
        form(&app, &format!("/reset/{pending_link}"), &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)]).await;
    assert_eq!(status, StatusCode::GONE);

    // Nothing else proceeds for the customer now, whoever asks.
    let unlock = d.verified(&app, "account_unlock", &["email-0"]).await;
    let refused = app.post(&d.agent, &path(&unlock, "decide"), json!({"approve": true, "reason": "code"})).await;
    expect_problem(refused, StatusCode::LOCKED, "locked-down").await;
    let thaw = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/customers/{}", d.customer_id),
            Some(&d.key),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(thaw.status(), StatusCode::CONFLICT, "only re-proofing thaws a frozen record");

    // The contact change that was cooling off is cancelled by the lockdown: when its time is
    // up the case ends without making it.
    let cancelled = app.get_ok(&d.key, &path(&change, "contact-change")).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    app.clock.advance(Duration::hours(49));
    assert_eq!(regain_server::sweeper::release_due(&app.state, &Default::default()).await.expect("sweep"), 1);
    let ended = app.get_ok(&d.key, &format!("/api/v1/cases/{change}")).await;
    assert_eq!(ended["state"], "resolved", "{ended}");
    let timeline = app.get_ok(&d.key, &path(&change, "timeline")).await.to_string();
    assert!(timeline.contains("it was not made"), "{timeline}");
    let customer_id = regain_core::CustomerId::parse("id", &d.customer_id).expect("id");
    let record = app.state.store.customer(acme.id, customer_id).await.expect("read").expect("customer");
    let phones: Vec<&str> = record.phones.iter().map(|p| p.number.as_str()).collect();
    assert_eq!(phones, ["+12015550123"], "the new phone never arrived");
}

/// A takeover undone (SECURITY.md L0, M4, G5): someone sets up an authenticator app and, with
/// a contact change that cooled off unrepudiated, puts their email in place of the customer's.
/// The lockdown's review lists both; the analyst rolls them back (the customer's email comes
/// back as it was); a second compromised-account case re-proofs the customer and lifts it.
#[tokio::test]
async fn a_lockdown_review_rolls_back_what_the_analyst_selects_and_reproofing_lifts_it() {
    use regain_core::totp::{decode_secret, totp, TotpParams};

    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let d = Desk { agent: d.key.clone(), ..d };
    let customer_id = regain_core::CustomerId::parse("id", &d.customer_id).expect("id");
    let emails = |app: &TestApp| {
        let store = app.state.store.clone();
        let tenant = acme.id;
        async move {
            let c = store.customer(tenant, customer_id).await.expect("read").expect("customer");
            c.emails.iter().map(|e| e.address.as_str().to_owned()).collect::<Vec<_>>()
        }
    };

    // The customer saved recovery codes long ago; now an intruder, signed in with the stolen
    // password, sets up their own authenticator app.
    let me = app.customer_session("jane", "an initial password").await;
    let codes = app.post_ok(&me, "/api/v1/directory/acme/me/recovery-codes", json!({}), StatusCode::OK).await;
    let saved = codes["codes"][0].as_str().expect("a code").to_owned();
    app.clock.advance(Duration::days(8));
    let supervisor = app.token(Some(&acme), Role::Supervisor).await;
    let me = app.customer_session("jane", "an initial password").await;
    let secret = decode_secret(&enroll_authenticator(&app, &me).await).expect("base32");

    // A contact change: refused before its new contact is proven; the code goes to the new
    // address only; a wrong one counts.
    let change = d.decided_with(&app, "contact_change", &["email-0", "phone-0"]).await;
    let early = app.post(&d.agent, &path(&change, "request-approval"), json!({"reason": "new email"})).await;
    expect_problem(early, StatusCode::CONFLICT, "contact-unconfirmed").await;
    let both = json!({"email": "x@example.net", "phone": "+12015550100"});
    expect_problem(
        app.post(&d.agent, &path(&change, "contact-change"), both).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let same = app.post(&d.agent, &path(&change, "contact-change"), json!({"email": "JANE@example.com"})).await;
    expect_problem(same, StatusCode::CONFLICT, "contact-exists").await;
    let proposed = app
        .post_ok(
            &d.agent,
            &path(&change, "contact-change"),
            json!({"email": "mallory@example.net"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(proposed["state"], "awaiting_code", "{proposed}");
    assert!(!proposed.to_string().contains("mallory@"), "masked: {proposed}");
    let before = app.sent().len();
    app.deliver().await;
    let sent: Vec<_> = app.sent().into_iter().skip(before).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, regain_delivery::Address::Email("mallory@example.net".into()));
    let right = crate::support::code_in(&sent[0].body);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let refused = app.post(&d.agent, &path(&change, "contact-change/code"), json!({"code": wrong})).await;
    expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "proof-rejected").await;
    let confirmed =
        app.post_ok(&d.agent, &path(&change, "contact-change/code"), json!({"code": right}), StatusCode::OK).await;
    assert_eq!(confirmed["state"], "confirmed", "{confirmed}");
    app.post_ok(&d.agent, &path(&change, "request-approval"), json!({"reason": "new email"}), StatusCode::OK).await;
    app.post_ok(&supervisor, &path(&change, "approve"), json!({"reason": "looks fine"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let cooling = d.case(&app, &change).await;
    assert_eq!(cooling["state"], "cooling_off", "{cooling}");
    assert_eq!(emails(&app).await, ["jane@example.com"], "nothing changes before the cooling-off ends");
    expect_problem(
        app.post(&supervisor, &path(&change, "release"), json!({})).await,
        StatusCode::CONFLICT,
        "cooling-off",
    )
    .await;

    // Its cooling-off over (a day, doubled at this medium risk) and nobody said "this wasn't
    // me": the sweeper releases it and it takes effect.
    assert!(cooling["cooling_off_until"].is_string(), "{cooling}");
    app.clock.advance(Duration::hours(47));
    assert_eq!(
        regain_server::sweeper::release_due(&app.state, &Default::default()).await.expect("sweep"),
        0,
        "not yet"
    );
    app.clock.advance(Duration::hours(2));
    assert_eq!(regain_server::sweeper::release_due(&app.state, &Default::default()).await.expect("sweep"), 1);
    assert_eq!(d.case(&app, &change).await["state"], "resolved");
    assert_eq!(emails(&app).await, ["mallory@example.net"]);
    assert!(d.timeline_types(&app, &change).await.contains(&"case.action_applied".to_owned()));
    let told: Vec<_> = app
        .deliver_new()
        .await
        .into_iter()
        .filter(|m| m.body.contains("Your contact details were changed"))
        .map(|m| m.to)
        .collect();
    assert!(told.contains(&regain_delivery::Address::Email("jane@example.com".into())), "the old address: {told:?}");

    // Days later the customer calls the security team: a lockdown, four eyes.
    app.clock.advance(Duration::days(6));
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let second = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let lock = Desk { key: d.key.clone(), agent: analyst.clone(), customer_id: d.customer_id.clone() };
    async fn approve_as(app: &TestApp, analyst: &str, second: &str, id: &str) {
        app.post_ok(analyst, &path(id, "decide"), json!({"approve": true, "reason": "proofs"}), StatusCode::OK).await;
        app.post_ok(analyst, &path(id, "request-approval"), json!({"reason": "takeover"}), StatusCode::OK).await;
        app.post_ok(second, &path(id, "approve"), json!({"reason": "checked"}), StatusCode::OK).await;
        assert_eq!(app.perform_actions().await, 1);
    }
    // The intruder's email is new: a proof sent there would not count. The phone and a saved
    // code do; at this risk one more is asked, and the only one left is the app (it is only
    // the mechanics under test here: an analyst would escalate to a document check).
    let id = lock.verified(&app, "compromised_account", &["phone-0"]).await;
    app.post_ok(&analyst, &path(&id, "verification/recovery-code"), json!({"code": saved}), StatusCode::OK).await;
    let app_code = totp(&secret, regain_core::Clock::now(app.clock.as_ref()), &TotpParams::default());
    app.post_ok(&analyst, &path(&id, "verification/totp"), json!({"code": app_code}), StatusCode::OK).await;
    approve_as(&app, &analyst, &second, &id).await;
    let locked = lock.case(&app, &id).await;
    assert_eq!((locked["state"].as_str(), locked["customer"]["status"].as_str()), (Some("executing"), Some("frozen")));
    // Its action again would not lift it: only a new case, opened after, re-proofs.
    expect_problem(
        app.post(&analyst, &path(&id, "retry-action"), json!({})).await,
        StatusCode::CONFLICT,
        "lockdown-done",
    )
    .await;

    // The review: the contact change and the authenticator app, masked.
    let review = app.get_ok(&analyst, &path(&id, "recent-changes")).await;
    let changes = review["changes"].as_array().expect("changes");
    let kinds: Vec<&str> = changes.iter().filter_map(|c| c["kind"].as_str()).collect();
    assert!(kinds.contains(&"contact_changed") && kinds.contains(&"totp_enrolled"), "{review}");
    assert!(!kinds.contains(&"contact_added"), "the change's contact is listed once: {review}");
    assert!(!review.to_string().contains("mallory@"), "masked: {review}");
    let ids: Vec<String> = changes
        .iter()
        .filter(|c| c["kind"] != "password_changed")
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    let agent = app.token(Some(&acme), Role::Agent).await;
    expect_problem(
        app.post(&agent, &path(&id, "rollback"), json!({"changes": ids})).await,
        StatusCode::CONFLICT,
        "beyond-tier",
    )
    .await;
    let bogus = app.post(&analyst, &path(&id, "rollback"), json!({"changes": ["email:9:1"]})).await;
    expect_problem(bogus, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    app.deliver().await;
    let before = app.sent().len();
    let rolled = app.post_ok(&analyst, &path(&id, "rollback"), json!({"changes": ids}), StatusCode::OK).await;
    assert_eq!(rolled["state"], "executing");
    assert_eq!(emails(&app).await, ["jane@example.com"], "the customer's email is back, the intruder's gone");
    assert_eq!(rolled["customer"]["totp_enrolled"], false, "{rolled}");
    let types = lock.timeline_types(&app, &id).await;
    assert_eq!(types.iter().filter(|t| *t == "case.action_rolled_back").count(), ids.len(), "{types:?}");
    app.deliver().await;
    let notified: Vec<_> = app.sent().into_iter().skip(before).map(|m| m.to).collect();
    assert!(!notified.contains(&regain_delivery::Address::Email("mallory@example.net".into())), "{notified:?}");
    assert!(notified.contains(&regain_delivery::Address::Email("jane@example.com".into())), "{notified:?}");
    let again = app.post(&analyst, &path(&id, "rollback"), json!({"changes": ids})).await;
    expect_problem(again, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    app.post_ok(&analyst, &path(&id, "complete"), json!({}), StatusCode::OK).await;
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::UNAUTHORIZED, "still frozen");

    // Re-proofing, days later: a second compromised-account case, verified afresh (the
    // customer's own email counts again: it is back as it was) and approved by a second
    // person, lifts the lockdown; the customer signs in again.
    app.clock.advance(Duration::days(3));
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let second = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let lock = Desk { agent: analyst.clone(), ..lock };
    let reproof = lock.verified(&app, "compromised_account", &["email-0", "phone-0"]).await;
    approve_as(&app, &analyst, &second, &reproof).await;
    let lifted = lock.case(&app, &reproof).await;
    assert_eq!(lifted["customer"]["status"], "active", "{lifted}");
    assert!(matches!(lifted["state"].as_str(), Some("resolved" | "cooling_off")), "{lifted}");
    assert_eq!(login(&app, "an initial password", None).await.status(), StatusCode::OK);
}

/// "This wasn't me" from an old address during a contact change's cooling-off (G5): the case is
/// cancelled and goes to the security tier, and the change is never made — not at release time,
/// not by the sweeper.
#[tokio::test]
async fn this_wasnt_me_from_an_old_address_stops_a_contact_change() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let d = Desk { agent: d.key.clone(), ..d };
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let change = d.decided(&app, "contact_change").await;
    app.post_ok(&d.agent, &path(&change, "contact-change"), json!({"email": "new@example.org"}), StatusCode::CREATED)
        .await;
    app.deliver().await;
    let code = crate::support::code_in(&app.sent().last().expect("the code").body);
    app.post_ok(&d.agent, &path(&change, "contact-change/code"), json!({"code": code}), StatusCode::OK).await;
    app.post_ok(&d.agent, &path(&change, "request-approval"), json!({"reason": "new email"}), StatusCode::OK).await;
    let supervisor = app.token(Some(&acme), Role::Supervisor).await;
    app.post_ok(&supervisor, &path(&change, "approve"), json!({"reason": "ok"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let before = app.sent().len();
    app.deliver().await;
    let notice = app
        .sent()
        .into_iter()
        .skip(before)
        .find(|m| m.to == regain_delivery::Address::Email("jane@example.com".into()))
        .expect("the old address is told");
    assert!(notice.body.contains("A change of your contact details was requested"), "{}", notice.body);
    assert!(!notice.body.contains("new@example.org"), "masked in the notice: {}", notice.body);

    let report = link_token(&notice.body, "report");
    let (status, _, html) = form(&app, &format!("/report/{report}"), &[("decision", "report")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let case = d.case(&app, &change).await;
    assert_eq!((case["state"].as_str(), case["tier"].as_u64()), (Some("cancelled"), Some(3)), "{case}");
    assert_eq!(app.get_ok(&d.agent, &path(&change, "contact-change")).await["state"], "cancelled");
    app.clock.advance(Duration::days(3));
    assert_eq!(regain_server::sweeper::release_due(&app.state, &Default::default()).await.expect("sweep"), 0);
    let customer_id = regain_core::CustomerId::parse("id", &d.customer_id).expect("id");
    let record = app.state.store.customer(acme.id, customer_id).await.expect("read").expect("customer");
    let emails: Vec<&str> = record.emails.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(emails, ["jane@example.com"]);
}

/// A compromised-account case verified before the lockdown does not lift it when approved
/// after (L0): its proofs may have gone to what the intruder set up. Only a case opened after
/// the lockdown re-proofs.
#[tokio::test]
async fn a_case_opened_before_the_lockdown_does_not_lift_it() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let second = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let lock = Desk { key: d.key.clone(), agent: analyst.clone(), customer_id: d.customer_id.clone() };
    let decide_and_ask = |id: String| {
        let (app, analyst) = (&app, analyst.clone());
        async move {
            app.post_ok(&analyst, &path(&id, "decide"), json!({"approve": true, "reason": "proofs"}), StatusCode::OK)
                .await;
            app.post_ok(&analyst, &path(&id, "request-approval"), json!({"reason": "takeover"}), StatusCode::OK).await;
        }
    };
    let first = lock.verified(&app, "compromised_account", &["email-0", "phone-0"]).await;
    let early = lock.verified(&app, "compromised_account", &["email-0", "phone-0"]).await;
    decide_and_ask(first.clone()).await;
    decide_and_ask(early.clone()).await;
    app.post_ok(&second, &path(&first, "approve"), json!({"reason": "checked"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(lock.case(&app, &first).await["customer"]["status"], "frozen");

    app.post_ok(&second, &path(&early, "approve"), json!({"reason": "checked"}), StatusCode::OK).await;
    assert_eq!(app.perform_actions().await, 1);
    let case = lock.case(&app, &early).await;
    assert_eq!(case["customer"]["status"], "frozen", "still locked down: {case}");
    assert_eq!(case["actions"][0]["state"], "failed", "{case}");
    let timeline = lock.timeline_types(&app, &early).await;
    assert!(timeline.contains(&"case.action_failed".to_owned()), "{timeline:?}");
}

/// SECURITY.md L0: a lockdown ends every recovery opened before it. A password reset decided
/// before the account was locked down (its proofs may have gone to what an intruder had set up)
/// does not go on once re-proofing has lifted the lockdown: a new case does.
#[tokio::test]
async fn a_recovery_opened_before_a_lockdown_does_not_resume_after_the_reproofing() {
    /// A compromised-account case verified, decided and approved by two analysts, its action
    /// performed; the customer's status after it.
    async fn lockdown_case(app: &TestApp, d: &Desk) -> (String, String) {
        let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
        let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
        let second = app.token(Some(&acme), Role::SecurityAnalyst).await;
        let lock = Desk { key: d.key.clone(), agent: analyst.clone(), customer_id: d.customer_id.clone() };
        let id = lock.verified(app, "compromised_account", &["email-0", "phone-0"]).await;
        app.post_ok(&analyst, &path(&id, "decide"), json!({"approve": true, "reason": "proofs"}), StatusCode::OK).await;
        app.post_ok(&analyst, &path(&id, "request-approval"), json!({"reason": "takeover"}), StatusCode::OK).await;
        app.post_ok(&second, &path(&id, "approve"), json!({"reason": "checked"}), StatusCode::OK).await;
        assert_eq!(app.perform_actions().await, 1);
        let case = lock.case(app, &id).await;
        let status = case["customer"]["status"].as_str().unwrap_or_default().to_owned();
        if status == "frozen" {
            app.post_ok(&analyst, &path(&id, "complete"), json!({}), StatusCode::OK).await;
        }
        (id, status)
    }
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let old = d.decided(&app, "password_reset").await;
    assert_eq!(lockdown_case(&app, &d).await.1, "frozen");
    app.clock.advance(Duration::days(2));
    assert_eq!(lockdown_case(&app, &d).await.1, "active", "re-proofed");

    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let d = Desk { agent: app.token(Some(&acme), Role::Agent).await, ..d };
    let refused = app.post(&d.agent, &path(&old, "execute"), json!({})).await;
    let problem = expect_problem(refused, StatusCode::CONFLICT, "opened-before-lockdown").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("open a new case")), "{problem}");
    let actions = d.case(&app, &old).await["actions"].clone();
    assert_eq!(actions, json!([]), "nothing queued");
    let new = d.decided(&app, "password_reset").await;
    app.post_ok(&d.agent, &path(&new, "execute"), json!({}), StatusCode::OK).await;
}
