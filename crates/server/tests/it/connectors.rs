//! Connectors to where the account really lives (issue 6 item 4): a real SCIM 2.0 server (the
//! `scim2-server` package from PyPI, started here) and a tenant webhook that checks Regain's
//! signatures; a peer that is down is retried with backoff while the case shows the pending step.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use chrono::Duration;
use regain_core::Role;
use regain_delivery::signing::WebhookSecret;
use regain_server::recovery::connector::ConnectorConfig;
use regain_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{customer_json, expect_problem, TestApp};

const SCIM_TOKEN: &str = "scim-test-token";
const NEW_PASSWORD: &str = "umbrella-gravel-Tuesday-91";

/// A `scim2-server` process on a free port, killed on drop.
struct ScimPeer {
    child: std::process::Child,
    url: String,
    port: u16,
}

impl ScimPeer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        Self::start_on(port).await
    }

    async fn start_on(port: u16) -> Self {
        let python = std::env::var("REGAIN_TEST_PYTHON")
            .expect("REGAIN_TEST_PYTHON must name the test virtualenv's Python (scripts/test.sh sets it)");
        let bin = std::path::Path::new(&python).with_file_name("scim2-server");
        let child = std::process::Command::new(&bin)
            .args(["--port", &port.to_string(), "--bearer-token", SCIM_TOKEN])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", bin.display()));
        // Owned at once, so that it is killed and waited for on every path (Drop).
        let peer = Self { child, url: format!("http://127.0.0.1:{port}/v2"), port };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let up = client.get(format!("{}/ServiceProviderConfig", peer.url)).bearer_auth(SCIM_TOKEN).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return peer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("scim2-server did not start on port {port}");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.url)).bearer_auth(SCIM_TOKEN);
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body.to_string());
        }
        let response = request.send().await.expect("scim call");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.expect("scim json")
    }
}

impl Drop for ScimPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn app_with(connector: ConnectorConfig) -> TestApp {
    let config =
        ServerConfig { connectors: BTreeMap::from([("acme".to_owned(), connector)]), ..ServerConfig::default() };
    app_with_config(config).await
}

async fn app_with_config(config: ServerConfig) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = regain_store_sqlite::SqliteStore::connect(&regain_store_sqlite::SqliteConfig::for_file(
        &dir.path().join("regain.db"),
    ))
    .await
    .expect("sqlite");
    store.migrate().await.expect("migrate");
    regain_store::conformance::unlock(&store).await;
    TestApp::start(Arc::new(store), Some(dir), config).await
}

struct Desk {
    key: String,
    agent: String,
}

async fn desk(app: &TestApp) -> Desk {
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let agent = app.token(Some(&acme), Role::Agent).await;
    Desk { key, agent }
}

impl Desk {
    /// A case of `kind`, identified, verified by an email code, decided and executed.
    async fn executed(&self, app: &TestApp, kind: &str) -> String {
        let case = app
            .post_ok(&self.key, "/api/v1/cases", json!({"kind": kind, "channel": "chat"}), StatusCode::CREATED)
            .await;
        let id = case["id"].as_str().expect("id").to_owned();
        app.post_ok(&self.agent, &format!("/api/v1/cases/{id}/start-identification"), json!({}), StatusCode::OK).await;
        app.post_ok(
            &self.agent,
            &format!("/api/v1/cases/{id}/identification"),
            json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"}),
            StatusCode::OK,
        )
        .await;
        app.verify_by_code(&self.agent, &id, "email-0").await;
        app.post_ok(
            &self.agent,
            &format!("/api/v1/cases/{id}/decide"),
            json!({"approve": true, "reason": "code"}),
            StatusCode::OK,
        )
        .await;
        let executed =
            app.post_ok(&self.agent, &format!("/api/v1/cases/{id}/execute"), json!({}), StatusCode::OK).await;
        assert_eq!(executed["state"], "executing");
        id
    }

    /// A contact-change case for jane.new@example.org, its code confirmed, approved by a
    /// supervisor and scheduled: cooling off, every old address told.
    async fn cooling_contact_change(&self, app: &TestApp, tenant: &regain_core::Tenant) -> String {
        self.cooling_contact_change_with(app, tenant, &["email-0"]).await
    }

    /// The same, verified by a code to each of `contacts`.
    async fn cooling_contact_change_with(
        &self,
        app: &TestApp,
        tenant: &regain_core::Tenant,
        contacts: &[&str],
    ) -> String {
        let case = app
            .post_ok(
                &self.key,
                "/api/v1/cases",
                json!({"kind": "contact_change", "channel": "phone"}),
                StatusCode::CREATED,
            )
            .await;
        let id = case["id"].as_str().expect("id").to_owned();
        let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");
        app.post_ok(&self.agent, &path("start-identification"), json!({}), StatusCode::OK).await;
        let claim = json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"});
        app.post_ok(&self.agent, &path("identification"), claim, StatusCode::OK).await;
        for contact in contacts {
            app.verify_by_code(&self.agent, &id, contact).await;
        }
        app.post_ok(&self.agent, &path("decide"), json!({"approve": true, "reason": "code"}), StatusCode::OK).await;
        let email = json!({"email": "jane.new@example.org"});
        app.post_ok(&self.agent, &path("contact-change"), email, StatusCode::CREATED).await;
        app.deliver().await;
        let code = crate::support::code_in(&app.sent().last().expect("the code").body);
        app.post_ok(&self.agent, &path("contact-change/code"), json!({"code": code}), StatusCode::OK).await;
        app.post_ok(&self.agent, &path("request-approval"), json!({"reason": "new email"}), StatusCode::OK).await;
        let supervisor = app.token(Some(tenant), Role::Supervisor).await;
        app.post_ok(&supervisor, &path("approve"), json!({"reason": "ok"}), StatusCode::OK).await;
        assert_eq!(app.perform_actions().await, 1);
        assert_eq!(self.case(app, &id).await["state"], "cooling_off");
        id
    }

    async fn case(&self, app: &TestApp, id: &str) -> Value {
        app.get_ok(&self.agent, &format!("/api/v1/cases/{id}")).await
    }

    async fn timeline(&self, app: &TestApp, id: &str) -> String {
        app.get_ok(&self.agent, &format!("/api/v1/cases/{id}/timeline")).await.to_string()
    }
}

#[tokio::test]
async fn the_scim_connector_changes_the_user_in_a_real_scim_server() {
    let peer = ScimPeer::start().await;
    let user = peer
        .call(
            reqwest::Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "jane", "active": false, "password": "the old one",
                "emails": [{"value": "jane@example.com", "primary": true}],
            })),
        )
        .await;
    let user_id = user["id"].as_str().expect("scim id").to_owned();
    let app = app_with(ConnectorConfig::Scim { url: peer.url.clone(), token: Some(SCIM_TOKEN.into()) }).await;
    let d = desk(&app).await;

    // Unlock: PATCH active, visible in the peer.
    let id = d.executed(&app, "account_unlock").await;
    assert_eq!(d.case(&app, &id).await["actions"][0]["connector"], "scim");
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(d.case(&app, &id).await["state"], "resolved");
    let seen = peer.call(reqwest::Method::GET, &format!("/Users/{user_id}"), None).await;
    assert_eq!(seen["active"], true, "{seen}");
    let timeline = d.timeline(&app, &id).await;
    assert!(timeline.contains("scim: SCIM PATCH active: 20"), "{timeline}");

    // Password reset: Regain's link and page; the password goes to the peer, not into Regain.
    app.deliver().await;
    let version = seen["meta"]["version"].clone();
    let id = d.executed(&app, "password_reset").await;
    assert_eq!(app.perform_actions().await, 1);
    let before = app.sent().len();
    app.deliver().await;
    let link = app.sent()[before].body.clone();
    let token: String = link[link.find("/reset/").expect("link") + 7..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let set = app
        .client
        .post(format!("{}/reset/{token}", app.base))
        .form(&[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(d.case(&app, &id).await["state"], "resolved");
    let after = peer.call(reqwest::Method::GET, &format!("/Users/{user_id}"), None).await;
    assert_ne!(after["meta"]["version"], version, "the peer's user changed: {after}");
    assert!(after.get("password").is_none(), "SCIM never returns a password");
    // The directory inside Regain kept its own (the initial) password, and nothing of the new one.
    let tenant = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let account = app.state.store.directory_account(tenant.id, "jane").await.expect("read").expect("jane");
    let local = account.password_hash.expect("initial hash");
    assert!(!app.state.hasher.verify(NEW_PASSWORD, &local).await.expect("verify"));
}

#[tokio::test]
async fn a_connector_that_is_down_is_retried_and_the_case_shows_the_pending_step() {
    let peer = ScimPeer::start().await;
    peer.call(
        reqwest::Method::POST,
        "/Users",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jane", "active": false})),
    )
    .await;
    let (url, port) = (peer.url.clone(), peer.port);
    let app = app_with(ConnectorConfig::Scim { url, token: Some(SCIM_TOKEN.into()) }).await;
    let d = desk(&app).await;
    let id = d.executed(&app, "account_unlock").await;

    drop(peer);
    assert_eq!(app.perform_actions().await, 1);
    let case = d.case(&app, &id).await;
    assert_eq!(case["state"], "executing");
    let action = &case["actions"][0];
    assert_eq!((action["state"].as_str(), action["attempts"].as_u64()), (Some("pending"), Some(1)), "{case}");
    assert!(action["last_error"].as_str().unwrap_or("").contains("could not connect"), "{case}");
    assert!(action["next_attempt_at"].is_string(), "{case}");
    assert_eq!(app.perform_actions().await, 0, "not before the backoff");

    // The peer is back (its users gone with the old process: a new one is made); after the
    // backoff the action goes through.
    let peer = ScimPeer::start_on(port).await;
    let user = peer
        .call(
            reqwest::Method::POST,
            "/Users",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jane", "active": false}),
            ),
        )
        .await;
    app.clock.advance(Duration::minutes(5));
    assert_eq!(app.perform_actions().await, 1);
    let case = d.case(&app, &id).await;
    assert_eq!(case["state"], "resolved", "{case}");
    assert_eq!(case["actions"][0]["attempts"], 2);
    let seen = peer.call(reqwest::Method::GET, &format!("/Users/{}", user["id"].as_str().expect("id")), None).await;
    assert_eq!(seen["active"], true);
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, String)>>>);

/// The tenant's endpoint: checks every signature; answers 503 to the first request and 200
/// with a reference to the next.
async fn tenant_endpoint(secret: WebhookSecret, received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/regain", listener.local_addr().expect("addr"));
    let secret = Arc::new(secret);
    let app = axum::Router::new().route(
        "/regain",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (secret, received) = (secret.clone(), received.clone());
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                // Checked as of when it was sent: the test's clock is fixed in the past.
                let sent = header("webhook-timestamp").parse().unwrap_or(0);
                let checked = secret.verify(
                    &header("webhook-id"),
                    &header("webhook-timestamp"),
                    &header("webhook-signature"),
                    body.as_bytes(),
                    sent,
                );
                let mut list = received.0.lock().expect("lock");
                list.push((headers.clone(), body));
                match (checked, list.len()) {
                    (Err(_), _) => (StatusCode::UNAUTHORIZED, String::new()),
                    (Ok(()), 1) => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
                    (Ok(()), _) => (StatusCode::OK, json!({"reference": "T-4711"}).to_string()),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    url
}

#[tokio::test]
async fn the_webhook_connector_sends_a_signed_request_and_records_the_answer() {
    let secret = WebhookSecret::from_bytes((0u8..32).collect()).expect("secret");
    let received = Received::default();
    let url = tenant_endpoint(secret.clone(), received.clone()).await;
    let app = app_with(ConnectorConfig::Webhook { url, secret }).await;
    let d = desk(&app).await;
    let id = d.executed(&app, "account_unlock").await;

    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(d.case(&app, &id).await["actions"][0]["state"], "pending", "503: retried later");
    app.clock.advance(Duration::minutes(5));
    assert_eq!(app.perform_actions().await, 1);
    let case = d.case(&app, &id).await;
    assert_eq!(case["state"], "resolved", "{case}");
    assert!(d.timeline(&app, &id).await.contains("webhook answered 200, reference T-4711"));

    let list = received.0.lock().expect("lock").clone();
    assert_eq!(list.len(), 2);
    // The same idempotency key both times: the tenant can tell a retry from a second request.
    let ids: Vec<_> = list.iter().map(|(h, _)| h["webhook-id"].to_str().expect("id").to_owned()).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], case["actions"][0]["id"].as_str().expect("action id"));
    let body: Value = serde_json::from_str(&list[1].1).expect("json");
    assert_eq!(body["type"], "account.unlock");
    assert_eq!(body["data"]["username"], "jane");
    assert_eq!(body["data"]["external_id"], "crm-jane");
}

/// A PostgreSQL app with this configuration (for the SQL that differs: `SKIP LOCKED` claims).
async fn postgres_with_config(config: ServerConfig) -> TestApp {
    let mut pg = regain_store_postgres::PostgresConfig::new(&crate::support::fresh_postgres_database().await);
    pg.acquire_timeout_ms = 1_000;
    let store = regain_store_postgres::PostgresStore::connect(&pg).await.expect("postgres");
    store.migrate().await.expect("migrate");
    regain_store::conformance::unlock(&store).await;
    TestApp::start(Arc::new(store), None, config).await
}

#[tokio::test]
async fn event_webhooks_are_signed_retried_and_logged_on_sqlite() {
    event_webhooks_are_signed_retried_and_logged(false).await;
}

#[tokio::test]
async fn event_webhooks_are_signed_retried_and_logged_on_postgres() {
    event_webhooks_are_signed_retried_and_logged(true).await;
}

/// Event webhooks: each case event the tenant's CRM asked for arrives signed, once per event
/// (the same `webhook-id` on a retry), and the delivery log says what happened.
async fn event_webhooks_are_signed_retried_and_logged(postgres: bool) {
    use regain_server::webhooks::WebhookEndpoint;

    let secret = WebhookSecret::from_bytes((7u8..39).collect()).expect("secret");
    let received = Received::default();
    let url = tenant_endpoint(secret.clone(), received.clone()).await;
    let endpoint = WebhookEndpoint { url, secret, events: None };
    let config = ServerConfig { webhooks: BTreeMap::from([("acme".to_owned(), endpoint)]), ..ServerConfig::default() };
    let app = if postgres { postgres_with_config(config).await } else { app_with_config(config).await };
    let d = desk(&app).await;
    let id = d.executed(&app, "account_unlock").await;
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(d.case(&app, &id).await["state"], "resolved");

    let log = app.get_ok(&d.key, &format!("/api/v1/webhooks/deliveries?case_id={id}")).await;
    let mut types: Vec<&str> = log.as_array().expect("list").iter().filter_map(|d| d["event_type"].as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["case.created", "case.resolved"], "{log}");

    // The first attempt meets a 503 and waits; the next round after the backoff delivers.
    assert_eq!(regain_server::webhooks::deliver_due(&app.state).await.expect("deliver"), 2);
    let log = app.get_ok(&d.key, &format!("/api/v1/webhooks/deliveries?case_id={id}")).await;
    let states: Vec<(&str, u64)> = log
        .as_array()
        .expect("list")
        .iter()
        .map(|d| (d["state"].as_str().unwrap_or(""), d["attempts"].as_u64().unwrap_or(0)))
        .collect();
    assert!(states.contains(&("pending", 1)) && states.contains(&("delivered", 1)), "{log}");
    app.clock.advance(Duration::minutes(5));
    assert_eq!(regain_server::webhooks::deliver_due(&app.state).await.expect("deliver"), 1);
    assert_eq!(regain_server::webhooks::deliver_due(&app.state).await.expect("deliver"), 0);
    let log = app.get_ok(&d.key, &format!("/api/v1/webhooks/deliveries?case_id={id}")).await;
    for delivery in log.as_array().expect("list") {
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert_eq!(delivery["last_status"], 200);
        assert_eq!(delivery["payload"]["data"]["case_id"], id.as_str());
    }

    let list = received.0.lock().expect("lock").clone();
    assert_eq!(list.len(), 3, "two events, one retried");
    let mut ids: Vec<String> = list.iter().map(|(h, _)| h["webhook-id"].to_str().expect("id").to_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "a retry keeps its webhook-id");
    for (_, body) in &list {
        assert!(!body.contains("jane"), "ids only, no personal data: {body}");
    }
    // A page at a time, by cursor.
    // (Both events have the same time on the test's fixed clock; the pages still split them.)
    let first = app.get_ok(&d.key, &format!("/api/v1/webhooks/deliveries?case_id={id}&limit=1")).await;
    let cursor = first[0]["id"].as_str().expect("id").to_owned();
    let next = app.get_ok(&d.key, &format!("/api/v1/webhooks/deliveries?case_id={id}&limit=1&cursor={cursor}")).await;
    assert_eq!(next.as_array().map(Vec::len), Some(1), "{next}");
    assert_ne!(next[0]["event_type"], first[0]["event_type"], "{first} {next}");
    let last = app
        .get_ok(
            &d.key,
            &format!("/api/v1/webhooks/deliveries?case_id={id}&cursor={}", next[0]["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(last, json!([]));
    let bad = app.get(&d.key, "/api/v1/webhooks/deliveries?cursor=drop%20table").await;
    crate::support::expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    // Bad input on the log is refused precisely.
    let bad = app.get(&d.key, "/api/v1/webhooks/deliveries?limit=0").await;
    crate::support::expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
    let bad = app.get(&d.key, "/api/v1/webhooks/deliveries?case_id=nope").await;
    crate::support::expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
}

/// Through a connector the reset link is spent before the call: a submission while the account
/// system is down gets "try again" and the link back; two submissions at once reach the peer once.
/// A refusal by the account system is an `action.failed` event for the tenant's ticketing,
/// naming the action, so a person there can act on it; the reason stays on the case.
#[tokio::test]
async fn a_refused_action_is_an_action_failed_event_naming_the_action() {
    use regain_server::webhooks::WebhookEndpoint;

    let secret = WebhookSecret::from_bytes((0u8..32).collect()).expect("secret");
    let refusing = reporting_endpoint(ReportDuringCall::default(), StatusCode::UNPROCESSABLE_ENTITY).await;
    let events = tenant_endpoint(secret.clone(), Received::default()).await;
    let only_failures = Some(std::collections::BTreeSet::from(["action.failed".to_owned()]));
    let config = ServerConfig {
        connectors: BTreeMap::from([(
            "acme".to_owned(),
            ConnectorConfig::Webhook { url: refusing, secret: secret.clone() },
        )]),
        webhooks: BTreeMap::from([("acme".to_owned(), WebhookEndpoint { url: events, secret, events: only_failures })]),
        ..ServerConfig::default()
    };
    let app = app_with_config(config).await;
    let d = desk(&app).await;
    let id = d.executed(&app, "account_unlock").await;
    assert_eq!(app.perform_actions().await, 1);
    let case = d.case(&app, &id).await;
    assert_eq!(case["actions"][0]["state"], "failed", "a 422 is a refusal, not retried: {case}");
    assert!(d.timeline(&app, &id).await.contains("422"), "the reason, on the case");

    let log = app.get_ok(&d.key, &format!("/api/v1/webhooks/deliveries?case_id={id}")).await;
    let log = log.as_array().expect("list");
    assert_eq!(log.len(), 1, "only the events the endpoint asked for: {log:?}");
    assert_eq!(log[0]["event_type"], "action.failed");
    let data = &log[0]["payload"]["data"];
    assert_eq!(data["action"], "unlock", "{data}");
    assert_eq!(data["case_id"], id.as_str());
    assert!(!data.to_string().contains("422"), "no connector answer in the payload: {data}");
}

#[tokio::test]
async fn a_reset_through_scim_survives_the_peer_being_down_and_double_submits_on_sqlite() {
    a_reset_through_scim_survives_the_peer_being_down_and_double_submits(false).await;
}

#[tokio::test]
async fn a_reset_through_scim_survives_the_peer_being_down_and_double_submits_on_postgres() {
    a_reset_through_scim_survives_the_peer_being_down_and_double_submits(true).await;
}

async fn a_reset_through_scim_survives_the_peer_being_down_and_double_submits(postgres: bool) {
    let peer = ScimPeer::start().await;
    let port = peer.port;
    let jane = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jane", "active": true});
    peer.call(reqwest::Method::POST, "/Users", Some(jane.clone())).await;
    let connector = ConnectorConfig::Scim { url: peer.url.clone(), token: Some(SCIM_TOKEN.into()) };
    let config =
        ServerConfig { connectors: BTreeMap::from([("acme".to_owned(), connector)]), ..ServerConfig::default() };
    let app = if postgres { postgres_with_config(config).await } else { app_with_config(config).await };
    let d = desk(&app).await;
    let id = d.executed(&app, "password_reset").await;
    assert_eq!(app.perform_actions().await, 1);
    let before = app.sent().len();
    app.deliver().await;
    let body = app.sent()[before].body.clone();
    let token: String = body[body.find("/reset/").expect("link") + 7..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let submit = || {
        app.client
            .post(format!("{}/reset/{token}", app.base))
            .form(&[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
            .send()
    };

    drop(peer);
    let down = submit().await.expect("post");
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(d.case(&app, &id).await["state"], "executing");
    let page = app.open_reset_link(&token).await;
    assert_eq!(page.status(), StatusCode::OK, "the link was given back");

    let peer = ScimPeer::start_on(port).await;
    let user = peer.call(reqwest::Method::POST, "/Users", Some(jane)).await;
    let version = user["meta"]["version"].clone();
    let (a, b) = tokio::join!(submit(), submit());
    let mut statuses = [a.expect("post").status(), b.expect("post").status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::GONE], "one of two at once");
    assert_eq!(d.case(&app, &id).await["state"], "resolved");
    let seen = peer.call(reqwest::Method::GET, &format!("/Users/{}", user["id"].as_str().expect("id")), None).await;
    assert_ne!(seen["meta"]["version"], version, "the peer took the password: {seen}");
}

/// A contact change through SCIM (RFC 7644 PATCH `emails`): nothing reaches the peer while the
/// change cools off; at the release the peer's user gets the new email in place of the old,
/// and Regain's record too. With the peer down the release waits (503), nothing changes, and
/// a sweep after the backoff's minute makes it.
#[tokio::test]
async fn a_contact_change_reaches_the_scim_peer_only_when_it_takes_effect() {
    let peer = ScimPeer::start().await;
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jane", "active": true,
        "emails": [{"value": "jane@example.com", "primary": true}],
    });
    let created = peer.call(reqwest::Method::POST, "/Users", Some(user.clone())).await;
    let user_id = created["id"].as_str().expect("scim id").to_owned();
    let (url, port) = (peer.url.clone(), peer.port);
    let app = app_with(ConnectorConfig::Scim { url, token: Some(SCIM_TOKEN.into()) }).await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");

    let id = d.cooling_contact_change(&app, &acme).await;
    let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");
    let seen = peer.call(reqwest::Method::GET, &format!("/Users/{user_id}"), None).await;
    assert_eq!(seen["emails"][0]["value"], "jane@example.com", "nothing before the release: {seen}");

    // The peer is down when the cooling-off ends: the release waits, nothing changes.
    drop(peer);
    app.clock.advance(chrono::Duration::hours(49));
    let refused = app.post(&d.key, &path("release"), json!({})).await;
    expect_problem(refused, StatusCode::SERVICE_UNAVAILABLE, "connector-unavailable").await;
    let waits = regain_server::sweeper::ReleaseWaits::default();
    assert_eq!(regain_server::sweeper::release_due(&app.state, &waits).await.expect("sweep"), 0);
    // (The agent's session idled out meanwhile; the integration reads on.)
    let d = Desk { agent: d.key.clone(), ..d };
    assert_eq!(d.case(&app, &id).await["state"], "cooling_off");
    // The peer could not be reached, so it certainly did not take it: still cancellable.
    assert_eq!(app.get_ok(&d.key, &path("contact-change")).await["state"], "confirmed");

    // It is back (a new process: the user made again); the next sweep makes the change.
    let peer = ScimPeer::start_on(port).await;
    let created = peer.call(reqwest::Method::POST, "/Users", Some(user)).await;
    let user_id = created["id"].as_str().expect("scim id").to_owned();
    // The failed release waits a minute before it is tried again, not one try every sweep.
    assert_eq!(regain_server::sweeper::release_due(&app.state, &waits).await.expect("sweep"), 0, "waiting");
    app.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(regain_server::sweeper::release_due(&app.state, &waits).await.expect("sweep"), 1);
    let case = app.get_ok(&d.key, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(case["state"], "resolved", "{case}");
    let seen = peer.call(reqwest::Method::GET, &format!("/Users/{user_id}"), None).await;
    let emails: Vec<&str> =
        seen["emails"].as_array().expect("emails").iter().filter_map(|e| e["value"].as_str()).collect();
    assert_eq!(emails, ["jane.new@example.org"], "{seen}");
    let change = app.get_ok(&d.key, &path("contact-change")).await;
    assert_eq!(change["state"], "applied", "{change}");
    assert!(d.timeline(&app, &id).await.contains("case.action_applied"));
}

/// The report to post from inside a contact change's connector call (its URL, once known),
/// and what the report page answered.
#[derive(Clone, Default)]
struct ReportDuringCall {
    target: Arc<Mutex<Option<String>>>,
    answered: Arc<Mutex<Vec<StatusCode>>>,
}

/// A tenant endpoint that, on a contact change, posts the report set in `report` and then
/// answers `status` (200 and a reference, or an error with no effect there); its URL.
async fn reporting_endpoint(report: ReportDuringCall, status: StatusCode) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/regain", listener.local_addr().expect("addr"));
    let endpoint = axum::Router::new().route(
        "/regain",
        axum::routing::post(move |body: String| {
            let report = report.clone();
            async move {
                let target = report.target.lock().expect("lock").clone();
                if let Some(target) = target.filter(|_| body.contains("account.set_contact")) {
                    let response = reqwest::Client::new()
                        .post(target)
                        .form(&[("decision", "report")])
                        .send()
                        .await
                        .expect("report");
                    report.answered.lock().expect("lock").push(response.status());
                }
                (status, json!({"reference": "T-9"}).to_string())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, endpoint).await.ok() });
    url
}

/// The "this wasn't me" link in the notice to jane's old address, as a URL on `app`.
async fn report_url(app: &TestApp) -> String {
    let notice = app
        .deliver_new()
        .await
        .into_iter()
        .find(|m| {
            m.body.contains("/report/")
                && matches!(&m.to, regain_delivery::Address::Email(a) if a == "jane@example.com")
        })
        .expect("the old address's notice");
    format!("{}/report/{}", app.base, crate::recovery::link_token(&notice.body, "report"))
}

/// A webhook tenant whose account system answers a contact change with `status`, after the
/// "this wasn't me" link of the old address's notice was posted from inside the call; jane's
/// contact change cooling off. The app, the desk, the tenant, the change's case and the report.
async fn contact_change_reported_during_its_call(
    status: StatusCode,
) -> (TestApp, Desk, regain_core::Tenant, String, ReportDuringCall) {
    let secret = WebhookSecret::from_bytes((0u8..32).collect()).expect("secret");
    let report = ReportDuringCall::default();
    let url = reporting_endpoint(report.clone(), status).await;
    let app = app_with(ConnectorConfig::Webhook { url, secret }).await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let id = d.cooling_contact_change(&app, &acme).await;
    // The old address's notice carries the "this wasn't me" link.
    *report.target.lock().expect("lock") = Some(report_url(&app).await);
    (app, d, acme, id, report)
}

/// The release hands a contact change to the tenant's account system, and while that call is
/// under way the customer reports it ("this wasn't me", G5). The account system may have made
/// the change already, so the report does not cancel it (that would leave the account system
/// holding a change Regain calls cancelled): it opens a security case, and the release
/// completes and records the change as applied, where a lockdown's rollback finds it (L0).
#[tokio::test]
async fn a_report_while_the_account_system_takes_a_contact_change_opens_a_security_case_and_the_change_is_recorded() {
    let (app, d, acme, id, report) = contact_change_reported_during_its_call(StatusCode::OK).await;
    let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");

    app.clock.advance(chrono::Duration::hours(49));
    assert_eq!(
        regain_server::sweeper::release_due(&app.state, &Default::default()).await.expect("sweep"),
        1,
        "the release completes"
    );
    assert_eq!(*report.answered.lock().expect("lock"), [StatusCode::OK], "the report was taken during the call");
    let key = d.key.clone();
    let case = app.get_ok(&key, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(case["state"], "resolved", "not cancelled: {case}");
    assert_eq!(app.get_ok(&key, &path("contact-change")).await["state"], "applied");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let security = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    assert_eq!(security["items"].as_array().map(Vec::len), Some(1), "the report opened a security case: {security}");
    assert_eq!(security["items"][0]["customer_id"], case["customer_id"]);
}

/// SECURITY.md G5: the same report, and the account system then answers with an error: it
/// did not take the change. The change is cancelled, not given back to be made at the next
/// release: the customer's "this wasn't me" holds, and the account system is not asked again.
#[tokio::test]
async fn a_report_while_the_account_system_refuses_a_contact_change_cancels_it() {
    let (app, d, acme, id, report) = contact_change_reported_during_its_call(StatusCode::SERVICE_UNAVAILABLE).await;
    let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");

    app.clock.advance(chrono::Duration::hours(49));
    let limits = Default::default();
    let sweep = || regain_server::sweeper::release_due(&app.state, &limits);
    assert_eq!(sweep().await.expect("sweep"), 0, "the account system did not take it");
    assert_eq!(*report.answered.lock().expect("lock"), [StatusCode::OK], "the report was taken during the call");
    assert_eq!(app.get_ok(&d.key, &path("contact-change")).await["state"], "cancelled");
    // The next sweeps close the case without asking the account system again.
    app.clock.advance(chrono::Duration::hours(2));
    sweep().await.expect("sweep");
    assert_eq!(report.answered.lock().expect("lock").len(), 1, "never sent again");
    let case = app.get_ok(&d.key, &format!("/api/v1/cases/{id}")).await;
    assert_ne!(case["state"], "cooling_off", "{case}");
    let timeline = app.get_ok(&d.key, &path("timeline")).await.to_string();
    assert!(timeline.contains("did not take it, and it was not made"), "{timeline}");
    let customer =
        regain_core::CustomerId::parse("customer_id", case["customer_id"].as_str().expect("id")).expect("customer id");
    let jane = app.state.store.customer(acme.id, customer).await.expect("read").expect("jane");
    let emails: Vec<&str> = jane.emails.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(emails, ["jane@example.com"], "not made");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let security = app.get_ok(&analyst, "/api/v1/cases?kind=compromised_account").await;
    assert_eq!(security["items"].as_array().map(Vec::len), Some(1), "the report opened a security case: {security}");
}

/// An account system that reads each call to its end and hangs up without an answer: its URL,
/// and how many calls of type `kind` it read.
async fn hanging_up_endpoint(kind: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/regain", listener.local_addr().expect("addr"));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (mut request, mut buf) = (Vec::new(), [0u8; 4096]);
                // The headers and the JSON body, to its last brace.
                while let Ok(n) = socket.read(&mut buf).await {
                    request.extend_from_slice(&buf[..n]);
                    if n == 0 || request.ends_with(b"}") {
                        break;
                    }
                }
                if String::from_utf8_lossy(&request).contains(kind) {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    (url, calls)
}

/// SECURITY.md P2, P3: a new password sent through the webhook connector, and the account
/// system hangs up without an answer: it may have set it. The customer is not told "nothing
/// changed" with the link given back; the link stays spent, the case says that nobody knows
/// and stays open for staff, every session ends and every address is told.
#[tokio::test]
async fn a_new_password_the_account_system_did_not_answer_is_not_reported_as_unchanged() {
    use std::sync::atomic::Ordering;
    let (url, calls) = hanging_up_endpoint("account.set_password").await;
    let secret = WebhookSecret::from_bytes((0u8..32).collect()).expect("secret");
    let app = app_with(ConnectorConfig::Webhook { url, secret }).await;
    let d = desk(&app).await;
    let id = d.executed(&app, "password_reset").await;
    assert_eq!(app.perform_actions().await, 1);
    let body = app.deliver_new().await.into_iter().find(|m| m.body.contains("/reset/")).expect("the link").body;
    let token = crate::recovery::link_token(&body, "reset");
    let form = [("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)];
    let answer = app.client.post(format!("{}/reset/{token}", app.base)).form(&form).send().await.expect("post");
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let page = answer.text().await.expect("page");
    assert!(page.contains("may or may not be set") && !page.contains("Nothing was changed"), "{page}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "sent once");

    let again = app.open_reset_link(&token).await;
    assert_eq!(again.status(), StatusCode::GONE, "the link stays spent");
    assert_eq!(d.case(&app, &id).await["state"], "executing", "open for staff");
    assert!(d.timeline(&app, &id).await.contains("whether it was set there is not known"));
    let told: Vec<_> = app
        .deliver_new()
        .await
        .into_iter()
        .filter(|m| m.body.contains("it may have taken effect"))
        .map(|m| m.to)
        .collect();
    assert!(told.contains(&regain_delivery::Address::Email("jane@example.com".into())), "{told:?}");
    assert!(told.iter().any(|to| matches!(to, regain_delivery::Address::Sms(_))), "every address: {told:?}");
}

/// SECURITY.md L0, G5: a contact change the account system may have taken (the call broke
/// after it was sent, so nobody knows) stays `sending`; a lockdown's review lists it as being
/// made there, and it cannot be rolled back from Regain until its release records it as made.
#[tokio::test]
async fn a_contact_change_the_account_system_may_have_taken_is_in_the_lockdown_review() {
    use std::sync::atomic::Ordering;
    let (url, calls) = hanging_up_endpoint("account.set_contact").await;
    let secret = WebhookSecret::from_bytes((0u8..32).collect()).expect("secret");
    let app = app_with(ConnectorConfig::Webhook { url, secret }).await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let id = d.cooling_contact_change(&app, &acme).await;

    app.clock.advance(Duration::hours(49));
    let released = regain_server::sweeper::release_due(&app.state, &Default::default()).await.expect("sweep");
    assert_eq!((released, calls.load(Ordering::SeqCst)), (0, 1), "sent once, no answer: not released");
    let change = app.get_ok(&d.key, &format!("/api/v1/cases/{id}/contact-change")).await;
    assert_eq!(change["state"], "sending", "{change}");

    // The customer calls the security team; the compromised-account case's review lists it.
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let lock = compromised_case_identified(&app, &d.key, &analyst).await;
    let path = |rest: &str| format!("/api/v1/cases/{lock}/{rest}");
    let review = app.get_ok(&analyst, &path("recent-changes")).await;
    let listed = review["changes"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["kind"] == "contact_changed"))
        .unwrap_or_else(|| panic!("the change being made is listed: {review}"))
        .clone();
    assert_eq!(listed["reversible"], false, "{listed}");
    assert!(listed["detail"].as_str().is_some_and(|d| d.contains("being added")), "{listed}");
    assert!(listed["undo"].as_str().is_some_and(|u| u.contains("account system")), "{listed}");
    assert!(!review.to_string().contains("jane.new@"), "masked: {review}");
}

type Hook = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// An account system behind the webhook connector, for one account: whether it is active, and
/// the calls (type, idempotency key) in the order they took effect. The first call of
/// `trigger` runs the hook set with [`AccountSystem::meanwhile`] — another worker's action —
/// and takes effect before it or after it, as `first_before`. With `refuse_first_unlock`, the
/// first unlock is answered 503 and has no effect; so is every call whose key ends in one of
/// the endings set with [`AccountSystem::refuse_keys_ending`] (or answered with the status set
/// by [`AccountSystem::refuse_with`]).
struct AccountSystem {
    url: String,
    active: Arc<Mutex<bool>>,
    log: Arc<Mutex<Vec<(String, String)>>>,
    hook: Arc<Mutex<Option<Hook>>>,
    refuse: Arc<Mutex<Vec<String>>>,
    refusal: Arc<Mutex<StatusCode>>,
}

impl AccountSystem {
    async fn start(trigger: &'static str, first_before: bool, refuse_first_unlock: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/regain", listener.local_addr().expect("addr"));
        let system = Self {
            url,
            active: Arc::new(Mutex::new(false)),
            log: Arc::default(),
            hook: Arc::default(),
            refuse: Arc::default(),
            refusal: Arc::new(Mutex::new(StatusCode::SERVICE_UNAVAILABLE)),
        };
        let (active, log, hook) = (system.active.clone(), system.log.clone(), system.hook.clone());
        let (refuse, refusal) = (system.refuse.clone(), system.refusal.clone());
        let refused = Arc::new(Mutex::new(!refuse_first_unlock));
        let handler = move |headers: HeaderMap, body: String| {
            let (active, log, hook, refused) = (active.clone(), log.clone(), hook.clone(), refused.clone());
            let refuse = refuse.lock().expect("lock").clone();
            let refusal = *refusal.lock().expect("lock");
            async move {
                let body: Value = serde_json::from_str(&body).unwrap_or_default();
                let kind = body["type"].as_str().unwrap_or("").to_owned();
                let key = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                if kind == "account.unlock" && !std::mem::replace(&mut *refused.lock().expect("lock"), true) {
                    return (StatusCode::SERVICE_UNAVAILABLE, String::new());
                }
                if refuse.iter().any(|ending| key.ends_with(ending.as_str())) {
                    return (refusal, String::new());
                }
                let take_effect = || {
                    *active.lock().expect("lock") = kind == "account.unlock";
                    log.lock().expect("lock").push((kind.clone(), key.clone()));
                };
                let meanwhile = if kind == trigger { hook.lock().expect("lock").take() } else { None };
                match meanwhile {
                    Some(meanwhile) if first_before => {
                        take_effect();
                        meanwhile.await;
                    }
                    Some(meanwhile) => {
                        meanwhile.await;
                        take_effect();
                    }
                    None => take_effect(),
                }
                (StatusCode::OK, json!({"reference": "T-1"}).to_string())
            }
        };
        let app = axum::Router::new().route("/regain", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        system
    }

    fn meanwhile(&self, hook: impl std::future::Future<Output = ()> + Send + 'static) {
        *self.hook.lock().expect("lock") = Some(Box::pin(hook));
    }

    /// Answers 503 (and does nothing) to every call whose idempotency key ends in one of
    /// `endings`, until set to none.
    fn refuse_keys_ending(&self, endings: &[&str]) {
        *self.refuse.lock().expect("lock") = endings.iter().map(|e| (*e).to_owned()).collect();
    }

    /// What the calls [`AccountSystem::refuse_keys_ending`] names are answered: 503 (away, so
    /// retried) unless set, e.g. to 403 (refused for good).
    fn refuse_with(&self, status: StatusCode) {
        *self.refusal.lock().expect("lock") = status;
    }

    fn connector(&self) -> ConnectorConfig {
        let secret = WebhookSecret::from_bytes((0u8..32).collect()).expect("secret");
        ConnectorConfig::Webhook { url: self.url.clone(), secret }
    }

    fn log(&self) -> Vec<(String, String)> {
        self.log.lock().expect("lock").clone()
    }
}

/// A compromised-account case for jane, opened with `key` and identified by `analyst`; its id.
async fn compromised_case_identified(app: &TestApp, key: &str, analyst: &str) -> String {
    let body = json!({"kind": "compromised_account", "channel": "phone"});
    let case = app.post_ok(key, "/api/v1/cases", body, StatusCode::CREATED).await;
    let id = case["id"].as_str().expect("id").to_owned();
    let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");
    app.post_ok(analyst, &path("start-identification"), json!({}), StatusCode::OK).await;
    let claim = json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"});
    app.post_ok(analyst, &path("identification"), claim, StatusCode::OK).await;
    id
}

/// A compromised-account case for jane, verified and decided by one security analyst and
/// waiting for the second one's approval; its id and the second analyst's token.
async fn lockdown_waiting_for_approval(app: &TestApp, d: &Desk) -> (String, String) {
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let second = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let id = compromised_case_identified(app, &d.key, &analyst).await;
    let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");
    app.verify_by_code(&analyst, &id, "email-0").await;
    app.verify_by_code(&analyst, &id, "phone-0").await;
    app.post_ok(&analyst, &path("decide"), json!({"approve": true, "reason": "two proofs"}), StatusCode::OK).await;
    app.post_ok(&analyst, &path("request-approval"), json!({"reason": "takeover"}), StatusCode::OK).await;
    (id, second)
}

/// SECURITY.md L0: an unlock and a lockdown of one customer on two workers at once. The
/// lockdown is approved and made while the unlock's call to the account system is out, and the
/// unlock's activation arrives there last. The unlock then cannot commit (the lockdown ended
/// it) and tells the account system to deactivate the account again, as Regain has it frozen.
#[tokio::test]
async fn an_unlock_overtaken_by_a_lockdown_leaves_the_account_deactivated_in_the_account_system() {
    let (app, d, system, unlock, lock) = unlock_overtaken_by_a_lockdown(&[]).await;
    let log = system.log();
    let kinds: Vec<&str> = log.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["account.lockdown", "account.lockdown", "account.unlock", "account.lockdown"], "{log:?}");
    let unlock_case = d.case(&app, &unlock).await;
    let unlock_action = unlock_case["actions"][0]["id"].as_str().expect("action id");
    assert_eq!(log[3].1, format!("{unlock_action}:relock"), "{log:?}");
    assert!(!*system.active.lock().expect("lock"), "deactivated in the account system: {log:?}");
    assert_eq!(unlock_case["actions"][0]["state"], "failed", "{unlock_case}");
    let locked = d.case(&app, &lock).await;
    assert_eq!((locked["state"].as_str(), locked["customer"]["status"].as_str()), (Some("executing"), Some("frozen")));
}

/// The first order of SECURITY.md L0's race: the unlock's call to the account system is out
/// when the lockdown is approved and made on another worker, and the unlock's activation
/// arrives there last; calls whose keys end in one of `refusing` are answered 503. The app,
/// desk, system, and the unlock's and the lockdown's cases.
async fn unlock_overtaken_by_a_lockdown(refusing: &[&str]) -> (TestApp, Desk, AccountSystem, String, String) {
    let system = AccountSystem::start("account.unlock", false, false).await;
    let app = app_with(system.connector()).await;
    let d = desk(&app).await;
    let unlock = d.executed(&app, "account_unlock").await;
    let (lock, second) = lockdown_waiting_for_approval(&app, &d).await;
    let (state, approve) = (app.state.clone(), format!("{}/api/v1/cases/{lock}/approve", app.base));
    system.meanwhile(async move {
        let approved = reqwest::Client::new()
            .post(approve)
            .bearer_auth(second)
            .json(&json!({"reason": "checked"}))
            .send()
            .await
            .expect("approve");
        assert!(approved.status().is_success(), "{}", approved.status());
        assert_eq!(regain_server::recovery::perform_due(&state).await.expect("the lockdown"), 1);
    });
    system.refuse_keys_ending(refusing);
    assert_eq!(app.perform_actions().await, 1, "the unlock");
    (app, d, system, unlock, lock)
}

/// SECURITY.md L0: the other order. An unlock (retried after the account system was down)
/// is made and committed by another worker while the lockdown's call is out, and its activation
/// arrives after the lockdown's deactivation; the lockdown, once committed, sees the unlock
/// that ended meanwhile and deactivates the account again.
#[tokio::test]
async fn a_lockdown_overtaken_by_an_unlock_deactivates_the_account_again() {
    let (app, d, system, unlock, lock) = lockdown_overtaken_by_an_unlock(&[]).await;
    assert_eq!(d.case(&app, &unlock).await["state"], "resolved", "the unlock was made meanwhile");
    let log = system.log();
    let kinds: Vec<&str> = log.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["account.lockdown", "account.unlock", "account.lockdown"], "{log:?}");
    let locked = d.case(&app, &lock).await;
    let lock_action = locked["actions"][0]["id"].as_str().expect("action id");
    assert_eq!((log[0].1.as_str(), log[2].1.clone()), (lock_action, format!("{lock_action}:again")), "{log:?}");
    assert!(!*system.active.lock().expect("lock"), "deactivated in the account system: {log:?}");
    assert_eq!(locked["customer"]["status"], "frozen", "{locked}");
}

/// The other order of SECURITY.md L0's race: an unlock, retried after the account system was
/// down, is made and committed by another worker while the lockdown's call is out, and its
/// activation arrives after the lockdown's deactivation; calls whose keys end in one of
/// `refusing` are answered 503. The app, desk, system, and the unlock's and the lockdown's
/// cases.
async fn lockdown_overtaken_by_an_unlock(refusing: &[&str]) -> (TestApp, Desk, AccountSystem, String, String) {
    let system = AccountSystem::start("account.lockdown", true, true).await;
    let app = app_with(system.connector()).await;
    let d = desk(&app).await;
    let unlock = d.executed(&app, "account_unlock").await;
    assert_eq!(app.perform_actions().await, 1);
    let unlock_case = d.case(&app, &unlock).await;
    assert_eq!(unlock_case["actions"][0]["state"], "pending", "503: retried later");
    // Its next attempt two minutes away (the backoff's jitter could make it any moment).
    let unlock_action = unlock_case["actions"][0]["id"].as_str().expect("action id");
    let later = regain_core::Clock::now(app.clock.as_ref()) + Duration::minutes(2);
    app.state.store.retry_action(unlock_action, later, "503").await.expect("retry later");
    let (lock, second) = lockdown_waiting_for_approval(&app, &d).await;
    app.post_ok(&second, &format!("/api/v1/cases/{lock}/approve"), json!({"reason": "checked"}), StatusCode::OK).await;
    let (state, clock) = (app.state.clone(), app.clock.clone());
    system.meanwhile(async move {
        // Past the unlock's retry, within the lockdown's lease.
        clock.advance(Duration::minutes(3));
        assert_eq!(regain_server::recovery::perform_due(&state).await.expect("the unlock's retry"), 1);
    });
    system.refuse_keys_ending(refusing);
    assert_eq!(app.perform_actions().await, 1, "the lockdown");
    (app, d, system, unlock, lock)
}

/// SECURITY.md L0, the first order again, with the account system down when the lockdown and
/// then the unlock tell it to deactivate the account again: the deactivation is owed, once, as
/// an action of its own on the lockdown's case, and sent once the account system is back.
#[tokio::test]
async fn a_relock_the_account_system_missed_is_owed_on_the_lockdown_case_and_sent_when_it_is_back() {
    let (app, d, system, unlock, lock) = unlock_overtaken_by_a_lockdown(&[":again", ":relock"]).await;
    assert!(*system.active.lock().expect("lock"), "the unlock came last, the relock was refused: {:?}", system.log());
    let unlock_case = d.case(&app, &unlock).await;
    assert_eq!(unlock_case["actions"][0]["state"], "failed", "ended by the lockdown: {unlock_case}");
    owed_deactivation_goes_through(&app, &d, &system, &lock).await;
}

/// SECURITY.md L0, the other order again, with the account system down when the lockdown
/// tells it to deactivate the account again: owed the same way.
#[tokio::test]
async fn a_second_deactivation_the_account_system_missed_is_owed_and_sent_when_it_is_back() {
    let (app, d, system, lock) = lockdown_crossed_by_an_unlock_and_not_deactivated_again().await;
    owed_deactivation_goes_through(&app, &d, &system, &lock).await;
}

/// SECURITY.md L0: a re-proofing through a connector while a deactivation is still owed waits
/// for it, so the account system gets the deactivation first and the lift's activation last.
#[tokio::test]
async fn a_reproofing_waits_for_an_owed_deactivation_so_the_account_ends_active() {
    let (app, d, system, lock) = lockdown_crossed_by_an_unlock_and_not_deactivated_again().await;
    let owed = deactivation(&d.case(&app, &lock).await)["id"].as_str().expect("id").to_owned();
    system.refuse_keys_ending(&[owed.as_str()]);
    // Days later, with the account system still refusing it: a re-proofing (the risk of a
    // second compromised-account case right after the first asks for more than the customer
    // can give), by a desk signed in afresh.
    app.clock.advance(Duration::days(3));
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let d = Desk { agent: app.token(Some(&acme), Role::Agent).await, ..d };
    let (reproof, second) = lockdown_waiting_for_approval(&app, &d).await;
    app.post_ok(&second, &format!("/api/v1/cases/{reproof}/approve"), json!({"reason": "re-proofed"}), StatusCode::OK)
        .await;
    assert_eq!(app.perform_actions().await, 2, "the owed deactivation (refused) and the lift");
    let waiting = d.case(&app, &reproof).await;
    let lift = &waiting["actions"][0];
    assert_eq!(lift["state"], "pending", "{waiting}");
    assert!(lift["last_error"].as_str().is_some_and(|e| e.contains("the lift follows it")), "{lift}");
    assert_eq!(waiting["customer"]["status"], "frozen", "{waiting}");
    // The account system stays away for longer than an action's attempts last: the lift
    // waits all along, and a wait is not an attempt, so it is neither given up nor left with
    // fewer tries of its own activation.
    for _ in 0..regain_delivery::ATTEMPTS_MAX + 2 {
        app.clock.advance(Duration::minutes(2));
        app.perform_actions().await;
    }
    let d = Desk { agent: app.token(Some(&acme), Role::Agent).await, ..d };
    let waiting = d.case(&app, &reproof).await;
    let lift = &waiting["actions"][0];
    assert_eq!((lift["state"].as_str(), lift["attempts"].as_u64()), (Some("pending"), Some(0)), "{waiting}");
    assert_eq!(deactivation(&d.case(&app, &lock).await)["state"], "pending", "retried while the system is away");

    system.refuse_keys_ending(&[]);
    for _ in 0..3 {
        app.clock.advance(Duration::minutes(61));
        app.perform_actions().await;
    }
    let d = Desk { agent: app.token(Some(&acme), Role::Agent).await, ..d };
    let lifted = d.case(&app, &reproof).await;
    assert_eq!((lifted["state"].as_str(), lifted["customer"]["status"].as_str()), (Some("resolved"), Some("active")));
    let log = system.log();
    let lift_id = lifted["actions"][0]["id"].as_str().expect("id");
    let last_two: Vec<(&str, &str)> = log.iter().rev().take(2).rev().map(|(k, id)| (k.as_str(), id.as_str())).collect();
    assert_eq!(last_two, [("account.lockdown", owed.as_str()), ("account.unlock", lift_id)], "{log:?}");
    assert!(*system.active.lock().expect("lock"), "active in the account system after the re-proofing: {log:?}");
}

/// SECURITY.md L0: a deactivation the account system refused for good fails on the lockdown's
/// case for the security team (what to do, on the timeline); once they fixed the cause,
/// retry-action sends it again, under a new key, and the lockdown itself is never redone.
#[tokio::test]
async fn a_refused_deactivation_is_sent_again_by_retry_action_once_fixed() {
    let (app, d, system, lock, first) = deactivation_refused_for_good().await;
    let failed = d.case(&app, &lock).await;
    assert_eq!(deactivation(&failed)["state"], "failed", "{failed}");
    let timeline = d.timeline(&app, &lock).await;
    assert!(timeline.contains("retry-action on this case sends the deactivation again"), "{timeline}");
    assert!(*system.active.lock().expect("lock"), "still active there");

    // Someone failing verification five times puts the customer's recovery on hold (T7); that
    // does not stop the security team sending a deactivation again.
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let probe = compromised_case_identified(&app, &d.key, &analyst).await;
    let mut last = None;
    for _ in 0..5 {
        let code = app.send_code(&analyst, &probe, "email-0").await;
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap_or(0) + 1) % 1_000_000);
        last =
            Some(app.post(&analyst, &format!("/api/v1/cases/{probe}/verification/code"), json!({"code": wrong})).await);
    }
    expect_problem(last.expect("five tries"), StatusCode::LOCKED, "recovery-held").await;

    // Fixed in the account system; the security team has Regain send it again.
    system.refuse_keys_ending(&[]);
    let retry = format!("/api/v1/cases/{lock}/retry-action");
    let again = app.post_ok(&analyst, &retry, json!({}), StatusCode::OK).await;
    let owed: Vec<&Value> =
        again["actions"].as_array().expect("actions").iter().filter(|a| a["action"] == "deactivate").collect();
    assert_eq!(owed.len(), 2, "{again}");
    let second = owed.iter().find(|a| a["state"] == "pending").expect("a new deactivation")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(second, first, "a new idempotency key: the refused request is not replayed");
    assert_eq!(again["actions"].as_array().expect("actions").iter().filter(|a| a["action"] == "lockdown").count(), 1);
    // Asked again while it is queued: it is pending, and nothing else is queued.
    expect_problem(app.post(&analyst, &retry, json!({})).await, StatusCode::CONFLICT, "action-pending").await;
    assert_eq!(app.perform_actions().await, 1);
    assert!(!*system.active.lock().expect("lock"), "deactivated there: {:?}", system.log());
    assert_eq!(system.log().last(), Some(&("account.lockdown".to_owned(), second)));
    let locked = d.case(&app, &lock).await;
    assert_eq!((locked["state"].as_str(), locked["customer"]["status"].as_str()), (Some("executing"), Some("frozen")));
    assert!(d.timeline(&app, &lock).await.contains("told to deactivate the account again"));

    // Done: nothing is owed, and the lockdown is not redone.
    expect_problem(app.post(&analyst, &retry, json!({})).await, StatusCode::CONFLICT, "lockdown-done").await;
    assert_eq!(app.perform_actions().await, 0);
}

/// SECURITY.md L0: a refused deactivation is not sent again while a re-proofing lifts the
/// lockdown (its activation must come last), nor once it is lifted.
#[tokio::test]
async fn a_refused_deactivation_is_not_sent_again_while_or_after_a_reproofing_lifts_the_lockdown() {
    let (app, d, system, lock, _) = deactivation_refused_for_good().await;

    app.clock.advance(Duration::days(3));
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let d = Desk { agent: app.token(Some(&acme), Role::Agent).await, ..d };
    let (reproof, second) = lockdown_waiting_for_approval(&app, &d).await;
    let approved = app
        .post_ok(&second, &format!("/api/v1/cases/{reproof}/approve"), json!({"reason": "re-proofed"}), StatusCode::OK)
        .await;
    let lift = approved["actions"][0]["id"].as_str().expect("the lift").to_owned();
    // The account system is away for the lift's activation: it stays pending.
    system.refuse_with(StatusCode::SERVICE_UNAVAILABLE);
    system.refuse_keys_ending(&[lift.as_str()]);
    assert_eq!(app.perform_actions().await, 1);
    assert_eq!(d.case(&app, &reproof).await["actions"][0]["state"], "pending");

    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let retry = format!("/api/v1/cases/{lock}/retry-action");
    let refused =
        expect_problem(app.post(&analyst, &retry, json!({})).await, StatusCode::CONFLICT, "action-pending").await;
    assert!(refused["detail"].as_str().is_some_and(|d| d.contains("re-proofing")), "{refused}");

    system.refuse_keys_ending(&[]);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(app.perform_actions().await, 1, "the lift, once the system is back");
    assert_eq!(d.case(&app, &reproof).await["customer"]["status"], "active");
    expect_problem(app.post(&analyst, &retry, json!({})).await, StatusCode::CONFLICT, "lockdown-done").await;
    assert!(*system.active.lock().expect("lock"), "active there, the activation last: {:?}", system.log());
}

/// [`lockdown_crossed_by_an_unlock_and_not_deactivated_again`], with the owed deactivation
/// then refused for good (403) by the account system, which goes on refusing that key. The
/// app, desk, system, the lockdown's case and the refused deactivation's id.
async fn deactivation_refused_for_good() -> (TestApp, Desk, AccountSystem, String, String) {
    let (app, d, system, lock) = lockdown_crossed_by_an_unlock_and_not_deactivated_again().await;
    let owed = deactivation(&d.case(&app, &lock).await)["id"].as_str().expect("id").to_owned();
    system.refuse_with(StatusCode::FORBIDDEN);
    system.refuse_keys_ending(&[owed.as_str()]);
    assert_eq!(app.perform_actions().await, 1, "the owed deactivation, refused for good");
    (app, d, system, lock, owed)
}

/// A lockdown through the account system that an unlock, retried on another worker, crossed:
/// the unlock's activation arrives last and the account system refuses the lockdown's call to
/// deactivate again, so a deactivation is owed on the lockdown's case. The app, desk, system
/// and that case.
async fn lockdown_crossed_by_an_unlock_and_not_deactivated_again() -> (TestApp, Desk, AccountSystem, String) {
    let (app, d, system, _, lock) = lockdown_overtaken_by_an_unlock(&[":again"]).await;
    let active = *system.active.lock().expect("lock");
    assert!(active, "the unlock came last, deactivating again was refused: {:?}", system.log());
    (app, d, system, lock)
}

/// The lockdown case `lock` owes a deactivation to `system`, which refuses it: the action is
/// retried with backoff, and once the system takes calls again it is sent under its own key,
/// the account ends deactivated, and the case's timeline records it.
async fn owed_deactivation_goes_through(app: &TestApp, d: &Desk, system: &AccountSystem, lock: &str) {
    let locked = d.case(app, lock).await;
    assert_eq!((locked["state"].as_str(), locked["customer"]["status"].as_str()), (Some("executing"), Some("frozen")));
    let owed = deactivation(&locked);
    assert_eq!(owed["state"], "pending", "{locked}");
    let owed_id = owed["id"].as_str().expect("id").to_owned();
    // The security team does not close the case over it.
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let complete = format!("/api/v1/cases/{lock}/complete");
    expect_problem(app.post(&analyst, &complete, json!({})).await, StatusCode::CONFLICT, "action-pending").await;

    // Still refused: tried again later.
    system.refuse_keys_ending(&[owed_id.as_str()]);
    assert_eq!(app.perform_actions().await, 1, "the owed deactivation");
    let owed = deactivation(&d.case(app, lock).await);
    assert_eq!((owed["state"].as_str(), owed["attempts"].as_u64()), (Some("pending"), Some(1)), "{owed}");
    assert!(*system.active.lock().expect("lock"));

    system.refuse_keys_ending(&[]);
    // Past the first retry's backoff (at most 5 s).
    app.clock.advance(Duration::minutes(1));
    assert_eq!(app.perform_actions().await, 1, "the owed deactivation, once the system is back");
    assert!(!*system.active.lock().expect("lock"), "deactivated in the account system: {:?}", system.log());
    assert_eq!(system.log().last(), Some(&("account.lockdown".to_owned(), owed_id.clone())), "under its own key");
    let locked = d.case(app, lock).await;
    assert_eq!(deactivation(&locked)["state"], "done", "{locked}");
    assert_eq!(locked["customer"]["status"], "frozen", "{locked}");
    let timeline = d.timeline(app, lock).await;
    assert!(timeline.contains("told to deactivate the account again"), "{timeline}");
    assert_eq!(app.perform_actions().await, 0, "nothing more is owed");
    let closed = app.post_ok(&analyst, &complete, json!({}), StatusCode::OK).await;
    assert_eq!(closed["state"], "resolved", "{closed}");
}

/// The case's owed deactivation (its actions are listed by creation time, and the lockdown's
/// and this one may share a millisecond).
fn deactivation(case: &Value) -> Value {
    let actions = case["actions"].as_array().expect("actions");
    let owed: Vec<&Value> = actions.iter().filter(|a| a["action"] == "deactivate").collect();
    assert_eq!(owed.len(), 1, "one owed deactivation: {case}");
    owed[0].clone()
}

/// SECURITY.md G5: while a contact change is under way no other recovery of the customer
/// proceeds — neither a reset link sent before the change was approved, nor an unlock approved
/// before it and performed after.
#[tokio::test]
async fn a_contact_change_under_way_holds_a_reset_link_already_sent_and_a_queued_unlock() {
    let app = app_with_config(ServerConfig::default()).await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    d.executed(&app, "password_reset").await;
    assert_eq!(app.perform_actions().await, 1);
    let body = app.deliver_new().await.into_iter().find(|m| m.body.contains("/reset/")).expect("the link").body;
    let token = crate::recovery::link_token(&body, "reset");
    let unlock = d.executed(&app, "account_unlock").await;
    let unlock_action = d.case(&app, &unlock).await["actions"][0]["id"].as_str().expect("action id").to_owned();
    let later = regain_core::Clock::now(app.clock.as_ref()) + Duration::minutes(30);
    app.state.store.retry_action(&unlock_action, later, "later").await.expect("later");
    // A third recovery today: the risk puts it at the second tier, a supervisor's, with one
    // proof more.
    let tier2 = Desk { key: d.key.clone(), agent: app.token(Some(&acme), Role::Supervisor).await };
    let change = tier2.cooling_contact_change_with(&app, &acme, &["email-0", "phone-0"]).await;

    let page = app.open_reset_link(&token).await;
    assert_eq!(page.status(), StatusCode::CONFLICT);
    let form = [("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)];
    let post = app.client.post(format!("{}/reset/{token}", app.base)).form(&form).send().await.expect("post");
    assert_eq!(post.status(), StatusCode::CONFLICT);
    let text = post.text().await.expect("page");
    assert!(text.contains("Another change to your account is under way") && !text.contains(&change), "{text}");
    let link = app.state.store.customer_link(&token).await.expect("read").expect("the link");
    assert!(link.usable(regain_core::Clock::now(app.clock.as_ref())), "not spent: nothing was changed");

    app.clock.advance(Duration::minutes(31));
    assert_eq!(app.perform_actions().await, 1, "the unlock");
    let held = app.get_ok(&d.key, &format!("/api/v1/cases/{unlock}")).await;
    assert_eq!(held["actions"][0]["state"], "failed", "{held}");
    assert_eq!(held["state"], "executing", "for staff to retry once the change is over: {held}");
    let timeline = app.get_ok(&d.key, &format!("/api/v1/cases/{unlock}/timeline")).await.to_string();
    assert!(timeline.contains("a contact change for this customer"), "{timeline}");
}

/// SECURITY.md L0: where the account lives in the tenant's system, a password set through a
/// reset link is there, not in Regain — the lockdown's review still lists it (masked, with its
/// case), as something to undo there, not as a rollback Regain pretends to make.
#[tokio::test]
async fn a_password_set_in_the_account_system_is_in_the_lockdown_review() {
    let system = AccountSystem::start("none", false, false).await;
    let app = app_with(system.connector()).await;
    let d = desk(&app).await;
    let acme = app.state.store.tenant_by_slug("acme").await.expect("read").expect("acme");
    let reset = d.executed(&app, "password_reset").await;
    assert_eq!(app.perform_actions().await, 1);
    let body = app.deliver_new().await.into_iter().find(|m| m.body.contains("/reset/")).expect("the link").body;
    let token = crate::recovery::link_token(&body, "reset");
    let form = [("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)];
    let set = app.client.post(format!("{}/reset/{token}", app.base)).form(&form).send().await.expect("post");
    assert_eq!(set.status(), StatusCode::OK);
    assert!(system.log().iter().any(|(kind, _)| kind == "account.set_password"), "{:?}", system.log());

    let analyst = app.token(Some(&acme), Role::SecurityAnalyst).await;
    let lock = compromised_case_identified(&app, &d.key, &analyst).await;
    let review = app.get_ok(&analyst, &format!("/api/v1/cases/{lock}/recent-changes")).await;
    let listed = review["changes"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["kind"] == "password_changed"))
        .unwrap_or_else(|| panic!("the password set there is listed: {review}"))
        .clone();
    assert_eq!(listed["reversible"], false, "{listed}");
    assert!(listed["detail"].as_str().is_some_and(|d| d.contains(&reset) && d.contains("j***@")), "{listed}");
    assert!(listed["undo"].as_str().is_some_and(|u| u.contains("account system")), "{listed}");
}
