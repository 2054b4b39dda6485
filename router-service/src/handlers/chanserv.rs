//! ChanServ: registering a room and what a registration allows.
//!
//! The router is ChanServ because it owns the rooms: a registration lives
//! with the room's state (NATS record while live, PostgreSQL always; see
//! [`crate::registered`]) and is decided in the room's one order, so a
//! REGISTER and a MODE -o racing each other have one outcome everywhere.
//! Every answer is a [`Reply::ChanServ`]; OP and the like are MODE events
//! from [`chanserv_actor`], like the automatic `+o`/`+v` on joining.
//!
//! Rights (Atheme's defaults, simplified to two levels):
//!
//! * REGISTER: logged in, in the room, an operator there; the account
//!   becomes founder.
//! * DROP, ACCESS ADD/DEL, SET TOPICLOCK: the founder.
//! * OP/DEOP, ACCESS LIST: the founder or an `OP` account; VOICE/DEVOICE:
//!   any account on the list.
//! * INFO: anyone.

use bus::names::fold;
use bus::schema::{
    chanserv_actor, AccessEntry, AccessLevel, ChanServAnswer, ChanServCommand, ChanServRefusal,
    EventBody, Intent, ModeChange, Registration, Reply,
};

use super::mode::mode_string;
use super::Outcome;
use crate::registered::{valid_account, Durable, MAX_ACCESS};
use crate::room::Room;

#[allow(clippy::too_many_arguments)]
pub(super) fn chanserv(
    slot: &mut Option<Room>,
    durable: &mut Option<Durable>,
    registry: bool,
    intent: &Intent,
    name: &str,
    command: &ChanServCommand,
    now: i64,
    out: &mut Outcome,
) {
    let mut cs = Answer { intent, name, out };
    if !registry {
        return cs.refuse(ChanServRefusal::Unavailable, "");
    }
    let account = intent.actor.account.as_deref();
    match command {
        ChanServCommand::Register => register(slot, &mut cs, now),
        ChanServCommand::Info => match registration(slot, durable) {
            Some(reg) => {
                let modes = match &*slot {
                    Some(room) => mode_string(&room.modes, false),
                    None => durable
                        .as_ref()
                        .map(|d| mode_string(&d.modes, false))
                        .unwrap_or_default(),
                };
                let mut shown = modes.0;
                for arg in modes.1 {
                    shown.push(' ');
                    shown.push_str(&arg);
                }
                cs.answer(ChanServAnswer::Info {
                    founder: reg.founder.clone(),
                    registered_at: reg.registered_at,
                    topic_lock: reg.topic_lock,
                    modes: shown,
                    access: reg.access.len(),
                });
            }
            None => cs.refuse(ChanServRefusal::NotRegistered, ""),
        },
        ChanServCommand::Drop => {
            if founder_check(registration(slot, durable), account, &mut cs) {
                match slot {
                    Some(room) => room.registration = None,
                    None => *durable = None,
                }
                cs.answer(ChanServAnswer::Dropped);
            }
        }
        ChanServCommand::SetTopicLock { on } => {
            if founder_check(registration(slot, durable), account, &mut cs) {
                if let Some(reg) = registration_mut(slot, durable) {
                    reg.topic_lock = *on;
                }
                cs.answer(ChanServAnswer::TopicLock { on: *on });
            }
        }
        ChanServCommand::AccessAdd {
            account: who,
            level,
        } => {
            let reg = registration(slot, durable);
            if !founder_check(reg, account, &mut cs) {
                return;
            }
            let who = fold(who);
            if !valid_account(&who) {
                return cs.refuse(ChanServRefusal::BadAccount, &who);
            }
            let reg = reg.expect("checked by founder_check");
            if reg.founder == who {
                return cs.refuse(ChanServRefusal::IsFounder, &who);
            }
            if !reg.access.contains_key(&who) && reg.access.len() >= MAX_ACCESS {
                return cs.refuse(ChanServRefusal::AccessListFull, "");
            }
            if let Some(reg) = registration_mut(slot, durable) {
                reg.access.insert(who.clone(), *level);
            }
            cs.answer(ChanServAnswer::AccessAdded {
                account: who,
                level: *level,
            });
        }
        ChanServCommand::AccessDel { account: who } => {
            if !founder_check(registration(slot, durable), account, &mut cs) {
                return;
            }
            let who = fold(who);
            let removed = registration_mut(slot, durable)
                .and_then(|reg| reg.access.remove(&who))
                .is_some();
            if removed {
                cs.answer(ChanServAnswer::AccessRemoved { account: who });
            } else {
                cs.refuse(ChanServRefusal::NotOnAccessList, &who);
            }
        }
        ChanServCommand::AccessList => {
            let Some(reg) = registration(slot, durable) else {
                return cs.refuse(ChanServRefusal::NotRegistered, "");
            };
            if !has_level(reg, account, AccessLevel::Op, &mut cs) {
                return;
            }
            let entries = reg
                .access
                .iter()
                .map(|(account, level)| AccessEntry {
                    account: account.clone(),
                    level: *level,
                })
                .collect();
            cs.answer(ChanServAnswer::AccessList {
                founder: reg.founder.clone(),
                entries,
            });
        }
        ChanServCommand::Op { nick }
        | ChanServCommand::Deop { nick }
        | ChanServCommand::Voice { nick }
        | ChanServCommand::Devoice { nick } => {
            if slot.is_none() && durable.is_none() {
                return cs.refuse(ChanServRefusal::NotRegistered, "");
            }
            let (letter, add) = match command {
                ChanServCommand::Op { .. } => ('o', true),
                ChanServCommand::Deop { .. } => ('o', false),
                ChanServCommand::Voice { .. } => ('v', true),
                _ => ('v', false),
            };
            set_mode(slot, &mut cs, letter, add, nick, now)
        }
    }
}

/// The `+o` or `+v` an account's access gives, from ChanServ, unless the
/// member already has it: after its JOIN, or when it logs in while in the
/// room. The MODE event's id is derived from the intent's (one intent,
/// two events), so a replay gives it again, identically.
pub(super) fn auto_mode(
    room: &mut Room,
    intent: &Intent,
    level: AccessLevel,
    now: i64,
    out: &mut Outcome,
) {
    let Some(member) = room.member_mut(&intent.actor.sid) else {
        return;
    };
    let (flag, letter) = match level {
        AccessLevel::Op => (&mut member.op, 'o'),
        AccessLevel::Voice => (&mut member.voice, 'v'),
    };
    if *flag {
        return;
    }
    *flag = true;
    let change = ModeChange {
        add: true,
        mode: letter,
        arg: Some(member.actor.nick.clone()),
    };
    let id = format!("{}-cs", intent.id);
    let event = room.event(
        &id,
        &chanserv_actor(),
        EventBody::Mode {
            changes: vec![change],
        },
        now,
    );
    out.event(event);
}

/// Replies for one ChanServ intent.
struct Answer<'a> {
    intent: &'a Intent,
    name: &'a str,
    out: &'a mut Outcome,
}

impl Answer<'_> {
    fn answer(&mut self, answer: ChanServAnswer) {
        let body = Reply::ChanServ {
            name: self.name.to_string(),
            answer,
        };
        self.out.reply(self.intent, body);
    }

    fn refuse(&mut self, why: ChanServRefusal, arg: &str) {
        self.answer(ChanServAnswer::Refused {
            why,
            arg: arg.to_string(),
        });
    }
}

/// The registration: the live room's while it has live state, else the
/// durable copy.
fn registration<'a>(
    slot: &'a Option<Room>,
    durable: &'a Option<Durable>,
) -> Option<&'a Registration> {
    match slot {
        Some(room) => room.registration.as_ref(),
        None => durable.as_ref().map(|d| &d.registration),
    }
}

fn registration_mut<'a>(
    slot: &'a mut Option<Room>,
    durable: &'a mut Option<Durable>,
) -> Option<&'a mut Registration> {
    match slot {
        Some(room) => room.registration.as_mut(),
        None => durable.as_mut().map(|d| &mut d.registration),
    }
}

/// Registered, and `account` is its founder; otherwise refuses.
fn founder_check(reg: Option<&Registration>, account: Option<&str>, cs: &mut Answer) -> bool {
    let Some(reg) = reg else {
        cs.refuse(ChanServRefusal::NotRegistered, "");
        return false;
    };
    match account {
        None => cs.refuse(ChanServRefusal::NotIdentified, ""),
        Some(a) if a == reg.founder => return true,
        Some(_) => cs.refuse(ChanServRefusal::NotFounder, ""),
    }
    false
}

/// `account` has at least `needed` here; otherwise refuses.
fn has_level(
    reg: &Registration,
    account: Option<&str>,
    needed: AccessLevel,
    cs: &mut Answer,
) -> bool {
    if account.is_none() {
        cs.refuse(ChanServRefusal::NotIdentified, "");
        return false;
    }
    if reg.level_of(account).is_some_and(|l| l >= needed) {
        return true;
    }
    cs.refuse(ChanServRefusal::NoAccess, "");
    false
}

fn register(slot: &mut Option<Room>, cs: &mut Answer, now: i64) {
    let actor = &cs.intent.actor;
    let Some(account) = actor.account.clone() else {
        return cs.refuse(ChanServRefusal::NotIdentified, "");
    };
    let Some(room) = slot.as_mut() else {
        return cs.refuse(ChanServRefusal::NoSuchChannel, "");
    };
    if room.registration.is_some() {
        return cs.refuse(ChanServRefusal::AlreadyRegistered, "");
    }
    if !room.is_member(&actor.sid) {
        return cs.refuse(ChanServRefusal::NotOnChannel, "");
    }
    if !room.is_op(&actor.sid) {
        return cs.refuse(ChanServRefusal::NotOp, "");
    }
    room.registration = Some(Registration {
        founder: account.clone(),
        registered_at: now,
        topic_lock: false,
        access: Default::default(),
        rev: 0,
    });
    cs.answer(ChanServAnswer::Registered { founder: account });
}

/// OP/DEOP/VOICE/DEVOICE: `+o`/`-o`/`+v`/`-v` on `nick` (default: the
/// sender), as a MODE event from ChanServ.
fn set_mode(
    slot: &mut Option<Room>,
    cs: &mut Answer,
    letter: char,
    add: bool,
    nick: &Option<String>,
    now: i64,
) {
    let intent = cs.intent;
    let Some(room) = slot.as_mut() else {
        // A registered room nobody is in has no one to give a mode to.
        return cs.refuse(ChanServRefusal::NoSuchChannel, "");
    };
    let Some(reg) = room.registration.as_ref() else {
        return cs.refuse(ChanServRefusal::NotRegistered, "");
    };
    let needed = if letter == 'o' {
        AccessLevel::Op
    } else {
        AccessLevel::Voice
    };
    if !has_level(reg, intent.actor.account.as_deref(), needed, cs) {
        return;
    }
    let target = nick.as_deref().unwrap_or(&intent.actor.nick);
    let Some(sid) = room.member_by_nick(target).map(|m| m.actor.sid.clone()) else {
        return cs.refuse(ChanServRefusal::NoSuchNick, target);
    };
    let Some(member) = room.member_mut(&sid) else {
        return;
    };
    let flag = if letter == 'o' {
        &mut member.op
    } else {
        &mut member.voice
    };
    let shown = member.actor.nick.clone();
    if *flag == add {
        return cs.answer(ChanServAnswer::Unchanged {
            nick: shown,
            mode: letter,
            add,
        });
    }
    *flag = add;
    let change = ModeChange {
        add,
        mode: letter,
        arg: Some(shown),
    };
    let body = EventBody::Mode {
        changes: vec![change],
    };
    let event = room.event(&intent.id, &chanserv_actor(), body, now);
    cs.out.event(event);
}

#[cfg(test)]
mod tests {
    use bus::schema::{
        AccessLevel, Actor, ChanServAnswer, ChanServCommand, ChanServRefusal, ErrorCode, EventBody,
        IntentBody, ModeChange, Reply,
    };

    use super::super::testing::*;
    use super::super::{apply, Context, Outcome};
    use crate::registered::Durable;
    use crate::room::Room;

    fn logged_in(nick: &str, account: &str) -> Actor {
        let mut a = actor(nick, "gw1");
        a.account = Some(account.into());
        a
    }

    /// Runs a ChanServ command with a registry that is loaded.
    fn cs(
        slot: &mut Option<Room>,
        durable: &mut Option<Durable>,
        who: &Actor,
        command: ChanServCommand,
    ) -> Outcome {
        let body = IntentBody::ChanServ {
            room: "ops".into(),
            command,
        };
        let ctx = Context {
            husk: None,
            durable,
            registry: true,
        };
        apply(slot, ctx, &intent(&bus::new_id(), who, body), 1000)
    }

    fn answers(out: &Outcome) -> Vec<ChanServAnswer> {
        replies(out)
            .into_iter()
            .filter_map(|r| match r {
                Reply::ChanServ { answer, .. } => Some(answer.clone()),
                _ => None,
            })
            .collect()
    }

    fn refusal(out: &Outcome) -> (ChanServRefusal, String) {
        match &answers(out)[..] {
            [ChanServAnswer::Refused { why, arg }] => (*why, arg.clone()),
            other => panic!("{other:?}"),
        }
    }

    fn refused(why: ChanServRefusal) -> (ChanServRefusal, String) {
        (why, String::new())
    }

    /// `#ops` created by alice (account `alice`) and registered by her,
    /// with bob (account `bob`) and guest zed in it.
    fn registered() -> (Option<Room>, Actor, Actor, Actor) {
        let alice = logged_in("alice", "alice");
        let bob = logged_in("bob", "bob");
        let zed = actor("zed", "gw1");
        let mut slot = room_with(&alice, &[&bob, &zed]);
        let out = cs(&mut slot, &mut None, &alice, ChanServCommand::Register);
        assert_eq!(
            answers(&out),
            vec![ChanServAnswer::Registered {
                founder: "alice".into()
            }]
        );
        (slot, alice, bob, zed)
    }

    #[test]
    fn register_needs_an_account_a_live_room_and_op() {
        let alice = logged_in("alice", "alice");
        let bob = logged_in("bob", "bob");
        let guest = actor("guest", "gw1");
        let outsider = logged_in("out", "out");
        let mut none = None;
        assert_eq!(
            refusal(&cs(&mut none, &mut None, &alice, ChanServCommand::Register)),
            refused(ChanServRefusal::NoSuchChannel)
        );
        let mut slot = room_with(&guest, &[&alice, &bob]);
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &guest, ChanServCommand::Register)),
            refused(ChanServRefusal::NotIdentified)
        );
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, ChanServCommand::Register)),
            refused(ChanServRefusal::NotOp)
        );
        assert_eq!(
            refusal(&cs(
                &mut slot,
                &mut None,
                &outsider,
                ChanServCommand::Register
            )),
            refused(ChanServRefusal::NotOnChannel)
        );
        slot.as_mut().unwrap().member_mut("alice").unwrap().op = true;
        let out = cs(&mut slot, &mut None, &alice, ChanServCommand::Register);
        assert!(matches!(
            answers(&out)[..],
            [ChanServAnswer::Registered { .. }]
        ));
        let reg = slot.as_ref().unwrap().registration.clone().unwrap();
        assert_eq!((reg.founder.as_str(), reg.registered_at), ("alice", 1000));
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &alice, ChanServCommand::Register)),
            refused(ChanServRefusal::AlreadyRegistered)
        );
        assert!(out.events().next().is_none(), "registering is no event");
    }

    #[test]
    fn info_and_drop() {
        let (mut slot, alice, bob, zed) = registered();
        slot.as_mut().unwrap().modes.key = Some("sesame".into());
        match &answers(&cs(&mut slot, &mut None, &zed, ChanServCommand::Info))[..] {
            [ChanServAnswer::Info {
                founder,
                modes,
                topic_lock: false,
                access: 0,
                registered_at: 1000,
            }] => assert_eq!((founder.as_str(), modes.as_str()), ("alice", "+ntk *")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, ChanServCommand::Drop)),
            refused(ChanServRefusal::NotFounder)
        );
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &zed, ChanServCommand::Drop)),
            refused(ChanServRefusal::NotIdentified)
        );
        let out = cs(&mut slot, &mut None, &alice, ChanServCommand::Drop);
        assert_eq!(answers(&out), vec![ChanServAnswer::Dropped]);
        assert!(slot.as_ref().unwrap().registration.is_none());
        for command in [
            ChanServCommand::Info,
            ChanServCommand::Drop,
            ChanServCommand::AccessList,
            ChanServCommand::Op { nick: None },
        ] {
            assert_eq!(
                refusal(&cs(&mut slot, &mut None, &alice, command.clone())),
                refused(ChanServRefusal::NotRegistered),
                "{command:?}"
            );
        }
        let mut none = None;
        assert_eq!(
            refusal(&cs(&mut none, &mut None, &alice, ChanServCommand::Info)),
            refused(ChanServRefusal::NotRegistered)
        );
    }

    #[test]
    fn a_registered_room_nobody_is_in_answers_from_its_durable_state() {
        let (slot, alice, bob, _) = registered();
        let mut durable = Durable::of(slot.as_ref().unwrap());
        let mut none = None;
        let out = cs(&mut none, &mut durable, &bob, ChanServCommand::Info);
        assert!(matches!(answers(&out)[..], [ChanServAnswer::Info { .. }]));
        let add = ChanServCommand::AccessAdd {
            account: "Bob".into(),
            level: AccessLevel::Op,
        };
        cs(&mut none, &mut durable, &alice, add);
        assert_eq!(
            durable.as_ref().unwrap().registration.access["bob"],
            AccessLevel::Op
        );
        assert_eq!(
            refusal(&cs(
                &mut none,
                &mut durable,
                &bob,
                ChanServCommand::Op { nick: None }
            )),
            refused(ChanServRefusal::NoSuchChannel)
        );
        cs(&mut none, &mut durable, &alice, ChanServCommand::Drop);
        assert!(durable.is_none() && none.is_none());
    }

    #[test]
    fn access_list_changes_are_the_founders() {
        let (mut slot, alice, bob, zed) = registered();
        let add = |account: &str, level| ChanServCommand::AccessAdd {
            account: account.into(),
            level,
        };
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, add("zed", AccessLevel::Op))),
            refused(ChanServRefusal::NotFounder)
        );
        assert_eq!(
            refusal(&cs(
                &mut slot,
                &mut None,
                &alice,
                add("1nope", AccessLevel::Op)
            )),
            (ChanServRefusal::BadAccount, "1nope".to_string())
        );
        assert_eq!(
            refusal(&cs(
                &mut slot,
                &mut None,
                &alice,
                add("ALICE", AccessLevel::Op)
            )),
            (ChanServRefusal::IsFounder, "alice".to_string())
        );
        let out = cs(&mut slot, &mut None, &alice, add("BOB", AccessLevel::Voice));
        assert_eq!(
            answers(&out),
            vec![ChanServAnswer::AccessAdded {
                account: "bob".into(),
                level: AccessLevel::Voice
            }]
        );
        // VOICE access does not list, OP does.
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, ChanServCommand::AccessList)),
            refused(ChanServRefusal::NoAccess)
        );
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &zed, ChanServCommand::AccessList)),
            refused(ChanServRefusal::NotIdentified)
        );
        cs(&mut slot, &mut None, &alice, add("bob", AccessLevel::Op));
        match &answers(&cs(&mut slot, &mut None, &bob, ChanServCommand::AccessList))[..] {
            [ChanServAnswer::AccessList { founder, entries }] => {
                assert_eq!(founder, "alice");
                assert_eq!(entries.len(), 1);
                assert_eq!(
                    (entries[0].account.as_str(), entries[0].level),
                    ("bob", AccessLevel::Op)
                );
            }
            other => panic!("{other:?}"),
        }
        let del = |account: &str| ChanServCommand::AccessDel {
            account: account.into(),
        };
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &alice, del("carol"))),
            (ChanServRefusal::NotOnAccessList, "carol".to_string())
        );
        let out = cs(&mut slot, &mut None, &alice, del("Bob"));
        assert_eq!(
            answers(&out),
            vec![ChanServAnswer::AccessRemoved {
                account: "bob".into()
            }]
        );
        for i in 0..super::MAX_ACCESS {
            cs(
                &mut slot,
                &mut None,
                &alice,
                add(&format!("u{i}"), AccessLevel::Voice),
            );
        }
        assert_eq!(
            refusal(&cs(
                &mut slot,
                &mut None,
                &alice,
                add("one-more", AccessLevel::Voice)
            )),
            refused(ChanServRefusal::AccessListFull)
        );
    }

    #[test]
    fn op_and_deop_are_mode_events_from_chanserv() {
        let (mut slot, alice, bob, zed) = registered();
        let op = |nick: Option<&str>| ChanServCommand::Op {
            nick: nick.map(str::to_string),
        };
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, op(None))),
            refused(ChanServRefusal::NoAccess)
        );
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &zed, op(None))),
            refused(ChanServRefusal::NotIdentified)
        );
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &alice, op(Some("ghost")))),
            (ChanServRefusal::NoSuchNick, "ghost".to_string())
        );
        let out = cs(&mut slot, &mut None, &alice, op(Some("BOB")));
        let ev = out.events().next().unwrap();
        assert_eq!(ev.actor.nick, "ChanServ");
        assert_eq!(
            ev.body,
            EventBody::Mode {
                changes: vec![ModeChange {
                    add: true,
                    mode: 'o',
                    arg: Some("bob".into())
                }]
            }
        );
        assert!(answers(&out).is_empty(), "the MODE is the answer");
        assert!(slot.as_ref().unwrap().is_op("bob"));
        let out = cs(&mut slot, &mut None, &alice, op(Some("bob")));
        assert_eq!(
            answers(&out),
            vec![ChanServAnswer::Unchanged {
                nick: "bob".into(),
                mode: 'o',
                add: true
            }]
        );
        // The founder deops herself (default nick: the sender).
        let out = cs(
            &mut slot,
            &mut None,
            &alice,
            ChanServCommand::Deop { nick: None },
        );
        assert_eq!(out.events().count(), 1);
        assert!(!slot.as_ref().unwrap().is_op("alice"));
        // VOICE needs VOICE access at least.
        let voice = ChanServCommand::Voice { nick: None };
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, voice.clone())),
            refused(ChanServRefusal::NoAccess)
        );
        let add = ChanServCommand::AccessAdd {
            account: "bob".into(),
            level: AccessLevel::Voice,
        };
        cs(&mut slot, &mut None, &alice, add);
        assert_eq!(cs(&mut slot, &mut None, &bob, voice).events().count(), 1);
        assert!(slot.as_ref().unwrap().has_voice("bob"));
    }

    #[test]
    fn topic_lock_leaves_the_topic_to_op_accounts() {
        let (mut slot, alice, bob, _) = registered();
        let set_lock = |on| ChanServCommand::SetTopicLock { on };
        assert_eq!(
            refusal(&cs(&mut slot, &mut None, &bob, set_lock(true))),
            refused(ChanServRefusal::NotFounder)
        );
        let out = cs(&mut slot, &mut None, &alice, set_lock(true));
        assert_eq!(answers(&out), vec![ChanServAnswer::TopicLock { on: true }]);
        // bob is a channel operator but has no access: refused.
        slot.as_mut().unwrap().member_mut("bob").unwrap().op = true;
        let topic = |text: &str| IntentBody::Topic {
            room: "ops".into(),
            topic: Some(text.into()),
        };
        assert_eq!(
            errors(&run(&mut slot, &bob, topic("mine"))),
            vec![ErrorCode::ChanOpPrivsNeeded]
        );
        assert_eq!(run(&mut slot, &alice, topic("hers")).events().count(), 1);
        cs(&mut slot, &mut None, &alice, set_lock(false));
        assert_eq!(run(&mut slot, &bob, topic("mine")).events().count(), 1);
    }

    #[test]
    fn nothing_is_decided_before_the_registry_is_loaded() {
        let (mut slot, alice, _, _) = registered();
        let body = IntentBody::ChanServ {
            room: "ops".into(),
            command: ChanServCommand::Drop,
        };
        let ctx = Context {
            husk: None,
            durable: &mut None,
            registry: false,
        };
        let out = apply(&mut slot, ctx, &intent("i", &alice, body), 1000);
        assert_eq!(refusal(&out), refused(ChanServRefusal::Unavailable));
        assert!(slot.unwrap().registration.is_some());
    }
}
