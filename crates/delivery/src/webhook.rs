//! SMS through a generic JSON webhook: the simplest provider interface to put
//! in front of any SMS gateway.

use reqwest::Url;
use secrecy::{ExposeSecret as _, SecretString};

use crate::sms::{classify_error, classify_status, client, error_code, http_url, phone_number};
use crate::{ConfigError, Message, SendError, Transport};

/// Settings for [`JsonWebhookSms`].
#[derive(Debug, Clone)]
pub struct JsonWebhookConfig {
    /// Where messages are POSTed, `http` or `https`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub token: Option<SecretString>,
    /// The limit on a whole request, in seconds (1 to 120).
    pub timeout_seconds: u64,
}

/// Sends [`Address::Sms`](crate::Address::Sms) messages as
/// `POST {url}` with the JSON body `{"id": …, "to": "+…", "body": …}`, the
/// header `Idempotency-Key: <id>` (the same on every attempt) and
/// `Authorization: Bearer <token>` if a token is set.
///
/// 2xx is success; 408, 429, 5xx, timeouts and connection failures are
/// [`SendError::Retryable`]; other statuses are [`SendError::Permanent`].
/// A numeric `code` field in a JSON error body is kept in the error text.
pub struct JsonWebhookSms {
    client: reqwest::Client,
    url: Url,
    token: Option<SecretString>,
}

impl std::fmt::Debug for JsonWebhookSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's host only: its path or query may hold a secret.
        f.debug_struct("JsonWebhookSms").field("host", &self.url.host_str()).finish_non_exhaustive()
    }
}

impl JsonWebhookSms {
    /// Checks `config` and builds the transport.
    pub fn new(config: JsonWebhookConfig) -> Result<Self, ConfigError> {
        Ok(JsonWebhookSms {
            client: client(config.timeout_seconds)?,
            url: http_url("url", &config.url)?,
            token: config.token,
        })
    }
}

#[async_trait::async_trait]
impl Transport for JsonWebhookSms {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let to = phone_number(self.name(), message)?;
        let payload = serde_json::json!({ "id": message.id, "to": to, "body": message.body });
        let mut request = self.client.post(self.url.clone()).header("Idempotency-Key", &message.id).json(&payload);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| classify_error("the sms webhook", e))?;
        let status = response.status();
        let code = if status.is_success() { None } else { error_code(response).await };
        classify_status("the sms webhook", status, code)
    }

    fn name(&self) -> &'static str {
        "sms-webhook"
    }
}
