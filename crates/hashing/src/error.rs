//! The one error type of this crate.

/// Why a hashing operation failed.
///
/// The variants are distinct so callers can map them to the right response:
/// overload is the client's cue to retry later, the others are not.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The job queue is full. Returned at once instead of waiting, so a burst
    /// cannot pile up unbounded work; callers map it to HTTP 503.
    #[error("password hashing is overloaded, try again later")]
    Overloaded,
    /// The worker threads are gone, so no job can be run.
    #[error("password hashing pool has shut down")]
    Shutdown,
    /// The stored hash is not a PHC string this crate can verify (malformed,
    /// not Argon2, or with absurd parameters). Says nothing about the password.
    #[error("stored password hash is malformed or unsupported")]
    InvalidHash,
    /// Parameters or pool settings below the security floor or above sanity.
    #[error("invalid hashing parameters: {0}")]
    InvalidParams(String),
    /// Something that should not happen (RNG failure, worker lost a job).
    #[error("internal hashing error: {0}")]
    Internal(String),
}
