//! One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238). Staff sign-in uses them now;
//! customer verification reuses the same code later.

use hmac::{Hmac, Mac};

use crate::env::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

/// TOTP parameters. The default (SHA-1, 6 digits, 30 s) is what every authenticator app reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: u32,
    pub step_seconds: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self { algorithm: Algorithm::Sha1, digits: 6, step_seconds: 30 }
    }
}

/// RFC 4226 HOTP: dynamic truncation of HMAC(secret, counter), `digits` long (6 to 10).
pub fn hotp(secret: &[u8], counter: u64, digits: u32, algorithm: Algorithm) -> String {
    let msg = counter.to_be_bytes();
    let mac = match algorithm {
        Algorithm::Sha1 => mac_bytes::<Hmac<sha1::Sha1>>(secret, &msg),
        Algorithm::Sha256 => mac_bytes::<Hmac<sha2::Sha256>>(secret, &msg),
        Algorithm::Sha512 => mac_bytes::<Hmac<sha2::Sha512>>(secret, &msg),
    };
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac.get(offset..offset + 4).map(|b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])).unwrap_or(0);
    let digits = digits.clamp(6, 10);
    let modulus = 10u64.pow(digits);
    format!("{:0width$}", u64::from(word) % modulus, width = digits as usize)
}

fn mac_bytes<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The time step that contains `at`.
pub fn time_step(at: Timestamp, params: &TotpParams) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0) / params.step_seconds.max(1)
}

/// The TOTP code for `at`.
pub fn totp(secret: &[u8], at: Timestamp, params: &TotpParams) -> String {
    hotp(secret, time_step(at, params), params.digits, params.algorithm)
}

/// Checks `code` against the steps at `at` ± `skew_steps` and returns the step that matched,
/// so the caller can refuse a step that was already used (replay). Comparison is constant-time.
/// `last_used_step`: no step at or before it is accepted.
pub fn verify_totp(
    secret: &[u8],
    code: &str,
    at: Timestamp,
    params: &TotpParams,
    skew_steps: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != params.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = time_step(at, params);
    let mut matched = None;
    for step in now.saturating_sub(skew_steps)..=now.saturating_add(skew_steps) {
        let candidate = hotp(secret, step, params.digits, params.algorithm);
        if constant_time_eq(candidate.as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_used_step.is_none_or(|last| *step > last))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Base32 (RFC 4648, no padding) as authenticator apps expect the secret.
pub fn encode_secret(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

pub fn decode_secret(encoded: &str) -> Option<Vec<u8>> {
    let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace() && *c != '=').collect();
    data_encoding::BASE32_NOPAD.decode(cleaned.to_ascii_uppercase().as_bytes()).ok()
}

/// The `otpauth://totp/…` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8], params: &TotpParams) -> String {
    let label = format!("{}:{}", percent_encode(issuer), percent_encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        encode_secret(secret),
        percent_encode(issuer),
        params.algorithm.as_str(),
        params.digits,
        params.step_seconds
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "totp_tests.rs"]
mod tests;
