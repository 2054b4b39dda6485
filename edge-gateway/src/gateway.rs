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
    /// Open connections per client address.
    by_addr: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The gateway has `max_connections`.
    Full,
    /// The address has `max_connections_per_addr`.
    TooManyFromAddress,
}

impl Refused {
    /// The reason clients are told (IRC's `ERROR :Closing Link` text).
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Full => "Too many connections",
            Refused::TooManyFromAddress => "Too many connections from your address",
        }
    }
}

impl Gateway {
    pub fn new(
        id: String,
        irc: IrcConfig,
        bus: BusConfig,
        link: BusLink,
        registry: Registry,
    ) -> Self {
        let id_for_sessions = id.clone();
        Self {
            id,
            irc,
            bus,
            link,
            registry,
            sessions: Arc::new(Sessions::new(&id_for_sessions)),
            started: Utc::now(),
            connections: AtomicUsize::new(0),
            max_sessions: AtomicUsize::new(0),
            by_addr: Default::default(),
        }
    }

    /// Counts a new connection from `addr` (the client's address as
    /// [`crate::irc::validate::host_of`] writes it, whatever the protocol)
    /// if the gateway is under `max_connections` and the address under
    /// `max_connections_per_addr` (addresses in `connection_limit_exempt`
    /// have no limit of their own); the returned guard uncounts it when
    /// dropped.
    pub fn admit(self: &Arc<Self>, addr: &str) -> Result<ConnectionGuard, Refused> {
        let per_addr = self.irc.max_connections_per_addr;
        let exempt = per_addr == 0
            || self
                .irc
                .connection_limit_exempt
                .split(',')
                .any(|a| a.trim() == addr);
        {
            let mut by_addr = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
            let count = by_addr.entry(addr.to_string()).or_insert(0);
            if !exempt && *count >= per_addr {
                if *count == 0 {
                    by_addr.remove(addr);
                }
                crate::metrics::connection_refused("per_address");
                return Err(Refused::TooManyFromAddress);
            }
            *count += 1;
        }
        let n = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.irc.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            self.release_addr(addr);
            crate::metrics::connection_refused("full");
            return Err(Refused::Full);
        }
        crate::metrics::connections(n);
        Ok(ConnectionGuard {
            gw: self.clone(),
            addr: addr.to_string(),
        })
    }

    fn release_addr(&self, addr: &str) {
        let mut by_addr = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = by_addr.get_mut(addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_addr.remove(addr);
            }
        }
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
    addr: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let n = self
            .gw
            .connections
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        self.gw.release_addr(&self.addr);
        crate::metrics::connections(n);
    }
}
