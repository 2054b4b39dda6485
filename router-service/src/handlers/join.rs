//! JOIN: creates the room on first join (the creator gets op), otherwise
//! enforces bans, `+i`, `+k` and `+l`; answers with the JOIN event followed
//! by [`Reply::Joined`] for the joiner.
//!
//! A registered room that has no live state is created from its durable
//! state (see [`crate::registered`]): it comes back with its topic, modes
//! and bans, its rules apply to the first joiner too, and nobody gets op
//! for being first. Accounts on its access list get `+o`/`+v` from ChanServ
//! right after their JOIN, whoever joins first.

use bus::schema::{AccessLevel, ErrorCode, EventBody, Intent, MemberRecord, Reply};

use super::{chanserv, Effect, Outcome};
use crate::registered::Durable;
use crate::room::{Husk, Room};

/// Longest room name accepted (bytes). Room names end up in routing keys
/// (255 bytes max, after escaping) and NATS keys; gateways advertise less.
pub const MAX_ROOM_NAME: usize = 64;

/// Whether a room name may be created: non-empty, bounded, and free of the
/// characters no protocol can carry in a room name (controls, space, comma).
pub fn valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && !name.chars().any(|c| c.is_control() || c == ' ' || c == ',')
}

/// What a room created by this JOIN starts from.
pub(super) struct Known<'a> {
    pub husk: Option<&'a Husk>,
    pub durable: Option<&'a Durable>,
}

pub(super) fn join(
    slot: &mut Option<Room>,
    known: Known<'_>,
    intent: &Intent,
    name: &str,
    key: Option<&str>,
    now: i64,
    out: &mut Outcome,
) {
    let actor = &intent.actor;
    if !valid_room_name(name) {
        out.error(intent, ErrorCode::BadChanMask, name);
        return;
    }
    let creating = slot.is_none();
    let room = slot.get_or_insert_with(|| Room::create(name, now, known.husk, known.durable));
    let access = room
        .registration
        .as_ref()
        .and_then(|r| r.level_of(actor.account.as_deref()));
    // Only a room nobody registered starts without rules, its creator op.
    let fresh = creating && room.registration.is_none();
    if !fresh {
        if room.is_member(&actor.sid) {
            return;
        }
        let invited = room.is_invited(&actor.sid);
        // The founder and OP accounts pass the rules of their registered
        // room, as ChanServ INVITE / UNBAN / GETKEY would let them: a
        // registered `+i` room that emptied is otherwise locked for good.
        let passes = invited || access == Some(AccessLevel::Op);
        let refusal = if !passes && room.is_banned(actor) {
            Some(ErrorCode::BannedFromChan)
        } else if !passes && room.modes.invite_only {
            Some(ErrorCode::InviteOnlyChan)
        } else if access != Some(AccessLevel::Op)
            && room.modes.key.as_deref().is_some_and(|k| Some(k) != key)
        {
            Some(ErrorCode::BadChannelKey)
        } else if access != Some(AccessLevel::Op)
            && room
                .modes
                .limit
                .is_some_and(|l| room.member_count() >= l as usize)
        {
            Some(ErrorCode::ChannelIsFull)
        } else {
            None
        };
        if let Some(code) = refusal {
            out.error(intent, code, name);
            if creating {
                // Not created after all: the durable state stays as it was.
                *slot = None;
            }
            return;
        }
    }
    room.uninvite(&actor.sid);
    let member = MemberRecord {
        actor: actor.clone(),
        op: fresh,
        voice: false,
        away: None,
        bot: false,
        joined_at: now,
    };
    if room.add_member(member) {
        out.push(Effect::Bind {
            gateway: actor.gateway.clone(),
        });
    }
    let event = room.event(&intent.id, actor, EventBody::Join, now);
    out.event(event);
    let joined = Reply::Joined {
        room: room.room.clone(),
        name: room.name.clone(),
        topic: room.topic.clone(),
        members: room.member_infos(),
        secret: room.modes.secret,
    };
    out.reply(intent, joined);
    if let Some(level) = access {
        chanserv::auto_mode(room, intent, level, now, out);
    }
}

#[cfg(test)]
mod tests {
    use bus::schema::{BanEntry, ErrorCode, EventBody, IntentBody, Reply};

    use super::super::testing::*;
    use super::super::Effect;

    #[test]
    fn creator_gets_op_and_defaults() {
        let alice = actor("alice", "gw1");
        let mut slot = None;
        let out = join(&mut slot, &alice, "Ops");
        let room = slot.as_ref().unwrap();
        assert_eq!(room.room, "ops");
        assert_eq!(room.name, "Ops");
        assert!(room.modes.no_external && room.modes.topic_ops);
        assert!(room.is_op("alice"));
        assert!(matches!(out.effects[0], Effect::Bind { ref gateway } if gateway == "gw1"));
        let ev = out.events().next().unwrap();
        assert_eq!(
            (ev.seq, &ev.body, ev.name.as_str()),
            (1, &EventBody::Join, "Ops")
        );
        match replies(&out)[..] {
            [Reply::Joined {
                members,
                name,
                secret: false,
                topic: None,
                ..
            }] => {
                assert_eq!(name, "Ops");
                assert_eq!(members.len(), 1);
                assert!(members[0].op);
            }
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn second_member_of_same_gateway_needs_no_bind() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let carol = actor("carol", "gw2");
        let mut slot = room_with(&alice, &[]);
        let out = join(&mut slot, &bob, "OPS");
        assert!(!out.effects.iter().any(|e| matches!(e, Effect::Bind { .. })));
        assert!(!slot.as_ref().unwrap().is_op("bob"));
        let out = join(&mut slot, &carol, "ops");
        assert!(matches!(out.effects[0], Effect::Bind { ref gateway } if gateway == "gw2"));
        assert_eq!(
            slot.as_ref().unwrap().name,
            "Ops",
            "display name stays the creator's"
        );
        let seqs: Vec<u64> = out.events().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3]);
        match replies(&out)[..] {
            [Reply::Joined { members, .. }] => assert_eq!(members.len(), 3),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn already_member_is_ignored() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let out = join(&mut slot, &alice, "ops");
        assert!(out.effects.is_empty());
        assert_eq!(slot.unwrap().seq, 1);
    }

    #[test]
    fn bad_names_are_refused() {
        let alice = actor("alice", "gw1");
        for name in ["", "a b", "a,b", "a\u{7}", &"x".repeat(65)] {
            let mut slot = None;
            let out = join(&mut slot, &alice, name);
            assert_eq!(errors(&out), vec![ErrorCode::BadChanMask], "{name:?}");
            assert!(slot.is_none());
        }
    }

    #[test]
    fn refusals_in_order() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut slot = room_with(&alice, &[]);
        let room = slot.as_mut().unwrap();
        room.bans.push(BanEntry {
            mask: "BOB!*@*".into(),
            set_by: "alice".into(),
            set_at: 0,
        });
        room.modes.invite_only = true;
        room.modes.key = Some("sesame".into());
        room.modes.limit = Some(1);
        let try_join = |slot: &mut Option<_>, key: Option<&str>| {
            let body = IntentBody::Join {
                room: "ops".into(),
                key: key.map(str::to_string),
            };
            let out = run(slot, &bob, body);
            match replies(&out)[..] {
                [Reply::Error { code, target, .. }] => {
                    assert_eq!(target, "ops", "target is the name as the client gave it");
                    *code
                }
                ref other => panic!("{other:?}"),
            }
        };
        assert_eq!(try_join(&mut slot, None), ErrorCode::BannedFromChan);
        slot.as_mut().unwrap().bans.clear();
        assert_eq!(try_join(&mut slot, None), ErrorCode::InviteOnlyChan);
        slot.as_mut().unwrap().modes.invite_only = false;
        assert_eq!(try_join(&mut slot, Some("nope")), ErrorCode::BadChannelKey);
        assert_eq!(
            try_join(&mut slot, Some("sesame")),
            ErrorCode::ChannelIsFull
        );
        slot.as_mut().unwrap().modes.limit = Some(2);
        let out = run(
            &mut slot,
            &bob,
            IntentBody::Join {
                room: "ops".into(),
                key: Some("sesame".into()),
            },
        );
        assert!(errors(&out).is_empty());
        assert!(slot.unwrap().is_member("bob"));
    }

    #[test]
    fn invitation_passes_ban_and_invite_only_once() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut slot = room_with(&alice, &[]);
        let room = slot.as_mut().unwrap();
        room.bans.push(BanEntry {
            mask: "*!*@10.0.0.*".into(),
            set_by: "alice".into(),
            set_at: 0,
        });
        room.modes.invite_only = true;
        room.invite("bob");
        let out = join(&mut slot, &bob, "ops");
        assert!(errors(&out).is_empty());
        let room = slot.as_mut().unwrap();
        assert!(!room.is_invited("bob"), "the invitation is used up");
        room.remove_member("bob");
        let out = join(&mut slot, &bob, "ops");
        assert_eq!(errors(&out), vec![ErrorCode::BannedFromChan]);
    }
}
