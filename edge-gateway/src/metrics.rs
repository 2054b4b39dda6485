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

/// A typing notification signalled on NATS by a local session.
pub fn typing_signal() {
    metrics::counter!("gateway_typing_signals_total", "dir" => "out").increment(1);
}

/// A typing notification from NATS shown to local members.
pub fn typing_shown() {
    metrics::counter!("gateway_typing_signals_total", "dir" => "in").increment(1);
}

/// A TLS client that did not finish its handshake.
pub fn tls_handshake_failed() {
    metrics::counter!("gateway_tls_handshake_failures_total").increment(1);
}

/// A failed gateway-side authentication (`what`: oper).
pub fn auth_failure(what: &'static str) {
    metrics::counter!("gateway_auth_failures_total", "what" => what).increment(1);
}

/// A connection turned away (`why`: full, per_address).
pub fn connection_refused(why: &'static str) {
    metrics::counter!("gateway_connections_refused_total", "why" => why).increment(1);
}

pub fn sendq_kill() {
    metrics::counter!("gateway_sendq_kills_total").increment(1);
}

/// A request to the history service (`purpose`: chathistory, targets,
/// join_replay, pending, ack_pending).
pub fn history_request(purpose: &'static str) {
    metrics::counter!("gateway_history_requests_total", "purpose" => purpose).increment(1);
}

/// A history request that failed (`reason`: timeout, invalid_target,
/// malformed, internal).
pub fn history_failure(reason: &'static str) {
    metrics::counter!("gateway_history_failures_total", "reason" => reason).increment(1);
}

/// Direct messages kept while their recipient was offline, now shown.
pub fn pending_delivered(n: usize) {
    metrics::counter!("gateway_pending_delivered_total").increment(n as u64);
}

/// A direct message copied to the history service (`offline`: kept for a
/// recipient with no session) and whether the broker took it.
pub fn direct_log(offline: bool, ok: bool) {
    let kind = if offline { "offline" } else { "live" };
    let outcome = if ok { "confirmed" } else { "refused" };
    metrics::counter!("gateway_direct_logs_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
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
    metrics::counter!("gateway_pending_delivered_total").absolute(0);
}
