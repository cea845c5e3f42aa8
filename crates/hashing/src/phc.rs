//! Encoding and parsing of PHC strings (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).

use argon2::{Algorithm, PasswordHash, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

use crate::params::{MAX_M_KIB, MAX_P, MAX_T};
use crate::{HashError, Params};

/// Argon2's minimum salt length in bytes.
const MIN_SALT_LEN: usize = 8;

/// Formats an Argon2id v19 PHC string. PHC requires the standard base64
/// alphabet without padding for both salt and hash.
pub(crate) fn encode(params: Params, salt: &[u8], hash: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_kib,
        params.t,
        params.p,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

/// Everything a worker needs to recompute a stored hash.
pub(crate) struct ParsedHash {
    /// argon2id, argon2i or argon2d, as stored.
    pub(crate) algorithm: Algorithm,
    /// Argon2 version, as stored (0x13 when absent, like the argon2 crate).
    pub(crate) version: Version,
    /// Stored m/t/p (plus keyid/data if any) and the stored output length.
    pub(crate) params: argon2::Params,
    /// Decoded salt.
    pub(crate) salt: Vec<u8>,
    /// Decoded expected hash output.
    pub(crate) expected: Vec<u8>,
}

/// Parses any Argon2 PHC string. Older or different parameters are accepted
/// (so hashes keep verifying after a parameter upgrade), but absurd ones are
/// refused so one stored string cannot make a worker allocate without limit.
pub(crate) fn parse(phc: &str) -> Result<ParsedHash, HashError> {
    let hash = PasswordHash::new(phc).map_err(|_| HashError::InvalidHash)?;
    let algorithm = Algorithm::new(hash.algorithm.as_str()).map_err(|_| HashError::InvalidHash)?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).map_err(|_| HashError::InvalidHash)?,
        None => Version::default(),
    };
    let params = argon2::Params::try_from(&hash).map_err(|_| HashError::InvalidHash)?;
    if params.m_cost() > MAX_M_KIB || params.t_cost() > MAX_T || params.p_cost() > MAX_P {
        return Err(HashError::InvalidHash);
    }
    let salt = hash.salt.ok_or(HashError::InvalidHash)?;
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|_| HashError::InvalidHash)?.to_vec();
    if salt.len() < MIN_SALT_LEN {
        return Err(HashError::InvalidHash);
    }
    let expected = hash.hash.ok_or(HashError::InvalidHash)?.as_bytes().to_vec();
    Ok(ParsedHash { algorithm, version, params, salt, expected })
}
