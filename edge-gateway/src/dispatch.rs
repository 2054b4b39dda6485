//! The dispatcher: consumes `gateway.<id>` and hands room events and
//! router replies to the local sessions.
//!
//! It keeps a local room index (room → last seq delivered, local member
//! sids) derived only from the events themselves: a JOIN of a local session
//! adds it, PART/KICK/QUIT remove it. So it holds nothing another gateway
//! could not rebuild, and a redelivered event (seq already passed, after a
//! router restart) is dropped instead of being shown twice.
//!
//! The index lives as long as the process, across broker restarts: after
//! one, the broker redelivers what was not acknowledged and the router
//! replays the batches the outage cut short; both come with seqs already
//! delivered and are dropped here (replies redelivered are skipped by
//! [`next_delivery`]).

use bus::settle::Settle;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bus::schema::{BusMessage, EventBody, RoomEvent};
use bus::shutdown::Shutdown;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::Consumer;

use crate::bus_link::next_delivery;
use crate::metrics;
use crate::sessions::{Outbound, Sessions};
use crate::typing::Watch;

#[derive(Debug, Default)]
struct RoomEntry {
    last_seq: u64,
    members: HashSet<String>,
}

/// Per room: the last seq delivered and the local members.
#[derive(Debug, Default)]
pub struct RoomIndex {
    rooms: HashMap<String, RoomEntry>,
}

impl RoomIndex {
    /// Decides who receives `ev` and updates the index: returns the local
    /// members to deliver to (the leaver included, so it sees its own
    /// PART), or nothing for a stale or irrelevant event.
    pub fn route(&mut self, ev: &RoomEvent, is_local: impl Fn(&str) -> bool) -> Vec<String> {
        let local_join = matches!(ev.body, EventBody::Join) && is_local(&ev.actor.sid);
        let entry = match self.rooms.get_mut(&ev.room) {
            Some(entry) if ev.seq <= entry.last_seq => return Vec::new(),
            Some(entry) => entry,
            None if local_join => self.rooms.entry(ev.room.clone()).or_default(),
            None => return Vec::new(),
        };
        entry.last_seq = ev.seq;
        if local_join {
            entry.members.insert(ev.actor.sid.clone());
        }
        let recipients: Vec<String> = entry.members.iter().cloned().collect();
        if let Some(leaver) = ev.body.leaver(&ev.actor) {
            entry.members.remove(leaver);
        }
        if entry.members.is_empty() {
            self.rooms.remove(&ev.room);
        }
        recipients
    }

    /// Forgets sessions that turned out to be gone (their connection ended
    /// before the router's QUIT arrived).
    pub fn prune(&mut self, room: &str, gone: &[String]) {
        if gone.is_empty() {
            return;
        }
        if let Some(entry) = self.rooms.get_mut(room) {
            for sid in gone {
                entry.members.remove(sid);
            }
            if entry.members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// Whether a local session is in `room` (folded).
    pub fn has(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// The local members of `room`.
    pub fn local_members(&self, room: &str) -> impl Iterator<Item = &String> {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|e| e.members.iter())
    }

    #[cfg(test)]
    fn members(&self, room: &str) -> Option<Vec<String>> {
        self.rooms.get(room).map(|e| {
            let mut m: Vec<String> = e.members.iter().cloned().collect();
            m.sort();
            m
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the gateway queue consumer ended")]
    ConsumerEnded,
}

/// Consumes the gateway queue until shutdown (Ok) or until the consumer
/// ends (the broker cancelled it or closed its channel: the gateway cannot
/// go on). A connection loss only pauses it: [`next_delivery`] consumes the
/// queue again on the next connection.
///
/// It also follows the typing signals ([`crate::typing`]) of exactly the
/// rooms its index holds.
pub async fn run(
    mut consumer: Consumer,
    sessions: Arc<Sessions>,
    mut typing: Watch,
    mut shutdown: Shutdown,
) -> Result<(), DispatchError> {
    let mut index = RoomIndex::default();
    loop {
        let delivery = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            Some(ev) = typing.next() => {
                deliver_typing(&index, &sessions, ev);
                continue;
            }
            d = next_delivery(&mut consumer) => d.ok_or(DispatchError::ConsumerEnded)?,
        };
        let msg = match BusMessage::from_json(&delivery.data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "rejecting an undecodable message on the gateway queue");
                let _ = delivery
                    .acker
                    .reject_within(BasicRejectOptions { requeue: false })
                    .await;
                continue;
            }
        };
        match msg {
            BusMessage::Event(ev) => {
                let room = ev.room.clone();
                deliver_event(&mut index, &sessions, ev);
                typing.set(&room, index.has(&room));
            }
            BusMessage::Reply(reply) => {
                let sid = reply.sid.clone();
                if !sessions.deliver(&sid, Outbound::Reply(Arc::new(reply))) {
                    tracing::debug!(%sid, "reply for a session that is gone");
                }
            }
            other => {
                tracing::warn!(kind = ?std::mem::discriminant(&other), "unexpected message on the gateway queue")
            }
        }
        if let Err(e) = delivery.acker.ack_within(BasicAckOptions::default()).await {
            tracing::warn!(error = %e, "ack on the gateway queue failed");
        }
    }
}

/// Shows a typing signal to the room's local members but its sender.
fn deliver_typing(index: &RoomIndex, sessions: &Sessions, ev: RoomEvent) {
    let ev = Arc::new(ev);
    for sid in index.local_members(&ev.room) {
        if *sid != ev.actor.sid && sessions.deliver(sid, Outbound::Event(ev.clone())) {
            metrics::typing_shown();
        }
    }
}

fn deliver_event(index: &mut RoomIndex, sessions: &Sessions, ev: RoomEvent) {
    metrics::room_event();
    let recipients = index.route(&ev, |sid| sessions.contains(sid));
    if recipients.is_empty() {
        return;
    }
    if let (true, Some(at)) = (ev.body.is_message(), ev.intent_at) {
        metrics::delivery_latency(bus::now_ms() - at);
    }
    let ev = Arc::new(ev);
    let gone: Vec<String> = recipients
        .into_iter()
        .filter(|sid| !sessions.deliver(sid, Outbound::Event(ev.clone())))
        .collect();
    index.prune(&ev.room, &gone);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::schema::Actor;

    fn actor(sid: &str) -> Actor {
        Actor {
            sid: sid.into(),
            gateway: "g".into(),
            nick: sid.into(),
            user: "~u".into(),
            host: "h".into(),
            realname: "r".into(),
            account: None,
        }
    }

    fn ev(seq: u64, sid: &str, body: EventBody) -> RoomEvent {
        RoomEvent {
            v: 1,
            room: "ops".into(),
            name: "Ops".into(),
            seq,
            mseq: None,
            id: format!("id{seq}"),
            at: 0,
            actor: actor(sid),
            body,
            intent_at: None,
        }
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn join_of_a_local_session_creates_the_room() {
        let mut idx = RoomIndex::default();
        let local = |s: &str| s.starts_with('l');
        assert!(
            idx.route(&ev(1, "r1", EventBody::Join), local).is_empty(),
            "unknown room, remote join"
        );
        assert_eq!(idx.route(&ev(2, "l1", EventBody::Join), local), vec!["l1"]);
        assert_eq!(
            sorted(idx.route(&ev(3, "l2", EventBody::Join), local)),
            vec!["l1", "l2"]
        );
        assert_eq!(idx.members("ops").unwrap(), vec!["l1", "l2"]);
    }

    #[test]
    fn stale_seqs_are_dropped() {
        let mut idx = RoomIndex::default();
        let local = |_: &str| true;
        idx.route(&ev(5, "a", EventBody::Join), local);
        let msg = EventBody::Message {
            kind: bus::schema::MessageKind::Privmsg,
            text: "x".into(),
            tags: Default::default(),
        };
        assert_eq!(idx.route(&ev(6, "a", msg.clone()), local), vec!["a"]);
        assert!(
            idx.route(&ev(6, "a", msg.clone()), local).is_empty(),
            "redelivery"
        );
        assert!(idx.route(&ev(4, "a", msg), local).is_empty());
    }

    #[test]
    fn leaver_gets_its_event_then_is_removed() {
        let mut idx = RoomIndex::default();
        let local = |_: &str| true;
        idx.route(&ev(1, "a", EventBody::Join), local);
        idx.route(&ev(2, "b", EventBody::Join), local);
        assert_eq!(
            sorted(idx.route(&ev(3, "a", EventBody::Part { reason: None }), local)),
            vec!["a", "b"]
        );
        assert_eq!(idx.members("ops").unwrap(), vec!["b"]);
        let kick = EventBody::Kick {
            target_sid: "b".into(),
            target_nick: "b".into(),
            reason: None,
        };
        assert_eq!(idx.route(&ev(4, "x", kick), local), vec!["b"]);
        assert!(
            idx.members("ops").is_none(),
            "room dropped when no local member is left"
        );
    }

    #[test]
    fn prune_forgets_gone_sessions() {
        let mut idx = RoomIndex::default();
        idx.route(&ev(1, "a", EventBody::Join), |_| true);
        idx.prune("ops", &["a".to_string()]);
        assert!(idx.members("ops").is_none());
    }
}
