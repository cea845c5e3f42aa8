-- Executing recoveries (issue 6). Kept in lockstep with the other backend's migrations.

-- The action a case queued when it entered `executing`, worked by the action worker with a
-- lease (`next_attempt_at` moves past the lease while it runs) and retried with backoff. The
-- id is the idempotency key external connectors receive.
CREATE TABLE recovery_actions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    case_id         TEXT NOT NULL,
    customer_id     TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    action          TEXT NOT NULL,
    connector       TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX recovery_actions_due_idx ON recovery_actions (next_attempt_at) WHERE state = 'pending';
CREATE INDEX recovery_actions_case_idx ON recovery_actions (case_id);

-- Links sent to the customer: a reset link (`reset`: set a new password, single use) or a
-- "this wasn't me" link in a notice (`report`). The token only as an HMAC under the keyring's
-- index key.
CREATE TABLE customer_links (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    case_id     TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX customer_links_case_idx ON customer_links (case_id);

-- Event webhooks for the tenant's ticketing or CRM: one row per event and endpoint, committed
-- with the change it tells of, sent by the webhook worker with a lease and retried with
-- backoff. The payload names cases and customers by id only.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    case_id         TEXT,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_tenant_idx ON webhook_deliveries (tenant_id, created_at);
