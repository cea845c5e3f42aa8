//! The built-in directory: customers sign in, each attempt is history, repeated failures lock.

use regain_core::{Clock, CustomerId, Role};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{customer_json, expect_problem, TestApp};

#[tokio::test]
async fn customers_sign_in_and_every_attempt_is_history() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    let jane = app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    assert_eq!(jane["factors"]["password"], true);

    let login = |username: &str, password: &str| {
        app.client
            .post(format!("{}/api/v1/directory/acme/login", app.base))
            .header("user-agent", "RegainTest/1.0")
            .json(&json!({"username": username, "password": password}))
            .send()
    };
    let ok = login("Jane", "an initial password").await.expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    let session: serde_json::Value = ok.json().await.expect("json");
    let token = session["token"].as_str().expect("token");
    assert!(token.starts_with("rgc_"));
    let me = app.get_ok(token, "/api/v1/directory/acme/me").await;
    assert_eq!((me["username"].as_str(), me["status"].as_str()), (Some("jane"), Some("active")));
    // A customer token is no staff credential, and a staff route is no customer route.
    expect_problem(app.get(token, "/api/v1/cases").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(app.get(&key, "/api/v1/directory/acme/me").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // Unknown user and wrong password answer alike (SECURITY.md E1).
    let wrong = expect_problem(
        login("jane", "not the password").await.expect("send"),
        StatusCode::UNAUTHORIZED,
        "invalid-credentials",
    )
    .await;
    let unknown = expect_problem(
        login("nobody", "not the password").await.expect("send"),
        StatusCode::UNAUTHORIZED,
        "invalid-credentials",
    )
    .await;
    assert_eq!(wrong, unknown);

    let since = app.clock.now();
    assert_eq!(app.state.store.unknown_logins_from(acme.id, "127.0.0.1", since).await.expect("count"), 1);
    let id = CustomerId::parse("id", jane["id"].as_str().expect("id")).expect("uuid");
    let history = app.state.store.login_history(acme.id, id, 10).await.expect("history");
    assert_eq!(history.iter().map(|h| h.success).collect::<Vec<_>>(), [false, true], "newest first");
    assert_eq!(history[1].user_agent.as_deref(), Some("RegainTest/1.0"));
    assert_eq!(history[1].ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn repeated_failures_lock_the_account() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let admin = app.token(Some(&acme), Role::TenantAdmin).await;
    let tenant = app
        .call(Method::PATCH, "/api/v1/tenant", Some(&admin), Some(json!({"settings": {"login_failures_max": 3}})))
        .await;
    assert_eq!(tenant.status(), StatusCode::OK);
    let bad = app
        .call(Method::PATCH, "/api/v1/tenant", Some(&admin), Some(json!({"settings": {"login_failures_max": 1000}})))
        .await;
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

    app.post_ok(&admin, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let attempt = |password: &'static str| {
        app.call(
            Method::POST,
            "/api/v1/directory/acme/login",
            None,
            Some(json!({"username": "jane", "password": password})),
        )
    };
    for _ in 0..3 {
        expect_problem(attempt("guess guess").await, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    }
    // Locked: the right password no longer signs in.
    expect_problem(attempt("an initial password").await, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    let found = app.get_ok(&admin, "/api/v1/customers?username=jane").await;
    assert_eq!(found["items"][0]["status"], "locked");

    // The tenant unlocks it; the right password works again.
    let id = found["items"][0]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/customers/{id}");
    let unlocked = app.call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "active"}))).await;
    assert_eq!(unlocked.status(), StatusCode::OK);
    let ok = attempt("an initial password").await;
    assert_eq!(ok.status(), StatusCode::OK);

    // A frozen record is not thawed by a status change.
    let frozen = app.call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "frozen"}))).await;
    assert_eq!(frozen.status(), StatusCode::OK);
    let thaw = app.call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "active"}))).await;
    expect_problem(thaw, StatusCode::CONFLICT, "frozen").await;
    let bad = app.call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "asleep"}))).await;
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}
