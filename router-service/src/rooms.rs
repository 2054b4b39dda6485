//! The rooms of one partition and the bookkeeping of the current batch.
//!
//! This is the pure half of the partition loop: it decides, for each intent,
//! whether to skip it (already applied before a crash), applies it, and
//! remembers what the end of the batch must do: which records to write
//! (with which applied ids), which gateway bindings may have to go. The
//! partition loop ([`crate::partition`]) only adds the I/O.
//!
//! Besides the live rooms it keeps the husks of the rooms that emptied
//! (see [`Husk`]): their records stay in the bucket as high-water marks, and
//! a room created under such a name continues the husk's seq and mseq and
//! overwrites its record.
//!
//! It also keeps the durable state of every registered room of the
//! partition ([`Durable`], loaded from PostgreSQL, then kept current by the
//! intents themselves): a registered room created again starts from it, and
//! each change of it is logged for the end of the batch to write through.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bus::names::{fold, partition_of};
use bus::schema::{Actor, Intent, RoomRecord};

use crate::handlers::{self, Context, Outcome};
use crate::registered::{self, Durable, Persist};
use crate::room::{Husk, Room};

/// What happened to one intent.
#[derive(Debug)]
pub enum Step {
    /// The room's last record lists the intent as applied: it is a
    /// redelivery after a crash, and its effects were already published.
    Skipped,
    /// The intent's room belongs to another partition (a gateway with a
    /// different `bus.partitions`). Applying it here would split the room's
    /// state, so it is dropped.
    Misrouted,
    /// Applied. `snapshot` is the room as it was before, kept when the
    /// outcome may start with a bind, so that [`Rooms::undo`] can restore it.
    Applied {
        room: String,
        outcome: Outcome,
        snapshot: Option<Box<Option<Room>>>,
    },
}

/// What the end of a batch must do, collected while it runs.
#[derive(Debug, Default)]
pub struct BatchLog {
    touched: BTreeSet<String>,
    applied: HashMap<String, Vec<String>>,
    /// Rooms that emptied during the batch: unless created again since,
    /// their husk's record is written.
    husked: BTreeSet<String>,
    emptied: BTreeSet<(String, String)>,
    /// The durable state to write to PostgreSQL, per room (the last wins).
    persist: BTreeMap<String, Persist>,
}

impl BatchLog {
    /// What to write to PostgreSQL once the batch's records are stored.
    pub fn persists(&self) -> Vec<Persist> {
        self.persist.values().cloned().collect()
    }
}

/// A write to the rooms bucket at the end of a batch (a live room's record
/// or a husk's), compare-and-set on the revision the router last saw (0:
/// the key must not hold a record).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub record: Box<RoomRecord>,
    pub revision: u64,
}

/// What the rooms bucket holds for a partition.
#[derive(Debug, Default)]
pub struct Stored {
    /// Records with their revisions (live rooms and husks).
    pub records: Vec<(RoomRecord, u64)>,
    /// Keys holding a record that cannot be read (room, revision): a room
    /// created under that name overwrites it instead of failing to create.
    pub unreadable: Vec<(String, u64)>,
}

impl Stored {
    /// How many of the records are husks (no members).
    pub fn husks(&self) -> usize {
        self.records
            .iter()
            .filter(|(r, _)| r.members.is_empty())
            .count()
    }
}

pub struct Rooms {
    partition: u16,
    partitions: u16,
    map: HashMap<String, Room>,
    /// Husks of rooms that emptied, by room. A room created over one leaves
    /// it here until the room's own record is written, so that undoing the
    /// creating JOIN finds it again.
    husks: HashMap<String, Husk>,
    /// Revisions of unreadable records, by room.
    unreadable: HashMap<String, u64>,
    /// The durable state of the registered rooms, live or not, by room.
    registered: HashMap<String, Durable>,
    /// Whether `registered` was loaded (from PostgreSQL) since the rooms
    /// were: until then ChanServ cannot decide.
    registry: bool,
    log: BatchLog,
}

impl Rooms {
    pub fn new(partition: u16, partitions: u16) -> Self {
        Self {
            partition,
            partitions,
            map: HashMap::new(),
            husks: HashMap::new(),
            unreadable: HashMap::new(),
            registered: HashMap::new(),
            registry: false,
            log: BatchLog::default(),
        }
    }

    /// How many live rooms (husks are not rooms).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn get(&self, room: &str) -> Option<&Room> {
        self.map.get(room)
    }

    #[cfg(test)]
    pub fn husk(&self, room: &str) -> Option<&Husk> {
        self.husks.get(room)
    }

    /// Whether a folded room name belongs to this partition.
    pub fn owns(&self, room: &str) -> bool {
        partition_of(room, self.partitions) == self.partition
    }

    /// Replaces every room and husk with the stored records (after another
    /// router owned the partition, or at start). A record without members
    /// is a husk.
    pub fn load(&mut self, stored: Stored) {
        self.map.clear();
        self.husks.clear();
        self.log = BatchLog::default();
        for (record, revision) in stored.records {
            if !self.owns(&record.room) {
                continue;
            }
            if record.members.is_empty() {
                let husk = Husk::from_record(record, revision);
                self.husks.insert(husk.room.clone(), husk);
            } else {
                let room = Room::from_record(record, revision);
                self.map.insert(room.room.clone(), room);
            }
        }
        self.unreadable = stored.unreadable.into_iter().collect();
        self.registered.clear();
        self.registry = false;
    }

    /// Whether the registered rooms are known (see [`Rooms::load_registry`]).
    pub fn registry_loaded(&self) -> bool {
        self.registry
    }

    /// Takes the registered rooms PostgreSQL holds (after [`Rooms::load`]).
    /// For a live room the newer of the two states wins: a live room whose
    /// record has a newer registration than PostgreSQL (a write the last
    /// router did not get to make) is written again; a live room without
    /// one that PostgreSQL says is registered (created while the registry
    /// could not be read) gets its registration back.
    pub fn load_registry(&mut self, durables: Vec<Durable>) {
        self.registered.clear();
        for d in durables {
            if self.owns(&d.room) {
                self.registered.insert(d.room.clone(), d);
            }
        }
        let mut keys: Vec<&String> = self.map.keys().collect();
        keys.sort();
        let keys: Vec<String> = keys.into_iter().cloned().collect();
        for key in keys {
            let Some(room) = self.map.get_mut(&key) else {
                continue;
            };
            let stored = self.registered.get(&key).map(Durable::rev);
            match (room.registration.as_ref().map(|r| r.rev), stored) {
                (Some(live), stored) if stored.is_none_or(|s| live > s) => {
                    if let Some(d) = Durable::of(room) {
                        let write = Persist::Upsert(Box::new(d.clone()));
                        self.log.persist.insert(key.clone(), write);
                        self.registered.insert(key, d);
                    }
                }
                (None, Some(_)) => {
                    room.registration = self.registered.get(&key).map(|d| d.registration.clone());
                }
                _ => {}
            }
        }
        self.registry = true;
    }

    /// Applies one intent (see [`Step`]).
    pub fn apply(&mut self, intent: &Intent, now: i64) -> Step {
        let key = fold(intent.body.room());
        if !self.owns(&key) {
            return Step::Misrouted;
        }
        let mut slot = self.map.remove(&key);
        // The husk matters only while there is no live room.
        let husk = match slot {
            None => self.husks.get(&key),
            Some(_) => None,
        };
        let applied = match (&slot, husk) {
            (Some(room), _) => room.was_applied(&intent.id),
            (None, Some(husk)) => husk.was_applied(&intent.id),
            (None, None) => false,
        };
        if applied {
            // Keep it listed, so a crash before this batch's ack still skips it.
            self.log
                .applied
                .entry(key.clone())
                .or_default()
                .push(intent.id.clone());
            if let Some(room) = slot {
                self.map.insert(key, room);
            }
            return Step::Skipped;
        }
        let snapshot = handlers::may_bind(&slot, intent).then(|| Box::new(slot.clone()));
        let existed = slot.is_some();
        let mut durable = self.registered.remove(&key);
        // The durable state before, from the room itself while it is live
        // (so that the revision follows from the room's own state alone,
        // and a replay gives the same one).
        let tracked = handlers::may_change_durable(intent);
        let durable_of = |slot: &Option<Room>, durable: &Option<Durable>| match slot {
            Some(room) => Durable::of(room),
            None => durable.clone(),
        };
        let before = tracked.then(|| durable_of(&slot, &durable)).flatten();
        let ctx = Context {
            husk,
            durable: &mut durable,
            registry: self.registry,
        };
        let outcome = handlers::apply(&mut slot, ctx, intent, now);
        if tracked {
            let mut after = durable_of(&slot, &durable);
            if let Some(write) = registered::change(before.as_ref(), after.as_mut()) {
                self.log.persist.insert(key.clone(), write);
            }
            let rev = after.as_ref().map(Durable::rev);
            if let (Some(reg), Some(rev)) =
                (slot.as_mut().and_then(|r| r.registration.as_mut()), rev)
            {
                reg.rev = rev;
            }
            durable = after;
        }
        if let Some(d) = durable {
            self.registered.insert(key.clone(), d);
        }
        if existed || slot.is_some() {
            self.log
                .applied
                .entry(key.clone())
                .or_default()
                .push(intent.id.clone());
        }
        self.note(&key, slot, &outcome);
        Step::Applied {
            room: key,
            outcome,
            snapshot,
        }
    }

    /// Restores a room to its state before an intent that cannot complete
    /// (its joiner's gateway queue is gone): as if it never arrived.
    pub fn undo(&mut self, room: &str, intent_id: &str, snapshot: Option<Room>) {
        match snapshot {
            Some(before) => {
                self.map.insert(room.to_string(), before);
            }
            None => {
                // The husk it was created over (if any) is still kept.
                self.map.remove(room);
            }
        }
        if let Some(ids) = self.log.applied.get_mut(room) {
            if ids.last().map(String::as_str) == Some(intent_id) {
                ids.pop();
            }
        }
    }

    /// Members of dead sessions, per room, in a stable order (see
    /// [`handlers::expired`]).
    pub fn expired(&self, live: &HashSet<String>, joined_before: i64) -> Vec<(String, Actor)> {
        let mut keys: Vec<&String> = self.map.keys().collect();
        keys.sort();
        keys.into_iter()
            .flat_map(|key| {
                let room = &self.map[key];
                handlers::expired(room, live, joined_before)
                    .into_iter()
                    .map(|a| (key.clone(), a))
            })
            .collect()
    }

    /// Logs what an applied intent did to room `key`.
    fn note(&mut self, key: &str, slot: Option<Room>, outcome: &Outcome) {
        self.log.touched.insert(key.to_string());
        for gateway in &outcome.emptied {
            self.log.emptied.insert((key.to_string(), gateway.clone()));
        }
        match slot {
            Some(mut room) => {
                if room.revision == 0 {
                    // A room created over a record that exists: the husk of
                    // an earlier room (perhaps one emptied earlier in this
                    // batch), or an unreadable record.
                    room.revision = self
                        .husks
                        .get(key)
                        .map(|h| h.revision)
                        .or_else(|| self.unreadable.get(key).copied())
                        .unwrap_or(0);
                }
                self.map.insert(key.to_string(), room);
            }
            None => {
                if let Some(husk) = &outcome.ended {
                    self.husks.insert(key.to_string(), (**husk).clone());
                    self.log.husked.insert(key.to_string());
                }
            }
        }
    }

    /// Ends the batch: what remains to do once its publishes are confirmed.
    pub fn take_log(&mut self) -> BatchLog {
        std::mem::take(&mut self.log)
    }

    /// `(room, gateway)` bindings to remove: the gateway lost its last
    /// member there during the batch and has not come back since.
    pub fn unbinds(&self, log: &BatchLog) -> Vec<(String, String)> {
        log.emptied
            .iter()
            .filter(|(room, gateway)| {
                self.map
                    .get(room)
                    .is_none_or(|r| r.gateway_count(gateway) == 0)
            })
            .cloned()
            .collect()
    }

    /// The writes to the rooms bucket: every touched room's full record with
    /// the ids applied to it in this batch, or the husk of a room that
    /// emptied (written even if the room was never stored: its seqs and
    /// message numbers were published, so they must never be given again).
    pub fn writes(&self, log: &BatchLog) -> Vec<Write> {
        log.touched
            .iter()
            .filter_map(|key| {
                let applied = || log.applied.get(key).cloned().unwrap_or_default();
                if let Some(room) = self.map.get(key) {
                    Some(Write {
                        record: Box::new(room.to_record(applied())),
                        revision: room.revision,
                    })
                } else if log.husked.contains(key) {
                    self.husks.get(key).map(|husk| Write {
                        record: Box::new(husk.to_record(applied())),
                        revision: husk.revision,
                    })
                } else {
                    None
                }
            })
            .collect()
    }

    /// Notes that the bucket now holds `record` at `revision`.
    pub fn mark_stored(&mut self, record: &RoomRecord, revision: u64) {
        let key = &record.room;
        self.unreadable.remove(key);
        if let Some(room) = self.map.get_mut(key) {
            room.set_stored(&record.applied, revision);
            // Overwritten by the live room's record.
            self.husks.remove(key);
        } else if let Some(husk) = self.husks.get_mut(key) {
            husk.set_stored(&record.applied, revision);
        }
    }
}

#[cfg(test)]
mod tests {
    use bus::schema::{IntentBody, MessageKind, Reply};

    use super::*;
    use crate::handlers::testing::{actor, intent};
    use crate::handlers::Effect;

    const N: u16 = 4;

    fn rooms_for(room: &str) -> Rooms {
        Rooms::new(partition_of(room, N), N)
    }

    fn join_body(room: &str) -> IntentBody {
        IntentBody::Join {
            room: room.into(),
            key: None,
        }
    }

    fn part_body(room: &str) -> IntentBody {
        IntentBody::Part {
            room: room.into(),
            reason: None,
        }
    }

    fn msg_body(room: &str, text: &str) -> IntentBody {
        IntentBody::Message {
            room: room.into(),
            kind: MessageKind::Privmsg,
            text: text.into(),
            tags: Default::default(),
        }
    }

    /// The writes of a batch, as if the bucket stored each at revision 7.
    fn puts(writes: Vec<Write>) -> Vec<(RoomRecord, u64)> {
        writes.into_iter().map(|w| (*w.record, 7)).collect()
    }

    /// The revisions a batch's writes expect.
    fn revisions(writes: &[Write]) -> Vec<u64> {
        writes.iter().map(|w| w.revision).collect()
    }

    fn stored(records: Vec<(RoomRecord, u64)>) -> Stored {
        Stored {
            records,
            unreadable: Vec::new(),
        }
    }

    /// Ends the batch as the partition loop does, the bucket storing every
    /// write at `revision`; returns the records written.
    fn end_batch(rooms: &mut Rooms, revision: u64) -> Vec<RoomRecord> {
        let log = rooms.take_log();
        let records: Vec<RoomRecord> = rooms.writes(&log).into_iter().map(|w| *w.record).collect();
        for record in &records {
            rooms.mark_stored(record, revision);
        }
        records
    }

    /// The (seq, mseq) of the events of an applied step.
    fn numbers(step: Step) -> Vec<(u64, Option<u64>)> {
        match step {
            Step::Applied { outcome, .. } => outcome.events().map(|e| (e.seq, e.mseq)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_writes_applied_ids_and_replays_skip_them() {
        let alice = actor("alice", "gw1");
        let mut rooms = rooms_for("ops");
        for (id, body) in [
            ("j1", join_body("Ops")),
            ("m1", msg_body("ops", "a")),
            ("m2", msg_body("ops", "b")),
        ] {
            assert!(matches!(
                rooms.apply(&intent(id, &alice, body), 10),
                Step::Applied { .. }
            ));
        }
        let log = rooms.take_log();
        let writes = rooms.writes(&log);
        assert_eq!(revisions(&writes), [0], "a new room is created");
        let records = puts(writes);
        assert_eq!(records[0].0.applied, vec!["j1", "m1", "m2"]);
        assert_eq!((records[0].0.seq, records[0].0.mseq), (3, 2));

        // Crash before the ack: another router loads the record and gets
        // the same deliveries again, plus a new one.
        let mut other = rooms_for("ops");
        other.load(stored(records));
        let m2 = intent("m2", &alice, msg_body("ops", "b"));
        assert!(matches!(other.apply(&m2, 20), Step::Skipped));
        let m3 = intent("m3", &alice, msg_body("ops", "c"));
        assert_eq!(numbers(other.apply(&m3, 20)), [(4, Some(3))]);
        let log = other.take_log();
        let writes = other.writes(&log);
        assert_eq!(revisions(&writes), [7], "compare-and-set");
        let records = puts(writes);
        assert_eq!(
            records[0].0.applied,
            vec!["m2", "m3"],
            "skipped ids stay listed until acked"
        );
        other.mark_stored(&records[0].0, 8);
        let room = other.get("ops").unwrap();
        assert!(room.was_applied("m3") && !room.was_applied("j1"));
        assert_eq!(room.revision, 8);
    }

    #[test]
    fn replay_without_record_reproduces_same_seq_mseq_and_id() {
        let alice = actor("alice", "gw1");
        let mut a = rooms_for("ops");
        a.apply(&intent("j1", &alice, join_body("ops")), 10);
        a.apply(&intent("m0", &alice, msg_body("ops", "w")), 10);
        let log = a.take_log();
        let records = puts(a.writes(&log));
        // The next batch is published but the router dies before writing.
        let Step::Applied { outcome: first, .. } =
            a.apply(&intent("m1", &alice, msg_body("ops", "x")), 20)
        else {
            panic!()
        };
        let mut b = rooms_for("ops");
        b.load(stored(records));
        let Step::Applied { outcome: again, .. } =
            b.apply(&intent("m1", &alice, msg_body("ops", "x")), 30)
        else {
            panic!()
        };
        let (e1, e2) = (
            first.events().next().unwrap(),
            again.events().next().unwrap(),
        );
        assert_eq!((e1.seq, e1.mseq, &e1.id), (e2.seq, e2.mseq, &e2.id));
        assert_eq!((e2.seq, e2.mseq), (3, Some(2)));
    }

    #[test]
    fn undo_forgets_a_join_whose_gateway_is_gone() {
        let alice = actor("alice", "gw1");
        let mut rooms = rooms_for("ops");
        let Step::Applied {
            room,
            outcome,
            snapshot,
        } = rooms.apply(&intent("j1", &alice, join_body("ops")), 10)
        else {
            panic!()
        };
        assert!(matches!(outcome.effects[0], Effect::Bind { .. }));
        rooms.undo(&room, "j1", *snapshot.unwrap());
        assert!(rooms.get("ops").is_none());
        let log = rooms.take_log();
        assert!(rooms.writes(&log).is_empty());
    }

    #[test]
    fn emptied_room_leaves_a_husk_and_is_unbound() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut rooms = rooms_for("ops");
        rooms.apply(&intent("j1", &alice, join_body("Ops")), 10);
        rooms.apply(&intent("j2", &bob, join_body("ops")), 10);
        rooms.apply(&intent("m1", &bob, msg_body("ops", "hi")), 10);
        end_batch(&mut rooms, 7);
        rooms.apply(&intent("p1", &bob, part_body("ops")), 20);
        rooms.apply(&intent("p2", &alice, part_body("ops")), 20);
        let log = rooms.take_log();
        let both = vec![
            ("ops".to_string(), "gw1".to_string()),
            ("ops".to_string(), "gw2".to_string()),
        ];
        assert_eq!(rooms.unbinds(&log), both);
        let writes = rooms.writes(&log);
        assert_eq!(revisions(&writes), [7], "the husk overwrites the room");
        let husk = &writes[0].record;
        assert_eq!((husk.room.as_str(), husk.name.as_str()), ("ops", "Ops"));
        assert_eq!((husk.seq, husk.mseq), (5, 1));
        assert!(husk.members.is_empty() && husk.invited.is_empty() && husk.bans.is_empty());
        assert_eq!(husk.modes, Default::default());
        assert_eq!(husk.applied, vec!["p1", "p2"]);
        rooms.mark_stored(husk, 8);
        assert_eq!(rooms.len(), 0, "a husk is not a room");
        assert_eq!(rooms.husk("ops").unwrap().revision, 8);

        // A message to it is refused as to any missing room, and writes nothing.
        match rooms.apply(&intent("m2", &bob, msg_body("ops", "x")), 30) {
            Step::Applied { outcome, .. } => assert!(matches!(
                &outcome.effects[..],
                [Effect::Reply { reply, .. }] if matches!(reply.body, Reply::Error { .. })
            )),
            other => panic!("{other:?}"),
        }
        assert!(end_batch(&mut rooms, 9).is_empty());

        // Created again: both counters continue, over the husk's revision.
        let j3 = intent("j3", &bob, join_body("OPS"));
        assert_eq!(numbers(rooms.apply(&j3, 40)), [(6, None)]);
        let m3 = intent("m3", &bob, msg_body("ops", "again"));
        assert_eq!(numbers(rooms.apply(&m3, 40)), [(7, Some(2))]);
        let log = rooms.take_log();
        let writes = rooms.writes(&log);
        assert_eq!(revisions(&writes), [8]);
        let record = &writes[0].record;
        assert_eq!(record.name, "OPS", "the new creator names it");
        assert!(record.members[0].op);
        rooms.mark_stored(record, 10);
        assert!(rooms.husk("ops").is_none(), "overwritten by the room");
    }

    #[test]
    fn takeover_keeps_husks_and_replays_identically() {
        let alice = actor("alice", "gw1");
        let mut a = rooms_for("ops");
        a.apply(&intent("j1", &alice, join_body("ops")), 10);
        a.apply(&intent("m1", &alice, msg_body("ops", "x")), 10);
        end_batch(&mut a, 3);
        // Batch 2 empties the room; its husk is written, then the router
        // dies before the ack.
        a.apply(&intent("p1", &alice, part_body("ops")), 20);
        let husk = end_batch(&mut a, 4);
        assert!(husk[0].members.is_empty());
        let stored_records = vec![(husk[0].clone(), 4)];

        // The next router loads the husk: no room, but the counters.
        let mut b = rooms_for("ops");
        b.load(stored(stored_records.clone()));
        assert_eq!(b.len(), 0);
        assert_eq!(b.husk("ops").map(|h| (h.seq, h.mseq)), Some((3, 1)));
        // The redelivered PART is skipped; the JOIN after it (new) and a
        // message continue the numbers.
        let p1 = intent("p1", &alice, part_body("ops"));
        assert!(matches!(b.apply(&p1, 30), Step::Skipped));
        let j2 = intent("j2", &alice, join_body("ops"));
        let m2 = intent("m2", &alice, msg_body("ops", "y"));
        assert_eq!(numbers(b.apply(&j2, 30)), [(4, None)]);
        assert_eq!(numbers(b.apply(&m2, 30)), [(5, Some(2))]);
        let log = b.take_log();
        let writes = b.writes(&log);
        assert_eq!(revisions(&writes), [4]);
        assert_eq!(writes[0].record.applied, vec!["p1", "j2", "m2"]);

        // That router dies too before writing: a third one replays the
        // same intents from the same husk to the same numbers and ids.
        let mut c = rooms_for("ops");
        c.load(stored(stored_records));
        assert!(matches!(c.apply(&p1, 40), Step::Skipped));
        assert_eq!(numbers(c.apply(&j2, 40)), [(4, None)]);
        assert_eq!(numbers(c.apply(&m2, 40)), [(5, Some(2))]);
    }

    #[test]
    fn leaving_and_coming_back_in_one_batch_keeps_the_binding() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut rooms = rooms_for("ops");
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        rooms.apply(&intent("j2", &bob, join_body("ops")), 10);
        rooms.apply(&intent("p1", &bob, part_body("ops")), 20);
        rooms.apply(&intent("j3", &bob, join_body("ops")), 20);
        let log = rooms.take_log();
        assert!(rooms.unbinds(&log).is_empty());
        assert_eq!(
            puts(rooms.writes(&log))[0].0.applied,
            vec!["j1", "j2", "p1", "j3"]
        );
    }

    #[test]
    fn a_room_used_and_emptied_within_one_batch_still_leaves_its_husk() {
        let alice = actor("alice", "gw1");
        let mut rooms = rooms_for("ops");
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        rooms.apply(&intent("m1", &alice, msg_body("ops", "x")), 10);
        rooms.apply(&intent("p1", &alice, part_body("ops")), 10);
        let log = rooms.take_log();
        let writes = rooms.writes(&log);
        // Never stored: the husk is created, since its numbers went out.
        assert_eq!(revisions(&writes), [0]);
        assert_eq!((writes[0].record.seq, writes[0].record.mseq), (3, 1));
        assert!(writes[0].record.members.is_empty());
    }

    #[test]
    fn a_room_recreated_over_an_old_record_overwrites_it() {
        let alice = actor("alice", "gw1");
        let mut rooms = rooms_for("ops");
        let mut record = Room::new("ops", 0);
        record.add_member(crate::handlers::testing::member(alice.clone()));
        record.seq = 4;
        record.mseq = 2;
        rooms.load(stored(vec![(record.to_record(vec![]), 5)]));
        // Emptied and recreated within one batch: one put over revision 5,
        // the numbers going on.
        rooms.apply(&intent("p1", &alice, part_body("ops")), 10);
        let j1 = intent("j1", &alice, join_body("Ops"));
        assert_eq!(numbers(rooms.apply(&j1, 10)), [(6, None)]);
        let log = rooms.take_log();
        let writes = rooms.writes(&log);
        assert_eq!(revisions(&writes), [5], "{writes:?}");
        assert_eq!((writes[0].record.seq, writes[0].record.mseq), (6, 2));
        assert_eq!(writes[0].record.members.len(), 1);

        // A JOIN over a husk whose gateway turns out to be gone is undone,
        // and the husk is still there for the next one.
        let mut rooms = rooms_for("ops");
        let husk = Room::new("ops", 0).into_husk().to_record(vec![]);
        rooms.load(stored(vec![(husk, 6)]));
        let Step::Applied { room, snapshot, .. } = rooms.apply(&j1, 10) else {
            panic!()
        };
        rooms.undo(&room, "j1", *snapshot.unwrap());
        assert!(rooms.get("ops").is_none() && rooms.husk("ops").is_some());
        rooms.apply(&intent("j2", &alice, join_body("ops")), 10);
        let log = rooms.take_log();
        assert_eq!(revisions(&rooms.writes(&log)), [6]);

        // An unreadable record is overwritten by the next room of that name.
        let mut rooms = rooms_for("ops");
        rooms.load(Stored {
            records: Vec::new(),
            unreadable: vec![("ops".into(), 9)],
        });
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        let log = rooms.take_log();
        assert_eq!(revisions(&rooms.writes(&log)), [9]);
    }

    #[test]
    fn misrouted_intents_and_foreign_records_are_refused() {
        let alice = actor("alice", "gw1");
        let p = partition_of("ops", N);
        let mut rooms = Rooms::new((p + 1) % N, N);
        let join = intent("j1", &alice, join_body("ops"));
        assert!(matches!(rooms.apply(&join, 0), Step::Misrouted));
        let mut room = Room::new("Ops", 0);
        room.add_member(crate::handlers::testing::member(alice.clone()));
        rooms.load(stored(vec![(room.to_record(vec![]), 1)]));
        assert_eq!(rooms.len(), 0);
        let mut own = rooms_for("ops");
        own.load(stored(vec![(room.to_record(vec![]), 1)]));
        assert_eq!(own.len(), 1);
    }

    fn logged_in(nick: &str) -> Actor {
        let mut a = actor(nick, "gw1");
        a.account = Some(nick.into());
        a
    }

    fn chanserv(room: &str, command: bus::schema::ChanServCommand) -> IntentBody {
        IntentBody::ChanServ {
            room: room.into(),
            command,
        }
    }

    fn topic_body(room: &str, text: &str) -> IntentBody {
        IntentBody::Topic {
            room: room.into(),
            topic: Some(text.into()),
        }
    }

    /// The PostgreSQL writes a batch asks for.
    fn persists(rooms: &mut Rooms) -> Vec<Persist> {
        let log = rooms.take_log();
        let writes = rooms.writes(&log);
        for w in &writes {
            rooms.mark_stored(&w.record, 3);
        }
        log.persists()
    }

    #[test]
    fn durable_changes_are_logged_with_rising_revisions() {
        use bus::schema::ChanServCommand;
        let alice = logged_in("alice");
        let mut rooms = rooms_for("ops");
        rooms.load_registry(Vec::new());
        rooms.apply(&intent("j1", &alice, join_body("Ops")), 10);
        rooms.apply(&intent("m1", &alice, msg_body("ops", "x")), 10);
        assert!(
            persists(&mut rooms).is_empty(),
            "not registered: nothing kept"
        );
        rooms.apply(
            &intent("r1", &alice, chanserv("ops", ChanServCommand::Register)),
            20,
        );
        rooms.apply(&intent("t1", &alice, topic_body("ops", "hello")), 20);
        // Only the last state of the batch is written, at revision 2.
        match &persists(&mut rooms)[..] {
            [Persist::Upsert(d)] => {
                assert_eq!((d.rev(), d.name.as_str()), (2, "Ops"));
                assert_eq!(d.topic.as_ref().unwrap().text, "hello");
                assert_eq!(d.registration.founder, "alice");
            }
            other => panic!("{other:?}"),
        }
        let room = rooms.get("ops").unwrap();
        assert_eq!(room.registration.as_ref().unwrap().rev, 2);
        assert_eq!(room.to_record(vec![]).registration.unwrap().rev, 2);
        // A message or a no-op mode changes nothing durable.
        rooms.apply(&intent("m2", &alice, msg_body("ops", "y")), 30);
        let same = IntentBody::Mode {
            room: "ops".into(),
            changes: vec![bus::schema::ModeChange {
                add: true,
                mode: 'n',
                arg: None,
            }],
        };
        rooms.apply(&intent("n1", &alice, same), 30);
        assert!(persists(&mut rooms).is_empty());
        rooms.apply(
            &intent("d1", &alice, chanserv("ops", ChanServCommand::Drop)),
            40,
        );
        assert_eq!(
            persists(&mut rooms),
            vec![Persist::Delete {
                room: "ops".into(),
                rev: 3
            }]
        );
    }

    #[test]
    fn a_registered_room_comes_back_from_its_durable_state() {
        use bus::schema::{ChanServCommand, ModeChange};
        let alice = logged_in("alice");
        let guest = actor("guest", "gw1");
        let mut rooms = rooms_for("ops");
        rooms.load_registry(Vec::new());
        rooms.apply(&intent("j1", &alice, join_body("Ops")), 10);
        rooms.apply(
            &intent("r1", &alice, chanserv("ops", ChanServCommand::Register)),
            10,
        );
        rooms.apply(&intent("t1", &alice, topic_body("ops", "kept")), 10);
        let key = IntentBody::Mode {
            room: "ops".into(),
            changes: vec![ModeChange {
                add: true,
                mode: 'k',
                arg: Some("sesame".into()),
            }],
        };
        rooms.apply(&intent("k1", &alice, key), 10);
        let durable = match &persists(&mut rooms)[..] {
            [Persist::Upsert(d)] => (**d).clone(),
            other => panic!("{other:?}"),
        };
        // Another router, with no NATS record at all: PostgreSQL only.
        let mut other = rooms_for("ops");
        other.load(stored(Vec::new()));
        assert!(!other.registry_loaded());
        let early = intent("c0", &alice, chanserv("ops", ChanServCommand::Info));
        match other.apply(&early, 20) {
            Step::Applied { outcome, .. } => assert!(matches!(
                &outcome.effects[..],
                [Effect::Reply { reply, .. }] if matches!(&reply.body, Reply::ChanServ { answer: bus::schema::ChanServAnswer::Refused { why: bus::schema::ChanServRefusal::Unavailable, .. }, .. })
            )),
            s => panic!("{s:?}"),
        }
        other.load_registry(vec![durable]);
        // The key holds for the first joiner, who is not made op.
        let no_key = intent("j2", &guest, join_body("OPS"));
        match other.apply(&no_key, 20) {
            Step::Applied { outcome, .. } => assert!(matches!(
                &outcome.effects[..],
                [Effect::Reply { reply, .. }] if matches!(reply.body, Reply::Error { code: bus::schema::ErrorCode::BadChannelKey, .. })
            )),
            s => panic!("{s:?}"),
        }
        assert!(
            other.get("ops").is_none(),
            "a refused first join creates nothing"
        );
        let with_key = IntentBody::Join {
            room: "ops".into(),
            key: Some("sesame".into()),
        };
        other.apply(&intent("j3", &guest, with_key), 20);
        let room = other.get("ops").unwrap();
        assert_eq!(room.name, "Ops", "the registered name");
        assert_eq!(room.topic.as_ref().unwrap().text, "kept");
        assert!(!room.is_op("guest"));
        // The founder passes the key and gets op from ChanServ.
        let Step::Applied { outcome, .. } =
            other.apply(&intent("j4", &alice, join_body("ops")), 20)
        else {
            panic!()
        };
        let events: Vec<_> = outcome.events().collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].actor.nick, "ChanServ");
        assert_eq!(events[1].id, "j4-cs");
        assert!(other.get("ops").unwrap().is_op("alice"));
        assert!(
            persists(&mut other).is_empty(),
            "joining changes nothing durable"
        );
    }

    #[test]
    fn the_newer_of_nats_and_postgres_wins_at_load() {
        use bus::schema::ChanServCommand;
        let alice = logged_in("alice");
        let mut rooms = rooms_for("ops");
        rooms.load_registry(Vec::new());
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        rooms.apply(
            &intent("r1", &alice, chanserv("ops", ChanServCommand::Register)),
            10,
        );
        let old = match &persists(&mut rooms)[..] {
            [Persist::Upsert(d)] => (**d).clone(),
            other => panic!("{other:?}"),
        };
        rooms.apply(&intent("t1", &alice, topic_body("ops", "newer")), 10);
        let log = rooms.take_log();
        let records = puts(rooms.writes(&log));
        // PostgreSQL missed the last write: the live record is newer.
        let mut next = rooms_for("ops");
        next.load(stored(records.clone()));
        next.load_registry(vec![old.clone()]);
        match &persists(&mut next)[..] {
            [Persist::Upsert(d)] => {
                assert_eq!(d.rev(), 2);
                assert_eq!(d.topic.as_ref().unwrap().text, "newer");
            }
            other => panic!("{other:?}"),
        }
        // A live record without a registration that PostgreSQL has gets it.
        let mut bare = records[0].0.clone();
        bare.registration = None;
        let mut third = rooms_for("ops");
        third.load(stored(vec![(bare, 9)]));
        third.load_registry(vec![old]);
        assert!(third.get("ops").unwrap().registration.is_some());
        assert!(persists(&mut third).is_empty());
    }

    #[test]
    fn sweep_lists_expired_members_per_room() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut rooms = rooms_for("ops");
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        rooms.apply(&intent("j2", &bob, join_body("ops")), 10);
        let live: HashSet<String> = ["alice".to_string()].into();
        assert_eq!(
            rooms.expired(&live, 100),
            vec![("ops".to_string(), bob.clone())]
        );
        assert!(rooms.expired(&live, 10).is_empty(), "joined too recently");
    }
}
