//! What a Tinode user keeps between sessions: the groups it subscribed to
//! and the read / received markers of its topics. Both are the auth
//! service's (table `topics`, next to the account), because a Tinode
//! subscription outlives the connection while the router's room
//! membership does not: a subscribed group is listed in `me` when nobody
//! of that account is in the room, and attaching to it joins the room.
//!
//! The session keeps a copy, loaded at login and refreshed with every `me`
//! listing, so `desc` and `{note}` checks need no round trip. Writes go to
//! the auth service and are not awaited: a marker that fails to be stored
//! costs an unread count, not a message.

use std::collections::HashMap;

use bus::names::fold;
use bus::schema::{AuthReplyBody, AuthRequestBody, TopicState};

use super::conn::{Conn, Wait};
use super::ids::PeerId;

/// The key of a room's state.
pub fn room_key(room: &str) -> String {
    format!("room:{}", fold(room.trim_start_matches('#')))
}

/// The key of a one-to-one conversation's state; guests (whose
/// conversations end with their session) have none.
pub fn peer_key(peer: &PeerId) -> Option<String> {
    match peer {
        PeerId::Account(a) => Some(format!("peer:{}", fold(a))),
        PeerId::Guest(_) => None,
    }
}

/// The session's copy of the account's topic state.
#[derive(Debug, Default)]
pub struct Marks {
    by_key: HashMap<String, TopicState>,
}

impl Marks {
    /// Replaces the copy with what the auth service holds.
    pub fn load(&mut self, items: Vec<TopicState>) {
        self.by_key = items.into_iter().map(|t| (t.topic.clone(), t)).collect();
    }

    pub fn get(&self, key: &str) -> Option<&TopicState> {
        self.by_key.get(key)
    }

    /// `(read, recv)` of a topic (0 when nothing is stored).
    pub fn markers(&self, key: &str) -> (u64, u64) {
        self.by_key.get(key).map_or((0, 0), |t| (t.read, t.recv))
    }

    /// The folded rooms the account subscribed to.
    pub fn subscribed_rooms(&self) -> Vec<String> {
        self.by_key
            .values()
            .filter(|t| t.subscribed)
            .filter_map(|t| t.topic.strip_prefix("room:").map(str::to_string))
            .collect()
    }

    fn entry(&mut self, key: &str) -> &mut TopicState {
        self.by_key
            .entry(key.to_string())
            .or_insert_with(|| TopicState {
                topic: key.to_string(),
                subscribed: false,
                read: 0,
                recv: 0,
                hidden: Vec::new(),
                created_at: bus::now_ms(),
                updated_at: bus::now_ms(),
            })
    }

    /// Raises a marker if `seq` is beyond the stored one (`read` raises
    /// `recv` too). Returns whether anything changed.
    pub fn raise(&mut self, key: &str, read: bool, seq: u64) -> bool {
        let t = self.entry(key);
        let before = (t.read, t.recv);
        if read {
            t.read = t.read.max(seq);
        }
        t.recv = t.recv.max(seq).max(t.read);
        let changed = (t.read, t.recv) != before;
        if changed {
            t.updated_at = bus::now_ms();
        }
        changed
    }

    /// Whether the account deleted message `seq` of the topic for itself.
    pub fn hidden(&self, key: &str, seq: u64) -> bool {
        self.by_key
            .get(key)
            .is_some_and(|t| t.hidden.iter().any(|(low, hi)| (*low..*hi).contains(&seq)))
    }

    /// Marks the topic subscribed; `true` if it was not.
    pub fn subscribe(&mut self, key: &str) -> bool {
        let t = self.entry(key);
        !std::mem::replace(&mut t.subscribed, true)
    }

    pub fn remove(&mut self, key: &str) -> bool {
        self.by_key.remove(key).is_some()
    }
}

fn account(c: &Conn) -> Option<String> {
    c.user.as_ref().map(|u| u.account.clone())
}

/// Asks for the account's state (at login).
pub async fn load(c: &mut Conn) {
    if let Some(account) = account(c) {
        c.ask_auth(AuthRequestBody::TopicsGet { account }, Wait::Marks)
            .await;
    }
}

/// The auth service's answer to a [`load`] or a write.
pub fn on_answer(c: &mut Conn, body: AuthReplyBody) {
    match body {
        AuthReplyBody::Topics { items } => c.marks.load(items),
        AuthReplyBody::Stored | AuthReplyBody::Marked { .. } => {}
        other => tracing::debug!(?other, "tinode: topic state not stored"),
    }
}

/// The account subscribes to a group (stored once).
pub async fn subscribe(c: &mut Conn, key: &str) {
    if !c.marks.subscribe(key) {
        return;
    }
    if let Some(account) = account(c) {
        let body = AuthRequestBody::TopicJoin {
            account,
            topic: key.to_string(),
        };
        c.ask_auth(body, Wait::Marks).await;
    }
}

/// The account drops a topic and its markers.
pub async fn unsubscribe(c: &mut Conn, key: &str) {
    c.marks.remove(key);
    if let Some(account) = account(c) {
        let body = AuthRequestBody::TopicLeave {
            account,
            topic: key.to_string(),
        };
        c.ask_auth(body, Wait::Marks).await;
    }
}

/// The account deletes message numbers for itself (Tinode's soft delete).
pub async fn hide(c: &mut Conn, key: &str, ranges: Vec<(u64, u64)>) {
    c.marks.entry(key).hidden.extend(ranges.iter().copied());
    if let Some(account) = account(c) {
        let body = AuthRequestBody::TopicHide {
            account,
            topic: key.to_string(),
            ranges,
        };
        c.ask_auth(body, Wait::Marks).await;
    }
}

/// A `{note read|recv}` for a topic whose newest message is `last`:
/// `true` if it raised the stored marker (and so is relayed).
pub async fn note(c: &mut Conn, key: &str, what: &str, seq: u64, last: u64) -> bool {
    if seq == 0 || seq > last {
        return false;
    }
    let read = what == "read";
    if !c.marks.raise(key, read, seq) {
        return false;
    }
    if let Some(account) = account(c) {
        let (read_seq, recv_seq) = c.marks.markers(key);
        let body = AuthRequestBody::TopicMark {
            account,
            topic: key.to_string(),
            read: if read { read_seq } else { 0 },
            recv: recv_seq,
        };
        c.ask_auth(body, Wait::Marks).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_only_rise_and_read_implies_recv() {
        let mut m = Marks::default();
        assert!(m.raise("room:a", false, 3));
        assert_eq!(m.markers("room:a"), (0, 3));
        assert!(!m.raise("room:a", false, 2), "lower recv is dropped");
        assert!(m.raise("room:a", true, 5));
        assert_eq!(m.markers("room:a"), (5, 5));
        assert!(!m.raise("room:a", true, 5));
        assert!(m.subscribe("room:a"));
        assert!(!m.subscribe("room:a"));
        assert_eq!(m.subscribed_rooms(), vec!["a".to_string()]);
        assert_eq!(room_key("#Ops"), "room:ops");
        assert_eq!(peer_key(&PeerId::Guest("x".into())), None);
    }
}
