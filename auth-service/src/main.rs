//! `auth-service`: accounts, SASL and tokens for every gateway.
//!
//! Consumes `auth.requests` (any number of replicas share the queue) and
//! keeps accounts and login-failure counters in PostgreSQL, so replicas
//! hold no state of their own. A RabbitMQ restart is ridden out: the
//! connection is re-established by a [`Link`] (`/readyz` reports `amqp`
//! down meanwhile) and the worker consumes again; unacknowledged requests
//! are redelivered (to this replica or another). Any other failure of
//! RabbitMQ ends the process with a non-zero status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use auth_service::config::{Config, DEV_SECRET};
use auth_service::db::Db;
use auth_service::service::Service;
use auth_service::worker;
use bus::process::Process;
use bus::recovery::{Link, Live};
use bus::topology::declare_auth_queue;
use clap::Parser;

/// How long connecting to RabbitMQ or PostgreSQL may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Parser)]
#[command(
    name = "auth-service",
    version,
    about = "The chat auth service: accounts, SASL, registration, tokens"
)]
struct Args {
    /// TOML configuration file (else `CHAT_CONFIG`, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    bus::process::exit_code("auth-service", run(args).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    let process = Process::start(&cfg.log, &cfg.admin, &["amqp", "postgres"]).await?;
    if cfg.auth.secret == DEV_SECRET {
        tracing::warn!(
            "auth.secret is the built-in development value: tokens and SCRAM states are forgeable; \
             set CHAT__AUTH__SECRET (the same in every replica)"
        );
    }

    let instance = format!("auth.{:08x}", rand::random::<u32>());
    tracing::info!(%instance, "auth service starting");

    let db = tokio::time::timeout(CONNECT_TIMEOUT, Db::open(&cfg.postgres))
        .await
        .context("PostgreSQL: no answer in time")?
        .context("opening the database")?;
    process.set("postgres", true);

    // Declared on every (re)connection, before the worker consumes.
    let setup = |live: Live| async move {
        let ch = live.conn.create_channel().await?;
        declare_auth_queue(&ch).await?;
        let _ = ch.close(200, "declared".into()).await;
        Ok(())
    };
    let link = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Link::connect(&cfg.amqp.url, &format!("auth-service {instance}"), setup),
    )
    .await
    .context("RabbitMQ: no answer in time")?
    .context("connecting to RabbitMQ")?;
    let service =
        Arc::new(Service::new(db.clone(), cfg.auth.clone()).context("argon2 parameters")?);
    service.warm_up().await.context("preparing argon2")?;
    let watcher = tokio::spawn(watch_postgres(db.clone(), process.check("postgres")));
    let pruner = tokio::spawn(prune_failures(db, cfg.auth.failure_window_secs));
    link.report_to(process.check("amqp"));
    tracing::info!(admin = %cfg.admin.listen, "auth service ready");

    let result = worker::run(
        &link,
        service,
        cfg.auth.prefetch,
        &instance,
        process.shutdown.clone(),
    )
    .await;
    process.drain();
    watcher.abort();
    pruner.abort();
    link.close().await;
    let _ = process.admin.await;
    result.context("consuming auth.requests")?;
    tracing::info!("auth service stopped");
    Ok(())
}

/// Keeps `/readyz` honest about PostgreSQL after start-up (the AMQP check
/// follows the [`Link`]).
async fn watch_postgres(db: Db, pg_ready: Arc<AtomicBool>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        pg_ready.store(db.ping().await, Ordering::SeqCst);
    }
}

/// Every minute, drops login-failure counters whose window has passed
/// (every replica does it; the DELETE is idempotent).
async fn prune_failures(db: Db, window_secs: u64) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        match db.prune_failures(window_secs).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "pruned old login-failure counters"),
            Err(error) => tracing::warn!(%error, "pruning login-failure counters"),
        }
    }
}
