//! Writing registered rooms through to PostgreSQL, off the batch path.
//!
//! A partition hands each batch's changes ([`Persist`]) to one writer task
//! after the batch's events are confirmed and its records are in NATS; the
//! batch does not wait for the database. So PostgreSQL being slow or down
//! never delays a room's events, and never stops a partition: a failed
//! write is logged, counted (`router_pg_failures_total`) and retried with
//! a growing pause, and while it waits newer changes of the same room
//! replace the older one (only the latest state of a room matters, and the
//! revision guard makes an out-of-date write harmless anyway). The live
//! state is in NATS meanwhile; what a router crash in that window loses
//! is only this copy's freshness (the next router writes a live room's
//! newer state again, see [`crate::rooms::Rooms::load_registry`]).
//!
//! On shutdown the task is given a few seconds to write what is pending.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::pgstore::{PgStore, Written};
use crate::registered::Persist;

/// How long one write may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Where partitions send their changes. Cloned into every partition; the
/// task ends once every clone is dropped and what is pending is written.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Persist>,
}

impl Writer {
    pub fn send(&self, change: Persist) {
        metrics::gauge!("router_pg_pending").increment(1.0);
        if self.tx.send(change).is_err() {
            metrics::gauge!("router_pg_pending").decrement(1.0);
            tracing::error!(
                "the PostgreSQL writer has stopped; a registered room's change is not written"
            );
        }
    }
}

/// Starts the writer task.
pub fn spawn(store: PgStore) -> (Writer, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Writer { tx }, tokio::spawn(run(store, rx)))
}

async fn run(store: PgStore, mut rx: mpsc::UnboundedReceiver<Persist>) {
    let mut pending: BTreeMap<String, Persist> = BTreeMap::new();
    let mut pause = RETRY_FIRST;
    let mut open = true;
    loop {
        if pending.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(change) => take(&mut pending, change),
                None => return,
            }
        }
        // Whatever else arrived meanwhile replaces older changes.
        loop {
            match rx.try_recv() {
                Ok(change) => take(&mut pending, change),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let Some((room, change)) = pending.pop_first() else {
            continue;
        };
        let result = tokio::time::timeout(WRITE_TIMEOUT, store.write(&change)).await;
        match result {
            Ok(Ok(written)) => {
                metrics::gauge!("router_pg_pending").decrement(1.0);
                let outcome = match written {
                    Written::Stored => "stored",
                    Written::Stale => "stale",
                };
                metrics::counter!("router_pg_writes_total", "outcome" => outcome).increment(1);
                tracing::debug!(%room, outcome, "registered room written");
                pause = RETRY_FIRST;
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {WRITE_TIMEOUT:?}"),
                };
                metrics::counter!("router_pg_failures_total", "op" => "write").increment(1);
                tracing::warn!(%room, %error, retry_in = ?pause, "writing a registered room to PostgreSQL failed");
                // Keep it unless a newer change of the room arrived.
                match pending.entry(room) {
                    Entry::Occupied(_) => {
                        metrics::gauge!("router_pg_pending").decrement(1.0);
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(change);
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Adds a change, replacing an older one of the same room.
fn take(pending: &mut BTreeMap<String, Persist>, change: Persist) {
    if pending.insert(change.room().to_string(), change).is_some() {
        metrics::gauge!("router_pg_pending").decrement(1.0);
    }
}
