//! Topics: `me`, `fnd` and group topics, which are the router's rooms.
//!
//! Attaching to a group (`{sub}`) is a JOIN, `{leave}` a PART, and the
//! session's attachments end with its QUIT, so a Tinode user is a member
//! of the room exactly while attached, as IRC and XMPP users are. Group
//! `new…` creates a room with a fresh name; any room, whoever created it,
//! is the group `grp<name>` (see [`super::ids`]).
//!
//! The members list (`{meta sub}`) and `{pres}` on/off come from the
//! router's `joined` reply and the room's events; access modes are read
//! off the IRC channel modes (`+o` owns, `+m` without voice cannot write).

use std::collections::HashMap;

use bus::names::fold;
use bus::schema::{ErrorCode, EventBody, IntentBody, MemberInfo, Reply, RoomEvent, SessionReply};
use serde_json::{json, Value};

use super::conn::{Conn, Wait};
use super::wire::{self, code, GetQuery, Leave, Sub};
use super::{data, del, fnd, ids, marks, me, p2p, set};

/// A group topic the session is attached to.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The folded room.
    pub room: String,
    /// The room's display name (without `#`).
    pub name: String,
    /// Members by sid: their user id, nick and whether they are ops.
    pub members: HashMap<String, Member>,
    /// The newest message number seen.
    pub mseq: u64,
    pub created: i64,
    /// When the newest message was sent (0: none seen).
    pub touched: i64,
    pub topic_text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub uid: String,
    pub nick: String,
    pub op: bool,
}

impl Attached {
    fn has_user(&self, uid: &str) -> bool {
        self.members.values().any(|m| m.uid == uid)
    }

    pub(super) fn is_op(&self, sid: &str) -> bool {
        self.members.get(sid).is_some_and(|m| m.op)
    }
}

/// A `{sub}` of a group waiting for the router's `joined`.
#[derive(Debug)]
pub struct Joining {
    pub id: Option<String>,
    /// The `grp…` name the topic will have.
    pub topic: String,
    /// For `new…`: the name the client used.
    pub tmpname: Option<String>,
    pub get: Option<GetQuery>,
}

/// The access mode of a member: owners (ops) have everything, others the
/// default of a Tinode group.
pub(super) fn acs(op: bool) -> Value {
    let mode = if op { "JRWPASDO" } else { "JRWPS" };
    json!({"want": mode, "given": mode, "mode": mode})
}

pub async fn on_sub(c: &mut Conn, sub: Sub) {
    let id = sub.id.clone();
    let id = id.as_deref();
    let topic = sub.topic.clone();
    match topic.as_str() {
        "me" | "fnd" => {
            let attached = if topic == "me" { &mut c.me } else { &mut c.fnd };
            if *attached {
                c.reply(wire::ctrl(id, code::ALREADY_SUBSCRIBED).topic(&topic));
                return;
            }
            *attached = true;
            c.reply(wire::ctrl(id, code::OK).topic(&topic));
            if let Some(get) = &sub.get {
                answer_get(c, id, &topic, get).await;
            }
        }
        t if t.starts_with("new") || t.starts_with("nch") => {
            let name = ids::new_room_name();
            let joining = Joining {
                id: sub.id.clone(),
                topic: ids::group_topic(&name),
                tmpname: Some(topic.clone()),
                get: sub.get.clone(),
            };
            join(c, name, joining).await;
        }
        t if t.starts_with("grp") => {
            let Some(room) = ids::room_of(t) else {
                c.reply(wire::ctrl(id, code::NOT_FOUND).topic(&topic));
                return;
            };
            if c.topics.contains_key(t) {
                c.reply(wire::ctrl(id, code::ALREADY_SUBSCRIBED).topic(&topic));
                return;
            }
            // Only rooms that exist (or existed) are groups: a `{sub}` of
            // a name nobody used is "not found", as in Tinode.
            let name = match find_room(c, &room).await {
                Ok(Some(record)) => record.name,
                Ok(None) => {
                    c.reply(wire::ctrl(id, code::NOT_FOUND).topic(&topic));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tinode: reading a room record failed");
                    c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(&topic));
                    return;
                }
            };
            let joining = Joining {
                id: sub.id.clone(),
                topic: topic.clone(),
                tmpname: None,
                get: sub.get.clone(),
            };
            join(c, name, joining).await;
        }
        t if t == c.uid() => {
            c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(&topic));
        }
        t if t.starts_with("usr") => p2p::on_sub(c, sub).await,
        _ => c.reply(wire::ctrl(id, code::NOT_FOUND).topic(&topic)),
    }
}

/// How long a `{sub}` waits for a room record that is not there yet.
const ROOM_RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The room's record. A room created a moment ago (a group made on another
/// gateway, whose creator just shared its name) may not be written yet:
/// the router writes records after the batch that changed them, so a
/// missing one is looked for again for a moment before it counts as absent.
async fn find_room(
    c: &Conn,
    room: &str,
) -> Result<Option<bus::schema::RoomRecord>, crate::registry::RegistryError> {
    let deadline = tokio::time::Instant::now() + ROOM_RECORD_WAIT;
    loop {
        match c.gw.registry.room(room).await? {
            Some(record) => return Ok(Some(record)),
            None if tokio::time::Instant::now() >= deadline => return Ok(None),
            None => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

async fn join(c: &mut Conn, name: String, joining: Joining) {
    let id = joining.id.clone();
    let topic = joining.tmpname.clone().unwrap_or(joining.topic.clone());
    let body = IntentBody::Join {
        room: name,
        key: None,
    };
    if c.intent(body, Some(Wait::Join(joining))).await.is_none() {
        c.reply(wire::ctrl(id.as_deref(), code::UNAVAILABLE).topic(&topic));
    }
}

/// The router's answer to one of this session's intents.
pub async fn on_reply(c: &mut Conn, r: &SessionReply) {
    let Some(wait) = c.take_wait(&r.intent) else {
        return;
    };
    match (wait, &r.body) {
        (
            Wait::Join(j),
            Reply::Joined {
                room,
                name,
                topic,
                members,
                ..
            },
        ) => {
            joined(
                c,
                j,
                room,
                name,
                topic.as_ref().map(|t| t.text.clone()),
                members,
            )
            .await
        }
        (Wait::Join(j), Reply::Error { code: e, .. }) => {
            let topic = j.tmpname.clone().unwrap_or(j.topic.clone());
            c.reply(refusal(j.id.as_deref(), *e).topic(&topic));
        }
        (Wait::Pub(p), Reply::Error { code: e, .. }) => {
            c.reply(refusal(p.id.as_deref(), *e).topic(&p.topic));
        }
        (Wait::Set(s), Reply::Error { code: e, .. }) => {
            c.reply(refusal(s.id.as_deref(), *e).topic(&s.topic));
        }
        (Wait::Redact(key), Reply::Error { code: e, .. }) => {
            if let Some(d) = c.deletions.remove(&key) {
                c.reply(refusal(d.id.as_deref(), *e).topic(&d.topic));
            }
        }
        (w, other) => tracing::debug!(?w, ?other, "tinode: an unexpected router answer"),
    }
}

/// A router error in Tinode's words.
pub fn refusal(id: Option<&str>, e: ErrorCode) -> wire::Ctrl {
    match e {
        ErrorCode::NoSuchChannel | ErrorCode::NoSuchNick => wire::ctrl(id, code::NOT_FOUND),
        ErrorCode::NotOnChannel => wire::ctrl(id, code::MUST_ATTACH),
        ErrorCode::CannotSendToChan
        | ErrorCode::BannedFromChan
        | ErrorCode::InviteOnlyChan
        | ErrorCode::BadChannelKey
        | ErrorCode::ChannelIsFull
        | ErrorCode::ChanOpPrivsNeeded => wire::ctrl(id, code::PERMISSION_DENIED),
        ErrorCode::TooManyChannels => wire::ctrl(id, code::POLICY),
        _ => wire::ctrl(id, code::MALFORMED),
    }
}

async fn joined(
    c: &mut Conn,
    j: Joining,
    room: &str,
    name: &str,
    topic_text: Option<String>,
    members: &[MemberInfo],
) {
    let my_nick = c
        .platform
        .as_ref()
        .map(|p| fold(&p.actor.nick))
        .unwrap_or_default();
    // The members list names sessions by nick; sids are only needed to
    // follow departures, and events carry them, so the list is keyed by
    // nick until the first event about each.
    let mut list = HashMap::new();
    let mut op = false;
    for m in members {
        if fold(&m.nick) == my_nick {
            op = m.op;
        }
        let key = if fold(&m.nick) == my_nick {
            c.sid.clone()
        } else {
            format!("nick:{}", fold(&m.nick))
        };
        list.insert(
            key,
            Member {
                uid: ids::member_uid(m),
                nick: m.nick.clone(),
                op: m.op,
            },
        );
    }
    // Created time and newest message number: the router's record (it may
    // lag one batch behind; live events raise `mseq` as they come).
    let (created, mseq) = match c.gw.registry.room(room).await {
        Ok(Some(rec)) => (rec.created_at, rec.mseq),
        _ => (bus::now_ms(), 0),
    };
    let att = Attached {
        room: room.to_string(),
        name: name.to_string(),
        members: list,
        mseq,
        created,
        touched: 0,
        topic_text,
    };
    c.topics.insert(j.topic.clone(), att);
    c.notes.watch(&j.topic, room);
    marks::subscribe(c, &marks::room_key(room)).await;
    let mut ctrl = wire::ctrl(j.id.as_deref(), code::OK)
        .topic(&j.topic)
        .param("acs", acs(op));
    if let Some(tmp) = &j.tmpname {
        ctrl = ctrl.param("tmpname", tmp.clone());
    }
    c.reply(ctrl);
    if let Some(get) = &j.get {
        answer_get(c, j.id.as_deref(), &j.topic, get).await;
    }
}

pub async fn on_leave(c: &mut Conn, leave: Leave) {
    let id = leave.id.as_deref();
    let topic = leave.topic.as_str();
    match topic {
        "me" | "fnd" if leave.unsub => {
            c.reply(wire::ctrl(id, code::PERMISSION_DENIED).topic(topic))
        }
        "me" | "fnd" => {
            let attached = if topic == "me" { &mut c.me } else { &mut c.fnd };
            let was = std::mem::replace(attached, false);
            if topic == "me" {
                c.contacts.clear();
            }
            let answer = if was { code::OK } else { code::NOT_JOINED };
            c.reply(wire::ctrl(id, answer).topic(topic));
        }
        t if c.peers.contains_key(t) => p2p::on_leave(c, id, t, leave.unsub).await,
        _ => {
            let Some(att) = c.topics.remove(topic) else {
                c.reply(wire::ctrl(id, code::NOT_JOINED).topic(topic));
                return;
            };
            c.notes.unwatch(topic);
            if leave.unsub {
                marks::unsubscribe(c, &marks::room_key(&att.room)).await;
            }
            let body = IntentBody::Part {
                room: att.name.clone(),
                reason: None,
            };
            if c.intent(body, None).await.is_some() {
                c.reply(wire::ctrl(id, code::OK).topic(topic));
            } else {
                // The room still has us: stay attached.
                c.notes.watch(topic, &att.room);
                c.topics.insert(topic.to_string(), att);
                c.reply(wire::ctrl(id, code::UNAVAILABLE).topic(topic));
            }
        }
    }
}

pub async fn on_get(c: &mut Conn, get: wire::Get) {
    let id = get.id.clone();
    let topic = get.topic.clone();
    let attached = match topic.as_str() {
        "me" | "fnd" => true,
        t => c.topics.contains_key(t) || c.peers.contains_key(t),
    };
    if !attached {
        c.reply(wire::ctrl(id.as_deref(), code::PERMISSION_DENIED).topic(&topic));
        return;
    }
    answer_get(c, id.as_deref(), &topic, &get.query).await;
}

/// Answers the parts of a query in Tinode's order: desc, sub, data.
pub(super) async fn answer_get(c: &mut Conn, id: Option<&str>, topic: &str, q: &GetQuery) {
    let mut answered = false;
    if q.wants("desc") {
        if let Some(desc) = desc_of(c, topic) {
            c.send(wire::meta(id, topic, "desc", desc));
            answered = true;
        }
    }
    if q.wants("sub") && topic == "me" {
        me::list(c, id).await;
        answered = true;
    } else if q.wants("sub") && topic == "fnd" {
        fnd::search(c, id).await;
        answered = true;
    } else if q.wants("sub") {
        let subs = subs_of(c, topic);
        c.send(wire::subs(id, topic, subs));
        answered = true;
    }
    if q.wants("data") && (c.topics.contains_key(topic) || c.peers.contains_key(topic)) {
        data::fetch(c, id, topic, q.data.clone().unwrap_or_default()).await;
        answered = true;
    }
    if !answered {
        let what = q.what.split_whitespace().next().unwrap_or("").to_string();
        c.reply(
            wire::ctrl(id, code::NO_CONTENT)
                .topic(topic)
                .param("what", what),
        );
    }
}

fn desc_of(c: &Conn, topic: &str) -> Option<Value> {
    if topic == "me" {
        return Some(me::desc(c));
    }
    if let Some(p) = c.peers.get(topic) {
        return Some(p2p::desc_of(c, p));
    }
    let att = c.topics.get(topic)?;
    let mut public = json!({"fn": format!("#{}", att.name)});
    if let Some(t) = att.topic_text.as_ref().filter(|t| !t.is_empty()) {
        public["note"] = t.clone().into();
    }
    let mut desc = json!({
        "created": wire::ts(att.created),
        "updated": wire::ts(att.created.max(att.touched)),
        "defacs": {"auth": "JRWPS", "anon": "N"},
        "acs": acs(att.is_op(&c.sid)),
        "public": public,
    });
    if att.mseq > 0 {
        desc["seq"] = att.mseq.into();
    }
    if att.touched > 0 {
        desc["touched"] = wire::ts(att.touched).into();
    }
    let (read, recv) = c.marks.markers(&marks::room_key(&att.room));
    if read > 0 {
        desc["read"] = read.into();
    }
    if recv > 0 {
        desc["recv"] = recv.into();
    }
    Some(desc)
}

fn subs_of(c: &Conn, topic: &str) -> Vec<Value> {
    let now = wire::ts(bus::now_ms());
    match topic {
        "me" | "fnd" => Vec::new(),
        t if c.peers.contains_key(t) => p2p::subs_of(c, t, &c.peers[t]),
        t => {
            let Some(att) = c.topics.get(t) else {
                return Vec::new();
            };
            // One entry per user, however many sessions it has there.
            let mut users: Vec<(&str, &Member, bool)> = Vec::new();
            for m in att.members.values() {
                match users.iter_mut().find(|(uid, _, _)| *uid == m.uid) {
                    Some(entry) => entry.2 |= m.op,
                    None => users.push((m.uid.as_str(), m, m.op)),
                }
            }
            users.sort_by(|a, b| a.0.cmp(b.0));
            users
                .into_iter()
                .map(|(uid, m, op)| {
                    json!({
                        "user": uid,
                        "updated": now,
                        "acs": acs(op),
                        "public": {"fn": m.nick},
                        "online": true,
                    })
                })
                .collect()
        }
    }
}

/// A room event for an attached topic.
pub async fn on_event(c: &mut Conn, ev: &RoomEvent) {
    let topic = ids::group_topic(&ev.room);
    if !c.topics.contains_key(&topic) {
        return;
    }
    let mine = ev.actor.sid == c.sid;
    match &ev.body {
        EventBody::Message { .. } => data::on_message(c, &topic, ev),
        EventBody::Redact { .. } => del::on_event(c, &topic, ev),
        EventBody::Join if !mine => {
            let uid = ids::actor_uid(&ev.actor);
            let Some(att) = c.topics.get_mut(&topic) else {
                return;
            };
            let new_user = !att.has_user(&uid);
            att.members
                .remove(&format!("nick:{}", fold(&ev.actor.nick)));
            att.members.insert(
                ev.actor.sid.clone(),
                Member {
                    uid: uid.clone(),
                    nick: ev.actor.nick.clone(),
                    op: false,
                },
            );
            if new_user {
                c.send(wire::pres(&topic, &uid, "on"));
            }
        }
        EventBody::Part { .. } | EventBody::Quit { .. } if !mine => {
            departed(c, &topic, &ev.actor.sid, &ev.actor.nick)
        }
        EventBody::Kick {
            target_sid,
            target_nick,
            ..
        } => {
            if *target_sid == c.sid {
                c.topics.remove(&topic);
                c.notes.unwatch(&topic);
                c.reply(wire::ctrl(None, code::EVICTED).topic(&topic));
            } else {
                departed(c, &topic, target_sid, target_nick);
            }
        }
        EventBody::Nick { new, .. } => {
            if let Some(att) = c.topics.get_mut(&topic) {
                if let Some(m) = member_mut(att, &ev.actor.sid, &ev.actor.nick) {
                    m.nick = new.clone();
                }
            }
        }
        EventBody::Mode { changes } => {
            if let Some(att) = c.topics.get_mut(&topic) {
                for ch in changes.iter().filter(|ch| ch.mode == 'o') {
                    let Some(nick) = &ch.arg else { continue };
                    let folded = fold(nick);
                    for m in att.members.values_mut() {
                        if fold(&m.nick) == folded {
                            m.op = ch.add;
                        }
                    }
                }
            }
        }
        EventBody::Topic { topic: text } => {
            if let Some(att) = c.topics.get_mut(&topic) {
                att.topic_text = Some(text.clone());
            }
            if mine {
                set::on_topic_event(c, &ev.id);
            }
        }
        _ => {}
    }
}

fn member_mut<'a>(att: &'a mut Attached, sid: &str, nick: &str) -> Option<&'a mut Member> {
    let key = if att.members.contains_key(sid) {
        sid.to_string()
    } else {
        format!("nick:{}", fold(nick))
    };
    att.members.get_mut(&key)
}

/// A member left (part, quit, kick): `{pres off}` once its user has no
/// session left in the room.
fn departed(c: &mut Conn, topic: &str, sid: &str, nick: &str) {
    let Some(att) = c.topics.get_mut(topic) else {
        return;
    };
    let removed = att
        .members
        .remove(sid)
        .or_else(|| att.members.remove(&format!("nick:{}", fold(nick))));
    if let Some(m) = removed {
        if !att.has_user(&m.uid) {
            c.send(wire::pres(topic, &m.uid, "off"));
        }
    }
}
