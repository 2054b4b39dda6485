//! PART: the member leaves; the room empties with its last member (and
//! leaves its husk: see [`crate::room::Husk`]).

use bus::schema::{EventBody, Intent};

use super::{as_member, remove_and_maybe_empty, Outcome};
use crate::room::Room;

pub(super) fn part(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    reason: &Option<String>,
    now: i64,
    out: &mut Outcome,
) {
    let sid = &intent.actor.sid;
    let Some(room) = as_member(slot, intent, name, out) else {
        return;
    };
    let event = room.event(
        &intent.id,
        &intent.actor,
        EventBody::Part {
            reason: reason.clone(),
        },
        now,
    );
    out.event(event);
    remove_and_maybe_empty(slot, sid, out);
}

#[cfg(test)]
mod tests {
    use bus::schema::{ErrorCode, EventBody, IntentBody};

    use super::super::testing::*;

    fn part(slot: &mut Option<crate::room::Room>, who: &bus::schema::Actor) -> super::Outcome {
        run(
            slot,
            who,
            IntentBody::Part {
                room: "ops".into(),
                reason: Some("bye".into()),
            },
        )
    }

    #[test]
    fn part_emits_event_and_notes_unbind() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut slot = room_with(&alice, &[&bob]);
        let out = part(&mut slot, &bob);
        let ev = out.events().next().unwrap();
        assert_eq!(ev.seq, 3);
        assert_eq!(
            ev.body,
            EventBody::Part {
                reason: Some("bye".into())
            }
        );
        assert_eq!(out.emptied, vec!["gw2".to_string()]);
        assert!(!slot.as_ref().unwrap().is_member("bob"));
    }

    #[test]
    fn last_part_empties_the_room_and_leaves_its_husk() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let out = part(&mut slot, &alice);
        assert_eq!(out.events().count(), 1);
        assert!(slot.is_none());
        assert_eq!(out.emptied, vec!["gw1".to_string()]);
        let husk = out.ended.expect("a husk");
        assert_eq!((husk.room.as_str(), husk.seq, husk.mseq), ("ops", 2, 0));
        // The next room of that name continues from it.
        let out = apply_over(
            &mut slot,
            Some(&husk),
            &intent(
                "j2",
                &alice,
                IntentBody::Join {
                    room: "OPS".into(),
                    key: None,
                },
            ),
            2000,
        );
        assert_eq!(out.events().next().unwrap().seq, 3);
        let room = slot.unwrap();
        assert!(room.is_op("alice"), "its creator gets op again");
        assert_eq!((room.name.as_str(), room.seq), ("OPS", 3));
    }

    #[test]
    fn part_errors() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let mut slot = None;
        assert_eq!(
            errors(&part(&mut slot, &bob)),
            vec![ErrorCode::NoSuchChannel]
        );
        let mut slot = room_with(&alice, &[]);
        let out = part(&mut slot, &bob);
        assert_eq!(errors(&out), vec![ErrorCode::NotOnChannel]);
        assert_eq!(out.events().count(), 0);
        assert_eq!(slot.unwrap().seq, 1);
    }
}
