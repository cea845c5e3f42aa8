//! Connectors: where the customer's account really lives, chosen per tenant (issue 6 item 4).
//!
//! - `builtin`: the directory inside Regain (the default); its changes are effects in the
//!   case change's own transaction.
//! - `scim`: a SCIM 2.0 service provider (RFC 7644): the user is found by `userName`, then
//!   changed with PATCH (`active`, `password`).
//! - `webhook`: a signed request (Standard Webhooks) to the tenant's endpoint describing the
//!   change; the tenant's answer (status and the start of its body) is recorded on the case.
//!
//! An external call carries the action's id as its idempotency key (`webhook-id`; SCIM's
//! replace operations are idempotent by themselves), so a retry after a crash between the call
//! and the commit changes nothing twice.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use regain_core::Customer;
use regain_delivery::signing::WebhookSecret;
use serde_json::{json, Value};

/// A tenant's connector, from the configuration.
#[derive(Clone)]
pub enum ConnectorConfig {
    Scim { url: String, token: Option<String> },
    Webhook { url: String, secret: WebhookSecret },
}

impl ConnectorConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Scim { .. } => "scim",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// Never the token or the secret.
impl fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scim { url, .. } => write!(f, "Scim({url})"),
            Self::Webhook { url, .. } => write!(f, "Webhook({url})"),
        }
    }
}

/// What is changed in the account system.
#[derive(Clone, Copy)]
pub enum AccountChange<'a> {
    /// The lockout cleared: `active` true.
    Activate,
    /// A lockdown: `active` false.
    Deactivate,
    SetPassword(&'a str),
    /// A contact change taking effect: the new email or phone (normalized), replacing the
    /// account's others of its kind when `replace`.
    SetContact {
        kind: regain_store::ContactKind,
        value: &'a str,
        replace: bool,
    },
}

impl AccountChange<'_> {
    fn name(self) -> &'static str {
        match self {
            Self::Activate => "account.unlock",
            Self::Deactivate => "account.lockdown",
            Self::SetPassword(_) => "account.set_password",
            Self::SetContact { .. } => "account.set_contact",
        }
    }
}

/// Never the password.
impl fmt::Debug for AccountChange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a call did not go through: `retry` when it may work later (the peer down or slow, a
/// 5xx, a 429), else it will not (refused, unknown user, bad configuration). `unsure` when the
/// peer may have made the change all the same: the request was sent, and then it timed out or
/// the connection broke before an answer. A peer that answered with an error, or could not be
/// reached at all, did not make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub retry: bool,
    pub unsure: bool,
    pub message: String,
}

impl RemoteError {
    fn later(message: impl Into<String>) -> Self {
        Self { retry: true, unsure: false, message: message.into() }
    }

    fn never(message: impl Into<String>) -> Self {
        Self { retry: false, unsure: false, message: message.into() }
    }
}

/// How long a connector call may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder().timeout(TIMEOUT).redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default()
});

/// Makes `change` to `customer`'s account through `connector`; `key` is the idempotency key.
/// Returns the peer's answer in short, for the timeline.
pub async fn apply(
    connector: &ConnectorConfig,
    customer: &Customer,
    key: &str,
    change: AccountChange<'_>,
    now: regain_core::Timestamp,
) -> Result<String, RemoteError> {
    let result = match connector {
        ConnectorConfig::Scim { url, token } => scim(url, token.as_deref(), customer, change).await,
        ConnectorConfig::Webhook { url, secret } => webhook(url, secret, customer, key, change, now).await,
    };
    // A peer's words about a refused password or contact could quote it: only the status is
    // kept then.
    match (result, change) {
        (Err(e), AccountChange::SetPassword(_) | AccountChange::SetContact { .. }) => {
            let status: String = e.message.split(':').next().unwrap_or("the account system refused it").to_owned();
            Err(RemoteError { message: status, ..e })
        }
        (other, _) => other,
    }
}

fn transport(e: &reqwest::Error) -> RemoteError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    RemoteError { unsure: !e.is_connect(), ..RemoteError::later(format!("the account system {what}")) }
}

/// A refusal's status and, when the peer said why, its words (SCIM's `detail`), cut short.
async fn refusal(response: reqwest::Response) -> RemoteError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let detail: String = detail.chars().take(200).collect();
    let message = if detail.is_empty() {
        format!("the account system answered {}", status.as_u16())
    } else {
        format!("the account system answered {}: {detail}", status.as_u16())
    };
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        RemoteError::later(message)
    } else {
        RemoteError::never(message)
    }
}

async fn scim(
    url: &str,
    token: Option<&str>,
    customer: &Customer,
    change: AccountChange<'_>,
) -> Result<String, RemoteError> {
    let base = url.trim_end_matches('/');
    let with_auth = |request: reqwest::RequestBuilder| match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    // RFC 7644 3.4.2.2: a filter on userName, whose value is a JSON string.
    let filter = format!("userName eq {}", Value::from(customer.username.as_str()));
    let found = with_auth(CLIENT.get(format!("{base}/Users")))
        .query(&[("filter", filter.as_str()), ("attributes", "id")])
        .header("accept", "application/scim+json")
        .send()
        .await
        .map_err(|e| transport(&e))?;
    if !found.status().is_success() {
        return Err(refusal(found).await);
    }
    let list: Value =
        found.json().await.map_err(|_| RemoteError::later("the account system's answer did not parse"))?;
    let ids: Vec<&str> = list
        .get("Resources")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|u| u.get("id").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    let id = match ids.as_slice() {
        [id] => *id,
        [] => return Err(RemoteError::never("the account system has no user with this username")),
        _ => return Err(RemoteError::never("the account system has several users with this username")),
    };
    let (op, path, value) = match change {
        AccountChange::Activate => ("replace", "active", json!(true)),
        AccountChange::Deactivate => ("replace", "active", json!(false)),
        AccountChange::SetPassword(password) => ("replace", "password", json!(password)),
        // RFC 7643 4.1.2: multi-valued; `replace` puts the new one in place of all, `add` beside.
        AccountChange::SetContact { kind, value, replace } => {
            let path = match kind {
                regain_store::ContactKind::Email => "emails",
                regain_store::ContactKind::Phone => "phoneNumbers",
            };
            let op = if replace { "replace" } else { "add" };
            (op, path, json!([{"value": value, "primary": replace}]))
        }
    };
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": op, "path": path, "value": value}],
    });
    let response = with_auth(CLIENT.patch(format!("{base}/Users/{id}")))
        .header("content-type", "application/scim+json")
        .header("accept", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .map_err(|e| transport(&e))?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    Ok(format!("SCIM PATCH {path}: {}", response.status().as_u16()))
}

async fn webhook(
    url: &str,
    secret: &WebhookSecret,
    customer: &Customer,
    key: &str,
    change: AccountChange<'_>,
    now: regain_core::Timestamp,
) -> Result<String, RemoteError> {
    let mut data = json!({
        "action_id": key,
        "customer_id": customer.id.to_string(),
        "external_id": customer.external_id,
        "username": customer.username,
    });
    match change {
        AccountChange::SetPassword(password) => data["password"] = json!(password),
        AccountChange::SetContact { kind, value, replace } => {
            data["contact"] = json!({"kind": kind.as_str(), "value": value, "replace": replace});
        }
        AccountChange::Activate | AccountChange::Deactivate => {}
    }
    let body = json!({"type": change.name(), "timestamp": now.to_rfc3339(), "data": data}).to_string();
    let mut request = CLIENT.post(url).header("content-type", "application/json");
    for (name, value) in secret.headers(key, now.timestamp(), body.as_bytes()) {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.map_err(|e| transport(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(refusal(response).await);
    }
    // Only the tenant's reference for the change is kept (its `id` or `reference`, short and
    // plain): an answer's body could hold anything, personal data included.
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let reference = ["reference", "id"]
        .iter()
        .find_map(|k| answer.get(*k).and_then(Value::as_str))
        .filter(|r| r.len() <= 64 && r.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)));
    Ok(match reference {
        Some(reference) => format!("webhook answered {}, reference {reference}", status.as_u16()),
        None => format!("webhook answered {}", status.as_u16()),
    })
}
