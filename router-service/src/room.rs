//! The in-memory model of one room, built from and written back to
//! [`RoomRecord`].
//!
//! The record is the durable form (NATS rooms bucket); this model adds what
//! the router needs to decide quickly and is derived from the record: a
//! member index by sid, the number of members each gateway has (a gateway's
//! queue is bound to the room exactly while that number is positive) and the
//! ids of the intents applied by the batch that wrote the record (a
//! redelivery of one of them is skipped).

use std::collections::{HashMap, HashSet};

use bus::names;
use bus::schema::{
    Actor, BanEntry, EventBody, MemberInfo, MemberRecord, RoomEvent, RoomModes, RoomRecord,
    TopicInfo, SCHEMA_VERSION,
};

use crate::masks;

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
    pub topic: Option<TopicInfo>,
    pub modes: RoomModes,
    pub bans: Vec<BanEntry>,
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
            topic: None,
            modes: RoomModes {
                no_external: true,
                topic_ops: true,
                ..RoomModes::default()
            },
            bans: Vec::new(),
            invited: Vec::new(),
            members: HashMap::new(),
            gateways: HashMap::new(),
            last_applied: HashSet::new(),
            revision: 0,
        }
    }

    /// Rebuilds a room from its stored record (at `revision`).
    pub fn from_record(record: RoomRecord, revision: u64) -> Self {
        let mut room = Self {
            room: record.room,
            name: record.name,
            created_at: record.created_at,
            seq: record.seq,
            topic: record.topic,
            modes: record.modes,
            bans: record.bans,
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
            mseq: 0,
            topic: self.topic.clone(),
            modes: self.modes.clone(),
            bans: self.bans.clone(),
            invited: self.invited.clone(),
            members: self.members_sorted().into_iter().cloned().collect(),
            applied,
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

    /// The next event of the room: takes the next seq.
    pub fn event(&mut self, id: &str, actor: &Actor, body: EventBody, now: i64) -> RoomEvent {
        self.seq += 1;
        RoomEvent {
            v: SCHEMA_VERSION,
            room: self.room.clone(),
            name: self.name.clone(),
            seq: self.seq,
            mseq: None,
            id: id.to_string(),
            at: now,
            actor: actor.clone(),
            body,
        }
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
        let record = room.to_record(vec!["i1".into()]);
        assert_eq!(record.room, "ops");
        assert_eq!(record.name, "Ops");
        assert_eq!(record.applied, vec!["i1".to_string()]);
        let back = Room::from_record(record, 3);
        assert!(back.was_applied("i1"));
        assert_eq!(back.revision, 3);
        assert_eq!(back.seq, 7);
        assert_eq!(back.gateway_count("gw1"), 1);
        assert!(back.is_invited("z"));
        assert!(back.modes.no_external && back.modes.topic_ops);
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
