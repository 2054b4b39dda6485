//! The store against a real PostgreSQL: a database of its own per test
//! (`hist_ut_<random>` on 127.0.0.1:5432), dropped at the end.

use std::time::Duration;

use bus::history::{
    Anchor, HistoryError, HistoryItem, HistoryQuery, HistoryReplyBody, HistoryRequest,
    HistoryTarget, Requester, Selector, SeqRange,
};
use bus::schema::{
    ClientTags, EventBody, MemberRecord, MessageKind, RoomEvent, RoomModes, RoomRecord,
    SCHEMA_VERSION,
};

use super::query::merge_ranges;
use super::retention::Policy;
use super::testdb::TestDb;
use super::write::{self, DirectWrite};
use crate::items::tests::{actor, dm};
use crate::items::{direct_key, direct_row};

/// Base time of the test rooms: item `seq` is at BASE + seq seconds.
const BASE: i64 = 1_700_000_000_000;

fn at(seq: u64) -> i64 {
    BASE + seq as i64 * 1000
}

fn message(room: &str, seq: u64) -> RoomEvent {
    RoomEvent {
        v: SCHEMA_VERSION,
        room: room.to_ascii_lowercase(),
        name: room.into(),
        seq,
        mseq: None,
        id: format!("{room}-m{seq}"),
        at: at(seq),
        actor: actor("alice", "s1", Some("Alice")),
        body: EventBody::Message {
            kind: MessageKind::Privmsg,
            text: format!("line {seq}"),
            tags: ClientTags::new(),
        },
        intent_at: None,
    }
}

fn with_body(mut e: RoomEvent, body: EventBody) -> RoomEvent {
    e.body = body;
    e
}

fn seqs(items: &[HistoryItem]) -> Vec<u64> {
    items.iter().map(|i| i.seq).collect()
}

fn mseqs(items: &[HistoryItem]) -> Vec<Option<u64>> {
    items.iter().map(|i| i.mseq).collect()
}

/// The message numbers of a page (all of its items have one).
fn numbers(items: &[HistoryItem]) -> Vec<u64> {
    items
        .iter()
        .map(|i| i.mseq.expect("a numbered item"))
        .collect()
}

fn range(low: u64, hi: Option<u64>) -> SeqRange {
    SeqRange { low, hi }
}

/// Events 1..=n of `room` as the router numbers them: every third a JOIN
/// (no message number), the others messages numbered in order. Returns the
/// events and the highest message number.
fn numbered_room(room: &str, n: u64) -> (Vec<RoomEvent>, u64) {
    let mut mseq = 0;
    let events = (1..=n)
        .map(|seq| {
            if seq % 3 == 0 {
                with_body(message(room, seq), EventBody::Join)
            } else {
                mseq += 1;
                RoomEvent {
                    mseq: Some(mseq),
                    ..message(room, seq)
                }
            }
        })
        .collect();
    (events, mseq)
}

/// Stores messages 1..=n of `room` and returns its conversation id.
async fn room_with(db: &TestDb, room: &str, n: u64) -> i64 {
    let events: Vec<_> = (1..=n).map(|s| message(room, s)).collect();
    assert_eq!(write::room_events(&db.store, &events).await.unwrap(), n);
    db.store.room_conversation(room).await.unwrap().unwrap().id
}

fn id(room: &str, seq: u64) -> Anchor {
    Anchor::Id(format!("{room}-m{seq}"))
}

#[tokio::test]
async fn selectors_page_at_the_edges() {
    let db = TestDb::new().await;
    let c = room_with(&db, "Ops", 10).await;
    let s = &db.store;
    let fetch = |sel: Selector, limit: u32| async move {
        seqs(&s.fetch(c, &sel, limit, true).await.unwrap())
    };

    // LATEST: the newest, oldest first; fewer than asked; after an anchor.
    assert_eq!(fetch(Selector::Latest { after: None }, 3).await, [8, 9, 10]);
    assert_eq!(
        fetch(Selector::Latest { after: None }, 50).await,
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        fetch(
            Selector::Latest {
                after: Some(id("Ops", 8))
            },
            5
        )
        .await,
        [9, 10]
    );
    assert_eq!(
        fetch(
            Selector::Latest {
                after: Some(id("Ops", 10))
            },
            5
        )
        .await,
        Vec::<u64>::new()
    );
    assert_eq!(
        fetch(
            Selector::Latest {
                after: Some(Anchor::Time(at(7)))
            },
            5
        )
        .await,
        [8, 9, 10]
    );
    // limit 0 is an empty page.
    assert_eq!(
        fetch(Selector::Latest { after: None }, 0).await,
        Vec::<u64>::new()
    );

    // BEFORE / AFTER are exclusive, by id, seq and time.
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: id("Ops", 5)
            },
            3
        )
        .await,
        [2, 3, 4]
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: id("Ops", 4)
            },
            3
        )
        .await,
        [1, 2, 3],
        "exactly one page"
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: id("Ops", 3)
            },
            3
        )
        .await,
        [1, 2],
        "fewer than asked"
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: id("Ops", 1)
            },
            3
        )
        .await,
        Vec::<u64>::new()
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: Anchor::Seq(5)
            },
            2
        )
        .await,
        [3, 4]
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: Anchor::Time(at(5))
            },
            2
        )
        .await,
        [3, 4]
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: Anchor::Time(at(5) + 1)
            },
            2
        )
        .await,
        [4, 5]
    );
    assert_eq!(
        fetch(
            Selector::After {
                anchor: id("Ops", 5)
            },
            3
        )
        .await,
        [6, 7, 8]
    );
    assert_eq!(
        fetch(
            Selector::After {
                anchor: id("Ops", 8)
            },
            3
        )
        .await,
        [9, 10]
    );
    assert_eq!(
        fetch(
            Selector::After {
                anchor: Anchor::Time(at(8))
            },
            3
        )
        .await,
        [9, 10]
    );
    assert_eq!(
        fetch(
            Selector::After {
                anchor: Anchor::Time(0)
            },
            2
        )
        .await,
        [1, 2]
    );
    assert_eq!(
        fetch(
            Selector::After {
                anchor: Anchor::Seq(10)
            },
            2
        )
        .await,
        Vec::<u64>::new()
    );

    // Unknown message ids select nothing, whichever selector.
    let unknown = Anchor::Id("nope".into());
    assert!(fetch(
        Selector::Before {
            anchor: unknown.clone()
        },
        5
    )
    .await
    .is_empty());
    assert!(fetch(
        Selector::After {
            anchor: unknown.clone()
        },
        5
    )
    .await
    .is_empty());
    assert!(fetch(
        Selector::Around {
            anchor: unknown.clone()
        },
        5
    )
    .await
    .is_empty());
    assert!(fetch(
        Selector::Latest {
            after: Some(unknown.clone())
        },
        5
    )
    .await
    .is_empty());
    assert!(fetch(
        Selector::Between {
            start: id("Ops", 1),
            end: unknown
        },
        5
    )
    .await
    .is_empty());

    // AROUND includes the anchor; a short side leaves its share to the other.
    assert_eq!(
        fetch(
            Selector::Around {
                anchor: id("Ops", 5)
            },
            5
        )
        .await,
        [3, 4, 5, 6, 7]
    );
    assert_eq!(
        fetch(
            Selector::Around {
                anchor: id("Ops", 5)
            },
            4
        )
        .await,
        [3, 4, 5, 6]
    );
    assert_eq!(
        fetch(
            Selector::Around {
                anchor: id("Ops", 1)
            },
            4
        )
        .await,
        [1, 2, 3, 4]
    );
    assert_eq!(
        fetch(
            Selector::Around {
                anchor: id("Ops", 10)
            },
            4
        )
        .await,
        [7, 8, 9, 10]
    );
    assert_eq!(
        fetch(
            Selector::Around {
                anchor: id("Ops", 5)
            },
            1
        )
        .await,
        [5]
    );
    assert_eq!(
        fetch(
            Selector::Around {
                anchor: Anchor::Time(at(5))
            },
            3
        )
        .await,
        [4, 5, 6]
    );

    // BETWEEN: exclusive both ends; forwards from an older start, backwards
    // from a newer one; mixed anchor kinds.
    let between = |a: Anchor, b: Anchor| Selector::Between { start: a, end: b };
    assert_eq!(
        fetch(between(id("Ops", 2), id("Ops", 9)), 3).await,
        [3, 4, 5]
    );
    assert_eq!(
        fetch(between(id("Ops", 9), id("Ops", 2)), 3).await,
        [6, 7, 8]
    );
    assert_eq!(
        fetch(between(id("Ops", 2), id("Ops", 6)), 10).await,
        [3, 4, 5]
    );
    assert_eq!(
        fetch(between(id("Ops", 4), id("Ops", 4)), 10).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        fetch(between(id("Ops", 4), id("Ops", 5)), 10).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        fetch(between(Anchor::Time(at(2)), Anchor::Time(at(6))), 10).await,
        [3, 4, 5]
    );
    assert_eq!(
        fetch(between(id("Ops", 2), Anchor::Time(at(6))), 10).await,
        [3, 4, 5]
    );
    assert_eq!(
        fetch(between(Anchor::Time(at(9)), id("Ops", 6)), 2).await,
        [7, 8]
    );

    // A room with nothing stored has no conversation (the request handler
    // answers its members with an empty page).
    assert!(s.room_conversation("quiet").await.unwrap().is_none());
    db.drop_now().await;
}

#[tokio::test]
async fn events_are_kept_but_only_shown_when_asked() {
    let db = TestDb::new().await;
    let join = with_body(message("Ops", 1), EventBody::Join);
    let action = with_body(
        message("Ops", 3),
        EventBody::Message {
            kind: MessageKind::Privmsg,
            text: "\x01ACTION waves\x01".into(),
            tags: ClientTags::new(),
        },
    );
    let typing = with_body(
        message("Ops", 4),
        EventBody::Message {
            kind: MessageKind::Tagmsg,
            text: String::new(),
            tags: [("+typing".to_string(), "active".to_string())].into(),
        },
    );
    let topic = with_body(message("Ops", 5), EventBody::Topic { topic: "t".into() });
    let notice = with_body(
        message("Ops", 6),
        EventBody::Message {
            kind: MessageKind::Notice,
            text: "n".into(),
            tags: ClientTags::new(),
        },
    );
    let events = [join, message("Ops", 2), action, typing, topic, notice];
    assert_eq!(
        write::room_events(&db.store, &events).await.unwrap(),
        5,
        "TAGMSG is not history"
    );
    let c = db.store.room_conversation("OPS").await.unwrap().unwrap();
    assert_eq!(c.name, "Ops");
    let latest = Selector::Latest { after: None };
    let all = db.store.fetch(c.id, &latest, 10, true).await.unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 5, 6]);
    assert_eq!(all[0].body, EventBody::Join);
    assert_eq!(all[0].room.as_deref(), Some("Ops"));
    let messages = db.store.fetch(c.id, &latest, 10, false).await.unwrap();
    assert_eq!(seqs(&messages), [2, 3, 6]);
    let conn = db.store.pool().get().await.unwrap();
    let kinds: Vec<String> = conn
        .query("SELECT kind FROM messages ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["join", "message", "action", "topic", "notice"]);
    let (account, nick, at_ms): (Option<String>, String, f64) = {
        let r = conn
            .query_one(
                "SELECT sender_account, sender_nick, extract(epoch FROM at)::float8 * 1000 FROM messages WHERE seq = 2",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        (account.as_deref(), nick.as_str()),
        (Some("Alice"), "alice")
    );
    assert_eq!(at_ms.round() as i64, at(2), "time kept to the millisecond");
    drop(conn);
    db.drop_now().await;
}

#[tokio::test]
async fn rewriting_a_batch_changes_nothing() {
    let db = TestDb::new().await;
    let events: Vec<_> = (1..=5).map(|s| message("Ops", s)).collect();
    assert_eq!(write::room_events(&db.store, &events).await.unwrap(), 5);
    // A redelivery (and duplicates within one batch) insert nothing.
    let mut again = events.clone();
    again.push(events[0].clone());
    assert_eq!(write::room_events(&db.store, &again).await.unwrap(), 0);
    // Overlapping with new ones: only the new ones count.
    let more: Vec<_> = (4..=7).map(|s| message("Ops", s)).collect();
    assert_eq!(write::room_events(&db.store, &more).await.unwrap(), 2);

    let logs = [
        dm(
            "d1",
            actor("bob", "s2", Some("Bob")),
            "alice",
            Some("alice"),
            Some("s1"),
        ),
        dm(
            "d2",
            actor("alice", "s1", Some("alice")),
            "bob",
            Some("bob"),
            Some("s2"),
        ),
    ];
    let writes = direct_writes(&logs);
    assert_eq!(write::direct_logs(&db.store, &writes).await.unwrap(), 2);
    assert_eq!(write::direct_logs(&db.store, &writes).await.unwrap(), 0);
    let conn = db.store.pool().get().await.unwrap();
    let r = conn
        .query_one(
            "SELECT c.last_seq, count(m.*) FROM conversations c JOIN messages m ON m.conversation = c.id \
             WHERE c.key = 'dm:a:alice|a:bob' GROUP BY c.last_seq",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1)),
        (2, 2),
        "no seq spent on redeliveries"
    );
    let room: (i64, i64) = {
        let r = conn
            .query_one("SELECT last_seq, extract(epoch FROM last_at)::bigint FROM conversations WHERE key = 'room:ops'", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(room, (7, at(7) / 1000));
    drop(conn);
    db.drop_now().await;
}

#[tokio::test]
async fn a_recreated_room_continues_after_its_old_items() {
    let db = TestDb::new().await;
    let first: Vec<_> = (1..=3)
        .map(|s| message("Ops", s))
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                with_body(e, EventBody::Join)
            } else {
                e
            }
        })
        .collect();
    write::room_events(&db.store, &first).await.unwrap();
    // The room emptied; the router re-created it from seq 1 with new ids.
    let second: Vec<_> = (1..=2)
        .map(|s| {
            let mut e = message("Ops", s);
            e.id = format!("again-{s}");
            e.at = at(100 + s);
            if s == 1 {
                e.body = EventBody::Join;
            }
            e
        })
        .collect();
    // A late redelivery of the old incarnation rides along: still a no-op.
    let mut batch = vec![first[2].clone()];
    batch.extend(second.clone());
    assert_eq!(write::room_events(&db.store, &batch).await.unwrap(), 2);
    // And a redelivery of the new JOIN does not start yet another incarnation.
    assert_eq!(
        write::room_events(&db.store, &second[..1]).await.unwrap(),
        0
    );
    let mut third = message("Ops", 3);
    third.id = "again-3".into();
    assert_eq!(write::room_events(&db.store, &[third]).await.unwrap(), 1);
    let c = db.store.room_conversation("ops").await.unwrap().unwrap();
    let items = db
        .store
        .fetch(c.id, &Selector::Latest { after: None }, 10, true)
        .await
        .unwrap();
    assert_eq!(seqs(&items), [1, 2, 3, 4, 5, 6]);
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["Ops-m1", "Ops-m2", "Ops-m3", "again-1", "again-2", "again-3"]
    );
    db.drop_now().await;
}

fn direct_writes(logs: &[bus::history::DirectLog]) -> Vec<DirectWrite<'_>> {
    logs.iter()
        .map(|log| DirectWrite {
            log,
            key: direct_key(log).unwrap(),
            row: direct_row(log).unwrap(),
        })
        .collect()
}

#[tokio::test]
async fn direct_conversations_are_found_by_account_or_guest_nick() {
    let db = TestDb::new().await;
    let alice = actor("Alice", "s1", Some("alice"));
    let mut logs = vec![
        dm("d1", alice.clone(), "Bob", Some("bob"), Some("s2")),
        dm(
            "d2",
            actor("Bob", "s2", Some("bob")),
            "Alice",
            Some("alice"),
            Some("s1"),
        ),
        // A guest (no account) talks to alice.
        dm(
            "d3",
            actor("Guesty", "s7", None),
            "Alice",
            Some("alice"),
            Some("s1"),
        ),
        dm("d4", alice.clone(), "Guesty", None, Some("s7")),
    ];
    logs[3].kind = MessageKind::Notice;
    let writes = direct_writes(&logs);
    assert_eq!(write::direct_logs(&db.store, &writes).await.unwrap(), 4);
    let s = &db.store;
    let conn = s.pool().get().await.unwrap();
    let keys: Vec<String> = conn
        .query("SELECT key FROM conversations ORDER BY key", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, ["dm:a:alice|a:bob", "dm:a:alice|s:s7"]);
    drop(conn);

    // Alice (an account) asks for Bob: by account, any case.
    let bob = s
        .direct_conversation("a:alice", "BOB")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.name, "Bob");
    let items = s
        .fetch(bob.id, &Selector::Latest { after: None }, 10, false)
        .await
        .unwrap();
    assert_eq!(seqs(&items), [1, 2]);
    assert_eq!(items[0].to.as_deref(), Some("Bob"));
    assert_eq!(items[1].from.nick, "Bob");
    assert_eq!(items[1].room, None);
    // Bob sees the same conversation.
    assert_eq!(
        s.direct_conversation("a:bob", "alice")
            .await
            .unwrap()
            .unwrap()
            .id,
        bob.id
    );
    // The guest by its nick; a different session of the "same" guest nick
    // is a different participant and finds nothing.
    let guest = s
        .direct_conversation("a:alice", "guesty")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(guest.name, "Guesty");
    assert_eq!(
        seqs(
            &s.fetch(guest.id, &Selector::Latest { after: None }, 10, false)
                .await
                .unwrap()
        ),
        [1, 2]
    );
    assert!(s
        .direct_conversation("s:s8", "alice")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.direct_conversation("s:s7", "alice")
            .await
            .unwrap()
            .unwrap()
            .id,
        guest.id
    );
    assert!(s
        .direct_conversation("a:alice", "carol")
        .await
        .unwrap()
        .is_none());

    // TARGETS: both of alice's conversations plus a room she is in, by time.
    write::room_events(s, &[message("Ops", 1)]).await.unwrap();
    let targets = s
        .targets("a:alice", &["ops".into()], 0, i64::MAX / 4, 10)
        .await
        .unwrap();
    let found: Vec<(HistoryTarget, String)> = targets
        .iter()
        .map(|t| (t.target.clone(), t.name.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (HistoryTarget::Direct { peer: "bob".into() }, "Bob".into()),
            (
                HistoryTarget::Direct {
                    peer: "Guesty".into()
                },
                "Guesty".into()
            ),
            (HistoryTarget::Room { room: "ops".into() }, "Ops".into()),
        ]
    );
    assert!(targets.windows(2).all(|w| w[0].latest_at <= w[1].latest_at));
    // A window that excludes the room, and a limit.
    let early = s
        .targets("a:alice", &["ops".into()], 0, 10_000, 10)
        .await
        .unwrap();
    assert_eq!(early.len(), 2);
    assert_eq!(
        s.targets("a:alice", &[], 0, i64::MAX / 4, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(s
        .targets("a:nobody", &[], 0, i64::MAX / 4, 10)
        .await
        .unwrap()
        .is_empty());
    db.drop_now().await;
}

#[tokio::test]
async fn pending_deliveries_wait_for_their_account() {
    let db = TestDb::new().await;
    let mut logs = vec![
        dm(
            "p1",
            actor("bob", "s2", Some("bob")),
            "Alice",
            Some("Alice"),
            None,
        ),
        dm(
            "p2",
            actor("carol", "s3", None),
            "Alice",
            Some("Alice"),
            None,
        ),
        dm(
            "live",
            actor("bob", "s2", Some("bob")),
            "Alice",
            Some("Alice"),
            Some("s1"),
        ),
    ];
    logs[0].offline = true;
    logs[0].at = 5_000;
    logs[1].offline = true;
    logs[1].at = 4_000;
    let writes = direct_writes(&logs);
    write::direct_logs(&db.store, &writes).await.unwrap();
    // Redelivered: still one pending row each.
    write::direct_logs(&db.store, &writes).await.unwrap();
    let s = &db.store;
    let pending = s.pending("ALICE", 10).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["p2", "p1"], "oldest first, only the offline ones");
    assert_eq!(pending[0].to.as_deref(), Some("Alice"));
    assert_eq!(pending[0].at, 4_000);
    assert_eq!(s.pending("alice", 1).await.unwrap().len(), 1);
    assert!(s.pending("bob", 10).await.unwrap().is_empty());
    // Only the account's own rows are acknowledged.
    assert_eq!(s.ack_pending("bob", &["p1".into()]).await.unwrap(), 0);
    assert_eq!(
        s.ack_pending("alice", &["p1".into(), "zzz".into()])
            .await
            .unwrap(),
        1
    );
    let left: Vec<String> = s
        .pending("alice", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, ["p2"]);
    // The message itself stays in the conversation's history.
    let c = s
        .direct_conversation("a:alice", "bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.fetch(c.id, &Selector::Latest { after: None }, 10, false)
            .await
            .unwrap()
            .len(),
        2
    );
    db.drop_now().await;
}

#[tokio::test]
async fn retention_trims_by_age_and_by_count() {
    let db = TestDb::new().await;
    let s = &db.store;
    let now = bus::now_ms();
    // Ops: 10 items, the first 4 forty days old. Dev: 3 recent items.
    let events: Vec<_> = (1..=10)
        .map(|seq| {
            let mut e = message("Ops", seq);
            e.at = if seq <= 4 {
                now - 40 * 86_400_000
            } else {
                now - 1000
            };
            e
        })
        .chain((1..=3).map(|seq| {
            let mut e = message("Dev", seq);
            e.at = now;
            e
        }))
        .collect();
    write::room_events(s, &events).await.unwrap();
    // An old offline direct message, pending: goes with its message.
    let mut old = dm(
        "old",
        actor("bob", "s2", Some("bob")),
        "alice",
        Some("alice"),
        None,
    );
    old.offline = true;
    old.at = now - 40 * 86_400_000;
    write::direct_logs(s, &direct_writes(std::slice::from_ref(&old)))
        .await
        .unwrap();

    let nothing = Policy {
        max_age: None,
        max_per_conversation: None,
    };
    assert_eq!(s.trim(nothing).await.unwrap().by_age, 0);
    let by_age = Policy {
        max_age: Some(Duration::from_secs(30 * 86_400)),
        max_per_conversation: None,
    };
    let t = s.trim(by_age).await.unwrap();
    assert_eq!((t.by_age, t.by_count, t.skipped), (5, 0, false));
    assert!(s.pending("alice", 10).await.unwrap().is_empty());
    let ops = s.room_conversation("ops").await.unwrap().unwrap().id;
    let latest = Selector::Latest { after: None };
    assert_eq!(
        seqs(&s.fetch(ops, &latest, 100, true).await.unwrap()),
        [5, 6, 7, 8, 9, 10]
    );

    let by_count = Policy {
        max_age: None,
        max_per_conversation: Some(2),
    };
    let t = s.trim(by_count).await.unwrap();
    assert_eq!(t.by_count, 4 + 1, "Ops keeps 2 of 6, Dev 2 of 3");
    assert_eq!(
        seqs(&s.fetch(ops, &latest, 100, true).await.unwrap()),
        [9, 10]
    );
    let dev = s.room_conversation("dev").await.unwrap().unwrap().id;
    assert_eq!(
        seqs(&s.fetch(dev, &latest, 100, true).await.unwrap()),
        [2, 3]
    );
    // Idempotent.
    assert_eq!(s.trim(by_count).await.unwrap().by_count, 0);
    db.drop_now().await;
}

#[tokio::test]
async fn message_numbers_are_stored_for_rooms_and_direct_messages() {
    let db = TestDb::new().await;
    let s = &db.store;
    let (mut events, _) = numbered_room("Ops", 6);
    // A TAGMSG has no number and is not stored.
    events.push(with_body(
        message("Ops", 7),
        EventBody::Message {
            kind: MessageKind::Tagmsg,
            text: String::new(),
            tags: ClientTags::new(),
        },
    ));
    events.push(RoomEvent {
        mseq: Some(5),
        ..message("Ops", 8)
    });
    assert_eq!(write::room_events(s, &events).await.unwrap(), 7);
    let c = s.room_conversation("ops").await.unwrap().unwrap().id;
    let all = s
        .fetch(c, &Selector::Latest { after: None }, 10, true)
        .await
        .unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6, 8]);
    assert_eq!(
        mseqs(&all),
        [Some(1), Some(2), None, Some(3), Some(4), None, Some(5)]
    );
    // A redelivery stores nothing twice, numbers included.
    assert_eq!(write::room_events(s, &events).await.unwrap(), 0);

    // Direct messages: the number is the conversation's seq.
    let logs = [
        dm(
            "d1",
            actor("bob", "s2", Some("bob")),
            "alice",
            Some("alice"),
            None,
        ),
        dm(
            "d2",
            actor("alice", "s1", Some("alice")),
            "bob",
            Some("bob"),
            Some("s2"),
        ),
    ];
    let mut logs = logs.to_vec();
    logs[0].offline = true;
    write::direct_logs(s, &direct_writes(&logs)).await.unwrap();
    let d = s
        .direct_conversation("a:alice", "bob")
        .await
        .unwrap()
        .unwrap()
        .id;
    let items = s
        .fetch(d, &Selector::Latest { after: None }, 10, false)
        .await
        .unwrap();
    assert_eq!(seqs(&items), [1, 2]);
    assert_eq!(mseqs(&items), [Some(1), Some(2)]);
    let pending = s.pending("alice", 10).await.unwrap();
    assert_eq!(mseqs(&pending), [Some(1)], "pending items carry theirs too");
    db.drop_now().await;
}

#[tokio::test]
async fn numbered_selects_ranges_and_the_newest_limit() {
    let db = TestDb::new().await;
    let s = &db.store;
    // 30 events, 20 of them messages numbered 1..=20.
    let (events, top) = numbered_room("Ops", 30);
    assert_eq!(top, 20);
    write::room_events(s, &events).await.unwrap();
    let c = s.room_conversation("ops").await.unwrap().unwrap().id;
    let get = |ranges: Vec<SeqRange>, limit: u32| async move {
        numbers(&s.numbered(c, &merge_ranges(&ranges), limit).await.unwrap())
    };
    // One number (no hi), a range (hi exclusive), several, overlapping.
    assert_eq!(get(vec![range(7, None)], 10).await, [7]);
    assert_eq!(get(vec![range(3, Some(6))], 10).await, [3, 4, 5]);
    assert_eq!(
        get(
            vec![range(18, Some(100)), range(2, None), range(9, Some(11))],
            10
        )
        .await,
        [2, 9, 10, 18, 19, 20],
        "oldest first"
    );
    assert_eq!(
        get(vec![range(1, Some(5)), range(3, Some(8))], 10).await,
        [1, 2, 3, 4, 5, 6, 7]
    );
    // The newest `limit` of what matches, across ranges.
    assert_eq!(get(vec![range(1, Some(21))], 3).await, [18, 19, 20]);
    assert_eq!(
        get(vec![range(1, Some(4)), range(10, Some(12))], 3).await,
        [3, 10, 11]
    );
    assert_eq!(
        get(vec![range(1, Some(u64::MAX))], 100).await,
        (1..=20).collect::<Vec<_>>()
    );
    // Nothing there, nothing asked, limit 0.
    assert!(get(vec![range(21, Some(50))], 10).await.is_empty());
    assert!(get(vec![range(5, Some(5))], 10).await.is_empty());
    assert!(get(vec![], 10).await.is_empty());
    assert!(get(vec![range(1, Some(21))], 0).await.is_empty());
    // The items are whole: the message, its seq and id.
    let items = s.numbered(c, &[(4, 5)], 10).await.unwrap();
    let want = events.iter().find(|e| e.mseq == Some(4)).unwrap();
    assert_eq!(
        (items[0].seq, items[0].id.as_str(), &items[0].body),
        (want.seq, want.id.as_str(), &want.body)
    );
    db.drop_now().await;
}

/// A redaction of `msgid` in `room` at seq `seq` (by the op "bob").
fn redaction(room: &str, seq: u64, msgid: &str, mseq: Option<u64>) -> RoomEvent {
    RoomEvent {
        id: format!("{room}-r{seq}"),
        actor: actor("bob", "s2", Some("bob")),
        ..with_body(
            message(room, seq),
            EventBody::Redact {
                msgid: msgid.into(),
                mseq,
                reason: Some("spam".into()),
            },
        )
    }
}

#[tokio::test]
async fn redacted_messages_vanish_from_every_query() {
    let db = TestDb::new().await;
    let s = &db.store;
    // 12 events, 8 messages numbered 1..=8; seq 3, 6, 9, 12 are JOINs.
    let (events, _) = numbered_room("Ops", 12);
    write::room_events(s, &events).await.unwrap();
    let c = s.room_conversation("ops").await.unwrap().unwrap().id;
    let by_seq = |seq: u64| events.iter().find(|e| e.seq == seq).unwrap();
    // Message seq 5 (mseq 4) is redacted in a batch of its own; seq 7
    // (mseq 5) in the same batch as a new message; a JOIN cannot be.
    let first = [redaction("Ops", 13, &by_seq(5).id, Some(4))];
    assert_eq!(write::room_events(s, &first).await.unwrap(), 1);
    let mut later = vec![
        redaction("Ops", 14, &by_seq(7).id, Some(5)),
        redaction("Ops", 15, &by_seq(3).id, None),
    ];
    later.push(RoomEvent {
        mseq: Some(9),
        ..message("Ops", 16)
    });
    assert_eq!(write::room_events(s, &later).await.unwrap(), 3);
    // A redelivered batch changes nothing.
    assert_eq!(write::room_events(s, &later).await.unwrap(), 0);

    let msgs: Vec<u64> = vec![1, 2, 4, 8, 10, 11, 16];
    let fetch = |sel: Selector, limit: u32, events: bool| async move {
        seqs(&s.fetch(c, &sel, limit, events).await.unwrap())
    };
    assert_eq!(
        fetch(Selector::Latest { after: None }, 50, false).await,
        msgs
    );
    assert_eq!(
        fetch(Selector::Latest { after: None }, 3, false).await,
        [10, 11, 16]
    );
    // With events: the JOIN stays (not a message), the redactions are there.
    assert_eq!(
        fetch(Selector::Latest { after: None }, 50, true).await,
        [1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    );
    assert_eq!(
        fetch(
            Selector::Before {
                anchor: Anchor::Seq(8)
            },
            3,
            false
        )
        .await,
        [1, 2, 4]
    );
    assert_eq!(
        fetch(
            Selector::After {
                anchor: Anchor::Seq(2)
            },
            2,
            false
        )
        .await,
        [4, 8]
    );
    assert_eq!(
        fetch(
            Selector::Between {
                start: Anchor::Seq(1),
                end: Anchor::Seq(10)
            },
            50,
            false
        )
        .await,
        [2, 4, 8]
    );
    // A redacted id still anchors a page, but AROUND it (the gateway's
    // lookup) no longer finds the message itself.
    let gone = Anchor::Id(by_seq(5).id.clone());
    assert_eq!(
        fetch(
            Selector::After {
                anchor: gone.clone()
            },
            2,
            false
        )
        .await,
        [8, 10]
    );
    let around = s
        .fetch(c, &Selector::Around { anchor: gone }, 1, false)
        .await
        .unwrap();
    assert!(around.iter().all(|i| i.id != by_seq(5).id), "{around:?}");
    let alive = Anchor::Id(by_seq(4).id.clone());
    let around = s
        .fetch(c, &Selector::Around { anchor: alive }, 1, false)
        .await
        .unwrap();
    assert_eq!(seqs(&around), [4]);
    // Numbered: numbers 4 and 5 are gone, the others keep theirs.
    let numbered = s
        .numbered(c, &merge_ranges(&[range(1, Some(100))]), 100)
        .await
        .unwrap();
    assert_eq!(numbers(&numbered), [1, 2, 3, 6, 7, 8, 9]);
    // The redaction row is an event without a number of its own.
    let all = s
        .fetch(
            c,
            &Selector::After {
                anchor: Anchor::Seq(12),
            },
            1,
            true,
        )
        .await
        .unwrap();
    assert_eq!((all[0].seq, all[0].mseq), (13, None));
    assert!(matches!(
        &all[0].body,
        EventBody::Redact { mseq: Some(4), .. }
    ));
    // The JOIN named by a redaction is still there.
    let conn = s.pool().get().await.unwrap();
    let marked: i64 = conn
        .query_one(
            "SELECT count(*) FROM messages WHERE conversation = $1 AND redacted_at IS NOT NULL",
            &[&c],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(marked, 2);
    drop(conn);
    db.drop_now().await;
}

#[tokio::test]
async fn a_room_numbered_again_from_one_keeps_its_numbers_unique() {
    let db = TestDb::new().await;
    let s = &db.store;
    // A husk keeps the router's numbering going across an emptied room:
    // nothing to do here, the numbers are stored as they come.
    let (first, _) = numbered_room("Ops", 4);
    let first: Vec<_> = first
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                RoomEvent {
                    mseq: None,
                    ..with_body(e, EventBody::Join)
                }
            } else {
                e
            }
        })
        .collect();
    write::room_events(s, &first).await.unwrap();
    // A router that lost the room's record starts again at seq 1, mseq 1.
    let again = |seq: u64, mseq: Option<u64>| {
        let mut e = message("Ops", seq);
        e.id = format!("again-{seq}");
        e.mseq = mseq;
        if seq == 1 {
            e.body = EventBody::Join;
        }
        e
    };
    let second = [again(1, None), again(2, Some(1)), again(3, Some(2))];
    assert_eq!(write::room_events(s, &second).await.unwrap(), 3);
    assert_eq!(
        write::room_events(s, &[again(4, Some(3))]).await.unwrap(),
        1
    );
    let c = s.room_conversation("ops").await.unwrap().unwrap().id;
    let all = s
        .fetch(c, &Selector::Latest { after: None }, 20, true)
        .await
        .unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6, 7, 8]);
    // The old life had numbers 2 and 3 (its events 1 and 3 are JOINs):
    // the new one goes on after them.
    assert_eq!(
        mseqs(&all),
        [
            None,
            Some(2),
            None,
            Some(3),
            None,
            Some(4),
            Some(5),
            Some(6)
        ]
    );
    db.drop_now().await;
}

/// A handler over a throw-away NATS prefix, with room records written the
/// way the router writes them.
mod handler {
    use super::*;
    use crate::access::Membership;
    use crate::requests::Handler;

    fn record(room: &str, members: &[&str]) -> RoomRecord {
        RoomRecord {
            room: room.to_ascii_lowercase(),
            name: room.into(),
            created_at: 0,
            seq: 10,
            mseq: 7,
            topic: None,
            modes: RoomModes::default(),
            bans: vec![],
            invited: vec![],
            members: members
                .iter()
                .map(|sid| MemberRecord {
                    actor: actor(sid, sid, None),
                    op: false,
                    voice: false,
                    away: None,
                    bot: false,
                    joined_at: 0,
                })
                .collect(),
            applied: vec![],
            registration: None,
        }
    }

    fn request(sid: &str, account: Option<&str>, body: HistoryQuery) -> HistoryRequest {
        HistoryRequest {
            v: SCHEMA_VERSION,
            id: bus::new_id(),
            requester: Requester {
                sid: sid.into(),
                nick: sid.into(),
                account: account.map(str::to_string),
            },
            body,
        }
    }

    fn numbered(target: HistoryTarget, ranges: Vec<SeqRange>, limit: u32) -> HistoryQuery {
        HistoryQuery::Numbered {
            target,
            ranges,
            limit,
        }
    }

    fn items(reply: HistoryReplyBody) -> (String, Vec<u64>) {
        match reply {
            HistoryReplyBody::Messages { name, items, .. } => (name, numbers(&items)),
            other => panic!("{other:?}"),
        }
    }

    const INVALID: HistoryReplyBody = HistoryReplyBody::Failure {
        code: HistoryError::InvalidTarget,
    };

    #[tokio::test]
    async fn numbered_follows_the_access_rules_of_fetch() {
        let db = TestDb::new().await;
        let prefix = format!("hist_ut_{:08x}", rand::random::<u32>());
        let cfg = bus::config::NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            prefix: prefix.clone(),
        };
        let buckets = bus::kv::open(&cfg, Duration::from_secs(60)).await.unwrap();
        let put = |r: RoomRecord| {
            let rooms = buckets.rooms.clone();
            async move {
                let key = bus::kv::room_key(&r.room);
                rooms
                    .put(key, serde_json::to_vec(&r).unwrap().into())
                    .await
                    .unwrap();
            }
        };
        put(record("Ops", &["s1"])).await;
        // An emptied room: its husk, no members.
        put(record("Gone", &[])).await;
        let (ops, _) = numbered_room("Ops", 9); // numbers 1..=6
        let (gone, _) = numbered_room("Gone", 3);
        write::room_events(&db.store, &ops).await.unwrap();
        write::room_events(&db.store, &gone).await.unwrap();
        let logs = [
            dm(
                "d1",
                actor("bob", "s2", Some("bob")),
                "alice",
                Some("alice"),
                Some("s1"),
            ),
            dm(
                "d2",
                actor("alice", "s1", Some("alice")),
                "bob",
                Some("bob"),
                Some("s2"),
            ),
            dm(
                "d3",
                actor("bob", "s2", Some("bob")),
                "alice",
                Some("alice"),
                Some("s1"),
            ),
        ];
        write::direct_logs(&db.store, &direct_writes(&logs))
            .await
            .unwrap();

        let access = Membership::new(buckets.rooms.clone(), Duration::ZERO);
        let h = Handler::new(db.store.clone(), access, 4);
        let room = |r: &str| HistoryTarget::Room { room: r.into() };
        let all = || vec![range(1, Some(100))];

        // A member: the newest numbers, capped by the service's max page (4).
        let reply = h
            .handle(&request("s1", None, numbered(room("OPS"), all(), 50)))
            .await;
        assert_eq!(items(reply), ("Ops".to_string(), vec![3, 4, 5, 6]));
        let reply = h
            .handle(&request(
                "s1",
                None,
                numbered(room("ops"), vec![range(2, None), range(5, Some(6))], 10),
            ))
            .await;
        assert_eq!(items(reply).1, [2, 5]);
        // Not a member, or a room that emptied (its husk has no members),
        // or no such room: all the same refusal.
        for (sid, r) in [("s9", "ops"), ("s1", "gone"), ("s1", "nowhere")] {
            let reply = h
                .handle(&request(sid, None, numbered(room(r), all(), 10)))
                .await;
            assert_eq!(reply, INVALID, "{sid} in {r}");
        }
        // Direct: the participants, by the peer's account; nobody else.
        let bob = HistoryTarget::Direct { peer: "Bob".into() };
        let reply = h
            .handle(&request(
                "s1",
                Some("alice"),
                numbered(bob.clone(), vec![range(2, Some(4))], 10),
            ))
            .await;
        assert_eq!(items(reply), ("bob".to_string(), vec![2, 3]));
        let alice = HistoryTarget::Direct {
            peer: "alice".into(),
        };
        let reply = h
            .handle(&request(
                "s2",
                Some("bob"),
                numbered(alice.clone(), all(), 1),
            ))
            .await;
        assert_eq!(items(reply).1, [3]);
        let reply = h
            .handle(&request("s7", Some("carol"), numbered(alice, all(), 10)))
            .await;
        assert_eq!(reply, INVALID);
        // Too many ranges is a malformed request.
        let many = (0..200).map(|i| range(i * 10, None)).collect();
        let reply = h
            .handle(&request("s1", None, numbered(room("ops"), many, 10)))
            .await;
        assert_eq!(
            reply,
            HistoryReplyBody::Failure {
                code: HistoryError::Malformed
            }
        );

        let js = async_nats::jetstream::new(buckets.client.clone());
        for bucket in ["sessions", "nicks", "rooms", "routers"] {
            let _ = js.delete_stream(format!("KV_{prefix}_{bucket}")).await;
        }
        db.drop_now().await;
    }
}
