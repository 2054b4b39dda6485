//! `history-bench`: measures the history service (run by
//! `scripts/bench-history.sh`, which gives it a vhost, NATS prefix and
//! database of its own and removes them afterwards).
//!
//! * `write`: publishes room events to `chat.rooms` while a real
//!   history-service consumes them, and times until every one is committed.
//! * `seed`: fills a conversation with many rows by COPY (plus smaller ones).
//! * `query`: page latencies of LATEST / BEFORE / AFTER, first through the
//!   store functions the service answers with, then end to end through the
//!   bus (a `HistoryRequest` with `reply_to` a temporary queue).
//! * `cleanup`: deletes the NATS buckets of a prefix.

use bus::settle::Settle;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bus::config::NatsConfig;
use bus::history::{
    Anchor, HistoryQuery, HistoryReplyBody, HistoryRequest, HistoryTarget, Requester, Selector,
};
use bus::names::room_routing_key;
use bus::pg::PgConfig;
use bus::schema::{
    Actor, BusMessage, ClientTags, EventBody, MemberRecord, MessageKind, RoomEvent, RoomModes,
    RoomRecord, SCHEMA_VERSION,
};
use bus::topology::{connect, declare_core, message_properties, ROOMS_EXCHANGE};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use hdrhistogram::Histogram;
use history_service::items::room_row;
use history_service::store::Store;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

#[derive(Debug, Parser)]
#[command(name = "history-bench", about = "Benchmarks of the history service")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish room events and time until the service has committed them all.
    Write {
        #[arg(long)]
        amqp: String,
        #[arg(long)]
        pg: String,
        /// The service's /metrics URL (for the batch sizes it saw).
        #[arg(long)]
        metrics: String,
        #[arg(long, default_value_t = 200_000)]
        count: u64,
        #[arg(long, default_value_t = 8)]
        rooms: u64,
    },
    /// Publish room events with no service running (they wait in
    /// history.events): the backlog that `drain` times.
    Publish {
        #[arg(long)]
        amqp: String,
        #[arg(long, default_value_t = 200_000)]
        count: u64,
        #[arg(long, default_value_t = 8)]
        rooms: u64,
    },
    /// Wait while a just-started service works through the backlog; report
    /// its rate from the first committed item to the last.
    Drain {
        #[arg(long)]
        pg: String,
        #[arg(long)]
        metrics: String,
        #[arg(long, default_value_t = 200_000)]
        count: u64,
    },
    /// Fill the database: `rows` items in room `big`, `other_rows` in each
    /// of `others` more rooms.
    Seed {
        #[arg(long)]
        pg: String,
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 9)]
        others: i64,
        #[arg(long, default_value_t = 20_000)]
        other_rows: i64,
    },
    /// Page latencies against a seeded database, direct and through the bus.
    Query {
        #[arg(long)]
        pg: String,
        #[arg(long)]
        amqp: String,
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long)]
        prefix: String,
        /// Rows seeded in `big` (to pick random anchors).
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        #[arg(long, default_value_t = 1000)]
        queries: u32,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Delete the NATS buckets of a prefix.
    Cleanup {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long)]
        prefix: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Write {
            amqp,
            pg,
            metrics,
            count,
            rooms,
        } => write(&amqp, &pg, &metrics, count, rooms.max(1)).await,
        Command::Publish { amqp, count, rooms } => {
            let conn = connect(&amqp, "history-bench publish").await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            declare_core(&ch, 0).await?;
            bus::topology::declare_history_queues(&ch).await?;
            let t = Instant::now();
            publish(&ch, count, rooms.max(1)).await?;
            println!(
                "publish: {count} events queued in {:.2}s",
                t.elapsed().as_secs_f64()
            );
            let _ = conn.close(200, "done".into()).await;
            Ok(())
        }
        Command::Drain { pg, metrics, count } => drain(&pg, &metrics, count).await,
        Command::Seed {
            pg,
            rows,
            others,
            other_rows,
        } => seed(&pg, rows, others, other_rows).await,
        Command::Query {
            pg,
            amqp,
            nats,
            prefix,
            rows,
            queries,
            limit,
        } => query(&pg, &amqp, &nats, &prefix, rows, queries, limit).await,
        Command::Cleanup { nats, prefix } => cleanup(&nats, &prefix).await,
    }
}

/// Item times of seeded rows: one every 100 ms from here.
const SEED_BASE_MS: i64 = 1_700_000_000_000;
const SEED_STEP_MS: i64 = 100;

fn actor(n: u64) -> Actor {
    Actor {
        sid: format!("bench-sid-{}", n % 50),
        gateway: "gw-bench".into(),
        nick: format!("user{}", n % 50),
        user: "bench".into(),
        host: "127.0.0.1".into(),
        realname: "Bench".into(),
        account: n.is_multiple_of(2).then(|| format!("user{}", n % 50)),
    }
}

fn event(room: &str, seq: u64, id: String, at: i64) -> RoomEvent {
    RoomEvent {
        v: SCHEMA_VERSION,
        room: room.into(),
        name: room.to_ascii_uppercase(),
        seq,
        // Every bench event is a PRIVMSG, numbered as the router would.
        mseq: Some(seq),
        id,
        at,
        actor: actor(seq),
        body: EventBody::Message {
            kind: MessageKind::Privmsg,
            text: format!("benchmark line {seq}: the quick brown fox jumps over the lazy dog"),
            tags: ClientTags::new(),
        },
        intent_at: None,
    }
}

/// The message id of seeded row `seq` (deterministic, so `query` can pick
/// random existing ids without reading them first).
fn seed_id(room: &str, seq: i64) -> String {
    format!("{room}-{seq:010}")
}

async fn pg_client(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("PostgreSQL connection: {e}");
        }
    });
    Ok(client)
}

// ---------------------------------------------------------------- write

async fn write(amqp: &str, pg: &str, metrics: &str, count: u64, rooms: u64) -> anyhow::Result<()> {
    let conn = connect(amqp, "history-bench").await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    declare_core(&ch, 0).await?;
    let db = pg_client(pg).await?;
    let before = stored_count(&db).await?;
    if before != 0 {
        bail!("the database already holds {before} items");
    }
    let started = Instant::now();
    publish(&ch, count, rooms).await?;
    let published = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = stored_count(&db).await?;
        if n >= count {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {count} items stored after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = started.elapsed();
    verify_rows(&db, count).await?;
    println!(
        "write: {count} events in {rooms} rooms; published+confirmed in {:.2}s ({:.0}/s); \
         all committed after {:.2}s => {:.0} items/s persisted",
        published.as_secs_f64(),
        count as f64 / published.as_secs_f64(),
        done.as_secs_f64(),
        count as f64 / done.as_secs_f64()
    );
    print_batches(metrics).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

/// Publishes `count` message events round-robin over `rooms` rooms, each
/// room numbered from 1, confirmed in windows of 5,000.
async fn publish(ch: &lapin::Channel, count: u64, rooms: u64) -> anyhow::Result<()> {
    let names: Vec<String> = (0..rooms).map(|r| format!("bench{r}")).collect();
    let keys: Vec<String> = names.iter().map(|r| room_routing_key(r)).collect();
    let mut seqs = vec![0u64; rooms as usize];
    let mut confirms = Vec::with_capacity(5000);
    for i in 0..count {
        let r = (i % rooms) as usize;
        seqs[r] += 1;
        let e = event(&names[r], seqs[r], bus::new_id(), bus::now_ms());
        let body = BusMessage::Event(e).to_json();
        confirms.push(
            ch.basic_publish(
                ROOMS_EXCHANGE.into(),
                keys[r].as_str().into(),
                BasicPublishOptions::default(),
                &body,
                message_properties(),
            )
            .await?,
        );
        if confirms.len() == 5000 || i + 1 == count {
            for c in confirms.drain(..) {
                if c.await?.is_nack() {
                    bail!("the broker nacked a publish");
                }
            }
        }
    }
    Ok(())
}

/// Items stored so far. Polled every few ms while the service writes, so
/// it reads the few conversation rows (each bench room is numbered from 1
/// without gaps, consumed in order by one replica), not a count(*) over
/// the growing table that would compete with the service for the CPU.
async fn stored_count(db: &tokio_postgres::Client) -> anyhow::Result<u64> {
    let n: i64 = db
        .query_one(
            "SELECT coalesce(sum(last_seq), 0)::bigint FROM conversations WHERE kind = 'room'",
            &[],
        )
        .await?
        .get(0);
    Ok(n as u64)
}

/// The exact row count, checked once at the end.
async fn verify_rows(db: &tokio_postgres::Client, count: u64) -> anyhow::Result<()> {
    let n: i64 = db
        .query_one("SELECT count(*) FROM messages", &[])
        .await?
        .get(0);
    if n as u64 != count {
        bail!("{n} rows stored, {count} expected");
    }
    Ok(())
}

/// Times a service working through a backlog: from the first poll that
/// sees items to the one that sees them all.
async fn drain(pg: &str, metrics: &str, count: u64) -> anyhow::Result<()> {
    // The service creates the database; wait for its schema.
    let deadline = Instant::now() + Duration::from_secs(600);
    let db = loop {
        if let Ok(db) = pg_client(pg).await {
            if stored_count(&db).await.is_ok() {
                break db;
            }
        }
        if Instant::now() > deadline {
            bail!("no history schema at {pg}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let n = stored_count(&db).await?;
        if n > 0 && first.is_none() {
            first = Some((Instant::now(), n));
        }
        if n >= count {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {count} items stored after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (t0, n0) = first.expect("items were seen");
    let took = t0.elapsed();
    verify_rows(&db, count).await?;
    println!(
        "drain: {} items committed in {:.2}s after the first batch => {:.0} items/s persisted",
        count - n0,
        took.as_secs_f64(),
        (count - n0) as f64 / took.as_secs_f64()
    );
    print_batches(metrics).await
}

async fn print_batches(metrics: &str) -> anyhow::Result<()> {
    let text = http_get(metrics).await?;
    let size = summary(&text, "history_batch_size", "events");
    let commit = summary(&text, "history_batch_commit_seconds", "events");
    println!(
        "batches: {} (mean size {:.1}, p50 {}, p90 {}, max {}); commit seconds p50 {} p90 {} p99 {} max {}",
        size.get("count").map_or("?".into(), |c| format!("{c:.0}")),
        size.get("sum").zip(size.get("count")).map_or(0.0, |(s, c)| s / c),
        q(&size, "0.5"),
        q(&size, "0.9"),
        q(&size, "1"),
        q(&commit, "0.5"),
        q(&commit, "0.9"),
        q(&commit, "0.99"),
        q(&commit, "1"),
    );
    Ok(())
}

fn q(m: &HashMap<String, f64>, quantile: &str) -> String {
    m.get(quantile).map_or("?".into(), |v| format!("{v:.4}"))
}

/// Quantiles, `sum` and `count` of a Prometheus summary for one queue.
fn summary(text: &str, name: &str, queue: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if !key.contains(&format!("queue=\"{queue}\"")) {
            continue;
        }
        if let Some(rest) = key.strip_prefix(&format!("{name}{{")) {
            if let Some(qs) = rest.split("quantile=\"").nth(1) {
                let quantile = qs.split('"').next().unwrap_or_default();
                out.insert(quantile.to_string(), value);
            }
        } else if key.starts_with(&format!("{name}_sum{{")) {
            out.insert("sum".into(), value);
        } else if key.starts_with(&format!("{name}_count{{")) {
            out.insert("count".into(), value);
        }
    }
    out
}

/// A plain HTTP/1.1 GET (the admin port serves small bodies with a length).
async fn http_get(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    Ok(buf
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}

// ----------------------------------------------------------------- seed

async fn seed(pg: &str, rows: i64, others: i64, other_rows: i64) -> anyhow::Result<()> {
    // Schema first, exactly as the service creates it.
    let store = Store::open(&PgConfig {
        url: pg.into(),
        pool_size: 1,
        create_database: true,
    })
    .await?;
    store.pool().close();
    let mut db = pg_client(pg).await?;
    let mut rooms = vec![("big".to_string(), rows)];
    rooms.extend((0..others).map(|i| (format!("other{i}"), other_rows)));
    let started = Instant::now();
    let mut total = 0;
    for (room, n) in &rooms {
        let id: i64 = db
            .query_one(
                "INSERT INTO conversations (key, kind, name, last_seq, last_at) \
                 VALUES ($1, 'room', $2, $3, to_timestamp($4::float8 / 1000)) RETURNING id",
                &[
                    &format!("room:{room}"),
                    &room.to_ascii_uppercase(),
                    n,
                    &((SEED_BASE_MS + n * SEED_STEP_MS) as f64),
                ],
            )
            .await?
            .get(0);
        let tx = db.transaction().await?;
        let sink = tx
            .copy_in(
                "COPY messages (conversation, seq, msgid, at, kind, sender_account, sender_nick, \
                 body, tags, item, mseq) FROM STDIN BINARY",
            )
            .await?;
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TIMESTAMPTZ,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::JSONB,
                Type::JSONB,
                Type::INT8,
            ],
        );
        futures::pin_mut!(writer);
        for seq in 1..=*n {
            let e = event(
                room,
                seq as u64,
                seed_id(room, seq),
                SEED_BASE_MS + seq * SEED_STEP_MS,
            );
            let row = room_row(&e).expect("messages are history");
            writer
                .as_mut()
                .write(&[
                    &id,
                    &seq,
                    &row.msgid,
                    &row.at,
                    &row.kind,
                    &row.sender_account,
                    &row.sender_nick,
                    &row.body,
                    &row.tags,
                    &row.item,
                    &seq,
                ])
                .await?;
        }
        writer.finish().await?;
        tx.commit().await?;
        total += n;
    }
    db.batch_execute("ANALYZE conversations; ANALYZE messages")
        .await?;
    println!(
        "seed: {total} rows ({rows} in room big, {others} rooms of {other_rows}) by COPY in {:.1}s ({:.0} rows/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------- query

/// One kind of page request, with a random anchor.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Latest,
    BeforeId,
    AfterTime,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Latest => "LATEST",
            Kind::BeforeId => "BEFORE msgid",
            Kind::AfterTime => "AFTER time",
        }
    }

    fn selector(self, rows: i64, rng: &mut impl Rng) -> Selector {
        match self {
            Kind::Latest => Selector::Latest { after: None },
            Kind::BeforeId => Selector::Before {
                anchor: Anchor::Id(seed_id("big", rng.random_range(1..=rows))),
            },
            Kind::AfterTime => Selector::After {
                anchor: Anchor::Time(SEED_BASE_MS + rng.random_range(0..rows) * SEED_STEP_MS),
            },
        }
    }
}

const KINDS: [Kind; 3] = [Kind::Latest, Kind::BeforeId, Kind::AfterTime];

fn report(path: &str, kind: Kind, h: &Histogram<u64>) {
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "{path:6} {:13} n={} p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        kind.name(),
        h.len(),
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    );
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

async fn query(
    pg: &str,
    amqp: &str,
    nats: &str,
    prefix: &str,
    rows: i64,
    queries: u32,
    limit: u32,
) -> anyhow::Result<()> {
    let store = Store::open(&PgConfig {
        url: pg.into(),
        pool_size: 2,
        create_database: false,
    })
    .await?;
    let conv = store
        .room_conversation("big")
        .await?
        .context("room big is not seeded")?;
    let mut rng = rand::rng();

    // Direct: the store functions the request handler calls.
    for kind in KINDS {
        let mut h = histogram();
        for _ in 0..queries {
            let selector = kind.selector(rows, &mut rng);
            let t = Instant::now();
            let items = store.fetch(conv.id, &selector, limit, false).await?;
            h.record(t.elapsed().as_micros() as u64)?;
            if items.is_empty() {
                bail!("{} returned nothing", kind.name());
            }
        }
        report("store", kind, &h);
    }

    // End to end: the requester must be a member in the room record.
    let buckets = bus::kv::open(
        &NatsConfig {
            url: nats.into(),
            prefix: prefix.into(),
        },
        Duration::from_secs(30),
    )
    .await?;
    let sid = format!("bench-{}", bus::new_id());
    let member = Actor {
        sid: sid.clone(),
        ..actor(0)
    };
    let record = RoomRecord {
        room: "big".into(),
        name: "BIG".into(),
        created_at: SEED_BASE_MS,
        seq: rows as u64,
        mseq: rows as u64,
        topic: None,
        modes: RoomModes::default(),
        bans: vec![],
        invited: vec![],
        members: vec![MemberRecord {
            actor: member.clone(),
            op: false,
            voice: false,
            away: None,
            bot: false,
            joined_at: SEED_BASE_MS,
        }],
        applied: vec![],
        registration: None,
    };
    buckets
        .rooms
        .put(
            bus::kv::room_key("big"),
            serde_json::to_vec(&record)?.into(),
        )
        .await
        .context("writing the room record")?;

    let conn = connect(amqp, "history-bench query").await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let reply_queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let reply_to = reply_queue.name().as_str().to_string();
    let mut replies = ch
        .basic_consume(
            reply_to.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let requester = Requester {
        sid,
        nick: member.nick.clone(),
        account: member.account.clone(),
    };
    for kind in KINDS {
        let mut h = histogram();
        for _ in 0..queries {
            let request = HistoryRequest {
                v: SCHEMA_VERSION,
                id: bus::new_id(),
                requester: requester.clone(),
                body: HistoryQuery::Fetch {
                    target: HistoryTarget::Room { room: "big".into() },
                    selector: kind.selector(rows, &mut rng),
                    limit,
                    events: false,
                },
            };
            let t = Instant::now();
            ch.basic_publish(
                "".into(),
                bus::topology::HISTORY_REQUESTS_QUEUE.into(),
                BasicPublishOptions::default(),
                &BusMessage::HistoryRequest(request.clone()).to_json(),
                message_properties()
                    .with_reply_to(reply_to.as_str().into())
                    .with_correlation_id(request.id.as_str().into()),
            )
            .await?
            .await?;
            let delivery = tokio::time::timeout(Duration::from_secs(10), replies.next())
                .await
                .context("no reply within 10 s")?
                .context("reply consumer ended")??;
            h.record(t.elapsed().as_micros() as u64)?;
            delivery
                .acker
                .ack_within(BasicAckOptions::default())
                .await?;
            match BusMessage::from_json(&delivery.data)? {
                BusMessage::HistoryReply(reply) if reply.id == request.id => match reply.body {
                    HistoryReplyBody::Messages { items, .. } if !items.is_empty() => {}
                    other => bail!("unexpected answer to {}: {other:?}", kind.name()),
                },
                other => bail!("unexpected reply {other:?}"),
            }
        }
        report("bus", kind, &h);
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

// -------------------------------------------------------------- cleanup

async fn cleanup(nats: &str, prefix: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(nats).await?;
    let js = async_nats::jetstream::new(client);
    for bucket in ["sessions", "nicks", "rooms", "routers"] {
        let stream = format!("KV_{prefix}_{bucket}");
        if let Err(e) = js.delete_stream(&stream).await {
            eprintln!("deleting {stream}: {e}");
        }
    }
    Ok(())
}
