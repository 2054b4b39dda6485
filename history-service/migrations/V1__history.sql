-- Message history: conversations (rooms and direct-message pairs), their
-- items, and direct messages waiting for an offline account.

CREATE TABLE conversations (
    id         bigserial PRIMARY KEY,
    -- `room:<folded room>` or `dm:<keyA>|<keyB>` (participant keys sorted).
    key        text NOT NULL UNIQUE,
    kind       text NOT NULL CHECK (kind IN ('room', 'dm')),
    -- Rooms: the display name. Direct conversations: the key.
    name       text NOT NULL,
    -- Direct conversations: the two participant keys (`a:<account>` or
    -- `s:<sid>`, peer_a < peer_b) and each one's latest nick.
    peer_a     text,
    peer_b     text,
    nick_a     text,
    nick_b     text,
    -- The highest seq stored.
    last_seq   bigint NOT NULL DEFAULT 0,
    -- The newest item's time.
    last_at    timestamptz,
    -- Rooms: what is added to the router's seq. A room that empties is
    -- deleted by the router and starts again from seq 1 when re-created;
    -- its new items are numbered after the old ones.
    seq_offset bigint NOT NULL DEFAULT 0
);

CREATE INDEX conversations_peer_a ON conversations (peer_a, last_at) WHERE kind = 'dm';
CREATE INDEX conversations_peer_b ON conversations (peer_b, last_at) WHERE kind = 'dm';

CREATE TABLE messages (
    conversation   bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq            bigint NOT NULL,
    msgid          text NOT NULL,
    at             timestamptz NOT NULL,
    -- message / notice / action / join / part / kick / quit / nick / away /
    -- account / topic / mode
    kind           text NOT NULL,
    sender_account text,
    sender_nick    text NOT NULL,
    -- The text of a message, topic, part/kick/quit reason or away message.
    body           text,
    -- Client tags of a message (`+typing`, `+draft/reply`…).
    tags           jsonb,
    -- {from, to?, room?, body}: everything needed to rebuild the item exactly.
    item           jsonb NOT NULL,
    PRIMARY KEY (conversation, seq),
    UNIQUE (conversation, msgid)
);

-- Paging by time within a conversation.
CREATE INDEX messages_time ON messages (conversation, at, seq);
-- Retention by age across every conversation. Rows are appended roughly in
-- time order, so a BRIN index finds the old ones at almost no write cost.
CREATE INDEX messages_at_brin ON messages USING brin (at);

CREATE TABLE pending_deliveries (
    -- The recipient's folded account.
    account      text NOT NULL,
    conversation bigint NOT NULL,
    seq          bigint NOT NULL,
    msgid        text NOT NULL,
    PRIMARY KEY (account, msgid),
    FOREIGN KEY (conversation, seq) REFERENCES messages (conversation, seq) ON DELETE CASCADE
);

-- For the cascade when retention deletes messages.
CREATE INDEX pending_deliveries_message ON pending_deliveries (conversation, seq);
