//! The service's metrics (Prometheus, on the admin port's `/metrics`).

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Which queue a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Events,
    Direct,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Events => "events",
            Source::Direct => "direct",
        }
    }
}

/// A committed batch: its size (deliveries), the rows it added, how long
/// the transaction took, and how far behind the newest item's time it was.
pub fn batch_committed(source: Source, deliveries: usize, rows: u64, took: Duration) {
    let queue = source.label();
    histogram!("history_batch_size", "queue" => queue).record(deliveries as f64);
    histogram!("history_batch_commit_seconds", "queue" => queue).record(took.as_secs_f64());
    counter!("history_items_persisted_total", "queue" => queue).increment(rows);
}

/// Write lag: now minus the item's own time, at commit.
pub fn write_lag(source: Source, item_at_ms: i64) {
    let lag = (bus::now_ms() - item_at_ms).max(0) as f64 / 1000.0;
    let queue = source.label();
    histogram!("history_write_lag_seconds", "queue" => queue).record(lag);
    gauge!("history_write_lag_last_seconds", "queue" => queue).set(lag);
}

pub fn batch_failed(source: Source) {
    counter!("history_batch_failures_total", "queue" => source.label()).increment(1);
}

/// A consumer subscribed again after the AMQP connection was lost (a broker
/// restart): how often the service rode one out, per queue.
pub fn resubscribed(queue: &'static str) {
    counter!("history_resubscriptions_total", "queue" => queue).increment(1);
}

pub fn rejected(source: &'static str) {
    counter!("history_rejected_total", "queue" => source).increment(1);
}

/// A history request answered.
pub fn request(kind: &'static str, outcome: &'static str, took: Duration) {
    counter!("history_requests_total", "kind" => kind, "outcome" => outcome).increment(1);
    histogram!("history_request_seconds", "kind" => kind).record(took.as_secs_f64());
}

pub fn trimmed(by_age: u64, by_count: u64) {
    counter!("history_retention_deleted_total", "rule" => "age").increment(by_age);
    counter!("history_retention_deleted_total", "rule" => "count").increment(by_count);
}
