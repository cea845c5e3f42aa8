//! SmtpTransport against a minimal RFC 5321 server running inside the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regain_delivery::{ConfigError, SmtpConfig, SmtpSecurity, SmtpTransport, Transport};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::{email, outcome, sms, Outcome};

/// One SMTP session as the server saw it.
#[derive(Debug, Default, Clone)]
struct Session {
    commands: Vec<String>,
    data: Option<String>,
}

/// A local SMTP server: 220 greeting, EHLO → 250, MAIL → 250, RCPT → the
/// given reply, DATA → 354 and the message up to `.` → 250, QUIT → 221.
struct SmtpServer {
    addr: SocketAddr,
    sessions: Arc<Mutex<Vec<Session>>>,
}

impl SmtpServer {
    async fn start(rcpt_reply: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&sessions);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let session = serve(stream, rcpt_reply).await;
                    recorded.lock().unwrap().push(session);
                });
            }
        });
        SmtpServer { addr, sessions }
    }

    fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }
}

async fn serve(stream: TcpStream, rcpt_reply: &str) -> Session {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut session = Session::default();
    if write.write_all(b"220 mx.test ESMTP ready\r\n").await.is_err() {
        return session;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return session;
        }
        let command = line.trim_end().to_owned();
        let verb = command.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        session.commands.push(command);
        let reply: &str = match verb.as_str() {
            "EHLO" | "HELO" => "250 mx.test\r\n",
            "MAIL" | "RSET" | "NOOP" => "250 2.1.0 ok\r\n",
            "RCPT" => rcpt_reply,
            "DATA" => {
                write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await.ok();
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return session;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2).
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                session.data = Some(data);
                "250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await.ok();
                return session;
            }
            _ => "502 5.5.2 not implemented\r\n",
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return session;
        }
    }
}

fn config(addr: SocketAddr) -> SmtpConfig {
    SmtpConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "ACME Support <support@acme.test>".into(),
        timeout_seconds: 2,
    }
}

#[tokio::test]
async fn sends_headers_and_body_with_a_message_id_from_the_outbox_id() {
    let server = SmtpServer::start("250 2.1.5 ok\r\n").await;
    let transport = SmtpTransport::new(config(server.addr)).unwrap();

    transport.send(&email("0190f3a2-7c1e-7d4b-9a55-3e2f1c0b9d77", "bob@example.test")).await.unwrap();

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session = &sessions[0];
    let commands = session.commands.join("\n");
    assert!(commands.contains("MAIL FROM:<support@acme.test>"), "{commands}");
    assert!(commands.contains("RCPT TO:<bob@example.test>"), "{commands}");
    assert_eq!(session.commands.last().map(String::as_str), Some("QUIT"), "{commands}");

    let data = session.data.as_deref().expect("DATA was sent");
    let (headers, body) = data.split_once("\r\n\r\n").expect("headers and body");
    let header_lines: Vec<&str> = headers.lines().collect();
    for expected in [
        "From: \"ACME Support\" <support@acme.test>",
        "To: bob@example.test",
        "Subject: Your ACME verification code",
        "Message-ID: <0190f3a2-7c1e-7d4b-9a55-3e2f1c0b9d77@acme.test>",
        "Content-Type: text/plain; charset=utf-8",
    ] {
        assert!(header_lines.iter().any(|h| h.eq_ignore_ascii_case(expected)), "missing `{expected}` in\n{headers}");
    }
    assert!(header_lines.iter().any(|h| h.starts_with("Date: ")), "{headers}");
    // lettre ends DATA with CRLF "." CRLF even after a body's own final CRLF.
    assert_eq!(body.trim_end(), "Your ACME verification code is 493817.\r\nIt expires in 10 minutes.");
}

#[tokio::test]
async fn a_retry_carries_the_same_message_id() {
    let server = SmtpServer::start("250 2.1.5 ok\r\n").await;
    let transport = SmtpTransport::new(config(server.addr)).unwrap();
    let message = email("outbox-42", "bob@example.test");

    transport.send(&message).await.unwrap();
    transport.send(&message).await.unwrap();

    let ids: Vec<String> = server
        .sessions()
        .iter()
        .map(|s| {
            let data = s.data.clone().unwrap();
            data.lines().find(|l| l.starts_with("Message-ID:")).unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids, ["Message-ID: <outbox-42@acme.test>", "Message-ID: <outbox-42@acme.test>"]);
}

#[tokio::test]
async fn reply_codes_decide_retry_or_give_up() {
    let check = |reply: &'static str, expected: Outcome| async move {
        let server = SmtpServer::start(reply).await;
        let transport = SmtpTransport::new(config(server.addr)).unwrap();
        let result = transport.send(&email("m1", "bob@example.test")).await;
        assert_eq!(outcome(&result), expected, "RCPT reply {reply:?}: {result:?}");
        assert!(server.sessions().iter().all(|s| s.data.is_none()), "no DATA after a refused RCPT");
        if let Err(e) = result {
            // The reply text (which often repeats the address) is not kept.
            assert!(!e.to_string().contains("bob@example.test"), "{e}");
        }
    };
    check("451 4.7.1 greylisted, try again later\r\n", Outcome::Retry).await;
    check("452 4.2.2 mailbox full\r\n", Outcome::Retry).await;
    check("550 5.1.1 <bob@example.test>: no such user\r\n", Outcome::GiveUp).await;
    check("553 5.1.3 bad address syntax\r\n", Outcome::GiveUp).await;
}

#[tokio::test]
async fn nothing_listening_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let transport = SmtpTransport::new(config(addr)).unwrap();
    let result = transport.send(&email("m1", "bob@example.test")).await;
    assert_eq!(outcome(&result), Outcome::Retry, "{result:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and keeps the connection open, but never sends the greeting.
    let held = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    });

    let transport = SmtpTransport::new(SmtpConfig { timeout_seconds: 1, ..config(addr) }).unwrap();
    let started = Instant::now();
    let result = transport.send(&email("m1", "bob@example.test")).await;
    assert_eq!(outcome(&result), Outcome::Retry, "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    held.abort();
}

#[tokio::test]
async fn refuses_what_it_cannot_send_without_connecting() {
    let server = SmtpServer::start("250 ok\r\n").await;
    let transport = SmtpTransport::new(config(server.addr)).unwrap();

    let to_phone = transport.send(&sms("m1", "+14155550100")).await;
    assert_eq!(outcome(&to_phone), Outcome::GiveUp, "{to_phone:?}");
    let bad_address = transport.send(&email("m2", "not an address")).await;
    assert_eq!(outcome(&bad_address), Outcome::GiveUp, "{bad_address:?}");
    let bad_id = transport.send(&email("m3\r\nBcc: eve@evil.test", "bob@example.test")).await;
    assert_eq!(outcome(&bad_id), Outcome::GiveUp, "{bad_id:?}");

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.sessions().is_empty(), "{:?}", server.sessions());
}

#[tokio::test]
async fn bad_settings_are_refused_at_startup() {
    let addr: SocketAddr = "127.0.0.1:2525".parse().unwrap();
    let invalid = |config: SmtpConfig| match SmtpTransport::new(config) {
        Err(ConfigError::Invalid { setting, .. }) => setting,
        other => panic!("expected an invalid setting, got {other:?}"),
    };
    assert_eq!(invalid(SmtpConfig { from: "nobody".into(), ..config(addr) }), "from");
    assert_eq!(invalid(SmtpConfig { timeout_seconds: 0, ..config(addr) }), "timeout_seconds");
    assert_eq!(invalid(SmtpConfig { host: " ".into(), ..config(addr) }), "host");
    assert_eq!(invalid(SmtpConfig { username: Some("u".into()), ..config(addr) }), "password");
    let with_password =
        SmtpConfig { username: Some("u".into()), password: Some(SecretString::from("p")), ..config(addr) };
    assert_eq!(invalid(with_password.clone()), "security");
    assert!(SmtpTransport::new(SmtpConfig { security: SmtpSecurity::StartTls, ..with_password.clone() }).is_ok());
    assert!(SmtpTransport::new(SmtpConfig { security: SmtpSecurity::Tls, ..with_password }).is_ok());
}
