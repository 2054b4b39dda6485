//! The service's configuration: the shared sections, `[postgres]` as
//! [`bus::pg::PgConfig`] (with `create_database`), and `[auth]`.

use bus::config::{AdminConfig, AmqpConfig, LogConfig};
pub use bus::pg::PgConfig;
use serde::{Deserialize, Serialize};

/// The development secret. Tokens and SCRAM states signed with it are
/// forgeable by anyone who reads this file, hence the start-up warning.
pub const DEV_SECRET: &str = "chat-dev-secret-change-me";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub amqp: AmqpConfig,
    pub postgres: PgConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            amqp: AmqpConfig::default(),
            postgres: PgConfig::default(),
            // The auth service's own admin port (see docs/architecture.md).
            admin: AdminConfig::on("127.0.0.1:9103"),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

/// `[auth]`: credentials, rate limits, tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HMAC key for tokens and SCRAM states; every replica must share it.
    pub secret: String,
    pub token_ttl_secs: u64,
    pub scram_iterations: u32,
    /// How long a SCRAM exchange may take between its two steps.
    pub scram_state_ttl_secs: u64,
    /// argon2id cost. The defaults are the OWASP minimum; test setups with
    /// debug builds may lower them.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub max_failures: u32,
    pub max_failures_per_addr: u32,
    pub failure_window_secs: u64,
    pub lockout_secs: u64,
    /// AMQP prefetch: how many requests one replica works on at once.
    pub prefetch: u16,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            secret: DEV_SECRET.into(),
            token_ttl_secs: 2_592_000,
            scram_iterations: 4096,
            scram_state_ttl_secs: 60,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            max_failures: 10,
            max_failures_per_addr: 50,
            failure_window_secs: 300,
            lockout_secs: 60,
            prefetch: 32,
        }
    }
}
