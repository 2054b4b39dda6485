//! What is stored for each item, and how a [`HistoryItem`] is rebuilt from it.
//!
//! Pure functions (no database): which events are history at all, the
//! `kind` column's words, the searchable columns, and the `item` jsonb that
//! keeps the actor and body exactly as they travelled, so that a replayed
//! item carries the original msgid, time, hostmask and tags.

use bus::history::{participant_key, DirectLog, HistoryItem};
use bus::names::fold;
use bus::schema::{Actor, ClientTags, EventBody, MessageKind, RoomEvent};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `kind` values of chat messages proper (what `events = false` returns).
pub const MESSAGE_KINDS: [&str; 3] = ["message", "notice", "action"];

/// A PRIVMSG whose text is a CTCP ACTION (`\x01ACTION waves\x01`, IRC `/me`).
/// The closing `\x01` is optional, as many clients omit it.
pub fn is_action(text: &str) -> bool {
    match text.strip_prefix("\x01ACTION") {
        Some(rest) => rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\x01'),
        None => false,
    }
}

/// The stored kind of a chat message, or `None` for what is not history
/// (TAGMSG: typing notifications and reactions without text).
pub fn message_kind(kind: MessageKind, text: &str) -> Option<&'static str> {
    match kind {
        MessageKind::Privmsg if is_action(text) => Some("action"),
        MessageKind::Privmsg => Some("message"),
        MessageKind::Notice => Some("notice"),
        MessageKind::Tagmsg => None,
    }
}

/// The stored kind of a room event, or `None` if it is not kept.
pub fn event_kind(body: &EventBody) -> Option<&'static str> {
    Some(match body {
        EventBody::Message { kind, text, .. } => return message_kind(*kind, text),
        EventBody::Join => "join",
        EventBody::Part { .. } => "part",
        EventBody::Kick { .. } => "kick",
        EventBody::Quit { .. } => "quit",
        EventBody::Nick { .. } => "nick",
        EventBody::Away { .. } => "away",
        EventBody::Account { .. } => "account",
        EventBody::Topic { .. } => "topic",
        EventBody::Mode { .. } => "mode",
        EventBody::Redact { .. } => "redact",
        // States and notices, not something said or done in the room.
        EventBody::Realname { .. } | EventBody::Host { .. } | EventBody::Invite { .. } => {
            return None
        }
    })
}

/// The human-readable text of an event, for the `body` column.
fn event_text(body: &EventBody) -> Option<String> {
    match body {
        EventBody::Message { text, .. } => Some(text.clone()),
        EventBody::Join => None,
        EventBody::Part { reason } | EventBody::Kick { reason, .. } => reason.clone(),
        EventBody::Quit { reason, .. } => Some(reason.clone()),
        EventBody::Nick { new, .. } => Some(new.clone()),
        EventBody::Away { message, .. } => message.clone(),
        EventBody::Host { user, host, .. } => Some(format!("{user}@{host}")),
        EventBody::Account { account, .. } => account.clone(),
        EventBody::Topic { topic } => Some(topic.clone()),
        EventBody::Mode { changes } => Some(
            changes
                .iter()
                .map(|c| {
                    let sign = if c.add { '+' } else { '-' };
                    match &c.arg {
                        Some(arg) => format!("{sign}{} {arg}", c.mode),
                        None => format!("{sign}{}", c.mode),
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        EventBody::Redact { reason, .. } => reason.clone(),
        EventBody::Realname { realname, .. } => Some(realname.clone()),
        EventBody::Invite { target_nick, .. } => Some(target_nick.clone()),
    }
}

fn tags_json(tags: &ClientTags) -> Option<Value> {
    if tags.is_empty() {
        None
    } else {
        serde_json::to_value(tags).ok()
    }
}

/// The `item` jsonb: what, beside seq, id and time, a [`HistoryItem`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    pub from: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub body: EventBody,
}

impl StoredItem {
    /// The item of a stored row (`mseq`: its `mseq` column).
    pub fn into_history(
        self,
        seq: i64,
        mseq: Option<i64>,
        id: String,
        at: DateTime<Utc>,
    ) -> HistoryItem {
        HistoryItem {
            seq: u64::try_from(seq).unwrap_or(0),
            mseq: mseq.and_then(|m| u64::try_from(m).ok()),
            id,
            at: at.timestamp_millis(),
            from: self.from,
            to: self.to,
            room: self.room,
            body: self.body,
        }
    }
}

/// One `messages` row, before its conversation and seq are known.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRow {
    pub msgid: String,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub sender_account: Option<String>,
    pub sender_nick: String,
    pub body: Option<String>,
    pub tags: Option<Value>,
    pub item: Value,
}

/// The instants a stored or requested time is clamped to: years 1 to 9999,
/// well inside what both chrono and PostgreSQL represent, so a far-off
/// bound in a request (`i64::MAX`) means "the end of time", not an error.
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the epoch as a timestamp, clamped to years 1..=9999.
pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms.clamp(MIN_MS, MAX_MS))
        .single()
        .unwrap_or_default()
}

fn item_json(item: &StoredItem) -> Value {
    serde_json::to_value(item).expect("stored items always serialise")
}

/// The row of a room event, or `None` if the event is not history.
pub fn room_row(event: &RoomEvent) -> Option<NewRow> {
    let kind = event_kind(&event.body)?;
    let tags = match &event.body {
        EventBody::Message { tags, .. } => tags_json(tags),
        _ => None,
    };
    Some(NewRow {
        msgid: event.id.clone(),
        at: ms_to_time(event.at),
        kind,
        sender_account: event.actor.account.clone(),
        sender_nick: event.actor.nick.clone(),
        body: event_text(&event.body),
        tags,
        item: item_json(&StoredItem {
            from: event.actor.clone(),
            to: None,
            room: Some(event.name.clone()),
            body: event.body.clone(),
        }),
    })
}

/// The conversation of a direct message: its two participants, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectKey {
    /// `dm:<peer_a>|<peer_b>`.
    pub key: String,
    pub peer_a: String,
    pub peer_b: String,
    pub nick_a: String,
    pub nick_b: String,
}

/// The conversation key of a room.
pub fn room_key(room: &str) -> String {
    format!("room:{}", fold(room))
}

/// The participants of a direct message, or `None` if the recipient is
/// named by neither account nor session (such a log cannot be filed).
pub fn direct_key(log: &DirectLog) -> Option<DirectKey> {
    let sender = participant_key(log.from.account.as_deref(), &log.from.sid);
    let recipient = match (&log.to.account, &log.to.sid) {
        (Some(account), _) => participant_key(Some(account), ""),
        (None, Some(sid)) if !sid.is_empty() => participant_key(None, sid),
        _ => return None,
    };
    let (a, b) = if sender <= recipient {
        (
            (sender, log.from.nick.clone()),
            (recipient, log.to.nick.clone()),
        )
    } else {
        (
            (recipient, log.to.nick.clone()),
            (sender, log.from.nick.clone()),
        )
    };
    Some(DirectKey {
        key: format!("dm:{}|{}", a.0, b.0),
        peer_a: a.0,
        peer_b: b.0,
        nick_a: a.1,
        nick_b: b.1,
    })
}

/// The row of a direct message, or `None` for a TAGMSG.
pub fn direct_row(log: &DirectLog) -> Option<NewRow> {
    let kind = message_kind(log.kind, &log.text)?;
    Some(NewRow {
        msgid: log.id.clone(),
        at: ms_to_time(log.at),
        kind,
        sender_account: log.from.account.clone(),
        sender_nick: log.from.nick.clone(),
        body: Some(log.text.clone()),
        tags: tags_json(&log.tags),
        item: item_json(&StoredItem {
            from: log.from.clone(),
            to: Some(log.to.nick.clone()),
            room: None,
            body: EventBody::Message {
                kind: log.kind,
                text: log.text.clone(),
                tags: log.tags.clone(),
            },
        }),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bus::history::Peer;
    use bus::schema::{ModeChange, SCHEMA_VERSION};

    pub fn actor(nick: &str, sid: &str, account: Option<&str>) -> Actor {
        Actor {
            sid: sid.into(),
            gateway: "gw-a".into(),
            nick: nick.into(),
            user: "u".into(),
            host: "127.0.0.1".into(),
            realname: "R".into(),
            account: account.map(str::to_string),
        }
    }

    #[test]
    fn times_are_clamped_not_refused() {
        assert_eq!(ms_to_time(1_234).timestamp_millis(), 1_234);
        assert_eq!(ms_to_time(i64::MAX).timestamp_millis(), MAX_MS);
        assert_eq!(ms_to_time(i64::MIN).timestamp_millis(), MIN_MS);
    }

    #[test]
    fn actions_are_ctcp_action_only() {
        assert!(is_action("\x01ACTION waves\x01"));
        assert!(is_action("\x01ACTION waves"));
        assert!(is_action("\x01ACTION\x01"));
        assert!(!is_action("\x01ACTIONS\x01"));
        assert!(!is_action("\x01VERSION\x01"));
        assert!(!is_action("ACTION waves"));
        assert_eq!(
            message_kind(MessageKind::Privmsg, "\x01ACTION x\x01"),
            Some("action")
        );
        assert_eq!(message_kind(MessageKind::Privmsg, "hi"), Some("message"));
        assert_eq!(
            message_kind(MessageKind::Notice, "\x01ACTION x\x01"),
            Some("notice")
        );
        assert_eq!(message_kind(MessageKind::Tagmsg, ""), None);
    }

    #[test]
    fn every_event_kind_has_its_word() {
        let cases = [
            (EventBody::Join, "join"),
            (EventBody::Part { reason: None }, "part"),
            (
                EventBody::Kick {
                    target_sid: "s".into(),
                    target_nick: "n".into(),
                    reason: None,
                },
                "kick",
            ),
            (
                EventBody::Quit {
                    reason: "bye".into(),
                    event: "e".into(),
                },
                "quit",
            ),
            (
                EventBody::Nick {
                    new: "x".into(),
                    event: "e".into(),
                },
                "nick",
            ),
            (
                EventBody::Away {
                    message: None,
                    event: "e".into(),
                },
                "away",
            ),
            (
                EventBody::Account {
                    account: None,
                    event: "e".into(),
                },
                "account",
            ),
            (EventBody::Topic { topic: "t".into() }, "topic"),
            (EventBody::Mode { changes: vec![] }, "mode"),
            (
                EventBody::Redact {
                    msgid: "m".into(),
                    mseq: None,
                    reason: None,
                },
                "redact",
            ),
        ];
        for (body, word) in cases {
            assert_eq!(event_kind(&body), Some(word));
            assert!(!MESSAGE_KINDS.contains(&word));
        }
    }

    #[test]
    fn room_rows_keep_the_whole_event() {
        let mut tags = ClientTags::new();
        tags.insert("+draft/reply".into(), "m0".into());
        let event = RoomEvent {
            v: SCHEMA_VERSION,
            room: "ops".into(),
            name: "Ops".into(),
            seq: 7,
            mseq: None,
            id: "m7".into(),
            at: 1_763_787_600_123,
            actor: actor("alice", "s1", Some("Alice")),
            body: EventBody::Message {
                kind: MessageKind::Privmsg,
                text: "hello".into(),
                tags,
            },
            intent_at: None,
        };
        let row = room_row(&event).unwrap();
        assert_eq!(row.kind, "message");
        assert_eq!(row.sender_account.as_deref(), Some("Alice"));
        assert_eq!(row.body.as_deref(), Some("hello"));
        assert_eq!(row.tags, Some(serde_json::json!({"+draft/reply": "m0"})));
        let stored: StoredItem = serde_json::from_value(row.item).unwrap();
        let item = stored.into_history(7, Some(3), row.msgid, row.at);
        assert_eq!(item.mseq, Some(3));
        assert_eq!(item.at, event.at);
        assert_eq!(item.id, "m7");
        assert_eq!(item.room.as_deref(), Some("Ops"));
        assert_eq!(item.to, None);
        assert_eq!(item.from, event.actor);
        assert_eq!(item.body, event.body);

        let typing = RoomEvent {
            body: EventBody::Message {
                kind: MessageKind::Tagmsg,
                text: String::new(),
                tags: ClientTags::new(),
            },
            ..event.clone()
        };
        assert!(room_row(&typing).is_none());
        let mode = RoomEvent {
            body: EventBody::Mode {
                changes: vec![
                    ModeChange {
                        add: true,
                        mode: 'o',
                        arg: Some("bob".into()),
                    },
                    ModeChange {
                        add: false,
                        mode: 'm',
                        arg: None,
                    },
                ],
            },
            ..event
        };
        assert_eq!(room_row(&mode).unwrap().body.as_deref(), Some("+o bob -m"));
    }

    pub fn dm(
        id: &str,
        from: Actor,
        to_nick: &str,
        to_account: Option<&str>,
        to_sid: Option<&str>,
    ) -> DirectLog {
        DirectLog {
            v: SCHEMA_VERSION,
            id: id.into(),
            at: 1_000,
            from,
            to: Peer {
                nick: to_nick.into(),
                account: to_account.map(str::to_string),
                sid: to_sid.map(str::to_string),
            },
            kind: MessageKind::Privmsg,
            text: format!("text of {id}"),
            tags: ClientTags::new(),
            offline: false,
        }
    }

    #[test]
    fn direct_keys_are_the_sorted_participants() {
        let a = dm(
            "m1",
            actor("Zed", "s9", Some("Zed")),
            "amy",
            Some("Amy"),
            Some("s1"),
        );
        let k = direct_key(&a).unwrap();
        assert_eq!(k.key, "dm:a:amy|a:zed");
        assert_eq!((k.nick_a.as_str(), k.nick_b.as_str()), ("amy", "Zed"));
        // The same pair the other way round is the same conversation.
        let b = dm(
            "m2",
            actor("amy", "s1", Some("AMY")),
            "Zed",
            Some("zed"),
            None,
        );
        assert_eq!(direct_key(&b).unwrap().key, k.key);
        // Guests are their sessions.
        let g = dm("m3", actor("guest", "s5", None), "amy", None, Some("s1"));
        assert_eq!(direct_key(&g).unwrap().key, "dm:s:s1|s:s5");
        let g2 = dm("m4", actor("guest", "s5", None), "amy", Some("amy"), None);
        assert_eq!(direct_key(&g2).unwrap().key, "dm:a:amy|s:s5");
        // Nobody to file it under.
        let lost = dm("m5", actor("guest", "s5", None), "amy", None, None);
        assert!(direct_key(&lost).is_none());
    }

    #[test]
    fn direct_rows_rebuild_with_the_recipient() {
        let log = dm(
            "m1",
            actor("bob", "s2", None),
            "Alice",
            Some("alice"),
            Some("s1"),
        );
        let row = direct_row(&log).unwrap();
        let stored: StoredItem = serde_json::from_value(row.item).unwrap();
        let item = stored.into_history(3, Some(3), row.msgid, row.at);
        assert_eq!(item.to.as_deref(), Some("Alice"));
        assert_eq!(item.room, None);
        assert_eq!(item.seq, 3);
        assert_eq!(
            item.body,
            EventBody::Message {
                kind: MessageKind::Privmsg,
                text: "text of m1".into(),
                tags: ClientTags::new()
            }
        );
    }
}
