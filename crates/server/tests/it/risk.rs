//! Risk scoring and routing over the real API (issue 5): every band's route end to end, the
//! signals gathered from the store (velocity across channels, failures), the lists and their
//! reload, the SIM-swap provider through a local server that speaks the CAMARA API — including
//! one that does not answer in time — and bad input.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use regain_core::Role;
use regain_server::risk::lists::Lists;
use regain_server::risk::simswap::{HttpSimSwap, SimSwapError, SimSwapProvider};
use regain_server::risk::RiskEngine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{customer_json, expect_problem, TestApp};

/// A local SIM-swap provider speaking the CAMARA SIM Swap API: `latestSimChange` per number,
/// an optional delay on every answer, and a count of the calls it took.
#[derive(Clone, Default)]
struct Camara {
    swaps: Arc<Mutex<HashMap<String, Option<String>>>>,
    delay: Arc<Mutex<Duration>>,
    calls: Arc<Mutex<u32>>,
}

impl Camara {
    async fn start(&self) -> String {
        async fn answer(camara: &Camara, body: &Value) -> Result<Option<String>, StatusCode> {
            *camara.calls.lock().unwrap() += 1;
            let delay = *camara.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let phone = body["phoneNumber"].as_str().ok_or(StatusCode::BAD_REQUEST)?;
            camara.swaps.lock().unwrap().get(phone).cloned().ok_or(StatusCode::NOT_FOUND)
        }
        let router = Router::new()
            .route(
                "/sim-swap/v1/retrieve-date",
                post(|State(c): State<Camara>, Json(body): Json<Value>| async move {
                    answer(&c, &body).await.map(|at| Json(json!({ "latestSimChange": at })))
                }),
            )
            .route(
                "/sim-swap/v1/check",
                post(|State(c): State<Camara>, Json(body): Json<Value>| async move {
                    let max_age = body["maxAge"].as_i64().ok_or(StatusCode::BAD_REQUEST)?;
                    let at = answer(&c, &body).await?;
                    let swapped = at.and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok()).is_some_and(|at| {
                        chrono::Utc::now().signed_duration_since(at) < chrono::Duration::hours(max_age)
                    });
                    Ok::<_, StatusCode>(Json(json!({ "swapped": swapped })))
                }),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/sim-swap/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.ok() });
        base
    }

    fn swapped(&self, phone: &str, at: Option<&str>) {
        self.swaps.lock().unwrap().insert(phone.to_owned(), at.map(str::to_owned));
    }
}

const JANE_PHONE: &str = "+12015550123";

fn lists_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn engine(dir: Option<&Path>, sim_swap: Option<&str>) -> RiskEngine {
    let lists = Lists::load(dir.map(Path::to_owned), chrono::Utc::now()).unwrap();
    let provider: Option<Arc<dyn SimSwapProvider>> =
        sim_swap.map(|url| Arc::new(HttpSimSwap::new(url, None, 5_000).unwrap()) as Arc<dyn SimSwapProvider>);
    RiskEngine::new(lists, provider)
}

struct Desk {
    key: String,
    agent: String,
    acme: regain_core::Tenant,
}

async fn desk(app: &TestApp) -> Desk {
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    Desk { key, agent, acme }
}

fn path(case: &str, rest: &str) -> String {
    format!("/api/v1/cases/{case}/{rest}")
}

/// Another customer, with a phone number of their own (so their requests are not Jane's
/// velocity).
async fn another_customer(app: &TestApp, key: &str, username: &str, phone: &str) {
    let mut customer = customer_json(username);
    customer["phones"][0]["number"] = json!(phone);
    app.post_ok(key, "/api/v1/customers", customer, StatusCode::CREATED).await;
}

impl Desk {
    /// Opens a case (with the intake's `context`) and identifies Jane: verifying.
    async fn identified(&self, app: &TestApp, kind: &str, channel: &str, context: Value) -> String {
        self.identified_as(app, "jane", kind, channel, context).await
    }

    /// The same for the customer `username` (Jane or one made by `another_customer`).
    async fn identified_as(&self, app: &TestApp, username: &str, kind: &str, channel: &str, context: Value) -> String {
        let case = app
            .post_ok(
                &self.key,
                "/api/v1/cases",
                json!({"kind": kind, "channel": channel, "context": context}),
                StatusCode::CREATED,
            )
            .await;
        let id = case["id"].as_str().unwrap().to_owned();
        app.post_ok(&self.agent, &path(&id, "start-identification"), json!({}), StatusCode::OK).await;
        let answer = app
            .post_ok(
                &self.agent,
                &path(&id, "identification"),
                json!({"full_name": "Jane Q. Doe", "account_number": format!("AC-{username}")}),
                StatusCode::OK,
            )
            .await;
        assert_eq!(answer["outcome"], "identified", "{answer}");
        id
    }
}

fn codes(risk: &Value) -> Vec<String> {
    risk["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect()
}

async fn observe(app: &TestApp, token: &str, id: &str, tells: &[&str]) -> Value {
    app.post_ok(token, &path(id, "observations"), json!({ "tells": tells }), StatusCode::OK).await
}

async fn decide(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.post(token, &path(id, "decide"), json!({"approve": true, "reason": "verified"})).await
}

/// Every band's route, end to end: low proceeds, medium asks for one more proof, high goes to
/// tier 2 and waits for a second supervisor, critical holds at the security tier and offers a
/// lockdown.
async fn every_band_routes(app: TestApp) {
    let d = desk(&app).await;
    for (username, phone) in [("mark", "(201) 555-0124"), ("lena", "(201) 555-0125"), ("omar", "(201) 555-0126")] {
        another_customer(&app, &d.key, username, phone).await;
    }

    // Low: one proof, then decide and execute as the policy alone says.
    let low = d.identified(&app, "password_reset", "phone", json!({})).await;
    let risk = app.get_ok(&d.agent, &path(&low, "risk")).await;
    assert_eq!((risk["band"].as_str(), risk["route"]["action"].as_str()), (Some("low"), Some("proceed")), "{risk}");
    assert!(risk["score"].as_u64().unwrap() < 30);
    assert!(codes(&risk).contains(&"channel".to_owned()), "{risk}");
    app.verify_by_code(&d.agent, &low, "email-0").await;
    assert_eq!(decide(&app, &d.agent, &low).await.status(), StatusCode::OK);
    app.post_ok(&d.agent, &path(&low, "execute"), json!({}), StatusCode::OK).await;

    // Medium: the agent's tells raise it; one proof is no longer enough (step-up).
    let medium = d.identified_as(&app, "mark", "password_reset", "phone", json!({})).await;
    let risk = observe(&app, &d.agent, &medium, &["urgency", "inconsistent_story"]).await;
    assert_eq!((risk["band"].as_str(), risk["route"]["action"].as_str()), (Some("medium"), Some("step_up")), "{risk}");
    assert!(codes(&risk).contains(&"observed_urgency".to_owned()));
    app.verify_by_code(&d.agent, &medium, "email-0").await;
    let refused =
        expect_problem(decide(&app, &d.agent, &medium).await, StatusCode::CONFLICT, "verification-incomplete").await;
    assert!(refused["detail"].as_str().unwrap().contains("one more proof"), "{refused}");
    let view = app.get_ok(&d.agent, &path(&medium, "verification")).await;
    assert!(view["assessment"]["next_step"].as_str().unwrap().contains("sms"), "{view}");
    app.verify_by_code(&d.agent, &medium, "phone-0").await;
    assert_eq!(decide(&app, &d.agent, &medium).await.status(), StatusCode::OK);
    app.post_ok(&d.agent, &path(&medium, "execute"), json!({}), StatusCode::OK).await;

    // High: tier 2, and a second supervisor must approve before anything runs.
    let high = d.identified_as(&app, "lena", "password_reset", "phone", json!({})).await;
    app.verify_by_code(&d.agent, &high, "email-0").await;
    let risk = observe(&app, &d.agent, &high, &["caller_id_mismatch", "refuses_code"]).await;
    assert_eq!(
        (risk["band"].as_str(), risk["route"]["action"].as_str(), risk["route"]["tier"].as_u64()),
        (Some("high"), Some("supervisor_approval"), Some(2)),
        "{risk}"
    );
    let case = app.get_ok(&d.agent, &format!("/api/v1/cases/{high}")).await;
    assert_eq!((case["tier"].as_u64(), case["approval_required"].as_bool()), (Some(2), Some(true)), "{case}");
    assert_eq!(case["risk"]["band"], "high");
    expect_problem(decide(&app, &d.agent, &high).await, StatusCode::CONFLICT, "beyond-tier").await;
    let supervisor = app.token(Some(&d.acme), Role::Supervisor).await;
    let approver = app.token(Some(&d.acme), Role::Supervisor).await;
    // High keeps the step-up: one proof is not enough for the supervisor either.
    expect_problem(decide(&app, &supervisor, &high).await, StatusCode::CONFLICT, "verification-incomplete").await;
    app.verify_by_code(&supervisor, &high, "phone-0").await;
    assert_eq!(decide(&app, &supervisor, &high).await.status(), StatusCode::OK);
    expect_problem(
        app.post(&supervisor, &path(&high, "execute"), json!({})).await,
        StatusCode::CONFLICT,
        "approval-required",
    )
    .await;
    let reason = json!({"reason": "caller ID mismatch explained: calling from work"});
    app.post_ok(&supervisor, &path(&high, "request-approval"), reason.clone(), StatusCode::OK).await;
    expect_problem(
        app.post(&supervisor, &path(&high, "approve"), reason.clone()).await,
        StatusCode::CONFLICT,
        "self-approval",
    )
    .await;
    let approved = app.post_ok(&approver, &path(&high, "approve"), reason, StatusCode::OK).await;
    assert_eq!(approved["state"], "executing");

    // Critical: a denied address at intake and pressure on the call: held at tier 3.
    let critical = d.identified_as(&app, "omar", "password_reset", "web", json!({"ip": "198.51.100.77"})).await;
    // The denied address alone already took it to tier 2: the agent hands over.
    expect_problem(
        app.post(&d.agent, &path(&critical, "observations"), json!({"tells": ["urgency"]})).await,
        StatusCode::CONFLICT,
        "beyond-tier",
    )
    .await;
    let analyst = app.token(Some(&d.acme), Role::SecurityAnalyst).await;
    let risk = observe(&app, &supervisor, &critical, &["urgency", "background_prompting"]).await;
    assert_eq!(
        (risk["band"].as_str(), risk["route"]["action"].as_str(), risk["route"]["hold"].as_bool()),
        (Some("critical"), Some("hold"), Some(true)),
        "{risk}"
    );
    assert_eq!(risk["route"]["lockdown_offered"], true);
    assert!(codes(&risk).contains(&"ip_denied".to_owned()), "{risk}");
    let detail = risk["reasons"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("“blocked”") && !detail.contains("198.51.100.77"), "no address in a reason: {detail}");
    expect_problem(decide(&app, &analyst, &critical).await, StatusCode::LOCKED, "risk-hold").await;
    let rejected = app
        .post_ok(&analyst, &path(&critical, "decide"), json!({"approve": false, "reason": "impostor"}), StatusCode::OK)
        .await;
    assert_eq!(rejected["state"], "rejected");

    // Each assessment is on the timeline (and so in the audit log), with its reasons.
    let timeline = app.get_ok(&d.agent, &path(&critical, "timeline")).await;
    let assessed: Vec<&Value> =
        timeline["items"].as_array().unwrap().iter().filter(|e| e["type"] == "case.risk_assessed").collect();
    assert!(assessed.len() >= 2, "{timeline}");
    let last = assessed.last().unwrap();
    assert_eq!(last["actor"]["kind"], "system");
    assert_eq!(last["data"]["band_in_force"], "critical");
    assert!(last["data"]["reasons"].as_array().unwrap().iter().any(|r| r["code"] == "observed_background_prompting"));
}

fn blocked_lists() -> tempfile::TempDir {
    lists_dir(&[("acme/blocked.deny.txt", "# addresses acme blocks\n198.51.100.0/24\n")])
}

#[tokio::test]
async fn every_band_routes_end_to_end_on_sqlite() {
    let dir = blocked_lists();
    every_band_routes(TestApp::sqlite_with_risk(engine(Some(dir.path()), None)).await).await;
}

#[tokio::test]
async fn every_band_routes_end_to_end_on_postgres() {
    let dir = blocked_lists();
    every_band_routes(TestApp::postgres_with_risk(engine(Some(dir.path()), None)).await).await;
}

#[tokio::test]
async fn a_band_never_goes_down_and_the_lockdown_case_is_not_held() {
    let dir = blocked_lists();
    let app = TestApp::sqlite_with_risk(engine(Some(dir.path()), None)).await;
    let d = desk(&app).await;
    // A compromised account starts at the security tier: an analyst works it.
    let analyst = app.token(Some(&d.acme), Role::SecurityAnalyst).await;
    let case = app
        .post_ok(
            &d.key,
            "/api/v1/cases",
            json!({"kind": "compromised_account", "channel": "web", "context": {"ip": "198.51.100.8"}}),
            StatusCode::CREATED,
        )
        .await;
    let id = case["id"].as_str().unwrap().to_owned();
    app.post_ok(&analyst, &path(&id, "start-identification"), json!({}), StatusCode::OK).await;
    let answer = app
        .post_ok(
            &analyst,
            &path(&id, "identification"),
            json!({"full_name": "Jane Q. Doe", "account_number": "AC-jane"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(answer["outcome"], "identified", "{answer}");
    let risk = observe(&app, &analyst, &id, &["urgency", "background_prompting"]).await;
    assert_eq!(risk["band"], "critical", "{risk}");
    // The compromised-account case is the lockdown: it goes ahead, with approval, at tier 3.
    assert_eq!(
        (risk["route"]["action"].as_str(), risk["route"]["hold"].as_bool()),
        (Some("supervisor_approval"), Some(false))
    );
    // Re-assessing with nothing new keeps the band; a fresh POST changes nothing.
    let again = app.post_ok(&analyst, &path(&id, "risk"), json!({}), StatusCode::OK).await;
    assert_eq!(again["band"], "critical");
    assert_eq!(again["score"], risk["score"]);
}

#[tokio::test]
async fn velocity_counts_across_channels_and_per_address() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    // The same customer by phone, chat and web in one day: the third request is flagged.
    let first = d.identified(&app, "password_reset", "phone", json!({"phone": "201 555 0123"})).await;
    let second = d.identified(&app, "password_reset", "chat", json!({"phone": "(201) 555-0123"})).await;
    let third = d.identified(&app, "password_reset", "web", json!({"phone": "+1 201 555 0123"})).await;
    for id in [&first, &second] {
        assert!(!codes(&app.get_ok(&d.agent, &path(id, "risk")).await).contains(&"velocity_customer".to_owned()));
    }
    let risk = app.get_ok(&d.agent, &path(&third, "risk")).await;
    assert!(codes(&risk).contains(&"velocity_customer".to_owned()), "{risk}");
    assert!(risk["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["detail"].as_str().unwrap().starts_with("3 recovery requests for this customer in the last 24 h")));
    // And the phone the requests came from, three times, however it was written.
    assert!(codes(&risk).contains(&"velocity_phone".to_owned()), "{risk}");

    // A wave from one address, for nobody in particular: the fifth within the hour is flagged
    // at intake, before anyone identifies anything.
    let mut last = Value::Null;
    for _ in 0..5 {
        last = app
            .post_ok(
                &d.key,
                "/api/v1/cases",
                json!({"kind": "password_reset", "channel": "web", "context": {"ip": "203.0.113.9", "user_agent": "curl/8"}}),
                StatusCode::CREATED,
            )
            .await;
    }
    let risk = app.get_ok(&d.agent, &path(last["id"].as_str().unwrap(), "risk")).await;
    assert!(codes(&risk).contains(&"velocity_ip".to_owned()), "{risk}");
    // The address is kept sealed and looked up by a blind index: not in the database in the clear.
    let rows: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT ip_bidx, context FROM risk_requests").fetch_all(&sqlite_pool(&app).await).await.unwrap();
    assert!(rows.iter().all(|(bidx, ctx)| {
        !bidx.as_deref().unwrap_or("").contains("203.0.113.9") && !ctx.as_deref().unwrap_or("").contains("203.0.113.9")
    }));
}

async fn sqlite_pool(app: &TestApp) -> sqlx::SqlitePool {
    let db = app.sqlite_file().expect("a SQLite app has its database file");
    sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap()
}

#[tokio::test]
async fn failures_and_the_sign_in_history_are_signals() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    // Jane signs in once from her laptop (the test's address is the loopback).
    let login = app
        .client
        .post(format!("{}/api/v1/directory/acme/login", app.base))
        .header("user-agent", "Jane's laptop")
        .json(&json!({"username": "jane", "password": "an initial password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let id =
        d.identified(&app, "password_reset", "web", json!({"ip": "127.0.0.1", "user_agent": "Jane's laptop"})).await;
    let risk = app.get_ok(&d.agent, &path(&id, "risk")).await;
    let found = codes(&risk);
    assert!(found.contains(&"known_ip".to_owned()) && found.contains(&"known_device".to_owned()), "{risk}");

    // A wrong code counts: the next assessment says so.
    app.send_code(&d.agent, &id, "email-0").await;
    let wrong = app.post(&d.agent, &path(&id, "verification/code"), json!({"code": "000000"})).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let risk = app.post_ok(&d.agent, &path(&id, "risk"), json!({}), StatusCode::OK).await;
    assert!(codes(&risk).contains(&"failed_verifications".to_owned()), "{risk}");

    // From elsewhere, on another device: new network and device.
    let other = d.identified(&app, "password_reset", "web", json!({"ip": "203.0.113.50", "user_agent": "Other"})).await;
    let found = codes(&app.get_ok(&d.agent, &path(&other, "risk")).await);
    assert!(found.contains(&"new_network".to_owned()) && found.contains(&"new_device".to_owned()), "{found:?}");
}

#[tokio::test]
async fn a_fresh_sim_swap_is_a_reason_and_the_provider_is_camara() {
    let camara = Camara::default();
    let base = camara.start().await;
    camara.swapped(JANE_PHONE, Some("2026-11-02T07:00:00Z"));
    let app = TestApp::sqlite_with_risk(engine(None, Some(&base))).await;
    let d = desk(&app).await;
    let id = d.identified(&app, "mfa_recovery", "phone", json!({})).await;
    let risk = app.get_ok(&d.agent, &path(&id, "risk")).await;
    assert!(codes(&risk).contains(&"sim_swap_fresh".to_owned()), "{risk}");
    let reason = risk["reasons"].as_array().unwrap().iter().find(|r| r["code"] == "sim_swap_fresh").unwrap();
    assert_eq!(reason["source"], "sim_swap:camara");
    assert!(reason["detail"].as_str().unwrap().contains("changed 2 hours ago"), "{reason}");
    // M5: an SMS code over the swapped SIM proves nothing, and SMS is no longer offered.
    let reset = d.identified(&app, "password_reset", "phone", json!({})).await;
    let supervisor = app.token(Some(&d.acme), Role::Supervisor).await;
    let proof = app.verify_by_code(&supervisor, &reset, "phone-0").await;
    assert_eq!(proof["result"], "passed", "{proof}");
    let assessment = &proof["verification"]["assessment"];
    assert_eq!(assessment["satisfied"], false, "{proof}");
    assert!(assessment["not_counted"].as_array().unwrap().iter().any(|n| n == "sms: sim_swap"), "{proof}");
    assert!(!proof["verification"]["available"].as_array().unwrap().iter().any(|m| m == "sms"), "{proof}");

    // The provider's own operations, as the interface names them.
    let provider = HttpSimSwap::new(&base, None, 1_000).unwrap();
    assert!(provider.retrieve_date(JANE_PHONE).await.unwrap().is_some());
    assert!(provider.check(JANE_PHONE, 2_400).await.unwrap());
    assert_eq!(provider.retrieve_date("+15550000000").await, Err(SimSwapError::UnknownNumber));
    camara.swapped("+15550000001", None);
    assert_eq!(provider.retrieve_date("+15550000001").await, Ok(None));
}

#[tokio::test]
async fn a_provider_that_times_out_does_not_delay_the_answer_beyond_its_deadline() {
    let camara = Camara::default();
    let base = camara.start().await;
    camara.swapped(JANE_PHONE, Some("2026-11-02T07:00:00Z"));
    *camara.delay.lock().unwrap() = Duration::from_secs(3);
    let app = TestApp::sqlite_with_risk(engine(None, Some(&base))).await;
    let d = desk(&app).await;
    let admin = app.token(Some(&d.acme), Role::TenantAdmin).await;
    app.call(
        reqwest::Method::PUT,
        "/api/v1/policy",
        Some(&admin),
        Some(json!({"base_version": null, "policy": {"risk": {"deadlines_ms": {"sim_swap": 200}}}})),
    )
    .await
    .error_for_status()
    .unwrap();
    let id = d.identified(&app, "mfa_recovery", "phone", json!({})).await;
    let started = Instant::now();
    let risk = app.post_ok(&d.agent, &path(&id, "risk"), json!({}), StatusCode::OK).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1_000), "the assessment took {took:?} with a 200 ms deadline");
    let missing = risk["reasons"].as_array().unwrap().iter().find(|r| r["code"] == "signal_missing").expect("missing");
    assert!(missing["detail"].as_str().unwrap().contains("did not answer within 200 ms"), "{missing}");
    assert_eq!(missing["points"], 15, "fail-closed by default");
    assert_eq!(missing["source"], "sim_swap:camara");
    assert!(*camara.calls.lock().unwrap() >= 1);
}

#[tokio::test]
async fn lists_reload_and_a_bad_line_keeps_the_lists_in_force() {
    let dir = lists_dir(&[
        ("tor-exit.deny.txt", "203.0.113.0/24\n"),
        ("disposable.domains.txt", "mailinator.com\n"),
        ("README.md", "not a list\n"),
    ]);
    let app = TestApp::sqlite_with_risk(engine(Some(dir.path()), None)).await;
    let d = desk(&app).await;
    let admin = app.token(Some(&d.acme), Role::TenantAdmin).await;
    let lists = app.get_ok(&admin, "/api/v1/risk/lists").await;
    assert_eq!(lists["lists"].as_array().unwrap().len(), 2, "{lists}");
    let case = app
        .post_ok(
            &d.key,
            "/api/v1/cases",
            json!({"kind": "contact_change", "channel": "email", "context": {"ip": "203.0.113.4", "email": "x@eu.Mailinator.com"}}),
            StatusCode::CREATED,
        )
        .await;
    let found = codes(&app.get_ok(&d.agent, &path(case["id"].as_str().unwrap(), "risk")).await);
    assert!(found.contains(&"ip_denied".to_owned()) && found.contains(&"disposable_email".to_owned()), "{found:?}");

    // A tenant's own allow list, then a broken file: refused with its line, the old lists stay.
    std::fs::create_dir_all(dir.path().join("acme")).unwrap();
    std::fs::write(dir.path().join("acme/office.allow.txt"), "192.0.2.0/24\n").unwrap();
    let reloaded = app.post_ok(&admin, "/api/v1/risk/lists/reload", json!({}), StatusCode::OK).await;
    assert_eq!(reloaded["lists"].as_array().unwrap().len(), 3, "{reloaded}");
    std::fs::write(dir.path().join("tor-exit.deny.txt"), "203.0.113.0/24\n# fine\n203.0.113.999\n").unwrap();
    let refused = expect_problem(
        app.post(&admin, "/api/v1/risk/lists/reload", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("tor-exit.deny.txt:3"), "{refused}");
    let lists = app.get_ok(&admin, "/api/v1/risk/lists").await;
    assert_eq!(lists["lists"].as_array().unwrap().len(), 3, "the lists in force stay: {lists}");
    assert!(lists["last_error"].as_str().unwrap().contains(":3:"), "{lists}");
    // Another tenant does not see acme's own list, nor what is wrong in acme's files.
    let beta = app.tenant("beta").await;
    let beta_admin = app.token(Some(&beta), Role::TenantAdmin).await;
    assert_eq!(app.get_ok(&beta_admin, "/api/v1/risk/lists").await["lists"].as_array().unwrap().len(), 2);
    std::fs::write(dir.path().join("tor-exit.deny.txt"), "203.0.113.0/24\n").unwrap();
    std::fs::write(dir.path().join("acme/office.allow.txt"), "192.0.2.0/24\n192.0.2.300 # the office\n").unwrap();
    let refused = app.post(&beta_admin, "/api/v1/risk/lists/reload", json!({})).await.text().await.unwrap();
    assert!(
        !refused.contains("acme") && !refused.contains("192.0.2.300") && refused.contains("another tenant"),
        "{refused}"
    );
    let own = app.post(&admin, "/api/v1/risk/lists/reload", json!({})).await.text().await.unwrap();
    assert!(own.contains("acme/office.allow.txt:2"), "{own}");
    std::fs::write(dir.path().join("acme/office.allow.txt"), "192.0.2.0/24\n").unwrap();
    std::fs::write(dir.path().join("tor-exit.deny.txt"), "203.0.113.0/24\n# fine\n203.0.113.999\n").unwrap();
    // An agent may not reload them.
    assert_eq!(app.post(&d.agent, "/api/v1/risk/lists/reload", json!({})).await.status(), StatusCode::FORBIDDEN);

    // At start-up, a broken file stops the start with its name and line.
    let error = Lists::load(Some(dir.path().to_owned()), chrono::Utc::now()).unwrap_err();
    assert_eq!(error.line, 3);
    assert!(
        error.to_string().ends_with("tor-exit.deny.txt:3: \"203.0.113.999\" is not an IP address or CIDR block"),
        "{error}"
    );
}

#[tokio::test]
async fn a_snapshot_scores_with_the_tenants_policy_or_a_draft() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let admin = app.token(Some(&acme), Role::TenantAdmin).await;
    let corpus = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/risk_corpus/01_sim_swapper_mfa_reset.json"),
    )
    .unwrap();
    let mut snapshot: Value = serde_json::from_str(&corpus).unwrap();
    snapshot.as_object_mut().unwrap().remove("expect_band");
    let scored = app.post_ok(&admin, "/api/v1/risk/score", json!({ "snapshot": snapshot }), StatusCode::OK).await;
    assert_eq!(
        (scored["band"].as_str(), scored["route"]["action"].as_str()),
        (Some("critical"), Some("hold")),
        "{scored}"
    );
    let draft = json!({"risk": {"weights": {"sim_swap_fresh": 20}}});
    let softer = app
        .post_ok(&admin, "/api/v1/risk/score", json!({ "snapshot": snapshot, "policy": draft }), StatusCode::OK)
        .await;
    assert!(softer["score"].as_u64() < scored["score"].as_u64(), "{softer}");

    let bad = json!({"snapshot": {"kind": "password_reset", "channel": "web", "now": "2026-11-02T14:00:00Z",
        "signals": [{"fact": "teleport"}]}});
    let problem = expect_problem(
        app.post(&admin, "/api/v1/risk/score", bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "snapshot/signals/0/fact", "{problem}");
    let bad_policy = json!({"snapshot": snapshot, "policy": {"risk": {"bands": {"high": 10}}}});
    let problem = expect_problem(
        app.post(&admin, "/api/v1/risk/score", bad_policy).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "policy/risk/bands", "{problem}");
}

#[tokio::test]
async fn bad_risk_input_is_refused_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let refused = expect_problem(
        app.post(
            &d.key,
            "/api/v1/cases",
            json!({"kind": "password_reset", "channel": "web", "context": {"ip": "300.1.2.3"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "context/ip", "{refused}");
    let refused = expect_problem(
        app.post(&d.key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "web", "context": {"zip": "1"}}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("zip"), "{refused}");
    // Staff never type in where the request came from: an allow-listed address would lower it.
    let agent_case = json!({"kind": "password_reset", "channel": "web", "context": {"ip": "192.0.2.1"}});
    expect_problem(app.post(&d.agent, "/api/v1/cases", agent_case).await, StatusCode::FORBIDDEN, "context-from-intake")
        .await;
    let cases = app.get_ok(&d.key, "/api/v1/cases").await;
    assert_eq!(cases["items"].as_array().unwrap().len(), 0, "nothing was opened");

    let id = d.identified(&app, "password_reset", "phone", json!({})).await;
    let before = app.get_ok(&d.agent, &format!("/api/v1/cases/{id}")).await;
    let refused = expect_problem(
        app.post(&d.agent, &path(&id, "observations"), json!({"tells": ["urgency", "psychic"]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "tells/1", "{refused}");
    expect_problem(
        app.post(&d.agent, &path(&id, "observations"), json!({"tells": []})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    let after = app.get_ok(&d.agent, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(before["version"], after["version"], "refusals change nothing");
    let admin = app.token(Some(&d.acme), Role::TenantAdmin).await;
    let problem = expect_problem(
        app.call(
            reqwest::Method::PUT,
            "/api/v1/policy",
            Some(&admin),
            Some(json!({"base_version": null, "policy": {"risk": {"weights": {"sim_swap_recent": -40}}}})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "risk/weights/sim_swap_recent", "{problem}");
    assert_eq!(app.get(&d.agent, "/api/v1/cases/not-a-case/risk").await.status(), StatusCode::NOT_FOUND);
    // Another tenant's case is not found, never forbidden (G6).
    let beta = app.tenant("beta").await;
    let beta_agent = app.token(Some(&beta), Role::Agent).await;
    assert_eq!(app.get(&beta_agent, &path(&id, "risk")).await.status(), StatusCode::NOT_FOUND);
    let observed = app.post(&beta_agent, &path(&id, "observations"), json!({"tells": ["urgency"]})).await;
    assert_eq!(observed.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_band_that_rises_after_the_decision_still_asks_for_its_proof() {
    let app = TestApp::sqlite().await;
    let d = desk(&app).await;
    let id = d.identified(&app, "password_reset", "phone", json!({})).await;
    app.verify_by_code(&d.agent, &id, "email-0").await;
    assert_eq!(decide(&app, &d.agent, &id).await.status(), StatusCode::OK);
    // What the agent noticed after deciding raises the band: tier 2, step-up, approval.
    let risk = observe(&app, &d.agent, &id, &["caller_id_mismatch", "refuses_code"]).await;
    assert_eq!(risk["band"], "high", "{risk}");
    let supervisor = app.token(Some(&d.acme), Role::Supervisor).await;
    let refused = expect_problem(
        app.post(&supervisor, &path(&id, "execute"), json!({})).await,
        StatusCode::CONFLICT,
        "verification-incomplete",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("the risk is high"), "{refused}");
    // The decided case takes the extra proof, then waits for a second supervisor.
    let proof = app.verify_by_code(&supervisor, &id, "phone-0").await;
    assert_eq!(proof["verification"]["assessment"]["satisfied"], true, "{proof}");
    expect_problem(
        app.post(&supervisor, &path(&id, "execute"), json!({})).await,
        StatusCode::CONFLICT,
        "approval-required",
    )
    .await;
    let reason = json!({"reason": "second proof given after the tells"});
    app.post_ok(&supervisor, &path(&id, "request-approval"), reason.clone(), StatusCode::OK).await;
    let approver = app.token(Some(&d.acme), Role::Supervisor).await;
    assert_eq!(app.post_ok(&approver, &path(&id, "approve"), reason, StatusCode::OK).await["state"], "executing");
}
