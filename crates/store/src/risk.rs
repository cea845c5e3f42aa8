//! What the risk engine reads from the store (issue 5): each recovery request's context, and
//! the history one assessment compares it with — gathered in as few statements as possible,
//! since every recovery request waits for it (benchmark B5: p99 ≤ 1 ms).

use chrono::Duration;
use regain_core::Timestamp;

/// Where a recovery request came from, as the intake knows it. Personal data: the store keeps
/// it sealed under the case's key and looks it up only through blind indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The customer's IP (a web or chat request passed on by the client system), canonical.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The client system's own device identifier (a cookie, a device fingerprint's id).
    pub device_id: Option<String>,
    /// The phone number the request came from (caller ID) or named, in E.164.
    pub phone: Option<String>,
    /// The email address the request came from (the sender), normalized.
    pub email: Option<String>,
    /// The phone number the caller named at identification, in E.164.
    pub named_phone: Option<String>,
    /// The email address the caller named at identification, normalized.
    pub named_email: Option<String>,
}

impl RequestContext {
    /// A recorded request (`self`) updated by `later`: what the intake saw stays, and what it
    /// lacked is filled in; what the caller named is the latest naming.
    pub fn updated_by(self, later: &RequestContext) -> Self {
        Self {
            ip: self.ip.or_else(|| later.ip.clone()),
            user_agent: self.user_agent.or_else(|| later.user_agent.clone()),
            device_id: self.device_id.or_else(|| later.device_id.clone()),
            phone: self.phone.or_else(|| later.phone.clone()),
            email: self.email.or_else(|| later.email.clone()),
            named_phone: later.named_phone.clone().or(self.named_phone),
            named_email: later.named_email.clone().or(self.named_email),
        }
    }

    /// Every email address in the request: the sender's and the one named.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.email.as_deref().into_iter().chain(self.named_email.as_deref())
    }

    /// The device as sign-ins know it: the client's device id, else the user agent.
    pub fn device(&self) -> Option<&str> {
        self.device_id.as_deref().or(self.user_agent.as_deref())
    }
}

/// The windows one assessment counts in (from the tenant's risk policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskWindows {
    pub customer: Duration,
    pub ip: Duration,
    pub phone: Duration,
    pub email: Duration,
    pub failures: Duration,
    /// How many distinct recent successful sign-ins to compare the request with.
    pub logins_max: u32,
}

/// A successful sign-in as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastLogin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Everything the store knows for one assessment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskHistory {
    /// The case's recorded request context (empty if none was recorded).
    pub context: RequestContext,
    /// Requests within each window, this one included; `None` where the request has no such
    /// subject (no customer identified yet, no IP, …).
    pub requests_customer: Option<u32>,
    pub requests_ip: Option<u32>,
    pub requests_phone: Option<u32>,
    pub requests_email: Option<u32>,
    /// The customer's counted verification failures in the window.
    pub failures: Option<u32>,
    pub password_changed_at: Option<Timestamp>,
    /// The latest second factor set up: TOTP confirmed, recovery codes issued.
    pub factor_changed_at: Option<Timestamp>,
    /// The latest email address or phone number added.
    pub contact_changed_at: Option<Timestamp>,
    /// All successful sign-ins on record.
    pub login_successes: u32,
    /// The most recent distinct (IP, user agent) pairs of successful sign-ins.
    pub logins: Vec<PastLogin>,
}
