//! The router's configuration: the shared sections plus `[router]`.
//!
//! Loaded with [`bus::config::load`] (defaults < TOML file < `CHAT__…`
//! environment), so `CHAT__ROUTER__SWEEP_INTERVAL_SECS=1` works like every
//! other key. `[postgres]` is the same section the auth and history
//! services read (`CHAT__POSTGRES__URL`): registered rooms are kept in the
//! shared database, in the router's own tables.

use bus::config::{AdminConfig, AmqpConfig, BusConfig, LogConfig, NatsConfig};
use bus::pg::PgConfig;
use serde::{Deserialize, Serialize};

/// The router's admin port unless configured otherwise.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9101";

/// Everything the router process reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub router: RouterConfig,
    pub amqp: AmqpConfig,
    pub nats: NatsConfig,
    pub bus: BusConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub postgres: PgConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            router: RouterConfig::default(),
            amqp: AmqpConfig::default(),
            nats: NatsConfig::default(),
            bus: BusConfig::default(),
            admin: AdminConfig::on(DEFAULT_ADMIN_LISTEN),
            log: LogConfig::default(),
            postgres: PgConfig::default(),
        }
    }
}

/// The `[router]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RouterConfig {
    /// A name for this router in logs and connection names. The default is
    /// random so that two routers started without configuration differ.
    pub id: String,
    /// How often live sessions are listed to expire members of dead sessions.
    pub sweep_interval_secs: u64,
    /// Most deliveries handled (and the prefetch) per partition batch.
    pub batch_max: u16,
    /// The QUIT reason shown for a member whose session expired.
    pub quit_reason_expired: String,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            id: format!("router-{:08x}", rand::random::<u32>()),
            sweep_interval_secs: 5,
            batch_max: 256,
            quit_reason_expired: "Connection timed out".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_working_setup() {
        let c = Config::default();
        assert!(c.router.id.starts_with("router-"));
        assert_eq!(c.router.id.len(), "router-".len() + 8);
        assert_eq!(c.router.batch_max, 256);
        assert_eq!(c.admin.listen, DEFAULT_ADMIN_LISTEN);
        assert_eq!(c.postgres.url, "postgres://postgres@127.0.0.1:5432/chat");
        assert!(c.postgres.create_database);
    }
}
