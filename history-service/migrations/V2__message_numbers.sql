-- Message numbers (`mseq`): what protocols that number messages rather than
-- events (Tinode `seq`, `get data`, `del`) address items by.
--
-- Rooms: the router's `RoomEvent.mseq`, given to PRIVMSG and NOTICE events
-- only (NULL for joins, parts, topics, modes…), gap-free from 1 and never
-- reused: a room that empties leaves a husk record in NATS, so a room
-- created again under its name continues its seq and its mseq.
-- Direct conversations: every item is a message and the seq (allocated here)
-- is already gap-free, so mseq = seq.
ALTER TABLE messages ADD COLUMN mseq bigint;

-- Rooms: what is added to the router's mseq. It stays 0 unless the router
-- starts a room's numbering again (its seq 1 JOIN in a conversation that
-- has items, as for seq_offset): routers from before husks did when a room
-- emptied, and any router does if the NATS rooms bucket was lost. The new
-- life's numbers then go after the highest one stored, so the unique index
-- below never turns a new message away as a duplicate.
ALTER TABLE conversations ADD COLUMN mseq_offset bigint NOT NULL DEFAULT 0;

-- Direct messages stored before this migration get their numbers. Room
-- messages stored before it keep none: the router did not number them, and
-- numbering them now would collide with the numbers it gives from now on.
UPDATE messages m SET mseq = m.seq
FROM conversations c
WHERE c.id = m.conversation AND c.kind = 'dm';

-- One item per number; also the index `Numbered` queries walk.
CREATE UNIQUE INDEX messages_mseq ON messages (conversation, mseq) WHERE mseq IS NOT NULL;
