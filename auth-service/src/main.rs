//! `auth-service`: accounts, SASL and tokens for every gateway.
//!
//! Consumes `auth.requests` (any number of replicas share the queue) and
//! keeps accounts and login-failure counters in PostgreSQL, so replicas
//! hold no state of their own. Any failure of RabbitMQ ends the process with
//! a non-zero status (a supervisor restarts it; unacknowledged requests are
//! redelivered to another replica).

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
use bus::admin::Readiness;
use bus::topology::connect;
use clap::Parser;
use lapin::Connection;

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
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "auth-service failed");
            eprintln!("auth-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    bus::telemetry::init_tracing(&cfg.log);
    let metrics = bus::telemetry::init_metrics();
    let (trigger, shutdown) = bus::shutdown::channel();
    bus::shutdown::on_signals(trigger.clone());
    if cfg.auth.secret == DEV_SECRET {
        tracing::warn!(
            "auth.secret is the built-in development value: tokens and SCRAM states are forgeable; \
             set CHAT__AUTH__SECRET (the same in every replica)"
        );
    }

    let readiness = Readiness::default();
    let amqp_ready = readiness.register("amqp");
    let pg_ready = readiness.register("postgres");
    let admin = bus::admin::serve(
        &cfg.admin.listen,
        readiness.clone(),
        metrics,
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding the admin port {}", cfg.admin.listen))?;

    let instance = format!("auth.{:08x}", rand::random::<u32>());
    tracing::info!(%instance, "auth service starting");

    let db = tokio::time::timeout(CONNECT_TIMEOUT, Db::open(&cfg.postgres))
        .await
        .context("PostgreSQL: no answer in time")?
        .context("opening the database")?;
    pg_ready.store(true, Ordering::SeqCst);

    let conn = tokio::time::timeout(
        CONNECT_TIMEOUT,
        connect(&cfg.amqp.url, &format!("auth-service {instance}")),
    )
    .await
    .context("RabbitMQ: no answer in time")?
    .context("connecting to RabbitMQ")?;
    let conn = Arc::new(conn);
    let service =
        Arc::new(Service::new(db.clone(), cfg.auth.clone()).context("argon2 parameters")?);
    service.warm_up().await.context("preparing argon2")?;
    let watcher = tokio::spawn(watch_readiness(
        conn.clone(),
        db.clone(),
        amqp_ready.clone(),
        pg_ready,
    ));
    let pruner = tokio::spawn(prune_failures(db, cfg.auth.failure_window_secs));
    amqp_ready.store(true, Ordering::SeqCst);
    tracing::info!(admin = %cfg.admin.listen, "auth service ready");

    let result = worker::run(
        &conn,
        service,
        cfg.auth.prefetch,
        &instance,
        shutdown.clone(),
    )
    .await;
    readiness.set_draining();
    trigger.fire();
    watcher.abort();
    pruner.abort();
    close(&conn).await;
    let _ = admin.await;
    result.context("consuming auth.requests")?;
    tracing::info!("auth service stopped");
    Ok(())
}

async fn close(conn: &Connection) {
    if conn.status().connected() {
        if let Err(error) = conn.close(200, "shutting down".into()).await {
            tracing::debug!(%error, "closing the AMQP connection");
        }
    }
}

/// Keeps `/readyz` honest after start-up.
async fn watch_readiness(
    conn: Arc<Connection>,
    db: Db,
    amqp_ready: Arc<AtomicBool>,
    pg_ready: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        amqp_ready.store(conn.status().connected(), Ordering::SeqCst);
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
