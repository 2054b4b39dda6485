//! REDACT: a member deletes a room message (IRCv3 `REDACT`, XMPP message
//! retraction).
//!
//! The router keeps no messages, so it cannot tell who wrote `msgid`: the
//! gateway looked it up in history and says so (`own`). Gateways are
//! trusted with that, as they are with the actor itself. What the router
//! decides is what it knows: the actor must be a member, and deleting
//! someone else's message takes an operator. The event gets the room's
//! next `seq` (no `mseq`: it is not a message), so every gateway and the
//! history service see it in the room's one order.

use bus::schema::{ErrorCode, EventBody, Intent};

use super::{as_member, Outcome};
use crate::room::Room;

/// What the intent names: the message, its number, and why.
pub(super) struct Redaction<'a> {
    pub msgid: &'a str,
    pub mseq: Option<u64>,
    pub own: bool,
    pub reason: &'a Option<String>,
}

pub(super) fn redact(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    r: Redaction<'_>,
    now: i64,
    out: &mut Outcome,
) {
    let Some(room) = as_member(slot, intent, name, out) else {
        return;
    };
    if !r.own && !room.is_op(&intent.actor.sid) {
        out.error(intent, ErrorCode::ChanOpPrivsNeeded, name);
        return;
    }
    let body = EventBody::Redact {
        msgid: r.msgid.to_string(),
        mseq: r.mseq,
        reason: r.reason.clone(),
    };
    let event = room.event(&intent.id, &intent.actor, body, now);
    out.event(event);
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, ErrorCode, EventBody, IntentBody};

    use super::super::testing::*;
    use super::super::Outcome;
    use crate::room::Room;

    fn redact(slot: &mut Option<Room>, who: &Actor, own: bool) -> Outcome {
        run(
            slot,
            who,
            IntentBody::Redact {
                room: "OPS".into(),
                msgid: "m1".into(),
                mseq: Some(4),
                own,
                reason: Some("oops".into()),
            },
        )
    }

    #[test]
    fn author_or_operator_redacts_with_a_seq_but_no_number() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut slot = room_with(&alice, &[&bob]);
        let (seq, mseq) = {
            let r = slot.as_ref().unwrap();
            (r.seq, r.mseq)
        };
        let out = redact(&mut slot, &bob, true);
        let ev = out.events().next().unwrap();
        assert_eq!(
            (ev.seq, ev.mseq, ev.actor.sid.as_str()),
            (seq + 1, None, "bob")
        );
        assert_eq!(
            ev.body,
            EventBody::Redact {
                msgid: "m1".into(),
                mseq: Some(4),
                reason: Some("oops".into())
            }
        );
        assert_eq!(slot.as_ref().unwrap().mseq, mseq, "no message number used");
        // An operator may delete what others wrote.
        assert_eq!(redact(&mut slot, &alice, false).events().count(), 1);
        assert_eq!(slot.as_ref().unwrap().seq, seq + 2);
    }

    #[test]
    fn redact_errors() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let zed = actor("zed", "gw2");
        let mut none = None;
        assert_eq!(
            errors(&redact(&mut none, &alice, true)),
            vec![ErrorCode::NoSuchChannel]
        );
        let mut slot = room_with(&alice, &[&bob]);
        assert_eq!(
            errors(&redact(&mut slot, &zed, true)),
            vec![ErrorCode::NotOnChannel]
        );
        let seq = slot.as_ref().unwrap().seq;
        let out = redact(&mut slot, &bob, false);
        assert_eq!(errors(&out), vec![ErrorCode::ChanOpPrivsNeeded]);
        assert_eq!(out.events().count(), 0);
        assert_eq!(slot.unwrap().seq, seq, "a refusal takes no seq");
    }
}
