//! The sweeper: lists the live sessions every `sweep_interval_secs` and
//! hands the list to every partition task, which expires the members of
//! sessions that are gone (a killed gateway stops refreshing its sessions'
//! entries, so they age out of the sessions bucket).

use std::sync::Arc;
use std::time::Duration;

use bus::shutdown::Shutdown;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::partition::Sweep;
use crate::store::Store;

/// Runs until shutdown. A listing error skips the round: an error must
/// never be read as "nobody is alive", which would make everyone QUIT.
pub async fn run(
    store: Store,
    partitions: Vec<mpsc::Sender<Sweep>>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate: let the partitions start first
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = ticker.tick() => {}
        }
        let started = bus::now_ms();
        let live = match store.live_sessions().await {
            Ok(live) => Arc::new(live),
            Err(error) => {
                tracing::warn!(%error, "cannot list live sessions, sweep skipped");
                continue;
            }
        };
        let sweep = Sweep { live, started };
        for tx in &partitions {
            // A partition still busy with the previous sweep (or a long
            // batch) skips this one rather than queueing them up.
            let _ = tx.try_send(sweep.clone());
        }
    }
}
