//! The tamper-evident audit log of the account-recovery desk.
//!
//! Every action the desk takes is an entry in an append-only log. Hashing the
//! entries into an RFC 9162 (Certificate Transparency v2) Merkle tree lets an
//! auditor hold the desk to its history with a few kilobytes:
//!
//! - a signed **checkpoint** (tree size + root, [`note`]) commits to the whole log;
//! - an **inclusion proof** shows one entry is in that log;
//! - a **consistency proof** shows a newer checkpoint only *appended* to an older one,
//!   so nothing that was logged can later be edited or removed unnoticed.
//!
//! The tree itself lives in SQL, not here: this crate is pure computation. Writers
//! keep the *frontier* (the roots of the complete subtrees covering the log) and call
//! [`append`], which returns every new complete-subtree hash to store. Because any
//! proof element is a fold of such stored hashes, proof generation is two-phase: a
//! [`ProofPlan`] names the O(log n) stored nodes it needs, the caller fetches them in
//! one query, and [`ProofPlan::assemble`] builds the proof. Verification
//! ([`verify_inclusion`], [`verify_consistency`]) takes raw bytes because proofs and
//! roots arrive from outside and must be rejected, never trusted or panicked on.

mod error;
pub mod note;
mod plan;
pub mod tiles;
mod tree;
mod verify;

pub use error::ProofError;
pub use plan::{consistency_proof_plan, inclusion_proof_plan, ProofPlan};
pub use tree::{append, frontier, root, root_from_frontier, Appended};
pub use verify::{verify_consistency, verify_inclusion};

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};

/// FIPS 180-4 initial SHA-256 state, for [`node_hash`]'s direct use of the
/// compression function.
const SHA256_IV: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// RFC 9162 leaf hash `SHA-256(0x00 || entry)`.
///
/// The 0x00 prefix (versus 0x01 for interior nodes) is the domain separation that
/// stops an interior node from being passed off as a leaf (second-preimage attack).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// RFC 9162 interior node hash `SHA-256(0x01 || left || right)`.
///
/// The message always has 65 bytes, so it is padded here once and fed straight to
/// the SHA-256 compression function instead of going through the streaming hasher.
/// The result is identical (the tests check it against [`Sha256`]), but the
/// streaming layer is generic code compiled into this crate, which made node
/// hashing four times slower in the unoptimised builds that run the exhaustive
/// proof tests.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // Block 1: 0x01 || left || right[..31]. Block 2: right[31], the 0x80 end
    // marker, zeros, and the message length in bits (520 = 0x0208) big-endian.
    let mut blocks = [GenericArray::<u8, U64>::default(); 2];
    blocks[0][0] = 0x01;
    blocks[0][1..33].copy_from_slice(left);
    blocks[0][33..].copy_from_slice(&right[..31]);
    blocks[1][0] = right[31];
    blocks[1][1] = 0x80;
    blocks[1][62] = 0x02;
    blocks[1][63] = 0x08;
    let mut state = SHA256_IV;
    sha2::compress256(&mut state, &blocks);
    let mut out = [0u8; 32];
    for (i, word) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// The root of the empty tree, `SHA-256("")`, as RFC 9162 defines it.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A complete (perfect) subtree of the log, the unit the caller stores.
///
/// Level 0 is a single leaf; `(level, index)` covers the leaves
/// `[index << level, (index + 1) << level)`. Complete subtrees never change once
/// their last leaf is appended, which is what makes them safe to store and reuse;
/// the incomplete right edge of the tree is always recomputed from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height of the subtree: it covers `2^level` leaves.
    pub level: u8,
    /// Position among the subtrees of this level, counted from the left.
    pub index: u64,
}

/// Largest power of two strictly below `n`; callers guarantee `n >= 2`.
///
/// This is RFC 9162's split point `k`: the left child of a node over `n` leaves
/// covers exactly `k` leaves and is always complete.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests;
