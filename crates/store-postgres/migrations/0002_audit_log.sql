-- The tamper-evident audit log (PostgreSQL). Kept in lockstep with store-sqlite/migrations.
--
-- Every change writes an entry in its own transaction; `entry` is the canonical JSON text the
-- Merkle leaf is computed over (leaf = SHA-256(0x00 || entry)). `seq` is the entry's position in
-- the log, assigned by the sequencer in batches; NULL until then.
CREATE TABLE audit_entries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq         BIGINT,
    tenant_id   TEXT,
    at          BIGINT NOT NULL,
    action      TEXT NOT NULL,
    case_id     TEXT,
    customer_id TEXT,
    entry       TEXT NOT NULL,
    CONSTRAINT audit_entries_seq_uq UNIQUE (seq)
);
CREATE INDEX audit_entries_unsequenced_idx ON audit_entries (id) WHERE seq IS NULL;
CREATE INDEX audit_entries_case_idx ON audit_entries (case_id, seq);
CREATE INDEX audit_entries_customer_idx ON audit_entries (customer_id, seq);

-- Hashes of complete subtrees: (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
-- Any proof needs O(log n) of them.
CREATE TABLE audit_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Every checkpoint published, as the signed note (C2SP tlog-checkpoint, Ed25519).
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    note TEXT NOT NULL,
    at   BIGINT NOT NULL
);

-- One row, written first by every sequencing transaction: its row lock lets one sequencer run
-- at a time, across processes, on either backend.
CREATE TABLE audit_sequencer (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL
);
