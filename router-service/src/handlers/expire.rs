//! Session expiry: members whose session disappeared from the sessions
//! bucket (their gateway died) must QUIT for everyone.
//!
//! The sweep does not change rooms directly. For each expired member it
//! emits a `Member { Quit }` intent into the room's own partition queue,
//! which the partition then applies like any other intent. That makes the
//! expiry as crash-safe as everything else: the intent is durable once
//! confirmed, and if the router dies after publishing the QUIT event but
//! before writing the room, the intent is redelivered and replayed with the
//! same seq and id (an in-place expiry would have nothing to replay from,
//! and a later event could reuse the seq of a QUIT gateways already saw).

use std::collections::HashSet;

use bus::schema::{Actor, Intent, IntentBody, MemberChange, SCHEMA_VERSION};

use crate::room::Room;

/// Members whose sid is not in `live` and who joined before
/// `joined_before` (a member who joined while the live list was being taken
/// may simply not be in it yet).
pub fn expired(room: &Room, live: &HashSet<String>, joined_before: i64) -> Vec<Actor> {
    room.members_where(|m| !live.contains(&m.actor.sid) && m.joined_at < joined_before)
        .into_iter()
        .map(|m| m.actor)
        .collect()
}

/// The intent that makes an expired member quit one room. Its `event` is
/// `x<sid>` in every room, so gateways show the QUIT once per person; its
/// id (the event's message id) is fresh.
pub fn expiry_intent(room: &str, actor: Actor, reason: &str, now: i64) -> Intent {
    let event = format!("x{}", actor.sid);
    Intent {
        v: SCHEMA_VERSION,
        id: bus::new_id(),
        at: now,
        actor,
        body: IntentBody::Member {
            room: room.to_string(),
            event,
            change: MemberChange::Quit {
                reason: reason.to_string(),
            },
        },
        done: false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bus::schema::EventBody;

    use super::{expired, expiry_intent};
    use crate::handlers::testing::*;

    #[test]
    fn finds_dead_members_who_joined_early() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let carol = actor("carol", "gw2");
        let mut slot = room_with(&alice, &[&bob, &carol]);
        slot.as_mut()
            .unwrap()
            .member_mut("carol")
            .unwrap()
            .joined_at = 5000;
        let live: HashSet<String> = ["alice".to_string()].into();
        let gone = expired(slot.as_ref().unwrap(), &live, 4000);
        assert_eq!(gone, vec![bob.clone()], "carol joined after the cut-off");

        let intent = expiry_intent("ops", bob, "Connection timed out", 9000);
        let out = apply_over(&mut slot, None, &intent, 9000);
        let ev = out.events().next().unwrap();
        assert_eq!(
            (ev.seq, ev.id.as_str(), ev.actor.sid.as_str()),
            (4, intent.id.as_str(), "bob")
        );
        assert_eq!(
            ev.body,
            EventBody::Quit {
                reason: "Connection timed out".into(),
                event: "xbob".into()
            }
        );
        assert!(out.emptied.is_empty(), "carol still holds gw2");
        // A second expiry of the same member (an overlapping sweep) is a no-op.
        let again = expiry_intent("ops", actor("bob", "gw2"), "Connection timed out", 9001);
        assert!(apply_over(&mut slot, None, &again, 9001).effects.is_empty());
    }
}
