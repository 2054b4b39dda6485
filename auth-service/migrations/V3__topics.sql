-- Tinode topic state per account: the rooms it subscribed to (a Tinode
-- subscription outlives the connection, unlike an IRC channel membership)
-- and the read/received markers of rooms and one-to-one conversations.
-- `topic` is `room:<folded room>` or `peer:<folded account>`.
CREATE TABLE topics (
    account    text NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    topic      text NOT NULL,
    subscribed boolean NOT NULL DEFAULT false,
    read_seq   bigint NOT NULL DEFAULT 0,
    recv_seq   bigint NOT NULL DEFAULT 0,
    -- Message numbers the account deleted for itself only (Tinode's soft
    -- delete): an array of [low, hi) pairs, appended to.
    hidden     jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, topic)
);

-- `fnd` by e-mail address.
CREATE INDEX accounts_email ON accounts (lower(email)) WHERE email IS NOT NULL;
