//! INVITE: remembers the invitation (it lets the target past `+i` and bans),
//! delivers it to the target's own session queue, and tells the room with
//! an [`EventBody::Invite`] event: the router is the one place that sees
//! every gateway's members, so IRC `invite-notify` reaches them all.

use bus::schema::{Actor, Direct, DirectBody, ErrorCode, EventBody, Intent, Reply, SCHEMA_VERSION};

use super::{as_member, Effect, Outcome};
use crate::room::Room;

pub(super) fn invite(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    target: &Actor,
    now: i64,
    out: &mut Outcome,
) {
    let sid = &intent.actor.sid;
    let Some(room) = as_member(slot, intent, name, out) else {
        return;
    };
    if room.modes.invite_only && !room.is_op(sid) {
        out.error(intent, ErrorCode::ChanOpPrivsNeeded, name);
        return;
    }
    if room.is_member(&target.sid) {
        out.error_detail(intent, ErrorCode::UserOnChannel, &target.nick, name);
        return;
    }
    room.invite(&target.sid);
    let direct = Direct {
        v: SCHEMA_VERSION,
        id: intent.id.clone(),
        at: now,
        from: intent.actor.clone(),
        body: DirectBody::Invite {
            room: room.room.clone(),
            name: room.name.clone(),
        },
    };
    out.push(Effect::Direct {
        sid: target.sid.clone(),
        direct,
    });
    let body = EventBody::Invite {
        target_sid: target.sid.clone(),
        target_nick: target.nick.clone(),
    };
    let event = room.event(&intent.id, &intent.actor, body, now);
    out.event(event);
    let reply = Reply::Inviting {
        room: room.room.clone(),
        name: room.name.clone(),
        nick: target.nick.clone(),
    };
    out.reply(intent, reply);
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, DirectBody, ErrorCode, EventBody, IntentBody, Reply};

    use super::super::testing::*;
    use super::super::{Effect, Outcome};
    use crate::room::Room;

    fn invite(slot: &mut Option<Room>, who: &Actor, target: &Actor) -> Outcome {
        run(
            slot,
            who,
            IntentBody::Invite {
                room: "ops".into(),
                target: target.clone(),
            },
        )
    }

    #[test]
    fn invite_delivers_and_answers() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut slot = room_with(&alice, &[]);
        let out = invite(&mut slot, &alice, &bob);
        match &out.effects[..] {
            [Effect::Direct { sid, direct }, Effect::Event(ev), Effect::Reply { gateway, reply }] =>
            {
                assert_eq!(ev.actor.sid, "alice");
                assert_eq!(
                    ev.body,
                    EventBody::Invite {
                        target_sid: "bob".into(),
                        target_nick: "bob".into()
                    }
                );
                assert_eq!(sid, "bob");
                assert_eq!(direct.from.sid, "alice");
                assert_eq!(
                    direct.body,
                    DirectBody::Invite {
                        room: "ops".into(),
                        name: "Ops".into()
                    }
                );
                assert_eq!(gateway, "gw1");
                assert_eq!(reply.sid, "alice");
                assert!(matches!(&reply.body, Reply::Inviting { nick, .. } if nick == "bob"));
            }
            other => panic!("{other:?}"),
        }
        assert!(slot.as_ref().unwrap().is_invited("bob"));
        assert_eq!(
            slot.unwrap().seq,
            2,
            "the members are told with a room event"
        );
    }

    #[test]
    fn invite_errors() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let zed = actor("zed", "gw2");
        let mut none = None;
        assert_eq!(
            errors(&invite(&mut none, &alice, &zed)),
            vec![ErrorCode::NoSuchChannel]
        );
        let mut slot = room_with(&alice, &[&bob]);
        assert_eq!(
            errors(&invite(&mut slot, &zed, &zed)),
            vec![ErrorCode::NotOnChannel]
        );
        match replies(&invite(&mut slot, &alice, &bob))[..] {
            [Reply::Error {
                code: ErrorCode::UserOnChannel,
                target,
                detail,
            }] => {
                assert_eq!((target.as_str(), detail.as_str()), ("bob", "ops"));
            }
            ref other => panic!("{other:?}"),
        }
        // -i: any member may invite; +i: only ops.
        assert!(errors(&invite(&mut slot, &bob, &zed)).is_empty());
        slot.as_mut().unwrap().modes.invite_only = true;
        assert_eq!(
            errors(&invite(&mut slot, &bob, &zed)),
            vec![ErrorCode::ChanOpPrivsNeeded]
        );
    }
}
