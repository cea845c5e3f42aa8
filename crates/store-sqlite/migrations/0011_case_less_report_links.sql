-- A "this wasn't me" link in the notice of a change the customer made themselves (a new
-- sign-in method, SECURITY.md P3) has no case behind it: customer_links.case_id becomes
-- nullable. SQLite cannot drop a NOT NULL in place, so the table is rebuilt, rows, indexes
-- and all.
CREATE TABLE customer_links_new (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    case_id     TEXT,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL
);
INSERT INTO customer_links_new (id, purpose, tenant_id, case_id, customer_id, token_hash, destination, expires_at, used_at, created_at)
    SELECT id, purpose, tenant_id, case_id, customer_id, token_hash, destination, expires_at, used_at, created_at
    FROM customer_links;
DROP TABLE customer_links;
ALTER TABLE customer_links_new RENAME TO customer_links;
CREATE INDEX customer_links_case_idx ON customer_links (case_id);
CREATE INDEX customer_links_customer_idx ON customer_links (customer_id, purpose, used_at);
