//! Tree hashing and incremental appends over stored complete subtrees.

use crate::{empty_root, node_hash, split_point, Hash, NodeId, ProofError};

/// RFC 9162 Merkle Tree Hash (MTH) over leaf hashes.
///
/// This is the full recomputation a verifier or an offline audit uses to check
/// the stored tree against the raw entries. It recurses on the RFC's split at the
/// largest power of two below `n`, so the stack depth is at most 64 frames while
/// the work is O(n).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = split_point(leaves.len() as u64) as usize;
            let (left, right) = leaves.split_at(k);
            node_hash(&root(left), &root(right))
        }
    }
}

/// The complete subtrees that decompose `[0, size)`, left to right, largest
/// first: one per set bit of `size`.
///
/// These are the only nodes a writer needs to keep in memory (or re-read) to
/// append, and folding their hashes gives the root ([`root_from_frontier`]).
pub fn frontier(size: u64) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(size.count_ones() as usize);
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            out.push(NodeId { level, index: start >> level });
            start += width;
        }
    }
    out
}

/// Root of a tree from its frontier hashes (ordered as [`frontier`] orders them).
///
/// The tree's right edge is exactly the frontier subtrees joined right to left,
/// so the fold is `h = node_hash(f[i], h)` from the smallest subtree up. The empty
/// frontier is the empty tree.
pub fn root_from_frontier(frontier: &[Hash]) -> Hash {
    let mut iter = frontier.iter().rev();
    let Some(last) = iter.next() else {
        return empty_root();
    };
    iter.fold(*last, |acc, left| node_hash(left, &acc))
}

/// What [`append`] produced: everything the caller must persist in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Every complete subtree that exists now but did not before: each new leaf at
    /// level 0 and every higher node the batch completed, in creation order.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The new frontier hashes, ordered as `frontier(size)`.
    pub frontier: Vec<Hash>,
    /// The new tree size.
    pub size: u64,
    /// The new root, ready to put in a checkpoint.
    pub root: Hash,
}

/// Appends leaf hashes to a tree of `size` leaves whose frontier hashes are
/// `frontier` (ordered as `frontier(size)` orders them).
///
/// Works like binary addition: each new leaf is pushed as a level-0 subtree and
/// merged with the frontier's equal-level subtree while one exists, so every node
/// is hashed exactly once and never again. Returns
/// [`ProofError::FrontierMismatch`] if the frontier has the wrong number of hashes
/// and [`ProofError::TooLarge`] if the size would overflow.
pub fn append(size: u64, frontier: &[Hash], leaves: &[Hash]) -> Result<Appended, ProofError> {
    let ids = self::frontier(size);
    if ids.len() != frontier.len() {
        return Err(ProofError::FrontierMismatch);
    }
    let added = u64::try_from(leaves.len()).map_err(|_| ProofError::TooLarge)?;
    let new_size = size.checked_add(added).ok_or(ProofError::TooLarge)?;

    // Stack of (level, hash); levels strictly decrease from bottom to top.
    let mut stack: Vec<(u8, Hash)> = ids.iter().map(|id| id.level).zip(frontier.iter().copied()).collect();
    // Each leaf adds itself plus on average one merged node.
    let mut nodes = Vec::with_capacity(leaves.len().saturating_mul(2));
    for (offset, leaf) in (0u64..).zip(leaves) {
        // Cannot overflow: size + leaves.len() was checked above.
        let position = size + offset;
        nodes.push((NodeId { level: 0, index: position }, *leaf));
        let (mut level, mut hash) = (0u8, *leaf);
        while let Some(&(top_level, top_hash)) = stack.last() {
            if top_level != level {
                break;
            }
            stack.pop();
            hash = node_hash(&top_hash, &hash);
            level += 1;
            // The merged node ends at `position`, so its index is position >> level.
            nodes.push((NodeId { level, index: position >> level }, hash));
        }
        stack.push((level, hash));
    }

    let frontier: Vec<Hash> = stack.into_iter().map(|(_, hash)| hash).collect();
    let root = root_from_frontier(&frontier);
    Ok(Appended { nodes, frontier, size: new_size, root })
}
