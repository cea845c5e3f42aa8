//! Cross-checks against code nobody here wrote (issue 4): `pyotp` (PyPI) reads the otpauth URI
//! Regain shows and produces codes Regain accepts; a real SMTP server process (`aiosmtpd`, PyPI)
//! receives the verification email, and the code is read from the received message.
//!
//! Both need `REGAIN_TEST_PYTHON`: a Python with pyotp and aiosmtpd, which the README's test
//! command (`scripts/test.sh`) installs in a virtualenv.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use regain_core::{Clock, Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{code_in, customer_json, TestApp};

fn python() -> PathBuf {
    PathBuf::from(std::env::var("REGAIN_TEST_PYTHON").expect(
        "REGAIN_TEST_PYTHON must name a Python with pyotp and aiosmtpd (the README's test command, scripts/test.sh, sets it)",
    ))
}

/// What pyotp computes for `uri` at `unix` seconds.
fn pyotp_code(uri: &str, unix: i64) -> String {
    let out = Command::new(python())
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            uri,
            &unix.to_string(),
        ])
        .output()
        .expect("run python");
    assert!(out.status.success(), "pyotp: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn pyotp_reads_the_otpauth_uri_and_its_codes_are_accepted() {
    let app = TestApp::sqlite().await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let me = app.customer_session("jane", "an initial password").await;
    let enrollment = app.post_ok(&me, "/api/v1/directory/acme/me/totp", json!({}), StatusCode::OK).await;
    let uri = enrollment["otpauth_uri"].as_str().expect("uri").to_owned();
    let now = || app.clock.now().timestamp();
    let confirm =
        app.post(&me, "/api/v1/directory/acme/me/totp/confirm", json!({"code": pyotp_code(&uri, now())})).await;
    assert_eq!(confirm.status(), StatusCode::NO_CONTENT);
    // A newly set-up app counts for recovery after the policy's recent_contact_days.
    app.clock.advance(chrono::Duration::days(8));

    let agent = app.token(Some(&acme), Role::Agent).await;
    let case = app
        .post_ok(&key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "phone"}), StatusCode::CREATED)
        .await;
    let id = case["id"].as_str().expect("id");
    app.post_ok(&agent, &format!("/api/v1/cases/{id}/start-identification"), json!({}), StatusCode::OK).await;
    app.post_ok(
        &agent,
        &format!("/api/v1/cases/{id}/identification"),
        json!({"username": "jane", "full_name": "Jane Doe"}),
        StatusCode::OK,
    )
    .await;
    // The login above moved the clock a step; this is a fresh one.
    let proof = app
        .post_ok(
            &agent,
            &format!("/api/v1/cases/{id}/verification/totp"),
            json!({"code": pyotp_code(&uri, now())}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(proof["verification"]["assessment"]["satisfied"], true, "{proof}");
}

/// An `aiosmtpd` process writing what it receives to a Maildir; stopped on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let maildir = tempfile::tempdir().expect("maildir");
        let mut child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { child, port, maildir };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().ok();
        child.wait().ok();
        panic!("aiosmtpd did not start listening on {port}");
    }

    /// Every message received so far, raw.
    fn received(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        let mut files: Vec<_> =
            std::fs::read_dir(new).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[tokio::test]
async fn the_code_goes_over_smtp_to_a_real_server() {
    let smtp = SmtpServer::start().await;
    let transport = regain_delivery::SmtpTransport::new(regain_delivery::SmtpConfig {
        host: "127.0.0.1".into(),
        port: smtp.port,
        security: regain_delivery::SmtpSecurity::None,
        username: None,
        password: None,
        from: "ACME Support <support@acme.test>".into(),
        timeout_seconds: 10,
    })
    .expect("smtp");
    let email: Arc<dyn regain_delivery::Transport> = Arc::new(transport);
    let dir = tempfile::tempdir().expect("dir");
    let store = regain_store_sqlite::SqliteStore::connect(&regain_store_sqlite::SqliteConfig::for_file(
        &dir.path().join("regain.db"),
    ))
    .await
    .expect("sqlite");
    store.migrate().await.expect("migrate");
    regain_store::conformance::unlock(&store).await;
    let app = TestApp::start_with(
        Arc::new(store),
        Some(dir),
        regain_server::ServerConfig::default(),
        regain_delivery::Router::new(Some(email), None),
    )
    .await;
    let acme = app.tenant("acme").await;
    let key = app.api_key(&acme, "integration").await;
    app.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let case = app
        .post_ok(&key, "/api/v1/cases", json!({"kind": "password_reset", "channel": "chat"}), StatusCode::CREATED)
        .await;
    let id = case["id"].as_str().expect("id");
    app.post_ok(&key, &format!("/api/v1/cases/{id}/start-identification"), json!({}), StatusCode::OK).await;
    app.post_ok(
        &key,
        &format!("/api/v1/cases/{id}/identification"),
        json!({"email": "jane@example.com", "full_name": "Jane Q Doe"}),
        StatusCode::OK,
    )
    .await;
    app.post_ok(&key, &format!("/api/v1/cases/{id}/verification/send"), json!({"contact": "email-0"}), StatusCode::OK)
        .await;
    app.deliver().await;
    let mut received = smtp.received();
    for _ in 0..50 {
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        received = smtp.received();
    }
    assert_eq!(received.len(), 1, "one message at the SMTP server");
    let message = &received[0];
    let (headers, body) = message.split_once("\n\n").or_else(|| message.split_once("\r\n\r\n")).expect("headers");
    assert!(headers.contains("To: jane@example.com"), "{headers}");
    assert!(headers.contains("Subject: Your acme Inc. verification code"), "{headers}");
    let code = code_in(body);
    let proof = app
        .post_ok(&key, &format!("/api/v1/cases/{id}/verification/code"), json!({"code": code}), StatusCode::OK)
        .await;
    assert_eq!(proof["result"], "passed");
    // The delivery log shows it sent, without the address or the content.
    let log = app.get_ok(&key, &format!("/api/v1/cases/{id}/messages")).await;
    assert_eq!(log[0]["state"], "sent", "{log}");
    assert_eq!(log[0]["destination"], "j***@e***.com");
    assert!(!log.to_string().contains(&code) && !log.to_string().contains("jane@example.com"), "{log}");
}
