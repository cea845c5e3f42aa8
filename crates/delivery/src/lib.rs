//! Regain's outgoing messages (issue 4 item 7): the transports, templates and
//! retry policy behind the outbox.
//!
//! A case change and the message it causes commit together as an outbox row
//! (in `store`); a worker (in `server`) takes due rows and hands each to a
//! [`Transport`]. This crate holds what that worker uses:
//!
//! - transports: [`SmtpTransport`] for email, [`JsonWebhookSms`] and
//!   [`TwilioSms`] for SMS, [`FileSink`] for the demo, and a [`Router`] that
//!   picks one by the recipient's [`Address`];
//! - the verdict of an attempt, [`SendError::Retryable`] or
//!   [`SendError::Permanent`], and when to try again: [`backoff`], up to
//!   [`ATTEMPTS_MAX`] attempts;
//! - message [`Template`]s with `{{name}}` placeholders, and the
//!   [`builtin`] ones per [`Channel`].
//!
//! Each attempt of one outbox row carries the row's id (as the email's
//! `Message-ID`, as an SMS provider's idempotency key), so a retry after an
//! attempt that did get through is recognisable as a duplicate.
//!
//! Error texts name reply codes and statuses, never the recipient or the body,
//! so they may be stored and logged.

mod backoff;
mod builtin;
mod error;
mod message;
mod router;
/// Standard Webhooks signatures for outgoing webhooks and vendor callbacks.
pub mod signing;
mod sink;
mod sms;
mod smtp;
mod template;
mod twilio;
mod webhook;

pub use backoff::{backoff, backoff_ceiling, ATTEMPTS_MAX, BACKOFF_BASE, BACKOFF_CAP};
pub use builtin::{builtin, builtin_placeholders, BUILTIN_NAMES};
pub use error::{ConfigError, SendError, TemplateError};
pub use message::{Address, Channel, Message, Transport};
pub use router::Router;
pub use sink::{read_sink, FileSink, SinkedMessage};
pub use sms::{HTTP_TIMEOUT_SECONDS_MAX, SMS_BODY_CHARS_MAX};
pub use smtp::{SmtpConfig, SmtpSecurity, SmtpTransport, SMTP_TIMEOUT_SECONDS_MAX};
pub use template::Template;
pub use twilio::{TwilioConfig, TwilioSender, TwilioSms, TWILIO_BASE_URL};
pub use webhook::{JsonWebhookConfig, JsonWebhookSms};
