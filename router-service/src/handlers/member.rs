//! Member changes that concern every room the session is in: nick, away,
//! account (log in or out), realname, bot mode, quit. The gateway sends one intent per room, all with the same `event`
//! id so recipients sharing several rooms with the member see it once.

use bus::schema::{EventBody, Intent, MemberChange};

use super::{chanserv, quit_body, remove_and_maybe_empty, Outcome};
use crate::room::Room;

pub(super) fn member(
    slot: &mut Option<Room>,
    intent: &Intent,
    event_id: &str,
    change: &MemberChange,
    now: i64,
    out: &mut Outcome,
) {
    let sid = &intent.actor.sid;
    // Not a member (any more): nothing to tell anyone, and no reply either.
    let Some(room) = slot.as_mut() else { return };
    let Some(stored) = room.member(sid).map(|m| m.actor.clone()) else {
        return;
    };
    match change {
        MemberChange::Nick { new } => {
            let body = EventBody::Nick {
                new: new.clone(),
                event: event_id.to_string(),
            };
            let event = room.event(&intent.id, &stored, body, now);
            out.event(event);
            if let Some(m) = room.member_mut(sid) {
                m.actor.nick = new.clone();
            }
        }
        MemberChange::Away { message } => {
            let Some(m) = room.member_mut(sid) else {
                return;
            };
            if m.away.is_none() && message.is_none() {
                return;
            }
            m.away = message.clone();
            let body = EventBody::Away {
                message: message.clone(),
                event: event_id.to_string(),
            };
            let event = room.event(&intent.id, &stored, body, now);
            out.event(event);
        }
        MemberChange::Account { account } => {
            let Some(m) = room.member_mut(sid) else {
                return;
            };
            if m.actor.account == *account {
                return;
            }
            m.actor.account = account.clone();
            let body = EventBody::Account {
                account: account.clone(),
                event: event_id.to_string(),
            };
            // The event shows who the member now is (its new account).
            let actor = m.actor.clone();
            let event = room.event(&intent.id, &actor, body, now);
            out.event(event);
            // Identified after joining: the access it now has applies.
            let level = room
                .registration
                .as_ref()
                .and_then(|r| r.level_of(account.as_deref()));
            if let Some(level) = level {
                chanserv::auto_mode(room, intent, level, now, out);
            }
        }
        MemberChange::Realname { realname } => {
            let Some(m) = room.member_mut(sid) else {
                return;
            };
            if m.actor.realname == *realname {
                return;
            }
            m.actor.realname = realname.clone();
            let body = EventBody::Realname {
                realname: realname.clone(),
                event: event_id.to_string(),
            };
            let actor = m.actor.clone();
            let event = room.event(&intent.id, &actor, body, now);
            out.event(event);
        }
        MemberChange::Host { user, host } => {
            let Some(m) = room.member_mut(sid) else {
                return;
            };
            if m.actor.user == *user && m.actor.host == *host {
                return;
            }
            // The event's actor is who the member was: `old!mask CHGHOST`.
            let before = m.actor.clone();
            m.actor.user = user.clone();
            m.actor.host = host.clone();
            let body = EventBody::Host {
                user: user.clone(),
                host: host.clone(),
                event: event_id.to_string(),
                op: m.op,
                voice: m.voice,
            };
            let event = room.event(&intent.id, &before, body, now);
            out.event(event);
        }
        MemberChange::Bot { bot } => {
            if let Some(m) = room.member_mut(sid) {
                m.bot = *bot;
            }
        }
        MemberChange::Quit { reason } => {
            let event = room.event(&intent.id, &stored, quit_body(reason, event_id), now);
            out.event(event);
            remove_and_maybe_empty(slot, sid, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use bus::schema::{Actor, EventBody, IntentBody, MemberChange};

    use super::super::testing::*;
    use super::super::Outcome;
    use crate::room::Room;

    fn change(slot: &mut Option<Room>, who: &Actor, change: MemberChange) -> Outcome {
        run(
            slot,
            who,
            IntentBody::Member {
                room: "ops".into(),
                event: "e1".into(),
                change,
            },
        )
    }

    #[test]
    fn nick_change_uses_old_identity() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let mut renamed = alice.clone();
        renamed.nick = "alicia".into();
        let out = change(
            &mut slot,
            &renamed,
            MemberChange::Nick {
                new: "alicia".into(),
            },
        );
        let ev = out.events().next().unwrap();
        assert_eq!(ev.actor.nick, "alice");
        assert_eq!(
            ev.body,
            EventBody::Nick {
                new: "alicia".into(),
                event: "e1".into()
            }
        );
        let room = slot.as_ref().unwrap();
        assert_eq!(room.member("alice").unwrap().actor.nick, "alicia");
        assert!(room.member_by_nick("ALICIA").is_some());
    }

    #[test]
    fn account_login_is_stored_and_announced_once() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let login = MemberChange::Account {
            account: Some("alice".into()),
        };
        let out = change(&mut slot, &alice, login.clone());
        let ev = out.events().next().unwrap();
        assert_eq!(ev.actor.account.as_deref(), Some("alice"));
        assert_eq!(
            ev.body,
            EventBody::Account {
                account: Some("alice".into()),
                event: "e1".into()
            }
        );
        let room = slot.as_ref().unwrap();
        assert_eq!(
            room.member("alice").unwrap().actor.account.as_deref(),
            Some("alice")
        );
        // The same state again changes nothing and tells nobody.
        let again = change(&mut slot, &alice, login);
        assert_eq!(again.events().count(), 0);
    }

    #[test]
    fn away_set_and_clear() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let out = change(&mut slot, &alice, MemberChange::Away { message: None });
        assert!(out.effects.is_empty(), "clearing when not away is not news");
        let out = change(
            &mut slot,
            &alice,
            MemberChange::Away {
                message: Some("afk".into()),
            },
        );
        assert_eq!(
            out.events().next().unwrap().body,
            EventBody::Away {
                message: Some("afk".into()),
                event: "e1".into()
            }
        );
        assert!(slot
            .as_ref()
            .unwrap()
            .member("alice")
            .unwrap()
            .away
            .is_some());
        let out = change(&mut slot, &alice, MemberChange::Away { message: None });
        assert_eq!(out.events().count(), 1);
        assert_eq!(slot.unwrap().seq, 3);
    }

    #[test]
    fn realname_is_stored_and_announced_once() {
        let alice = actor("alice", "gw1");
        let mut slot = room_with(&alice, &[]);
        let set = MemberChange::Realname {
            realname: "Alice Liddell".into(),
        };
        let out = change(&mut slot, &alice, set.clone());
        let ev = out.events().next().unwrap();
        assert_eq!(ev.actor.realname, "Alice Liddell");
        assert_eq!(
            ev.body,
            EventBody::Realname {
                realname: "Alice Liddell".into(),
                event: "e1".into()
            }
        );
        let room = slot.as_ref().unwrap();
        assert_eq!(
            room.member("alice").unwrap().actor.realname,
            "Alice Liddell"
        );
        assert_eq!(change(&mut slot, &alice, set).events().count(), 0);
    }

    #[test]
    fn quit_removes_and_non_members_are_ignored() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let zed = actor("zed", "gw2");
        let mut slot = room_with(&alice, &[&bob]);
        assert!(
            change(&mut slot, &zed, MemberChange::Quit { reason: "x".into() })
                .effects
                .is_empty()
        );
        let mut none = None;
        assert!(
            change(&mut none, &zed, MemberChange::Quit { reason: "x".into() })
                .effects
                .is_empty()
        );
        let out = change(
            &mut slot,
            &bob,
            MemberChange::Quit {
                reason: "Client Quit".into(),
            },
        );
        assert_eq!(
            out.events().next().unwrap().body,
            EventBody::Quit {
                reason: "Client Quit".into(),
                event: "e1".into()
            }
        );
        assert_eq!(out.emptied, vec!["gw2".to_string()]);
        let out = change(
            &mut slot,
            &alice,
            MemberChange::Quit {
                reason: "bye".into(),
            },
        );
        assert_eq!(out.events().count(), 1);
        assert!(slot.is_none());
    }
}
