-- Identity verification (issue 4). Kept in lockstep with store-sqlite/migrations.
--
-- Codes and link tokens are stored only as keyed hashes (HMAC under the keyring's index key);
-- TOTP secrets and outgoing messages are sealed under the customer's data key, so an erasure
-- takes them too; knowledge answers are Argon2id hashes of the normalized answer.

-- The tenant's assurance policy, every version kept: which one a decision used stays readable.
CREATE TABLE assurance_policies (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- A code or confirmation link sent to a registered contact point, bound to its case, customer
-- and destination. `state`: pending, used, exhausted, expired, superseded, repudiated.
CREATE TABLE verification_challenges (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    case_id           TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    customer_id       TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    method            TEXT NOT NULL,
    delivery          TEXT NOT NULL,
    destination       TEXT NOT NULL,
    destination_since BIGINT NOT NULL,
    secret_hash       TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    attempts_max      BIGINT NOT NULL,
    state             TEXT NOT NULL,
    expires_at        BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    closed_at         BIGINT
);
CREATE INDEX verification_challenges_case_idx ON verification_challenges (case_id, state);
CREATE UNIQUE INDEX verification_challenges_link_idx ON verification_challenges (secret_hash)
    WHERE delivery = 'link';

-- Every identification and verification attempt: the passed ones are a case's evidence, the
-- counted failures are the customer's, across cases, channels, agents and addresses.
CREATE TABLE verification_attempts (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    case_id           TEXT REFERENCES cases (id) ON DELETE SET NULL,
    customer_id       TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    method            TEXT NOT NULL,
    passed            BOOLEAN NOT NULL,
    counted           BOOLEAN NOT NULL,
    detail            TEXT,
    destination       TEXT,
    destination_since BIGINT,
    ip                TEXT,
    at                BIGINT NOT NULL
);
CREATE INDEX verification_attempts_customer_idx ON verification_attempts (tenant_id, customer_id, at);
CREATE INDEX verification_attempts_case_idx ON verification_attempts (case_id);

-- Too many failures: recovery for the customer stops until `until`.
CREATE TABLE recovery_holds (
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    until       BIGINT NOT NULL,
    failures    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- The built-in directory's second factors.
CREATE TABLE customer_totp (
    customer_id   TEXT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE customer_recovery_codes (
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (customer_id, code_hash)
);

CREATE TABLE customer_knowledge (
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    question    TEXT NOT NULL,
    answer_hash TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (customer_id, question)
);

-- Outgoing messages, written in the transaction of the change that sends them. The address,
-- subject and body are sealed under the customer's key and cleared once sent; what stays is
-- the delivery log (masked destination, template, state, attempts).
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    case_id         TEXT,
    customer_id     TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    destination     TEXT NOT NULL,
    template        TEXT NOT NULL,
    sealed          TEXT,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_case_idx ON outbox (case_id);

-- A tenant's own wording of outgoing messages; a template not here is the built-in one.
CREATE TABLE message_templates (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    channel    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, channel)
);
