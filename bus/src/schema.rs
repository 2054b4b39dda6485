//! The wire schema: everything that travels over RabbitMQ, as JSON.
//!
//! Every AMQP message body is one [`BusMessage`], internally tagged by `"t"`
//! and carrying a schema version `"v"` ([`SCHEMA_VERSION`]). A consumer that
//! meets a version it does not know rejects the message (without requeue)
//! and logs it, rather than guessing.
//!
//! The schema is protocol-neutral: the router speaks in rooms, members,
//! modes and typed error codes; each gateway renders them in its protocol's
//! words (IRC numerics, XMPP stanzas, Tinode `ctrl` codes).
//!
//! Flow, in short (see `docs/architecture.md`):
//!
//! * gateway → `chat.intents` (partition key) → router: [`Intent`]
//! * router → `chat.rooms` (`room.<escaped>`) → gateway queues: [`RoomEvent`]
//! * router → default exchange (`gateway.<id>`) → one gateway queue:
//!   [`SessionReply`], ordered after the room events the router published
//!   before it on the same channel (so NAMES follows its JOIN)
//! * anyone → `chat.direct` (`session.<sid>`) → a per-session queue: [`Direct`]
//! * history: [`DirectLog`], [`HistoryRequest`], [`HistoryReply`], defined
//!   with the rest of the history contract in [`crate::history`]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::history::{DirectLog, HistoryReply, HistoryRequest};
pub use crate::roster::{Notice, RosterItem, RosterPush, Subscription, SubscriptionAction};

/// The version of this schema. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

pub(crate) fn v1() -> u32 {
    SCHEMA_VERSION
}

/// Any message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum BusMessage {
    Intent(Intent),
    Event(RoomEvent),
    Reply(SessionReply),
    Direct(Direct),
    AuthRequest(AuthRequest),
    AuthReply(AuthReply),
    DirectLog(DirectLog),
    HistoryRequest(HistoryRequest),
    HistoryReply(HistoryReply),
}

impl BusMessage {
    pub fn version(&self) -> u32 {
        match self {
            BusMessage::Intent(m) => m.v,
            BusMessage::Event(m) => m.v,
            BusMessage::Reply(m) => m.v,
            BusMessage::Direct(m) => m.v,
            BusMessage::AuthRequest(m) => m.v,
            BusMessage::AuthReply(m) => m.v,
            BusMessage::DirectLog(m) => m.v,
            BusMessage::HistoryRequest(m) => m.v,
            BusMessage::HistoryReply(m) => m.v,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("bus messages always serialise")
    }

    /// Decodes a message and checks its version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SchemaError> {
        let msg: BusMessage = serde_json::from_slice(bytes)?;
        if msg.version() != SCHEMA_VERSION {
            return Err(SchemaError::Version(msg.version()));
        }
        Ok(msg)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("malformed bus message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported schema version {0}")]
    Version(u32),
}

/// Who acts: a snapshot of a session's identity, taken by its gateway when
/// it publishes the intent. The router stores it as the member's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Session id: names the per-session queue `session.<sid>`.
    pub sid: String,
    /// Gateway id: names the gateway queue `gateway.<gateway>`.
    pub gateway: String,
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    /// The logged-in account, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl Actor {
    /// `nick!user@host`, the IRC hostmask ban masks are matched against.
    pub fn hostmask(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.host)
    }
}

/// Kinds of chat message, shared by rooms and direct messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Privmsg,
    Notice,
    /// A message with tags only (IRCv3 TAGMSG), e.g. typing notifications.
    Tagmsg,
}

/// Client-only message tags (`+typing`, `+draft/reply`…) carried verbatim,
/// keys with their leading `+`, exactly as the client sent them.
pub type ClientTags = BTreeMap<String, String>;

/// The one server-set key in [`ClientTags`]: present (empty value) on a
/// message from a session in bot mode (IRC user mode `+B`), so that every
/// gateway, and history played back, can mark it (IRCv3 `bot` tag). A
/// client cannot forge it: gateways only take `+` keys from clients.
pub const BOT_TAG: &str = "bot";

/// One channel mode change: `+o alice` is `{add: true, mode: 'o', arg: Some("alice")}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    pub add: bool,
    pub mode: char,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
}

// ---------------------------------------------------------------------------
// Intents: gateway -> router
// ---------------------------------------------------------------------------

/// A client's request about a room, published by a gateway to `chat.intents`
/// with the routing key of the room's partition
/// ([`crate::names::partition_of`] of the folded room name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    #[serde(default = "v1")]
    pub v: u32,
    /// Unique id. The room event it causes (if any) uses it as message id, so
    /// a redelivered intent produces the same event again, never a new one.
    pub id: String,
    /// When the gateway received it (ms since the epoch).
    pub at: i64,
    pub actor: Actor,
    pub body: IntentBody,
    /// Ask for a [`Reply::Done`] once everything the intent caused has been
    /// published: an IRC client's labeled command (IRCv3 labeled-response)
    /// is answered only when its gateway knows the response is complete.
    /// The reply goes to the sender's gateway queue on the channel that
    /// published the events and replies, so it arrives after them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub done: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum IntentBody {
    /// Join (creating the room if it does not exist: its creator gets ops).
    /// `room` is the name as the client wrote it, without protocol prefix
    /// (`ops` for IRC `#ops`).
    Join {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    Part {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A message to the room's members.
    Message {
        room: String,
        kind: MessageKind,
        text: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: ClientTags,
    },
    /// Query (`topic: None`) or set (`Some`, possibly empty to clear) the topic.
    Topic {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// Ask for the member list: answered with [`Reply::Names`].
    Names { room: String },
    /// Ask for the members with details: answered with [`Reply::Who`].
    Who { room: String },
    /// Change modes, or with no changes query them ([`Reply::Modes`]).
    /// `+b` with no argument asks for the ban list ([`Reply::BanList`]).
    Mode {
        room: String,
        changes: Vec<ModeChange>,
    },
    /// Remove a member (by nick) from the room.
    Kick {
        room: String,
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Invite a session (already resolved by the gateway from a nick) to the
    /// room. The router checks rights, remembers the invitation (it lets the
    /// target past `+i`), delivers [`DirectBody::Invite`] to the target's
    /// session queue and answers the inviter with [`Reply::Inviting`].
    Invite { room: String, target: Actor },
    /// A change to the member that concerns every room it is in (nick, away,
    /// quit). The gateway publishes one such intent per room the session is
    /// in, all with the same `event` id, so a recipient who shares several
    /// rooms with the member can show the change once.
    Member {
        room: String,
        event: String,
        change: MemberChange,
    },
    /// Delete ("redact") the room message `msgid` for everyone: IRCv3
    /// `REDACT`, XMPP XEP-0424 retraction. The gateway looked the message
    /// up in history first, so it knows what the router cannot: whether the
    /// actor wrote it (`own`: same account, or same session for a guest)
    /// and its message number `mseq`. Gateways are trusted with both; the
    /// router only checks membership, and operator rights when `!own`.
    Redact {
        room: String,
        msgid: String,
        /// The redacted message's number, as history holds it (`None` for
        /// messages stored before numbering), passed on in the event so
        /// that protocols that number messages (Tinode) learn which one
        /// went.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mseq: Option<u64>,
        own: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A ChanServ command about the room (IRC `PRIVMSG ChanServ :…`). The
    /// router owns registrations because it owns the room: it decides in the
    /// room's one order, next to the modes and topic a registration
    /// protects. Answered with [`Reply::ChanServ`] (and, for OP and the
    /// like, a MODE event from [`chanserv_actor`]).
    #[serde(rename = "chanserv")]
    ChanServ {
        room: String,
        command: ChanServCommand,
    },
    /// An alert from the alerts exchange (see [`crate::alerts`]), forwarded
    /// by the router itself: shown in the room as a message from the bot
    /// named `source` ([`crate::alerts::bot_actor`]), who is not a member.
    /// The fields are the checked alert's; the router words the text
    /// ([`crate::alerts::render`]) when it decides the event.
    Alert {
        room: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<String>,
        /// The bot's nick (already [`crate::alerts::bot_nick`]).
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
}

impl IntentBody {
    /// The room the intent is about (its partition key, after folding).
    pub fn room(&self) -> &str {
        match self {
            IntentBody::Join { room, .. }
            | IntentBody::Part { room, .. }
            | IntentBody::Message { room, .. }
            | IntentBody::Topic { room, .. }
            | IntentBody::Names { room }
            | IntentBody::Who { room }
            | IntentBody::Mode { room, .. }
            | IntentBody::Kick { room, .. }
            | IntentBody::Invite { room, .. }
            | IntentBody::Member { room, .. }
            | IntentBody::Redact { room, .. }
            | IntentBody::ChanServ { room, .. }
            | IntentBody::Alert { room, .. } => room,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MemberChange {
    /// The member is now known as `new` (already claimed in NATS).
    Nick { new: String },
    /// Set (`Some`) or clear (`None`) the away message.
    Away {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The session is gone; it leaves every room.
    Quit { reason: String },
    /// The session logged in (`Some`) or out (`None`) after joining.
    Account {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// The member's realname is now `realname` (IRCv3 `SETNAME`), so that
    /// WHO in the room and every gateway's members learn it.
    Realname { realname: String },
    /// The member's shown user name and host changed (an operator's IRC
    /// `CHGHOST`).
    Host { user: String, host: String },
    /// The member set (`true`) or cleared bot mode (IRC `+B`): recorded for
    /// WHO (flag `B`), no event (nothing is shown when it changes).
    Bot { bot: bool },
}

// ---------------------------------------------------------------------------
// Room events: router -> every gateway with members in the room
// ---------------------------------------------------------------------------

/// Something that happened in a room, in the room's one order.
/// Published to `chat.rooms` with routing key `room.<escaped folded name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomEvent {
    #[serde(default = "v1")]
    pub v: u32,
    /// Folded room name (identity).
    pub room: String,
    /// Display name, as the room's creator wrote it.
    pub name: String,
    /// Gap-free, per room, starting at 1. Every event in the room gets one.
    /// A gateway drops an event whose seq it has already passed: that is a
    /// redelivery after a router restart, not a new event.
    pub seq: u64,
    /// The message number: set on PRIVMSG and NOTICE events only, gap-free
    /// per room from 1 and never reused, not even after the room emptied.
    /// Protocols that number messages rather than events (Tinode `seq`)
    /// use it; the event `seq` counts joins and mode changes too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mseq: Option<u64>,
    /// Message id (IRC `msgid`, XMPP `stanza-id`): the causing intent's id.
    pub id: String,
    /// When the router accepted it (ms since the epoch; IRC `time`).
    pub at: i64,
    /// Who did it. For `Nick`, `actor.nick` is the old nick.
    pub actor: Actor,
    pub body: EventBody,
    /// When the causing intent reached its sender's gateway ([`Intent::at`]),
    /// for the gateways' intent-to-delivery latency. Set by the router on
    /// the events an intent causes directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum EventBody {
    /// `actor` joined. The joiner's gateway follows it with a
    /// [`Reply::Joined`] for the joiner (topic, names).
    Join,
    Part {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `actor` removed `target` (who is no longer a member).
    Kick {
        target_sid: String,
        target_nick: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `actor` quit (or its session expired); `event` is shared by the same
    /// quit in every room.
    Quit { reason: String, event: String },
    /// `actor` is now `new`; `event` is shared across rooms.
    Nick { new: String, event: String },
    /// `actor` set or cleared away; `event` is shared across rooms.
    Away {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        event: String,
    },
    Message {
        kind: MessageKind,
        text: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: ClientTags,
    },
    /// `actor` logged in (`Some`) or out; `event` is shared across rooms
    /// (IRC `account-notify`).
    Account {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        event: String,
    },
    /// `actor` changed its realname; `event` is shared across rooms (IRC
    /// `setname`). Not kept in history: like away, it is a state.
    Realname { realname: String, event: String },
    /// `actor` (as it was) is now shown as `user@host` (IRCv3 `chghost`).
    /// `op`/`voice`: its status here, for clients without the capability,
    /// which are shown it leaving and coming back with that status.
    Host {
        user: String,
        host: String,
        event: String,
        #[serde(default)]
        op: bool,
        #[serde(default)]
        voice: bool,
    },
    /// `actor` invited `target_nick` (not a member). The target itself is
    /// told by a [`DirectBody::Invite`]; this event is for the members, on
    /// every gateway (IRC `invite-notify`). Not kept in history.
    Invite {
        target_sid: String,
        target_nick: String,
    },
    /// The topic was set (empty string: cleared).
    Topic { topic: String },
    /// Mode changes as applied (only those that took effect).
    Mode { changes: Vec<ModeChange> },
    /// `actor` deleted the room message `msgid` (its own, or as an
    /// operator). The event has a `seq` like any other but no `mseq` of its
    /// own: it is not a message. History hides the redacted message from
    /// every query from then on; `mseq` is the number that message had
    /// (history's), so numbering protocols can say which one vanished. No
    /// cross-room `event` id: a message lives in one room, so its
    /// redaction is one event in one room.
    Redact {
        msgid: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mseq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl EventBody {
    /// A PRIVMSG or NOTICE (what people say; TAGMSG is not counted).
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            EventBody::Message {
                kind: MessageKind::Privmsg | MessageKind::Notice,
                ..
            }
        )
    }

    /// The session that stops being a member because of this event, if any.
    pub fn leaver<'a>(&'a self, actor: &'a Actor) -> Option<&'a str> {
        match self {
            EventBody::Part { .. } | EventBody::Quit { .. } => Some(&actor.sid),
            EventBody::Kick { target_sid, .. } => Some(target_sid),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Replies: router -> the gateway of one session
// ---------------------------------------------------------------------------

/// An answer for one session, sent by the router to that session's gateway
/// queue (default exchange, routing key `gateway.<id>`), so that it is
/// ordered with the room events published before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReply {
    #[serde(default = "v1")]
    pub v: u32,
    pub sid: String,
    /// The id of the intent this answers.
    pub intent: String,
    pub body: Reply,
}

/// A member as seen in NAMES and WHO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub op: bool,
    pub voice: bool,
    pub away: bool,
    /// In bot mode (IRC WHO flag `B`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
    pub gateway: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub text: String,
    /// Who set it (nick, or `nick!user@host`).
    pub set_by: String,
    pub set_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    pub mask: String,
    pub set_by: String,
    pub set_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Sent right after the joiner's own [`EventBody::Join`]: what a client
    /// shows on joining (IRC 332/333, 353/366).
    Joined {
        room: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<TopicInfo>,
        members: Vec<MemberInfo>,
        secret: bool,
    },
    Names {
        room: String,
        name: String,
        members: Vec<MemberInfo>,
        secret: bool,
    },
    Who {
        room: String,
        name: String,
        members: Vec<MemberInfo>,
    },
    /// Topic query answer (`None`: no topic).
    Topic {
        room: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<TopicInfo>,
    },
    /// Mode query answer: `modes` like `+ntk`, `args` the parameters that
    /// go with them (the key only shown to members), `created_at` for 329.
    Modes {
        room: String,
        name: String,
        modes: String,
        args: Vec<String>,
        created_at: i64,
    },
    BanList {
        room: String,
        name: String,
        bans: Vec<BanEntry>,
    },
    /// The invitation was delivered (IRC 341).
    Inviting {
        room: String,
        name: String,
        nick: String,
    },
    /// Everything intent [`SessionReply::intent`] caused has been
    /// published (sent only when the intent asked, [`Intent::done`]).
    Done,
    /// The intent was refused.
    Error {
        code: ErrorCode,
        /// The room name as the client wrote it, or the nick concerned.
        target: String,
        /// For `UnknownMode`: the mode letter; for `UserNotInChannel` and
        /// `UserOnChannel`: the room name. Empty otherwise.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// The answer to a ChanServ command; `name` is the room as the client
    /// wrote it (or its registered display name).
    #[serde(rename = "chanserv")]
    ChanServ {
        name: String,
        answer: ChanServAnswer,
    },
}

/// Why the router refused an intent. Gateways map each to their protocol's
/// error (the IRC numeric is noted on each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no such nick.
    NoSuchNick,
    /// 403: no such room.
    NoSuchChannel,
    /// 404: cannot send to the room (+n and not a member, +m without voice, banned).
    CannotSendToChan,
    /// 405: joined too many rooms.
    TooManyChannels,
    /// 441: the target is not in the room (`detail`: the room).
    UserNotInChannel,
    /// 442: you are not in the room.
    NotOnChannel,
    /// 443: the target is already in the room (`detail`: the room).
    UserOnChannel,
    /// 461: a mode needs a parameter that is missing.
    NeedMoreParams,
    /// 471: the room is full (+l).
    ChannelIsFull,
    /// 472: unknown mode letter (`detail`: the letter).
    UnknownMode,
    /// 473: invite only (+i).
    InviteOnlyChan,
    /// 474: banned (+b).
    BannedFromChan,
    /// 475: wrong key (+k).
    BadChannelKey,
    /// 476: bad room name.
    BadChanMask,
    /// 482: you need to be an operator of the room.
    ChanOpPrivsNeeded,
}

// ---------------------------------------------------------------------------
// Direct deliveries: anyone -> one session (its per-session queue)
// ---------------------------------------------------------------------------

/// Something addressed to one session, published to `chat.direct` with
/// routing key `session.<sid>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Direct {
    #[serde(default = "v1")]
    pub v: u32,
    /// Message id (the same one the sender's echo carries).
    pub id: String,
    pub at: i64,
    pub from: Actor,
    pub body: DirectBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "d", rename_all = "snake_case")]
pub enum DirectBody {
    /// A private message to the recipient.
    Message {
        kind: MessageKind,
        text: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: ClientTags,
    },
    /// `from` invites the recipient to `name`.
    Invite { room: String, name: String },
    /// Disconnect the recipient (NickServ GHOST, operator KILL), telling
    /// its client `reason`.
    Kill { reason: String },
    /// An operator changed the recipient's shown host (IRC `CHGHOST`).
    ChangeHost { host: String },
    /// A change to the recipient account's roster (to `account.<name>`).
    Roster { push: RosterPush },
    /// An XMPP presence stanza from `from`, serialized, with its `from`
    /// set to the sender's JID and no `to` (the recipient adds its own):
    /// broadcasts and directed presence (to `account.<name>`), subscription
    /// notices, and answers to probes (to the prober's `session.<sid>`).
    /// Only XMPP sessions bind account keys; other protocols ignore it.
    Presence { stanza: String },
    /// A copy of a one-to-one message for the other XMPP sessions of the
    /// same account (XEP-0280 carbons): `stanza` is the message as sent or
    /// received, with its `from` and `to`; the session `except` (the one
    /// that sent or received it) skips it.
    Carbon {
        sent: bool,
        stanza: String,
        except: String,
    },
}

// ---------------------------------------------------------------------------
// Authentication: gateway -> auth-service -> the caller's session queue
// ---------------------------------------------------------------------------

/// A request to the auth service, published to the default exchange with
/// routing key [`crate::topology::AUTH_QUEUE`] (one durable queue shared by
/// every auth-service replica). The AMQP `reply_to` property names the
/// caller's per-session queue and `correlation_id` is the request `id`; the
/// answer is an [`AuthReply`] published to the default exchange with the
/// `reply_to` queue as routing key.
///
/// Requests are protocol-neutral: IRC SASL, XMPP SASL and Tinode `basic` /
/// `token` logins all map onto them. Passwords travel only inside these
/// requests and are never logged (their `Debug` output is redacted).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthRequest {
    #[serde(default = "v1")]
    pub v: u32,
    pub id: String,
    /// The session asking (for logs and metrics; the answer goes to `reply_to`).
    pub sid: String,
    /// The client's network address, for per-address rate limiting.
    pub client_addr: String,
    pub body: AuthRequestBody,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("id", &self.id)
            .field("sid", &self.sid)
            .field("client_addr", &self.client_addr)
            .field("op", &self.body.op())
            .finish_non_exhaustive()
    }
}

/// SCRAM hash functions (RFC 5802 with SHA-1, RFC 7677 with SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-1")]
    Sha1,
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AuthRequestBody {
    /// Create an account (IRC REGISTER / NickServ REGISTER, XMPP in-band
    /// registration, Tinode `acc`). Stores argon2id and SCRAM-SHA-1/256
    /// credentials; answered with `Registered` or `Failure`.
    Register {
        account: String,
        password: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    /// SASL PLAIN / Tinode `basic`: answered with `Success` or `Failure`.
    Plain {
        /// Authorization identity; when present it must equal the account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authzid: Option<String>,
        account: String,
        password: String,
    },
    /// The first SCRAM step: the client-first-message exactly as sent
    /// (decoded from base64 by the gateway, e.g. `n,,n=alice,r=abc`).
    /// Answered with `ScramContinue` or `Failure`.
    ScramStart {
        mechanism: ScramMechanism,
        client_first: String,
    },
    /// The second SCRAM step: the `state` from `ScramContinue` and the
    /// client-final-message as sent. Answered with `Success` (carrying the
    /// server-final-message with `v=`) or `Failure`. Any replica can answer:
    /// the state is sealed by the service, not kept in its memory.
    ScramFinish { state: String, client_final: String },
    /// Log in with a token from an earlier `Success` (Tinode `token`).
    Token { token: String },
    /// SASL EXTERNAL: the TLS client certificate with this SHA-256
    /// fingerprint (lowercase hex) logs in as the account it was added to
    /// (`authzid`, if given, must name that account). `Success` or
    /// `Failure{InvalidCredentials}`.
    External {
        fingerprint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authzid: Option<String>,
    },
    /// NickServ CERT ADD: `Stored`, or `Failure{Taken}` when another
    /// account has the fingerprint.
    CertAdd {
        account: String,
        fingerprint: String,
    },
    /// NickServ CERT DEL: `Stored`, or `Failure{NotFound}`.
    CertDel {
        account: String,
        fingerprint: String,
    },
    /// NickServ CERT LIST: `Certs`.
    CertList { account: String },
    /// Public facts about an account (NickServ INFO, WHOIS): answered with
    /// `Info` or `Failure{NotFound}`.
    Info { account: String },
    /// The account's roster and the subscription requests waiting for its
    /// answer: answered with `Roster`.
    RosterGet { account: String },
    /// Adds or updates a contact (`contact` must be an account): answered
    /// with `RosterChanged` or `Failure{NotFound}`.
    RosterSet {
        account: String,
        contact: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default)]
        groups: Vec<String>,
    },
    /// Removes a contact, cancelling both directions of the subscription:
    /// answered with `RosterChanged`.
    RosterRemove { account: String, contact: String },
    /// `account` sends a subscription presence to `contact`: answered with
    /// `RosterChanged` (pushes for both sides, notices to deliver) or
    /// `Failure{NotFound}` when the contact is no account.
    Subscription {
        account: String,
        contact: String,
        action: SubscriptionAction,
    },
    /// The account's vCard (XEP-0054): answered with `Vcard`.
    VcardGet { account: String },
    /// Stores the account's vCard (the `<vCard/>` element, serialized):
    /// answered with `Stored`.
    VcardSet { account: String, vcard: String },
    /// The account's topic state (Tinode subscriptions and read/received
    /// markers): answered with `Topics`.
    TopicsGet { account: String },
    /// The account subscribes to `topic` (a [`TopicState::topic`] key),
    /// keeping any markers it has: answered with `Stored`.
    TopicJoin { account: String, topic: String },
    /// The account drops `topic` and its markers: answered with `Stored`.
    TopicLeave { account: String, topic: String },
    /// Raises the markers of `topic` (never lowers them; `read` raises
    /// `recv` too): answered with `Marked`, the values now stored.
    TopicMark {
        account: String,
        topic: String,
        #[serde(default)]
        read: u64,
        #[serde(default)]
        recv: u64,
    },
    /// Hides message numbers `low..hi` of `topic` from the account only
    /// (Tinode's soft delete): answered with `Stored`.
    TopicHide {
        account: String,
        topic: String,
        ranges: Vec<(u64, u64)>,
    },
    /// Accounts matching any of `terms` (Tinode `fnd`): a term is an account
    /// name, `basic:<name>` or `email:<address>`, compared case-folded.
    /// Answered with `Found`, disabled accounts left out.
    Search { terms: Vec<String>, limit: u32 },
}

/// One of an account's topics as stored by the auth service: a room it
/// subscribed to (`room:<folded room>`) or a one-to-one conversation it
/// has markers for (`peer:<folded account>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub topic: String,
    /// Whether the account subscribed (rooms); conversations with markers
    /// only are `false`.
    pub subscribed: bool,
    /// The highest message number read / received.
    pub read: u64,
    pub recv: u64,
    /// Message numbers `[low, hi)` the account deleted for itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<(u64, u64)>,
    /// ms since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

/// An account found by [`AuthRequestBody::Search`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundAccount {
    pub account: String,
    pub registered_at: i64,
    /// The term it matched, as asked.
    pub matched: String,
}

impl AuthRequestBody {
    /// The operation's name, for logs and metrics (never the secrets).
    pub fn op(&self) -> &'static str {
        match self {
            AuthRequestBody::Register { .. } => "register",
            AuthRequestBody::Plain { .. } => "plain",
            AuthRequestBody::ScramStart { .. } => "scram_start",
            AuthRequestBody::ScramFinish { .. } => "scram_finish",
            AuthRequestBody::Token { .. } => "token",
            AuthRequestBody::External { .. } => "external",
            AuthRequestBody::CertAdd { .. } => "cert_add",
            AuthRequestBody::CertDel { .. } => "cert_del",
            AuthRequestBody::CertList { .. } => "cert_list",
            AuthRequestBody::Info { .. } => "info",
            AuthRequestBody::RosterGet { .. } => "roster_get",
            AuthRequestBody::RosterSet { .. } => "roster_set",
            AuthRequestBody::RosterRemove { .. } => "roster_remove",
            AuthRequestBody::Subscription { .. } => "subscription",
            AuthRequestBody::VcardGet { .. } => "vcard_get",
            AuthRequestBody::VcardSet { .. } => "vcard_set",
            AuthRequestBody::TopicsGet { .. } => "topics_get",
            AuthRequestBody::TopicJoin { .. } => "topic_join",
            AuthRequestBody::TopicLeave { .. } => "topic_leave",
            AuthRequestBody::TopicMark { .. } => "topic_mark",
            AuthRequestBody::TopicHide { .. } => "topic_hide",
            AuthRequestBody::Search { .. } => "search",
        }
    }
}

/// The auth service's answer, delivered to the caller's session queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthReply {
    #[serde(default = "v1")]
    pub v: u32,
    /// The request's id.
    pub id: String,
    pub body: AuthReplyBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum AuthReplyBody {
    /// Logged in as `account` (the canonical, case-folded account name).
    Success {
        account: String,
        /// For SCRAM: the server-final-message (`v=…`) to send the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_final: Option<String>,
        /// A signed session token and its expiry (ms since the epoch).
        token: String,
        token_expires: i64,
    },
    /// SCRAM: send `server_first` to the client; keep `state` for the finish.
    ScramContinue {
        server_first: String,
        state: String,
    },
    Registered {
        account: String,
    },
    Info {
        account: String,
        registered_at: i64,
        disabled: bool,
    },
    Roster {
        ver: i64,
        items: Vec<RosterItem>,
        /// Accounts asking for this account's presence, unanswered.
        #[serde(default)]
        pending_in: Vec<String>,
    },
    /// A roster or subscription change was stored: push `pushes` to their
    /// accounts and deliver `notices`.
    RosterChanged {
        pushes: Vec<RosterPush>,
        notices: Vec<Notice>,
    },
    Vcard {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vcard: Option<String>,
    },
    Stored,
    Topics {
        items: Vec<TopicState>,
    },
    /// The markers stored after a `TopicMark`.
    Marked {
        read: u64,
        recv: u64,
    },
    Found {
        accounts: Vec<FoundAccount>,
    },
    /// The account's certificate fingerprints, oldest first.
    Certs {
        fingerprints: Vec<String>,
    },
    Failure {
        code: AuthError,
        /// Seconds until a rate-limited caller may try again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
}

/// Why the auth service refused. Gateways map these to their protocol's
/// errors (IRC 904/902/906/908 and FAIL REGISTER codes, XMPP SASL
/// `<not-authorized/>`, Tinode `ctrl` 401/409/429…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthError {
    /// Wrong account or password (never says which).
    InvalidCredentials,
    /// Too many attempts for this account or address.
    RateLimited,
    AccountExists,
    /// The account name is not acceptable (characters, length).
    BadAccountName,
    /// The password is not acceptable (too short or too long).
    WeakPassword,
    Disabled,
    NotFound,
    /// The request was malformed (bad SCRAM message, bad state).
    Malformed,
    /// Token expired, revoked or forged.
    BadToken,
    /// What was asked for is another account's (a certificate).
    Taken,
    /// The service failed; try again.
    Internal,
}

// ---------------------------------------------------------------------------
// Cluster state records kept in NATS key-value buckets (see `crate::kv`)
// ---------------------------------------------------------------------------

/// A live session, in the sessions bucket under its sid. Refreshed by its
/// gateway's heartbeat; expires with the bucket's max age when the gateway
/// stops refreshing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub actor: Actor,
    /// Seconds since the epoch when the session registered.
    pub signon: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    /// Display names of the rooms the session is in.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// The protocol the session speaks (`irc`, `xmpp`, `tinode`).
    pub protocol: String,
    /// The client's connection is TLS (IRC WHOIS 671).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// An IRC operator (WHOIS 313).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oper: bool,
    /// The SHA-256 fingerprint of the client's TLS certificate (WHOIS 276
    /// to the session itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certfp: Option<String>,
    /// In bot mode (IRC `+B`: WHOIS 335, WHO flag `B`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

/// The claim on a nick, in the nicks bucket under the escaped folded nick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NickClaim {
    pub sid: String,
    pub nick: String,
}

/// A room's full state, kept by the router in the rooms bucket under
/// [`crate::kv::room_key`]. Written after every batch of intents that
/// touched the room; gateways read it for room listings (IRC LIST).
///
/// A record with no `members` is the *husk* of a room that emptied: only
/// `room`, `name`, `seq` and `mseq` mean anything (the next room of that
/// name continues both numbers). Readers must treat it as "no such room".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// Folded name.
    pub room: String,
    /// Display name.
    pub name: String,
    pub created_at: i64,
    /// Seq of the last event.
    pub seq: u64,
    /// The last message number given (see [`RoomEvent::mseq`]).
    #[serde(default)]
    pub mseq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicInfo>,
    pub modes: RoomModes,
    #[serde(default)]
    pub bans: Vec<BanEntry>,
    /// Sessions invited (past +i) and not yet joined.
    #[serde(default)]
    pub invited: Vec<String>,
    pub members: Vec<MemberRecord>,
    /// Ids of the intents applied to this room in the batch that wrote this
    /// record: a redelivery of one of them is skipped, not applied twice.
    #[serde(default)]
    pub applied: Vec<String>,
    /// The room is registered with ChanServ (PostgreSQL keeps the durable
    /// copy; this one travels with the live state so a takeover needs no
    /// database round trip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Registration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomModes {
    pub invite_only: bool,
    pub moderated: bool,
    pub no_external: bool,
    pub secret: bool,
    pub topic_ops: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub actor: Actor,
    pub op: bool,
    pub voice: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    /// In bot mode (see [`MemberChange::Bot`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
    pub joined_at: i64,
}

// ---------------------------------------------------------------------------
// ChanServ: registered rooms
// ---------------------------------------------------------------------------

/// What an entry of a registered room's access list grants: automatic `+o`
/// or `+v` on joining, and (for `Op`) the ChanServ commands of operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    Voice,
    Op,
}

impl AccessLevel {
    /// The name users type and see (`OP`, `VOICE`).
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Op => "OP",
            AccessLevel::Voice => "VOICE",
        }
    }
}

/// A room's ChanServ registration: who founded it and who has access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The founder's account (canonical, case-folded).
    pub founder: String,
    /// ms since the epoch.
    pub registered_at: i64,
    /// While on, only the founder and `Op` accounts may change the topic.
    #[serde(default)]
    pub topic_lock: bool,
    /// Account → level. The founder is not listed: it has every right.
    #[serde(default)]
    pub access: BTreeMap<String, AccessLevel>,
    /// Raised by the router on every change to the room's durable state
    /// (registration, topic, modes, bans), so a late write of an older
    /// state (a router that lost the partition) never overwrites a newer
    /// one in PostgreSQL.
    #[serde(default)]
    pub rev: u64,
}

impl Registration {
    /// What `account` may do here: the founder counts as `Op`.
    pub fn level_of(&self, account: Option<&str>) -> Option<AccessLevel> {
        let account = account?;
        if account == self.founder {
            return Some(AccessLevel::Op);
        }
        self.access.get(account).copied()
    }
}

/// A ChanServ command, parsed by the gateway; the router checks the rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ChanServCommand {
    /// Register the room: the sender (logged in, an operator) is founder.
    Register,
    /// Forget the registration (founder only).
    Drop,
    /// `+o` / `-o` / `+v` / `-v` on `nick` (default: the sender), by ChanServ.
    Op {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    Deop {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    Voice {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    Devoice {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    AccessAdd {
        account: String,
        level: AccessLevel,
    },
    AccessDel {
        account: String,
    },
    AccessList,
    SetTopicLock {
        on: bool,
    },
    Info,
}

/// Why ChanServ refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChanServRefusal {
    /// The sender is not logged in to an account.
    NotIdentified,
    /// The room has no members (ChanServ REGISTER, OP… need a live room).
    NoSuchChannel,
    /// The sender is not in the room.
    NotOnChannel,
    /// The sender is not an operator of the room (REGISTER).
    NotOp,
    NotRegistered,
    AlreadyRegistered,
    /// Founder-only command.
    NotFounder,
    /// The sender's account has too little access.
    NoAccess,
    /// `arg` (a nick) is not in the room.
    NoSuchNick,
    /// `arg` is not a valid account name.
    BadAccount,
    /// `arg` is the founder: not an access-list entry.
    IsFounder,
    /// `arg` is not on the access list.
    NotOnAccessList,
    AccessListFull,
    /// The router cannot read registrations right now (PostgreSQL).
    Unavailable,
}

/// One access-list entry as ACCESS LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub account: String,
    pub level: AccessLevel,
}

/// ChanServ's answer, rendered by each gateway in its own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "a", rename_all = "snake_case")]
pub enum ChanServAnswer {
    Registered {
        founder: String,
    },
    Dropped,
    Info {
        founder: String,
        registered_at: i64,
        topic_lock: bool,
        /// `+ntk…` as an outsider sees them (the key is not shown).
        modes: String,
        access: usize,
    },
    /// OP/DEOP/VOICE/DEVOICE that changed nothing (`nick` already had, or
    /// lacked, the mode). A change is answered by its MODE event alone.
    Unchanged {
        nick: String,
        mode: char,
        add: bool,
    },
    AccessAdded {
        account: String,
        level: AccessLevel,
    },
    AccessRemoved {
        account: String,
    },
    AccessList {
        founder: String,
        entries: Vec<AccessEntry>,
    },
    TopicLock {
        on: bool,
    },
    Refused {
        why: ChanServRefusal,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        arg: String,
    },
}

/// The nick ChanServ speaks as, on every gateway.
pub const CHANSERV_NICK: &str = "ChanServ";

/// The actor of the events ChanServ causes (automatic `+o`, OP): not a
/// session, so its sid and gateway name none (no gateway serves it).
pub fn chanserv_actor() -> Actor {
    Actor {
        sid: "services.chanserv".into(),
        gateway: String::new(),
        nick: CHANSERV_NICK.into(),
        user: CHANSERV_NICK.into(),
        host: "services.".into(),
        realname: "Channel Services".into(),
        account: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            sid: "s1".into(),
            gateway: "g1".into(),
            nick: "alice".into(),
            user: "al".into(),
            host: "127.0.0.1".into(),
            realname: "Alice".into(),
            account: None,
        }
    }

    #[test]
    fn intent_round_trips_with_tags() {
        let msg = BusMessage::Intent(Intent {
            v: SCHEMA_VERSION,
            id: "i1".into(),
            at: 1,
            actor: actor(),
            body: IntentBody::Join {
                room: "Ops".into(),
                key: None,
            },
            done: false,
        });
        let json = String::from_utf8(msg.to_json()).unwrap();
        assert!(json.contains(r#""t":"intent""#), "{json}");
        assert!(json.contains(r#""op":"join""#), "{json}");
        assert_eq!(BusMessage::from_json(json.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn unknown_version_is_refused() {
        let msg = BusMessage::Direct(Direct {
            v: 99,
            id: "m".into(),
            at: 0,
            from: actor(),
            body: DirectBody::Invite {
                room: "ops".into(),
                name: "Ops".into(),
            },
        });
        assert!(matches!(
            BusMessage::from_json(&msg.to_json()),
            Err(SchemaError::Version(99))
        ));
    }

    #[test]
    fn auth_requests_never_show_secrets_in_debug() {
        let req = AuthRequest {
            v: SCHEMA_VERSION,
            id: "r1".into(),
            sid: "s1".into(),
            client_addr: "127.0.0.1".into(),
            body: AuthRequestBody::Plain {
                authzid: None,
                account: "alice".into(),
                password: "hunter2-secret".into(),
            },
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("plain"), "{shown}");
        let msg = BusMessage::AuthRequest(req);
        assert_eq!(BusMessage::from_json(&msg.to_json()).unwrap(), msg);
        assert!(!format!("{msg:?}").contains("hunter2"));
    }

    #[test]
    fn redaction_round_trips_without_a_message_number_of_its_own() {
        let msg = BusMessage::Event(RoomEvent {
            v: SCHEMA_VERSION,
            room: "ops".into(),
            name: "Ops".into(),
            seq: 7,
            mseq: None,
            id: "r1".into(),
            at: 1,
            actor: actor(),
            body: EventBody::Redact {
                msgid: "m1".into(),
                mseq: Some(3),
                reason: None,
            },
            intent_at: None,
        });
        let json = String::from_utf8(msg.to_json()).unwrap();
        assert!(
            json.contains(r#""body":{"ev":"redact","msgid":"m1","mseq":3}"#),
            "{json}"
        );
        assert!(!json.contains(r#""seq":7,"mseq""#), "{json}");
        assert_eq!(BusMessage::from_json(json.as_bytes()).unwrap(), msg);
        let intent = IntentBody::Redact {
            room: "Ops".into(),
            msgid: "m1".into(),
            mseq: None,
            own: true,
            reason: Some("typo".into()),
        };
        let json = serde_json::to_string(&intent).unwrap();
        assert_eq!(
            json,
            r#"{"op":"redact","room":"Ops","msgid":"m1","own":true,"reason":"typo"}"#
        );
        assert_eq!(intent.room(), "Ops");
    }

    #[test]
    fn chanserv_intents_and_records_round_trip() {
        let body = IntentBody::ChanServ {
            room: "Ops".into(),
            command: ChanServCommand::AccessAdd {
                account: "bob".into(),
                level: AccessLevel::Voice,
            },
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"op":"chanserv","room":"Ops","command":{"cmd":"access_add","account":"bob","level":"voice"}}"#
        );
        assert_eq!(serde_json::from_str::<IntentBody>(&json).unwrap(), body);
        assert_eq!(body.room(), "Ops");
        // Records written before registrations existed still read.
        let old = r#"{"room":"ops","name":"Ops","created_at":1,"seq":2,
            "modes":{"invite_only":false,"moderated":false,"no_external":true,"secret":false,"topic_ops":true},
            "members":[]}"#;
        let record: RoomRecord = serde_json::from_str(old).unwrap();
        assert!(record.registration.is_none());
        let reg = Registration {
            founder: "alice".into(),
            registered_at: 5,
            topic_lock: true,
            access: [("bob".to_string(), AccessLevel::Voice)].into(),
            rev: 3,
        };
        assert_eq!(reg.level_of(Some("alice")), Some(AccessLevel::Op));
        assert_eq!(reg.level_of(Some("bob")), Some(AccessLevel::Voice));
        assert_eq!(reg.level_of(Some("carol")), None);
        assert_eq!(reg.level_of(None), None);
        assert!(AccessLevel::Op > AccessLevel::Voice);
    }

    #[test]
    fn alert_intents_round_trip() {
        let body = IntentBody::Alert {
            room: "Ops".into(),
            text: "Disk full".into(),
            severity: Some("critical".into()),
            source: "grafana".into(),
            link: None,
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"op":"alert","room":"Ops","text":"Disk full","severity":"critical","source":"grafana"}"#
        );
        assert_eq!(serde_json::from_str::<IntentBody>(&json).unwrap(), body);
        assert_eq!(body.room(), "Ops");
    }

    #[test]
    fn leaver_names_who_leaves() {
        let a = actor();
        assert_eq!(EventBody::Part { reason: None }.leaver(&a), Some("s1"));
        let kick = EventBody::Kick {
            target_sid: "s2".into(),
            target_nick: "bob".into(),
            reason: None,
        };
        assert_eq!(kick.leaver(&a), Some("s2"));
        assert_eq!(EventBody::Join.leaver(&a), None);
    }
}
