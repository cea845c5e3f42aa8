//! SIM-swap recency of the phone on file, through a provider modelled on the CAMARA SIM Swap
//! API: `POST {base}/retrieve-date {"phoneNumber"}` → `{"latestSimChange": RFC 3339 | null}` and
//! `POST {base}/check {"phoneNumber", "maxAge"}` → `{"swapped": bool}`, with a bearer token.
//!
//! The caller bounds every call with the policy's deadline; a provider that answers late or not
//! at all makes the signal missing, never the assessment slow.

use std::time::Duration;

use async_trait::async_trait;
use chrono::DateTime;
use regain_core::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimSwapError {
    /// The operator does not know the number (CAMARA 404), or it is not one of theirs.
    #[error("the operator does not know this number")]
    UnknownNumber,
    /// Anything else: a refusal, a server error, an answer that does not parse, no connection.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait SimSwapProvider: Send + Sync {
    /// A short name for reasons and logs: `camara`.
    fn name(&self) -> &'static str;
    /// When the SIM card of `phone` (E.164) last changed, if the operator has one on record.
    async fn retrieve_date(&self, phone: &str) -> Result<Option<Timestamp>, SimSwapError>;
    /// Whether it changed within the last `max_age_hours` (1 to 2400).
    async fn check(&self, phone: &str, max_age_hours: u32) -> Result<bool, SimSwapError>;
}

/// A CAMARA SIM Swap endpoint over HTTP.
pub struct HttpSimSwap {
    base_url: String,
    token: Option<SecretString>,
    client: reqwest::Client,
}

impl HttpSimSwap {
    /// `base_url` is the API root, such as `https://operator.example/sim-swap/v1`. The client's
    /// own timeout is a backstop; the engine's deadline is usually shorter.
    pub fn new(base_url: &str, token: Option<SecretString>, timeout_ms: u64) -> Result<Self, String> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!("the SIM-swap provider's URL must start with http:// or https:// (got {base_url:?})"));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the SIM-swap provider's HTTP client: {e}"))?;
        Ok(Self { base_url: base_url.trim_end_matches('/').to_owned(), token, client })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, SimSwapError> {
        let mut request = self.client.post(format!("{}/{path}", self.base_url)).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            SimSwapError::Unavailable(if e.is_timeout() { "timed out".to_owned() } else { "no connection".to_owned() })
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(SimSwapError::UnknownNumber);
        }
        if !status.is_success() {
            return Err(SimSwapError::Unavailable(format!("the provider answered {}", status.as_u16())));
        }
        response.json().await.map_err(|_| SimSwapError::Unavailable("the provider's answer is not JSON".to_owned()))
    }
}

#[async_trait]
impl SimSwapProvider for HttpSimSwap {
    fn name(&self) -> &'static str {
        "camara"
    }

    async fn retrieve_date(&self, phone: &str) -> Result<Option<Timestamp>, SimSwapError> {
        let answer = self.post("retrieve-date", json!({ "phoneNumber": phone })).await?;
        match answer.get("latestSimChange") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
                .map(|t| Some(t.to_utc()))
                .map_err(|_| SimSwapError::Unavailable("latestSimChange is not an RFC 3339 time".to_owned())),
            Some(_) => Err(SimSwapError::Unavailable("latestSimChange is not a string".to_owned())),
        }
    }

    async fn check(&self, phone: &str, max_age_hours: u32) -> Result<bool, SimSwapError> {
        let answer =
            self.post("check", json!({ "phoneNumber": phone, "maxAge": max_age_hours.clamp(1, 2400) })).await?;
        answer
            .get("swapped")
            .and_then(Value::as_bool)
            .ok_or_else(|| SimSwapError::Unavailable("the answer has no boolean `swapped`".to_owned()))
    }
}
