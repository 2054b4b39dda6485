//! `chat-bench`: a load generator for the chat platform.
//!
//! Connects `--clients` IRC clients, spread round-robin over one or more
//! gateways, into one channel. `--senders` of them send at a total offered
//! rate into the channel; every client records what it receives. For each
//! rate in `--rates` it reports deliveries/s, end-to-end latency
//! p50/p90/p99/max, and lost, duplicated and reordered messages (per sender,
//! a message arriving after a later one from the same sender is reordered).
//!
//! The gateways' per-connection flood control must allow the per-sender rate
//! (run them with `CHAT__IRC__FLOOD_RATE=0` for a benchmark).
//!
//! With `--flood-lines N` it runs the flood scenario instead (see
//! [`flood`]): `--senders` probes send at `--probe-rate` each while one
//! extra client floods the channel with N lines, against the gateways'
//! flood control as configured.

mod client;
mod flood;
mod stats;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use stats::Report;

#[derive(Parser, Debug)]
#[command(about = "Load generator: IRC clients chatting through the platform")]
struct Args {
    /// Gateway IRC addresses, comma-separated; clients are spread over them.
    #[arg(long, default_value = "127.0.0.1:6667", value_delimiter = ',')]
    gateways: Vec<String>,
    /// Number of connected clients (all join the channel and receive).
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// How many of the clients send.
    #[arg(long, default_value_t = 5)]
    senders: usize,
    /// Offered message rates (messages/s, all senders together), one step each.
    #[arg(long, default_value = "500", value_delimiter = ',')]
    rates: Vec<f64>,
    /// Seconds of sending per step.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds to wait after a step for late deliveries before counting losses.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Stop stepping up once a step's p99 exceeds this many milliseconds.
    #[arg(long)]
    stop_above_p99_ms: Option<f64>,
    /// Channel to use (default: a fresh one per run).
    #[arg(long)]
    channel: Option<String>,
    /// Print each step's report as a JSON line too.
    #[arg(long)]
    json: bool,
    /// Run the flood scenario instead of the rate steps: an unloaded phase
    /// of `--seconds` with the probes only, then a loaded one where one
    /// extra client writes this many lines into the channel, unpaced.
    #[arg(long)]
    flood_lines: Option<u64>,
    /// Flood scenario: messages/s each probe (`--senders` of the clients)
    /// sends in both phases. Keep it at or under the gateways' `flood_rate`
    /// (10 by default) so that flood control never holds the probes back.
    #[arg(long, default_value_t = 10.0)]
    probe_rate: f64,
    /// Flood scenario: the gateway (index into `--gateways`) the flooder
    /// connects to.
    #[arg(long, default_value_t = 0)]
    flood_gateway: usize,
    /// Flood scenario: the largest loaded/unloaded ratio of the probes'
    /// p50 and p99 that still passes.
    #[arg(long, default_value_t = 2.0)]
    ratio_limit: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.senders == 0 || args.senders > args.clients || args.clients < 2 {
        bail!("need at least 2 clients and 1..=clients senders");
    }
    let run = std::process::id() % 10_000;
    let channel = args
        .channel
        .clone()
        .unwrap_or_else(|| format!("#bench-{run}"));
    let epoch = Instant::now();

    eprintln!(
        "connecting {} clients to {} ({} senders) in {channel}",
        args.clients,
        args.gateways.join(", "),
        args.senders
    );
    let mut clients = Vec::with_capacity(args.clients);
    // Connect in waves so a connect storm does not time out registrations.
    for wave in (0..args.clients).collect::<Vec<_>>().chunks(25) {
        let mut joins = Vec::new();
        for &i in wave {
            let addr = args.gateways[i % args.gateways.len()].clone();
            let nick = format!("b{run}x{i}");
            let channel = channel.clone();
            let senders = args.senders;
            let samples = args.flood_lines.is_some();
            joins.push(tokio::spawn(async move {
                client::connect(&addr, &nick, &channel, senders, samples, epoch).await
            }));
        }
        for j in joins {
            clients.push(j.await.context("client task")??);
        }
    }
    // Let every JOIN propagate before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    match args.flood_lines {
        Some(lines) => flood::run(&args, lines, &clients, &channel, run, epoch).await?,
        None => rate_steps(&args, &clients, &channel, epoch).await?,
    }
    for c in &clients {
        c.quit().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// The rate benchmark: one step per `--rates` entry.
async fn rate_steps(
    args: &Args,
    clients: &[client::Client],
    channel: &str,
    epoch: Instant,
) -> Result<()> {
    println!("{}", Report::HEADER);
    for (step, &rate) in args.rates.iter().enumerate() {
        let step = step as u32;
        let per_sender = rate / args.senders as f64;
        let started = Instant::now();
        let mut sends = Vec::new();
        for (s, c) in clients.iter().take(args.senders).enumerate() {
            let seconds = args.seconds;
            sends.push(c.send_for(s, step, channel, per_sender, seconds, epoch));
        }
        let sent: u64 = futures::future::try_join_all(sends)
            .await?
            .into_iter()
            .sum();
        let send_secs = started.elapsed().as_secs_f64();

        // Every message goes to every member except its sender.
        let receivers_per_message = (args.clients - 1) as u64;
        let expected = sent * receivers_per_message;
        let drain_until = Instant::now() + Duration::from_secs_f64(args.drain);
        while Instant::now() < drain_until {
            let got: u64 = clients.iter().map(|c| c.received(step)).sum();
            if got >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let receivers: Vec<_> = clients
            .iter()
            .map(|c| c.take_step(step, args.senders))
            .collect();
        let report = Report::merge(&receivers, rate, send_secs, sent, receivers_per_message);
        println!("{}", report.row());
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        if matches!(args.stop_above_p99_ms, Some(max) if report.p99_ms > max) {
            eprintln!(
                "p99 {:.1} ms is above {:?} ms: stopping",
                report.p99_ms, args.stop_above_p99_ms
            );
            break;
        }
    }
    Ok(())
}
