//! The history service's configuration: the shared sections plus
//! `[history]`. Loaded with [`bus::config::load`] (defaults < TOML file <
//! `CHAT__…` environment), so `CHAT__HISTORY__BATCH_MAX=100` works like every
//! other key.

use bus::config::{AdminConfig, AmqpConfig, BusConfig, LogConfig, NatsConfig};
use bus::pg::PgConfig;
use serde::{Deserialize, Serialize};

/// The history service's admin port unless configured otherwise.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9102";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub amqp: AmqpConfig,
    pub nats: NatsConfig,
    pub postgres: PgConfig,
    pub bus: BusConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub history: HistoryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            amqp: AmqpConfig::default(),
            nats: NatsConfig::default(),
            postgres: PgConfig::default(),
            bus: BusConfig::default(),
            admin: AdminConfig::on(DEFAULT_ADMIN_LISTEN),
            log: LogConfig::default(),
            history: HistoryConfig::default(),
        }
    }
}

/// `[history]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryConfig {
    /// Most deliveries written in one transaction.
    pub batch_max: u16,
    /// How long to wait for more deliveries to fill a batch once the first
    /// one arrived (ms). Zero writes whatever is already there.
    pub batch_wait_ms: u64,
    /// AMQP prefetch of each stored queue (at least `batch_max`): deliveries
    /// waiting in the consumer while the previous batch commits.
    pub prefetch: u16,
    /// How many history requests one replica works on at once.
    pub request_prefetch: u16,
    /// Cap on any requested page size.
    pub max_page: u32,
    /// Delete items older than this many days (0: keep forever).
    pub retention_days: u32,
    /// Keep at most this many newest items per conversation (0: unlimited).
    pub retention_max_per_conversation: u32,
    /// How often the retention task runs.
    pub retention_interval_secs: u64,
    /// How long a room fetch keeps re-reading the room record before it
    /// refuses a requester who is not (yet) listed as a member: a gateway
    /// may ask right after it saw its own JOIN, before the router wrote
    /// the record.
    pub membership_retry_ms: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            batch_max: 500,
            batch_wait_ms: 20,
            prefetch: 1000,
            request_prefetch: 32,
            max_page: 1000,
            retention_days: 0,
            retention_max_per_conversation: 0,
            retention_interval_secs: 300,
            membership_retry_ms: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_working_setup() {
        let c = Config::default();
        assert_eq!(c.admin.listen, DEFAULT_ADMIN_LISTEN);
        assert_eq!(c.history.batch_max, 500);
        assert_eq!(c.history.max_page, 1000);
        assert!(c.history.prefetch >= c.history.batch_max);
        assert!(c.postgres.create_database);
    }
}
