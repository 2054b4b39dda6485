//! The gateway's Prometheus metrics, named in one place.

pub fn connections(n: usize) {
    metrics::gauge!("gateway_connections").set(n as f64);
}

pub fn sessions(n: usize) {
    metrics::gauge!("gateway_sessions").set(n as f64);
}

pub fn line_in() {
    metrics::counter!("gateway_lines_in_total").increment(1);
}

pub fn line_out() {
    metrics::counter!("gateway_lines_out_total").increment(1);
}

pub fn intent() {
    metrics::counter!("gateway_intents_total").increment(1);
}

pub fn room_event() {
    metrics::counter!("gateway_room_events_total").increment(1);
}

pub fn sendq_kill() {
    metrics::counter!("gateway_sendq_kills_total").increment(1);
}

/// Registers every metric at zero so `/metrics` lists them from the start.
pub fn describe() {
    connections(0);
    sessions(0);
    metrics::counter!("gateway_lines_in_total").absolute(0);
    metrics::counter!("gateway_lines_out_total").absolute(0);
    metrics::counter!("gateway_intents_total").absolute(0);
    metrics::counter!("gateway_room_events_total").absolute(0);
    metrics::counter!("gateway_sendq_kills_total").absolute(0);
}
