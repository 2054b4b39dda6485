//! Multi-User Chat (XEP-0045) at `conference.<domain>`, mapped 1:1 onto the
//! router's rooms: `ops@conference.localhost` is IRC `#ops`.
//!
//! * Join is presence to `room@conference.<domain>/nick` → a JOIN intent.
//!   The router's `Joined` answer becomes the join burst XEP-0045 §7.2
//!   orders: the other occupants' presence, the self-presence (status 110,
//!   and 210 when the occupant nick is not the one asked for: a session has
//!   one nick in every room, as on IRC), the history the client asked for
//!   with `<history/>` (from the history service), then the subject.
//! * Groupchat messages, subject changes and leaving are intents too; every
//!   message comes back as the room's event (the reflection, with the
//!   client's own stanza id) carrying `<stanza-id>` = the IRC `msgid`.
//! * Roles follow the IRC channel modes: `+o` is moderator (affiliation
//!   admin), `+v` participant (member), others participant.

use std::collections::HashMap;
use std::sync::Arc;

use bus::history::{HistoryItem, HistoryQuery, HistoryTarget, Selector};
use bus::names::fold;
use bus::schema::{
    EventBody, IntentBody, MemberInfo, MessageKind, Reply, RoomEvent, SessionReply, TopicInfo,
};

use super::conn::Conn;
use super::history::{self, Purpose};
use super::jid::{self, Jid};
use super::session::{self, Op};
use super::stanza_error::{error_element, StanzaCondition};
use super::xml::{Element, NS_CLIENT};
use crate::irc::validate::valid_channel;

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_SID: &str = "urn:xmpp:sid:0";
pub const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// History sent on join when the client does not say (`<history/>` absent).
const DEFAULT_HISTORY: u32 = 20;
/// The most history stanzas sent on join, whatever the client asks.
const MAX_HISTORY: u32 = 100;
/// The longest piece of text sent as one room message (IRC must be able
/// to carry it in one line); longer bodies are split.
use crate::text::MAX_LINE_BYTES;
/// The most lines one XMPP message may become.
const MAX_LINES: usize = 20;

#[derive(Debug, Clone)]
struct Occupant {
    nick: String,
    op: bool,
    voice: bool,
}

/// This session's place in one room.
#[derive(Debug)]
pub struct Occupancy {
    /// Display name.
    pub name: String,
    /// The nick the client asked for in its join presence.
    requested: String,
    /// The join burst was sent.
    pub joined: bool,
    /// Seq of our own JOIN: history before it, live events after it.
    join_seq: u64,
    /// How many history stanzas the client wants on join.
    history: u32,
    /// Live events held back while the join history is being fetched,
    /// with the subject that follows the history.
    held: Option<(Vec<Arc<RoomEvent>>, Option<TopicInfo>)>,
    occupants: HashMap<String, Occupant>,
}

fn role(op: bool, voice: bool) -> (&'static str, &'static str) {
    match (op, voice) {
        (true, _) => ("admin", "moderator"),
        (false, true) => ("member", "participant"),
        (false, false) => ("none", "participant"),
    }
}

fn muc_user_x(op: bool, voice: bool, statuses: &[u16]) -> Element {
    let (affiliation, role) = role(op, voice);
    let mut x = Element::new("x", NS_MUC_USER).child(
        Element::new("item", NS_MUC_USER)
            .attr("affiliation", affiliation)
            .attr("role", role),
    );
    for code in statuses {
        x = x.child(Element::new("status", NS_MUC_USER).attr("code", code.to_string()));
    }
    x
}

/// An occupant's (op, voice), if `nick` is in `room` as this session sees it.
pub fn occupant_flags(c: &Conn, room: &str, nick: &str) -> Option<(bool, bool)> {
    let occ = c.session.as_ref()?.rooms.get(&fold(room))?;
    occ.occupants.get(&fold(nick)).map(|o| (o.op, o.voice))
}

/// Every occupant of `room` with whether it is an operator.
pub fn occupant_roles(c: &Conn, room: &str) -> Vec<(String, bool)> {
    let Some(occ) = c.session.as_ref().and_then(|s| s.rooms.get(&fold(room))) else {
        return Vec::new();
    };
    occ.occupants
        .values()
        .map(|o| (o.nick.clone(), o.op))
        .collect()
}

/// The nicks in `room` that belong to sessions of `account`: the account
/// name itself and its `account|n` siblings (XMPP sessions, and IRC users
/// whose nick is their account).
pub fn nicks_of_account(c: &Conn, room: &str, account: &str) -> Vec<String> {
    let Some(occ) = c.session.as_ref().and_then(|s| s.rooms.get(&fold(room))) else {
        return Vec::new();
    };
    let account = fold(account);
    occ.occupants
        .values()
        .filter(|o| {
            let n = fold(&o.nick);
            n == account || n.split_once('|').is_some_and(|(base, _)| base == account)
        })
        .map(|o| o.nick.clone())
        .collect()
}

/// ISO 8601 with milliseconds, UTC (XEP-0082).
pub fn stamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub use crate::text::me_of as body_of;

/// XMPP body → IRC lines: one per line of the body (empty ones dropped),
/// long ones cut at character boundaries; `/me` becomes CTCP ACTION.
pub fn lines_of(body: &str) -> Vec<String> {
    crate::text::split_lines(body, MAX_LINE_BYTES)
        .into_iter()
        .map(|l| match l.strip_prefix("/me ") {
            Some(action) => format!("\u{1}ACTION {action}\u{1}"),
            None => l.to_string(),
        })
        .collect()
}

/// The IRC typing tag for an XEP-0085 chat state.
pub fn typing_of(e: &Element) -> Option<&'static str> {
    e.elements()
        .filter(|c| c.ns == NS_CHATSTATES)
        .find_map(|c| match c.name.as_str() {
            "composing" => Some("active"),
            "paused" => Some("paused"),
            "active" | "inactive" | "gone" => Some("done"),
            _ => None,
        })
}

/// The chat state element for an IRC typing tag.
pub fn chatstate_of(typing: &str) -> Option<Element> {
    let name = match typing {
        "active" => "composing",
        "paused" => "paused",
        "done" => "active",
        _ => return None,
    };
    Some(Element::new(name, NS_CHATSTATES))
}

fn my_jid(c: &Conn) -> String {
    c.jid.clone().unwrap_or_default()
}

fn presence_error(c: &Conn, from: &str, condition: StanzaCondition, text: Option<&str>) -> Element {
    Element::new("presence", NS_CLIENT)
        .attr("type", "error")
        .attr("from", from)
        .attr("to", my_jid(c))
        .child(Element::new("x", NS_MUC))
        .child(error_element(NS_CLIENT, condition, text))
}

pub(super) fn message_error(
    c: &Conn,
    from: &str,
    id: Option<&str>,
    condition: StanzaCondition,
    text: Option<&str>,
) -> Element {
    Element::new("message", NS_CLIENT)
        .attr("type", "error")
        .attr_opt("id", id)
        .attr("from", from)
        .attr("to", my_jid(c))
        .child(error_element(NS_CLIENT, condition, text))
}

/// The room a MUC JID names, as an IRC-valid room name.
fn room_name(to: &Jid) -> Option<String> {
    let local = to.local.as_deref()?;
    let name = jid::unescape_local(local);
    valid_channel(&format!("#{name}")).then_some(name)
}

/// Presence addressed to the MUC service: join, presence update, leave.
pub async fn on_presence(c: &mut Conn, e: &Element, to: &Jid) {
    let raw_to = e.get_attr("to").unwrap_or_default().to_string();
    let kind = e.get_attr("type").unwrap_or("");
    let Some(room) = room_name(to) else {
        if kind.is_empty() {
            c.push(presence_error(
                c,
                &raw_to,
                StanzaCondition::JidMalformed,
                None,
            ));
        }
        return;
    };
    let folded = fold(&room);
    match kind {
        "" => {
            let Some(nick) = to.resource.clone().filter(|n| !n.trim().is_empty()) else {
                // XEP-0045 §7.2.1: a join needs a nick.
                let text = Some("a room nick is required");
                c.push(presence_error(
                    c,
                    &raw_to,
                    StanzaCondition::JidMalformed,
                    text,
                ));
                return;
            };
            if session::in_room(c, &folded) {
                // A presence update in the room: show/status is the
                // session's away state, as on IRC.
                let away = super::presence::away_of(e);
                session::set_away(c, away).await;
                return;
            }
            join(c, e, room, nick, raw_to).await;
        }
        "unavailable" => {
            if !session::in_room(c, &folded) {
                return;
            }
            let reason = e
                .find("status", NS_CLIENT)
                .map(|s| s.text_content())
                .filter(|s| !s.is_empty());
            let body = IntentBody::Part { room, reason };
            if let Some(id) = session::intent(c, body).await {
                if let Some(s) = c.session.as_mut() {
                    s.remember(id, Op::Other { room: folded });
                }
            }
        }
        _ => {}
    }
}

async fn join(c: &mut Conn, e: &Element, room: String, nick: String, to: String) {
    let muc = e.find("x", NS_MUC);
    let key = muc
        .and_then(|x| x.find("password", NS_MUC))
        .map(|p| p.text_content())
        .filter(|p| !p.is_empty());
    let history = muc
        .and_then(|x| x.find("history", NS_MUC))
        .map(|h| {
            h.get_attr("maxstanzas")
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(DEFAULT_HISTORY)
        })
        .unwrap_or(DEFAULT_HISTORY)
        .min(MAX_HISTORY);
    let folded = fold(&room);
    let body = IntentBody::Join {
        room: room.clone(),
        key,
    };
    let Some(id) = session::intent(c, body).await else {
        let text = Some("the request could not be delivered, please try again");
        c.push(presence_error(
            c,
            &to,
            StanzaCondition::InternalServerError,
            text,
        ));
        return;
    };
    let Some(s) = c.session.as_mut() else {
        return;
    };
    s.rooms.insert(
        folded.clone(),
        Occupancy {
            name: room,
            requested: nick,
            joined: false,
            join_seq: 0,
            history,
            held: None,
            occupants: HashMap::new(),
        },
    );
    s.remember(id, Op::Join { room: folded, to });
}

/// A groupchat message (or subject change) to a room.
pub async fn on_groupchat(c: &mut Conn, e: &Element, to: &Jid) {
    let raw_to = e.get_attr("to").unwrap_or_default().to_string();
    let id = e.get_attr("id").map(str::to_string);
    let room = room_name(to).filter(|r| session::in_room(c, r));
    let Some(room) = room else {
        let text = Some("you are not in this room");
        c.push(message_error(
            c,
            &raw_to,
            id.as_deref(),
            StanzaCondition::NotAcceptable,
            text,
        ));
        return;
    };
    if let Some(retract) = e.find("retract", super::retract::NS_RETRACT) {
        // XEP-0424: the body is only the fallback for clients that know no
        // retraction; it is not a message of its own.
        return super::retract::on_retract(c, room, raw_to, id, retract).await;
    }
    let body = e.find("body", NS_CLIENT).map(|b| b.text_content());
    let mut intents = Vec::new();
    match (body, e.find("subject", NS_CLIENT)) {
        (None, Some(subject)) => intents.push(IntentBody::Topic {
            room: room.clone(),
            topic: Some(subject.text_content()),
        }),
        (Some(body), _) => {
            let lines = lines_of(&body);
            if lines.len() > MAX_LINES {
                let text = Some("the message has too many lines");
                c.push(message_error(
                    c,
                    &raw_to,
                    id.as_deref(),
                    StanzaCondition::PolicyViolation,
                    text,
                ));
                return;
            }
            intents.extend(lines.into_iter().map(|text| IntentBody::Message {
                room: room.clone(),
                kind: MessageKind::Privmsg,
                text,
                tags: Default::default(),
            }));
        }
        (None, None) => {
            // A chat state: a typing signal (see `crate::typing`).
            if let (Some(typing), Some(s)) = (typing_of(e), c.session.as_ref()) {
                let tags = [("+typing".to_string(), typing.to_string())].into();
                let name = s.rooms.get(&fold(&room)).map(|o| o.name.clone());
                let name = name.unwrap_or_else(|| room.clone());
                crate::typing::signal(&c.gw, &s.actor, &name, tags).await;
            }
        }
    }
    for (n, body) in intents.into_iter().enumerate() {
        match session::intent(c, body).await {
            Some(intent) => {
                if let Some(s) = c.session.as_mut() {
                    // The first line's reflection carries the client's id.
                    let id = if n == 0 { id.clone() } else { None };
                    let op = Op::Message {
                        to: raw_to.clone(),
                        id,
                    };
                    s.remember(intent, op);
                }
            }
            None => {
                let text = Some("the message could not be delivered, please try again");
                let err = StanzaCondition::InternalServerError;
                c.push(message_error(c, &raw_to, id.as_deref(), err, text));
                return;
            }
        }
    }
}

/// A router reply for this session.
pub async fn on_reply(c: &mut Conn, r: &SessionReply) {
    let Some(op) = c.session.as_mut().and_then(|s| s.answered(&r.intent)) else {
        return;
    };
    match (&r.body, op) {
        (
            Reply::Joined {
                room,
                topic,
                members,
                ..
            },
            Op::Join { .. },
        ) => joined(c, room, topic.clone(), members).await,
        (Reply::Error { code, .. }, Op::Join { room, to }) => {
            if let Some(s) = c.session.as_mut() {
                s.rooms.remove(&room);
            }
            c.push(presence_error(c, &to, StanzaCondition::of(*code), None));
        }
        (Reply::Error { code, .. }, Op::Message { to, id, .. }) => {
            c.push(message_error(
                c,
                &to,
                id.as_deref(),
                StanzaCondition::of(*code),
                None,
            ));
        }
        (reply, Op::Admin { iq }) => super::muc_admin::on_reply(c, &iq, reply),
        (Reply::Error { code, .. }, Op::Other { room }) => {
            let from = jid::room_jid(&room, &c.xmpp.domain);
            c.push(message_error(
                c,
                &from,
                None,
                StanzaCondition::of(*code),
                None,
            ));
        }
        _ => {}
    }
}

/// The join burst: occupants, self-presence, then history and subject.
async fn joined(c: &mut Conn, room: &str, topic: Option<TopicInfo>, members: &[MemberInfo]) {
    let domain = c.xmpp.domain.clone();
    let to = my_jid(c);
    let Some(s) = c.session.as_mut() else {
        return;
    };
    let my_nick = s.actor.nick.clone();
    let Some(occ) = s.rooms.get_mut(room) else {
        return;
    };
    occ.joined = true;
    let mut out = Vec::new();
    let mut me = (false, false);
    for m in members {
        occ.occupants.insert(
            fold(&m.nick),
            Occupant {
                nick: m.nick.clone(),
                op: m.op,
                voice: m.voice,
            },
        );
        if fold(&m.nick) == fold(&my_nick) {
            me = (m.op, m.voice);
            continue;
        }
        let mut p = Element::new("presence", NS_CLIENT)
            .attr("from", jid::occupant_jid(room, &m.nick, &domain))
            .attr("to", to.as_str());
        if m.away {
            p = p.child(Element::new("show", NS_CLIENT).text("away"));
        }
        out.push(p.child(muc_user_x(m.op, m.voice, &[])));
    }
    let mut statuses = vec![110];
    if occ.requested != my_nick {
        statuses.push(210);
    }
    out.push(
        Element::new("presence", NS_CLIENT)
            .attr("from", jid::occupant_jid(room, &my_nick, &domain))
            .attr("to", to.as_str())
            .child(muc_user_x(me.0, me.1, &statuses)),
    );
    let wants_history = occ.history > 0;
    let limit = occ.history;
    if wants_history {
        occ.held = Some((Vec::new(), topic.clone()));
    }
    for e in out {
        c.push(e);
    }
    session::note_rooms(c).await;
    if !wants_history {
        c.push(subject(&domain, room, topic.as_ref(), &to));
        return;
    }
    let query = HistoryQuery::Fetch {
        target: HistoryTarget::Room {
            room: room.to_string(),
        },
        selector: Selector::Latest { after: None },
        limit,
        events: false,
    };
    let purpose = Purpose::JoinHistory {
        room: room.to_string(),
    };
    if !history::request(c, query, purpose).await {
        history_done(c, room, &[]);
    }
}

/// The subject message that ends a join burst (empty when there is none).
fn subject(domain: &str, room: &str, topic: Option<&TopicInfo>, to: &str) -> Element {
    let from = match topic {
        Some(t) if !t.set_by.is_empty() => {
            let nick = t.set_by.split('!').next().unwrap_or(&t.set_by);
            jid::occupant_jid(room, nick, domain)
        }
        _ => jid::room_jid(room, domain),
    };
    let text = topic.map(|t| t.text.clone()).unwrap_or_default();
    Element::new("message", NS_CLIENT)
        .attr("type", "groupchat")
        .attr("from", from)
        .attr("to", to)
        .attr("id", bus::new_id())
        .child(Element::new("subject", NS_CLIENT).text(text))
}

/// The join history arrived (or failed: `items` empty): send it, the
/// subject, and the live events held meanwhile.
pub fn history_done(c: &mut Conn, room: &str, items: &[HistoryItem]) {
    let domain = c.xmpp.domain.clone();
    let to = my_jid(c);
    let Some(occ) = c.session.as_mut().and_then(|s| s.rooms.get_mut(room)) else {
        return;
    };
    let Some((held, topic)) = occ.held.take() else {
        return;
    };
    let join_seq = occ.join_seq;
    let mut out: Vec<Element> = items
        .iter()
        .filter(|i| join_seq == 0 || i.seq < join_seq)
        .filter_map(|i| history_message(&domain, room, i, &to))
        .collect();
    out.push(subject(&domain, room, topic.as_ref(), &to));
    for e in out {
        c.push(e);
    }
    for ev in held {
        render(c, &ev);
    }
}

/// A stored room message as a delayed groupchat message.
pub fn history_message(domain: &str, room: &str, item: &HistoryItem, to: &str) -> Option<Element> {
    let EventBody::Message { kind, text, .. } = &item.body else {
        return None;
    };
    if *kind == MessageKind::Tagmsg {
        return None;
    }
    Some(
        Element::new("message", NS_CLIENT)
            .attr("type", "groupchat")
            .attr("from", jid::occupant_jid(room, &item.from.nick, domain))
            .attr("to", to)
            .attr("id", item.id.as_str())
            .child(Element::new("body", NS_CLIENT).text(body_of(text)))
            .child(
                Element::new("delay", NS_DELAY)
                    .attr("from", jid::room_jid(room, domain))
                    .attr("stamp", stamp(item.at)),
            )
            .child(stanza_id(domain, room, &item.id)),
    )
}

fn stanza_id(domain: &str, room: &str, id: &str) -> Element {
    Element::new("stanza-id", NS_SID)
        .attr("id", id)
        .attr("by", jid::room_jid(room, domain))
}

/// A room event for this session.
pub async fn on_event(c: &mut Conn, ev: Arc<RoomEvent>) {
    let mine = ev.actor.sid == c.sid;
    let Some(occ) = c.session.as_mut().and_then(|s| s.rooms.get_mut(&ev.room)) else {
        return;
    };
    if mine && matches!(ev.body, EventBody::Join) {
        occ.join_seq = ev.seq;
        return;
    }
    if !occ.joined {
        return;
    }
    if let Some((held, _)) = occ.held.as_mut() {
        held.push(ev);
        return;
    }
    let left = render(c, &ev);
    if left {
        if let Some(s) = c.session.as_mut() {
            s.rooms.remove(&ev.room);
        }
        session::note_rooms(c).await;
    }
}

/// Renders one live event; returns true if this session left the room.
fn render(c: &mut Conn, ev: &RoomEvent) -> bool {
    let domain = c.xmpp.domain.clone();
    let to = my_jid(c);
    let my_sid = c.sid.clone();
    let room = ev.room.as_str();
    let mine = ev.actor.sid == my_sid;
    let my_nick = c
        .session
        .as_ref()
        .map(|s| fold(&s.actor.nick))
        .unwrap_or_default();
    let mut reflected_id = None;
    if mine {
        match c.session.as_mut().and_then(|s| s.answered(&ev.id)) {
            Some(Op::Message { id, .. }) => reflected_id = id,
            Some(Op::Admin { iq }) => super::bind::result(c, &iq, None),
            _ => {}
        }
    }
    let Some(occ) = c.session.as_mut().and_then(|s| s.rooms.get_mut(room)) else {
        return false;
    };
    let occupant = |nick: &str| jid::occupant_jid(room, nick, &domain);
    let presence = |nick: &str| {
        Element::new("presence", NS_CLIENT)
            .attr("from", occupant(nick))
            .attr("to", to.as_str())
    };
    let flags = |occ: &Occupancy, nick: &str| {
        occ.occupants
            .get(&fold(nick))
            .map(|o| (o.op, o.voice))
            .unwrap_or((false, false))
    };
    let nick = ev.actor.nick.as_str();
    let mut out = Vec::new();
    let mut left = false;
    match &ev.body {
        EventBody::Join => {
            occ.occupants.insert(
                fold(nick),
                Occupant {
                    nick: nick.to_string(),
                    op: false,
                    voice: false,
                },
            );
            out.push(presence(nick).child(muc_user_x(false, false, &[])));
        }
        EventBody::Part { reason } => {
            let (op, voice) = flags(occ, nick);
            occ.occupants.remove(&fold(nick));
            let statuses: &[u16] = if mine { &[110] } else { &[] };
            let mut p = presence(nick).attr("type", "unavailable");
            if let Some(r) = reason {
                p = p.child(Element::new("status", NS_CLIENT).text(r.as_str()));
            }
            out.push(p.child(unavailable_x(op, voice, statuses)));
            left = mine;
        }
        EventBody::Quit { reason, .. } => {
            let (op, voice) = flags(occ, nick);
            occ.occupants.remove(&fold(nick));
            let statuses: &[u16] = if mine { &[110] } else { &[] };
            out.push(
                presence(nick)
                    .attr("type", "unavailable")
                    .child(Element::new("status", NS_CLIENT).text(reason.as_str()))
                    .child(unavailable_x(op, voice, statuses)),
            );
            left = mine;
        }
        EventBody::Kick {
            target_sid,
            target_nick,
            reason,
        } => {
            let (op, _) = flags(occ, target_nick);
            occ.occupants.remove(&fold(target_nick));
            let me = *target_sid == my_sid;
            let mut item = Element::new("item", NS_MUC_USER)
                .attr("affiliation", role(op, false).0)
                .attr("role", "none")
                .child(Element::new("actor", NS_MUC_USER).attr("nick", nick));
            if let Some(r) = reason {
                item = item.child(Element::new("reason", NS_MUC_USER).text(r.as_str()));
            }
            let mut x = Element::new("x", NS_MUC_USER).child(item);
            for code in if me {
                &[307u16, 110][..]
            } else {
                &[307u16][..]
            } {
                x = x.child(Element::new("status", NS_MUC_USER).attr("code", code.to_string()));
            }
            out.push(presence(target_nick).attr("type", "unavailable").child(x));
            left = me;
        }
        EventBody::Nick { new, .. } => {
            let (op, voice) = flags(occ, nick);
            occ.occupants.remove(&fold(nick));
            occ.occupants.insert(
                fold(new),
                Occupant {
                    nick: new.clone(),
                    op,
                    voice,
                },
            );
            let (affiliation, r) = role(op, voice);
            let mut x = Element::new("x", NS_MUC_USER).child(
                Element::new("item", NS_MUC_USER)
                    .attr("affiliation", affiliation)
                    .attr("role", r)
                    .attr("nick", new.as_str()),
            );
            x = x.child(Element::new("status", NS_MUC_USER).attr("code", "303"));
            if mine {
                x = x.child(Element::new("status", NS_MUC_USER).attr("code", "110"));
            }
            out.push(presence(nick).attr("type", "unavailable").child(x));
            let statuses: &[u16] = if mine { &[110] } else { &[] };
            out.push(presence(new).child(muc_user_x(op, voice, statuses)));
        }
        EventBody::Away { message, .. } => {
            let (op, voice) = flags(occ, nick);
            let mut p = presence(nick);
            if let Some(m) = message {
                p = p
                    .child(Element::new("show", NS_CLIENT).text("away"))
                    .child(Element::new("status", NS_CLIENT).text(m.as_str()));
            }
            let statuses: &[u16] = if mine { &[110] } else { &[] };
            out.push(p.child(muc_user_x(op, voice, statuses)));
        }
        EventBody::Message { kind, text, tags } => {
            let mut m = Element::new("message", NS_CLIENT)
                .attr("type", "groupchat")
                .attr("from", occupant(nick))
                .attr("to", to.as_str())
                .attr("id", reflected_id.unwrap_or_else(|| ev.id.clone()));
            if *kind == MessageKind::Tagmsg {
                match tags.get("+typing").and_then(|t| chatstate_of(t)) {
                    Some(state) if !mine => m = m.child(state),
                    _ => return false,
                }
            } else {
                m = m
                    .child(Element::new("body", NS_CLIENT).text(body_of(text)))
                    .child(stanza_id(&domain, room, &ev.id));
            }
            out.push(m);
        }
        EventBody::Topic { topic } => {
            out.push(
                Element::new("message", NS_CLIENT)
                    .attr("type", "groupchat")
                    .attr("from", occupant(nick))
                    .attr("to", to.as_str())
                    .attr("id", ev.id.as_str())
                    .child(Element::new("subject", NS_CLIENT).text(topic.as_str())),
            );
        }
        EventBody::Mode { changes } => {
            for ch in changes {
                let Some(target) = ch.arg.as_deref().filter(|_| matches!(ch.mode, 'o' | 'v'))
                else {
                    continue;
                };
                let Some(o) = occ.occupants.get_mut(&fold(target)) else {
                    continue;
                };
                if ch.mode == 'o' {
                    o.op = ch.add;
                } else {
                    o.voice = ch.add;
                }
                let (op, voice, shown) = (o.op, o.voice, o.nick.clone());
                let me = my_nick == fold(&shown);
                let statuses: &[u16] = if me { &[110] } else { &[] };
                out.push(presence(&shown).child(muc_user_x(op, voice, statuses)));
            }
        }
        EventBody::Redact { .. } => {
            let id = reflected_id.unwrap_or_else(|| ev.id.clone());
            out.extend(super::retract::retraction(ev, &domain, &to, &id));
        }
        // MUC has no realname or host, and XMPP invitations reach only the
        // invitee.
        EventBody::Account { .. }
        | EventBody::Realname { .. }
        | EventBody::Host { .. }
        | EventBody::Invite { .. } => {}
    }
    for e in out {
        c.push(e);
    }
    left
}

/// The `<x>` of an unavailable presence: the occupant's affiliation, role none.
fn unavailable_x(op: bool, voice: bool, statuses: &[u16]) -> Element {
    let mut x = Element::new("x", NS_MUC_USER).child(
        Element::new("item", NS_MUC_USER)
            .attr("affiliation", role(op, voice).0)
            .attr("role", "none"),
    );
    for code in statuses {
        x = x.child(Element::new("status", NS_MUC_USER).attr("code", code.to_string()));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_become_irc_lines_and_back() {
        assert_eq!(lines_of("hi"), vec!["hi"]);
        assert_eq!(lines_of("a\n\nb\r\n"), vec!["a", "b"]);
        assert_eq!(lines_of("/me waves"), vec!["\u{1}ACTION waves\u{1}"]);
        assert_eq!(body_of("\u{1}ACTION waves\u{1}"), "/me waves");
        let long = "é".repeat(300);
        let lines = lines_of(&long);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE_BYTES));
        assert_eq!(lines.concat(), long);
    }

    #[test]
    fn roles_follow_channel_modes() {
        assert_eq!(role(true, true), ("admin", "moderator"));
        assert_eq!(role(false, true), ("member", "participant"));
        assert_eq!(role(false, false), ("none", "participant"));
    }

    #[test]
    fn stamps_are_utc_with_milliseconds() {
        assert_eq!(stamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(stamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
