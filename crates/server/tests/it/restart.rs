//! Kill and restart (issue 6 item 6): the worker is killed in the middle of a delivery — an
//! SMTP transaction to a real `aiosmtpd` process, a connector call to the tenant's endpoint —
//! and a new worker, in a new server over the same database, takes over once the lease ends.
//! From the customer's point of view each message and each action happens once: the message
//! goes out again under the same `Message-ID` (the copy the dead worker left half-sent is the
//! same message to every mail system), the action again under the same idempotency key, and
//! what Regain records — the case's steps, the notices — is written exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use regain_core::{Clock, Role};
use regain_delivery::signing::WebhookSecret;
use regain_server::recovery::connector::ConnectorConfig;
use regain_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

use crate::support::{customer_json, TestApp};

const SLOW_SMTP: &str = r#"
import asyncio, os, sys, time
from aiosmtpd.controller import Controller

port, box, slow = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Slow:
    async def handle_DATA(self, server, session, envelope):
        # The first message: say it has started, then take its time. What arrives is kept
        # even if the client is gone by then, as a real server may have kept it.
        if os.path.exists(slow):
            os.remove(slow)
            open(slow + ".started", "w").close()
            await asyncio.sleep(3)
        with open(os.path.join(box, "%.6f.eml" % time.time()), "wb") as f:
            f.write(envelope.original_content)
        return "250 OK"

controller = Controller(Slow(), hostname="127.0.0.1", port=port)
controller.start()
while True:
    time.sleep(3600)
"#;

/// An SMTP server whose first message takes three seconds; killed on drop.
struct SlowSmtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SlowSmtp {
    async fn start() -> Self {
        let python = std::env::var("REGAIN_TEST_PYTHON").expect("REGAIN_TEST_PYTHON (scripts/test.sh sets it)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("slow_smtp.py");
        std::fs::write(&script, SLOW_SMTP).expect("script");
        std::fs::create_dir(dir.path().join("box")).expect("box");
        std::fs::write(dir.path().join("slow"), "").expect("marker");
        let child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.path().join("box"))
            .arg(dir.path().join("slow"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let server = Self { child, port, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the SMTP server did not start on {port}");
    }

    fn started(&self) -> bool {
        self.dir.path().join("slow.started").exists()
    }

    fn received(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(self.dir.path().join("box")).expect("box").flatten().map(|e| e.path()).collect();
        files.sort();
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect()
    }
}

impl Drop for SlowSmtp {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(": ")))
}

async fn sqlite_store(dir: &Path) -> Arc<dyn regain_store::Store> {
    let store =
        regain_store_sqlite::SqliteStore::connect(&regain_store_sqlite::SqliteConfig::for_file(&dir.join("regain.db")))
            .await
            .expect("sqlite");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_leaves_each_message_and_action_to_happen_once() {
    let smtp = SlowSmtp::start().await;
    let transport = || -> Arc<dyn regain_delivery::Transport> {
        Arc::new(
            regain_delivery::SmtpTransport::new(regain_delivery::SmtpConfig {
                host: "127.0.0.1".into(),
                port: smtp.port,
                security: regain_delivery::SmtpSecurity::None,
                username: None,
                password: None,
                from: "ACME Support <support@acme.test>".into(),
                timeout_seconds: 10,
            })
            .expect("smtp"),
        )
    };
    // The tenant's account system: its first call hangs long enough to be killed in.
    let secret = WebhookSecret::from_bytes((1u8..33).collect()).expect("secret");
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let answered = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/account", listener.local_addr().expect("addr"));
    let endpoint = {
        let (calls, answered) = (calls.clone(), answered.clone());
        axum::Router::new().route(
            "/account",
            axum::routing::post(move |headers: HeaderMap| {
                let (calls, answered) = (calls.clone(), answered.clone());
                async move {
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let first = {
                        let mut list = calls.lock().await;
                        list.push(id);
                        list.len() == 1
                    };
                    if first {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                    (StatusCode::OK, json!({"reference": "U-1"}).to_string())
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, endpoint).await.ok() });

    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    regain_store::conformance::unlock(store.as_ref()).await;
    let config = || ServerConfig {
        connectors: BTreeMap::from([(
            "acme".to_owned(),
            ConnectorConfig::Webhook { url: url.clone(), secret: secret.clone() },
        )]),
        ..ServerConfig::default()
    };
    let first =
        TestApp::start_with(store.clone(), None, config(), regain_delivery::Router::new(Some(transport()), None)).await;
    let acme = first.tenant("acme").await;
    let key = first.api_key(&acme, "integration").await;
    first.post_ok(&key, "/api/v1/customers", customer_json("jane"), StatusCode::CREATED).await;
    let agent = first.token(Some(&acme), Role::Agent).await;

    // A code goes out by email; the worker is killed while the SMTP server holds the message.
    let case = first
        .post_ok(&key, "/api/v1/cases", json!({"kind": "account_unlock", "channel": "phone"}), StatusCode::CREATED)
        .await;
    let id = case["id"].as_str().expect("id").to_owned();
    let path = |rest: &str| format!("/api/v1/cases/{id}/{rest}");
    first.post_ok(&agent, &path("start-identification"), json!({}), StatusCode::OK).await;
    first
        .post_ok(
            &agent,
            &path("identification"),
            json!({"full_name": "Jane Doe", "account_number": "AC-jane", "phone": "201 555 0123"}),
            StatusCode::OK,
        )
        .await;
    first.post_ok(&agent, &path("verification/send"), json!({"contact": "email-0"}), StatusCode::OK).await;
    let state = first.state.clone();
    let worker = tokio::spawn(async move { regain_server::outbox::deliver_due(&state).await });
    until("the SMTP transaction to start", || smtp.started()).await;
    worker.abort();
    assert!(worker.await.is_err(), "the worker was killed, not finished");
    let log = first.get_ok(&key, &path("messages")).await;
    assert_eq!((log[0]["state"].as_str(), log[0]["attempts"].as_u64()), (Some("pending"), Some(0)), "{log}");

    // A new server over the same database, after the lease: the message goes again, once.
    let later = first.clock.now() + chrono::Duration::seconds(regain_server::outbox::LEASE_SECONDS + 1);
    drop(first);
    let second =
        TestApp::start_with(store.clone(), None, config(), regain_delivery::Router::new(Some(transport()), None)).await;
    second.clock.set(later);
    second.deliver().await;
    until("the message at the SMTP server", || !smtp.received().is_empty()).await;
    // Past the slow server's three seconds: a copy it kept of the killed transaction is in by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = smtp.received();
    let mut ids: Vec<_> = received.iter().map(|m| header(m, "Message-ID").expect("Message-ID")).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message, to every mail system: {ids:?}");
    assert!(received.len() <= 2, "{}", received.len());
    let log = second.get_ok(&key, &path("messages")).await;
    assert_eq!((log[0]["state"].as_str(), log[0]["attempts"].as_u64()), (Some("sent"), Some(1)), "{log}");
    second.deliver().await;
    assert_eq!(smtp.received().len(), received.len(), "nothing more is sent");

    // The code from the message verifies; the unlock is executed, and the worker is killed
    // while the tenant's account system is taking the call.
    // (Its code has expired by now — the lease outlasted it — so the agent sends a new one.)
    second.post_ok(&key, &path("verification/send"), json!({"contact": "email-0"}), StatusCode::OK).await;
    second.deliver().await;
    let before = received.len();
    until("the new code at the SMTP server", || smtp.received().len() == before + 1).await;
    let newest = smtp.received().last().cloned().expect("message");
    let (_, body) = newest.split_once("\n\n").or_else(|| newest.split_once("\r\n\r\n")).expect("headers");
    let code = crate::support::code_in(body);
    second.post_ok(&key, &path("verification/code"), json!({"code": code}), StatusCode::OK).await;
    second.post_ok(&key, &path("decide"), json!({"approve": true, "reason": "code to email"}), StatusCode::OK).await;
    second.post_ok(&key, &path("execute"), json!({}), StatusCode::OK).await;
    let state = second.state.clone();
    let worker = tokio::spawn(async move { regain_server::recovery::perform_due(&state).await });
    let seen = calls.clone();
    for _ in 0..200 {
        if !seen.lock().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    worker.abort();
    assert!(worker.await.is_err(), "the worker was killed, not finished");
    let case = second.get_ok(&key, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(case["state"], "executing", "nothing recorded by the dead worker: {case}");
    assert_eq!(case["actions"][0]["state"], "pending");

    let later = second.clock.now() + chrono::Duration::seconds(regain_server::recovery::LEASE_SECONDS + 1);
    drop(second);
    let third =
        TestApp::start_with(store.clone(), None, config(), regain_delivery::Router::new(Some(transport()), None)).await;
    third.clock.set(later);
    assert_eq!(third.perform_actions().await, 1);
    assert_eq!(third.perform_actions().await, 0);
    let case = third.get_ok(&key, &format!("/api/v1/cases/{id}")).await;
    assert_eq!(case["state"], "resolved", "{case}");
    let calls = calls.lock().await.clone();
    assert_eq!(calls.len(), 2, "called again after the kill");
    assert_eq!(calls[0], calls[1], "under the same idempotency key");
    let timeline = third.get_ok(&key, &path("timeline")).await;
    let performed =
        timeline["items"].as_array().expect("items").iter().filter(|e| e["type"] == "case.action_performed").count();
    assert_eq!(performed, 1, "the step is recorded once");
    let notices = third
        .get_ok(&key, &path("messages"))
        .await
        .as_array()
        .expect("log")
        .iter()
        .filter(|m| m["template"] == "account_recovered")
        .count();
    assert_eq!(notices, 2, "one notice to each registered address, not two");
}
