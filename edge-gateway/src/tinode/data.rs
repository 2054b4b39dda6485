//! Messages: `{pub}` as room messages, room messages as `{data}`, history
//! (`{get what:"data"}`) from the history service, and `{note}`.
//!
//! A message's Tinode `seq` is the router's message number (`mseq`): every
//! PRIVMSG and NOTICE of the room counts, from whichever protocol, so a
//! Tinode client, an IRC client (`msgid`) and an XMPP client (`stanza-id`)
//! see one sequence. Tinode content that is not plain text (Drafty) and
//! `head` travel with the message as `tinode/content` and `tinode/head`
//! tags, which IRC never shows; IRC and XMPP see the Drafty text.

use bus::history::{HistoryError, HistoryQuery, HistoryReplyBody, HistoryTarget, SeqRange};
use bus::schema::{Actor, ClientTags, EventBody, IntentBody, MessageKind, RoomEvent};
use serde_json::{json, Map, Value};

use super::conn::{Conn, Wait};
use super::notes::Signal;
use super::wire::{self, code, DataQuery, Note, Pub};
use super::{ids, marks, p2p};

const TAG_CONTENT: &str = "tinode/content";
const TAG_HEAD: &str = "tinode/head";
pub(super) const TAG_TYPING: &str = "+typing";

/// A `{pub}` waiting for its room event.
#[derive(Debug)]
pub struct Publishing {
    pub id: Option<String>,
    pub topic: String,
    pub noecho: bool,
}

/// A `{get what:"data"}` waiting for the history service.
#[derive(Debug)]
pub struct Fetching {
    pub id: Option<String>,
    pub topic: String,
}

/// The text IRC and XMPP see of Tinode content: a string as it is, Drafty
/// by its `txt`.
fn text_of(content: &Value) -> String {
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("txt")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    if text.trim().is_empty() {
        "(a message without text)".to_string()
    } else {
        text
    }
}

/// What a `{pub}` becomes on the platform: the text everyone sees, and
/// the tags that carry Tinode's content and head.
pub(super) fn carried(p: &Pub) -> (String, ClientTags) {
    let mut tags = ClientTags::new();
    if !p.content.is_string() {
        tags.insert(TAG_CONTENT.into(), p.content.to_string());
    }
    if let Some(head) = p.head.as_ref().filter(|h| !h.is_empty()) {
        tags.insert(TAG_HEAD.into(), Value::Object(head.clone()).to_string());
    }
    (text_of(&p.content), tags)
}

pub async fn on_pub(c: &mut Conn, p: Pub) {
    let id = p.id.clone();
    let topic = p.topic.clone();
    if topic == "me" || topic == "fnd" {
        c.reply(wire::ctrl(id.as_deref(), code::PERMISSION_DENIED).topic(&topic));
        return;
    }
    if c.peers.contains_key(&topic) {
        p2p::on_pub(c, p).await;
        return;
    }
    let Some(att) = c.topics.get(&topic) else {
        c.reply(wire::ctrl(id.as_deref(), code::MUST_ATTACH).topic(&topic));
        return;
    };
    if p.content.is_null() {
        c.reply(wire::ctrl(id.as_deref(), code::MALFORMED).topic(&topic));
        return;
    }
    let room = att.name.clone();
    let (text, tags) = carried(&p);
    let body = IntentBody::Message {
        room,
        kind: MessageKind::Privmsg,
        text,
        tags,
    };
    let wait = Wait::Pub(Publishing {
        id: p.id.clone(),
        topic: topic.clone(),
        noecho: p.noecho,
    });
    if c.intent(body, Some(wait)).await.is_none() {
        c.reply(wire::ctrl(id.as_deref(), code::UNAVAILABLE).topic(&topic));
    }
}

/// `{data}` for a message of a room or a one-to-one conversation.
pub(super) fn data_frame(
    topic: &str,
    from: &Actor,
    at: i64,
    seq: u64,
    text: &str,
    tags: &ClientTags,
) -> Value {
    let content = tags
        .get(TAG_CONTENT)
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .unwrap_or_else(|| Value::String(crate::text::me_of(text)));
    let mut d = Map::new();
    d.insert("topic".into(), topic.into());
    d.insert("from".into(), ids::actor_uid(from).into());
    d.insert("ts".into(), wire::ts(at).into());
    d.insert("seq".into(), seq.into());
    if let Some(head) = tags
        .get(TAG_HEAD)
        .and_then(|h| serde_json::from_str::<Value>(h).ok())
    {
        d.insert("head".into(), head);
    }
    d.insert("content".into(), content);
    json!({ "data": d })
}

/// A message event of an attached room.
pub fn on_message(c: &mut Conn, topic: &str, ev: &RoomEvent) {
    let EventBody::Message { kind, text, tags } = &ev.body else {
        return;
    };
    if *kind == MessageKind::Tagmsg {
        let from = ids::actor_uid(&ev.actor);
        // Typing of one's own other sessions is not shown.
        if tags.get(TAG_TYPING).map(String::as_str) == Some("active") && from != c.uid() {
            c.send(wire::info(topic, &from, "kp", None));
        }
        return;
    }
    let Some(seq) = ev.mseq else {
        return;
    };
    if let Some(att) = c.topics.get_mut(topic) {
        att.mseq = att.mseq.max(seq);
        att.touched = att.touched.max(ev.at);
    }
    let mut echo = true;
    if matches!(c.waiting(&ev.id), Some(Wait::Pub(_))) {
        if let Some(Wait::Pub(p)) = c.take_wait(&ev.id) {
            c.reply(
                wire::ctrl(p.id.as_deref(), code::ACCEPTED)
                    .topic(topic)
                    .param("seq", seq),
            );
            echo = !p.noecho;
        }
    }
    if echo {
        c.send(data_frame(topic, &ev.actor, ev.at, seq, text, tags));
    }
}

/// `{get what:"data"}`: by message number, from the history service.
pub async fn fetch(c: &mut Conn, id: Option<&str>, topic: &str, q: DataQuery) {
    let target = match (c.topics.get(topic), c.peers.get(topic)) {
        (Some(att), _) => HistoryTarget::Room {
            room: att.room.clone(),
        },
        (None, Some(peer)) => p2p::target(peer),
        (None, None) => return,
    };
    let ranges: Vec<SeqRange> = match &q.ranges {
        Some(rs) if !rs.is_empty() => rs
            .iter()
            .map(|r| SeqRange {
                low: r.low,
                hi: r.hi,
            })
            .collect(),
        _ => vec![SeqRange {
            low: q.since.unwrap_or(1),
            hi: Some(q.before.unwrap_or(u64::MAX)),
        }],
    };
    let limit = q
        .limit
        .filter(|l| *l > 0)
        .unwrap_or(c.cfg.default_data_limit)
        .min(c.cfg.max_data_limit);
    let query = HistoryQuery::Numbered {
        target,
        ranges,
        limit,
    };
    let wait = Wait::Data(Fetching {
        id: id.map(str::to_string),
        topic: topic.to_string(),
    });
    if c.ask_history(query, wait).await.is_none() {
        c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(topic));
    }
}

/// The key of an attached topic's stored state (see [`marks`]).
pub(super) fn state_key(c: &Conn, topic: &str) -> Option<String> {
    if let Some(att) = c.topics.get(topic) {
        return Some(marks::room_key(&att.room));
    }
    c.peers.get(topic).and_then(|p| marks::peer_key(&p.id))
}

pub fn on_history(c: &mut Conn, f: Fetching, body: HistoryReplyBody) {
    let id = f.id.as_deref();
    let topic = f.topic.as_str();
    match body {
        HistoryReplyBody::Messages { items, .. } => {
            let key = state_key(c, topic);
            let mut count = 0u64;
            // Tinode sends a page newest first.
            for item in items.iter().rev() {
                let (Some(seq), EventBody::Message { text, tags, .. }) = (item.mseq, &item.body)
                else {
                    continue;
                };
                if key.as_deref().is_some_and(|k| c.marks.hidden(k, seq)) {
                    continue;
                }
                c.send(data_frame(topic, &item.from, item.at, seq, text, tags));
                count += 1;
            }
            let ctrl = if count == 0 {
                wire::ctrl(id, code::NO_CONTENT)
            } else {
                wire::ctrl(id, code::DELIVERED).param("count", count)
            };
            c.reply(ctrl.topic(topic).param("what", "data"));
        }
        // A one-to-one conversation without messages yet is no
        // conversation to history: nothing to deliver.
        HistoryReplyBody::Failure {
            code: HistoryError::InvalidTarget,
        } if c.peers.contains_key(topic) => c.reply(
            wire::ctrl(id, code::NO_CONTENT)
                .topic(topic)
                .param("what", "data"),
        ),
        HistoryReplyBody::Failure {
            code: HistoryError::InvalidTarget,
        } => c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(topic)),
        other => {
            tracing::debug!(?other, "tinode: history answer");
            c.reply(wire::ctrl(id, code::INTERNAL).topic(topic));
        }
    }
}

/// `{note}`: never answered; invalid ones are dropped.
pub async fn on_note(c: &mut Conn, note: Note) {
    if c.peers.contains_key(&note.topic) {
        p2p::on_note(c, &note).await;
        return;
    }
    let Some(att) = c.topics.get(&note.topic) else {
        return;
    };
    let (room, name, last) = (att.room.clone(), att.name.clone(), att.mseq);
    match note.what.as_str() {
        "kp" | "kpa" | "kpv" => {
            let mut tags = ClientTags::new();
            tags.insert(TAG_TYPING.into(), "active".into());
            if let Some(actor) = c.platform.as_ref().map(|p| p.actor.clone()) {
                crate::typing::signal(&c.gw, &actor, &name, tags).await;
            }
        }
        "read" | "recv" => mark(c, &note, &marks::room_key(&room), &room, last).await,
        _ => {}
    }
}

/// A `read` / `recv` note on a topic whose newest number is `last`:
/// stored under `key` if it raises the marker, then signalled on
/// `channel` to the topic's other Tinode sessions.
pub(super) async fn mark(c: &mut Conn, note: &Note, key: &str, channel: &str, last: u64) {
    let seq = note.seq.unwrap_or(0);
    if !marks::note(c, key, &note.what, seq, last).await {
        return;
    }
    let signal = Signal {
        from: c.uid().to_string(),
        sid: c.sid.clone(),
        what: note.what.clone(),
        seq,
        topic: String::new(),
    };
    c.notes.publish(channel, &signal).await;
}

/// A marker from another session attached to the same room.
pub fn on_signal(c: &mut Conn, s: Signal) {
    let attached = c.topics.contains_key(&s.topic) || c.peers.contains_key(&s.topic);
    if s.sid == c.sid || !attached {
        return;
    }
    c.send(wire::info(&s.topic, &s.from, &s.what, Some(s.seq)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            sid: "s".into(),
            gateway: "g".into(),
            nick: "bob".into(),
            user: "bob".into(),
            host: "h".into(),
            realname: "r".into(),
            account: Some("bob".into()),
        }
    }

    #[test]
    fn drafty_travels_in_tags_and_irc_sees_its_text() {
        let drafty = json!({"txt": "hi there", "fmt": [{"at": 0, "len": 2, "tp": "ST"}]});
        assert_eq!(text_of(&drafty), "hi there");
        assert_eq!(text_of(&json!("plain")), "plain");
        assert_eq!(text_of(&json!({"ent": []})), "(a message without text)");
        let mut tags = ClientTags::new();
        tags.insert(TAG_CONTENT.into(), drafty.to_string());
        tags.insert(
            TAG_HEAD.into(),
            json!({"mime": "text/x-drafty"}).to_string(),
        );
        let d = data_frame("grpx", &actor(), 0, 5, "hi there", &tags);
        assert_eq!(d["data"]["content"], drafty);
        assert_eq!(d["data"]["head"]["mime"], "text/x-drafty");
        assert_eq!(d["data"]["from"], "usrbob");
        assert_eq!(d["data"]["seq"], 5);
    }

    #[test]
    fn irc_text_is_a_string_and_actions_read_as_me() {
        let d = data_frame(
            "grpx",
            &actor(),
            0,
            1,
            "\u{1}ACTION waves\u{1}",
            &ClientTags::new(),
        );
        assert_eq!(d["data"]["content"], "/me waves");
        assert!(d["data"].get("head").is_none());
    }
}
