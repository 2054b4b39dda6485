//! NAMES and WHO: the member list, hidden from outsiders of secret rooms.
//!
//! An absent room (or a secret one asked by an outsider) is answered with
//! an empty list rather than an error, as IRC servers do: the client sees
//! only the end-of-list numeric.

use bus::names::fold;
use bus::schema::{Intent, MemberInfo, Reply};

use super::Outcome;
use crate::room::Room;

/// The visible members and the room's display name.
fn visible(
    slot: &Option<Room>,
    intent: &Intent,
    name: &str,
) -> (String, String, Vec<MemberInfo>, bool) {
    match slot {
        Some(room) if !room.modes.secret || room.is_member(&intent.actor.sid) => (
            room.room.clone(),
            room.name.clone(),
            room.member_infos(),
            room.modes.secret,
        ),
        Some(room) => (
            room.room.clone(),
            name.to_string(),
            Vec::new(),
            room.modes.secret,
        ),
        None => (fold(name), name.to_string(), Vec::new(), false),
    }
}

pub(super) fn names(slot: &Option<Room>, intent: &Intent, name: &str, out: &mut Outcome) {
    let (room, name, members, secret) = visible(slot, intent, name);
    out.reply(
        intent,
        Reply::Names {
            room,
            name,
            members,
            secret,
        },
    );
}

pub(super) fn who(slot: &Option<Room>, intent: &Intent, name: &str, out: &mut Outcome) {
    let (room, name, members, _) = visible(slot, intent, name);
    out.reply(
        intent,
        Reply::Who {
            room,
            name,
            members,
        },
    );
}

#[cfg(test)]
mod tests {
    use bus::schema::{IntentBody, Reply};

    use super::super::testing::*;

    #[test]
    fn names_and_who() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let zed = actor("zed", "gw3");
        let mut slot = room_with(&alice, &[&bob]);
        slot.as_mut().unwrap().member_mut("bob").unwrap().away = Some("lunch".into());
        let out = run(&mut slot, &zed, IntentBody::Names { room: "OPS".into() });
        match replies(&out)[..] {
            [Reply::Names {
                room,
                name,
                members,
                secret: false,
            }] => {
                assert_eq!((room.as_str(), name.as_str()), ("ops", "Ops"));
                let nicks: Vec<_> = members
                    .iter()
                    .map(|m| (m.nick.as_str(), m.op, m.away))
                    .collect();
                assert_eq!(nicks, vec![("alice", true, false), ("bob", false, true)]);
            }
            ref other => panic!("{other:?}"),
        }
        slot.as_mut().unwrap().modes.secret = true;
        let out = run(&mut slot, &zed, IntentBody::Who { room: "ops".into() });
        assert!(matches!(replies(&out)[..], [Reply::Who { members, .. }] if members.is_empty()));
        let out = run(&mut slot, &bob, IntentBody::Who { room: "ops".into() });
        assert!(matches!(replies(&out)[..], [Reply::Who { members, .. }] if members.len() == 2));
        let mut none = None;
        let out = run(
            &mut none,
            &zed,
            IntentBody::Names {
                room: "Nope".into(),
            },
        );
        match replies(&out)[..] {
            [Reply::Names {
                room,
                name,
                members,
                ..
            }] => {
                assert_eq!(
                    (room.as_str(), name.as_str(), members.len()),
                    ("nope", "Nope", 0)
                );
            }
            ref other => panic!("{other:?}"),
        }
        assert!(out.events().next().is_none());
    }
}
