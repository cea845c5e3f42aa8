-- Contact changes (issue 6, SECURITY.md M4, G5). Kept in lockstep with the other backend's migrations.

-- A new email or phone proposed on a contact-change case: sealed under the customer's data key
-- (bound to the row), proven by a code sent to it (kept only as an HMAC), and applied only when
-- the case's cooling-off ends. On applying with `replace_old`, the contacts it replaced are
-- kept here, sealed, so a lockdown can put them back.
CREATE TABLE contact_changes (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    case_id         TEXT NOT NULL,
    customer_id     TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    value_sealed    TEXT NOT NULL,
    masked          TEXT NOT NULL,
    replace_old     INTEGER NOT NULL,
    code_hash       TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    attempts_max    INTEGER NOT NULL,
    code_expires_at INTEGER NOT NULL,
    state           TEXT NOT NULL,
    replaced_sealed TEXT,
    replaced_masked TEXT,
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    applied_at      INTEGER
);
CREATE INDEX contact_changes_case_idx ON contact_changes (case_id, created_at);
CREATE INDEX contact_changes_customer_idx ON contact_changes (customer_id, applied_at);
