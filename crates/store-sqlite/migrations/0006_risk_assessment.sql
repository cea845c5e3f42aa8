-- Risk scoring and routing (issue 5). Kept in lockstep with the other backend's migrations.

-- The case's risk: the latest score with the highest band any assessment gave (a band never
-- goes down) and the latest reasons in short (`code:points,…`), and the tells the agent
-- recorded (comma-separated names).
ALTER TABLE cases ADD COLUMN risk_score INTEGER;
ALTER TABLE cases ADD COLUMN risk_band TEXT;
ALTER TABLE cases ADD COLUMN risk_reasons TEXT;
ALTER TABLE cases ADD COLUMN observed TEXT NOT NULL DEFAULT '';

-- One row per recovery request (case), for velocity across channels: when it came, the
-- customer once identified, and blind indexes (HMAC under the keyring's index key) of the IP,
-- device, phone and email it came from, and of the phone and email the caller named. The request's context itself (IP, user agent,
-- device id) is sealed under the case's key.
CREATE TABLE risk_requests (
    case_id     TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    customer_id TEXT,
    ip_bidx     TEXT,
    device_bidx TEXT,
    phone_bidx  TEXT,
    email_bidx  TEXT,
    named_phone_bidx TEXT,
    named_email_bidx TEXT,
    context     TEXT
);
CREATE INDEX risk_requests_tenant_at_idx ON risk_requests (tenant_id, at);
CREATE INDEX risk_requests_customer_idx ON risk_requests (tenant_id, customer_id, at) WHERE customer_id IS NOT NULL;
CREATE INDEX risk_requests_ip_idx ON risk_requests (tenant_id, ip_bidx, at) WHERE ip_bidx IS NOT NULL;
CREATE INDEX risk_requests_phone_idx ON risk_requests (tenant_id, phone_bidx, at) WHERE phone_bidx IS NOT NULL;
CREATE INDEX risk_requests_email_idx ON risk_requests (tenant_id, email_bidx, at) WHERE email_bidx IS NOT NULL;
CREATE INDEX risk_requests_named_phone_idx ON risk_requests (tenant_id, named_phone_bidx, at) WHERE named_phone_bidx IS NOT NULL;
CREATE INDEX risk_requests_named_email_idx ON risk_requests (tenant_id, named_email_bidx, at) WHERE named_email_bidx IS NOT NULL;

-- Sign-in history is compared per customer, newest first.
CREATE INDEX customer_logins_success_idx ON customer_logins (customer_id, success, at);
