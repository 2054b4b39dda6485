//! Layered configuration: built-in defaults < a TOML file < `CHAT__…` environment.
//!
//! Every process describes its whole configuration as one `serde` struct whose
//! `Default` is a working developer setup, so a process starts with no file at
//! all. A TOML file (given with `--config` or `CHAT_CONFIG`) overrides some of
//! it, and environment variables override that: `CHAT__IRC__LISTEN=…` sets
//! `irc.listen`, `CHAT__BUS__PARTITIONS=8` sets `bus.partitions`.

use std::path::Path;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The environment variable prefix (followed by the `__` separator).
pub const ENV_PREFIX: &str = "CHAT";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] ::config::ConfigError),
}

/// Loads `T` from its defaults, then `file` (if any), then the environment.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut builder =
        ::config::Config::builder().add_source(::config::Config::try_from(&T::default())?);
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CHAT_CONFIG").map(Into::into));
    if let Some(path) = file {
        builder = builder.add_source(
            ::config::File::from(path)
                .format(::config::FileFormat::Toml)
                .required(true),
        );
    }
    builder = builder.add_source(
        ::config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    Ok(builder.build()?.try_deserialize()?)
}

/// RabbitMQ connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AmqpConfig {
    /// AMQP URI including the vhost (`%2f` is the default vhost `/`).
    pub url: String,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        }
    }
}

/// NATS connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsConfig {
    pub url: String,
    /// Prefix of every bucket name, so that several deployments (or test
    /// runs) can share one NATS server: buckets are `<prefix>_sessions`, …
    pub prefix: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "chat".into(),
        }
    }
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresConfig {
    /// A libpq-style URL: `postgres://user@host:port/database`.
    pub url: String,
    /// Connection pool size.
    pub pool_size: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/chat".into(),
            pool_size: 8,
        }
    }
}

/// Settings every process must agree on about the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BusConfig {
    /// Number of intent partitions (`router.intent.0 …`). Must be the same
    /// in every gateway and router of a deployment.
    pub partitions: u16,
    /// How long a live session's registry entry and nick claim survive
    /// without a heartbeat. A gateway killed with SIGKILL has its users
    /// QUIT after at most about this long.
    pub session_ttl_secs: u64,
    /// `x-expires` of a per-session queue: the resume window after a socket
    /// is gone.
    pub session_queue_expires_secs: u64,
    /// `x-max-length` of a per-session queue.
    pub session_queue_max_len: u32,
    /// `x-expires` of a gateway's room-traffic queue once its gateway is gone.
    pub gateway_queue_expires_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            partitions: 16,
            session_ttl_secs: 30,
            session_queue_expires_secs: 300,
            session_queue_max_len: 10_000,
            gateway_queue_expires_secs: 60,
        }
    }
}

/// The admin HTTP port (`/healthz`, `/readyz`, `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    pub listen: String,
}

impl AdminConfig {
    pub fn on(listen: &str) -> Self {
        Self {
            listen: listen.into(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self::on("127.0.0.1:9100")
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `human` (default) or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `info,edge_gateway=debug`;
    /// `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Sample {
        bus: BusConfig,
        admin: AdminConfig,
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("bus-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[bus]\npartitions = 4\nsession_ttl_secs = 9\n").unwrap();
        // SAFETY: this test is the only one in the crate touching this variable.
        unsafe { std::env::set_var("CHAT__BUS__SESSION_TTL_SECS", "7") };
        let c: Sample = load(Some(&file)).unwrap();
        unsafe { std::env::remove_var("CHAT__BUS__SESSION_TTL_SECS") };
        assert_eq!(c.bus.partitions, 4, "file overrides default");
        assert_eq!(c.bus.session_ttl_secs, 7, "environment overrides file");
        assert_eq!(c.bus.session_queue_max_len, 10_000, "default stays");
        assert_eq!(c.admin.listen, "127.0.0.1:9100");
    }
}
