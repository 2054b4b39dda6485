//! `router-service`: the router process.
//!
//! It owns chat semantics for rooms (membership, modes, topic, bans,
//! invitations, the per-room `seq`) and binds gateway queues to the rooms
//! their members are in. Intents arrive on `router.intent.<p>` (one active
//! router per partition thanks to single active consumer; a second router
//! process is a hot standby); events, replies and invitations leave on
//! `chat.rooms`, the gateway queues and `chat.direct`. Room state lives in
//! memory and is written to the NATS rooms bucket after every batch; the
//! rooms registered with ChanServ are also written through to PostgreSQL
//! (their durable copy, see `registered.rs`), which must be reachable at
//! start-up (migrations) and is only retried after that.
//!
//! Alerts published to the alerts exchange are read from `router.alerts`
//! (one active router at a time) and forwarded as intents to their room's
//! partition (see `alerts.rs`).
//!
//! A RabbitMQ restart is ridden out: the connection is re-established (and
//! the topology declared again) by a [`Link`], `/readyz` reports `amqp`
//! down meanwhile, and each partition subscribes again and reloads its
//! rooms (see `partition.rs`). Any other failure of RabbitMQ or NATS ends
//! the process with a non-zero status (a supervisor restarts it;
//! unacknowledged intents wait in their queues).

mod alerts;
mod bindings;
mod config;
mod handlers;
mod masks;
mod partition;
mod pgstore;
mod registered;
mod room;
mod rooms;
mod store;
mod sweeper;
mod writeback;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bus::process::Process;
use bus::recovery::{Link, Live};
use bus::topology::{declare_core, declare_history_queues, intent_queue};
use clap::Parser;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::partition::{Durables, Partition, Settings};
use crate::pgstore::PgStore;
use crate::store::Store;

/// How long connecting to RabbitMQ or NATS may take before start-up fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the partitions get to finish their batch on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(
    name = "router-service",
    version,
    about = "The chat router: room semantics and gateway bindings"
)]
struct Args {
    /// TOML configuration file (else `CHAT_CONFIG`, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    bus::process::exit_code("router-service", run(args).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    if cfg.bus.partitions == 0 {
        bail!("bus.partitions must be at least 1");
    }
    let process = Process::start(&cfg.log, &cfg.admin, &["amqp", "nats", "postgres"]).await?;
    let shutdown = process.shutdown.clone();

    let instance = format!("{}.{:08x}", cfg.router.id, rand::random::<u32>());
    tracing::info!(%instance, partitions = cfg.bus.partitions, "router starting");

    let session_ttl = Duration::from_secs(cfg.bus.session_ttl_secs);
    let buckets = tokio::time::timeout(CONNECT_TIMEOUT, bus::kv::open(&cfg.nats, session_ttl))
        .await
        .with_context(|| format!("NATS at {}: no answer in {CONNECT_TIMEOUT:?}", cfg.nats.url))?
        .with_context(|| format!("NATS at {}", cfg.nats.url))?;
    process.set("nats", true);

    let pg = tokio::time::timeout(CONNECT_TIMEOUT, PgStore::open(&cfg.postgres))
        .await
        .context("PostgreSQL: no answer in time")?
        .context("opening PostgreSQL and migrating the router's tables")?;
    process.set("postgres", true);
    let (writer, writer_task) = writeback::spawn(pg.clone());
    let durables = Durables {
        store: pg.clone(),
        writer,
    };

    let partitions = cfg.bus.partitions;
    // Declared on every (re)connection, before any partition subscribes.
    let setup = move |live: Live| async move {
        let ch = live.conn.create_channel().await?;
        declare_core(&ch, partitions).await?;
        // Before the first event: the history service's queue must exist
        // (and be bound to every room) so events published while it is not
        // running yet are kept for it.
        declare_history_queues(&ch).await?;
        // So alerts published while no router runs wait for one.
        bus::alerts::declare(&ch).await?;
        let _ = ch.close(200, "OK".into()).await;
        Ok(())
    };
    let link = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Link::connect(&cfg.amqp.url, &format!("router-service {instance}"), setup),
    )
    .await
    .context("RabbitMQ: no answer in time")?
    .context("connecting to RabbitMQ and declaring the topology")?;

    let store = Store::new(&buckets.rooms, &buckets.routers, &buckets.sessions);
    let settings = Arc::new(Settings {
        instance: instance.clone(),
        partitions: cfg.bus.partitions,
        batch_max: cfg.router.batch_max.max(1),
        quit_reason_expired: cfg.router.quit_reason_expired.clone(),
    });
    let mut tasks = JoinSet::new();
    let mut sweep_senders = Vec::new();
    for p in 0..cfg.bus.partitions {
        let live = link
            .live()
            .context("the AMQP connection was lost during start-up")?;
        let (partition, consumer) = Partition::subscribe(
            &link,
            live,
            p,
            settings.clone(),
            store.clone(),
            durables.clone(),
        )
        .await
        .with_context(|| format!("subscribing to {}", intent_queue(p)))?;
        let (tx, rx) = mpsc::channel(1);
        sweep_senders.push(tx);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            partition
                .run(consumer, rx, stop)
                .await
                .with_context(|| format!("partition {p}"))
        });
    }
    let live = link
        .live()
        .context("the AMQP connection was lost during start-up")?;
    let (forwarder, consumer) = alerts::Forwarder::subscribe(
        &link,
        live,
        &instance,
        cfg.bus.partitions,
        settings.batch_max,
    )
    .await
    .with_context(|| format!("subscribing to {}", bus::alerts::ALERTS_QUEUE))?;
    let stop = shutdown.clone();
    tasks.spawn(async move {
        forwarder
            .run(consumer, stop)
            .await
            .context("the alerts forwarder")
    });
    link.report_to(process.check("amqp"));
    let interval = Duration::from_secs(cfg.router.sweep_interval_secs);
    tokio::spawn(sweeper::run(
        store,
        sweep_senders,
        interval,
        shutdown.clone(),
    ));
    tokio::spawn(watch_nats(buckets.client.clone(), process.check("nats")));
    tokio::spawn(watch_postgres(pg, process.check("postgres")));
    // The partitions hold the other senders; once they are gone the writer
    // writes what is pending and ends.
    drop(durables);
    tracing::info!(admin = %cfg.admin.listen, "router ready");

    let mut failure = None;
    let mut stop = shutdown.clone();
    tokio::select! {
        _ = stop.wait() => {}
        Some(done) = tasks.join_next() => failure = failure.or(task_failure(done)),
    }
    process.drain();
    let drain = async {
        let mut failure = None;
        while let Some(done) = tasks.join_next().await {
            failure = failure.or(task_failure(done));
        }
        failure
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
        Ok(more) => failure = failure.or(more),
        Err(_) => tracing::warn!("partitions did not stop in time"),
    }
    // Partitions that did not stop still hold writer senders; abandon them.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    if tokio::time::timeout(DRAIN_TIMEOUT, writer_task)
        .await
        .is_err()
    {
        tracing::warn!(
            "registered rooms still waiting for PostgreSQL at shutdown were not written"
        );
    }
    link.close().await;
    let _ = process.admin.await;
    match failure {
        Some(error) => Err(error),
        None => {
            tracing::info!("router stopped");
            Ok(())
        }
    }
}

/// A partition's (or the alerts forwarder's) end, as an error if it failed.
fn task_failure(done: Result<anyhow::Result<()>, tokio::task::JoinError>) -> Option<anyhow::Error> {
    match done {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(join) => Some(anyhow::anyhow!("a router task died: {join}")),
    }
}

/// Keeps `/readyz` honest about PostgreSQL after start-up. The router
/// serves rooms without it (their changes wait, see `writeback.rs`), but
/// registered rooms are not written meanwhile, which readiness should say.
async fn watch_postgres(pg: PgStore, ready: Arc<AtomicBool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        let up = tokio::time::timeout(Duration::from_secs(2), pg.ping())
            .await
            .unwrap_or(false);
        ready.store(up, Ordering::SeqCst);
    }
}

/// Keeps `/readyz` honest about NATS after start-up (the AMQP check
/// follows the [`Link`]).
async fn watch_nats(nats: async_nats::Client, nats_ready: Arc<AtomicBool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let nats_up = nats.connection_state() == async_nats::connection::State::Connected;
        nats_ready.store(nats_up, Ordering::SeqCst);
    }
}
