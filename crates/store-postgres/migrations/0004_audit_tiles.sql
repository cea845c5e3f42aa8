-- Audit tree hashes in tiles (PostgreSQL). Kept in lockstep with store-sqlite/migrations.
--
-- Tile (level L, idx i) holds the hashes of tree level 8·L, nodes 256·i … 256·i + 255, as one
-- blob of 32-byte hashes (shorter while partial, at the right edge). Nodes between stored
-- levels are recomputed from the tile below them, so a proof reads a handful of rows. Tiles
-- are derived from the entries: the store rebuilds them after this migration.
DROP TABLE audit_nodes;

CREATE TABLE audit_tiles (
    level  BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Entries without a case or a customer need no place in those indexes.
DROP INDEX audit_entries_case_idx;
DROP INDEX audit_entries_customer_idx;
CREATE INDEX audit_entries_case_idx ON audit_entries (case_id, seq) WHERE case_id IS NOT NULL;
CREATE INDEX audit_entries_customer_idx ON audit_entries (customer_id, seq) WHERE customer_id IS NOT NULL;
