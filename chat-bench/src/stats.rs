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
    /// `(sent_ns, latency_us)` of every first delivery, when kept (the
    /// flood scenario looks at the messages sent during the flood alone).
    samples: Option<Vec<(u64, u64)>>,
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
            samples: None,
        }
    }

    /// A receiver that also keeps each delivery's send time and latency,
    /// for [`Window::merge`].
    pub fn with_samples(senders: usize) -> Self {
        Self {
            samples: Some(Vec::new()),
            ..Self::new(senders)
        }
    }

    /// Records one delivery of `seq` from `sender`, sent at `sent_ns` and
    /// received `latency_us` later.
    pub fn record_sent(&mut self, sender: usize, seq: u64, sent_ns: u64, latency_us: u64) {
        if self.record(sender, seq, latency_us) {
            if let Some(samples) = &mut self.samples {
                samples.push((sent_ns, latency_us.max(1)));
            }
        }
    }

    /// Records one delivery of `seq` from `sender`, `latency_us` after it
    /// was sent. Returns whether it was a first delivery (not a duplicate,
    /// nor from an unknown sender).
    pub fn record(&mut self, sender: usize, seq: u64, latency_us: u64) -> bool {
        let Some(seen) = self.seen.get_mut(sender) else {
            return false;
        };
        let idx = seq as usize;
        if seen.len() <= idx {
            seen.resize(idx + 1, false);
        }
        if seen[idx] {
            self.duplicates += 1;
            return false;
        }
        seen[idx] = true;
        self.received += 1;
        if matches!(self.last[sender], Some(last) if seq < last) {
            self.reordered += 1;
        }
        self.last[sender] = Some(self.last[sender].map_or(seq, |l| l.max(seq)));
        let _ = self.latency_us.record(latency_us.max(1));
        true
    }
}

/// Latency of the messages sent within a time window of a step: in the
/// flood scenario, those sent while the flood was in effect, which a whole
/// phase's percentiles would dilute when the flood is over in milliseconds.
#[derive(Debug, Serialize)]
pub struct Window {
    /// The window, in seconds after the phase began.
    pub from_secs: f64,
    pub to_secs: f64,
    pub deliveries: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Window {
    /// Merges the kept samples of messages sent in `[from_ns, to_ns]`;
    /// `start_ns` is when the phase began.
    pub fn merge(receivers: &[Receiver], start_ns: u64, from_ns: u64, to_ns: u64) -> Self {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        for &(_, lat) in receivers
            .iter()
            .flat_map(|r| r.samples.iter().flatten())
            .filter(|(sent, _)| (from_ns..=to_ns).contains(sent))
        {
            let _ = h.record(lat);
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let secs = |ns: u64| ns.saturating_sub(start_ns) as f64 / 1e9;
        Self {
            from_secs: secs(from_ns),
            to_secs: secs(to_ns),
            deliveries: h.len(),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1000.0,
        }
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

    /// `(p50_ms, p99_ms)`, for a [`Ratio`].
    pub fn p50_p99(&self) -> (f64, f64) {
        (self.p50_ms, self.p99_ms)
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

/// One observer's view of the flooder's lines (`flood <seq> <sent_ns>`).
pub struct FloodSeen {
    /// Which seqs arrived (index = seq).
    seen: Vec<bool>,
    last: Option<u64>,
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Arrival of the first and the last flood line, ns on the run's clock.
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    /// How long each flood line took end to end: this is where the
    /// gateway's fake lag shows.
    pub latency_us: Histogram<u64>,
}

impl Default for FloodSeen {
    fn default() -> Self {
        Self {
            seen: Vec::new(),
            last: None,
            received: 0,
            duplicates: 0,
            reordered: 0,
            first_ns: None,
            last_ns: None,
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"),
        }
    }
}

impl FloodSeen {
    /// Records flood line `seq`, sent at `sent_ns` and received at `now_ns`.
    pub fn record(&mut self, seq: u64, sent_ns: u64, now_ns: u64) {
        let idx = seq as usize;
        if self.seen.len() <= idx {
            self.seen.resize(idx + 1, false);
        }
        if self.seen[idx] {
            self.duplicates += 1;
            return;
        }
        self.seen[idx] = true;
        self.received += 1;
        if matches!(self.last, Some(last) if seq < last) {
            self.reordered += 1;
        }
        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
        self.first_ns.get_or_insert(now_ns);
        self.last_ns = Some(now_ns);
        let _ = self
            .latency_us
            .record((now_ns.saturating_sub(sent_ns) / 1000).max(1));
    }
}

/// What the flooder itself observed of its flood.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodWrite {
    /// Lines the kernel accepted before the flood ended or failed.
    pub written: u64,
    /// From the first write to the last accepted one (or the failure).
    pub write_secs: f64,
    /// The write error that ended the flood early, if any.
    pub write_error: Option<String>,
    /// The socket still pushed back when the scenario's time ran out.
    pub gave_up: bool,
}

/// How a connection ended, as its reader saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Closed {
    /// When the server closed it (EOF or read error), ns on the run's clock.
    #[serde(skip)]
    pub at_ns: u64,
    /// The server's `ERROR` line, if it sent one first.
    pub error_line: Option<String>,
    /// The read error, if the connection did not end with a clean EOF.
    pub read_error: Option<String>,
}

/// The flooder's fate, merged over every observer.
#[derive(Debug, Serialize)]
pub struct FloodReport {
    /// Lines the flooder meant to send.
    pub lines: u64,
    #[serde(flatten)]
    pub write: FloodWrite,
    /// Distinct flood lines that reached at least one observer.
    pub lines_delivered: u64,
    /// Deliveries to observers in all, and the fewest and most one observer got.
    pub deliveries: u64,
    pub min_per_observer: u64,
    pub max_per_observer: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// First and last flood delivery to any observer, seconds after the
    /// flood started.
    pub first_delivery_secs: Option<f64>,
    pub last_delivery_secs: Option<f64>,
    /// Flood lines per second as observers received them, first to last
    /// delivery (`lines_delivered` over that span).
    pub delivered_per_sec: Option<f64>,
    /// Latency of the flood lines themselves (fake lag included).
    pub flood_p50_ms: f64,
    pub flood_max_ms: f64,
    /// When the server closed the flooder's connection, seconds after the
    /// flood started; `None` while it is still connected.
    pub disconnected_secs: Option<f64>,
    pub error_line: Option<String>,
    /// Observers whose connections ended during the flood (e.g. SendQ).
    pub observers_disconnected: u64,
    pub observer_error: Option<String>,
}

impl FloodReport {
    /// Merges the observers' views. `start_ns` is when the flood began;
    /// `closed` is the flooder's end, if it ended; `observers_closed` those
    /// of the observers that ended.
    pub fn merge(
        lines: u64,
        write: FloodWrite,
        seen: &[FloodSeen],
        start_ns: u64,
        closed: Option<&Closed>,
        observers_closed: &[Closed],
    ) -> Self {
        let mut union: Vec<bool> = Vec::new();
        let mut all =
            Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds");
        let (mut deliveries, mut duplicates, mut reordered) = (0, 0, 0);
        let (mut first, mut last): (Option<u64>, Option<u64>) = (None, None);
        for s in seen {
            if union.len() < s.seen.len() {
                union.resize(s.seen.len(), false);
            }
            for (u, &v) in union.iter_mut().zip(&s.seen) {
                *u |= v;
            }
            deliveries += s.received;
            duplicates += s.duplicates;
            reordered += s.reordered;
            let _ = all.add(&s.latency_us);
            first = match (first, s.first_ns) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            last = last.max(s.last_ns);
        }
        let lines_delivered = union.iter().filter(|&&v| v).count() as u64;
        let secs = |ns: u64| ns.saturating_sub(start_ns) as f64 / 1e9;
        let delivered_per_sec = match (first, last) {
            (Some(f), Some(l)) if l > f && lines_delivered > 1 => {
                Some(lines_delivered as f64 / ((l - f) as f64 / 1e9))
            }
            _ => None,
        };
        let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
        Self {
            lines,
            write,
            lines_delivered,
            deliveries,
            min_per_observer: seen.iter().map(|s| s.received).min().unwrap_or(0),
            max_per_observer: seen.iter().map(|s| s.received).max().unwrap_or(0),
            duplicates,
            reordered,
            first_delivery_secs: first.map(secs),
            last_delivery_secs: last.map(secs),
            delivered_per_sec,
            flood_p50_ms: if deliveries > 0 { ms(0.5) } else { 0.0 },
            flood_max_ms: all.max() as f64 / 1000.0,
            disconnected_secs: closed.map(|c| secs(c.at_ns)),
            error_line: closed.and_then(|c| c.error_line.clone()),
            observers_disconnected: observers_closed.len() as u64,
            observer_error: observers_closed
                .iter()
                .find_map(|c| c.error_line.clone().or_else(|| c.read_error.clone())),
        }
    }

    /// A human-readable summary of the flooder's fate.
    pub fn summary(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.3} {unit}"));
        let mut s = format!(
            "flooder: {} of {} lines written in {:.3} s{}\n\
             flooder: {} distinct lines reached observers ({} deliveries, {}..{} per observer), \
             first at {}, last at {}, {} lines/s; flood line latency p50 {:.2} ms, max {:.2} ms\n",
            self.write.written,
            self.lines,
            self.write.write_secs,
            match (&self.write.write_error, self.write.gave_up) {
                (Some(e), _) => format!(" (write failed: {e})"),
                (None, true) => " (gave up: the socket was still pushing back)".into(),
                (None, false) => String::new(),
            },
            self.lines_delivered,
            self.deliveries,
            self.min_per_observer,
            self.max_per_observer,
            opt(self.first_delivery_secs, "s"),
            opt(self.last_delivery_secs, "s"),
            self.delivered_per_sec
                .map_or("-".into(), |r| format!("{r:.1}")),
            self.flood_p50_ms,
            self.flood_max_ms,
        );
        match self.disconnected_secs {
            Some(t) => {
                s += &format!(
                    "flooder: disconnected {t:.3} s after the flood began: {}\n",
                    self.error_line.as_deref().unwrap_or("(no ERROR line)")
                )
            }
            None => s += "flooder: still connected at the end\n",
        }
        s += &format!(
            "observers disconnected during the flood: {}{}",
            self.observers_disconnected,
            self.observer_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        );
        s
    }
}

/// Loaded against unloaded probe latency: the "within 2×" criterion.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub p50_ratio: f64,
    pub p99_ratio: f64,
    /// Both ratios at most `limit`.
    pub within: bool,
    pub limit: f64,
}

impl Ratio {
    /// Compares `(p50_ms, p99_ms)` loaded against unloaded.
    pub fn new(unloaded: (f64, f64), loaded: (f64, f64), limit: f64) -> Self {
        let r = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
        let p50_ratio = r(loaded.0, unloaded.0);
        let p99_ratio = r(loaded.1, unloaded.1);
        Self {
            p50_ratio,
            p99_ratio,
            within: p50_ratio <= limit && p99_ratio <= limit,
            limit,
        }
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

    #[test]
    fn flood_seen_merges_into_a_union() {
        let ms = 1_000_000u64;
        let start = 1_000 * ms;
        let mut a = FloodSeen::default();
        a.record(0, start, start + 2 * ms);
        a.record(2, start, start + 3 * ms);
        a.record(1, start, start + 4 * ms); // late: reordered
        a.record(1, start, start + 5 * ms); // duplicate
        let mut b = FloodSeen::default();
        b.record(3, start, start + 1002 * ms);
        assert_eq!((a.received, a.duplicates, a.reordered), (3, 1, 1));
        let closed = Closed {
            at_ns: start + 1500 * ms,
            error_line: Some("ERROR :Closing Link: h (Excess Flood)".into()),
            read_error: None,
        };
        let write = FloodWrite {
            written: 10,
            write_secs: 0.01,
            write_error: None,
            gave_up: false,
        };
        let rep = FloodReport::merge(10, write, &[a, b], start, Some(&closed), &[]);
        assert_eq!(rep.lines_delivered, 4);
        assert_eq!(rep.deliveries, 4);
        assert_eq!((rep.min_per_observer, rep.max_per_observer), (1, 3));
        assert_eq!((rep.duplicates, rep.reordered), (1, 1));
        assert_eq!(rep.first_delivery_secs, Some(0.002));
        assert_eq!(rep.last_delivery_secs, Some(1.002));
        // 4 lines over the 1 s between first and last delivery.
        assert!((rep.delivered_per_sec.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(rep.disconnected_secs, Some(1.5));
        assert!(rep.summary().contains("Excess Flood"));
    }

    #[test]
    fn flood_report_without_deliveries() {
        let rep = FloodReport::merge(
            5,
            FloodWrite::default(),
            &[FloodSeen::default()],
            0,
            None,
            &[],
        );
        assert_eq!((rep.lines_delivered, rep.deliveries), (0, 0));
        assert_eq!(rep.delivered_per_sec, None);
        assert_eq!(rep.first_delivery_secs, None);
        assert!(rep.summary().contains("still connected"));
    }

    #[test]
    fn ratio_checks_both_percentiles() {
        let ok = Ratio::new((2.0, 10.0), (3.0, 19.0), 2.0);
        assert!(ok.within && (ok.p50_ratio - 1.5).abs() < 1e-9);
        let bad = Ratio::new((2.0, 10.0), (3.0, 21.0), 2.0);
        assert!(!bad.within);
        let empty = Ratio::new((0.0, 0.0), (1.0, 1.0), 2.0);
        assert!(!empty.within, "no unloaded figure: no verdict of success");
    }

    #[test]
    fn window_keeps_only_messages_sent_inside_it() {
        let ms = 1_000_000u64;
        let mut r = Receiver::with_samples(1);
        r.record_sent(0, 0, 10 * ms, 1_000); // before the window
        r.record_sent(0, 1, 20 * ms, 5_000);
        r.record_sent(0, 1, 20 * ms, 9_000); // duplicate: not a sample
        r.record_sent(0, 2, 30 * ms, 7_000);
        r.record_sent(0, 3, 40 * ms, 90_000); // after it
        let w = Window::merge(&[r], 0, 15 * ms, 35 * ms);
        assert_eq!(w.deliveries, 2);
        assert!((w.max_ms - 7.0).abs() < 0.01, "{}", w.max_ms);
        assert_eq!((w.from_secs, w.to_secs), (0.015, 0.035));
        let mut plain = Receiver::new(1);
        plain.record_sent(0, 0, 20 * ms, 1_000);
        assert_eq!(Window::merge(&[plain], 0, 0, u64::MAX).deliveries, 0);
    }
}
