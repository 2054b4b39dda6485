//! The flood scenario: does one client's flood slow anyone but itself?
//!
//! `--clients` observers are in one channel; the first `--senders` of them
//! ("probes") send `--probe-rate` messages/s each, and every observer
//! records the probes' end-to-end latency exactly as in the rate benchmark.
//!
//! * Phase 1 (unloaded): the probes alone for `--seconds`.
//! * Phase 2 (loaded): the same probes for the same time while one extra
//!   member of the channel, connected before phase 1 and idle until now,
//!   writes `--flood-lines` PRIVMSGs into the channel in one unpaced loop.
//!
//! The verdict compares the probes' p50 and p99 between the phases
//! (`--ratio-limit`, 2 by default), twice: over the whole loaded phase, and
//! over the probe messages sent while the flood was in effect (from its
//! start until its last line arrived or the flooder was disconnected, at
//! least [`MIN_WINDOW`]) — a flood that is over in milliseconds would
//! otherwise hide in a whole phase's percentiles. Observers also record the
//! flooder's lines, so the report says how many of them got through, at
//! what rate, and when and how the server ended the flooder's connection.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::client::{self, Client};
use crate::stats::{FloodReport, Ratio, Report, Window};
use crate::Args;

/// How long flood deliveries must stand still, once the flooder is gone,
/// before the loaded phase counts as settled.
const QUIET: Duration = Duration::from_secs(1);
/// The shortest flood window the probes' latency is also reported for: at
/// 50 probe messages/s and 49 receivers, about 2,500 deliveries.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// One JSON output line: a phase's report, the flooder's fate or the ratio,
/// told apart by `phase`.
#[derive(Serialize)]
struct Labelled<'a, T: Serialize> {
    phase: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

fn print_json<T: Serialize>(phase: &str, body: &T) -> Result<()> {
    println!("{}", serde_json::to_string(&Labelled { phase, body })?);
    Ok(())
}

/// Runs both phases over the connected `clients` (the observers) and prints
/// the report.
pub async fn run(
    args: &Args,
    lines: u64,
    clients: &[Client],
    channel: &str,
    run: u32,
    epoch: Instant,
) -> Result<()> {
    if args.probe_rate <= 0.0 {
        bail!("--probe-rate must be positive");
    }
    let addr = args
        .gateways
        .get(args.flood_gateway)
        .context("--flood-gateway is not an index into --gateways")?;
    let flooder = client::connect(addr, &format!("b{run}flood"), channel, 1, false, epoch).await?;
    // Its JOIN reaches everyone before the unloaded phase starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    eprintln!(
        "flood scenario: {} observers, {} probes x {} msg/s, a flooder on {addr} writing {lines} lines, {} s per phase",
        clients.len(),
        args.senders,
        args.probe_rate,
        args.seconds
    );
    let unloaded = probe_phase(args, clients, channel, 0, epoch).await?;
    let unloaded = settle(args, clients, 0, unloaded, None).await;
    if let Some(c) = flooder.closed() {
        bail!("the flooder was disconnected before flooding: {c:?}");
    }

    // Phase 2: the probes and the flood start together.
    let start_ns = epoch.elapsed().as_nanos() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.seconds + args.drain);
    let (probes, write) = tokio::join!(
        probe_phase(args, clients, channel, 1, epoch),
        flooder.flood(channel, lines, epoch, deadline),
    );
    let loaded = settle(args, clients, 1, probes?, Some((&flooder, write.written))).await;

    let (unloaded, _) = report(args, clients, 0, unloaded);
    let (loaded, loaded_receivers) = report(args, clients, 1, loaded);
    let seen: Vec<_> = clients.iter().map(Client::take_flood).collect();
    let observers_closed: Vec<_> = clients.iter().filter_map(Client::closed).collect();
    let fate = FloodReport::merge(
        lines,
        write,
        &seen,
        start_ns,
        flooder.closed().as_ref(),
        &observers_closed,
    );
    let flood_end = [fate.last_delivery_secs, fate.disconnected_secs]
        .into_iter()
        .flatten()
        .fold(MIN_WINDOW.as_secs_f64(), f64::max);
    let window = Window::merge(
        &loaded_receivers,
        start_ns,
        start_ns,
        start_ns + (flood_end * 1e9) as u64,
    );
    let ratio = Ratio::new(unloaded.p50_p99(), loaded.p50_p99(), args.ratio_limit);
    let window_ratio = Ratio::new(
        unloaded.p50_p99(),
        (window.p50_ms, window.p99_ms),
        args.ratio_limit,
    );

    println!("{}", PHASE_HEADER);
    println!("| unloaded {}", unloaded.row());
    println!("| loaded {}", loaded.row());
    println!(
        "| loaded, sent {:.3}-{:.3} s | | | {} | | | | | {:.2} | {:.2} | {:.2} | {:.2} |",
        window.from_secs,
        window.to_secs,
        window.deliveries,
        window.p50_ms,
        window.p90_ms,
        window.p99_ms,
        window.max_ms
    );
    for (what, r) in [("loaded", &ratio), ("flood window", &window_ratio)] {
        println!(
            "{what}/unloaded: p50 {:.2}x, p99 {:.2}x (within {}x: {})",
            r.p50_ratio,
            r.p99_ratio,
            r.limit,
            if r.within { "yes" } else { "no" }
        );
    }
    println!("{}", fate.summary());
    if args.json {
        print_json("unloaded", &unloaded)?;
        print_json("loaded", &loaded)?;
        print_json("flood_window", &window)?;
        print_json("flooder", &fate)?;
        print_json("ratio", &ratio)?;
        print_json("flood_window_ratio", &window_ratio)?;
    }
    flooder.quit().await;
    Ok(())
}

const PHASE_HEADER: &str = "| phase | probes msg/s | sent | deliveries | deliveries/s | lost | dup | reordered | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

/// What a phase's probes did: messages sent and for how long.
struct Sent {
    sent: u64,
    secs: f64,
}

/// The probes send for `--seconds` at `--probe-rate` each, tagged `step`.
async fn probe_phase(
    args: &Args,
    clients: &[Client],
    channel: &str,
    step: u32,
    epoch: Instant,
) -> Result<Sent> {
    let started = Instant::now();
    let sends = clients
        .iter()
        .take(args.senders)
        .enumerate()
        .map(|(s, c)| c.send_for(s, step, channel, args.probe_rate, args.seconds, epoch));
    let sent = futures::future::try_join_all(sends)
        .await?
        .into_iter()
        .sum();
    Ok(Sent {
        sent,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Waits (up to `--drain`) until every probe message has reached every
/// observer and, in the loaded phase, the flood has settled: every observer
/// has all `written` flood lines, or the flooder is gone and nothing more
/// of its flood arrives for [`QUIET`].
async fn settle(
    args: &Args,
    clients: &[Client],
    step: u32,
    sent: Sent,
    flood: Option<(&Client, u64)>,
) -> Sent {
    let expected = sent.sent * (clients.len() as u64 - 1);
    let until = Instant::now() + Duration::from_secs_f64(args.drain);
    let (mut last_total, mut last_change) = (u64::MAX, Instant::now());
    while Instant::now() < until {
        let probes_done = clients.iter().map(|c| c.received(step)).sum::<u64>() >= expected;
        let flood_done = match flood {
            None => true,
            Some((flooder, written)) => {
                let got: Vec<u64> = clients.iter().map(Client::flood_received).collect();
                let total = got.iter().sum::<u64>();
                if total != last_total {
                    (last_total, last_change) = (total, Instant::now());
                }
                got.iter().all(|&g| g >= written)
                    || (flooder.closed().is_some() && last_change.elapsed() >= QUIET)
            }
        };
        if probes_done && flood_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sent
}

/// The probes' report for one phase, and what each observer recorded.
fn report(
    args: &Args,
    clients: &[Client],
    step: u32,
    sent: Sent,
) -> (Report, Vec<crate::stats::Receiver>) {
    let receivers: Vec<_> = clients
        .iter()
        .map(|c| c.take_step(step, args.senders))
        .collect();
    let report = Report::merge(
        &receivers,
        args.probe_rate * args.senders as f64,
        sent.secs,
        sent.sent,
        clients.len() as u64 - 1,
    );
    (report, receivers)
}
