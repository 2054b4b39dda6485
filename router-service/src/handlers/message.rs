//! Messages to a room (PRIVMSG, NOTICE, TAGMSG).
//!
//! A refused NOTICE is dropped without an error reply: IRC forbids
//! automatic replies to notices (it prevents bot reply loops).

use bus::schema::{ClientTags, ErrorCode, EventBody, Intent, MessageKind};

use super::Outcome;
use crate::room::Room;

#[allow(clippy::too_many_arguments)]
pub(super) fn message(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    kind: MessageKind,
    text: &str,
    tags: &ClientTags,
    now: i64,
    out: &mut Outcome,
) {
    let actor = &intent.actor;
    let refusal = match slot.as_ref() {
        None => Some(ErrorCode::NoSuchChannel),
        Some(room) => {
            let member = room.is_member(&actor.sid);
            let voiced = room.has_voice(&actor.sid);
            let refused = (!member && room.modes.no_external)
                || (room.modes.moderated && !voiced)
                || (!voiced && room.is_banned(actor));
            refused.then_some(ErrorCode::CannotSendToChan)
        }
    };
    if let Some(code) = refusal {
        if kind != MessageKind::Notice {
            out.error(intent, code, name);
        }
        return;
    }
    let Some(room) = slot.as_mut() else { return };
    let body = EventBody::Message {
        kind,
        text: text.to_string(),
        tags: tags.clone(),
    };
    let event = room.event(&intent.id, actor, body, now);
    out.event(event);
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, BanEntry, ErrorCode, EventBody, IntentBody, MessageKind};

    use super::super::testing::*;
    use super::super::Outcome;
    use crate::room::Room;

    fn say(slot: &mut Option<Room>, who: &Actor, kind: MessageKind) -> Outcome {
        let mut tags = bus::schema::ClientTags::new();
        tags.insert("+typing".into(), "active".into());
        run(
            slot,
            who,
            IntentBody::Message {
                room: "ops".into(),
                kind,
                text: "hi".into(),
                tags,
            },
        )
    }

    #[test]
    fn member_message_takes_next_seq_and_intent_id() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let i = intent(
            "m1",
            &alice,
            IntentBody::Message {
                room: "OPS".into(),
                kind: MessageKind::Privmsg,
                text: "hello".into(),
                tags: Default::default(),
            },
        );
        let out = apply_over(&mut slot, None, &i, 42);
        let ev = out.events().next().unwrap();
        assert_eq!(
            (ev.seq, ev.id.as_str(), ev.at, ev.room.as_str()),
            (2, "m1", 42, "ops")
        );
        assert!(matches!(&ev.body, EventBody::Message { text, .. } if text == "hello"));
        let out = say(&mut slot, &alice, MessageKind::Tagmsg);
        let ev = out.events().next().unwrap();
        assert_eq!(ev.seq, 3);
        assert!(matches!(&ev.body, EventBody::Message { tags, .. } if tags["+typing"] == "active"));
    }

    #[test]
    fn refusals_and_notice_silence() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let outsider = actor("zed", "gw2");
        let mut none = None;
        assert_eq!(
            errors(&say(&mut none, &alice, MessageKind::Privmsg)),
            vec![ErrorCode::NoSuchChannel]
        );
        assert!(say(&mut none, &alice, MessageKind::Notice)
            .effects
            .is_empty());

        let mut slot = room_with(&alice, &[&bob]);
        // +n: outsiders may not speak; notices are dropped silently.
        assert_eq!(
            errors(&say(&mut slot, &outsider, MessageKind::Privmsg)),
            vec![ErrorCode::CannotSendToChan]
        );
        assert!(say(&mut slot, &outsider, MessageKind::Notice)
            .effects
            .is_empty());
        // -n: they may.
        slot.as_mut().unwrap().modes.no_external = false;
        assert_eq!(
            say(&mut slot, &outsider, MessageKind::Privmsg)
                .events()
                .count(),
            1
        );
        // +m: only op or voice.
        slot.as_mut().unwrap().modes.moderated = true;
        assert_eq!(
            errors(&say(&mut slot, &bob, MessageKind::Privmsg)),
            vec![ErrorCode::CannotSendToChan]
        );
        assert_eq!(
            say(&mut slot, &alice, MessageKind::Privmsg)
                .events()
                .count(),
            1
        );
        slot.as_mut().unwrap().member_mut("bob").unwrap().voice = true;
        assert_eq!(
            say(&mut slot, &bob, MessageKind::Privmsg).events().count(),
            1
        );
        // Banned members without voice are muted.
        let room = slot.as_mut().unwrap();
        room.modes.moderated = false;
        room.member_mut("bob").unwrap().voice = false;
        room.bans.push(BanEntry {
            mask: "bob!*@*".into(),
            set_by: "alice".into(),
            set_at: 0,
        });
        assert_eq!(
            errors(&say(&mut slot, &bob, MessageKind::Privmsg)),
            vec![ErrorCode::CannotSendToChan]
        );
        assert!(say(&mut slot, &bob, MessageKind::Notice).effects.is_empty());
        let seq_before = slot.as_ref().unwrap().seq;
        slot.as_mut().unwrap().member_mut("bob").unwrap().voice = true;
        assert_eq!(
            say(&mut slot, &bob, MessageKind::Privmsg)
                .events()
                .next()
                .unwrap()
                .seq,
            seq_before + 1
        );
    }
}
