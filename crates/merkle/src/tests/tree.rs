use std::collections::{BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{random_leaves, MAX_SIZE};
use crate::{append, empty_root, frontier, root, root_from_frontier, Hash, NodeId, ProofError};

/// Every complete subtree of a tree of `size` leaves.
fn complete_subtrees(size: u64) -> BTreeSet<NodeId> {
    let mut out = BTreeSet::new();
    for level in 0..64u8 {
        let width = 1u64 << level;
        for index in 0..size / width {
            out.insert(NodeId { level, index });
        }
    }
    out
}

fn leaves_of(id: NodeId) -> std::ops::Range<usize> {
    (id.index << id.level) as usize..((id.index + 1) << id.level) as usize
}

#[test]
fn append_in_random_batches_matches_root_and_stores_exactly_the_complete_subtrees() {
    let mut rng = StdRng::seed_from_u64(7);
    for n in 1..=MAX_SIZE {
        let leaves = random_leaves(n, n);
        for _split in 0..4 {
            let (mut size, mut front) = (0u64, Vec::<Hash>::new());
            let mut stored: Vec<(NodeId, Hash)> = Vec::new();
            while size < n {
                let batch = rng.gen_range(0..=(n - size).min(9));
                let out = append(size, &front, &leaves[size as usize..(size + batch) as usize]).unwrap();
                assert_eq!(out.size, size + batch);
                assert_eq!(out.root, root(&leaves[..out.size as usize]), "root after growing to {}", out.size);
                assert_eq!(out.frontier.len(), frontier(out.size).len());
                assert_eq!(out.root, root_from_frontier(&out.frontier));
                stored.extend(out.nodes);
                (size, front) = (out.size, out.frontier);
            }
            let map: HashMap<NodeId, Hash> = stored.iter().copied().collect();
            assert_eq!(map.len(), stored.len(), "a node was stored twice (n = {n})");
            let ids: BTreeSet<NodeId> = map.keys().copied().collect();
            assert_eq!(ids, complete_subtrees(n), "stored nodes for n = {n}");
            for (id, hash) in &map {
                assert_eq!(*hash, root(&leaves[leaves_of(*id)]), "hash of {id:?}");
            }
            let expected_frontier: Vec<Hash> = frontier(n).iter().map(|id| map[id]).collect();
            assert_eq!(front, expected_frontier);
        }
    }
}

#[test]
fn frontier_has_one_subtree_per_set_bit_covering_the_tree() {
    for size in (0..=300u64).chain([u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 5]) {
        let ids = frontier(size);
        assert_eq!(ids.len(), size.count_ones() as usize);
        let mut next = 0u64;
        for pair in ids.windows(2) {
            assert!(pair[0].level > pair[1].level, "largest first");
        }
        for id in ids {
            assert_eq!(id.index << id.level, next, "contiguous from 0");
            next = next.wrapping_add(1u64 << id.level);
        }
        assert_eq!(next, size);
    }
}

#[test]
fn empty_tree_roots() {
    assert_eq!(root(&[]), empty_root());
    assert_eq!(root_from_frontier(&[]), empty_root());
    let out = append(0, &[], &[]).unwrap();
    assert_eq!((out.size, out.root, out.nodes.len()), (0, empty_root(), 0));
}

#[test]
fn append_of_nothing_keeps_the_tree() {
    let leaves = random_leaves(11, 1);
    let first = append(0, &[], &leaves).unwrap();
    let again = append(first.size, &first.frontier, &[]).unwrap();
    assert!(again.nodes.is_empty());
    assert_eq!((again.size, again.root, &again.frontier), (first.size, first.root, &first.frontier));
}

#[test]
fn append_rejects_a_frontier_that_does_not_fit_the_size() {
    let leaves = random_leaves(5, 2);
    let out = append(0, &[], &leaves).unwrap();
    assert_eq!(append(7, &out.frontier, &leaves), Err(ProofError::FrontierMismatch));
    assert_eq!(append(5, &out.frontier[..1], &leaves), Err(ProofError::FrontierMismatch));
    assert_eq!(append(0, &out.frontier, &leaves), Err(ProofError::FrontierMismatch));
}

#[test]
fn append_rejects_size_overflow() {
    let front = vec![[0u8; 32]; 64];
    assert_eq!(append(u64::MAX, &front, &[[1u8; 32]]), Err(ProofError::TooLarge));
    // Filling the tree to exactly u64::MAX is fine.
    let out = append(u64::MAX - 1, &front[..63], &[[1u8; 32]]).unwrap();
    assert_eq!(out.size, u64::MAX);
    assert_eq!(out.frontier.len(), 64);
}
