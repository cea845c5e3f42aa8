use std::collections::HashMap;

use super::{flip_bit, node_store, random_leaves, reference_path, reference_subproof, MAX_SIZE};
use crate::{
    consistency_proof_plan, frontier, inclusion_proof_plan, root, verify_consistency, verify_inclusion, Hash, NodeId,
    ProofError,
};

/// Logarithmic bound the brief asks of every plan.
const MAX_PLAN_NODES: usize = 2 * 64;

/// Roots of every prefix of `leaves`, indexed by size.
fn prefix_roots(leaves: &[Hash]) -> Vec<Hash> {
    (0..=leaves.len()).map(|n| root(&leaves[..n])).collect()
}

/// Only nodes that exist at `size` may be requested: complete subtrees inside it.
fn assert_nodes_exist(nodes: &[NodeId], size: u64) {
    for id in nodes {
        assert!((id.index + 1) << id.level <= size, "{id:?} is not a complete subtree of a tree of {size}");
    }
}

#[test]
fn inclusion_proofs_for_every_leaf_of_every_tree_up_to_70() {
    let leaves = random_leaves(MAX_SIZE, 11);
    let store = node_store(&leaves);
    let roots = prefix_roots(&leaves);
    for n in 1..=MAX_SIZE {
        let r = &roots[n as usize];
        for i in 0..n {
            let leaf = &leaves[i as usize];
            let plan = inclusion_proof_plan(i, n).unwrap();
            let nodes = plan.nodes();
            assert!(nodes.len() <= MAX_PLAN_NODES);
            assert_nodes_exist(&nodes, n);
            let proof = plan.assemble(&store).unwrap();
            assert_eq!(proof, reference_path(i as usize, &leaves[..n as usize]), "PATH({i}, {n})");
            assert_eq!(verify_inclusion(leaf, i, n, &proof, r), Ok(()), "({i}, {n})");

            let mut bad = proof.clone();
            for e in 0..bad.len() {
                for bit in 0..256 {
                    bad[e] = flip_bit(&proof[e], bit);
                    assert!(verify_inclusion(leaf, i, n, &bad, r).is_err(), "({i}, {n}) element {e} bit {bit}");
                }
                bad[e] = proof[e];
            }
            for bit in 0..256 {
                assert!(verify_inclusion(&flip_bit(leaf, bit), i, n, &proof, r).is_err());
                assert!(verify_inclusion(leaf, i, n, &proof, &flip_bit(r, bit)).is_err());
            }
            // Another leaf's position, a truncated proof or an extra element never pass.
            for wrong in [i.wrapping_sub(1), i + 1] {
                assert!(verify_inclusion(leaf, wrong, n, &proof, r).is_err(), "index {wrong} for ({i}, {n})");
            }
            if let Some((_, shorter)) = proof.split_last() {
                assert_eq!(verify_inclusion(leaf, i, n, shorter, r), Err(ProofError::WrongProofSize));
            }
            let mut longer = proof.clone();
            longer.push(*r);
            assert_eq!(verify_inclusion(leaf, i, n, &longer, r), Err(ProofError::WrongProofSize));
            // The proof does not place the leaf in any other tree size's real root.
            for other in [n - 1, n + 1] {
                if i < other && other <= MAX_SIZE {
                    let other_root = &roots[other as usize];
                    assert!(
                        verify_inclusion(leaf, i, other, &proof, other_root).is_err(),
                        "({i}, {n}) as size {other}"
                    );
                }
            }
        }
    }
}

#[test]
fn consistency_proofs_for_every_pair_of_sizes_up_to_70() {
    let leaves = random_leaves(MAX_SIZE, 12);
    let store = node_store(&leaves);
    let roots = prefix_roots(&leaves);
    for n in 1..=MAX_SIZE {
        for m in 1..=n {
            let (r1, r2) = (&roots[m as usize], &roots[n as usize]);
            let plan = consistency_proof_plan(m, n).unwrap();
            let nodes = plan.nodes();
            assert!(nodes.len() <= MAX_PLAN_NODES);
            assert_nodes_exist(&nodes, n);
            let proof = plan.assemble(&store).unwrap();
            assert_eq!(proof, reference_subproof(m as usize, &leaves[..n as usize], true), "PROOF({m}, {n})");
            assert_eq!(verify_consistency(m, n, &proof, r1, r2), Ok(()), "({m}, {n})");

            let mut bad = proof.clone();
            for e in 0..bad.len() {
                for bit in 0..256 {
                    bad[e] = flip_bit(&proof[e], bit);
                    assert!(verify_consistency(m, n, &bad, r1, r2).is_err(), "({m}, {n}) element {e} bit {bit}");
                }
                bad[e] = proof[e];
            }
            for bit in 0..256 {
                assert!(verify_consistency(m, n, &proof, &flip_bit(r1, bit), r2).is_err());
                assert!(verify_consistency(m, n, &proof, r1, &flip_bit(r2, bit)).is_err());
            }
            // Wrong sizes: the proof must not make any other pair of real roots
            // consistent. (With the roots of (m, n) kept, some other sizes do
            // verify — RFC 9162 proofs bind sizes only through the roots, which is
            // why checkpoints sign size and root together.) Equal sizes need no
            // proof and are skipped.
            for (m2, n2) in [(m + 1, n), (m - 1, n), (m, n + 1), (m, n - 1), (m + 1, n + 1), (m - 1, n - 1)] {
                if m2 == 0 || m2 >= n2 || n2 > MAX_SIZE {
                    continue;
                }
                let (o1, o2) = (&roots[m2 as usize], &roots[n2 as usize]);
                assert!(verify_consistency(m2, n2, &proof, o1, o2).is_err(), "({m}, {n}) as ({m2}, {n2})");
            }
            if m < n {
                assert_eq!(verify_consistency(n, m, &proof, r2, r1), Err(ProofError::SizesOutOfOrder));
            }
            if let Some((_, shorter)) = proof.split_last() {
                assert!(verify_consistency(m, n, shorter, r1, r2).is_err());
            }
            let mut longer = proof.clone();
            longer.push(*r2);
            assert!(verify_consistency(m, n, &longer, r1, r2).is_err());
        }
    }
}

#[test]
fn plans_reject_impossible_sizes() {
    assert_eq!(inclusion_proof_plan(0, 0), Err(ProofError::IndexOutOfRange));
    assert_eq!(inclusion_proof_plan(5, 5), Err(ProofError::IndexOutOfRange));
    assert_eq!(inclusion_proof_plan(u64::MAX, u64::MAX), Err(ProofError::IndexOutOfRange));
    assert_eq!(consistency_proof_plan(0, 0), Err(ProofError::EmptyTree));
    assert_eq!(consistency_proof_plan(0, 5), Err(ProofError::EmptyTree));
    assert_eq!(consistency_proof_plan(6, 5), Err(ProofError::SizesOutOfOrder));
    for size in [1, 2, 7, u64::MAX] {
        let plan = consistency_proof_plan(size, size).unwrap();
        assert!(plan.nodes().is_empty());
        assert_eq!(plan.assemble(&HashMap::new()), Ok(Vec::new()));
    }
}

#[test]
fn assemble_names_the_missing_node() {
    let leaves = random_leaves(13, 3);
    let mut store = node_store(&leaves);
    let plan = inclusion_proof_plan(12, 13).unwrap();
    let needed = plan.nodes();
    let gone = needed[0];
    store.remove(&gone);
    assert_eq!(plan.assemble(&store), Err(ProofError::MissingNode(gone)));
}

#[test]
fn plans_stay_logarithmic_for_huge_trees() {
    let sizes = [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1, (1 << 40) + 12_345, 0x5555_5555_5555_5555];
    for &n in &sizes {
        for i in [0, 1, n / 3, n / 2, n - 2, n - 1] {
            let nodes = inclusion_proof_plan(i, n).unwrap().nodes();
            assert!(nodes.len() <= MAX_PLAN_NODES, "inclusion ({i}, {n}): {}", nodes.len());
            assert_nodes_exist(&nodes, n);
        }
        for m in [1, 2, 3, n / 3, n / 2, n - 1, n] {
            let nodes = consistency_proof_plan(m, n).unwrap().nodes();
            assert!(nodes.len() <= MAX_PLAN_NODES, "consistency ({m}, {n}): {}", nodes.len());
            assert_nodes_exist(&nodes, n);
        }
    }
    // The rightmost leaf's proof needs the whole frontier, the worst case.
    let nodes = inclusion_proof_plan(u64::MAX - 1, u64::MAX).unwrap().nodes();
    assert_eq!(nodes.len(), frontier(u64::MAX).len() - 1);
}

#[test]
fn verification_rejects_wrong_lengths_without_panicking() {
    let leaves = random_leaves(5, 4);
    let store = node_store(&leaves);
    let roots = prefix_roots(&leaves);
    let proof = inclusion_proof_plan(2, 5).unwrap().assemble(&store).unwrap();
    let (leaf, r) = (&leaves[2], &roots[5]);
    let short: Vec<Vec<u8>> = proof.iter().map(|p| p[..31].to_vec()).collect();
    assert_eq!(verify_inclusion(&leaf[..31], 2, 5, &proof, r), Err(ProofError::BadLength));
    assert_eq!(verify_inclusion(leaf, 2, 5, &proof, &[r.as_slice(), &[0]].concat()), Err(ProofError::BadLength));
    assert_eq!(verify_inclusion(leaf, 2, 5, &short, r), Err(ProofError::BadLength));
    assert_eq!(verify_inclusion(leaf, 2, 5, &[] as &[&[u8]], r), Err(ProofError::WrongProofSize));

    let cproof = consistency_proof_plan(3, 5).unwrap().assemble(&store).unwrap();
    let (r3, r5) = (&roots[3], &roots[5]);
    assert_eq!(verify_consistency(3, 5, &cproof, &r3[..1], r5), Err(ProofError::BadLength));
    assert_eq!(verify_consistency(3, 5, &cproof, r3, &[] as &[u8]), Err(ProofError::BadLength));
    let cshort: Vec<&[u8]> = cproof.iter().map(|p| &p[1..]).collect();
    assert_eq!(verify_consistency(3, 5, &cshort, r3, r5), Err(ProofError::BadLength));
    assert_eq!(verify_consistency(3, 5, &[] as &[&[u8]], r3, r5), Err(ProofError::WrongProofSize));
}

#[test]
fn verification_edge_cases() {
    let leaves = random_leaves(4, 5);
    let roots = prefix_roots(&leaves);
    let none: &[Hash] = &[];
    // A one-leaf tree's root is its leaf, with an empty proof.
    assert_eq!(verify_inclusion(&leaves[0], 0, 1, none, &leaves[0]), Ok(()));
    assert_eq!(verify_inclusion(&leaves[0], 0, 0, none, &roots[0]), Err(ProofError::IndexOutOfRange));
    // Equal sizes: empty proof and equal roots.
    assert_eq!(verify_consistency(4, 4, none, &roots[4], &roots[4]), Ok(()));
    assert_eq!(verify_consistency(4, 4, none, &roots[4], &roots[3]), Err(ProofError::RootMismatch));
    assert_eq!(verify_consistency(4, 4, &roots[..1], &roots[4], &roots[4]), Err(ProofError::WrongProofSize));
    // The empty old tree is refused, whatever the proof.
    assert_eq!(verify_consistency(0, 4, none, &roots[0], &roots[4]), Err(ProofError::EmptyTree));
    assert_eq!(verify_consistency(0, 0, none, &roots[0], &roots[0]), Err(ProofError::EmptyTree));
    assert_eq!(verify_consistency(4, 3, none, &roots[4], &roots[3]), Err(ProofError::SizesOutOfOrder));
    // Extreme sizes must not overflow any shift.
    let junk = [[7u8; 32]; 64];
    assert!(verify_inclusion(&leaves[0], u64::MAX - 1, u64::MAX, &junk[..63], &roots[1]).is_err());
    assert!(verify_inclusion(&leaves[0], 0, u64::MAX, &junk, &roots[1]).is_err());
    assert!(verify_inclusion(&leaves[0], (1 << 63) - 1, u64::MAX, &junk, &roots[1]).is_err());
    assert!(verify_consistency(1 << 63, u64::MAX, &junk, &roots[1], &roots[2]).is_err());
    assert!(verify_consistency(u64::MAX - 1, u64::MAX, &junk, &roots[1], &roots[2]).is_err());
    assert!(verify_consistency(1, u64::MAX, &junk, &roots[1], &roots[2]).is_err());
}
