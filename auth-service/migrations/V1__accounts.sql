-- Accounts: one row per registered name (case-folded). Only derived
-- credentials are stored: an argon2id PHC string for PLAIN and the SCRAM
-- StoredKey/ServerKey pairs, never a password.
CREATE TABLE accounts (
    name                   text PRIMARY KEY,
    created_at             timestamptz NOT NULL DEFAULT now(),
    disabled               boolean NOT NULL DEFAULT false,
    email                  text,
    argon2                 text NOT NULL,
    scram_sha1_salt        bytea NOT NULL,
    scram_sha1_iterations  integer NOT NULL,
    scram_sha1_stored_key  bytea NOT NULL,
    scram_sha1_server_key  bytea NOT NULL,
    scram_sha256_salt      bytea NOT NULL,
    scram_sha256_iterations integer NOT NULL,
    scram_sha256_stored_key bytea NOT NULL,
    scram_sha256_server_key bytea NOT NULL,
    credentials_changed_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    created_by_request     text
);

-- Failed login counters shared by every replica: `acct:<name>` and
-- `addr:<client address>`.
CREATE TABLE login_failures (
    key            text PRIMARY KEY,
    failures       integer NOT NULL DEFAULT 0,
    window_started timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz
);
