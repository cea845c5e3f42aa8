//! A database that goes away gets 503 (problem+json, Retry-After), and the service recovers by
//! itself when it returns. PostgreSQL is reached through a TCP proxy the test can cut.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regain_core::Role;
use reqwest::{Method, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{expect_problem, fresh_postgres_database, TestApp};

struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().expect("lock").push(link);
            }
        });
        Self { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("lock").drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db` → (`host:port`, the URL with `127.0.0.1:<port>` instead).
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (userinfo, hostpath) = match rest.rsplit_once('@') {
        Some((user, hp)) => (format!("{user}@"), hp),
        None => (String::new(), rest),
    };
    let (host, path) = hostpath.split_once('/').unwrap_or((hostpath, ""));
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:5432") };
    (host, format!("{scheme}://{userinfo}127.0.0.1:{port}/{path}"))
}

#[tokio::test]
async fn database_outage_is_503_and_the_service_recovers() {
    let direct = fresh_postgres_database().await;
    let (target, _) = through(&direct, 0);
    let proxy = Proxy::start(target).await;
    let (_, proxied) = through(&direct, proxy.port);
    let app = TestApp::postgres_at(&proxied).await;
    let acme = app.tenant("acme").await;
    let token = app.token(Some(&acme), Role::Agent).await;
    app.get_ok(&token, "/api/v1/cases").await;

    proxy.cut();
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    let retry_after = ready.headers().get("retry-after").is_some();
    expect_problem(ready, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(retry_after);
    let problem =
        expect_problem(app.get(&token, "/api/v1/cases").await, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(!problem.to_string().contains("127.0.0.1"), "no internals in the problem: {problem}");
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status(), StatusCode::OK, "the process itself is alive");

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if app.call(Method::GET, "/readyz", None, None).await.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "readiness came back");
    app.get_ok(&token, "/api/v1/cases").await;
}
