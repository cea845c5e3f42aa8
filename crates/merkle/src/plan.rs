//! Two-phase proof generation: plan which stored nodes are needed, then assemble.
//!
//! Every proof element of RFC 9162 is the hash of some subtree `[a, b)` of the
//! tree. Such a subtree is either complete (stored as one row) or lies on the
//! tree's incomplete right edge, where it is the fold of the complete subtrees
//! decomposing `[a, b)` — also stored rows. So a proof is a list of "folds of
//! stored nodes", and the whole set of rows is known before touching storage.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::{root_from_frontier, split_point, Hash, NodeId, ProofError};

/// The stored nodes a proof needs and how to combine them.
///
/// Built by [`inclusion_proof_plan`] or [`consistency_proof_plan`]; fetch the hashes
/// of [`ProofPlan::nodes`] and pass them to [`ProofPlan::assemble`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    /// One entry per proof element, in proof order; each is the list of complete
    /// subtrees (left to right, largest first) whose fold is that element.
    elements: Vec<Vec<NodeId>>,
}

impl ProofPlan {
    /// The stored complete-subtree hashes needed, deduplicated and sorted.
    ///
    /// At most one proof element lies on the incomplete right edge, so this is at
    /// most about `2 * log2(size)` nodes.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self.elements.iter().flatten().copied().collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Builds the proof from the fetched node hashes.
    ///
    /// Extra entries in `hashes` are ignored; a missing one is
    /// [`ProofError::MissingNode`], which usually means the storage lags the size
    /// the plan was made for.
    pub fn assemble<S: BuildHasher>(&self, hashes: &HashMap<NodeId, Hash, S>) -> Result<Vec<Hash>, ProofError> {
        self.elements
            .iter()
            .map(|parts| {
                let part_hashes = parts
                    .iter()
                    .map(|id| hashes.get(id).copied().ok_or(ProofError::MissingNode(*id)))
                    .collect::<Result<Vec<Hash>, ProofError>>()?;
                Ok(root_from_frontier(&part_hashes))
            })
            .collect()
    }

    fn from_ranges(mut ranges: Vec<(u64, u64)>) -> Self {
        // The RFC recursions emit elements from the root down; proofs list them
        // from the leaf up.
        ranges.reverse();
        ProofPlan { elements: ranges.into_iter().map(|(start, end)| subtrees(start, end)).collect() }
    }
}

/// Complete subtrees covering `[start, end)`, left to right: greedily the largest
/// aligned subtree that fits. For RFC subtrees (start aligned to a power of two
/// above `end - start`) this is one node per set bit of `end - start`.
fn subtrees(mut start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    while start < end {
        let fits = 63 - (end - start).leading_zeros();
        let level = start.trailing_zeros().min(fits);
        out.push(NodeId { level: level as u8, index: start >> level });
        start += 1u64 << level;
    }
    out
}

/// Plan for the RFC 9162 section 2.1.3.1 inclusion proof `PATH(index, D[0:size])`.
///
/// Errors with [`ProofError::IndexOutOfRange`] unless `index < size`.
pub fn inclusion_proof_plan(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    // Walk down from the root, recording the sibling subtree at each split.
    let (mut lo, mut hi) = (0u64, size);
    let mut siblings = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            siblings.push((mid, hi));
            hi = mid;
        } else {
            siblings.push((lo, mid));
            lo = mid;
        }
    }
    Ok(ProofPlan::from_ranges(siblings))
}

/// Plan for the RFC 9162 section 2.1.4.1 consistency proof `PROOF(old_size, D[0:new_size])`.
///
/// Requires `0 < old_size <= new_size`: equal sizes give the empty proof, an empty
/// old tree is [`ProofError::EmptyTree`] (consistency with it proves nothing) and
/// `old_size > new_size` is [`ProofError::SizesOutOfOrder`].
pub fn consistency_proof_plan(old_size: u64, new_size: u64) -> Result<ProofPlan, ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder);
    }
    if old_size == 0 {
        return Err(ProofError::EmptyTree);
    }
    // Iterative SUBPROOF(m, D[lo:hi], b) with m = old_size - lo.
    let (mut lo, mut hi) = (0u64, new_size);
    let mut whole_old_tree = true;
    let mut ranges = Vec::new();
    loop {
        let n = hi - lo;
        let m = old_size - lo;
        if m == n {
            // The old tree's own root is only included when the verifier cannot
            // already know it, i.e. when it is a proper subtree of the old tree.
            if !whole_old_tree {
                ranges.push((lo, hi));
            }
            break;
        }
        // Here 1 <= m < n, so n >= 2 and the split exists.
        let k = split_point(n);
        if m <= k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            whole_old_tree = false;
        }
    }
    Ok(ProofPlan::from_ranges(ranges))
}
