-- ChanServ: the durable copy of registered rooms. The router's live state
-- of every room is in the NATS rooms bucket; a registered room's name,
-- registration, topic, modes and bans are also written here after every
-- change, so the room comes back as it was when everybody left it or its
-- NATS record was lost. Times are timestamptz; the router speaks ms.

CREATE TABLE chanserv_rooms (
    -- The folded room name (IRC `#ops` is `ops`): the room's identity.
    room          text PRIMARY KEY,
    -- The display name, as registered.
    name          text NOT NULL,
    -- The founder's account (canonical, case-folded).
    founder       text NOT NULL,
    registered_at timestamptz NOT NULL,
    -- While on, only the founder and OP accounts may change the topic.
    topic_lock    boolean NOT NULL DEFAULT false,
    topic         text,
    topic_set_by  text,
    topic_set_at  timestamptz,
    -- Channel modes: the flags, the key (+k) and the limit (+l).
    invite_only   boolean NOT NULL,
    moderated     boolean NOT NULL,
    no_external   boolean NOT NULL,
    secret        boolean NOT NULL,
    topic_ops     boolean NOT NULL,
    key           text,
    user_limit    integer,
    -- The router's revision of this state: a write only replaces an older one.
    rev           bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chanserv_bans (
    room     text NOT NULL REFERENCES chanserv_rooms (room) ON DELETE CASCADE,
    -- The ban list's order.
    position integer NOT NULL,
    mask     text NOT NULL,
    set_by   text NOT NULL,
    set_at   timestamptz NOT NULL,
    PRIMARY KEY (room, position)
);

CREATE TABLE chanserv_access (
    room    text NOT NULL REFERENCES chanserv_rooms (room) ON DELETE CASCADE,
    account text NOT NULL,
    level   text NOT NULL CHECK (level IN ('op', 'voice')),
    PRIMARY KEY (room, account)
);
