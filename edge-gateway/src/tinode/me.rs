//! The `me` topic's subscriptions: the user's chat list.
//!
//! It is put together from three places, none of which holds it all:
//!
//! * the auth service's topic state ([`super::marks`]): subscribed groups,
//!   and the read / received markers of every topic;
//! * the history service's `Targets`: the one-to-one conversations the
//!   account has had (with whomever, on any protocol), with their newest
//!   message number and time, and the newest activity of the groups;
//! * the router's room records in NATS: each group's newest message
//!   number, display name and creation time.
//!
//! The first two are asked at once; the list is sent when both have
//! answered (or after [`LIST_TIMEOUT`], with what came).

use std::collections::HashMap;
use std::time::Duration;

use bus::history::{HistoryQuery, HistoryReplyBody, HistoryTarget, TargetSummary};
use bus::schema::{AuthReplyBody, AuthRequestBody, TopicState};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::conn::{Conn, Wait};
use super::ids::{self, PeerId};
use super::marks::{self, room_key};
use super::wire;

/// How long the listing waits for its two answers.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most conversations asked of history.
const MAX_CONVERSATIONS: u32 = 200;
/// The access mode of the user on `me`.
const ME_MODE: &str = "JPS";

/// A `{get me what:"sub"}` being put together.
#[derive(Debug)]
pub struct Listing {
    pub id: Option<String>,
    topics: Option<Vec<TopicState>>,
    targets: Option<Vec<TargetSummary>>,
    pub deadline: Instant,
}

/// `me`'s description.
pub fn desc(c: &Conn) -> Value {
    let now = wire::ts(bus::now_ms());
    let account = c
        .user
        .as_ref()
        .map(|u| u.account.clone())
        .unwrap_or_default();
    json!({
        "created": now,
        "updated": now,
        "defacs": {"auth": "JRWPAS", "anon": "N"},
        "acs": {"want": ME_MODE, "given": ME_MODE, "mode": ME_MODE},
        "public": {"fn": account},
    })
}

/// Starts a listing (answered by [`finish`]).
pub async fn list(c: &mut Conn, id: Option<&str>) {
    let Some(account) = c.user.as_ref().map(|u| u.account.clone()) else {
        return;
    };
    c.listing = Some(Listing {
        id: id.map(str::to_string),
        topics: None,
        targets: None,
        deadline: Instant::now() + LIST_TIMEOUT,
    });
    if c.ask_auth(AuthRequestBody::TopicsGet { account }, Wait::ListTopics)
        .await
        .is_none()
    {
        // Without the stored state, the session's copy stands in.
        set_topics(c, None);
    }
    let mut rooms = c.marks.subscribed_rooms();
    rooms.extend(c.topics.values().map(|t| t.room.clone()));
    let query = HistoryQuery::Targets {
        from: bus::now_ms(),
        to: 0,
        limit: MAX_CONVERSATIONS,
        rooms,
    };
    if c.ask_history(query, Wait::ListTargets).await.is_none() {
        set_targets(c, Vec::new());
        finish_if_complete(c).await;
    }
}

fn set_topics(c: &mut Conn, items: Option<Vec<TopicState>>) {
    if let Some(items) = &items {
        c.marks.load(items.clone());
    }
    if let Some(l) = c.listing.as_mut() {
        l.topics = Some(items.unwrap_or_default());
    }
}

fn set_targets(c: &mut Conn, items: Vec<TargetSummary>) {
    if let Some(l) = c.listing.as_mut() {
        l.targets = Some(items);
    }
}

/// Sends the list once both halves are in.
async fn finish_if_complete(c: &mut Conn) {
    if c.listing
        .as_ref()
        .is_some_and(|l| l.topics.is_some() && l.targets.is_some())
    {
        finish(c).await;
    }
}

pub async fn on_topics(c: &mut Conn, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Topics { items } => set_topics(c, Some(items)),
        other => {
            tracing::debug!(?other, "tinode: topic state unavailable for me");
            set_topics(c, None);
        }
    }
    finish_if_complete(c).await;
}

pub async fn on_targets(c: &mut Conn, body: HistoryReplyBody) {
    let items = match body {
        HistoryReplyBody::Targets { items } => items,
        other => {
            tracing::debug!(?other, "tinode: conversations unavailable for me");
            Vec::new()
        }
    };
    set_targets(c, items);
    finish_if_complete(c).await;
}

/// The listing's deadline passed: send what is known.
pub async fn on_deadline(c: &mut Conn) {
    if c.listing
        .as_ref()
        .is_some_and(|l| l.deadline <= Instant::now())
    {
        finish(c).await;
    }
}

/// Sends the list.
async fn finish(c: &mut Conn) {
    let Some(listing) = c.listing.take() else {
        return;
    };
    let targets = listing.targets.unwrap_or_default();
    let mut subs = entries(c, &targets).await;
    online(c, &mut subs).await;
    let id = listing.id.as_deref();
    c.send(wire::subs(id, "me", subs));
}

/// Marks the contacts online now, and (while `me` is attached) follows
/// them for `{pres}` ([`super::contacts`]).
async fn online(c: &mut Conn, subs: &mut [Value]) {
    let nats = c.gw.registry.nats().clone();
    let prefix = c.gw.registry.prefix().to_string();
    for s in subs.iter_mut().take(super::contacts::MAX_CONTACTS) {
        let Some(PeerId::Account(account)) = s["topic"].as_str().and_then(ids::peer_of) else {
            continue;
        };
        let online = c.gw.registry.account_online(&account).await;
        if online {
            s["online"] = true.into();
        }
        if c.me {
            c.contacts.follow(&nats, &prefix, &account, online);
        }
    }
}

/// One entry per group (subscribed or attached) and per one-to-one
/// conversation (had, or attached), newest activity first.
async fn entries(c: &Conn, targets: &[TargetSummary]) -> Vec<Value> {
    let now = bus::now_ms();
    let mut touched: HashMap<String, i64> = HashMap::new();
    let mut out: Vec<(i64, Value)> = Vec::new();

    // Groups.
    let mut rooms = c.marks.subscribed_rooms();
    for t in c.topics.values() {
        if !rooms.contains(&t.room) {
            rooms.push(t.room.clone());
        }
    }
    for t in targets {
        if let HistoryTarget::Room { room } = &t.target {
            touched.insert(bus::names::fold(room), t.latest_at);
        }
    }
    let records = c.gw.registry.rooms_named(rooms.clone()).await;
    for room in &rooms {
        let topic = ids::group_topic(room);
        let attached = c.topics.get(&topic);
        let record = records.iter().find(|r| &r.room == room);
        let Some(name) = attached
            .map(|a| a.name.clone())
            .or_else(|| record.map(|r| r.name.clone()))
        else {
            // Gone from NATS (the rooms bucket was lost): nothing to show.
            continue;
        };
        let seq = record
            .map_or(0, |r| r.mseq)
            .max(attached.map_or(0, |a| a.mseq));
        let when = touched
            .get(room)
            .copied()
            .unwrap_or(0)
            .max(attached.map_or(0, |a| a.touched));
        let key = room_key(room);
        let state = c.marks.get(&key);
        let mut s = json!({
            "topic": topic,
            "updated": wire::ts(state.map_or(now, |s| s.updated_at)),
            "acs": super::topics::acs(attached.is_some_and(|a| a.is_op(&c.sid))),
            "public": {"fn": format!("#{name}")},
        });
        if let Some(r) = record {
            s["created"] = wire::ts(r.created_at).into();
        }
        fill(&mut s, seq, when, c.marks.markers(&key));
        out.push((when, s));
    }

    // One-to-one conversations.
    let mut seen: Vec<String> = Vec::new();
    for t in targets {
        let HistoryTarget::Direct { peer } = &t.target else {
            continue;
        };
        // A guest's conversation ended with its session.
        if t.guest {
            continue;
        }
        let id = PeerId::Account(bus::names::fold(peer));
        let topic = id.uid();
        if seen.contains(&topic) {
            continue;
        }
        seen.push(topic.clone());
        let attached = c.peers.get(&topic);
        let seq = t.latest_seq.max(attached.map_or(0, |p| p.seq));
        let when = t.latest_at.max(attached.map_or(0, |p| p.touched));
        out.push((when, peer_entry(c, &topic, &id, &t.name, seq, when)));
    }
    for (topic, p) in &c.peers {
        if seen.contains(topic) {
            continue;
        }
        out.push((
            p.touched,
            peer_entry(c, topic, &p.id, &p.name, p.seq, p.touched),
        ));
    }
    out.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
    out.into_iter().map(|(_, s)| s).collect()
}

fn peer_entry(c: &Conn, topic: &str, id: &PeerId, name: &str, seq: u64, when: i64) -> Value {
    let key = marks::peer_key(id);
    let markers = key.as_deref().map_or((0, 0), |k| c.marks.markers(k));
    let updated = key
        .as_deref()
        .and_then(|k| c.marks.get(k))
        .map_or(when.max(1), |s| s.updated_at);
    let mut s = json!({
        "topic": topic,
        "updated": wire::ts(updated),
        "acs": super::p2p::acs(),
        "public": {"fn": name},
    });
    fill(&mut s, seq, when, markers);
    s
}

/// The numbers of an entry, zero ones left out (as Tinode does).
fn fill(s: &mut Value, seq: u64, touched: i64, (read, recv): (u64, u64)) {
    if seq > 0 {
        s["seq"] = seq.into();
    }
    if touched > 0 {
        s["touched"] = wire::ts(touched).into();
    }
    if read > 0 {
        s["read"] = read.into();
    }
    if recv > 0 {
        s["recv"] = recv.into();
    }
}
