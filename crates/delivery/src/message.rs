//! What is sent, to whom, and the one trait every way of sending implements.

/// Where a message goes. Built from validated domain values (`EmailAddress`,
/// `PhoneE164`); transports still refuse what they cannot use, as a
/// [`SendError::Permanent`](crate::SendError::Permanent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An email address, `local@domain`.
    Email(String),
    /// A phone number in E.164 form, `+` and 8 to 15 digits.
    Sms(String),
}

impl Address {
    /// The channel this address is reached through.
    pub fn channel(&self) -> Channel {
        match self {
            Address::Email(_) => Channel::Email,
            Address::Sms(_) => Channel::Sms,
        }
    }

    /// The address itself, without its kind.
    pub fn as_str(&self) -> &str {
        match self {
            Address::Email(address) | Address::Sms(address) => address,
        }
    }
}

/// A way of reaching a person; templates come in one variant per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Email: a subject and a plain-text body of any length.
    Email,
    /// SMS: a short, one-line body; the subject is not sent.
    Sms,
}

impl Channel {
    /// `"email"` or `"sms"`, as written in the sink file and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// One outgoing message, as read from an outbox row.
#[derive(Debug, Clone)]
pub struct Message {
    /// The outbox id. The same on every attempt, so it is the `Message-ID`
    /// of an email and the idempotency key of an SMS request: a provider or a
    /// reader can tell a retry from a second message.
    pub id: String,
    /// The recipient.
    pub to: Address,
    /// The email subject; not sent by SMS transports.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// A way of delivering messages: SMTP, an SMS provider, the demo's file sink.
///
/// `send` makes one attempt. Retrying, with [`backoff`](crate::backoff) and
/// up to [`ATTEMPTS_MAX`](crate::ATTEMPTS_MAX), is the outbox worker's job,
/// guided by whether the error is [`Retryable`](crate::SendError::Retryable).
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Delivers `message` once, or says why not and whether trying again may help.
    async fn send(&self, message: &Message) -> Result<(), crate::SendError>;

    /// A short name for logs and metrics: `"smtp"`, `"twilio"`, …
    fn name(&self) -> &'static str;
}
