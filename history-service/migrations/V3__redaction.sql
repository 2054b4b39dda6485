-- Redaction (IRCv3 REDACT, XMPP message retraction): a room message that
-- was deleted keeps its row, seq and mseq (numbers are never reused, so a
-- redacted number simply disappears from every answer), and is marked here
-- with the time of the redaction. Every query that returns items skips
-- marked rows. The redaction itself is stored as an event row of its own
-- (kind 'redact'), like a topic change, so the room's seq stays gap-free.
ALTER TABLE messages ADD COLUMN redacted_at timestamptz;
