-- Rosters and presence subscriptions (RFC 6121): one row per (owner,
-- contact) pair that either side has a fact about. `sub_to`: the owner
-- receives the contact's presence; `sub_from`: the contact receives the
-- owner's; `ask_out`: the owner asked for the contact's presence;
-- `pending_in`: the contact asked for the owner's and awaits an answer.
-- `in_roster` says whether the owner lists the contact (a pending request
-- alone does not put anyone on a roster).
CREATE TABLE roster (
    account    text NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    contact    text NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    in_roster  boolean NOT NULL DEFAULT false,
    name       text,
    groups     text[] NOT NULL DEFAULT '{}',
    sub_to     boolean NOT NULL DEFAULT false,
    sub_from   boolean NOT NULL DEFAULT false,
    ask_out    boolean NOT NULL DEFAULT false,
    pending_in boolean NOT NULL DEFAULT false,
    PRIMARY KEY (account, contact)
);
CREATE INDEX roster_contact ON roster (contact);

-- Each account's roster version (RFC 6121 §2.6), raised by every change.
CREATE TABLE roster_versions (
    account text PRIMARY KEY REFERENCES accounts(name) ON DELETE CASCADE,
    ver     bigint NOT NULL DEFAULT 0
);

-- vCards (XEP-0054), kept as the client's serialized <vCard/> element.
CREATE TABLE vcards (
    account    text PRIMARY KEY REFERENCES accounts(name) ON DELETE CASCADE,
    vcard      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
