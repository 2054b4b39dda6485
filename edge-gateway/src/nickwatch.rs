//! Nick claims as they come and go, for IRC MONITOR: one watcher of the
//! nicks bucket per gateway, started by the first client that monitors a
//! nick, fanned out to every monitoring connection (each keeps only the
//! nicks it watches).
//!
//! MONITOR watches nicks, not accounts, so the nicks bucket is the source
//! rather than the `presence` signal (published for accounts only): a
//! claim put is "online", its delete "offline", and a nick change is both.
//! A claim that merely ages out (its gateway died) leaves no watch event;
//! the watching client learns of it at its next `MONITOR S`.

use std::sync::OnceLock;
use std::time::Duration;

use async_nats::jetstream::kv::{Operation, Store};
use bus::schema::NickClaim;
use futures::StreamExt;
use tokio::sync::broadcast;

/// Changes buffered per receiver before it lags (then it re-queries).
const CHANNEL: usize = 1024;

/// One change to the nicks bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickChange {
    /// `key` (see [`bus::kv::nick_key`]) is claimed, as `nick`.
    Claimed { key: String, nick: String },
    /// `key` is free.
    Released { key: String },
    /// The watch restarted: changes may have been missed.
    Resync,
}

#[derive(Default)]
pub struct NickWatch {
    tx: OnceLock<broadcast::Sender<NickChange>>,
}

impl NickWatch {
    /// A receiver of every change from now on; the first call starts the
    /// watcher task (it runs for the gateway's life).
    pub fn subscribe(&self, nicks: &Store) -> broadcast::Receiver<NickChange> {
        self.tx
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(CHANNEL);
                tokio::spawn(watch(nicks.clone(), tx.clone()));
                tx
            })
            .subscribe()
    }
}

async fn watch(nicks: Store, tx: broadcast::Sender<NickChange>) {
    let mut first = true;
    loop {
        match nicks.watch_all().await {
            Ok(mut stream) => {
                if !first {
                    let _ = tx.send(NickChange::Resync);
                }
                first = false;
                while let Some(entry) = stream.next().await {
                    let Ok(entry) = entry else { break };
                    let change = match entry.operation {
                        Operation::Put => match serde_json::from_slice::<NickClaim>(&entry.value) {
                            Ok(claim) => NickChange::Claimed {
                                key: entry.key,
                                nick: claim.nick,
                            },
                            Err(_) => continue,
                        },
                        Operation::Delete | Operation::Purge => {
                            NickChange::Released { key: entry.key }
                        }
                    };
                    // No receiver: nobody monitors right now.
                    let _ = tx.send(change);
                }
                tracing::warn!("the nicks watch ended; restarting it");
            }
            Err(e) => tracing::warn!(error = %e, "watching the nicks bucket failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
