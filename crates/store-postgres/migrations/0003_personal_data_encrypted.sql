-- Personal data encrypted at rest (PostgreSQL). Kept in lockstep with store-sqlite/migrations.
--
-- Every data subject (a customer, a case) has a data key, stored only wrapped by the master key,
-- which lives outside the database. Personal data is sealed under the subject's key
-- (XChaCha20-Poly1305); lookups go through keyed blind indexes (HMAC-SHA256 of the normalized
-- value). Destroying a subject's row in data_keys erases all of it, the copies in the audit log
-- included. The store refuses to apply this migration over plaintext records written before it.

-- One row: which master key the data is written under, the proof of it, the wrapped index key.
CREATE TABLE keyring (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    master_key_id TEXT NOT NULL,
    key_check     BYTEA NOT NULL,
    index_key     BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    rotated_at    BIGINT
);

CREATE TABLE data_keys (
    subject      TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    key_tenant   TEXT NOT NULL,
    wrapped      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

DROP TABLE customer_emails;
DROP TABLE customer_phones;
-- CASCADE drops the foreign keys that point here; they are added back below.
DROP TABLE customers CASCADE;

CREATE TABLE customers (
    id                       TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL REFERENCES tenants (id),
    external_id              TEXT,
    -- username, account number and full name, sealed under the customer's key
    sealed                   TEXT NOT NULL,
    username_bidx            TEXT NOT NULL,
    account_number_bidx      TEXT,
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
    CONSTRAINT customers_username_uq UNIQUE (tenant_id, username_bidx),
    CONSTRAINT customers_external_id_uq UNIQUE (tenant_id, external_id),
    CONSTRAINT customers_account_number_uq UNIQUE (tenant_id, account_number_bidx)
);

CREATE TABLE customer_emails (
    customer_id    TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    position       BIGINT NOT NULL,
    tenant_id      TEXT NOT NULL,
    address_sealed TEXT NOT NULL,
    address_bidx   TEXT NOT NULL,
    verified       BOOLEAN NOT NULL,
    added_at       BIGINT NOT NULL,
    PRIMARY KEY (customer_id, position)
);
CREATE INDEX customer_emails_lookup_idx ON customer_emails (tenant_id, address_bidx);

CREATE TABLE customer_phones (
    customer_id   TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,
    tenant_id     TEXT NOT NULL,
    number_sealed TEXT NOT NULL,
    number_bidx   TEXT NOT NULL,
    verified      BOOLEAN NOT NULL,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (customer_id, position)
);
CREATE INDEX customer_phones_lookup_idx ON customer_phones (tenant_id, number_bidx);

ALTER TABLE customer_credentials ADD CONSTRAINT customer_credentials_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
ALTER TABLE customer_logins ADD CONSTRAINT customer_logins_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
ALTER TABLE customer_sessions ADD CONSTRAINT customer_sessions_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;

-- Retention: closed cases are found by when they last changed.
CREATE INDEX cases_retention_idx ON cases (tenant_id, updated_at)
    WHERE state IN ('resolved', 'rejected', 'cancelled', 'expired');
