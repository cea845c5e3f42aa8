//! The SMS transports against a local HTTP server that records each request
//! and answers with a status the test chooses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use regain_delivery::{
    ConfigError, JsonWebhookConfig, JsonWebhookSms, SendError, Transport, TwilioConfig, TwilioSender, TwilioSms,
};
use reqwest::Url;
use secrecy::SecretString;

use crate::{email, outcome, sms, Outcome};

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn form(&self) -> Vec<(String, String)> {
        let query = std::str::from_utf8(&self.body).unwrap();
        let url = Url::parse(&format!("http://form.test/?{query}")).unwrap();
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The answer the server gives next: status, body, delay.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    body: &'static str,
    delay: Duration,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    reply: Arc<Mutex<Reply>>,
}

impl Server {
    async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(Mutex::new(Reply { status: StatusCode::CREATED, body: "{}", delay: Duration::ZERO }));
        let app = axum::Router::new().fallback(record).with_state((Arc::clone(&requests), Arc::clone(&reply)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { addr, requests, reply }
    }

    fn answer(&self, status: u16, body: &'static str) {
        *self.reply.lock().unwrap() =
            Reply { status: StatusCode::from_u16(status).unwrap(), body, delay: Duration::ZERO };
    }

    fn stall(&self, delay: Duration) {
        self.reply.lock().unwrap().delay = delay;
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

type Shared = (Arc<Mutex<Vec<Recorded>>>, Arc<Mutex<Reply>>);

async fn record(
    State((requests, reply)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    requests.lock().unwrap().push(Recorded { method, path: uri.path().to_owned(), headers, body });
    let reply = reply.lock().unwrap().clone();
    tokio::time::sleep(reply.delay).await;
    (reply.status, [("content-type", "application/json")], reply.body)
}

/// Status → outcome, the same for both providers.
const STATUS_TABLE: &[(u16, Outcome)] = &[
    (200, Outcome::Sent),
    (201, Outcome::Sent),
    (202, Outcome::Sent),
    (301, Outcome::GiveUp),
    (400, Outcome::GiveUp),
    (401, Outcome::GiveUp),
    (403, Outcome::GiveUp),
    (404, Outcome::GiveUp),
    (408, Outcome::Retry),
    (422, Outcome::GiveUp),
    (429, Outcome::Retry),
    (500, Outcome::Retry),
    (502, Outcome::Retry),
    (503, Outcome::Retry),
];

async fn check_status_table(server: &Server, transport: &dyn Transport) {
    for &(status, expected) in STATUS_TABLE {
        server.answer(status, "{}");
        let result = transport.send(&sms("m-status", "+14155550100")).await;
        assert_eq!(outcome(&result), expected, "{} answering {status}: {result:?}", transport.name());
    }
}

fn webhook(server: &Server, token: Option<&str>) -> JsonWebhookSms {
    JsonWebhookSms::new(JsonWebhookConfig {
        url: server.url("/hooks/sms?key=k3y"),
        token: token.map(SecretString::from),
        timeout_seconds: 1,
    })
    .unwrap()
}

fn twilio_config(server: &Server) -> TwilioConfig {
    TwilioConfig {
        base_url: Some(server.url("")),
        account_sid: "AC0123456789abcdef".into(),
        auth_token: SecretString::from("secret-token"),
        sender: TwilioSender::From("+15005550006".into()),
        timeout_seconds: 1,
    }
}

#[tokio::test]
async fn webhook_posts_json_with_bearer_token_and_idempotency_key() {
    let server = Server::start().await;
    server.answer(202, "{}");
    let transport = webhook(&server, Some("t0ken"));

    transport.send(&sms("0190f3a2-7c1e", "+14155550100")).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/hooks/sms");
    assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(request.header("idempotency-key"), Some("0190f3a2-7c1e"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        serde_json::json!({
            "id": "0190f3a2-7c1e",
            "to": "+14155550100",
            "body": "493817 is your ACME verification code for account recovery.",
        })
    );
}

#[tokio::test]
async fn webhook_without_token_sends_no_authorization() {
    let server = Server::start().await;
    webhook(&server, None).send(&sms("m1", "+14155550100")).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(requests[0].header("idempotency-key"), Some("m1"));
}

#[tokio::test]
async fn webhook_statuses_decide_retry_or_give_up() {
    let server = Server::start().await;
    check_status_table(&server, &webhook(&server, None)).await;
}

#[tokio::test]
async fn webhook_timeout_and_refused_connection_are_retryable() {
    let server = Server::start().await;
    server.stall(Duration::from_secs(3));
    let result = webhook(&server, None).send(&sms("m1", "+14155550100")).await;
    assert_eq!(outcome(&result), Outcome::Retry, "{result:?}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let transport = JsonWebhookSms::new(JsonWebhookConfig {
        url: format!("http://{closed}/hooks/sms?key=k3y"),
        token: None,
        timeout_seconds: 1,
    })
    .unwrap();
    let result = transport.send(&sms("m1", "+14155550100")).await;
    assert_eq!(outcome(&result), Outcome::Retry, "{result:?}");
    // The URL may hold a secret; errors leave it out.
    assert!(!format!("{result:?}").contains("k3y"), "{result:?}");
}

#[tokio::test]
async fn twilio_posts_the_form_with_basic_auth_and_idempotency_token() {
    let server = Server::start().await;
    server.answer(201, r#"{"sid": "SM123", "status": "queued"}"#);
    let transport = TwilioSms::new(twilio_config(&server)).unwrap();

    transport.send(&sms("0190f3a2-7c1e", "+14155550100")).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    // base64("AC0123456789abcdef:secret-token")
    assert_eq!(request.header("authorization"), Some("Basic QUMwMTIzNDU2Nzg5YWJjZGVmOnNlY3JldC10b2tlbg=="));
    assert_eq!(request.header("i-twilio-idempotency-token"), Some("0190f3a2-7c1e"));
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = request.form();
    let expected: Vec<(String, String)> = [
        ("To", "+14155550100"),
        ("From", "+15005550006"),
        ("Body", "493817 is your ACME verification code for account recovery."),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form, expected);
}

#[tokio::test]
async fn twilio_with_a_messaging_service_and_a_base_url_with_a_slash() {
    let server = Server::start().await;
    let transport = TwilioSms::new(TwilioConfig {
        base_url: Some(server.url("/")),
        sender: TwilioSender::MessagingServiceSid("MG9752274e9e519418a7406176694466fa".into()),
        ..twilio_config(&server)
    })
    .unwrap();

    transport.send(&sms("m1", "+14155550100")).await.unwrap();

    let request = &server.requests()[0];
    assert_eq!(request.path, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    let form = request.form();
    assert!(form.contains(&("MessagingServiceSid".into(), "MG9752274e9e519418a7406176694466fa".into())), "{form:?}");
    assert!(!form.iter().any(|(k, _)| k == "From"), "{form:?}");
}

#[tokio::test]
async fn twilio_statuses_decide_retry_or_give_up() {
    let server = Server::start().await;
    check_status_table(&server, &TwilioSms::new(twilio_config(&server)).unwrap()).await;
}

#[tokio::test]
async fn twilio_error_keeps_the_code_but_not_the_number() {
    let server = Server::start().await;
    server.answer(
        400,
        r#"{"code": 21211, "message": "The 'To' number +14155550100 is not a valid phone number.", "status": 400}"#,
    );
    let transport = TwilioSms::new(twilio_config(&server)).unwrap();
    match transport.send(&sms("m1", "+14155550100")).await {
        Err(SendError::Permanent(text)) => {
            assert!(text.contains("21211"), "{text}");
            assert!(text.contains("400"), "{text}");
            assert!(!text.contains("4155550100"), "{text}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn sms_transports_refuse_what_they_cannot_send_without_a_request() {
    let server = Server::start().await;
    let transports: [Box<dyn Transport>; 2] =
        [Box::new(webhook(&server, None)), Box::new(TwilioSms::new(twilio_config(&server)).unwrap())];
    for transport in &transports {
        for message in [
            email("m1", "bob@example.test"),
            sms("m2", "4155550100"),
            sms("m3", "+1415555010x"),
            sms("m4", "+12"),
            regain_delivery::Message { body: "x".repeat(1601), ..sms("m5", "+14155550100") },
        ] {
            let result = transport.send(&message).await;
            assert_eq!(outcome(&result), Outcome::GiveUp, "{} {message:?}: {result:?}", transport.name());
        }
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn bad_provider_settings_are_refused_at_startup() {
    let setting = |result: Result<(), ConfigError>| match result {
        Err(ConfigError::Invalid { setting, .. }) => setting,
        other => panic!("expected an invalid setting, got {other:?}"),
    };
    let hook = |url: &str, timeout_seconds: u64| {
        JsonWebhookSms::new(JsonWebhookConfig { url: url.into(), token: None, timeout_seconds }).map(drop)
    };
    assert_eq!(setting(hook("ftp://sms.test/x", 5)), "url");
    assert_eq!(setting(hook("not a url", 5)), "url");
    assert_eq!(setting(hook("https://sms.test/x", 0)), "timeout_seconds");
    assert_eq!(setting(hook("https://sms.test/x", 121)), "timeout_seconds");

    let server = Server::start().await;
    let twilio = |config: TwilioConfig| TwilioSms::new(config).map(drop);
    assert_eq!(setting(twilio(TwilioConfig { account_sid: "AC../x".into(), ..twilio_config(&server) })), "account_sid");
    assert_eq!(
        setting(twilio(TwilioConfig { auth_token: SecretString::from(""), ..twilio_config(&server) })),
        "auth_token"
    );
    assert_eq!(
        setting(twilio(TwilioConfig { sender: TwilioSender::From(" ".into()), ..twilio_config(&server) })),
        "sender"
    );
    // Without a base URL, Twilio's own API is used.
    assert!(twilio(TwilioConfig { base_url: None, ..twilio_config(&server) }).is_ok());
}
