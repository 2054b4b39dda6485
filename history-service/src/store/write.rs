//! Writing a batch of deliveries in one transaction.
//!
//! Rows go in with one multi-row `INSERT … SELECT FROM unnest(arrays) ON
//! CONFLICT DO NOTHING` per batch (one prepared statement whatever the batch
//! size), so a redelivered item, caught by `(conversation, seq)` or
//! `(conversation, msgid)`, is simply not inserted again.

use std::collections::{BTreeMap, HashMap, HashSet};

use bus::history::DirectLog;
use bus::names::fold;
use bus::schema::{EventBody, RoomEvent};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde_json::Value;

use super::{Store, StoreError};
use crate::items::{room_key, room_row, DirectKey, NewRow, MESSAGE_KINDS};

const INSERT_ROWS: &str = "\
INSERT INTO messages (conversation, seq, msgid, at, kind, sender_account, sender_nick, body, tags, item, mseq) \
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], \
                     $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::bigint[]) \
ON CONFLICT DO NOTHING \
RETURNING conversation, seq, at";

/// Locks (and creates) the rooms' conversation rows: concurrent replicas
/// writing the same room queue up here, and read `last_seq` after the other
/// committed. Keys are sorted so two batches never lock in opposite orders.
const UPSERT_ROOMS: &str = "\
INSERT INTO conversations (key, kind, name) \
SELECT k, 'room', n FROM unnest($1::text[], $2::text[]) AS t(k, n) ORDER BY k \
ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name \
RETURNING id, key, last_seq, seq_offset, mseq_offset";

const MSGID_STORED: &str =
    "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation = $1 AND msgid = $2)";

/// The highest message number stored in a conversation (0: none).
const LAST_MSEQ: &str =
    "SELECT coalesce(max(mseq), 0) FROM messages WHERE conversation = $1 AND mseq IS NOT NULL";

const UPDATE_ROOMS: &str = "\
UPDATE conversations c SET last_seq = GREATEST(c.last_seq, u.s), last_at = GREATEST(c.last_at, u.a), \
                           seq_offset = u.o, mseq_offset = u.m \
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[], $5::bigint[]) AS u(id, s, a, o, m) \
WHERE c.id = u.id";

/// Marks the messages named by redactions (conversation, msgid, time).
/// Only chat messages: an event (a join, a topic) is not something a
/// client can delete. A message already marked keeps its first time, so a
/// redelivered redaction changes nothing.
const MARK_REDACTED: &str = "\
UPDATE messages m SET redacted_at = u.a \
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS u(c, id, a) \
WHERE m.conversation = u.c AND m.msgid = u.id AND m.redacted_at IS NULL \
  AND m.kind = ANY($4)";

const UPSERT_DIRECT: &str = "\
INSERT INTO conversations (key, kind, name, peer_a, peer_b, nick_a, nick_b) \
SELECT k, 'dm', k, a, b, na, nb \
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(k, a, b, na, nb) ORDER BY k \
ON CONFLICT (key) DO UPDATE SET nick_a = EXCLUDED.nick_a, nick_b = EXCLUDED.nick_b \
RETURNING id, key";

const STORED_MSGIDS: &str = "\
SELECT m.conversation, m.msgid FROM messages m \
JOIN unnest($1::bigint[], $2::text[]) AS u(c, id) ON m.conversation = u.c AND m.msgid = u.id";

/// Allocates `n` seqs in each conversation; the new `last_seq` is returned.
const ALLOCATE_SEQS: &str = "\
UPDATE conversations c SET last_seq = c.last_seq + u.n, last_at = GREATEST(c.last_at, u.a) \
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS u(id, n, a) \
WHERE c.id = u.id RETURNING c.id, c.last_seq";

const INSERT_PENDING: &str = "\
INSERT INTO pending_deliveries (account, conversation, seq, msgid) \
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) \
ON CONFLICT DO NOTHING";

/// A row with its place (and its message number, if it has one).
struct Placed<'a> {
    conversation: i64,
    seq: i64,
    mseq: Option<i64>,
    row: &'a NewRow,
}

/// Inserts rows (skipping those already stored) and returns, per
/// conversation, the highest seq and newest time actually inserted, and the
/// number of rows inserted.
async fn insert_rows(
    tx: &Transaction<'_>,
    rows: &[Placed<'_>],
) -> Result<(HashMap<i64, (i64, DateTime<Utc>)>, u64), StoreError> {
    let mut newest = HashMap::new();
    if rows.is_empty() {
        return Ok((newest, 0));
    }
    let conversation: Vec<i64> = rows.iter().map(|p| p.conversation).collect();
    let seq: Vec<i64> = rows.iter().map(|p| p.seq).collect();
    let msgid: Vec<&str> = rows.iter().map(|p| p.row.msgid.as_str()).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|p| p.row.at).collect();
    let kind: Vec<&str> = rows.iter().map(|p| p.row.kind).collect();
    let account: Vec<Option<&str>> = rows
        .iter()
        .map(|p| p.row.sender_account.as_deref())
        .collect();
    let nick: Vec<&str> = rows.iter().map(|p| p.row.sender_nick.as_str()).collect();
    let body: Vec<Option<&str>> = rows.iter().map(|p| p.row.body.as_deref()).collect();
    let tags: Vec<Option<&Value>> = rows.iter().map(|p| p.row.tags.as_ref()).collect();
    let item: Vec<&Value> = rows.iter().map(|p| &p.row.item).collect();
    let mseq: Vec<Option<i64>> = rows.iter().map(|p| p.mseq).collect();
    let stmt = tx.prepare_cached(INSERT_ROWS).await?;
    let inserted = tx
        .query(
            &stmt,
            &[
                &conversation,
                &seq,
                &msgid,
                &at,
                &kind,
                &account,
                &nick,
                &body,
                &tags,
                &item,
                &mseq,
            ],
        )
        .await?;
    for r in &inserted {
        let (c, s, a): (i64, i64, DateTime<Utc>) = (r.get(0), r.get(1), r.get(2));
        let e = newest.entry(c).or_insert((s, a));
        e.0 = e.0.max(s);
        e.1 = e.1.max(a);
    }
    Ok((newest, inserted.len() as u64))
}

/// What one room's conversation row looks like during a batch.
struct RoomState {
    id: i64,
    last_seq: i64,
    offset: i64,
    mseq_offset: i64,
    /// The highest message number placed in this batch.
    last_mseq: i64,
    offset_changed: bool,
}

/// Stores room events in one transaction; returns how many rows were new.
/// Events that are not history (TAGMSG) are skipped.
///
/// Rooms are numbered by the router's seq plus the conversation's
/// `seq_offset`, and their messages by the router's mseq plus its
/// `mseq_offset`. Both offsets stay 0 while the router keeps numbering a
/// room: it does even across the room emptying (the room's husk keeps its
/// counters). A router that numbers a room from 1 again (one from before
/// husks, which deleted emptied rooms, or one that lost the rooms bucket)
/// starts with its creator's JOIN at seq 1; that JOIN (an id not stored
/// yet) in a conversation that has items starts a new incarnation, whose
/// seqs go after the old ones and whose message numbers after the highest
/// one stored, so nothing of either is lost and no number is given twice
/// (the unique index on `(conversation, mseq)` would otherwise drop the new
/// message as a duplicate).
pub async fn room_events(store: &Store, events: &[RoomEvent]) -> Result<u64, StoreError> {
    let rows: Vec<(&RoomEvent, NewRow)> = events
        .iter()
        .filter_map(|e| room_row(e).map(|r| (e, r)))
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let mut names = BTreeMap::new();
    for (event, _) in &rows {
        names.insert(room_key(&event.room), event.name.as_str());
    }
    let keys: Vec<&str> = names.keys().map(String::as_str).collect();
    let display: Vec<&str> = names.values().copied().collect();

    let mut conn = store.pool.get().await?;
    let tx = conn.transaction().await?;
    let stmt = tx.prepare_cached(UPSERT_ROOMS).await?;
    let mut rooms: HashMap<String, RoomState> = HashMap::new();
    for r in tx.query(&stmt, &[&keys, &display]).await? {
        rooms.insert(
            r.get(1),
            RoomState {
                id: r.get(0),
                last_seq: r.get(2),
                offset: r.get(3),
                mseq_offset: r.get(4),
                last_mseq: 0,
                offset_changed: false,
            },
        );
    }

    let mut seen = HashSet::new();
    let mut placed = Vec::with_capacity(rows.len());
    let mut redactions = Vec::new();
    for (event, row) in &rows {
        let Some(state) = rooms.get_mut(&room_key(&event.room)) else {
            continue;
        };
        if !seen.insert((state.id, event.id.as_str())) {
            continue; // the same event twice in one batch
        }
        if event.seq == 1 && matches!(event.body, EventBody::Join) && state.last_seq > 0 {
            let stmt = tx.prepare_cached(MSGID_STORED).await?;
            let stored: bool = tx.query_one(&stmt, &[&state.id, &event.id]).await?.get(0);
            if !stored {
                let stmt = tx.prepare_cached(LAST_MSEQ).await?;
                let last_mseq: i64 = tx.query_one(&stmt, &[&state.id]).await?.get(0);
                state.offset = state.last_seq;
                state.mseq_offset = last_mseq.max(state.last_mseq);
                state.offset_changed = true;
            }
        }
        let seq = state.offset + i64::try_from(event.seq).unwrap_or(i64::MAX - state.offset);
        state.last_seq = state.last_seq.max(seq);
        let mseq = event
            .mseq
            .map(|m| state.mseq_offset + i64::try_from(m).unwrap_or(i64::MAX - state.mseq_offset));
        state.last_mseq = state.last_mseq.max(mseq.unwrap_or(0));
        if let EventBody::Redact { msgid, .. } = &event.body {
            redactions.push((state.id, msgid.as_str(), row.at));
        }
        placed.push(Placed {
            conversation: state.id,
            seq,
            mseq,
            row,
        });
    }
    let (newest, inserted) = insert_rows(&tx, &placed).await?;
    mark_redacted(&tx, &redactions).await?;

    let mut ids = Vec::new();
    let mut last_seq = Vec::new();
    let mut last_at = Vec::new();
    let mut offsets = Vec::new();
    let mut mseq_offsets = Vec::new();
    for state in rooms.values() {
        let top = newest.get(&state.id);
        if top.is_none() && !state.offset_changed {
            continue;
        }
        ids.push(state.id);
        last_seq.push(top.map_or(0, |t| t.0));
        last_at.push(top.map(|t| t.1));
        offsets.push(state.offset);
        mseq_offsets.push(state.mseq_offset);
    }
    if !ids.is_empty() {
        let stmt = tx.prepare_cached(UPDATE_ROOMS).await?;
        tx.execute(&stmt, &[&ids, &last_seq, &last_at, &offsets, &mseq_offsets])
            .await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

/// Marks the messages that this batch's redaction events delete, in the
/// same transaction as the redaction rows: a redaction is never stored
/// without its effect. The message is always stored before its redaction:
/// a gateway publishes a redaction only after finding the message in
/// history (it needs its author), so the message's batch was committed
/// before the redaction even existed.
async fn mark_redacted(
    tx: &Transaction<'_>,
    redactions: &[(i64, &str, DateTime<Utc>)],
) -> Result<(), StoreError> {
    if redactions.is_empty() {
        return Ok(());
    }
    let conversation: Vec<i64> = redactions.iter().map(|r| r.0).collect();
    let target: Vec<&str> = redactions.iter().map(|r| r.1).collect();
    let at: Vec<DateTime<Utc>> = redactions.iter().map(|r| r.2).collect();
    let kinds: Vec<&str> = MESSAGE_KINDS.to_vec();
    let stmt = tx.prepare_cached(MARK_REDACTED).await?;
    tx.execute(&stmt, &[&conversation, &target, &at, &kinds])
        .await?;
    Ok(())
}

/// A direct message ready to be written: the log, its conversation and row.
pub struct DirectWrite<'a> {
    pub log: &'a DirectLog,
    pub key: DirectKey,
    pub row: NewRow,
}

/// Stores direct messages in one transaction; returns how many were new.
/// Each new message gets the next seq of its conversation (allocated here,
/// under the conversation's row lock), which is also its message number
/// (every item of a direct conversation is a message); one already stored
/// (same id in the same conversation) is skipped without using a seq. An `offline` message
/// is also recorded as pending for the recipient's account.
pub async fn direct_logs(store: &Store, logs: &[DirectWrite<'_>]) -> Result<u64, StoreError> {
    Ok(direct_logs_numbered(store, logs).await?.len() as u64)
}

/// A direct message as [`direct_logs_numbered`] stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    /// Message id.
    pub id: String,
    /// Its seq in the conversation (also its message number).
    pub seq: i64,
    /// The conversation's two participant keys.
    pub peers: [String; 2],
}

/// [`direct_logs`], telling which messages were new and the number each
/// got (for the signal that gives live deliveries their number).
pub async fn direct_logs_numbered(
    store: &Store,
    logs: &[DirectWrite<'_>],
) -> Result<Vec<Numbered>, StoreError> {
    if logs.is_empty() {
        return Ok(Vec::new());
    }
    // The latest nicks of each conversation in this batch.
    let mut convs: BTreeMap<&str, &DirectKey> = BTreeMap::new();
    for w in logs {
        convs.insert(w.key.key.as_str(), &w.key);
    }
    let keys: Vec<&str> = convs.keys().copied().collect();
    let peer_a: Vec<&str> = convs.values().map(|k| k.peer_a.as_str()).collect();
    let peer_b: Vec<&str> = convs.values().map(|k| k.peer_b.as_str()).collect();
    let nick_a: Vec<&str> = convs.values().map(|k| k.nick_a.as_str()).collect();
    let nick_b: Vec<&str> = convs.values().map(|k| k.nick_b.as_str()).collect();

    let mut conn = store.pool.get().await?;
    let tx = conn.transaction().await?;
    let stmt = tx.prepare_cached(UPSERT_DIRECT).await?;
    let mut ids: HashMap<String, i64> = HashMap::new();
    for r in tx
        .query(&stmt, &[&keys, &peer_a, &peer_b, &nick_a, &nick_b])
        .await?
    {
        ids.insert(r.get(1), r.get(0));
    }

    let conv_of: Vec<i64> = logs.iter().map(|w| ids[&w.key.key]).collect();
    let msgids: Vec<&str> = logs.iter().map(|w| w.log.id.as_str()).collect();
    let stmt = tx.prepare_cached(STORED_MSGIDS).await?;
    let mut seen: HashSet<(i64, String)> = HashSet::new();
    for r in tx.query(&stmt, &[&conv_of, &msgids]).await? {
        seen.insert((r.get(0), r.get(1)));
    }
    // The new ones, in consumption order, and how many per conversation.
    let mut fresh = Vec::new();
    let mut counts: BTreeMap<i64, (i64, DateTime<Utc>)> = BTreeMap::new();
    for (w, &conversation) in logs.iter().zip(&conv_of) {
        if !seen.insert((conversation, w.log.id.clone())) {
            continue;
        }
        let c = counts.entry(conversation).or_insert((0, w.row.at));
        c.0 += 1;
        c.1 = c.1.max(w.row.at);
        fresh.push((w, conversation));
    }
    if fresh.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let conv_ids: Vec<i64> = counts.keys().copied().collect();
    let ns: Vec<i64> = counts.values().map(|c| c.0).collect();
    let ats: Vec<DateTime<Utc>> = counts.values().map(|c| c.1).collect();
    let stmt = tx.prepare_cached(ALLOCATE_SEQS).await?;
    let mut next: HashMap<i64, i64> = HashMap::new();
    for r in tx.query(&stmt, &[&conv_ids, &ns, &ats]).await? {
        let (id, last): (i64, i64) = (r.get(0), r.get(1));
        next.insert(id, last - counts[&id].0 + 1);
    }
    let mut placed = Vec::with_capacity(fresh.len());
    let mut numbered = Vec::with_capacity(fresh.len());
    let mut pending = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (w, conversation) in &fresh {
        let slot = next.get_mut(conversation).expect("allocated above");
        let seq = *slot;
        *slot += 1;
        placed.push(Placed {
            conversation: *conversation,
            seq,
            mseq: Some(seq),
            row: &w.row,
        });
        numbered.push(Numbered {
            id: w.log.id.clone(),
            seq,
            peers: [w.key.peer_a.clone(), w.key.peer_b.clone()],
        });
        if let (true, Some(account)) = (w.log.offline, &w.log.to.account) {
            pending.0.push(fold(account));
            pending.1.push(*conversation);
            pending.2.push(seq);
            pending.3.push(w.log.id.as_str());
        }
    }
    // The rows were checked absent above, under the conversations' locks.
    insert_rows(&tx, &placed).await?;
    if !pending.0.is_empty() {
        let stmt = tx.prepare_cached(INSERT_PENDING).await?;
        tx.execute(&stmt, &[&pending.0, &pending.1, &pending.2, &pending.3])
            .await?;
    }
    tx.commit().await?;
    Ok(numbered)
}
