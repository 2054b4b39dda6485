//! The history contract: what the history service is given to keep, how it
//! is asked for it, and how it answers. Protocol-neutral: IRC CHATHISTORY
//! today, XMPP MAM and Tinode `get data` later, all map onto these types.
//!
//! ```text
//!  router ──RoomEvent──▶ chat.rooms ──(room.*)──▶ history.events ─┐
//!  gateway ──DirectLog──▶ "" / history.direct ────────────────────┤ history-service
//!  gateway ──HistoryRequest──▶ "" / history.requests ─────────────┘   │
//!        ◀── session.<sid> (reply_to) ◀── HistoryReply ───────────────┘
//! ```
//!
//! * A **conversation** is a room (identity: its folded name) or a pair of
//!   participants exchanging direct messages. A participant is identified by
//!   its account when logged in, otherwise by its session
//!   ([`participant_key`]): a guest's direct-message history lives only as
//!   long as its session, and a later guest with the same nick cannot read it.
//! * Room items are keyed by the router's `seq` and `id`; direct-message
//!   items get a per-conversation `seq` from the history service, in the
//!   order it consumes them. Storing is idempotent by (conversation, id).
//! * Room history is readable by the room's current members (the router's
//!   room record in NATS is the authority); direct-message history by its
//!   two participants.

use serde::{Deserialize, Serialize};

use crate::names::fold;
use crate::schema::{Actor, ClientTags, EventBody, MessageKind};

/// A direct message, copied to the history service by the sender's gateway
/// (default exchange, routing key [`crate::topology::HISTORY_DIRECT_QUEUE`]),
/// confirmed before the sender is told the message was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectLog {
    #[serde(default = "crate::schema::v1")]
    pub v: u32,
    /// The message id: the same as the live [`crate::schema::Direct`]'s and
    /// the sender's echo's.
    pub id: String,
    pub at: i64,
    pub from: Actor,
    pub to: Peer,
    pub kind: MessageKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "ClientTags::is_empty")]
    pub tags: ClientTags,
    /// No session of the recipient received it live: keep it for delivery
    /// when a session of `to.account` next logs in (then `to.account` is set).
    #[serde(default)]
    pub offline: bool,
}

/// The other side of a direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The nick it was addressed to (display form).
    pub nick: String,
    /// The recipient's account, if it is logged in (or, offline, the account
    /// the nick names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The recipient's session, when delivered live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// A direct message the history service has stored and numbered, published
/// on NATS (core, not kept) to [`numbered_subject`] of each participant
/// right after the commit: a gateway that shows live direct messages with
/// their number (Tinode `{data seq}` and `{ctrl params.seq}`) learns it
/// here, the same number that paging the conversation finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectNumbered {
    #[serde(default = "crate::schema::v1")]
    pub v: u32,
    /// The message id.
    pub id: String,
    /// Its seq in the conversation, which is also its message number.
    pub seq: u64,
}

/// The NATS subject of [`DirectNumbered`] signals for one participant
/// ([`participant_key`]).
pub fn numbered_subject(prefix: &str, participant: &str) -> String {
    format!(
        "{prefix}.history.numbered.{}",
        crate::names::escape(participant)
    )
}

/// How a participant of a direct conversation is identified in history:
/// `a:<folded account>` when logged in, else `s:<sid>`.
pub fn participant_key(account: Option<&str>, sid: &str) -> String {
    match account {
        Some(a) => format!("a:{}", fold(a)),
        None => format!("s:{sid}"),
    }
}

/// A question to the history service, published to the default exchange with
/// routing key [`crate::topology::HISTORY_REQUESTS_QUEUE`]. As with auth
/// requests, the AMQP `reply_to` names the caller's session queue,
/// `correlation_id` is `id`, and the answer is a [`HistoryReply`] with the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    #[serde(default = "crate::schema::v1")]
    pub v: u32,
    pub id: String,
    pub requester: Requester,
    pub body: HistoryQuery,
}

/// Who asks: decides what it may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub sid: String,
    pub nick: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl Requester {
    pub fn participant_key(&self) -> String {
        participant_key(self.account.as_deref(), &self.sid)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "snake_case")]
pub enum HistoryQuery {
    /// A page of one conversation, always answered oldest first.
    Fetch {
        target: HistoryTarget,
        selector: Selector,
        /// At most this many items (the service caps it at its own maximum).
        limit: u32,
        /// Include joins, parts, kicks, quits, nick, topic and mode changes
        /// (IRC `draft/event-playback`); otherwise messages only.
        #[serde(default)]
        events: bool,
    },
    /// The conversations with activity between two instants (ms), most
    /// recent last: rooms the requester is in and its direct conversations.
    Targets {
        from: i64,
        to: i64,
        limit: u32,
        /// Folded names of the rooms the requester is in (the gateway knows).
        #[serde(default)]
        rooms: Vec<String>,
    },
    /// Direct messages kept for the requester's account while it had no
    /// session, oldest first. Not removed until [`HistoryQuery::AckPending`].
    Pending { limit: u32 },
    /// The requester's gateway showed these pending messages (by id).
    AckPending { ids: Vec<String> },
    /// Messages of one conversation by message number (Tinode `get data`):
    /// those whose `mseq` lies in any of `ranges`, the newest `limit` of
    /// them, answered oldest first as [`HistoryReplyBody::Messages`].
    Numbered {
        target: HistoryTarget,
        ranges: Vec<SeqRange>,
        limit: u32,
    },
}

/// Message numbers `low..hi` (`hi` exclusive); without `hi`, `low` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    pub low: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hi: Option<u64>,
}

impl SeqRange {
    /// The exclusive upper end.
    pub fn end(&self) -> u64 {
        self.hi.unwrap_or(self.low.saturating_add(1))
    }
}

/// Which conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryTarget {
    /// A room, by name (folded by the service).
    Room { room: String },
    /// The requester's direct conversation with `peer` (an account name or,
    /// for a guest peer, the nick it used).
    Direct { peer: String },
}

/// A point in a conversation. Exclusive in every selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Anchor {
    Seq(u64),
    /// A message id. Unknown ids select nothing (an empty page).
    Id(String),
    /// Milliseconds since the epoch.
    Time(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "sel", rename_all = "snake_case")]
pub enum Selector {
    /// The newest `limit` items, only those after `after` if given.
    Latest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Anchor>,
    },
    /// The `limit` items just before `anchor`.
    Before { anchor: Anchor },
    /// The `limit` items just after `anchor`.
    After { anchor: Anchor },
    /// Up to `limit` items centred on `anchor` (the anchor item included if
    /// it exists: about half before, half after).
    Around { anchor: Anchor },
    /// Items strictly between `start` and `end`. If `start` is older than
    /// `end`, the `limit` items just after `start`; otherwise the `limit`
    /// items just before `start` (IRC CHATHISTORY BETWEEN).
    Between { start: Anchor, end: Anchor },
}

/// The answer, published to the default exchange with the request's
/// `reply_to` as routing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryReply {
    #[serde(default = "crate::schema::v1")]
    pub v: u32,
    /// The request's id.
    pub id: String,
    pub body: HistoryReplyBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum HistoryReplyBody {
    Messages {
        target: HistoryTarget,
        /// Display name: the room's, or the peer's latest nick.
        name: String,
        items: Vec<HistoryItem>,
    },
    Targets {
        items: Vec<TargetSummary>,
    },
    Pending {
        items: Vec<HistoryItem>,
    },
    Acked {
        count: u64,
    },
    Failure {
        code: HistoryError,
    },
}

/// One stored item, as the router or the sender's gateway described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Position in its conversation (rooms: the router's seq).
    pub seq: u64,
    /// The message number (rooms: [`crate::schema::RoomEvent::mseq`];
    /// direct conversations: `seq`, every item being a message). `None`
    /// for joins, parts and other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mseq: Option<u64>,
    /// Message id (IRC `msgid`, XMPP `stanza-id`).
    pub id: String,
    pub at: i64,
    pub from: Actor,
    /// Direct messages: the nick it was addressed to. Rooms: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Rooms: the room's display name. Direct messages: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// What happened; direct messages are always [`EventBody::Message`].
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub target: HistoryTarget,
    pub name: String,
    /// The newest item's time (ms).
    pub latest_at: i64,
    /// Direct conversations: the newest message number (every item is a
    /// message). Rooms: the newest seq.
    #[serde(default)]
    pub latest_seq: u64,
    /// Direct conversations: the peer had no account (`peer` is a nick).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryError {
    /// No such conversation, or the requester may not read it (the two are
    /// not told apart, so existence does not leak).
    InvalidTarget,
    Malformed,
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{BusMessage, SCHEMA_VERSION};

    #[test]
    fn request_round_trips() {
        let msg = BusMessage::HistoryRequest(HistoryRequest {
            v: SCHEMA_VERSION,
            id: "q1".into(),
            requester: Requester {
                sid: "s1".into(),
                nick: "alice".into(),
                account: Some("Alice".into()),
            },
            body: HistoryQuery::Fetch {
                target: HistoryTarget::Room { room: "Ops".into() },
                selector: Selector::Between {
                    start: Anchor::Id("m1".into()),
                    end: Anchor::Time(5),
                },
                limit: 100,
                events: true,
            },
        });
        let json = msg.to_json();
        assert_eq!(BusMessage::from_json(&json).unwrap(), msg);
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""t":"history_request""#), "{text}");
        assert!(
            text.contains(r#""start":{"by":"id","value":"m1"}"#),
            "{text}"
        );
    }

    #[test]
    fn participants_are_accounts_or_sessions() {
        assert_eq!(participant_key(Some("Bob"), "s1"), "a:bob");
        assert_eq!(participant_key(None, "s1"), "s:s1");
    }
}
