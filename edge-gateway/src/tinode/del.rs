//! `{del}`: what can be deleted, in the platform's terms.
//!
//! * `what:"sub"` with `user` on a group: an operator evicts that user,
//!   which is IRC's KICK of each of the user's sessions in the room.
//! * `what:"topic"`: a one-to-one topic is the user's own (its markers go
//!   and it is detached, as `{leave unsub:true}`; the conversation's
//!   history stays, as the peer's does). A group is a room other people
//!   share from IRC and XMPP, which nobody deletes: 403.
//! * `what:"msg"` on a group, `hard`: each message is redacted for
//!   everyone, as IRC's REDACT and XMPP's retraction are (the same
//!   [`IntentBody::Redact`], after the same history lookup): one's own
//!   messages, or anyone's as an operator. Other Tinode sessions get
//!   `{pres what:"del"}`; the deletion id (`params.del`, `clear`) is the
//!   redaction event's seq, which only grows. Soft (`hard:false`): the
//!   numbers are hidden from this account only (kept by the auth service
//!   with the topic's markers), on groups and one-to-one topics alike.
//!   Hard deletion in one-to-one topics: 501 (direct messages cannot be
//!   redacted yet).
//! * `what:"cred"` and `"user"` (accounts are managed with `chatctl`): 501.

use bus::history::{HistoryQuery, HistoryReplyBody, HistoryTarget, SeqRange};
use bus::schema::{EventBody, IntentBody, RoomEvent};
use serde_json::json;

use super::conn::{Conn, Wait};
use super::wire::{self, code, Del};
use super::{data, ids, marks};

/// The most message numbers one `{del}` may name.
const MAX_DELETE: u64 = 100;

/// A hard `{del what:"msg"}` waiting for history (which messages, whose),
/// then for the room's redaction events (one per message; each intent's
/// wait names the request by its key in [`Conn::deletions`]).
#[derive(Debug, Clone)]
pub struct Deleting {
    pub id: Option<String>,
    pub topic: String,
    /// The room's display name.
    pub room: String,
    /// Redactions still to come back, and the highest seq seen.
    pub pending: usize,
    pub clear: u64,
}

pub async fn on_del(c: &mut Conn, del: Del) {
    let id = del.id.as_deref();
    let topic = del.topic.clone();
    match del.what.as_str() {
        "msg" => messages(c, del).await,
        "sub" => evict(c, del).await,
        "topic" => {
            if let Some(peer) = c.peers.remove(&topic) {
                if let Some(key) = marks::peer_key(&peer.id) {
                    marks::unsubscribe(c, &key).await;
                }
                c.notes.unwatch(&topic);
                c.reply(wire::ctrl(id, code::OK).topic(&topic));
            } else if c.topics.contains_key(&topic) || topic == "me" || topic == "fnd" {
                c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(&topic));
            } else {
                c.reply(wire::ctrl(id, code::MUST_ATTACH).topic(&topic));
            }
        }
        "cred" | "user" => c.reply(wire::ctrl(id, code::NOT_IMPLEMENTED).topic(&topic)),
        _ => c.reply(wire::ctrl(id, code::MALFORMED).topic(&topic)),
    }
}

/// `{del what:"sub" user}` on a group.
async fn evict(c: &mut Conn, del: Del) {
    let id = del.id.as_deref();
    let topic = del.topic.as_str();
    let Some(att) = c.topics.get(topic) else {
        let answer = if c.peers.contains_key(topic) {
            code::PERMISSION_DENIED
        } else {
            code::MUST_ATTACH
        };
        c.reply(wire::ctrl(id, answer).topic(topic));
        return;
    };
    let Some(user) = del.user.as_deref().filter(|u| !u.is_empty()) else {
        c.reply(wire::ctrl(id, code::MALFORMED).topic(topic));
        return;
    };
    if !att.is_op(&c.sid) {
        c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(topic));
        return;
    }
    let nicks: Vec<String> = att
        .members
        .values()
        .filter(|m| m.uid == user)
        .map(|m| m.nick.clone())
        .collect();
    if nicks.is_empty() {
        c.reply(wire::ctrl(id, code::NOT_FOUND).topic(topic));
        return;
    }
    let room = att.name.clone();
    for nick in nicks {
        let body = IntentBody::Kick {
            room: room.clone(),
            target: nick,
            reason: None,
        };
        if c.intent(body, None).await.is_none() {
            c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(topic));
            return;
        }
    }
    c.reply(wire::ctrl(id, code::OK).topic(topic));
}

/// The numbers a `{del}` names, as `[low, hi)` pairs; `None` if malformed
/// or too many.
fn ranges_of(del: &Del) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for r in &del.delseq {
        let hi = r.hi.unwrap_or(r.low.saturating_add(1));
        if r.low == 0 || hi <= r.low {
            return None;
        }
        total = total.saturating_add(hi - r.low);
        out.push((r.low, hi));
    }
    (!out.is_empty() && total <= MAX_DELETE).then_some(out)
}

/// `{del what:"msg"}`.
async fn messages(c: &mut Conn, del: Del) {
    let id = del.id.as_deref();
    let topic = del.topic.clone();
    let Some(key) = data::state_key(c, &topic) else {
        let answer = if c.peers.contains_key(&topic) {
            // A guest's conversation: nothing of it is kept for them.
            code::PERMISSION_DENIED
        } else {
            code::MUST_ATTACH
        };
        c.reply(wire::ctrl(id, answer).topic(&topic));
        return;
    };
    let Some(ranges) = ranges_of(&del) else {
        c.reply(wire::ctrl(id, code::MALFORMED).topic(&topic));
        return;
    };
    if !del.hard {
        marks::hide(c, &key, ranges).await;
        let clear = bus::now_ms().max(0) as u64;
        c.reply(wire::ctrl(id, code::OK).topic(&topic).param("del", clear));
        return;
    }
    let Some(att) = c.topics.get(&topic) else {
        c.reply(wire::ctrl(id, code::NOT_IMPLEMENTED).topic(&topic));
        return;
    };
    let room = att.name.clone();
    let query = HistoryQuery::Numbered {
        target: HistoryTarget::Room {
            room: att.room.clone(),
        },
        ranges: ranges
            .iter()
            .map(|(low, hi)| SeqRange {
                low: *low,
                hi: Some(*hi),
            })
            .collect(),
        limit: MAX_DELETE as u32,
    };
    let deleting = Deleting {
        id: del.id.clone(),
        topic: topic.clone(),
        room,
        pending: 0,
        clear: 0,
    };
    if c.ask_history(query, Wait::DelLookup(deleting))
        .await
        .is_none()
    {
        c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(&topic));
    }
}

/// History's answer: the messages to redact, if this user may.
pub async fn on_lookup(c: &mut Conn, mut d: Deleting, body: HistoryReplyBody) {
    let id = d.id.clone();
    let id = id.as_deref();
    let HistoryReplyBody::Messages { items, .. } = body else {
        tracing::debug!(?body, "tinode: history answer to a delete");
        c.reply(wire::ctrl(id, code::INTERNAL).topic(&d.topic));
        return;
    };
    let op = c.topics.get(&d.topic).is_some_and(|a| a.is_op(&c.sid));
    let account = c.user.as_ref().map(|u| u.account.clone());
    let intents: Vec<IntentBody> = items
        .iter()
        .filter(|i| i.mseq.is_some())
        .map(|i| crate::redaction::intent(&d.room, i, &c.sid, account.as_deref(), None))
        .collect();
    if intents.is_empty() {
        c.reply(wire::ctrl(id, code::NOT_FOUND).topic(&d.topic));
        return;
    }
    // All or nothing: someone else's message needs an operator.
    let others = intents
        .iter()
        .any(|i| matches!(i, IntentBody::Redact { own: false, .. }));
    if others && !op {
        c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(&d.topic));
        return;
    }
    let key = bus::new_id();
    d.pending = intents.len();
    c.deletions.insert(key.clone(), d);
    for body in intents {
        if c.intent(body, Some(Wait::Redact(key.clone())))
            .await
            .is_none()
        {
            failed(c, &key, code::UNAVAILABLE);
            return;
        }
    }
}

/// A redaction of the request `key` was refused or timed out: the request
/// is answered with `answer` (once; later events of it are only shown).
pub fn failed(c: &mut Conn, key: &str, answer: (u16, &str)) {
    if let Some(d) = c.deletions.remove(key) {
        c.reply(wire::ctrl(d.id.as_deref(), answer).topic(&d.topic));
    }
}

/// A redaction event in an attached group.
pub fn on_event(c: &mut Conn, topic: &str, ev: &RoomEvent) {
    let EventBody::Redact { mseq, .. } = &ev.body else {
        return;
    };
    if let Some(Wait::Redact(key)) = c.take_wait(&ev.id) {
        let done = c.deletions.get_mut(&key).map(|d| {
            d.pending = d.pending.saturating_sub(1);
            d.clear = d.clear.max(ev.seq);
            d.pending == 0
        });
        if done == Some(true) {
            if let Some(d) = c.deletions.remove(&key) {
                c.reply(
                    wire::ctrl(d.id.as_deref(), code::OK)
                        .topic(&d.topic)
                        .param("del", d.clear),
                );
            }
        }
        return;
    }
    let Some(seq) = mseq else {
        return;
    };
    c.send(json!({"pres": {
        "topic": topic, "src": ids::actor_uid(&ev.actor), "what": "del",
        "delseq": [{"low": seq}], "clear": ev.seq,
    }}));
}
