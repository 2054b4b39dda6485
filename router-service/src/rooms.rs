//! The rooms of one partition and the bookkeeping of the current batch.
//!
//! This is the pure half of the partition loop: it decides, for each intent,
//! whether to skip it (already applied before a crash), applies it, and
//! remembers what the end of the batch must do: which records to write
//! (with which applied ids), which to delete, which gateway bindings may
//! have to go. The partition loop ([`crate::partition`]) only adds the I/O.

use std::collections::{BTreeSet, HashMap, HashSet};

use bus::names::{fold, partition_of};
use bus::schema::{Actor, Intent, RoomRecord};

use crate::handlers::{self, Outcome};
use crate::room::Room;

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
    /// Rooms whose record must be deleted, with the revision to expect.
    deleted: HashMap<String, u64>,
    emptied: BTreeSet<(String, String)>,
}

/// A write to the rooms bucket at the end of a batch, compare-and-set on
/// the revision the router last saw (0: the key must not hold a record).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        record: Box<RoomRecord>,
        revision: u64,
    },
    Delete {
        room: String,
        revision: u64,
    },
}

/// What the rooms bucket holds for a partition.
#[derive(Debug, Default)]
pub struct Stored {
    /// Records with their revisions.
    pub records: Vec<(RoomRecord, u64)>,
    /// Keys holding a record that cannot be read (room, revision): a room
    /// created under that name overwrites it instead of failing to create.
    pub unreadable: Vec<(String, u64)>,
}

pub struct Rooms {
    partition: u16,
    partitions: u16,
    map: HashMap<String, Room>,
    /// Revisions of unreadable records, by room.
    unreadable: HashMap<String, u64>,
    log: BatchLog,
}

impl Rooms {
    pub fn new(partition: u16, partitions: u16) -> Self {
        Self {
            partition,
            partitions,
            map: HashMap::new(),
            unreadable: HashMap::new(),
            log: BatchLog::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn get(&self, room: &str) -> Option<&Room> {
        self.map.get(room)
    }

    /// Whether a folded room name belongs to this partition.
    pub fn owns(&self, room: &str) -> bool {
        partition_of(room, self.partitions) == self.partition
    }

    /// Replaces every room with the stored records (after another router
    /// owned the partition, or at start).
    pub fn load(&mut self, stored: Stored) {
        self.map.clear();
        self.log = BatchLog::default();
        for (record, revision) in stored.records {
            if self.owns(&record.room) {
                let room = Room::from_record(record, revision);
                self.map.insert(room.room.clone(), room);
            }
        }
        self.unreadable = stored.unreadable.into_iter().collect();
    }

    /// Applies one intent (see [`Step`]).
    pub fn apply(&mut self, intent: &Intent, now: i64) -> Step {
        let key = fold(intent.body.room());
        if !self.owns(&key) {
            return Step::Misrouted;
        }
        let mut slot = self.map.remove(&key);
        if slot.as_ref().is_some_and(|r| r.was_applied(&intent.id)) {
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
        let revision = slot.as_ref().map_or(0, |r| r.revision);
        let outcome = handlers::apply(&mut slot, intent, now);
        if existed || slot.is_some() {
            self.log
                .applied
                .entry(key.clone())
                .or_default()
                .push(intent.id.clone());
        }
        self.note(&key, revision, slot, &outcome);
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

    /// Logs what an applied intent did to room `key` (whose record was at
    /// `revision` before).
    fn note(&mut self, key: &str, revision: u64, slot: Option<Room>, outcome: &Outcome) {
        self.log.touched.insert(key.to_string());
        for gateway in &outcome.emptied {
            self.log.emptied.insert((key.to_string(), gateway.clone()));
        }
        match slot {
            Some(mut room) => {
                if room.revision == 0 {
                    // A room (re)created over a record that still exists:
                    // one deleted earlier in this batch, or an unreadable one.
                    let previous = self.log.deleted.remove(key);
                    room.revision = previous
                        .or_else(|| self.unreadable.remove(key))
                        .unwrap_or(0);
                }
                self.map.insert(key.to_string(), room);
            }
            None if revision != 0 => {
                self.log.deleted.insert(key.to_string(), revision);
            }
            None => {}
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
    /// the ids applied to it in this batch, or a delete for a stored room
    /// that became empty.
    pub fn writes(&self, log: &BatchLog) -> Vec<Write> {
        log.touched
            .iter()
            .filter_map(|key| match self.map.get(key) {
                Some(room) => {
                    let applied = log.applied.get(key).cloned().unwrap_or_default();
                    Some(Write::Put {
                        record: Box::new(room.to_record(applied)),
                        revision: room.revision,
                    })
                }
                None => log.deleted.get(key).map(|revision| Write::Delete {
                    room: key.clone(),
                    revision: *revision,
                }),
            })
            .collect()
    }

    /// Notes that the bucket now holds `record` at `revision`.
    pub fn mark_stored(&mut self, record: &RoomRecord, revision: u64) {
        if let Some(room) = self.map.get_mut(&record.room) {
            room.set_stored(&record.applied, revision);
        }
    }
}

#[cfg(test)]
mod tests {
    use bus::schema::{IntentBody, MessageKind};

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

    /// The puts of a batch, as if the bucket stored each at revision 7.
    fn puts(writes: Vec<Write>) -> Vec<(RoomRecord, u64)> {
        writes
            .into_iter()
            .filter_map(|w| match w {
                Write::Put { record, .. } => Some((*record, 7)),
                Write::Delete { .. } => None,
            })
            .collect()
    }

    fn stored(records: Vec<(RoomRecord, u64)>) -> Stored {
        Stored {
            records,
            unreadable: Vec::new(),
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
        assert!(
            matches!(&writes[..], [Write::Put { revision: 0, .. }]),
            "a new room is created"
        );
        let records = puts(writes);
        assert_eq!(records[0].0.applied, vec!["j1", "m1", "m2"]);
        assert_eq!(records[0].0.seq, 3);

        // Crash before the ack: another router loads the record and gets
        // the same deliveries again, plus a new one.
        let mut other = rooms_for("ops");
        other.load(stored(records));
        let m2 = intent("m2", &alice, msg_body("ops", "b"));
        assert!(matches!(other.apply(&m2, 20), Step::Skipped));
        match other.apply(&intent("m3", &alice, msg_body("ops", "c")), 20) {
            Step::Applied { outcome, .. } => assert_eq!(outcome.events().next().unwrap().seq, 4),
            other => panic!("{other:?}"),
        }
        let log = other.take_log();
        let writes = other.writes(&log);
        assert!(
            matches!(&writes[..], [Write::Put { revision: 7, .. }]),
            "compare-and-set"
        );
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
    fn replay_without_record_reproduces_same_seq_and_id() {
        let alice = actor("alice", "gw1");
        let mut a = rooms_for("ops");
        a.apply(&intent("j1", &alice, join_body("ops")), 10);
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
        assert_eq!((e1.seq, &e1.id), (e2.seq, &e2.id));
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
    fn emptied_room_is_deleted_and_unbound() {
        let alice = actor("alice", "gw1");
        let bob = actor("bob", "gw2");
        let mut rooms = rooms_for("ops");
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        rooms.apply(&intent("j2", &bob, join_body("ops")), 10);
        let log = rooms.take_log();
        for (record, revision) in puts(rooms.writes(&log)) {
            rooms.mark_stored(&record, revision);
        }
        rooms.apply(&intent("p1", &bob, part_body("ops")), 20);
        rooms.apply(&intent("p2", &alice, part_body("ops")), 20);
        let log = rooms.take_log();
        let both = vec![
            ("ops".to_string(), "gw1".to_string()),
            ("ops".to_string(), "gw2".to_string()),
        ];
        assert_eq!(rooms.unbinds(&log), both);
        assert_eq!(
            rooms.writes(&log),
            vec![Write::Delete {
                room: "ops".into(),
                revision: 7
            }]
        );
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
        // Never stored, so nothing to delete, only the put.
        assert_eq!(
            puts(rooms.writes(&log))[0].0.applied,
            vec!["j1", "j2", "p1", "j3"]
        );
    }

    #[test]
    fn a_room_recreated_over_an_old_record_overwrites_it() {
        let alice = actor("alice", "gw1");
        let mut rooms = rooms_for("ops");
        let mut record = Room::new("ops", 0);
        record.add_member(crate::handlers::testing::member(alice.clone()));
        rooms.load(stored(vec![(record.to_record(vec![]), 5)]));
        // Emptied and recreated within one batch: one put over revision 5.
        rooms.apply(&intent("p1", &alice, part_body("ops")), 10);
        rooms.apply(&intent("j1", &alice, join_body("Ops")), 10);
        let log = rooms.take_log();
        let writes = rooms.writes(&log);
        assert!(
            matches!(&writes[..], [Write::Put { revision: 5, .. }]),
            "{writes:?}"
        );

        // An unreadable record is overwritten by the next room of that name.
        let mut rooms = rooms_for("ops");
        rooms.load(Stored {
            records: Vec::new(),
            unreadable: vec![("ops".into(), 9)],
        });
        rooms.apply(&intent("j1", &alice, join_body("ops")), 10);
        let log = rooms.take_log();
        assert!(matches!(
            &rooms.writes(&log)[..],
            [Write::Put { revision: 9, .. }]
        ));
    }

    #[test]
    fn misrouted_intents_and_foreign_records_are_refused() {
        let alice = actor("alice", "gw1");
        let p = partition_of("ops", N);
        let mut rooms = Rooms::new((p + 1) % N, N);
        let join = intent("j1", &alice, join_body("ops"));
        assert!(matches!(rooms.apply(&join, 0), Step::Misrouted));
        rooms.load(stored(vec![(Room::new("ops", 0).to_record(vec![]), 1)]));
        assert_eq!(rooms.len(), 0);
        let mut own = rooms_for("ops");
        own.load(stored(vec![(Room::new("Ops", 0).to_record(vec![]), 1)]));
        assert_eq!(own.len(), 1);
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
