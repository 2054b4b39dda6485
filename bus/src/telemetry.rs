//! Logging (`tracing`) and metrics (Prometheus exposition) set-up.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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

/// Buckets of every `…_seconds` histogram: 1 ms to 30 s, so latencies can
/// be aggregated over instances (`histogram_quantile` in Grafana), which
/// the exporter's default summaries cannot.
const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0,
];
/// Buckets of counts (batch sizes, queue depths).
const COUNT_BUCKETS: [f64; 12] = [
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
];

/// Installs the global `metrics` recorder and returns the handle that renders
/// the Prometheus text format for `/metrics`.
pub fn init_metrics() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_depth".into()), &COUNT_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), &COUNT_BUCKETS))
        .expect("histogram buckets")
        .install_recorder()
        .expect("installing the Prometheus recorder")
}
