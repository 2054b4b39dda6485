//! Logging (`tracing`) and metrics (Prometheus exposition) set-up.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global `tracing` subscriber: human-readable by default,
/// one JSON object per line with `format = "json"`. `RUST_LOG` overrides
/// the configured level.
pub fn init_tracing(cfg: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cfg.level.clone()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if cfg.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("tracing already initialised: {e}");
    }
}

/// Installs the global `metrics` recorder and returns the handle that renders
/// the Prometheus text format for `/metrics`.
pub fn init_metrics() -> PrometheusHandle {
    PrometheusBuilder::new()
        .install_recorder()
        .expect("installing the Prometheus recorder")
}
