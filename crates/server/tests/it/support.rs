//! A real server on a free port, on a real database, driven over HTTP.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use regain_core::env::FixedClock;
use regain_core::staff::NewStaff;
use regain_core::totp::{totp, TotpParams};
use regain_core::{Actor, Clock, Role, StaffId, Tenant};
use regain_hashing::{HashingPool, PoolConfig};
use regain_server::routes::tenants::{create_tenant_record, CreateTenant};
use regain_server::routes::{api_keys, staff};
use regain_server::sys::OsEntropy;
use regain_server::{AppState, Application, ServerConfig};
use regain_store::Store;
use regain_store_postgres::{PostgresConfig, PostgresStore};
use regain_store_sqlite::{SqliteConfig, SqliteStore};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<FixedClock>,
    /// Where the test's outgoing messages land (email and SMS), as JSON lines.
    pub sink: std::path::PathBuf,
    _shutdown: oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
    _sink_dir: tempfile::TempDir,
}

pub struct TestStaff {
    pub id: StaffId,
    pub email: String,
    pub secret: Vec<u8>,
}

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(ServerConfig::default()).await
    }

    /// A SQLite app with these settings.
    pub async fn sqlite_with(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::connect(&SqliteConfig::for_file(&dir.path().join("regain.db"))).await.expect("sqlite");
        store.migrate().await.expect("migrate");
        regain_store::conformance::unlock(&store).await;
        Self::start(Arc::new(store), Some(dir), config).await
    }

    pub async fn postgres() -> Self {
        Self::postgres_at(&fresh_postgres_database().await).await
    }

    pub async fn postgres_at(url: &str) -> Self {
        let mut config = PostgresConfig::new(url);
        config.acquire_timeout_ms = 1_000;
        let store = PostgresStore::connect(&config).await.expect("postgres");
        store.migrate().await.expect("migrate");
        regain_store::conformance::unlock(&store).await;
        Self::start(Arc::new(store), None, ServerConfig::default()).await
    }

    pub async fn start(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>, config: ServerConfig) -> Self {
        Self::start_with_risk(store, dir, config, regain_server::risk::RiskEngine::without_providers()).await
    }

    /// A SQLite app whose risk engine has these lists and providers.
    pub async fn sqlite_with_risk(risk: regain_server::risk::RiskEngine) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::connect(&SqliteConfig::for_file(&dir.path().join("regain.db"))).await.expect("sqlite");
        store.migrate().await.expect("migrate");
        regain_store::conformance::unlock(&store).await;
        Self::start_with_risk(Arc::new(store), Some(dir), ServerConfig::default(), risk).await
    }

    /// A PostgreSQL app whose risk engine has these lists and providers.
    pub async fn postgres_with_risk(risk: regain_server::risk::RiskEngine) -> Self {
        let mut config = PostgresConfig::new(&fresh_postgres_database().await);
        config.acquire_timeout_ms = 1_000;
        let store = PostgresStore::connect(&config).await.expect("postgres");
        store.migrate().await.expect("migrate");
        regain_store::conformance::unlock(&store).await;
        Self::start_with_risk(Arc::new(store), None, ServerConfig::default(), risk).await
    }

    pub async fn start_with_risk(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        config: ServerConfig,
        risk: regain_server::risk::RiskEngine,
    ) -> Self {
        let sink_dir = tempfile::tempdir().expect("temp dir");
        let sink = sink_dir.path().join("messages.jsonl");
        let file: Arc<dyn regain_delivery::Transport> = Arc::new(regain_delivery::FileSink::open(&sink).expect("sink"));
        let delivery = regain_delivery::Router::new(Some(file.clone()), Some(file));
        let mut app = Self::start_with_engines(store, dir, config, delivery, risk).await;
        app.sink = sink;
        app._sink_dir = sink_dir;
        app
    }

    /// Starts with the given transports; the outbox worker is off (tests call `deliver`).
    pub async fn start_with(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        config: ServerConfig,
        delivery: regain_delivery::Router,
    ) -> Self {
        Self::start_with_engines(store, dir, config, delivery, regain_server::risk::RiskEngine::without_providers())
            .await
    }

    pub async fn start_with_engines(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        mut config: ServerConfig,
        delivery: regain_delivery::Router,
        risk: regain_server::risk::RiskEngine,
    ) -> Self {
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.expiry_sweep_interval_ms = 0;
        config.outbox_interval_ms = 0;
        config.action_interval_ms = 0;
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("time")));
        let hasher =
            HashingPool::start(PoolConfig { workers: 2, queue_max: 256, ..PoolConfig::default() }).expect("hasher");
        let state = AppState {
            store,
            hasher,
            clock: clock.clone(),
            entropy: Arc::new(OsEntropy),
            config: Arc::new(config),
            audit: regain_server::audit::ephemeral("test.regain/audit").expect("audit key"),
            delivery: Arc::new(delivery),
            risk: Arc::new(risk),
        };
        let app = Application::build(state.clone()).await.expect("bind");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            rx.await.ok();
        }));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let sink_dir = tempfile::tempdir().expect("temp dir");
        let sink = sink_dir.path().join("unused.jsonl");
        Self { base, client, state, clock, sink, _shutdown: tx, _dir: dir, _sink_dir: sink_dir }
    }

    /// The SQLite database file, for tests that read the rows themselves.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("regain.db"))
    }

    pub async fn tenant(&self, slug: &str) -> Tenant {
        let req: CreateTenant =
            serde_json::from_value(serde_json::json!({"slug": slug, "display_name": format!("{slug} Inc.")}))
                .expect("req");
        create_tenant_record(&self.state, req, Actor::System).await.expect("tenant")
    }

    pub async fn staff(&self, tenant: Option<&Tenant>, role: Role) -> TestStaff {
        static N: AtomicU32 = AtomicU32::new(0);
        let email = format!("{}{}@staff.test", role.as_str().replace('_', "-"), N.fetch_add(1, Ordering::Relaxed));
        let new = NewStaff::parse(tenant.map(|t| t.id), &email, "Test Person", role.as_str()).expect("staff");
        let (staff, secret) =
            staff::create_staff_record(&self.state, new, PASSWORD, Actor::System).await.expect("create staff");
        TestStaff { id: staff.id, email, secret }
    }

    /// Signs in with password and a fresh TOTP code (the clock moves a step so codes never repeat).
    pub async fn login(&self, who: &TestStaff) -> String {
        self.clock.advance(Duration::seconds(30));
        let code = totp(&who.secret, self.clock.now(), &TotpParams::default());
        let body = serde_json::json!({"email": who.email, "password": PASSWORD, "totp_code": code});
        let response = self.call(Method::POST, "/api/v1/auth/login", None, Some(body)).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {}", who.email);
        let json: Value = response.json().await.expect("json");
        json["token"].as_str().expect("token").to_owned()
    }

    /// Staff of `role` in `tenant`, signed in: their bearer token.
    pub async fn token(&self, tenant: Option<&Tenant>, role: Role) -> String {
        if role == Role::Integration {
            return self.api_key(tenant.expect("tenant"), "integration").await;
        }
        let who = self.staff(tenant, role).await;
        self.login(&who).await
    }

    pub async fn api_key(&self, tenant: &Tenant, role: &str) -> String {
        let (_, secret) =
            api_keys::create_api_key_record(&self.state, tenant.id, "test key", Some(role), Actor::System)
                .await
                .expect("key");
        secret
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// The hidden `link` value of a link page's form (its binding to the link, T10).
    pub fn form_link(html: &str) -> String {
        let start =
            html.find("name=\"link\" value=\"").expect("the form's link field") + "name=\"link\" value=\"".len();
        html[start..].split('"').next().expect("value").to_owned()
    }

    /// Opens a reset link as a browser does ([`TestApp::open_link`]).
    pub async fn open_reset_link(&self, token: &str) -> Response {
        self.open_link("reset", token).await
    }

    /// Opens the link `/{page}/{token}` as a browser does (SECURITY.md T10): while usable, it
    /// answers 303 to `../{page}` with its token in an HttpOnly cookie for that page alone, and
    /// the page is read with the cookie; a link that is not usable answers its own page at once.
    pub async fn open_link(&self, page: &str, token: &str) -> Response {
        let link = self.client.get(format!("{}/{page}/{token}", self.base)).send().await.expect("get");
        if link.status() != StatusCode::SEE_OTHER {
            return link;
        }
        assert_eq!(link.headers()["location"], format!("../{page}"), "relative, under the configured path");
        let cookies: Vec<_> = link.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies.len(), 1, "the link's cookie alone, no session: {cookies:?}");
        let cookie = cookies[0].to_str().expect("ascii").to_owned();
        assert!(cookie.starts_with(&format!("regain_{page}={token};")), "{cookie}");
        let path = reqwest::Url::parse(&self.state.config.public_url)
            .expect("public_url")
            .path()
            .trim_end_matches('/')
            .to_owned();
        let mut attributes = vec![format!("; Path={path}/{page};"), "; HttpOnly;".into(), "; SameSite=Lax;".into()];
        if self.state.config.cookie_secure {
            attributes.push("; Secure".into());
        }
        for attribute in attributes {
            assert!(cookie.contains(&attribute), "{attribute} missing: {cookie}");
        }
        let max_age: i64 = cookie
            .split("Max-Age=")
            .nth(1)
            .and_then(|v| v.split(';').next())
            .expect("Max-Age")
            .parse()
            .expect("seconds");
        assert!((1..=24 * 3600).contains(&max_age), "for the link's life, at most a day: {cookie}");
        let url = format!("{}/{page}", self.base);
        self.client.get(url).header("cookie", format!("regain_{page}={token}")).send().await.expect("get")
    }

    /// Signs a customer in to the built-in directory of tenant `acme`: their bearer token.
    pub async fn customer_session(&self, username: &str, password: &str) -> String {
        let body = serde_json::json!({"username": username, "password": password});
        let login = self.call(Method::POST, "/api/v1/directory/acme/login", None, Some(body)).await;
        assert_eq!(login.status(), StatusCode::OK, "customer sign-in of {username}");
        let json: Value = login.json().await.expect("json");
        json["token"].as_str().expect("token").to_owned()
    }

    /// Sends what the outbox holds, as the worker would.
    pub async fn deliver(&self) {
        regain_server::outbox::drain(&self.state, 10).await.expect("outbox");
    }

    /// Delivers what the outbox holds and returns the messages that came of it.
    pub async fn deliver_new(&self) -> Vec<regain_delivery::SinkedMessage> {
        let before = self.sent().len();
        self.deliver().await;
        self.sent().split_off(before)
    }

    /// Performs the queued recovery actions, as the action worker would; returns how many.
    pub async fn perform_actions(&self) -> usize {
        regain_server::recovery::perform_due(&self.state).await.expect("actions")
    }

    /// The messages delivered to the sink so far.
    pub fn sent(&self) -> Vec<regain_delivery::SinkedMessage> {
        regain_delivery::read_sink(&self.sink).unwrap_or_default()
    }

    /// Sends a code to `contact` on the case, delivers it, and returns it as the customer
    /// would read it from the message.
    pub async fn send_code(&self, token: &str, case: &str, contact: &str) -> String {
        // What was already waiting (notices) goes first, so the next message is the code.
        self.deliver().await;
        let before = self.sent().len();
        self.post_ok(
            token,
            &format!("/api/v1/cases/{case}/verification/send"),
            serde_json::json!({"contact": contact}),
            StatusCode::OK,
        )
        .await;
        self.deliver().await;
        let sent = self.sent();
        assert_eq!(sent.len(), before + 1, "one message delivered");
        code_in(&sent[before].body)
    }

    /// Proves possession of `contact` on the case with a code.
    pub async fn verify_by_code(&self, token: &str, case: &str, contact: &str) -> Value {
        let code = self.send_code(token, case, contact).await;
        self.post_ok(
            token,
            &format!("/api/v1/cases/{case}/verification/code"),
            serde_json::json!({"code": code}),
            StatusCode::OK,
        )
        .await
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// POST expecting `status`; returns the JSON body.
    pub async fn post_ok(&self, token: &str, path: &str, body: Value, status: StatusCode) -> Value {
        let response = self.post(token, path, body).await;
        let got = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(got, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn get_ok(&self, token: &str, path: &str) -> Value {
        let response = self.get(token, path).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).expect("json")
    }
}

/// The six-digit code in a message's text.
pub fn code_in(text: &str) -> String {
    let digits: Vec<char> = text.chars().collect();
    for window in digits.windows(6) {
        if window.iter().all(char::is_ascii_digit) {
            return window.iter().collect();
        }
    }
    panic!("no code in {text:?}")
}

/// Asserts a problem+json response with `status` and problem `code`; returns the problem.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let got = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "{text}");
    assert_eq!(content_type, "application/problem+json", "{text}");
    let problem: Value = serde_json::from_str(&text).expect("problem json");
    assert_eq!(problem["type"], format!("urn:regain:problem:{code}"), "{text}");
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{text}");
    problem
}

/// When the test customers' contact points were registered: long enough ago to count.
pub const LONG_AGO: &str = "2024-01-15T10:00:00Z";

pub fn customer_json(username: &str) -> Value {
    serde_json::json!({
        "external_id": format!("crm-{username}"),
        "username": username,
        "account_number": format!("AC-{username}"),
        "full_name": "Jane Q. Doe",
        "emails": [{"address": format!("{username}@example.com"), "verified": true, "added_at": LONG_AGO}],
        "phones": [{"number": "(201) 555-0123", "verified": true, "added_at": LONG_AGO}],
        "factors": {"totp": true, "recovery_codes_remaining": 5},
        "password": "an initial password",
    })
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("REGAIN_TEST_POSTGRES_URL")
        .expect("REGAIN_TEST_POSTGRES_URL must name a PostgreSQL server (the README's test command sets it)");
    let name = format!("regain_t_srv_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect admin");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("url");
    format!("{base}/{name}")
}

/// Runs `tests/browser/pages.cjs` with `args` under Node (its own process, so the server in
/// this test's runtime answers the browser meanwhile); fails with what the script said.
pub async fn in_browser(args: &[&str]) {
    let dir = std::env::var("REGAIN_TEST_BROWSER").expect(
        "REGAIN_TEST_BROWSER must name crates/server/tests/browser with its node_modules installed \
         (scripts/test.sh sets it)",
    );
    let script = std::path::Path::new(&dir).join("pages.cjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser run {args:?} failed:\n{said}");
    assert!(said.contains(&format!("{}: ok", args[0])), "{said}");
}
