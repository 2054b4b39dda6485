//! What each receiving client records, and the merged report.
//!
//! Every message body is `bench <step> <sender> <seq> <sent_ns>`, where
//! `sent_ns` is nanoseconds on this process's monotonic clock. Because every
//! client lives in this one process, receive time minus send time is the
//! true end-to-end latency: client → gateway → RabbitMQ → router → RabbitMQ
//! → gateway → client.

use hdrhistogram::Histogram;
use serde::Serialize;

/// One receiving client's view of one step.
pub struct Receiver {
    /// Per sender: which seqs arrived (index = seq).
    seen: Vec<Vec<bool>>,
    /// Per sender: the highest seq seen so far.
    last: Vec<Option<u64>>,
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub latency_us: Histogram<u64>,
}

impl Receiver {
    pub fn new(senders: usize) -> Self {
        Self {
            seen: vec![Vec::new(); senders],
            last: vec![None; senders],
            received: 0,
            duplicates: 0,
            reordered: 0,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        }
    }

    /// Records one delivery of `seq` from `sender`, `latency_us` after it was sent.
    pub fn record(&mut self, sender: usize, seq: u64, latency_us: u64) {
        let Some(seen) = self.seen.get_mut(sender) else {
            return;
        };
        let idx = seq as usize;
        if seen.len() <= idx {
            seen.resize(idx + 1, false);
        }
        if seen[idx] {
            self.duplicates += 1;
            return;
        }
        seen[idx] = true;
        self.received += 1;
        if matches!(self.last[sender], Some(last) if seq < last) {
            self.reordered += 1;
        }
        self.last[sender] = Some(self.last[sender].map_or(seq, |l| l.max(seq)));
        let _ = self.latency_us.record(latency_us.max(1));
    }
}

/// The merged result of one step.
#[derive(Debug, Serialize)]
pub struct Report {
    pub offered_rate: f64,
    pub seconds: f64,
    pub sent: u64,
    pub expected_deliveries: u64,
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Report {
    /// Merges the receivers of one step. `sent` messages were each expected
    /// by every receiver except their sender (`receivers_per_message`).
    pub fn merge(
        receivers: &[Receiver],
        offered_rate: f64,
        seconds: f64,
        sent: u64,
        receivers_per_message: u64,
    ) -> Self {
        let mut all =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        let (mut deliveries, mut duplicates, mut reordered) = (0, 0, 0);
        for r in receivers {
            deliveries += r.received;
            duplicates += r.duplicates;
            reordered += r.reordered;
            let _ = all.add(&r.latency_us);
        }
        let expected = sent * receivers_per_message;
        let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
        Self {
            offered_rate,
            seconds,
            sent,
            expected_deliveries: expected,
            deliveries,
            deliveries_per_sec: deliveries as f64 / seconds.max(1e-9),
            lost: expected.saturating_sub(deliveries),
            duplicates,
            reordered,
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: all.max() as f64 / 1000.0,
        }
    }

    pub const HEADER: &'static str =
        "| offered msg/s | sent | deliveries | deliveries/s | lost | dup | reordered | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|---|---|---|";

    pub fn row(&self) -> String {
        format!(
            "| {:.0} | {} | {}/{} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.offered_rate,
            self.sent,
            self.deliveries,
            self.expected_deliveries,
            self.deliveries_per_sec,
            self.lost,
            self.duplicates,
            self.reordered,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_reorders_and_losses() {
        let mut r = Receiver::new(2);
        r.record(0, 0, 100);
        r.record(0, 2, 100);
        r.record(0, 1, 100); // late: reordered
        r.record(0, 1, 100); // duplicate
        r.record(1, 0, 3000);
        r.record(7, 0, 1); // unknown sender: ignored
        assert_eq!((r.received, r.duplicates, r.reordered), (4, 1, 1));
        let rep = Report::merge(&[r], 10.0, 1.0, 5, 1);
        assert_eq!(rep.lost, 1);
        assert!(rep.max_ms >= 2.9 && rep.max_ms <= 3.1, "{}", rep.max_ms);
    }
}
