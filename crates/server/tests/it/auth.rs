//! Staff sign-in (SECURITY.md G6): password and TOTP, one use per code, sessions by cookie or
//! bearer token, idle expiry, logout; API keys; failures that all look alike.

use chrono::Duration;
use regain_core::totp::{totp, TotpParams};
use regain_core::{Clock, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{expect_problem, TestApp, PASSWORD};

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_a_bearer_token() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let ana = app.staff(Some(&acme), Role::Supervisor).await;
    let code = totp(&ana.secret, app.clock.now(), &TotpParams::default());
    let response = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ana.email, "password": PASSWORD, "totp_code": code})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    for attribute in ["regain_session=rgs_", "HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    let body: serde_json::Value = response.json().await.expect("json");
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(body["staff"]["role"], "supervisor");
    assert!(body["staff"].get("password_hash").is_none() && body["staff"].get("totp_secret").is_none());

    let me = app.get_ok(&token, "/api/v1/auth/me").await;
    assert_eq!((me["kind"].as_str(), me["role"].as_str()), (Some("staff"), Some("supervisor")));
    // The cookie alone works too (browsers).
    let cookie_pair = cookie.split(';').next().unwrap_or("").to_owned();
    let by_cookie = app
        .client
        .get(format!("{}/api/v1/auth/me", app.base))
        .header("cookie", cookie_pair.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(by_cookie.status(), StatusCode::OK);

    // Logout revokes the session for both.
    let out = app.call(Method::POST, "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(out.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or("").contains("Max-Age=0"));
    expect_problem(app.get(&token, "/api/v1/auth/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let by_cookie = app
        .client
        .get(format!("{}/api/v1/auth/me", app.base))
        .header("cookie", cookie_pair)
        .send()
        .await
        .expect("send");
    assert_eq!(by_cookie.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_failed_sign_in_looks_the_same_and_codes_are_single_use() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let ana = app.staff(Some(&acme), Role::Agent).await;
    let now = app.clock.now();
    let code = totp(&ana.secret, now, &TotpParams::default());
    let stale = totp(&ana.secret, now - Duration::minutes(5), &TotpParams::default());
    let attempts = [
        json!({"email": ana.email, "password": "wrong password here", "totp_code": code}),
        json!({"email": ana.email, "password": PASSWORD, "totp_code": stale}),
        json!({"email": ana.email, "password": PASSWORD, "totp_code": "12345"}),
        json!({"email": "nobody@staff.test", "password": PASSWORD, "totp_code": code}),
    ];
    let mut bodies = Vec::new();
    for attempt in attempts {
        let response = app.call(Method::POST, "/api/v1/auth/login", None, Some(attempt)).await;
        bodies.push(expect_problem(response, StatusCode::UNAUTHORIZED, "invalid-credentials").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "failures differ: {bodies:?}");

    let good = json!({"email": ana.email, "password": PASSWORD, "totp_code": code});
    let first = app.call(Method::POST, "/api/v1/auth/login", None, Some(good.clone())).await;
    assert_eq!(first.status(), StatusCode::OK);
    // SECURITY.md M3: the same code again, within its step, is a replay.
    let replay = app.call(Method::POST, "/api/v1/auth/login", None, Some(good)).await;
    expect_problem(replay, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
}

#[tokio::test]
async fn idle_sessions_end_and_revoked_api_keys_stop_working() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let ana = app.staff(Some(&acme), Role::TenantAdmin).await;
    let token = app.login(&ana).await;
    app.clock.advance(Duration::minutes(29));
    app.get_ok(&token, "/api/v1/tenant").await;
    app.clock.advance(Duration::minutes(29));
    app.get_ok(&token, "/api/v1/tenant").await; // each use pushes the idle deadline
    app.clock.advance(Duration::minutes(31));
    expect_problem(app.get(&token, "/api/v1/tenant").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let admin = app.login(&ana).await;
    let created = app.post_ok(&admin, "/api/v1/api-keys", json!({"name": "crm"}), StatusCode::CREATED).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("rgk_") && secret.len() > 40);
    app.get_ok(&secret, "/api/v1/cases").await;
    let listed = app.get_ok(&admin, "/api/v1/api-keys").await;
    assert!(!listed.to_string().contains(&secret), "the secret is shown once only");
    assert!(listed["items"][0]["last_used_at"].is_string());
    let id = created["key"]["id"].as_str().expect("id");
    let revoked = app.call(Method::DELETE, &format!("/api/v1/api-keys/{id}"), Some(&admin), None).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    expect_problem(app.get(&secret, "/api/v1/cases").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(app.get("rgk_forged", "/api/v1/cases").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(app.get("garbage", "/api/v1/cases").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let bad_role = app.post(&admin, "/api/v1/api-keys", json!({"name": "x", "role": "deployment_admin"})).await;
    expect_problem(bad_role, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

#[tokio::test]
async fn staff_creation_shows_the_totp_secret_once_and_checks_the_password() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let admin = app.token(Some(&acme), Role::TenantAdmin).await;
    let body =
        json!({"email": "Bo@Acme.test", "display_name": "Bo", "role": "agent", "password": "a fine long password"});
    let created = app.post_ok(&admin, "/api/v1/staff", body, StatusCode::CREATED).await;
    assert_eq!(created["staff"]["email"], "Bo@acme.test");
    let uri = created["totp"]["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(created["totp"]["secret"].as_str().expect("secret")));
    let listed = app.get_ok(&admin, "/api/v1/staff").await;
    assert!(!listed.to_string().contains(created["totp"]["secret"].as_str().unwrap_or("-")));

    let short = json!({"email": "cy@acme.test", "display_name": "Cy", "role": "agent", "password": "short"});
    let problem =
        expect_problem(app.post(&admin, "/api/v1/staff", short).await, StatusCode::UNPROCESSABLE_ENTITY, "validation")
            .await;
    assert_eq!(problem["errors"][0]["field"], "password");
    let escalation = json!({"email": "dz@acme.test", "display_name": "Dz", "role": "deployment_admin", "password": "a fine long password"});
    expect_problem(app.post(&admin, "/api/v1/staff", escalation).await, StatusCode::UNPROCESSABLE_ENTITY, "validation")
        .await;
}

#[tokio::test]
async fn repeated_failures_lock_staff_sign_in_for_a_while() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let ana = app.staff(Some(&acme), Role::Supervisor).await;
    for n in 0..5 {
        app.clock.advance(Duration::seconds(30));
        let code = totp(&ana.secret, app.clock.now(), &TotpParams::default());
        let wrong = json!({"email": ana.email, "password": format!("guess number {n}"), "totp_code": code});
        let response = app.call(Method::POST, "/api/v1/auth/login", None, Some(wrong)).await;
        expect_problem(response, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    }
    // Locked: even the right password and code are refused, with the same answer.
    app.clock.advance(Duration::seconds(30));
    let code = totp(&ana.secret, app.clock.now(), &TotpParams::default());
    let right = json!({"email": ana.email, "password": PASSWORD, "totp_code": code});
    let refused = app.call(Method::POST, "/api/v1/auth/login", None, Some(right)).await;
    expect_problem(refused, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    // Fifteen minutes later it works, and the count starts again.
    app.clock.advance(Duration::minutes(16));
    app.login(&ana).await;
}
