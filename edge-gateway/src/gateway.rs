//! What every connection task shares: configuration, the bus link, the
//! NATS registry, the local sessions and a few local counters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bus::config::BusConfig;
use chrono::{DateTime, Utc};

use crate::bus_link::BusLink;
use crate::config::IrcConfig;
use crate::registry::Registry;
use crate::sessions::Sessions;

/// The version clients see (`chat-<version>`).
pub const VERSION: &str = concat!("chat-", env!("CARGO_PKG_VERSION"));

pub struct Gateway {
    pub id: String,
    pub irc: IrcConfig,
    pub bus: BusConfig,
    pub link: BusLink,
    pub registry: Registry,
    pub sessions: Arc<Sessions>,
    pub started: DateTime<Utc>,
    /// Open client connections (registered or not).
    connections: AtomicUsize,
    /// The most registered sessions this gateway has had at once (265).
    max_sessions: AtomicUsize,
}

impl Gateway {
    pub fn new(
        id: String,
        irc: IrcConfig,
        bus: BusConfig,
        link: BusLink,
        registry: Registry,
    ) -> Self {
        Self {
            id,
            irc,
            bus,
            link,
            registry,
            sessions: Arc::new(Sessions::default()),
            started: Utc::now(),
            connections: AtomicUsize::new(0),
            max_sessions: AtomicUsize::new(0),
        }
    }

    /// Counts a new connection if under `max_connections`; the returned
    /// guard uncounts it when dropped.
    pub fn admit(self: &Arc<Self>) -> Option<ConnectionGuard> {
        let n = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.irc.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        crate::metrics::connections(n);
        Some(ConnectionGuard { gw: self.clone() })
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Records the current session count as a candidate maximum; returns the maximum.
    pub fn note_sessions(&self) -> usize {
        let now = self.sessions.len();
        self.max_sessions.fetch_max(now, Ordering::SeqCst).max(now)
    }
}

/// Keeps a connection counted while alive.
pub struct ConnectionGuard {
    gw: Arc<Gateway>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let n = self
            .gw
            .connections
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        crate::metrics::connections(n);
    }
}
