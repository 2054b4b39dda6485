//! `{note}` read and received markers between Tinode sessions, carried as
//! NATS signals: they are ephemeral (who has seen what right now) and
//! concern only Tinode clients, so they do not pass the router or take a
//! room seq. One subject per room, `<prefix>.tinode.notes.<escaped room>`;
//! a session listens on the rooms it is attached to.

use crate::signals::Followers;
use serde::{Deserialize, Serialize};

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
    prefix: String,
    topics: Followers<Signal>,
}

impl Notes {
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            topics: Followers::new(client, BUFFER),
        }
    }

    fn subject(&self, room: &str) -> String {
        format!("{}.tinode.notes.{}", self.prefix, bus::names::escape(room))
    }

    /// Starts listening for the markers of `room` (attached as `topic`).
    pub fn watch(&mut self, topic: &str, room: &str) {
        let topic_name = topic.to_string();
        let subject = self.subject(room);
        self.topics.follow(topic, subject, move |payload| {
            let mut signal = serde_json::from_slice::<Signal>(payload).ok()?;
            signal.topic = topic_name.clone();
            Some(signal)
        });
    }

    pub fn unwatch(&mut self, topic: &str) {
        self.topics.unfollow(topic);
    }

    pub fn clear(&mut self) {
        self.topics.clear();
    }

    pub async fn next(&mut self) -> Option<Signal> {
        self.topics.next().await
    }

    /// Signals a marker to everyone attached to `room` (best effort).
    pub async fn publish(&self, room: &str, signal: &Signal) {
        let payload = serde_json::to_vec(signal).unwrap_or_default();
        if let Err(e) = self
            .topics
            .client()
            .publish(self.subject(room), payload.into())
            .await
        {
            tracing::debug!(error = %e, "tinode: publishing a note failed");
        }
    }
}
