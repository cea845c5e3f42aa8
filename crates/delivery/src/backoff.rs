//! When to try again: capped exponential backoff with full jitter.

use std::time::Duration;

/// The ceiling of the first retry's delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// No delay is ever longer than this, however many attempts failed.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60 * 60);
/// Attempts before a message is given up as dead. With [`backoff`]'s ceilings
/// (5 s, 10 s, … capped at 1 h) the last attempt comes at most about 2 h after
/// the first.
pub const ATTEMPTS_MAX: u32 = 10;

/// The longest delay after failed attempt number `attempt` (starting at 1):
/// `min(BACKOFF_CAP, BACKOFF_BASE × 2^(attempt − 1))`. Attempt 0 counts as 1.
pub fn backoff_ceiling(attempt: u32) -> Duration {
    // 5 s × 2^10 is already past the cap, so a larger exponent changes nothing
    // and the shift can never overflow.
    let exponent = attempt.saturating_sub(1).min(16);
    let ceiling_ms = (BACKOFF_BASE.as_millis() as u64).saturating_mul(1u64 << exponent);
    Duration::from_millis(ceiling_ms.min(BACKOFF_CAP.as_millis() as u64))
}

/// How long to wait after failed attempt number `attempt` (starting at 1)
/// before the next one: "full jitter", a uniform fraction `jitter` in `[0, 1)`
/// of [`backoff_ceiling`]. Spreading retries over the whole interval keeps many
/// messages that failed together (a provider outage) from retrying together.
///
/// Pure: the caller draws `jitter` (tests pin it). A value outside `[0, 1)` is
/// clamped into it and NaN counts as 0, so no input can panic. The result is
/// whole milliseconds.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
    let ceiling_ms = backoff_ceiling(attempt).as_millis() as f64;
    // `as` from f64 saturates; the product is within [0, ceiling] anyway.
    Duration::from_millis((ceiling_ms * jitter) as u64)
}
