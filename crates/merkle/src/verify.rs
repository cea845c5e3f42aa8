//! Proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2).
//!
//! The RFC states both algorithms as a bit-twiddling loop over the proof. We use the
//! equivalent formulation of transparency-dev/merkle: split the proof into an
//! "inner" part (siblings below the point where the leaf's path and the tree's
//! right edge meet; their side is given by the index bits) and a "border" part
//! (left siblings on the right edge). That fixes the exact proof length up front,
//! so a proof of the wrong length is rejected before any hashing.

use crate::{node_hash, Hash, ProofError};

fn to_hash(bytes: &[u8]) -> Result<Hash, ProofError> {
    Hash::try_from(bytes).map_err(|_| ProofError::BadLength)
}

fn to_hashes(proof: &[impl AsRef<[u8]>]) -> Result<Vec<Hash>, ProofError> {
    proof.iter().map(|p| to_hash(p.as_ref())).collect()
}

/// Number of inner and border proof elements for leaf `index` in a tree of `size`
/// (`index < size`): inner is the height at which the leaf's path leaves the right
/// edge, border the number of left siblings on the edge above it.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// Hashes `seed` up through `proof`, taking the side of each sibling from `index`.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, sibling)| {
        if (index >> i) & 1 == 0 {
            node_hash(&acc, sibling)
        } else {
            node_hash(sibling, &acc)
        }
    })
}

/// Like [`chain_inner`] but only through the left siblings: the hash of the old
/// tree in a consistency proof, which ends where the new leaves begin.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof
        .iter()
        .enumerate()
        .filter(|(i, _)| (index >> i) & 1 == 1)
        .fold(seed, |acc, (_, sibling)| node_hash(sibling, &acc))
}

/// Hashes `seed` up the right edge, where every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, sibling| node_hash(sibling, &acc))
}

/// Verifies that `leaf_hash` is the leaf at `index` of the tree of `size` leaves
/// with root `root`, given the RFC 9162 inclusion proof `proof`.
///
/// Inputs come from outside, so they are taken as raw bytes: a hash of the wrong
/// length is [`ProofError::BadLength`], never a panic.
pub fn verify_inclusion(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[impl AsRef<[u8]>],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    let leaf = to_hash(leaf_hash)?;
    let root = to_hash(root)?;
    let proof = to_hashes(proof)?;
    let (inner, border) = decompose(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofSize);
    }
    let (inner_proof, border_proof) = proof.split_at_checked(inner).ok_or(ProofError::WrongProofSize)?;
    let computed = chain_border_right(chain_inner(leaf, inner_proof, index), border_proof);
    if computed != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root`, given the RFC 9162 consistency
/// proof `proof`.
///
/// Edge cases, as transparency-dev/merkle's test cases pin them down:
/// - `old_size > new_size` is [`ProofError::SizesOutOfOrder`];
/// - `old_size == 0` is [`ProofError::EmptyTree`]: every tree extends the empty
///   one, so "verifying" that would give false assurance to a caller that forgot
///   to load its previous checkpoint;
/// - equal sizes need an empty proof and byte-identical roots. Nothing is hashed
///   then, so the roots are only compared, not length-checked.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[impl AsRef<[u8]>],
    old_root: &[u8],
    new_root: &[u8],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder);
    }
    if old_size == 0 {
        return Err(ProofError::EmptyTree);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofSize);
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let old_root = to_hash(old_root)?;
    let new_root = to_hash(new_root)?;
    let proof = to_hashes(proof)?;

    // The proof is, in effect, the inclusion proof of leaf old_size - 1 in the new
    // tree, minus the bottom `shift` levels: those form a complete subtree of the
    // old tree whose hash is the proof's first element (the "seed") — or, when
    // that subtree is the whole old tree, the old root itself.
    let (inner, border) = decompose(old_size - 1, new_size);
    let shift = old_size.trailing_zeros();
    // shift < inner whenever old_size < new_size, so this never fails.
    let inner = inner.checked_sub(shift as usize).ok_or(ProofError::WrongProofSize)?;
    let (seed, rest) = if old_size == 1u64 << shift {
        (old_root, proof.as_slice())
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(ProofError::WrongProofSize),
        }
    };
    if rest.len() != inner + border {
        return Err(ProofError::WrongProofSize);
    }
    let (inner_proof, border_proof) = rest.split_at_checked(inner).ok_or(ProofError::WrongProofSize)?;
    let mask = (old_size - 1) >> shift;

    let old_computed = chain_border_right(chain_inner_right(seed, inner_proof, mask), border_proof);
    if old_computed != old_root {
        return Err(ProofError::RootMismatch);
    }
    let new_computed = chain_border_right(chain_inner(seed, inner_proof, mask), border_proof);
    if new_computed != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
