//! Identity verification over the real API (issue 4): identification without disclosure, codes
//! and links to registered contact points, TOTP and recovery codes, knowledge as a signal only,
//! the policy's next step, and the failure limit across cases, channels and addresses.

use chrono::Duration;
use regain_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{code_in, customer_json, expect_problem, TestApp};

/// A tenant with a customer (Jane) and an agent: the case is open and identifying.
struct Desk {
    key: String,
    agent: String,
    customer: Value,
}

async fn desk(app: &TestApp) -> Desk {
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let customer = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    Desk { key, agent, customer }
}

impl Desk {
    async fn case(&self, app: &TestApp, kind: &str) -> String {
        let case = app
            .post_ok(&self.key, "/api/v1/cases", json!({"kind": kind, "channel": "phone"}), StatusCode::CREATED)
            .await;
        let id = case["id"].as_str().expect("id").to_owned();
        app.post_ok(&self.agent, &format!("/api/v1/cases/{id}/start-identification"), json!({}), StatusCode::OK).await;
        id
    }

    /// A case whose customer is identified: verifying.
    async fn identified(&self, app: &TestApp, kind: &str) -> String {
        let id = self.case(app, kind).await;
        let answer = app
            .post_ok(
                &self.agent,
                &format!("/api/v1/cases/{id}/identification"),
                json!({"full_name": "Doe Jane", "account_number": "AC-jane", "phone": "201 555 0123"}),
                StatusCode::OK,
            )
            .await;
        assert_eq!(answer["outcome"], "identified", "{answer}");
        id
    }
}

fn path(case: &str, rest: &str) -> String {
    format!("/api/v1/cases/{case}/{rest}")
}

async fn identification_then_a_code_verifies(app: &TestApp) {
    let d = desk(app).await;
    let id = d.case(app, "password_reset").await;

    // A claim with a wrong phone: match / no match per field, never a value; counted.
    let wrong = app
        .post_ok(
            &d.agent,
            &path(&id, "identification"),
            json!({"full_name": "Jane Doe", "email": "JANE@example.com", "phone": "+1 201 555 0199"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(wrong["outcome"], "no_match");
    assert_eq!(wrong["fields"], json!({"full_name": "match", "email": "match", "phone": "no_match"}));
    assert_eq!(wrong["case"]["state"], "identifying");
    // Re-asked (the script's "verify the details again"): identified.
    let right = app
        .post_ok(
            &d.agent,
            &path(&id, "identification"),
            json!({"full_name": "  jane  q. DOE ", "email": "Jane@Example.com", "phone": "(201) 555-0123"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(right["outcome"], "identified");
    assert_eq!(right["case"]["state"], "verifying");

    // SECURITY.md G2: the agent sees masked contact points and match / no match only.
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    let text = view.to_string() + &wrong.to_string() + &right.to_string();
    for secret in ["jane@example.com", "+12015550123", "2015550123", "Jane Q. Doe", "AC-jane"] {
        assert!(!text.contains(secret), "agent view leaks {secret}: {text}");
    }
    assert_eq!(view["contact_points"][0]["masked"], "j***@e***.com");
    assert_eq!(view["contact_points"][1]["masked"], "*** ending 23");
    assert_eq!(view["assessment"]["satisfied"], false);
    assert_eq!(view["failures"]["count"], 1, "the mismatch counted: {view}");
    let next = view["assessment"]["next_step"].as_str().unwrap_or("");
    assert!(next.contains("email") && next.contains("sms"), "{next}");

    // Deciding before a proof is refused, with the next step.
    let refused = expect_problem(
        app.post(&d.agent, &path(&id, "decide"), json!({"approve": true, "reason": "sounds right"})).await,
        StatusCode::CONFLICT,
        "verification-incomplete",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap_or("").contains("still needed"), "{refused}");

    // A code to the registered email, read from the delivered message.
    let proof = app.verify_by_code(&d.agent, &id, "email-0").await;
    assert_eq!(proof["result"], "passed");
    assert_eq!(proof["destination"], "j***@e***.com");
    assert_eq!(proof["verification"]["assessment"]["satisfied"], true);
    let sent = app.sent();
    let message = sent.last().expect("message");
    assert!(message.body.contains("acme Inc.") && message.body.contains("password reset"), "{}", message.body);
    // Used once (T3): the same code again is refused.
    let code = code_in(&message.body);
    expect_problem(
        app.post(&d.agent, &path(&id, "verification/code"), json!({"code": code})).await,
        StatusCode::CONFLICT,
        "code-used",
    )
    .await;
    app.post_ok(&d.agent, &path(&id, "decide"), json!({"approve": true, "reason": "code to email"}), StatusCode::OK)
        .await;

    // The timeline and the audit log name the method, the result and the masked destination.
    let timeline = app.get_ok(&d.agent, &path(&id, "timeline")).await;
    let types: Vec<&str> =
        timeline["items"].as_array().expect("items").iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in ["case.identification_checked", "case.verification_sent", "case.verification_checked"] {
        assert!(types.contains(&expected), "{types:?}");
    }
    let text = timeline.to_string();
    assert!(!text.contains(&code), "the timeline holds the code: {text}");
    let _ = &d.customer;
}

#[tokio::test]
async fn identification_then_a_code_verifies_on_sqlite() {
    identification_then_a_code_verifies(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn identification_then_a_code_verifies_on_postgres() {
    identification_then_a_code_verifies(&TestApp::postgres().await).await;
}

/// SECURITY.md T3: 20 concurrent redemptions of one code, exactly one succeeds.
async fn one_code_is_redeemed_once(app: &TestApp) {
    let d = desk(app).await;
    let id = d.identified(app, "password_reset").await;
    let code = app.send_code(&d.agent, &id, "phone-0").await;
    let target = path(&id, "verification/code");
    let attempts = (0..20).map(|_| app.post(&d.agent, &target, json!({"code": code})));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{statuses:?}");
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    let passed_attempts =
        view["attempts"].as_array().expect("attempts").iter().filter(|a| a["method"] == "sms").count();
    assert_eq!(passed_attempts, 1, "{view}");
}

#[tokio::test]
async fn one_code_is_redeemed_once_on_sqlite() {
    one_code_is_redeemed_once(&TestApp::sqlite().await).await;
}

#[tokio::test]
async fn one_code_is_redeemed_once_on_postgres() {
    one_code_is_redeemed_once(&TestApp::postgres().await).await;
}

/// SECURITY.md T5, T6, T7: a code from case A fails in case B; failures count per customer
/// across cases, agents and addresses; a new code does not reset them; past the limit even the
/// right code fails, and the customer's open cases go to the security tier.
async fn failures_count_per_customer_until_recovery_stops(app: TestApp) {
    let app = &app;
    let d = desk(app).await;
    let a = d.identified(app, "password_reset").await;
    let b = d.identified(app, "account_unlock").await;
    // Identification already counted nothing; the clock is fixed.
    let code_a = app.send_code(&d.agent, &a, "email-0").await;
    app.send_code(&d.agent, &b, "email-0").await;
    let wrong = |n: u32| format!("{:06}", (code_a.parse::<u32>().unwrap_or(0) + n) % 1_000_000);
    // T5: case A's code in case B is a wrong code there.
    let problem = expect_problem(
        app.call(Method::POST, &path(&b, "verification/code"), Some(&d.agent), Some(json!({"code": code_a}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "proof-rejected",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap_or("").contains("4 attempt(s) left"), "{problem}");
    // T6: fail, resend, fail … from rotating addresses (T7: X-Forwarded-For changes nothing).
    for n in 1..=3u32 {
        app.send_code(&d.agent, &b, "phone-0").await;
        let response = app
            .client
            .post(format!("{}{}", app.base, path(&b, "verification/code")))
            .bearer_auth(&d.agent)
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .json(&json!({"code": wrong(n)}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The fifth failure, in the other case: the hold starts.
    let held = app.post(&d.agent, &path(&a, "verification/code"), json!({"code": wrong(7)})).await;
    let held = expect_problem(held, StatusCode::LOCKED, "recovery-held").await;
    assert!(held["detail"].as_str().unwrap_or("").contains("security team"), "{held}");
    // Past the stop, even the right code fails, and nothing else can be sent or checked —
    // whoever asks (the agent's tier no longer reaches the escalated case; the client system's
    // key does, and is stopped by the hold).
    expect_problem(
        app.post(&d.agent, &path(&a, "verification/code"), json!({"code": code_a})).await,
        StatusCode::CONFLICT,
        "beyond-tier",
    )
    .await;
    expect_problem(
        app.post(&d.key, &path(&a, "verification/code"), json!({"code": code_a})).await,
        StatusCode::LOCKED,
        "recovery-held",
    )
    .await;
    expect_problem(
        app.post(&d.key, &path(&a, "verification/send"), json!({"contact": "email-0"})).await,
        StatusCode::LOCKED,
        "recovery-held",
    )
    .await;
    // Both open cases went to tier 3; no agent can act on them now.
    for case in [&a, &b] {
        let view = app.get_ok(&d.key, &format!("/api/v1/cases/{case}")).await;
        assert_eq!(view["tier"], 3, "{view}");
    }
    let status = app.get_ok(&d.key, &path(&a, "verification")).await;
    assert_eq!(status["failures"]["count"], 5);
    // The customer hears that recovery is paused, at the registered email.
    let before = app.sent().len();
    app.deliver().await;
    let notices: Vec<_> = app.sent().into_iter().skip(before).collect();
    assert!(
        notices.iter().any(|m| m.body.contains("paused")),
        "{:?}",
        notices.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(status["failures"]["held_until"].is_string(), "{status}");
    // The cool-down ends; the count's window has passed too. (The agent's session has idled
    // out by now; the integration carries on.)
    app.clock.advance(Duration::hours(25));
    let d = Desk { agent: d.key.clone(), ..d };
    let analyst_case = d.identified(app, "password_reset").await;
    let view = app.get_ok(&d.key, &path(&analyst_case, "verification")).await;
    assert!(view["failures"]["held_until"].is_null(), "{view}");
}

#[tokio::test]
async fn failures_count_per_customer_until_recovery_stops_on_sqlite() {
    failures_count_per_customer_until_recovery_stops(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn failures_count_per_customer_until_recovery_stops_on_postgres() {
    failures_count_per_customer_until_recovery_stops(TestApp::postgres().await).await;
}

/// SECURITY.md T4 on a fixed clock: a code is accepted at its limit − 1 s, refused at + 1 s.
#[tokio::test]
async fn codes_expire_on_time() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.identified(&app, "password_reset").await;
    let code = app.send_code(&d.agent, &id, "phone-0").await;
    app.clock.advance(Duration::minutes(10) - Duration::seconds(1));
    // The agent's session outlives this; the clock moved less than its idle time.
    app.post_ok(&d.key, &path(&id, "verification/code"), json!({"code": code}), StatusCode::OK).await;

    let id = d.identified(&app, "password_reset").await;
    let code = app.send_code(&d.key, &id, "phone-0").await;
    app.clock.advance(Duration::minutes(10) + Duration::seconds(1));
    expect_problem(
        app.post(&d.key, &path(&id, "verification/code"), json!({"code": code})).await,
        StatusCode::GONE,
        "code-expired",
    )
    .await;
    // Expiry is not a failure.
    let view = app.get_ok(&d.key, &path(&id, "verification")).await;
    assert_eq!(view["failures"]["count"], 0, "{view}");
}

/// Bad input: precise 4xx errors, the failure counted only where it should be.
#[tokio::test]
async fn bad_verification_requests_are_refused_precisely() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.case(&app, "password_reset").await;
    // Wrong state: nothing to send before identification.
    expect_problem(
        app.post(&d.agent, &path(&id, "verification/send"), json!({"contact": "email-0"})).await,
        StatusCode::CONFLICT,
        "wrong-state",
    )
    .await;
    // Malformed identifiers name the field; a name alone is not enough to look anyone up.
    for (body, field) in [
        (json!({"full_name": "Jane Doe", "email": "not-an-email"}), "email"),
        (json!({"full_name": "Jane Doe", "phone": "12"}), "phone"),
        (json!({"full_name": "Jane Doe"}), "identifiers"),
    ] {
        let problem = expect_problem(
            app.post(&d.agent, &path(&id, "identification"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Matching nobody: no_match, and nobody's count moves.
    let nobody = app
        .post_ok(
            &d.agent,
            &path(&id, "identification"),
            json!({"full_name": "Nobody Atall", "email": "nobody@example.org"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(nobody["outcome"], "no_match");
    assert_eq!(nobody["fields"], json!({"full_name": "no_match", "email": "no_match"}));
    let id = d.identified(&app, "password_reset").await;
    for (body, field) in [
        (json!({"contact": "email-7"}), "contact"),
        (json!({"contact": "fax-0"}), "contact"),
        (json!({"contact": "email-0", "delivery": "pigeon"}), "delivery"),
    ] {
        let problem = expect_problem(
            app.post(&d.agent, &path(&id, "verification/send"), body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    expect_problem(
        app.post(&d.agent, &path(&id, "verification/code"), json!({"code": "123456"})).await,
        StatusCode::CONFLICT,
        "no-code-pending",
    )
    .await;
    app.send_code(&d.agent, &id, "email-0").await;
    // A malformed code is not checked, so it does not count.
    for code in ["12345", "abcdef", "1234567"] {
        expect_problem(
            app.post(&d.agent, &path(&id, "verification/code"), json!({"code": code})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
    }
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    assert_eq!(view["failures"]["count"], 0, "{view}");
    // No authenticator enrolled with Regain; not a failure either.
    expect_problem(
        app.post(&d.agent, &path(&id, "verification/totp"), json!({"code": "123456"})).await,
        StatusCode::CONFLICT,
        "not-enrolled",
    )
    .await;
    // An unknown knowledge question.
    expect_problem(
        app.post(&d.agent, &path(&id, "verification/knowledge"), json!({"question": "first_pet", "answer": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
}

/// SECURITY.md K1: a knowledge answer is recorded but never satisfies the policy, and a miss
/// counts as a failure.
#[tokio::test]
async fn knowledge_alone_never_reaches_a_decision() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let customer = d.customer["id"].as_str().expect("id");
    let response = app
        .call(
            Method::PUT,
            &format!("/api/v1/customers/{customer}/knowledge"),
            Some(&d.key),
            Some(json!({"question": "first_pet", "answer": "  Fluffy! "})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let id = d.identified(&app, "password_reset").await;
    let knowledge = path(&id, "verification/knowledge");
    let miss = app.post(&d.agent, &knowledge, json!({"question": "first_pet", "answer": "Rex"})).await;
    expect_problem(miss, StatusCode::UNPROCESSABLE_ENTITY, "proof-rejected").await;
    let hit = app
        .post_ok(
            &d.agent,
            &path(&id, "verification/knowledge"),
            json!({"question": "first_pet", "answer": "fluffy"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(hit["result"], "passed");
    assert_eq!(hit["verification"]["assessment"]["satisfied"], false, "{hit}");
    assert_eq!(hit["verification"]["assessment"]["not_counted"][0], "knowledge: knowledge_never_counts");
    assert_eq!(hit["verification"]["failures"]["count"], 1);
    expect_problem(
        app.post(&d.agent, &path(&id, "decide"), json!({"approve": true, "reason": "knew the pet"})).await,
        StatusCode::CONFLICT,
        "verification-incomplete",
    )
    .await;
}

/// SECURITY.md M2, M3: recovery codes are single use and their use notifies; TOTP codes are
/// one use per step, a replay refused and counted.
#[tokio::test]
async fn authenticator_and_recovery_codes_prove_possession_once() {
    use regain_core::totp::{decode_secret, totp, TotpParams};

    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let me = app.customer_session("jane", "an initial password").await;
    let enrollment = app.post_ok(&me, "/api/v1/directory/acme/me/totp", json!({}), StatusCode::OK).await;
    assert!(enrollment["otpauth_uri"].as_str().unwrap_or("").starts_with("otpauth://totp/"), "{enrollment}");
    assert!(enrollment["qr_svg"].as_str().unwrap_or("").contains("<svg"), "an SVG QR code");
    let secret = decode_secret(enrollment["secret"].as_str().expect("secret")).expect("base32");
    let code = |app: &TestApp| totp(&secret, regain_core::Clock::now(app.clock.as_ref()), &TotpParams::default());
    let bad = app.post(&me, "/api/v1/directory/acme/me/totp/confirm", json!({"code": "000000"})).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let confirmed = app.post(&me, "/api/v1/directory/acme/me/totp/confirm", json!({"code": code(&app)})).await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    let codes = app.post_ok(&me, "/api/v1/directory/acme/me/recovery-codes", json!({}), StatusCode::OK).await;
    let codes: Vec<String> =
        codes["codes"].as_array().expect("codes").iter().filter_map(|c| c.as_str().map(str::to_owned)).collect();
    assert_eq!(codes.len(), 10);

    // The customer hears of both, at the registered email (the password alone set them up).
    app.deliver().await;
    let added: Vec<_> = app.sent().into_iter().filter(|m| m.subject.contains("New sign-in method")).collect();
    assert_eq!(added.len(), 2, "{:?}", app.sent().iter().map(|m| &m.subject).collect::<Vec<_>>());

    // Set up just now, they do not count yet: a password thief could have done it.
    let id = d.identified(&app, "mfa_recovery").await;
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    assert_eq!(view["available"], json!(["email", "sms"]), "{view}");
    app.clock.advance(Duration::seconds(30));
    let early =
        app.post_ok(&d.agent, &path(&id, "verification/totp"), json!({"code": code(&app)}), StatusCode::OK).await;
    assert_eq!(early["verification"]["assessment"]["not_counted"], json!(["totp: recent_contact"]), "{early}");

    // A week and a day later they count. (The agent's session has idled out; the integration
    // carries on.)
    app.clock.advance(Duration::days(8));
    let d = Desk { agent: d.key.clone(), ..d };
    let id = d.identified(&app, "mfa_recovery").await;
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    assert_eq!(view["available"], json!(["email", "sms", "totp", "recovery_code"]), "{view}");
    let now_code = code(&app);
    app.post_ok(&d.agent, &path(&id, "verification/totp"), json!({"code": now_code}), StatusCode::OK).await;
    // M3: the same step again is a replay, refused and counted.
    let replay = app.post(&d.agent, &path(&id, "verification/totp"), json!({"code": now_code})).await;
    let replay = expect_problem(replay, StatusCode::UNPROCESSABLE_ENTITY, "proof-rejected").await;
    assert!(replay["detail"].as_str().unwrap_or("").contains("already used"), "{replay}");

    let before = app.sent().len();
    let typed = codes[0].to_lowercase();
    let passed =
        app.post_ok(&d.agent, &path(&id, "verification/recovery-code"), json!({"code": typed}), StatusCode::OK).await;
    assert_eq!(passed["verification"]["assessment"]["satisfied"], true, "M1: totp and a recovery code: {passed}");
    app.deliver().await;
    let notices: Vec<_> = app.sent().into_iter().skip(before).collect();
    let to: Vec<_> = notices.iter().map(|m| m.to.clone()).collect();
    assert_eq!(
        to,
        [
            regain_delivery::Address::Email("jane@example.com".into()),
            regain_delivery::Address::Sms("+12015550123".into())
        ],
        "M2, P3: using a recovery code notifies every registered address"
    );
    for notice in &notices {
        assert!(notice.body.contains("recovery code"), "{}", notice.body);
        assert!(!notice.body.contains(&codes[0]), "the notice never holds the code");
    }
    expect_problem(
        app.post(&d.agent, &path(&id, "verification/recovery-code"), json!({"code": codes[0]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "proof-rejected",
    )
    .await;
}

/// A confirmation link: the page says who is asking and why; approving is a proof, "this
/// wasn't me" stops the case and sends it to the security team. Opening the page changes nothing.
#[tokio::test]
async fn confirmation_links_approve_or_stop_the_case() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let link_of = |body: &str| {
        let start = body.find("http").expect("a link");
        body[start..].split_whitespace().next().expect("link").to_owned()
    };
    let id = d.identified(&app, "password_reset").await;
    app.post_ok(
        &d.agent,
        &path(&id, "verification/send"),
        json!({"contact": "email-0", "delivery": "link"}),
        StatusCode::OK,
    )
    .await;
    app.deliver().await;
    let link = link_of(&app.sent().last().expect("message").body);
    let page_path = link.trim_start_matches(&app.state.config.public_url).to_owned();
    assert!(page_path.starts_with("/verify/"), "built from the configured origin: {link}");
    let mut link = String::new();
    for _ in 0..2 {
        let page = app.open_link("verify", page_path.trim_start_matches("/verify/")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        assert!(html.contains("acme Inc. support is verifying you") && html.contains("a password reset"), "{html}");
        link = TestApp::form_link(&html);
    }
    // The page's form, with the token in its cookie (T10): answered, and the cookie cleared.
    let cookie = format!("regain_verify={}", page_path.trim_start_matches("/verify/"));
    let approve = app.client.post(format!("{}/verify", app.base)).header("cookie", &cookie);
    let approve = approve.form(&[("decision", "approve"), ("link", &link)]).send().await.expect("post");
    assert_eq!(approve.status(), StatusCode::OK);
    let cleared = approve.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cleared.starts_with("regain_verify=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    assert_eq!(view["assessment"]["satisfied"], true, "{view}");
    let again = app.client.post(format!("{}{page_path}", app.base)).form(&[("decision", "approve")]).send().await;
    assert_eq!(again.expect("post").status(), StatusCode::GONE, "single use");
    let again = app.client.post(format!("{}/verify", app.base)).header("cookie", &cookie);
    let again = again.form(&[("decision", "approve"), ("link", &link)]).send().await.expect("post");
    assert_eq!(again.status(), StatusCode::GONE);

    let other = d.identified(&app, "password_reset").await;
    app.post_ok(
        &d.agent,
        &path(&other, "verification/send"),
        json!({"contact": "email-0", "delivery": "link"}),
        StatusCode::OK,
    )
    .await;
    app.deliver().await;
    let link = link_of(&app.sent().last().expect("message").body);
    let page_path = link.trim_start_matches(&app.state.config.public_url).to_owned();
    let deny = app.client.post(format!("{}{page_path}", app.base)).form(&[("decision", "deny")]).send().await;
    assert_eq!(deny.expect("post").status(), StatusCode::OK);
    let case = app.get_ok(&d.key, &format!("/api/v1/cases/{other}")).await;
    assert_eq!((case["state"].as_str(), case["tier"].as_u64()), (Some("cancelled"), Some(3)), "{case}");
}

/// The confirmation link's page in a real browser (`tests/browser/pages.cjs`): it says who
/// asks and why, both answers are named buttons, approving proves the customer, and every
/// page passes axe-core's WCAG 2.1 AA rules.
#[tokio::test]
async fn the_confirmation_page_works_in_a_real_browser() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.identified(&app, "password_reset").await;
    let send = json!({"contact": "email-0", "delivery": "link"});
    app.post_ok(&d.agent, &path(&id, "verification/send"), send, StatusCode::OK).await;
    app.deliver().await;
    let body = app.sent().last().expect("message").body.clone();
    let token = crate::recovery::link_token(&body, "verify");
    crate::support::in_browser(&["verify", &app.base, &token]).await;
    let view = app.get_ok(&d.agent, &path(&id, "verification")).await;
    assert_eq!(view["assessment"]["satisfied"], true, "approved in the browser: {view}");
}

/// The policy: a sensible default, versions, and a document that would lower a floor refused
/// with the reason.
#[tokio::test]
async fn the_policy_is_versioned_and_its_floors_hold() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let admin = app.api_key(&acme, "tenant_admin").await;
    let current = app.get_ok(&admin, "/api/v1/policy").await;
    assert!(current["version"].is_null());
    assert_eq!(current["policy"]["failures"]["max"], 5);
    let put = |body: Value| app.call(Method::PUT, "/api/v1/policy", Some(&admin), Some(body));
    for (policy, field) in [
        (json!({"kinds": {"mfa_recovery": {"any_of": [{"proofs": [["email"]]}]}}}), "kinds/mfa_recovery/any_of/0"),
        (
            json!({"kinds": {"password_reset": {"any_of": [{"proofs": [["knowledge"]]}]}}}),
            "kinds/password_reset/any_of/0/proofs/0",
        ),
        (json!({"recent_contact_days": 3}), "recent_contact_days"),
        (json!({"failures": {"max": 500}}), "failures/max"),
        (json!({"colour": "blue"}), "colour"),
    ] {
        let problem = expect_problem(
            put(json!({"base_version": null, "policy": policy})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(problem["errors"][0]["field"].as_str().unwrap_or("").starts_with(field), "{field}: {problem}");
    }
    let stricter = json!({"kinds": {"password_reset": {"any_of": [{"proofs": [["email", "sms", "totp"], ["email", "sms", "totp"]]}]}}});
    let saved = put(json!({"base_version": null, "policy": stricter})).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved: Value = saved.json().await.expect("json");
    assert_eq!(saved["version"], 1);
    let stale = put(json!({"base_version": null, "policy": {}})).await;
    expect_problem(stale, StatusCode::CONFLICT, "policy-changed").await;
    let versions = app.get_ok(&admin, "/api/v1/policy/versions").await;
    assert_eq!(versions.as_array().map(Vec::len), Some(1));

    // The stricter policy is what verification now asks for.
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let d = Desk { key: key.clone(), agent: key.clone(), customer: Value::Null };
    let id = d.identified(&app, "password_reset").await;
    let one = app.verify_by_code(&key, &id, "email-0").await;
    assert_eq!(one["verification"]["assessment"]["satisfied"], false);
    assert_eq!(one["verification"]["assessment"]["policy_version"], 1);
}

/// SECURITY.md T2: after the flows, no table holds a code, link token or recovery code in the
/// clear.
#[tokio::test]
async fn no_table_holds_a_plaintext_secret() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("regain.db");
    let store = regain_store_sqlite::SqliteStore::connect(&regain_store_sqlite::SqliteConfig::for_file(&db))
        .await
        .expect("sqlite");
    store.migrate().await.expect("migrate");
    regain_store::conformance::unlock(&store).await;
    let app = TestApp::start(std::sync::Arc::new(store), None, regain_server::ServerConfig::default()).await;
    let d = desk(&app).await;
    let mut secrets = Vec::new();
    let id = d.identified(&app, "password_reset").await;
    let used = app.send_code(&d.agent, &id, "email-0").await;
    app.post_ok(&d.agent, &path(&id, "verification/code"), json!({"code": used}), StatusCode::OK).await;
    secrets.push(used);
    secrets.push(app.send_code(&d.agent, &id, "phone-0").await);
    app.post_ok(
        &d.agent,
        &path(&id, "verification/send"),
        json!({"contact": "email-0", "delivery": "link"}),
        StatusCode::OK,
    )
    .await;
    app.deliver().await;
    let body = app.sent().last().expect("link").body.clone();
    let token = body.split("/verify/").nth(1).and_then(|t| t.split_whitespace().next()).expect("token").to_owned();
    secrets.push(token);
    let me = app.customer_session("jane", "an initial password").await;
    let enrollment = app.post_ok(&me, "/api/v1/directory/acme/me/totp", json!({}), StatusCode::OK).await;
    secrets.push(enrollment["secret"].as_str().expect("secret").to_owned());
    let codes = app.post_ok(&me, "/api/v1/directory/acme/me/recovery-codes", json!({}), StatusCode::OK).await;
    for c in codes["codes"].as_array().expect("codes") {
        let c = c.as_str().expect("code");
        secrets.push(c.to_owned());
        secrets.push(c.replace('-', ""));
    }
    // Every table, every column, as text; and the database files' bytes.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.expect("pool");
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&pool)
        .await
        .expect("tables");
    let mut dump = String::new();
    for table in &tables {
        use sqlx::Row as _;
        let rows = sqlx::query(&format!("SELECT * FROM \"{table}\"")).fetch_all(&pool).await.expect("rows");
        for row in rows {
            for i in 0..row.len() {
                if let Ok(text) = row.try_get::<String, _>(i) {
                    dump.push_str(&text);
                } else if let Ok(bytes) = row.try_get::<Vec<u8>, _>(i) {
                    dump.push_str(&String::from_utf8_lossy(&bytes));
                }
                dump.push('\n');
            }
        }
    }
    assert!(dump.contains("j***@e***.com"), "the dump reads the tables");
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        bytes.extend(std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default());
    }
    let raw = String::from_utf8_lossy(&bytes);
    for secret in secrets.iter().filter(|s| s.len() >= 6 && !s.starts_with('{')) {
        assert!(!dump.contains(secret.as_str()), "a table holds {secret}");
        assert!(!raw.contains(secret.as_str()), "the database file holds {secret}");
    }
    assert!(tables.contains(&"verification_challenges".to_owned()) && tables.contains(&"outbox".to_owned()));
}

/// Templates per tenant: the tenant's wording is used; a broken one is refused with where.
#[tokio::test]
async fn tenants_word_their_own_messages() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let acme_admin = {
        let tenant = app.state.store.tenant_by_slug("acme").await.expect("store").expect("acme");
        app.api_key(&tenant, "tenant_admin").await
    };
    let put = |path: &'static str, body: Value| app.call(Method::PUT, path, Some(&acme_admin), Some(body));
    for (body, field, says) in [
        (json!({"body": "Your code: {{cod}}"}), "body", "unknown placeholder `cod`"),
        (json!({"body": "Your code: {{code"}), "body", "never closed"),
        (json!({"body": "Call us for your code"}), "body", "{{code}}"),
    ] {
        let problem = expect_problem(
            put("/api/v1/templates/verification_code/sms", body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(problem["errors"][0]["message"].as_str().unwrap_or("").contains(says), "{problem}");
    }
    // A notice without its "this wasn't me" link is refused (SECURITY.md P3).
    for path in ["/api/v1/templates/account_recovered/sms", "/api/v1/templates/factor_added/sms"] {
        let problem = expect_problem(
            put(path, json!({"body": "{{tenant}}: something changed on {{when}}"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(problem["errors"][0]["message"].as_str().unwrap_or("").contains("{{report_link}}"), "{problem}");
    }
    let missing = put("/api/v1/templates/no_such/sms", json!({"body": "x"})).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let saved =
        put("/api/v1/templates/verification_code/sms", json!({"body": "ACME code {{code}} ({{minutes}} min)"})).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let list = app.get_ok(&acme_admin, "/api/v1/templates").await;
    let sms = list.as_array().expect("list").iter().find(|t| t["name"] == "verification_code" && t["channel"] == "sms");
    assert_eq!(sms.map(|t| (t["custom"].clone(), t["in_use"].clone())), Some((json!(true), json!(true))));
    assert!(sms.is_some_and(|t| t.get("problem").is_none()), "{sms:?}");

    let id = d.identified(&app, "password_reset").await;
    let code = app.send_code(&d.agent, &id, "phone-0").await;
    let sent = app.sent();
    assert_eq!(sent.last().map(|m| m.body.clone()), Some(format!("ACME code {code} (10 min)")));
    let reset = app.call(Method::DELETE, "/api/v1/templates/verification_code/sms", Some(&acme_admin), None).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    app.send_code(&d.agent, &id, "phone-0").await;
    assert!(app.sent().last().expect("sms").body.contains("is your acme Inc. verification code"));
}

/// SECURITY.md T7 under concurrency: five wrong codes at once, on five cases of one customer —
/// the limit is reached exactly once, whatever order they commit in.
async fn concurrent_failures_on_several_cases_reach_the_limit(app: TestApp) {
    let app = &app;
    let d = desk(app).await;
    let d = Desk { agent: d.key.clone(), ..d };
    let mut cases = Vec::new();
    for _ in 0..5 {
        let id = d.identified(app, "password_reset").await;
        let code = app.send_code(&d.key, &id, "email-0").await;
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap_or(0) + 1) % 1_000_000);
        cases.push((path(&id, "verification/code"), wrong));
    }
    let attempts = cases.iter().map(|(target, wrong)| app.post(&d.key, target, json!({"code": wrong})));
    let mut statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(|r| r.status()).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::UNPROCESSABLE_ENTITY; 4].into_iter().chain([StatusCode::LOCKED]).collect::<Vec<_>>(),
        "four counted failures, and the fifth starts the hold"
    );
    let case = cases[0].0.trim_end_matches("/code").to_owned();
    let view = app.get_ok(&d.key, &case).await;
    assert_eq!(view["failures"]["count"], 5, "{view}");
    assert!(view["failures"]["held_until"].is_string(), "{view}");
}

#[tokio::test]
async fn concurrent_failures_on_several_cases_reach_the_limit_on_sqlite() {
    concurrent_failures_on_several_cases_reach_the_limit(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_failures_on_several_cases_reach_the_limit_on_postgres() {
    concurrent_failures_on_several_cases_reach_the_limit(TestApp::postgres().await).await;
}

/// Several outbox workers at once (several `serve` processes on one PostgreSQL): every message
/// is sent exactly once, and the claimers never deadlock.
#[tokio::test]
async fn concurrent_outbox_workers_send_each_message_once_on_postgres() {
    let app = TestApp::postgres().await;
    let d = desk(&app).await;
    for _ in 0..4 {
        let id = d.identified(&app, "password_reset").await;
        for contact in ["email-0", "phone-0", "email-0", "phone-0", "email-0"] {
            app.post_ok(&d.key, &path(&id, "verification/send"), json!({"contact": contact}), StatusCode::OK).await;
        }
    }
    let workers = (0..4).map(|_| regain_server::outbox::drain(&app.state, 20));
    for result in futures::future::join_all(workers).await {
        result.expect("a worker failed");
    }
    let sent = app.sent();
    let mut ids: Vec<&str> = sent.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((sent.len(), ids.len()), (20, 20), "each of the 20 messages once");
}
