//! SMS through a Twilio-style form API.

use reqwest::Url;
use secrecy::{ExposeSecret as _, SecretString};

use crate::sms::{classify_error, classify_status, client, error_code, http_url, phone_number};
use crate::{ConfigError, Message, SendError, Transport};

/// Twilio's API, used when [`TwilioConfig::base_url`] is not set.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// Who an SMS sent through Twilio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    /// A phone number or alphanumeric sender id, sent as `From`.
    From(String),
    /// A messaging service, which picks the sender, sent as `MessagingServiceSid`.
    MessagingServiceSid(String),
}

/// Settings for [`TwilioSms`].
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// The API's origin; `None` means [`TWILIO_BASE_URL`]. Set it for a
    /// Twilio-compatible provider or a test server.
    pub base_url: Option<String>,
    /// The account SID (`AC…`): part of the URL and the basic-auth user.
    pub account_sid: String,
    /// The auth token: the basic-auth password.
    pub auth_token: SecretString,
    /// The sender.
    pub sender: TwilioSender,
    /// The limit on a whole request, in seconds (1 to 120).
    pub timeout_seconds: u64,
}

/// Sends [`Address::Sms`](crate::Address::Sms) messages as
/// `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with the
/// form fields `To`, `From` or `MessagingServiceSid`, and `Body`; HTTP basic
/// auth with the account SID and auth token; and the header
/// `I-Twilio-Idempotency-Token: <id>`, the same on every attempt.
///
/// 2xx (Twilio answers 201) is success; 408, 429, 5xx, timeouts and
/// connection failures are [`SendError::Retryable`]; other statuses are
/// [`SendError::Permanent`], with Twilio's numeric error code (such as 21211,
/// "invalid 'To' number") in the text but not its message, which may quote
/// the number.
pub struct TwilioSms {
    client: reqwest::Client,
    url: Url,
    account_sid: String,
    auth_token: SecretString,
    sender: TwilioSender,
}

impl std::fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSms")
            .field("url", &self.url.as_str())
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl TwilioSms {
    /// Checks `config` and builds the transport.
    pub fn new(config: TwilioConfig) -> Result<Self, ConfigError> {
        let sid = &config.account_sid;
        if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::invalid("account_sid", "must be 1 to 64 ASCII letters and digits"));
        }
        if config.auth_token.expose_secret().is_empty() {
            return Err(ConfigError::invalid("auth_token", "is empty"));
        }
        let (field, value) = sender_field(&config.sender);
        if value.trim().is_empty() {
            return Err(ConfigError::invalid("sender", format!("`{field}` is empty")));
        }
        let base = config.base_url.as_deref().unwrap_or(TWILIO_BASE_URL);
        let mut url = http_url("base_url", base)?;
        url.path_segments_mut()
            .map_err(|()| ConfigError::invalid("base_url", format!("`{base}` cannot have a path")))?
            .pop_if_empty()
            .extend(["2010-04-01", "Accounts", sid.as_str(), "Messages.json"]);
        Ok(TwilioSms {
            client: client(config.timeout_seconds)?,
            url,
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            sender: config.sender,
        })
    }
}

fn sender_field(sender: &TwilioSender) -> (&'static str, &str) {
    match sender {
        TwilioSender::From(from) => ("From", from),
        TwilioSender::MessagingServiceSid(sid) => ("MessagingServiceSid", sid),
    }
}

#[async_trait::async_trait]
impl Transport for TwilioSms {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let to = phone_number(self.name(), message)?;
        let form = [("To", to), sender_field(&self.sender), ("Body", message.body.as_str())];
        let response = self
            .client
            .post(self.url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header("I-Twilio-Idempotency-Token", &message.id)
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_error("twilio", e))?;
        let status = response.status();
        let code = if status.is_success() { None } else { error_code(response).await };
        classify_status("twilio", status, code)
    }

    fn name(&self) -> &'static str {
        "twilio"
    }
}
