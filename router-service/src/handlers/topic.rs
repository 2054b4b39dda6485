//! TOPIC: query or set (an empty text clears it). A registered room's
//! topic lock (ChanServ SET TOPICLOCK) restricts setting it to accounts
//! with OP access.

use bus::schema::{AccessLevel, ErrorCode, EventBody, Intent, Reply, TopicInfo};

use super::{existing, Outcome};
use crate::room::Room;

pub(super) fn topic(
    slot: &mut Option<Room>,
    intent: &Intent,
    name: &str,
    new_topic: Option<&str>,
    now: i64,
    out: &mut Outcome,
) {
    let actor = &intent.actor;
    let Some(room) = existing(slot, intent, name, out) else {
        return;
    };
    let member = room.is_member(&actor.sid);
    let Some(text) = new_topic else {
        if room.modes.secret && !member {
            out.error(intent, ErrorCode::NotOnChannel, name);
        } else {
            let reply = Reply::Topic {
                room: room.room.clone(),
                name: room.name.clone(),
                topic: room.topic.clone(),
            };
            out.reply(intent, reply);
        }
        return;
    };
    if !member {
        out.error(intent, ErrorCode::NotOnChannel, name);
        return;
    }
    if room.modes.topic_ops && !room.is_op(&actor.sid) {
        out.error(intent, ErrorCode::ChanOpPrivsNeeded, name);
        return;
    }
    // ChanServ TOPICLOCK: the founder and OP accounts only, whatever the
    // member's channel modes (an op without access is refused too).
    let locked = room.registration.as_ref().is_some_and(|r| {
        r.topic_lock && r.level_of(actor.account.as_deref()) != Some(AccessLevel::Op)
    });
    if locked {
        out.error(intent, ErrorCode::ChanOpPrivsNeeded, name);
        return;
    }
    room.topic = (!text.is_empty()).then(|| TopicInfo {
        text: text.to_string(),
        set_by: actor.nick.clone(),
        set_at: now,
    });
    let event = room.event(
        &intent.id,
        actor,
        EventBody::Topic {
            topic: text.to_string(),
        },
        now,
    );
    out.event(event);
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, ErrorCode, EventBody, IntentBody, Reply};

    use super::super::testing::*;
    use super::super::Outcome;
    use crate::room::Room;

    fn set(slot: &mut Option<Room>, who: &Actor, text: &str) -> Outcome {
        run(
            slot,
            who,
            IntentBody::Topic {
                room: "ops".into(),
                topic: Some(text.into()),
            },
        )
    }

    fn query(slot: &mut Option<Room>, who: &Actor) -> Outcome {
        run(
            slot,
            who,
            IntentBody::Topic {
                room: "ops".into(),
                topic: None,
            },
        )
    }

    #[test]
    fn set_query_and_clear() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let out = set(&mut slot, &alice, "welcome");
        let ev = out.events().next().unwrap();
        assert_eq!(
            ev.body,
            EventBody::Topic {
                topic: "welcome".into()
            }
        );
        assert_eq!(ev.seq, 2);
        match replies(&query(&mut slot, &alice))[..] {
            [Reply::Topic {
                topic: Some(t),
                name,
                ..
            }] => {
                assert_eq!(
                    (t.text.as_str(), t.set_by.as_str(), t.set_at),
                    ("welcome", "alice", 1000)
                );
                assert_eq!(name, "Ops");
            }
            ref other => panic!("{other:?}"),
        }
        let out = set(&mut slot, &alice, "");
        assert_eq!(
            out.events().next().unwrap().body,
            EventBody::Topic {
                topic: String::new()
            }
        );
        assert!(slot.as_ref().unwrap().topic.is_none());
    }

    #[test]
    fn topic_errors() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw1");
        let zed = actor("zed", "gw2");
        let mut none = None;
        assert_eq!(
            errors(&query(&mut none, &alice)),
            vec![ErrorCode::NoSuchChannel]
        );
        assert_eq!(
            errors(&set(&mut none, &alice, "x")),
            vec![ErrorCode::NoSuchChannel]
        );
        let mut slot = room_with(&alice, &[&bob]);
        assert_eq!(
            errors(&set(&mut slot, &zed, "x")),
            vec![ErrorCode::NotOnChannel]
        );
        assert_eq!(
            errors(&set(&mut slot, &bob, "x")),
            vec![ErrorCode::ChanOpPrivsNeeded]
        );
        // An outsider may read the topic of a public room, not a secret one.
        assert!(matches!(
            replies(&query(&mut slot, &zed))[..],
            [Reply::Topic { .. }]
        ));
        slot.as_mut().unwrap().modes.secret = true;
        assert_eq!(
            errors(&query(&mut slot, &zed)),
            vec![ErrorCode::NotOnChannel]
        );
        // -t: any member may set it.
        slot.as_mut().unwrap().modes.topic_ops = false;
        assert_eq!(set(&mut slot, &bob, "x").events().count(), 1);
        assert_eq!(slot.unwrap().seq, 3);
    }
}
