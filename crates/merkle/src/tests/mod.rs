//! Exhaustive and property tests over small trees, checked against a direct
//! transcription of the RFC 9162 recursions.

mod note;
mod proofs;
mod tree;

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::{append, leaf_hash, node_hash, root, split_point, Hash, NodeId};

/// Largest tree the exhaustive tests cover.
const MAX_SIZE: u64 = 70;

/// `n` leaf hashes of pseudo-random entries (fixed seed, so failures reproduce).
fn random_leaves(n: u64, seed: u64) -> Vec<Hash> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut entry = vec![0u8; rng.gen_range(0..48)];
            rng.fill(entry.as_mut_slice());
            leaf_hash(&entry)
        })
        .collect()
}

/// The node store a caller would have after appending `leaves` to an empty tree.
fn node_store(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
    append(0, &[], leaves).unwrap().nodes.into_iter().collect()
}

/// RFC 9162 2.1.3.1 PATH(m, D[n]), written as literally as possible.
fn reference_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split_point(leaves.len() as u64) as usize;
    let (left, right) = leaves.split_at(k);
    let mut out;
    if m < k {
        out = reference_path(m, left);
        out.push(root(right));
    } else {
        out = reference_path(m - k, right);
        out.push(root(left));
    }
    out
}

/// RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b), written as literally as possible.
fn reference_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    if m == leaves.len() {
        return if whole { Vec::new() } else { vec![root(leaves)] };
    }
    let k = split_point(leaves.len() as u64) as usize;
    let (left, right) = leaves.split_at(k);
    let mut out;
    if m <= k {
        out = reference_subproof(m, left, whole);
        out.push(root(right));
    } else {
        out = reference_subproof(m - k, right, false);
        out.push(root(left));
    }
    out
}

fn flip_bit(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

#[test]
fn node_hash_equals_streaming_sha256() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..1000 {
        let (left, right): (Hash, Hash) = (rng.gen(), rng.gen());
        let streamed: Hash = Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into();
        assert_eq!(node_hash(&left, &right), streamed);
    }
}

#[test]
fn hashes_are_domain_separated() {
    let a = leaf_hash(b"a");
    assert_ne!(leaf_hash(b"a"), leaf_hash(b"b"));
    // An interior node is never a leaf hash of its children's concatenation.
    let mut concat = a.to_vec();
    concat.extend_from_slice(&a);
    assert_ne!(node_hash(&a, &a), leaf_hash(&concat));
}
