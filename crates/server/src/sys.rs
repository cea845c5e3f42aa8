//! The real clock and the real randomness, injected into the domain at the edge.

use rand::RngCore;
use regain_core::{Clock, Entropy, Timestamp};

/// The system clock, UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// The operating system's CSPRNG (SECURITY.md T1).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}
