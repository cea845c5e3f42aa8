-- Audit tree hashes in tiles (SQLite). Kept in lockstep with store-postgres/migrations.
--
-- Tile (level L, idx i) holds the hashes of tree level 8·L, nodes 256·i … 256·i + 255, as one
-- blob of 32-byte hashes (shorter while partial, at the right edge). Nodes between stored
-- levels are recomputed from the tile below them, so a proof reads a handful of rows. Tiles
-- are derived from the entries: the store rebuilds them after this migration.
DROP TABLE audit_nodes;

CREATE TABLE audit_tiles (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);

-- SQLite has one writer at a time, so an entry takes its position in the log as it is written
-- (the sequencer then only hashes, tiles and signs). Entries still waiting from before this
-- migration are numbered now, in the order they were written.
UPDATE audit_entries
SET seq = numbered.seq
FROM (
    SELECT id, (SELECT COALESCE(MAX(seq), -1) FROM audit_entries) + ROW_NUMBER() OVER (ORDER BY id) AS seq
    FROM audit_entries
    WHERE seq IS NULL
) AS numbered
WHERE audit_entries.id = numbered.id;

-- The table again, keyed by position: the entry's place in the log is its rowid, so writing an
-- entry is one B-tree append (no AUTOINCREMENT bookkeeping, no separate index of positions,
-- no queue of unplaced entries). `id` stays, as another name for the position. The case and
-- customer indexes are partial: entries without a case or a customer need no place in them.
CREATE TABLE audit_entries_new (
    seq         INTEGER PRIMARY KEY,
    id          INTEGER GENERATED ALWAYS AS (seq) VIRTUAL,
    tenant_id   TEXT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    case_id     TEXT,
    customer_id TEXT,
    entry       TEXT NOT NULL
);
INSERT INTO audit_entries_new (seq, tenant_id, at, action, case_id, customer_id, entry)
    SELECT seq, tenant_id, at, action, case_id, customer_id, entry FROM audit_entries;
DROP TABLE audit_entries;
ALTER TABLE audit_entries_new RENAME TO audit_entries;
CREATE INDEX audit_entries_case_idx ON audit_entries (case_id, seq) WHERE case_id IS NOT NULL;
CREATE INDEX audit_entries_customer_idx ON audit_entries (customer_id, seq) WHERE customer_id IS NOT NULL;
