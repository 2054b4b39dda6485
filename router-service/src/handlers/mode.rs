//! MODE: query the modes, list the bans, or change them.
//!
//! Changes are applied one by one; the single MODE event carries only those
//! that changed something (a `+n` on a `+n` room is not news), so every
//! gateway renders exactly the state transitions.

use bus::schema::{BanEntry, ErrorCode, EventBody, Intent, ModeChange, Reply, RoomModes};

use super::{existing, Outcome};
use crate::masks;
use crate::room::{Room, MAX_BANS};

/// The most changes applied from one intent (`MODES=12`); the rest are
/// ignored, which bounds the work one line can cause.
pub const MAX_CHANGES: usize = 12;

/// Mode letters the router knows.
const KNOWN: &str = "imnstklbov";

pub(super) fn mode(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    changes: &[ModeChange],
    now: i64,
    out: &mut Outcome,
) {
    let sid = &intent.actor.sid;
    let Some(room) = existing(slot, intent, name, out) else {
        return;
    };
    if changes.is_empty() {
        let (modes, args) = mode_string(&room.modes, room.is_member(sid));
        let reply = Reply::Modes {
            room: room.room.clone(),
            name: room.name.clone(),
            modes,
            args,
            created_at: room.created_at,
        };
        out.reply(intent, reply);
        return;
    }
    if let [ModeChange {
        mode: 'b',
        arg: None,
        ..
    }] = changes
    {
        let reply = Reply::BanList {
            room: room.room.clone(),
            name: room.name.clone(),
            bans: room.bans.clone(),
        };
        out.reply(intent, reply);
        return;
    }
    let is_op = room.is_op(sid);
    let not_allowed = if room.is_member(sid) {
        ErrorCode::ChanOpPrivsNeeded
    } else {
        ErrorCode::NotOnChannel
    };
    let mut refused = false;
    let mut applied = Vec::new();
    for change in changes.iter().take(MAX_CHANGES) {
        if !KNOWN.contains(change.mode) {
            let letter = change.mode.to_string();
            out.error_detail(intent, ErrorCode::UnknownMode, &letter, &letter);
            continue;
        }
        if change.mode == 'b' && change.arg.is_none() {
            // A ban list request only makes sense on its own.
            continue;
        }
        if !is_op {
            if !refused {
                refused = true;
                out.error(intent, not_allowed, name);
            }
            continue;
        }
        if let Some(done) = apply_change(room, intent, name, change, now, out) {
            applied.push(done);
        }
    }
    if !applied.is_empty() {
        let event = room.event(
            &intent.id,
            &intent.actor,
            EventBody::Mode { changes: applied },
            now,
        );
        out.event(event);
    }
}

/// Applies one change by an op. Returns the change as it took effect, or
/// `None` if it changed nothing (or was invalid, after reporting it).
fn apply_change(
    room: &mut Room,
    intent: &Intent,
    name: &str,
    change: &ModeChange,
    now: i64,
    out: &mut Outcome,
) -> Option<ModeChange> {
    let add = change.add;
    let arg = change.arg.as_deref();
    let done = |arg: Option<String>| {
        Some(ModeChange {
            add,
            mode: change.mode,
            arg,
        })
    };
    match change.mode {
        'o' | 'v' => {
            let nick = arg?;
            let Some(sid) = room.member_by_nick(nick).map(|m| m.actor.sid.clone()) else {
                out.error_detail(intent, ErrorCode::UserNotInChannel, nick, name);
                return None;
            };
            let member = room.member_mut(&sid)?;
            let flag = if change.mode == 'o' {
                &mut member.op
            } else {
                &mut member.voice
            };
            if *flag == add {
                return None;
            }
            *flag = add;
            done(Some(member.actor.nick.clone()))
        }
        'k' if add => {
            let Some(key) = arg.filter(|k| !k.is_empty()) else {
                out.error(intent, ErrorCode::NeedMoreParams, "MODE");
                return None;
            };
            if room.modes.key.as_deref() == Some(key) {
                return None;
            }
            room.modes.key = Some(key.to_string());
            done(Some(key.to_string()))
        }
        'k' => room.modes.key.take().and_then(|_| done(Some("*".into()))),
        'l' if add => {
            let Some(arg) = arg.filter(|a| !a.is_empty()) else {
                out.error(intent, ErrorCode::NeedMoreParams, "MODE");
                return None;
            };
            // A limit that is not a positive number is ignored, as IRC
            // servers do, rather than refused.
            let limit = arg.parse::<u32>().ok().filter(|l| *l > 0)?;
            if room.modes.limit == Some(limit) {
                return None;
            }
            room.modes.limit = Some(limit);
            done(Some(limit.to_string()))
        }
        'l' => room.modes.limit.take().and_then(|_| done(None)),
        'b' => {
            let mask = masks::normalize(arg.filter(|m| !m.is_empty())?);
            let existing = room
                .bans
                .iter()
                .position(|b| b.mask.eq_ignore_ascii_case(&mask));
            match (add, existing) {
                (true, None) if room.bans.len() < MAX_BANS => {
                    let ban = BanEntry {
                        mask: mask.clone(),
                        set_by: intent.actor.nick.clone(),
                        set_at: now,
                    };
                    room.bans.push(ban);
                    done(Some(mask))
                }
                (false, Some(i)) => done(Some(room.bans.remove(i).mask)),
                _ => None,
            }
        }
        letter => {
            let flag = flag_mut(&mut room.modes, letter)?;
            if *flag == add {
                return None;
            }
            *flag = add;
            done(None)
        }
    }
}

fn flag_mut(modes: &mut RoomModes, letter: char) -> Option<&mut bool> {
    match letter {
        'i' => Some(&mut modes.invite_only),
        'm' => Some(&mut modes.moderated),
        'n' => Some(&mut modes.no_external),
        's' => Some(&mut modes.secret),
        't' => Some(&mut modes.topic_ops),
        _ => None,
    }
}

/// `+imnst` flags then `k` and `l`, with their arguments. The key is shown
/// only to members (others see `*` in its place, keeping positions).
pub fn mode_string(modes: &RoomModes, member: bool) -> (String, Vec<String>) {
    let mut letters = String::from("+");
    let flags = [
        ('i', modes.invite_only),
        ('m', modes.moderated),
        ('n', modes.no_external),
        ('s', modes.secret),
        ('t', modes.topic_ops),
    ];
    letters.extend(flags.iter().filter(|(_, on)| *on).map(|(c, _)| *c));
    let mut args = Vec::new();
    if let Some(key) = &modes.key {
        letters.push('k');
        args.push(if member { key.clone() } else { "*".into() });
    }
    if let Some(limit) = modes.limit {
        letters.push('l');
        args.push(limit.to_string());
    }
    (letters, args)
}

#[cfg(test)]
mod tests {
    use bus::schema::{ErrorCode, EventBody, ModeChange, Reply};

    use super::super::testing::*;
    use super::{mode_string, Outcome, MAX_CHANGES};
    use crate::room::MAX_BANS;
    use bus::schema::RoomModes;

    fn event_changes(out: &Outcome) -> Vec<ModeChange> {
        match out.events().collect::<Vec<_>>()[..] {
            [ev] => match &ev.body {
                EventBody::Mode { changes } => changes.clone(),
                other => panic!("{other:?}"),
            },
            [] => Vec::new(),
            ref more => panic!("{more:?}"),
        }
    }

    fn mc(add: bool, mode: char, arg: Option<&str>) -> ModeChange {
        ModeChange {
            add,
            mode,
            arg: arg.map(str::to_string),
        }
    }

    #[test]
    fn query_shows_flags_key_and_limit() {
        let alice = actor("alice", "gw1");
        let zed = actor("zed", "gw2");
        let mut slot = room_with(&alice, &[]);
        let room = slot.as_mut().unwrap();
        room.modes.invite_only = true;
        room.modes.key = Some("sesame".into());
        room.modes.limit = Some(10);
        match replies(&mode(&mut slot, &alice, "ops", &[]))[..] {
            [Reply::Modes {
                modes,
                args,
                created_at,
                name,
                ..
            }] => {
                assert_eq!(
                    (modes.as_str(), name.as_str(), *created_at),
                    ("+intkl", "Ops", 1000)
                );
                assert_eq!(args, &vec!["sesame".to_string(), "10".to_string()]);
            }
            ref other => panic!("{other:?}"),
        }
        match replies(&mode(&mut slot, &zed, "ops", &[]))[..] {
            [Reply::Modes { args, .. }] => {
                assert_eq!(args, &vec!["*".to_string(), "10".to_string()])
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(
            mode_string(&RoomModes::default(), true),
            ("+".to_string(), vec![])
        );
    }

    #[test]
    fn flags_filter_no_ops() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[
                (true, 'n', None),
                (true, 'i', None),
                (false, 's', None),
                (true, 'm', None),
            ],
        );
        assert_eq!(
            event_changes(&out),
            vec![mc(true, 'i', None), mc(true, 'm', None)]
        );
        let room = slot.as_ref().unwrap();
        assert!(room.modes.invite_only && room.modes.moderated && room.modes.no_external);
        assert_eq!(room.seq, 2);
        let out = mode(&mut slot, &alice, "ops", &[(true, 'i', None)]);
        assert!(out.effects.is_empty(), "nothing changed, no event");
        assert_eq!(slot.unwrap().seq, 2);
    }

    #[test]
    fn op_and_voice_by_nick() {
        let alice = actor("alice", "gw1");
        let bob = actor("Bob", "gw2");
        let mut slot = room_with(&alice, &[&bob]);
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[
                (true, 'o', Some("BOB")),
                (true, 'v', Some("bob")),
                (true, 'o', Some("ghost")),
                (true, 'v', None),
            ],
        );
        assert_eq!(
            event_changes(&out),
            vec![mc(true, 'o', Some("Bob")), mc(true, 'v', Some("Bob"))]
        );
        match replies(&out)[..] {
            [Reply::Error {
                code: ErrorCode::UserNotInChannel,
                target,
                detail,
            }] => {
                assert_eq!((target.as_str(), detail.as_str()), ("ghost", "ops"));
            }
            ref other => panic!("{other:?}"),
        }
        let room = slot.as_ref().unwrap();
        assert!(room.is_op("Bob") && room.has_voice("Bob"));
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[(true, 'o', Some("bob")), (false, 'o', Some("bob"))],
        );
        assert_eq!(event_changes(&out), vec![mc(false, 'o', Some("Bob"))]);
    }

    #[test]
    fn key_and_limit() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        // Setting a key or a limit without its parameter is refused.
        for letter in ['k', 'l'] {
            let out = mode(&mut slot, &alice, "ops", &[(true, letter, None)]);
            match replies(&out)[..] {
                [Reply::Error {
                    code: ErrorCode::NeedMoreParams,
                    target,
                    ..
                }] => assert_eq!(target, "MODE"),
                ref other => panic!("+{letter}: {other:?}"),
            }
            assert!(
                out.events().next().is_none(),
                "+{letter} without a parameter"
            );
        }
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[
                (true, 'k', Some("s3")),
                (true, 'l', Some("0")),
                (true, 'l', Some("x")),
                (true, 'l', Some("5")),
            ],
        );
        assert_eq!(
            event_changes(&out),
            vec![mc(true, 'k', Some("s3")), mc(true, 'l', Some("5"))]
        );
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[(true, 'l', Some("5")), (true, 'k', Some("s3"))],
        );
        assert!(out.effects.is_empty());
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[(false, 'k', None), (false, 'l', None), (false, 'l', None)],
        );
        assert_eq!(
            event_changes(&out),
            vec![mc(false, 'k', Some("*")), mc(false, 'l', None)]
        );
        let room = slot.unwrap();
        assert_eq!((room.modes.key, room.modes.limit), (None, None));
    }

    #[test]
    fn bans_add_list_remove() {
        let alice = actor("alice", "gw1");
        let zed = actor("zed", "gw2");
        let mut slot = room_with(&alice, &[]);
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[
                (true, 'b', Some("bob")),
                (true, 'b', Some("u@h")),
                (true, 'b', Some("BOB!*@*")),
            ],
        );
        assert_eq!(
            event_changes(&out),
            vec![mc(true, 'b', Some("bob!*@*")), mc(true, 'b', Some("*!u@h"))]
        );
        // Anyone may list them.
        match replies(&mode(&mut slot, &zed, "ops", &[(true, 'b', None)]))[..] {
            [Reply::BanList { bans, .. }] => {
                let masks: Vec<_> = bans
                    .iter()
                    .map(|b| (b.mask.as_str(), b.set_by.as_str()))
                    .collect();
                assert_eq!(masks, vec![("bob!*@*", "alice"), ("*!u@h", "alice")]);
            }
            ref other => panic!("{other:?}"),
        }
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[(false, 'b', Some("Bob")), (false, 'b', Some("nobody"))],
        );
        assert_eq!(event_changes(&out), vec![mc(false, 'b', Some("bob!*@*"))]);
        assert_eq!(slot.unwrap().bans.len(), 1);
    }

    #[test]
    fn ban_list_is_bounded() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        for i in 0..MAX_BANS + 3 {
            mode(
                &mut slot,
                &alice,
                "ops",
                &[(true, 'b', Some(&format!("n{i}")))],
            );
        }
        assert_eq!(slot.unwrap().bans.len(), MAX_BANS);
    }

    #[test]
    fn rights_and_unknown_letters() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let zed = actor("zed", "gw2");
        let mut slot = room_with(&alice, &[&bob]);
        assert_eq!(
            errors(&mode(
                &mut slot,
                &bob,
                "ops",
                &[(true, 'i', None), (true, 'm', None)]
            )),
            vec![ErrorCode::ChanOpPrivsNeeded]
        );
        assert_eq!(
            errors(&mode(&mut slot, &zed, "ops", &[(true, 'i', None)])),
            vec![ErrorCode::NotOnChannel]
        );
        let out = mode(
            &mut slot,
            &alice,
            "ops",
            &[(true, 'z', None), (true, 's', None)],
        );
        match replies(&out)[..] {
            [Reply::Error {
                code: ErrorCode::UnknownMode,
                target,
                detail,
            }] => {
                assert_eq!((target.as_str(), detail.as_str()), ("z", "z"));
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(event_changes(&out), vec![mc(true, 's', None)]);
        let mut none = None;
        assert_eq!(
            errors(&mode(&mut none, &alice, "ops", &[])),
            vec![ErrorCode::NoSuchChannel]
        );
    }

    #[test]
    fn at_most_twelve_changes() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let many: Vec<(bool, char, Option<&str>)> =
            (0..20).map(|i| (i % 2 == 0, 'm', None)).collect();
        let out = mode(&mut slot, &alice, "ops", &many);
        assert_eq!(event_changes(&out).len(), MAX_CHANGES);
    }
}
