//! `history-service`: message history for every gateway.
//!
//! Consumes `history.events` and `history.requests` (replicas compete) and
//! `history.direct` (one active replica at a time), keeps everything in
//! PostgreSQL, and reads room membership from NATS. A RabbitMQ restart is
//! ridden out: the connection is re-established (and the queues declared
//! again) by a [`Link`], `/readyz` reports `amqp` down meanwhile, and each
//! consumer subscribes again; unacknowledged deliveries are redelivered and
//! their writes are idempotent. Any other failure of RabbitMQ ends the
//! process with a non-zero status (a supervisor restarts it); PostgreSQL
//! failures are retried with the deliveries left in the queues.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bus::process::Process;
use bus::recovery::{Link, Live};
use bus::topology::{declare_core, declare_history_queues};
use clap::Parser;
use history_service::access::Membership;
use history_service::config::Config;
use history_service::consume::{Consumption, Settings, Signals};
use history_service::metrics::Source;
use history_service::requests::{self, Handler};
use history_service::store::retention::{self, Policy};
use history_service::store::Store;
use tokio::task::JoinSet;

/// How long connecting to RabbitMQ, NATS or PostgreSQL may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the consumers get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "history-service",
    version,
    about = "The chat history service: stores room events and direct messages, answers history queries"
)]
struct Args {
    /// TOML configuration file (else `CHAT_CONFIG`, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    bus::process::exit_code("history-service", run(args).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    if cfg.history.batch_max == 0 {
        bail!("history.batch_max must be at least 1");
    }
    let process = Process::start(&cfg.log, &cfg.admin, &["amqp", "postgres", "nats"]).await?;
    let instance = format!("history.{:08x}", rand::random::<u32>());
    tracing::info!(%instance, "history service starting");

    let store = tokio::time::timeout(CONNECT_TIMEOUT, Store::open(&cfg.postgres))
        .await
        .context("PostgreSQL: no answer in time")?
        .context("opening the history database")?;
    process.set("postgres", true);

    let session_ttl = Duration::from_secs(cfg.bus.session_ttl_secs);
    let buckets = tokio::time::timeout(CONNECT_TIMEOUT, bus::kv::open(&cfg.nats, session_ttl))
        .await
        .with_context(|| format!("NATS at {}: no answer in {CONNECT_TIMEOUT:?}", cfg.nats.url))?
        .with_context(|| format!("NATS at {}", cfg.nats.url))?;
    process.set("nats", true);

    let partitions = cfg.bus.partitions;
    // Declared on every (re)connection, before any consumer subscribes.
    // Idempotent, so start order does not matter: the rooms exchange must
    // exist before history.events can be bound to it.
    let setup = move |live: Live| async move {
        let ch = live.conn.create_channel().await?;
        declare_core(&ch, partitions).await?;
        declare_history_queues(&ch).await?;
        let _ = ch.close(200, "declared".into()).await;
        Ok(())
    };
    let link = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Link::connect(&cfg.amqp.url, &format!("history-service {instance}"), setup),
    )
    .await
    .context("RabbitMQ: no answer in time")?
    .context("connecting to RabbitMQ and declaring the history queues")?;

    let h = &cfg.history;
    let settings = Settings {
        batch_max: usize::from(h.batch_max),
        batch_wait: Duration::from_millis(h.batch_wait_ms),
        prefetch: h.prefetch,
    };
    let pg_ready = process.check("postgres");
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    for source in [Source::Events, Source::Direct] {
        let signals = Signals {
            nats: buckets.client.clone(),
            prefix: cfg.nats.prefix.clone(),
        };
        let consumption = Consumption::new(
            source,
            store.clone(),
            settings,
            pg_ready.clone(),
            Some(signals),
        );
        let link = link.clone();
        let tag = format!("{instance}.{}", source.label());
        let stop = process.shutdown.clone();
        tasks.spawn(async move {
            consumption
                .run(&link, &tag, stop)
                .await
                .with_context(|| format!("consuming history.{}", source.label()))
        });
    }
    let access = Membership::new(
        buckets.rooms.clone(),
        Duration::from_millis(h.membership_retry_ms),
    );
    let handler = Arc::new(Handler::new(store.clone(), access, h.max_page));
    {
        let link = link.clone();
        let tag = format!("{instance}.requests");
        let stop = process.shutdown.clone();
        let prefetch = h.request_prefetch;
        tasks.spawn(async move {
            requests::run(&link, handler, prefetch, &tag, stop)
                .await
                .context("consuming history.requests")
        });
    }
    let policy = Policy {
        max_age: (h.retention_days > 0)
            .then(|| Duration::from_secs(u64::from(h.retention_days) * 86_400)),
        max_per_conversation: (h.retention_max_per_conversation > 0)
            .then_some(h.retention_max_per_conversation),
    };
    let trimmer = tokio::spawn(retention::run(
        store.clone(),
        policy,
        Duration::from_secs(h.retention_interval_secs),
        process.shutdown.clone(),
    ));
    let watcher = tokio::spawn(watch_readiness(
        store,
        buckets.client.clone(),
        pg_ready,
        process.check("nats"),
    ));
    link.report_to(process.check("amqp"));
    tracing::info!(admin = %cfg.admin.listen, "history service ready");

    let mut failure = None;
    let mut stop = process.shutdown.clone();
    tokio::select! {
        _ = stop.wait() => {}
        Some(done) = tasks.join_next() => failure = task_failure(done),
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
        Err(_) => tracing::warn!("consumers did not stop in time"),
    }
    watcher.abort();
    trimmer.abort();
    link.close().await;
    let _ = process.admin.await;
    match failure {
        Some(error) => Err(error),
        None => {
            tracing::info!("history service stopped");
            Ok(())
        }
    }
}

fn task_failure(done: Result<anyhow::Result<()>, tokio::task::JoinError>) -> Option<anyhow::Error> {
    match done {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(join) => Some(anyhow::anyhow!("a consumer task died: {join}")),
    }
}

/// Keeps `/readyz` honest about PostgreSQL and NATS after start-up (the
/// AMQP check follows the [`Link`]).
async fn watch_readiness(
    store: Store,
    nats: async_nats::Client,
    pg_ready: Arc<AtomicBool>,
    nats_ready: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let ping = tokio::time::timeout(Duration::from_secs(2), store.ping()).await;
        pg_ready.store(matches!(ping, Ok(true)), Ordering::SeqCst);
        let nats_up = nats.connection_state() == async_nats::connection::State::Connected;
        nats_ready.store(nats_up, Ordering::SeqCst);
    }
}
