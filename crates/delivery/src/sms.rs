//! What the HTTP SMS providers share: the client, checks on the message, and
//! how an HTTP outcome becomes a [`SendError`].

use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::{Address, ConfigError, Message, SendError};

/// The longest SMS body sent, in characters (Twilio's limit: ten segments).
pub const SMS_BODY_CHARS_MAX: usize = 1600;
/// The longest HTTP timeout accepted for an SMS provider, in seconds.
pub const HTTP_TIMEOUT_SECONDS_MAX: u64 = 120;
/// How much of an error response is read to find the provider's error code.
const ERROR_BODY_BYTES_MAX: usize = 16 * 1024;

/// An HTTP client for one provider: a total timeout per request, no redirects
/// (a provider that redirects a POST is misconfigured, and a redirect must not
/// carry the credentials elsewhere).
pub(crate) fn client(timeout_seconds: u64) -> Result<reqwest::Client, ConfigError> {
    if timeout_seconds == 0 || timeout_seconds > HTTP_TIMEOUT_SECONDS_MAX {
        return Err(ConfigError::invalid(
            "timeout_seconds",
            format!("{timeout_seconds} is outside 1..={HTTP_TIMEOUT_SECONDS_MAX}"),
        ));
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_seconds))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("regain/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::invalid("timeout_seconds", format!("cannot build the HTTP client: {e}")))
}

/// Parses an `http` or `https` URL.
pub(crate) fn http_url(setting: &'static str, url: &str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|e| ConfigError::invalid(setting, format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::invalid(setting, format!("`{url}` is not an http or https URL")));
    }
    Ok(parsed)
}

/// The phone number of an SMS message, after the checks every provider needs.
pub(crate) fn phone_number<'m>(transport: &str, message: &'m Message) -> Result<&'m str, SendError> {
    let Address::Sms(number) = &message.to else {
        return Err(SendError::Permanent(format!("the {transport} transport cannot send to an email address")));
    };
    let digits = number.strip_prefix('+').unwrap_or("");
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(SendError::Permanent("the recipient is not an E.164 phone number".into()));
    }
    let chars = message.body.chars().count();
    if chars > SMS_BODY_CHARS_MAX {
        return Err(SendError::Permanent(format!(
            "the SMS body has {chars} characters, more than {SMS_BODY_CHARS_MAX}"
        )));
    }
    Ok(number)
}

/// Success for 2xx; retry for 408, 429 and 5xx, which say "not now"; give up
/// for anything else (other 4xx, and 3xx since redirects are not followed).
/// `code` is the provider's own error code, if it gave one.
pub(crate) fn classify_status(provider: &str, status: StatusCode, code: Option<u64>) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let what = match code {
        Some(code) => format!("{provider} answered HTTP {} (error code {code})", status.as_u16()),
        None => format!("{provider} answered HTTP {}", status.as_u16()),
    };
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
        Err(SendError::Retryable(what))
    } else {
        Err(SendError::Permanent(what))
    }
}

/// A request that got no HTTP answer: a request that could not even be built
/// is permanent; a timeout, a refused or broken connection may pass. The URL is
/// left out, as a webhook URL may carry a secret.
pub(crate) fn classify_error(provider: &str, error: reqwest::Error) -> SendError {
    let error = error.without_url();
    if error.is_builder() {
        SendError::Permanent(format!("{provider}: cannot build the request: {error}"))
    } else if error.is_timeout() {
        SendError::Retryable(format!("{provider}: timed out"))
    } else {
        SendError::Retryable(format!("{provider}: {error}"))
    }
}

/// The numeric `code` field of a JSON error body, reading at most a few KiB.
pub(crate) async fn error_code(mut response: reqwest::Response) -> Option<u64> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > ERROR_BODY_BYTES_MAX {
            return None;
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    value.get("code")?.as_u64()
}
