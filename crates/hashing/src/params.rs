//! Argon2id cost parameters and pool settings, with the security floor.

use crate::HashError;

/// Security floor for memory, in KiB (OWASP's Argon2id minimum: 19 MiB).
pub(crate) const MIN_M_KIB: u32 = 19_456;
/// Security floor for iterations.
pub(crate) const MIN_T: u32 = 2;
/// Security floor for parallelism.
pub(crate) const MIN_P: u32 = 1;
/// Sanity ceiling for memory: 4 GiB expressed in KiB.
pub(crate) const MAX_M_KIB: u32 = 4 * 1024 * 1024;
/// Sanity ceiling for iterations.
pub(crate) const MAX_T: u32 = 100;
/// Sanity ceiling for parallelism (lanes).
pub(crate) const MAX_P: u32 = 16;
/// Length of every hash this crate produces, in bytes.
pub(crate) const OUTPUT_LEN: usize = 32;

/// Argon2id cost parameters for new hashes.
///
/// Kept as plain numbers so configuration can set them; [`Params::validate`]
/// enforces the floor from the security doc so a typo cannot weaken hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Memory cost in KiB (Argon2 `m`); also the size of each worker's buffer.
    pub m_kib: u32,
    /// Number of passes over memory (Argon2 `t`).
    pub t: u32,
    /// Degree of parallelism / lanes (Argon2 `p`).
    pub p: u32,
}

impl Default for Params {
    /// The security doc's minimum: m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        Self { m_kib: MIN_M_KIB, t: MIN_T, p: MIN_P }
    }
}

impl Params {
    /// Returns the parameters if they are at or above the security floor
    /// (m ≥ 19456, t ≥ 2, p ≥ 1) and not absurd (m ≤ 4 GiB, t ≤ 100, p ≤ 16),
    /// so a misconfiguration fails at startup rather than weakening hashes or
    /// exhausting memory.
    pub fn validate(&self) -> Result<Params, HashError> {
        if self.m_kib < MIN_M_KIB {
            return Err(HashError::InvalidParams(format!("m_kib {} is below the floor of {MIN_M_KIB}", self.m_kib)));
        }
        if self.m_kib > MAX_M_KIB {
            return Err(HashError::InvalidParams(format!(
                "m_kib {} is above the ceiling of {MAX_M_KIB} (4 GiB)",
                self.m_kib
            )));
        }
        if self.t < MIN_T || self.t > MAX_T {
            return Err(HashError::InvalidParams(format!("t {} is outside {MIN_T}..={MAX_T}", self.t)));
        }
        if self.p < MIN_P || self.p > MAX_P {
            return Err(HashError::InvalidParams(format!("p {} is outside {MIN_P}..={MAX_P}", self.p)));
        }
        Ok(*self)
    }

    /// The argon2 crate's parameters with a 32-byte output. Only argon2's own
    /// limits are checked here, not the policy floor (see [`Params::validate`]).
    pub(crate) fn to_argon2(self) -> Result<argon2::Params, HashError> {
        argon2::Params::new(self.m_kib, self.t, self.p, Some(OUTPUT_LEN))
            .map_err(|e| HashError::InvalidParams(e.to_string()))
    }
}

/// How to size the hashing pool.
///
/// Memory use is about `workers × params.m_kib` KiB, and at most `queue_max`
/// jobs wait; anything beyond is refused with [`HashError::Overloaded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of worker threads, each with its own reused Argon2 buffer.
    pub workers: usize,
    /// Maximum number of jobs waiting for a worker (not counting running ones).
    pub queue_max: usize,
    /// Cost parameters for new hashes (and the dummy verify).
    pub params: Params,
}

impl Default for PoolConfig {
    /// One worker per available core, a queue of 64 jobs per worker, and the
    /// default (floor) parameters.
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { workers, queue_max: workers.saturating_mul(64), params: Params::default() }
    }
}

impl PoolConfig {
    /// Checks the parameters and that there is at least one worker and one
    /// queue slot (a zero-length queue would refuse almost every job).
    pub(crate) fn validate(&self) -> Result<PoolConfig, HashError> {
        let params = self.params.validate()?;
        if self.workers == 0 {
            return Err(HashError::InvalidParams("workers must be at least 1".to_owned()));
        }
        if self.queue_max == 0 {
            return Err(HashError::InvalidParams("queue_max must be at least 1".to_owned()));
        }
        Ok(PoolConfig { params, ..*self })
    }
}
