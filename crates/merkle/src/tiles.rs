//! Hashes kept in tiles, as the C2SP tlog-tiles layout and Tessera keep them: only every eighth
//! level of the tree is stored, 256 hashes to a tile, and any node in between is recomputed
//! from the one tile below it (at most 255 hashes). A proof then reads a handful of tiles
//! instead of ~2·log₂ n single nodes, and appending writes ~1 hash per leaf instead of ~2.
//!
//! Tile `(level L, index i)` holds the hashes of tree level `8·L`, nodes `256·i … 256·i + 255`
//! (fewer while the tile is partial, at the right edge of the tree).

use std::collections::BTreeMap;

use crate::{node_hash, Hash, NodeId};

/// Tree levels per tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// The tile level: it holds tree level `TILE_HEIGHT * level`.
    pub level: u8,
    pub index: u64,
}

/// Where a node's hash comes from: `count` consecutive hashes of `tile` from `offset` on,
/// hashed up `log2(count)` levels (one hash, itself, for a stored level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileSpan {
    pub tile: TileId,
    pub offset: usize,
    pub count: usize,
}

/// Whether the tiles store this node's hash as it is.
pub fn is_stored(node: NodeId) -> bool {
    node.level.is_multiple_of(TILE_HEIGHT)
}

pub fn span(node: NodeId) -> TileSpan {
    let above = node.level % TILE_HEIGHT;
    let first = node.index << above;
    TileSpan {
        tile: TileId { level: node.level / TILE_HEIGHT, index: first / TILE_WIDTH },
        offset: (first % TILE_WIDTH) as usize,
        count: 1usize << above,
    }
}

/// The node's hash from its tile's hashes; `None` when the tile does not (yet) hold them all.
pub fn node_from_tile(span: &TileSpan, tile: &[Hash]) -> Option<Hash> {
    let hashes = tile.get(span.offset..span.offset.checked_add(span.count)?)?;
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
    }
    level.first().copied()
}

/// Groups new nodes (from [`crate::append`]) into the tiles they extend: for each tile, the
/// position of its first new hash and the new hashes in order. Nodes of levels that are not
/// stored are left out. `Err` names a node that would leave a gap in its tile.
pub fn tile_appends(nodes: &[(NodeId, Hash)]) -> Result<BTreeMap<TileId, (usize, Vec<Hash>)>, NodeId> {
    let mut tiles: BTreeMap<TileId, (usize, Vec<Hash>)> = BTreeMap::new();
    for (node, hash) in nodes.iter().filter(|(n, _)| is_stored(*n)) {
        let span = span(*node);
        let entry = tiles.entry(span.tile).or_insert((span.offset, Vec::new()));
        if entry.0 + entry.1.len() != span.offset {
            return Err(*node);
        }
        entry.1.push(*hash);
    }
    Ok(tiles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{append, frontier, leaf_hash, root};

    #[test]
    fn every_node_of_a_tree_comes_back_from_its_tiles() {
        // 70,000 leaves: three tile levels, partial tiles at every one of them.
        let leaves: Vec<Hash> = (0..70_000u32).map(|n| leaf_hash(&n.to_be_bytes())).collect();
        let mut tiles: BTreeMap<TileId, Vec<Hash>> = BTreeMap::new();
        let mut size = 0u64;
        let mut front = Vec::new();
        for batch in leaves.chunks(999) {
            let appended = append(size, &front, batch).unwrap();
            for (tile, (offset, hashes)) in tile_appends(&appended.nodes).unwrap() {
                let stored = tiles.entry(tile).or_default();
                assert_eq!(stored.len(), offset, "appends continue their tile");
                stored.extend(hashes);
            }
            size = appended.size;
            front = appended.frontier;
        }
        assert!(tiles.len() <= 70_000 / 256 + 2 + 2, "{} tiles", tiles.len());
        // Any complete subtree: recomputed from one tile, equal to the direct computation.
        for (level, index) in [(0u8, 0u64), (0, 69_999), (3, 17), (8, 0), (8, 272), (11, 33), (15, 1), (16, 0)] {
            let node = NodeId { level, index };
            let first = (index << level) as usize;
            let direct = root(&leaves[first..first + (1usize << level)]);
            let span = span(node);
            assert_eq!(node_from_tile(&span, &tiles[&span.tile]), Some(direct), "{node:?}");
        }
        // The frontier, which sequencing reads back, is all there.
        for node in frontier(size) {
            let span = span(node);
            assert!(node_from_tile(&span, &tiles[&span.tile]).is_some(), "{node:?}");
        }
        // A node whose subtree is not complete yet is not made up.
        let partial = span(NodeId { level: 8, index: 273 });
        assert_eq!(node_from_tile(&partial, &tiles[&partial.tile]), None);
    }
}
