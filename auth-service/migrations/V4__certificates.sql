-- TLS client certificates that log an account in (IRC SASL EXTERNAL), by
-- SHA-256 fingerprint (lowercase hex). A fingerprint is one account's.
CREATE TABLE cert_fingerprints (
    fingerprint text PRIMARY KEY,
    account     text NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cert_fingerprints_account ON cert_fingerprints (account);
