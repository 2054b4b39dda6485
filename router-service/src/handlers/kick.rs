//! KICK: an op removes a member by nick.

use bus::schema::{ErrorCode, EventBody, Intent};

use super::{as_op, remove_and_maybe_empty, Outcome};
use crate::room::Room;

pub(super) fn kick(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    target: &str,
    reason: &Option<String>,
    now: i64,
    out: &mut Outcome,
) {
    let Some(room) = as_op(slot, intent, name, out) else {
        return;
    };
    let Some(victim) = room.member_by_nick(target).map(|m| m.actor.clone()) else {
        out.error_detail(intent, ErrorCode::UserNotInChannel, target, name);
        return;
    };
    let body = EventBody::Kick {
        target_sid: victim.sid.clone(),
        target_nick: victim.nick,
        reason: reason.clone(),
    };
    let event = room.event(&intent.id, &intent.actor, body, now);
    out.event(event);
    remove_and_maybe_empty(slot, &victim.sid, out);
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, ErrorCode, EventBody, IntentBody, Reply};

    use super::super::testing::*;
    use super::super::Outcome;
    use crate::room::Room;

    fn kick(slot: &mut Option<Room>, who: &Actor, target: &str) -> Outcome {
        run(
            slot,
            who,
            IntentBody::Kick {
                room: "ops".into(),
                target: target.into(),
                reason: None,
            },
        )
    }

    #[test]
    fn op_kicks_member() {
        let alice = actor("alice", "gw1");
        let bob = actor("Bob", "gw2");
        let mut slot = room_with(&alice, &[&bob]);
        let out = kick(&mut slot, &alice, "bob");
        let ev = out.events().next().unwrap();
        assert_eq!(ev.actor.sid, "alice");
        assert_eq!(
            ev.body,
            EventBody::Kick {
                target_sid: "Bob".into(),
                target_nick: "Bob".into(),
                reason: None
            }
        );
        assert_eq!(out.emptied, vec!["gw2".to_string()]);
        assert!(!slot.as_ref().unwrap().is_member("Bob"));
        // Kicking yourself out of a room you alone are in empties it.
        let out = kick(&mut slot, &alice, "alice");
        assert_eq!(out.events().count(), 1);
        assert!(slot.is_none());
    }

    #[test]
    fn kick_errors() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let zed = actor("zed", "gw2");
        let mut none = None;
        assert_eq!(
            errors(&kick(&mut none, &alice, "bob")),
            vec![ErrorCode::NoSuchChannel]
        );
        let mut slot = room_with(&alice, &[&bob]);
        assert_eq!(
            errors(&kick(&mut slot, &zed, "bob")),
            vec![ErrorCode::NotOnChannel]
        );
        assert_eq!(
            errors(&kick(&mut slot, &bob, "alice")),
            vec![ErrorCode::ChanOpPrivsNeeded]
        );
        match replies(&kick(&mut slot, &alice, "ghost"))[..] {
            [Reply::Error {
                code: ErrorCode::UserNotInChannel,
                target,
                detail,
            }] => {
                assert_eq!((target.as_str(), detail.as_str()), ("ghost", "ops"));
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(slot.unwrap().seq, 2);
    }
}
