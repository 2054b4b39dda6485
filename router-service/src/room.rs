//! The in-memory model of one room, built from and written back to
//! [`RoomRecord`].
//!
//! The record is the durable form (NATS rooms bucket); this model adds what
//! the router needs to decide quickly and is derived from the record: a
//! member index by sid, the number of members each gateway has (a gateway's
//! queue is bound to the room exactly while that number is positive) and the
//! ids of the intents applied by the batch that wrote the record (a
//! redelivery of one of them is skipped).
//!
//! A room that empties is not forgotten: it leaves a [`Husk`], its name and
//! counters, stored as a member-less record under the same key, so that a
//! room created again under that name continues its `seq` and `mseq`
//! instead of numbering from 1 again (message numbers are never reused).

use std::collections::{HashMap, HashSet};

use bus::names;
use bus::schema::{
    Actor, BanEntry, EventBody, MemberInfo, MemberRecord, MessageKind, Registration, RoomEvent,
    RoomModes, RoomRecord, TopicInfo, SCHEMA_VERSION,
};

use crate::masks;
use crate::registered::Durable;

/// Invitations remembered per room. Oldest are forgotten first, so an
/// invite-spamming op cannot grow a record without bound.
pub const MAX_INVITED: usize = 1000;

/// Bans per room: the `MAXLIST=b:100` that gateways advertise.
pub const MAX_BANS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    /// Folded name: the identity.
    pub room: String,
    /// Display name, as the creator wrote it.
    pub name: String,
    pub created_at: i64,
    /// Seq of the last event; the next event gets `seq + 1`.
    pub seq: u64,
    /// The last message number given (PRIVMSG and NOTICE events only).
    pub mseq: u64,
    pub topic: Option<TopicInfo>,
    pub modes: RoomModes,
    pub bans: Vec<BanEntry>,
    /// The ChanServ registration, if the room is registered.
    pub registration: Option<Registration>,
    invited: Vec<String>,
    members: HashMap<String, MemberRecord>,
    gateways: HashMap<String, usize>,
    last_applied: HashSet<String>,
    /// Revision of this room's record in the rooms bucket (0: none). Writes
    /// are compare-and-set on it, so a router that lost the partition
    /// without knowing it can never overwrite a newer record.
    pub revision: u64,
}

impl Room {
    /// A new, empty room with the defaults of a fresh IRC channel: `+nt`.
    pub fn new(display_name: &str, now: i64) -> Self {
        Self {
            room: names::fold(display_name),
            name: display_name.to_string(),
            created_at: now,
            seq: 0,
            mseq: 0,
            topic: None,
            modes: RoomModes {
                no_external: true,
                topic_ops: true,
                ..RoomModes::default()
            },
            bans: Vec::new(),
            registration: None,
            invited: Vec::new(),
            members: HashMap::new(),
            gateways: HashMap::new(),
            last_applied: HashSet::new(),
            revision: 0,
        }
    }

    /// A new room named `display_name`; over the husk of an earlier room of
    /// that name, it continues that room's counters (and knows which
    /// intents the husk's record lists as applied).
    ///
    /// A registered room (`durable`) comes back as it was registered and
    /// last changed: its name, topic, modes, bans and registration, so a
    /// room that everybody left (or whose NATS record was lost) is the same
    /// room again.
    pub fn create(
        display_name: &str,
        now: i64,
        husk: Option<&Husk>,
        durable: Option<&Durable>,
    ) -> Self {
        let mut room = Self::new(display_name, now);
        if let Some(husk) = husk {
            room.seq = husk.seq;
            room.mseq = husk.mseq;
            room.last_applied = husk.last_applied.clone();
        }
        if let Some(d) = durable {
            room.name = d.name.clone();
            room.topic = d.topic.clone();
            room.modes = d.modes.clone();
            room.bans = d.bans.clone();
            room.registration = Some(d.registration.clone());
        }
        room
    }

    /// What remains of this room once it has emptied.
    pub fn into_husk(self) -> Husk {
        Husk {
            room: self.room,
            name: self.name,
            created_at: self.created_at,
            seq: self.seq,
            mseq: self.mseq,
            last_applied: self.last_applied,
            revision: self.revision,
        }
    }

    /// Rebuilds a room from its stored record (at `revision`).
    pub fn from_record(record: RoomRecord, revision: u64) -> Self {
        let mut room = Self {
            room: record.room,
            name: record.name,
            created_at: record.created_at,
            seq: record.seq,
            mseq: record.mseq,
            topic: record.topic,
            modes: record.modes,
            bans: record.bans,
            registration: record.registration,
            invited: record.invited,
            members: HashMap::new(),
            gateways: HashMap::new(),
            last_applied: record.applied.into_iter().collect(),
            revision,
        };
        for member in record.members {
            room.add_member(member);
        }
        room
    }

    /// The record to store after a batch, `applied` being the ids of the
    /// intents this batch applied to the room.
    pub fn to_record(&self, applied: Vec<String>) -> RoomRecord {
        RoomRecord {
            room: self.room.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            seq: self.seq,
            mseq: self.mseq,
            topic: self.topic.clone(),
            modes: self.modes.clone(),
            bans: self.bans.clone(),
            invited: self.invited.clone(),
            members: self.members_sorted().into_iter().cloned().collect(),
            applied,
            registration: self.registration.clone(),
        }
    }

    /// Whether the last written record lists `intent_id` as applied.
    pub fn was_applied(&self, intent_id: &str) -> bool {
        self.last_applied.contains(intent_id)
    }

    /// Records that the bucket now holds this room at `revision`, listing
    /// exactly `ids` as applied.
    pub fn set_stored(&mut self, ids: &[String], revision: u64) {
        self.last_applied = ids.iter().cloned().collect();
        self.revision = revision;
    }

    pub fn member(&self, sid: &str) -> Option<&MemberRecord> {
        self.members.get(sid)
    }

    pub fn member_mut(&mut self, sid: &str) -> Option<&mut MemberRecord> {
        self.members.get_mut(sid)
    }

    pub fn is_member(&self, sid: &str) -> bool {
        self.members.contains_key(sid)
    }

    /// The member currently using `nick` (compared folded).
    pub fn member_by_nick(&self, nick: &str) -> Option<&MemberRecord> {
        let folded = names::fold(nick);
        self.members
            .values()
            .find(|m| names::fold(&m.actor.nick) == folded)
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How many members `gateway` has here.
    pub fn gateway_count(&self, gateway: &str) -> usize {
        self.gateways.get(gateway).copied().unwrap_or(0)
    }

    /// Adds (or replaces) a member. Returns true if its gateway had no
    /// member here before: that gateway's queue must be bound.
    pub fn add_member(&mut self, member: MemberRecord) -> bool {
        let gateway = member.actor.gateway.clone();
        if let Some(old) = self.members.insert(member.actor.sid.clone(), member) {
            self.release_gateway(&old.actor.gateway);
        }
        let count = self.gateways.entry(gateway).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Removes a member. Returns it, and whether its gateway has no member
    /// left here (its queue may be unbound once the leave is confirmed).
    pub fn remove_member(&mut self, sid: &str) -> Option<(MemberRecord, bool)> {
        let member = self.members.remove(sid)?;
        let emptied = self.release_gateway(&member.actor.gateway);
        Some((member, emptied))
    }

    fn release_gateway(&mut self, gateway: &str) -> bool {
        match self.gateways.get_mut(gateway) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                self.gateways.remove(gateway);
                true
            }
            None => true,
        }
    }

    /// Members in a stable order (by join time, then sid).
    pub fn members_sorted(&self) -> Vec<&MemberRecord> {
        let mut members: Vec<&MemberRecord> = self.members.values().collect();
        members.sort_by(|a, b| {
            a.joined_at
                .cmp(&b.joined_at)
                .then_with(|| a.actor.sid.cmp(&b.actor.sid))
        });
        members
    }

    /// Copies of the members for which `pick` is true, in stable order.
    pub fn members_where(&self, mut pick: impl FnMut(&MemberRecord) -> bool) -> Vec<MemberRecord> {
        self.members_sorted()
            .into_iter()
            .filter(|m| pick(m))
            .cloned()
            .collect()
    }

    /// Everyone, as NAMES and WHO show them.
    pub fn member_infos(&self) -> Vec<MemberInfo> {
        self.members_sorted().into_iter().map(member_info).collect()
    }

    pub fn is_invited(&self, sid: &str) -> bool {
        self.invited.iter().any(|s| s == sid)
    }

    pub fn invite(&mut self, sid: &str) {
        if self.is_invited(sid) {
            return;
        }
        if self.invited.len() >= MAX_INVITED {
            self.invited.remove(0);
        }
        self.invited.push(sid.to_string());
    }

    pub fn uninvite(&mut self, sid: &str) {
        self.invited.retain(|s| s != sid);
    }

    /// Whether a ban mask matches the actor's `nick!user@host` (or, for an
    /// account extban, its account).
    pub fn is_banned(&self, actor: &Actor) -> bool {
        if self.bans.is_empty() {
            return false;
        }
        let hostmask = actor.hostmask();
        self.bans
            .iter()
            .any(|ban| masks::bans(&ban.mask, &hostmask, actor.account.as_deref()))
    }

    /// Op or voice: what lets a member speak under `+m` or a matching ban.
    pub fn has_voice(&self, sid: &str) -> bool {
        self.member(sid).is_some_and(|m| m.op || m.voice)
    }

    pub fn is_op(&self, sid: &str) -> bool {
        self.member(sid).is_some_and(|m| m.op)
    }

    /// The next event of the room: takes the next seq, and a PRIVMSG or
    /// NOTICE also the next message number (TAGMSG and every other event
    /// have none).
    pub fn event(&mut self, id: &str, actor: &Actor, body: EventBody, now: i64) -> RoomEvent {
        self.seq += 1;
        let numbered = matches!(
            body,
            EventBody::Message {
                kind: MessageKind::Privmsg | MessageKind::Notice,
                ..
            }
        );
        let mseq = numbered.then(|| {
            self.mseq += 1;
            self.mseq
        });
        RoomEvent {
            v: SCHEMA_VERSION,
            room: self.room.clone(),
            name: self.name.clone(),
            seq: self.seq,
            mseq,
            id: id.to_string(),
            at: now,
            actor: actor.clone(),
            body,
            intent_at: None,
        }
    }
}

/// What the router keeps of a room that emptied: a high-water mark, not a
/// room. Stored as a record with no members (default modes, no topic, bans
/// or invitations) under the room's key, so that the next room of that name
/// starts from its `seq` and `mseq`: Tinode group topics need message
/// numbers that are never reused, and event seqs that keep growing spare
/// gateways and history a restart at 1. Every reader of the rooms bucket
/// treats a member-less record as "no such room".
#[derive(Debug, Clone, PartialEq)]
pub struct Husk {
    /// Folded name.
    pub room: String,
    /// Display name of the room's last life.
    pub name: String,
    pub created_at: i64,
    pub seq: u64,
    pub mseq: u64,
    last_applied: HashSet<String>,
    /// Revision of the husk's (or, until it is written, of the emptied
    /// room's) record in the rooms bucket (0: none).
    pub revision: u64,
}

impl Husk {
    /// The husk a member-less record stands for (at `revision`).
    pub fn from_record(record: RoomRecord, revision: u64) -> Self {
        Self {
            room: record.room,
            name: record.name,
            created_at: record.created_at,
            seq: record.seq,
            mseq: record.mseq,
            last_applied: record.applied.into_iter().collect(),
            revision,
        }
    }

    /// The record to store, `applied` being the ids of the intents of this
    /// batch applied to the room (the last of them emptied it).
    pub fn to_record(&self, applied: Vec<String>) -> RoomRecord {
        RoomRecord {
            room: self.room.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            seq: self.seq,
            mseq: self.mseq,
            topic: None,
            modes: RoomModes::default(),
            bans: Vec::new(),
            invited: Vec::new(),
            members: Vec::new(),
            applied,
            registration: None,
        }
    }

    /// Whether the husk's record lists `intent_id` as applied.
    pub fn was_applied(&self, intent_id: &str) -> bool {
        self.last_applied.contains(intent_id)
    }

    /// Records that the bucket now holds this husk at `revision`, listing
    /// exactly `ids` as applied.
    pub fn set_stored(&mut self, ids: &[String], revision: u64) {
        self.last_applied = ids.iter().cloned().collect();
        self.revision = revision;
    }
}

/// A member as NAMES and WHO show it.
pub fn member_info(m: &MemberRecord) -> MemberInfo {
    MemberInfo {
        nick: m.actor.nick.clone(),
        user: m.actor.user.clone(),
        host: m.actor.host.clone(),
        realname: m.actor.realname.clone(),
        account: m.actor.account.clone(),
        op: m.op,
        voice: m.voice,
        away: m.away.is_some(),
        bot: m.bot,
        gateway: m.actor.gateway.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::testing::{actor, member};

    #[test]
    fn gateway_counts_follow_members() {
        let mut room = Room::new("Ops", 1);
        assert!(room.add_member(member(actor("a", "gw1"))));
        assert!(!room.add_member(member(actor("b", "gw1"))));
        assert!(room.add_member(member(actor("c", "gw2"))));
        assert_eq!(room.gateway_count("gw1"), 2);
        let (_, emptied) = room.remove_member("a").unwrap();
        assert!(!emptied);
        let (_, emptied) = room.remove_member("b").unwrap();
        assert!(emptied);
        assert_eq!(room.gateway_count("gw1"), 0);
        assert!(room.remove_member("b").is_none());
    }

    #[test]
    fn record_round_trips() {
        let mut room = Room::new("Ops", 5);
        room.add_member(member(actor("a", "gw1")));
        room.invite("z");
        room.seq = 7;
        room.mseq = 4;
        let record = room.to_record(vec!["i1".into()]);
        assert_eq!(record.room, "ops");
        assert_eq!(record.mseq, 4);
        assert_eq!(record.name, "Ops");
        assert_eq!(record.applied, vec!["i1".to_string()]);
        let back = Room::from_record(record, 3);
        assert!(back.was_applied("i1"));
        assert_eq!(back.revision, 3);
        assert_eq!((back.seq, back.mseq), (7, 4));
        assert_eq!(back.gateway_count("gw1"), 1);
        assert!(back.is_invited("z"));
        assert!(back.modes.no_external && back.modes.topic_ops);
    }

    #[test]
    fn only_privmsg_and_notice_take_a_message_number() {
        let alice = actor("a", "gw1");
        let mut room = Room::new("Ops", 0);
        let say = |room: &mut Room, kind| {
            let body = EventBody::Message {
                kind,
                text: "x".into(),
                tags: Default::default(),
            };
            let ev = room.event("i", &alice, body, 0);
            (ev.seq, ev.mseq)
        };
        assert_eq!(room.event("j", &alice, EventBody::Join, 0).mseq, None);
        assert_eq!(say(&mut room, MessageKind::Privmsg), (2, Some(1)));
        assert_eq!(say(&mut room, MessageKind::Tagmsg), (3, None));
        assert_eq!(say(&mut room, MessageKind::Notice), (4, Some(2)));
        let topic = EventBody::Topic { topic: "t".into() };
        assert_eq!(room.event("t", &alice, topic, 0).mseq, None);
        assert_eq!((room.seq, room.mseq), (5, 2));
    }

    #[test]
    fn a_husk_keeps_the_counters_and_nothing_else() {
        let mut room = Room::new("Ops", 5);
        room.add_member(member(actor("a", "gw1")));
        room.invite("z");
        room.topic = Some(TopicInfo {
            text: "t".into(),
            set_by: "a".into(),
            set_at: 1,
        });
        room.modes.secret = true;
        room.seq = 9;
        room.mseq = 3;
        room.revision = 4;
        room.remove_member("a");
        let husk = room.into_husk();
        assert_eq!(husk.revision, 4);
        let record = husk.to_record(vec!["p1".into()]);
        assert_eq!((record.room.as_str(), record.name.as_str()), ("ops", "Ops"));
        assert_eq!((record.seq, record.mseq), (9, 3));
        assert!(record.members.is_empty() && record.invited.is_empty());
        assert_eq!(
            (&record.topic, &record.modes),
            (&None, &RoomModes::default())
        );
        let husk = Husk::from_record(record, 6);
        assert!(husk.was_applied("p1"));
        let again = Room::create("OPS", 10, Some(&husk), None);
        assert_eq!((again.seq, again.mseq), (9, 3));
        assert_eq!((again.name.as_str(), again.created_at), ("OPS", 10));
        assert!(again.modes.no_external && again.modes.topic_ops);
        assert!(again.was_applied("p1"));
        assert_eq!(again.revision, 0, "the rooms set the revision to overwrite");
    }

    #[test]
    fn invitations_are_bounded() {
        let mut room = Room::new("r", 0);
        for i in 0..MAX_INVITED + 5 {
            room.invite(&format!("s{i}"));
        }
        assert!(!room.is_invited("s0"));
        assert!(room.is_invited(&format!("s{}", MAX_INVITED + 4)));
    }
}
