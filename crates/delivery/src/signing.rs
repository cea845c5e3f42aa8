//! Standard Webhooks signatures (v1): what Regain's event webhooks and its webhook connector
//! sign their requests with, and how a vendor's callback is checked (SECURITY.md D2).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
//! HMAC-SHA256 under the secret, base64, sent as `webhook-signature: v1,<base64>` (several,
//! space-separated, while a secret is being rotated). A secret is written `whsec_<base64>`.
//! Verification compares in constant time and refuses timestamps more than five minutes away.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a timestamp may be from now, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
/// Secrets shorter than this are refused (the spec's own secrets are 24 bytes or more).
pub const SECRET_BYTES_MIN: usize = 16;
pub const SECRET_BYTES_MAX: usize = 64;
/// Signatures in one header, at most (rotation needs two or three).
const SIGNATURES_MAX: usize = 8;

/// The three headers a signed request carries.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// A signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret is written whsec_ followed by base64")]
    Format,
    #[error("a webhook secret must be {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes")]
    Length,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix may be left out).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        let bytes = B64.decode(encoded).map_err(|_| SecretError::Format)?;
        Self::from_bytes(bytes)
    }

    /// A secret from random bytes the caller drew (Regain's `Entropy`).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SecretError> {
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&bytes.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(bytes))
    }

    /// The secret as it is shown once to the tenant: `whsec_<base64>`.
    pub fn to_text(&self) -> String {
        format!("whsec_{}", B64.encode(&self.0))
    }

    /// HMAC-SHA256 of `{id}.{timestamp}.{body}`. (HMAC takes a key of any length, so the
    /// `None` that `new_from_slice`'s signature allows does not happen.)
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Option<[u8; 32]> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        Some(mac.finalize().into_bytes().into())
    }

    /// The `webhook-signature` value for this message: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", self.mac(id, timestamp, body).map(|m| B64.encode(m)).unwrap_or_default())
    }

    /// The three headers to send with `body`.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (HEADER_ID, id.to_owned()),
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_SIGNATURE, self.sign(id, timestamp, body)),
        ]
    }

    /// Checks a signed request received at `now` (Unix seconds): a timestamp within
    /// [`TOLERANCE_SECONDS`], and one of the header's `v1` signatures matching.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        if id.is_empty() || id.len() > 256 {
            return Err(VerifyError::Malformed("webhook-id"));
        }
        let sent: i64 = timestamp.trim().parse().map_err(|_| VerifyError::Malformed("webhook-timestamp"))?;
        if now.saturating_sub(sent) > TOLERANCE_SECONDS {
            return Err(VerifyError::TooOld);
        }
        if sent.saturating_sub(now) > TOLERANCE_SECONDS {
            return Err(VerifyError::TooNew);
        }
        let expected = self.mac(id, sent, body).ok_or(VerifyError::NoMatch)?;
        let mut any_v1 = false;
        for entry in signatures.split(' ').filter(|s| !s.is_empty()).take(SIGNATURES_MAX) {
            let Some((version, value)) = entry.split_once(',') else { continue };
            if version != "v1" {
                continue;
            }
            any_v1 = true;
            if let Ok(given) = B64.decode(value) {
                if given.len() == expected.len() && bool::from(given.ct_eq(expected.as_slice())) {
                    return Ok(());
                }
            }
        }
        if any_v1 {
            Err(VerifyError::NoMatch)
        } else {
            Err(VerifyError::Malformed("webhook-signature"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing or malformed")]
    Malformed(&'static str),
    #[error("the request's timestamp is more than five minutes old")]
    TooOld,
    #[error("the request's timestamp is more than five minutes ahead")]
    TooNew,
    #[error("no signature matches")]
    NoMatch,
}
