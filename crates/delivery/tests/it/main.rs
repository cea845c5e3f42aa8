//! Integration tests for regain-delivery, through the public API against real
//! local servers: an SMTP server and HTTP servers started inside the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backoff;
mod http;
mod signing;
mod sink;
mod smtp;
mod templates;

use regain_delivery::{Address, Message, SendError};

/// What one delivery attempt came to, for table-driven checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry,
    GiveUp,
}

pub fn outcome(result: &Result<(), SendError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Sent,
        Err(SendError::Retryable(_)) => Outcome::Retry,
        Err(SendError::Permanent(_)) => Outcome::GiveUp,
    }
}

pub fn email(id: &str, to: &str) -> Message {
    Message {
        id: id.into(),
        to: Address::Email(to.into()),
        subject: "Your ACME verification code".into(),
        body: "Your ACME verification code is 493817.\r\nIt expires in 10 minutes.\r\n".into(),
    }
}

pub fn sms(id: &str, to: &str) -> Message {
    Message {
        id: id.into(),
        to: Address::Sms(to.into()),
        subject: String::new(),
        body: "493817 is your ACME verification code for account recovery.".into(),
    }
}
