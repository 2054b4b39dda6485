//! edge-gateway: terminates IRC (TCP and WebSocket), XMPP-over-WebSocket and
//! Tinode client connections, and speaks the chat bus.
//!
//! Start-up order: admin port, NATS buckets, AMQP (topology, gateway queue
//! consumer, dispatcher), the client listeners (IRC, HTTP); `/readyz` turns 200 only
//! after all of that. On SIGTERM: stop accepting, end every session
//! (QUIT published to its rooms, registry entries removed), then close.
//!
//! A RabbitMQ restart is ridden out: client connections stay up, `/readyz`
//! reports `amqp` down until the connection is re-established, what
//! clients send meanwhile is refused as usual ("could not be delivered"),
//! and the gateway and session queues are consumed again afterwards (see
//! `bus_link.rs`).

mod bus_link;
mod census;
mod config;
mod dispatch;
mod gateway;
mod heartbeat;
mod http;
mod irc;
mod metrics;
mod nickwatch;
mod redaction;
mod registry;
mod sasl;
mod sessions;
mod signals;
mod snotice;
mod text;
mod tinode;
mod typing;
mod xmpp;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bus::process::Process;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::bus_link::BusLink;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::registry::Registry;

/// How long shutdown waits for connections to end their sessions.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Parser, Debug)]
#[command(
    name = "edge-gateway",
    version,
    about = "IRC edge gateway of the chat platform"
)]
struct Args {
    /// TOML configuration file (defaults < file < CHAT__SECTION__KEY env).
    #[arg(long, env = "CHAT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    bus::process::exit_code("edge-gateway", run(args).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg: Config =
        bus::config::load(args.config.as_deref()).context("loading the configuration")?;
    if !cfg.irc.motd_file.is_empty() {
        cfg.irc.motd = std::fs::read_to_string(&cfg.irc.motd_file)
            .with_context(|| format!("reading the MOTD file {}", cfg.irc.motd_file))?;
    }
    let process = Process::start(&cfg.log, &cfg.admin, &["nats", "amqp"]).await?;
    metrics::describe();
    let shutdown = process.shutdown.clone();
    let (nats_ready, amqp_ready) = (process.check("nats"), process.check("amqp"));

    let id = cfg.gateway_id();
    tracing::info!(gateway = %id, "starting");
    let ttl = Duration::from_secs(cfg.bus.session_ttl_secs);
    let buckets = bus::kv::open(&cfg.nats, ttl)
        .await
        .context("opening the NATS buckets")?;
    let nats_client = buckets.client.clone();
    nats_ready.store(true, Ordering::SeqCst);

    let link = BusLink::connect(&cfg.amqp.url, &id, &cfg.bus)
        .await
        .context("connecting to RabbitMQ")?;
    let consumer = link
        .consume_gateway_queue()
        .await
        .context("consuming the gateway queue")?;
    let registry = Registry::new(buckets);
    registry.census.refresh_now().await;
    let gw = Arc::new(Gateway::new(
        id.clone(),
        cfg.irc.clone(),
        cfg.bus.clone(),
        link,
        registry,
    ));

    let typing = typing::Watch::new(gw.registry.nats().clone(), gw.registry.prefix());
    let dispatcher = tokio::spawn(dispatch::run(
        consumer,
        gw.sessions.clone(),
        typing,
        shutdown.clone(),
    ));
    let listener = TcpListener::bind(&cfg.irc.listen)
        .await
        .with_context(|| format!("binding the IRC listener {}", cfg.irc.listen))?;
    tracing::info!(addr = %listener.local_addr().context("listener address")?, queue = %bus::topology::gateway_queue(&id), "IRC listening");
    // TLS only with a certificate; a configured one that cannot be loaded
    // stops the start-up rather than leaving 6697 silently closed.
    let tls = if cfg.irc.tls_cert.is_empty() || cfg.irc.tls_key.is_empty() {
        None
    } else {
        let acceptor = irc::tls::acceptor(
            std::path::Path::new(&cfg.irc.tls_cert),
            std::path::Path::new(&cfg.irc.tls_key),
        )
        .context("loading the IRC TLS certificate")?;
        let tls_listener = TcpListener::bind(&cfg.irc.tls_listen)
            .await
            .with_context(|| format!("binding the IRC TLS listener {}", cfg.irc.tls_listen))?;
        tracing::info!(addr = %tls_listener.local_addr().context("TLS listener address")?, cert = %cfg.irc.tls_cert, "IRC over TLS listening");
        Some((tls_listener, acceptor))
    };
    // The link logs losses and recoveries of the connection and keeps
    // this check in step; a lost connection is re-established.
    gw.link.report_to(amqp_ready);
    // NATS reconnects by itself; readiness follows its state.
    {
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tick.tick() => {
                        let up = nats_client.connection_state() == async_nats::connection::State::Connected;
                        nats_ready.store(up, Ordering::SeqCst);
                    }
                }
            }
        });
    }
    tokio::spawn(heartbeat::run(gw.clone(), shutdown.clone()));

    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);
    let http = TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("binding the HTTP listener {}", cfg.http.listen))?;
    tracing::info!(addr = %http.local_addr().context("HTTP listener address")?, domain = %cfg.xmpp.domain, "XMPP over WebSocket listening on /xmpp");
    tracing::info!("Tinode listening on /v0/channels and /v0/channels/lp");
    tracing::info!(
        path = irc::websocket::PATH,
        "IRC over WebSocket listening (text.ircv3.net, binary.ircv3.net)"
    );
    let app = xmpp::routes(
        gw.clone(),
        cfg.xmpp.clone(),
        shutdown.clone(),
        drain_tx.clone(),
    )
    .merge(tinode::routes(
        gw.clone(),
        cfg.tinode.clone(),
        &cfg.nats.prefix,
        shutdown.clone(),
        drain_tx.clone(),
    ))
    .merge(irc::websocket::routes(
        gw.clone(),
        shutdown.clone(),
        drain_tx.clone(),
    ));
    let http_server = tokio::spawn(http::serve(http, app, shutdown.clone()));
    let tls_server = tls.map(|(l, acceptor)| {
        tokio::spawn(irc::tls::serve(
            l,
            acceptor,
            gw.clone(),
            shutdown.clone(),
            drain_tx.clone(),
        ))
    });
    let server = tokio::spawn(irc::serve(listener, gw.clone(), shutdown.clone(), drain_tx));

    let mut stop = shutdown.clone();
    let dispatcher_failed = tokio::select! {
        _ = stop.wait() => false,
        result = dispatcher => {
            match result {
                Ok(Ok(())) => false,
                Ok(Err(e)) => { tracing::error!(error = %e, "dispatcher stopped"); true }
                Err(e) => { tracing::error!(error = %e, "dispatcher panicked"); true }
            }
        }
    };
    process.drain();
    tracing::info!(
        connections = gw.connections(),
        "shutting down: ending sessions"
    );
    let _ = server.await;
    if let Some(t) = tls_server {
        let _ = t.await;
    }
    let _ = http_server.await;
    if tokio::time::timeout(DRAIN_TIMEOUT, drain_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(left = gw.connections(), "drain timed out");
    }
    gw.link.close().await;
    let _ = process.admin.await;
    if dispatcher_failed {
        bail!("stopped because the AMQP side failed");
    }
    tracing::info!("stopped");
    Ok(())
}
