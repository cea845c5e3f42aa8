-- Regain foundation schema (PostgreSQL). Kept in lockstep with store-sqlite/migrations.
-- Timestamps are BIGINT microseconds since the Unix epoch, UTC. Ids are UUID text.

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    slug         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    settings     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT tenants_slug_uq UNIQUE (slug)
);

CREATE TABLE staff (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT REFERENCES tenants (id),
    email          TEXT NOT NULL,
    email_norm     TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL,
    active         BOOLEAN NOT NULL,
    password_hash  TEXT NOT NULL,
    totp_secret    BYTEA NOT NULL,
    totp_last_step BIGINT,
    failed_logins  BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT,
    created_at     BIGINT NOT NULL,
    CONSTRAINT staff_email_uq UNIQUE (email_norm)
);
CREATE INDEX staff_tenant_idx ON staff (tenant_id);

CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id   TEXT NOT NULL REFERENCES staff (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    idle_until BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX staff_sessions_staff_idx ON staff_sessions (staff_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    CONSTRAINT api_keys_secret_hash_uq UNIQUE (secret_hash)
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE customers (
    id                       TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL REFERENCES tenants (id),
    external_id              TEXT,
    username                 TEXT NOT NULL,
    username_norm            TEXT NOT NULL,
    account_number           TEXT,
    full_name                TEXT NOT NULL,
    status                   TEXT NOT NULL,
    privileged               BOOLEAN NOT NULL,
    vip                      BOOLEAN NOT NULL,
    password_enrolled        BOOLEAN NOT NULL,
    totp_enrolled            BOOLEAN NOT NULL,
    recovery_codes_remaining BIGINT NOT NULL,
    passkeys                 BIGINT NOT NULL,
    failed_logins            BIGINT NOT NULL DEFAULT 0,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    CONSTRAINT customers_username_uq UNIQUE (tenant_id, username_norm),
    CONSTRAINT customers_external_id_uq UNIQUE (tenant_id, external_id),
    CONSTRAINT customers_account_number_uq UNIQUE (tenant_id, account_number)
);

CREATE TABLE customer_emails (
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    tenant_id    TEXT NOT NULL,
    address      TEXT NOT NULL,
    address_norm TEXT NOT NULL,
    verified     BOOLEAN NOT NULL,
    added_at     BIGINT NOT NULL,
    PRIMARY KEY (customer_id, position)
);
CREATE INDEX customer_emails_lookup_idx ON customer_emails (tenant_id, address_norm);

CREATE TABLE customer_phones (
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    tenant_id   TEXT NOT NULL,
    number      TEXT NOT NULL,
    verified    BOOLEAN NOT NULL,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (customer_id, position)
);
CREATE INDEX customer_phones_lookup_idx ON customer_phones (tenant_id, number);

CREATE TABLE customer_credentials (
    customer_id   TEXT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE customer_logins (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    success     BOOLEAN NOT NULL
);
CREATE INDEX customer_logins_customer_idx ON customer_logins (customer_id, at);

-- Sign-ins for usernames the directory does not know: kept as history (credential stuffing
-- shows here first) and written like a known user's attempt, so timing tells nothing. The
-- attempted name itself is not kept: people type passwords into username fields.
CREATE TABLE directory_unknown_logins (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    ip          TEXT,
    user_agent  TEXT
);
CREATE INDEX directory_unknown_logins_ip_idx ON directory_unknown_logins (tenant_id, ip, at);

CREATE TABLE customer_sessions (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX customer_sessions_customer_idx ON customer_sessions (customer_id);

CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    kind                  TEXT NOT NULL,
    channel               TEXT NOT NULL,
    state                 TEXT NOT NULL,
    tier                  BIGINT NOT NULL,
    assignee              TEXT,
    customer_id           TEXT,
    summary               TEXT,
    approval_required     BOOLEAN NOT NULL,
    approval_requested_by TEXT,
    decided_by            TEXT,
    cooling_off_until     BIGINT,
    first_response_due    BIGINT NOT NULL,
    resolution_due        BIGINT NOT NULL,
    first_response_at     BIGINT,
    expires_at            BIGINT NOT NULL,
    created_by            TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX cases_tenant_idx ON cases (tenant_id, id);
CREATE INDEX cases_tenant_state_idx ON cases (tenant_id, state, id);
CREATE INDEX cases_customer_idx ON cases (tenant_id, customer_id);
CREATE INDEX cases_expiry_idx ON cases (expires_at)
    WHERE state IN ('open', 'identifying', 'verifying', 'decided', 'awaiting_approval');

CREATE TABLE case_events (
    case_id     TEXT NOT NULL REFERENCES cases (id),
    seq         BIGINT NOT NULL,
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    data        TEXT NOT NULL,
    state_after TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);
