//! Password hashing for Regain: Argon2id on a bounded pool of worker threads.
//!
//! Argon2id is deliberately expensive in CPU *and* memory. Running it on the
//! async runtime would stall every other request, and running it on an
//! unbounded blocking pool would let a burst of logins allocate
//! `requests × m` of memory. This crate instead runs a fixed number of worker
//! threads, each owning one reused memory buffer, fed by a bounded queue:
//!
//! - memory stays bounded at roughly `workers × m_kib` KiB;
//! - a full queue fails fast with [`HashError::Overloaded`] (callers map it
//!   to 503) instead of queueing without limit;
//! - hashes are stored as standard PHC strings, so any Argon2 implementation
//!   can verify them and old parameters keep verifying after an upgrade.
//!
//! Passwords are never logged; the copies handed to workers are zeroized
//! after use, and so is the Argon2 working memory.

mod error;
mod params;
mod phc;
mod pool;

pub use error::HashError;
pub use params::{Params, PoolConfig};
pub use pool::HashingPool;

#[cfg(test)]
mod tests;
