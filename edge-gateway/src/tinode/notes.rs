//! `{note}` read and received markers between Tinode sessions, carried as
//! NATS signals: they are ephemeral (who has seen what right now) and
//! concern only Tinode clients, so they do not pass the router or take a
//! room seq. One subject per room, `<prefix>.tinode.notes.<escaped room>`;
//! a session listens on the rooms it is attached to.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Signals buffered per session before the oldest are dropped.
const BUFFER: usize = 256;

/// One marker, as signalled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signal {
    /// The sender's user id and session.
    pub from: String,
    pub sid: String,
    pub what: String,
    pub seq: u64,
    /// Filled in on receipt: the topic it arrived for.
    #[serde(default, skip_serializing)]
    pub topic: String,
}

pub struct Notes {
    client: async_nats::Client,
    prefix: String,
    tx: mpsc::Sender<Signal>,
    rx: mpsc::Receiver<Signal>,
    watching: HashMap<String, JoinHandle<()>>,
}

impl Notes {
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        Self {
            client,
            prefix: prefix.to_string(),
            tx,
            rx,
            watching: HashMap::new(),
        }
    }

    fn subject(&self, room: &str) -> String {
        format!("{}.tinode.notes.{}", self.prefix, bus::names::escape(room))
    }

    /// Starts listening for the markers of `room` (attached as `topic`).
    pub fn watch(&mut self, topic: &str, room: &str) {
        let topic_name = topic.to_string();
        let task = crate::signals::forward(
            &self.client,
            self.subject(room),
            self.tx.clone(),
            move |payload| {
                let mut signal = serde_json::from_slice::<Signal>(payload).ok()?;
                signal.topic = topic_name.clone();
                Some(signal)
            },
        );
        if let Some(old) = self.watching.insert(topic.to_string(), task) {
            old.abort();
        }
    }

    pub fn unwatch(&mut self, topic: &str) {
        if let Some(task) = self.watching.remove(topic) {
            task.abort();
        }
    }

    pub fn clear(&mut self) {
        for (_, task) in self.watching.drain() {
            task.abort();
        }
    }

    pub async fn next(&mut self) -> Option<Signal> {
        self.rx.recv().await
    }

    /// Signals a marker to everyone attached to `room` (best effort).
    pub async fn publish(&self, room: &str, signal: &Signal) {
        let payload = serde_json::to_vec(signal).unwrap_or_default();
        if let Err(e) = self
            .client
            .publish(self.subject(room), payload.into())
            .await
        {
            tracing::debug!(error = %e, "tinode: publishing a note failed");
        }
    }
}

impl Drop for Notes {
    fn drop(&mut self) {
        self.clear();
    }
}
