//! Email over SMTP, through lettre.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{Address, ConfigError, Message, SendError, Transport};

/// The longest SMTP command timeout accepted, in seconds.
pub const SMTP_TIMEOUT_SECONDS_MAX: u64 = 600;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text, for a relay on this host or a test server. Credentials are
    /// refused with it, as they would cross the network in clear.
    None,
    /// Connect in plain text, then require STARTTLS before anything is sent
    /// (usually port 587). A server without STARTTLS is an error, not a downgrade.
    StartTls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Tls,
}

impl SmtpSecurity {
    /// The usual port for this kind of connection: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// Settings for [`SmtpTransport`].
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The server's host name; also the name its TLS certificate must have.
    pub host: String,
    /// The server's port; see [`SmtpSecurity::default_port`].
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// The user to authenticate as; set together with `password`, or neither.
    pub username: Option<String>,
    /// The password for `username`.
    pub password: Option<SecretString>,
    /// The sender mailbox, such as `ACME Support <support@acme.test>`. Its
    /// domain is also the right-hand side of every `Message-ID`.
    pub from: String,
    /// The limit on one whole attempt, from connecting to QUIT, in seconds
    /// (1 to 600). lettre's own timeout covers only connecting, so a server
    /// that accepts and then stays silent would otherwise hold a worker forever.
    pub timeout_seconds: u64,
}

/// Sends [`Address::Email`] messages through one SMTP server.
///
/// Each message is one SMTP session (connect, EHLO, TLS, AUTH, MAIL, RCPT,
/// DATA, QUIT): recovery mail is rare enough that a pool of idle connections
/// would buy nothing, and a fresh connection never fails on a stale one.
///
/// A 4xx reply, a timeout (see [`SmtpConfig::timeout_seconds`]) and a connection or TLS failure are
/// [`SendError::Retryable`]; a 5xx reply is [`SendError::Permanent`]. Every
/// attempt for one outbox row carries the same `Message-ID`,
/// `<{message.id}@{domain of from}>`, so a message that was accepted although
/// its attempt seemed to fail is recognisable as a duplicate.
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Checks `config` and builds the transport. Nothing is connected yet: the
    /// first connection is made by the first [`Transport::send`].
    pub fn new(config: SmtpConfig) -> Result<Self, ConfigError> {
        if config.host.trim().is_empty() {
            return Err(ConfigError::invalid("host", "is empty"));
        }
        if config.port == 0 {
            return Err(ConfigError::invalid("port", "must not be 0"));
        }
        if config.timeout_seconds == 0 || config.timeout_seconds > SMTP_TIMEOUT_SECONDS_MAX {
            return Err(ConfigError::invalid(
                "timeout_seconds",
                format!("{} is outside 1..={SMTP_TIMEOUT_SECONDS_MAX}", config.timeout_seconds),
            ));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ConfigError::invalid("from", format!("`{}` is not a mailbox: {e}", config.from)))?;

        let builder = match config.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str()),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|e| ConfigError::invalid("host", e.to_string()))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| ConfigError::invalid("host", e.to_string()))?,
        };
        let timeout = Duration::from_secs(config.timeout_seconds);
        let mut builder = builder.port(config.port).timeout(Some(timeout));
        match (config.username, config.password) {
            (None, None) => {}
            (Some(_), Some(_)) if config.security == SmtpSecurity::None => {
                return Err(ConfigError::invalid(
                    "security",
                    "credentials need `starttls` or `tls`: with `none` the password would be sent in clear",
                ));
            }
            (Some(username), Some(password)) => {
                builder = builder.credentials(Credentials::new(username, password.expose_secret().to_owned()));
            }
            (Some(_), None) => return Err(ConfigError::invalid("password", "is required with a username")),
            (None, Some(_)) => return Err(ConfigError::invalid("username", "is required with a password")),
        }
        Ok(SmtpTransport { inner: builder.build(), from, timeout })
    }

    fn build(&self, message: &Message) -> Result<lettre::Message, SendError> {
        let Address::Email(address) = &message.to else {
            return Err(SendError::Permanent("the smtp transport cannot send to a phone number".into()));
        };
        let to: Mailbox =
            address.parse().map_err(|_| SendError::Permanent("the recipient is not a valid email address".into()))?;
        let message_id = message_id(&message.id, self.from.email.domain())?;
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_str())
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
    }
}

#[async_trait::async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let email = self.build(message)?;
        match tokio::time::timeout(self.timeout, self.inner.send(email)).await {
            Ok(result) => result.map(drop).map_err(classify),
            // Dropping the session closes the connection.
            Err(_) => {
                Err(SendError::Retryable(format!("smtp: no complete session within {} s", self.timeout.as_secs())))
            }
        }
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

/// `<id@domain>`, if the outbox id can stand in a Message-ID as it is.
fn message_id(id: &str, domain: &str) -> Result<String, SendError> {
    let usable = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !usable {
        return Err(SendError::Permanent(
            "the message id must be 1 to 128 ASCII letters, digits, `-`, `_` or `.`".into(),
        ));
    }
    Ok(format!("<{id}@{domain}>"))
}

/// Sorts an SMTP failure into retry or not. Only the reply code is kept of a
/// server's reply: its text often repeats the recipient's address.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    match error.status() {
        Some(code) if error.is_permanent() => SendError::Permanent(format!("the smtp server replied {code}")),
        Some(code) => SendError::Retryable(format!("the smtp server replied {code}")),
        None if error.is_client() => SendError::Permanent(format!("smtp: {error}")),
        // Connection refused or broken, timeout, TLS handshake, garbled reply:
        // the server or the network may be back later.
        None => SendError::Retryable(format!("smtp: {error}")),
    }
}
