//! One-to-one topics (`usr…`): a Tinode user's direct conversation with
//! anyone, a Tinode, IRC or XMPP user alike, carried as the platform's
//! direct messages (the recipient's session queue, a copy to history).
//!
//! Each side names the topic by the other's user id ([`ids::actor_uid`]):
//! `usr<account>`, or `usrG<nick>` for an IRC user without an account.
//! Messages go to whoever holds the peer's nick now; to an account nobody
//! is using, they are kept (offline) and shown at its next login.
//!
//! Tinode numbers a topic's messages (`seq`), and a direct conversation's
//! number is given by the history service when it stores the message. So
//! a message is shown (and a `{pub}` accepted) only once its number is
//! known: the history service announces each stored direct message on NATS
//! ([`bus::history::numbered_subject`] of both participants), the session
//! listens on its own subject from login, and a message waits here until
//! its number arrives (or the number, until the message does).

use std::collections::HashMap;
use std::time::Duration;

use bus::history::{
    numbered_subject, participant_key, DirectLog, DirectNumbered, HistoryError, HistoryQuery,
    HistoryReplyBody, HistoryTarget, Peer as LogPeer, SeqRange,
};
use bus::schema::{
    Actor, AuthReplyBody, AuthRequestBody, ClientTags, Direct, DirectBody, MessageKind,
    SCHEMA_VERSION,
};
use bus::{new_id, now_ms};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::conn::{Conn, Wait};
use super::ids::{self, PeerId};
use super::topics::answer_get;
use super::wire::{self, code, GetQuery, Pub, Sub};
use super::{data, marks};
use crate::bus_link::{confirmed, Outcome};

/// How long a message waits for its number, or a number for its message.
const NUMBER_WAIT: Duration = Duration::from_secs(5);
/// How many numbers heard ahead of their message are kept.
const MAX_HEARD: usize = 1024;
/// The access mode of both sides of a one-to-one topic.
const P2P_MODE: &str = "JRWPA";

/// An attached one-to-one topic.
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: PeerId,
    /// The name history and delivery use: the account, or the guest's nick.
    pub name: String,
    /// The newest message number seen.
    pub seq: u64,
    /// When the newest message was sent (0: none seen).
    pub touched: i64,
    pub attached_at: i64,
}

/// A `{sub}` of a one-to-one topic on its way: the peer is being looked up
/// (an account: by the auth service), then its newest number (history).
#[derive(Debug)]
pub struct Attaching {
    pub id: Option<String>,
    pub topic: String,
    pub get: Option<GetQuery>,
    pub peer: PeerId,
    pub name: String,
}

/// A message waiting for its number.
#[derive(Debug)]
enum Held {
    /// Sent by this session (`{pub}`).
    Sent {
        id: Option<String>,
        topic: String,
        noecho: bool,
        direct: Direct,
    },
    /// Received from the peer.
    Received { topic: String, direct: Direct },
}

/// The numbers of this user's direct messages, and the messages waiting
/// for theirs.
#[derive(Default)]
pub struct Numbers {
    sub: Option<async_nats::Subscriber>,
    heard: HashMap<String, (u64, Instant)>,
    held: HashMap<String, (Held, Instant)>,
}

impl Numbers {
    /// Starts listening for the numbers of `account`'s direct messages
    /// (before the session can send or receive one, so none is missed).
    pub async fn listen(&mut self, nats: &async_nats::Client, prefix: &str, account: &str) {
        let subject = numbered_subject(prefix, &participant_key(Some(account), ""));
        match nats.subscribe(subject).await {
            Ok(sub) => self.sub = Some(sub),
            Err(e) => tracing::warn!(error = %e, "tinode: listening for message numbers failed"),
        }
    }

    /// The next number heard.
    pub async fn next(&mut self) -> Option<DirectNumbered> {
        loop {
            let msg = match &mut self.sub {
                Some(sub) => sub.next().await,
                None => std::future::pending().await,
            };
            let Some(msg) = msg else {
                self.sub = None;
                continue;
            };
            if let Ok(n) = serde_json::from_slice::<DirectNumbered>(&msg.payload) {
                return Some(n);
            }
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        let held = self.held.values().map(|(_, at)| *at);
        let heard = self.heard.values().map(|(_, at)| *at);
        held.chain(heard).min()
    }

    fn hold(&mut self, msg_id: &str, held: Held) -> Option<(Held, u64)> {
        if let Some((seq, _)) = self.heard.remove(msg_id) {
            return Some((held, seq));
        }
        self.held
            .insert(msg_id.to_string(), (held, Instant::now() + NUMBER_WAIT));
        None
    }
}

/// The access mode of a one-to-one topic.
pub(super) fn acs() -> Value {
    json!({"want": P2P_MODE, "given": P2P_MODE, "mode": P2P_MODE})
}

/// `{sub}` of `usr…`.
pub async fn on_sub(c: &mut Conn, sub: Sub) {
    let id = sub.id.as_deref();
    let topic = sub.topic.clone();
    if c.peers.contains_key(&topic) {
        c.reply(wire::ctrl(id, code::ALREADY_SUBSCRIBED).topic(&topic));
        return;
    }
    match ids::peer_of(&topic) {
        None => c.reply(wire::ctrl(id, code::NOT_FOUND).topic(&topic)),
        Some(PeerId::Guest(nick)) => match c.gw.registry.session_by_nick(&nick).await {
            // A guest is a topic only while its nick is in use by a guest.
            Ok(Some(rec)) if rec.actor.account.is_none() => {
                let a = Attaching {
                    id: sub.id.clone(),
                    topic,
                    get: sub.get.clone(),
                    peer: PeerId::Guest(nick),
                    name: rec.actor.nick,
                };
                find_seq(c, a).await;
            }
            Ok(_) => c.reply(wire::ctrl(id, code::NOT_FOUND).topic(&topic)),
            Err(e) => {
                tracing::warn!(error = %e, "tinode: nick lookup failed");
                c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(&topic));
            }
        },
        Some(PeerId::Account(account)) => {
            let a = Attaching {
                id: sub.id.clone(),
                topic: topic.clone(),
                get: sub.get.clone(),
                peer: PeerId::Account(account.clone()),
                name: account.clone(),
            };
            let body = AuthRequestBody::Info { account };
            if c.ask_auth(body, Wait::PeerLookup(a)).await.is_none() {
                c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(&topic));
            }
        }
    }
}

/// The auth service's answer about the peer account.
pub async fn on_lookup(c: &mut Conn, mut a: Attaching, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Info {
            account,
            disabled: false,
            ..
        } => {
            a.name = account;
            find_seq(c, a).await;
        }
        AuthReplyBody::Info { .. } | AuthReplyBody::Failure { .. } => {
            c.reply(wire::ctrl(a.id.as_deref(), code::NOT_FOUND).topic(&a.topic));
        }
        other => {
            tracing::debug!(?other, "tinode: unexpected answer to an account lookup");
            c.reply(wire::ctrl(a.id.as_deref(), code::INTERNAL).topic(&a.topic));
        }
    }
}

/// Asks history for the conversation's newest number (its `desc.seq`).
async fn find_seq(c: &mut Conn, a: Attaching) {
    let (id, topic) = (a.id.clone(), a.topic.clone());
    let query = HistoryQuery::Numbered {
        target: HistoryTarget::Direct {
            peer: a.name.clone(),
        },
        ranges: vec![SeqRange {
            low: 1,
            hi: Some(u64::MAX),
        }],
        limit: 1,
    };
    if c.ask_history(query, Wait::PeerSeq(a)).await.is_none() {
        c.reply(wire::ctrl(id.as_deref(), code::UNAVAILABLE).topic(&topic));
    }
}

/// The newest number: the topic is attached.
pub async fn on_seq(c: &mut Conn, a: Attaching, body: HistoryReplyBody) {
    let (seq, touched) = match &body {
        HistoryReplyBody::Messages { items, .. } => items
            .last()
            .map(|i| (i.mseq.unwrap_or(i.seq), i.at))
            .unwrap_or((0, 0)),
        // No conversation yet.
        HistoryReplyBody::Failure {
            code: HistoryError::InvalidTarget,
        } => (0, 0),
        other => {
            tracing::debug!(?other, "tinode: history answer about a conversation");
            c.reply(wire::ctrl(a.id.as_deref(), code::INTERNAL).topic(&a.topic));
            return;
        }
    };
    let peer = Peer {
        id: a.peer,
        name: a.name,
        seq,
        touched,
        attached_at: now_ms(),
    };
    let channel = notes_channel(c, &peer);
    c.notes.watch(&a.topic, &channel);
    c.peers.insert(a.topic.clone(), peer);
    c.reply(
        wire::ctrl(a.id.as_deref(), code::OK)
            .topic(&a.topic)
            .param("acs", acs()),
    );
    if let Some(get) = &a.get {
        answer_get(c, a.id.as_deref(), &a.topic, get).await;
    }
}

/// `meta.desc` of an attached one-to-one topic.
pub fn desc_of(c: &Conn, p: &Peer) -> Value {
    let mut desc = json!({
        "created": wire::ts(p.attached_at),
        "updated": wire::ts(p.attached_at.max(p.touched)),
        "acs": acs(),
        "public": {"fn": p.name},
    });
    if p.seq > 0 {
        desc["seq"] = p.seq.into();
    }
    if p.touched > 0 {
        desc["touched"] = wire::ts(p.touched).into();
    }
    if let Some(key) = marks::peer_key(&p.id) {
        let (read, recv) = c.marks.markers(&key);
        if read > 0 {
            desc["read"] = read.into();
        }
        if recv > 0 {
            desc["recv"] = recv.into();
        }
    }
    desc
}

/// `{leave}` of a one-to-one topic (`unsub`: its markers go too).
pub async fn on_leave(c: &mut Conn, id: Option<&str>, topic: &str, unsub: bool) {
    let Some(peer) = c.peers.remove(topic) else {
        return;
    };
    c.notes.unwatch(topic);
    if unsub {
        if let Some(key) = marks::peer_key(&peer.id) {
            marks::unsubscribe(c, &key).await;
        }
    }
    c.reply(wire::ctrl(id, code::OK).topic(topic));
}

/// `meta.sub` of an attached one-to-one topic: both sides.
pub fn subs_of(c: &Conn, topic: &str, p: &Peer) -> Vec<Value> {
    let now = wire::ts(now_ms());
    let me = c
        .user
        .as_ref()
        .map(|u| u.account.clone())
        .unwrap_or_default();
    vec![
        json!({"user": c.uid(), "updated": now, "acs": acs(), "public": {"fn": me}, "online": true}),
        json!({"user": topic, "updated": now, "acs": acs(), "public": {"fn": p.name}}),
    ]
}

/// The history target of an attached one-to-one topic.
pub fn target(p: &Peer) -> HistoryTarget {
    HistoryTarget::Direct {
        peer: p.name.clone(),
    }
}

/// `{pub}` to an attached one-to-one topic.
pub async fn on_pub(c: &mut Conn, p: Pub) {
    let id = p.id.clone();
    let topic = p.topic.clone();
    let Some(peer) = c.peers.get(&topic).cloned() else {
        return;
    };
    if p.content.is_null() {
        c.reply(wire::ctrl(id.as_deref(), code::MALFORMED).topic(&topic));
        return;
    }
    let Some(actor) = c.platform.as_ref().map(|pl| pl.actor.clone()) else {
        return;
    };
    let (text, tags) = data::carried(&p);
    // Whoever holds the peer's nick now, if that is the peer.
    let live = match c.gw.registry.session_by_nick(&peer.name).await {
        Ok(rec) => rec.filter(|r| peer.id.is(&r.actor)),
        Err(e) => {
            tracing::warn!(error = %e, "tinode: nick lookup failed");
            c.reply(wire::ctrl(id.as_deref(), code::UNAVAILABLE).topic(&topic));
            return;
        }
    };
    if live.is_none() && matches!(peer.id, PeerId::Guest(_)) {
        // A guest's conversation ends with its session.
        c.reply(wire::ctrl(id.as_deref(), code::NOT_FOUND).topic(&topic));
        return;
    }
    crate::metrics::message_in("tinode");
    let direct = Direct {
        v: SCHEMA_VERSION,
        id: new_id(),
        at: now_ms(),
        from: actor.clone(),
        body: DirectBody::Message {
            kind: MessageKind::Privmsg,
            text: text.clone(),
            tags: tags.clone(),
        },
    };
    if let Some(rec) = &live {
        let outcome = match c
            .gw
            .link
            .publish_direct(&rec.actor.sid, direct.clone())
            .await
        {
            Ok(pending) => confirmed(pending).await,
            Err(_) => Outcome::Failed,
        };
        if outcome != Outcome::Confirmed {
            c.reply(wire::ctrl(id.as_deref(), code::UNAVAILABLE).topic(&topic));
            return;
        }
    }
    let log = DirectLog {
        v: SCHEMA_VERSION,
        id: direct.id.clone(),
        at: direct.at,
        from: actor,
        to: LogPeer {
            nick: live
                .as_ref()
                .map_or(peer.name.clone(), |r| r.actor.nick.clone()),
            account: match &peer.id {
                PeerId::Account(a) => Some(a.clone()),
                PeerId::Guest(_) => None,
            },
            sid: live.as_ref().map(|r| r.actor.sid.clone()),
        },
        kind: MessageKind::Privmsg,
        text,
        tags,
        offline: live.is_none(),
    };
    let logged = match c.gw.link.publish_direct_log(log).await {
        Ok(pending) => confirmed(pending).await == Outcome::Confirmed,
        Err(_) => false,
    };
    crate::metrics::direct_log(live.is_none(), logged);
    if !logged {
        // Without history it gets no number (and offline, no delivery).
        c.reply(wire::ctrl(id.as_deref(), code::UNAVAILABLE).topic(&topic));
        return;
    }
    let msg_id = direct.id.clone();
    let held = Held::Sent {
        id,
        topic,
        noecho: p.noecho,
        direct,
    };
    if let Some((held, seq)) = c.numbers.hold(&msg_id, held) {
        release(c, held, seq);
    }
}

/// A direct message or typing notice from someone.
pub fn on_direct(c: &mut Conn, d: &Direct) {
    let DirectBody::Message { kind, tags, .. } = &d.body else {
        return;
    };
    let topic = ids::actor_uid(&d.from);
    if *kind == MessageKind::Tagmsg {
        if tags.get(data::TAG_TYPING).map(String::as_str) == Some("active")
            && c.peers.contains_key(&topic)
        {
            c.send(wire::info(&topic, &topic, "kp", None));
        }
        return;
    }
    let held = Held::Received {
        topic,
        direct: d.clone(),
    };
    if let Some((held, seq)) = c.numbers.hold(&d.id, held) {
        release(c, held, seq);
    }
}

/// A number from the history service.
pub fn on_numbered(c: &mut Conn, n: DirectNumbered) {
    match c.numbers.held.remove(&n.id) {
        Some((held, _)) => release(c, held, n.seq),
        None => {
            if c.numbers.heard.len() >= MAX_HEARD {
                // The oldest go: their messages are long overdue.
                let oldest = c
                    .numbers
                    .heard
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    c.numbers.heard.remove(&k);
                }
            }
            c.numbers
                .heard
                .insert(n.id, (n.seq, Instant::now() + NUMBER_WAIT));
        }
    }
}

/// A message with its number: shown, and a `{pub}` accepted.
fn release(c: &mut Conn, held: Held, seq: u64) {
    let (topic, direct, echo) = match held {
        Held::Sent {
            id,
            topic,
            noecho,
            direct,
        } => {
            c.reply(
                wire::ctrl(id.as_deref(), code::ACCEPTED)
                    .topic(&topic)
                    .param("seq", seq),
            );
            (topic, direct, !noecho)
        }
        Held::Received { topic, direct } => (topic, direct, true),
    };
    let DirectBody::Message { text, tags, .. } = &direct.body else {
        return;
    };
    match c.peers.get_mut(&topic) {
        Some(p) => {
            p.seq = p.seq.max(seq);
            p.touched = p.touched.max(direct.at);
            if echo {
                let frame = data::data_frame(&topic, &direct.from, direct.at, seq, text, tags);
                c.send(frame);
            }
        }
        // Not attached: a `me` subscriber hears that there is something.
        None if c.me => c.send(json!({"pres": {
            "topic": "me", "src": topic, "what": "msg", "seq": seq,
            "act": ids::actor_uid(&direct.from),
        }})),
        None => {}
    }
}

/// Messages and numbers that waited too long.
pub fn on_timeouts(c: &mut Conn) {
    let now = Instant::now();
    c.numbers.heard.retain(|_, (_, at)| *at > now);
    let late: Vec<String> = c
        .numbers
        .held
        .iter()
        .filter(|(_, (_, at))| *at <= now)
        .map(|(k, _)| k.clone())
        .collect();
    for key in late {
        let Some((held, _)) = c.numbers.held.remove(&key) else {
            continue;
        };
        match held {
            Held::Sent { id, topic, .. } => {
                tracing::warn!(msgid = %key, "tinode: a sent direct message got no number");
                c.reply(wire::ctrl(id.as_deref(), code::TIMEOUT).topic(&topic));
            }
            Held::Received { .. } => {
                // It is in history (or will be): paging finds it.
                tracing::warn!(msgid = %key, "tinode: a received direct message got no number");
            }
        }
    }
}

/// `{note}` on a one-to-one topic. `kp` is a typing notice to the peer
/// (IRC clients with message tags show it, XMPP ones as a chat state).
/// `read` / `recv` are stored and signalled to the conversation's Tinode
/// sessions (the peer's and our own others): IRC and XMPP have no
/// receipts to give them as.
pub async fn on_note(c: &mut Conn, note: &wire::Note) {
    let Some(peer) = c.peers.get(&note.topic).cloned() else {
        return;
    };
    match note.what.as_str() {
        "kp" | "kpa" | "kpv" => typing(c, &peer).await,
        "read" | "recv" => {
            let Some(key) = marks::peer_key(&peer.id) else {
                return;
            };
            let channel = notes_channel(c, &peer);
            data::mark(c, note, &key, &channel, peer.seq).await;
        }
        _ => {}
    }
}

/// The notes channel of a conversation: the same for both sides (the two
/// user ids, sorted).
fn notes_channel(c: &Conn, peer: &Peer) -> String {
    let me = c.uid().to_string();
    let other = peer.id.uid();
    let (a, b) = if me <= other {
        (me, other)
    } else {
        (other, me)
    };
    format!("p2p:{a}:{b}")
}

async fn typing(c: &mut Conn, peer: &Peer) {
    let Some(actor) = c.platform.as_ref().map(|pl| pl.actor.clone()) else {
        return;
    };
    let Ok(Some(rec)) = c.gw.registry.session_by_nick(&peer.name).await else {
        return;
    };
    if !peer.id.is(&rec.actor) {
        return;
    }
    let mut tags = ClientTags::new();
    tags.insert(data::TAG_TYPING.into(), "active".into());
    let direct = Direct {
        v: SCHEMA_VERSION,
        id: new_id(),
        at: now_ms(),
        from: actor,
        body: DirectBody::Message {
            kind: MessageKind::Tagmsg,
            text: String::new(),
            tags,
        },
    };
    let _ = c.gw.link.publish_direct(&rec.actor.sid, direct).await;
}

impl PeerId {
    /// Whether `actor` is this peer.
    pub fn is(&self, actor: &Actor) -> bool {
        match (self, &actor.account) {
            (PeerId::Account(a), Some(b)) => bus::names::fold(a) == bus::names::fold(b),
            (PeerId::Guest(n), None) => bus::names::fold(n) == bus::names::fold(&actor.nick),
            _ => false,
        }
    }
}
